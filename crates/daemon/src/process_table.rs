//! The app processes this daemon supervises, and their records in the state
//! store.
//!
//! A record is written before its process is spawned (state `starting`,
//! carrying the marker the process gets in its environment), so a daemon
//! killed between the spawn and the pid's record still finds the process
//! on its next start. Later changes go through one writer task, in order.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use baton_api::ProcessInfo;
use baton_state::{ProcessRecord, Store};
use baton_supervisor::{Incarnation, RestartPolicy, Spec, Status, Supervised};
use tokio::sync::mpsc;

use crate::process_spec::WEB as WEB_ROLE;

/// One supervised process and what the store knows of it.
#[derive(Clone)]
pub struct Entry {
    /// As persisted.
    pub record: ProcessRecord,
    /// The live handle.
    pub handle: Arc<Supervised>,
}

/// Every supervised process of every app.
pub struct ProcessTable {
    store: Arc<Store>,
    entries: Arc<Mutex<BTreeMap<String, Entry>>>,
    /// Incarnations reported before their entry was in the table (the
    /// first start happens inside `Supervised::start`).
    early: Arc<Mutex<BTreeMap<String, Incarnation>>>,
    writes: mpsc::UnboundedSender<Write>,
    policy: RestartPolicy,
}

impl ProcessTable {
    /// An empty table persisting to `store`. Must be called inside the
    /// runtime: it starts the writer task.
    pub fn new(store: Arc<Store>, policy: RestartPolicy) -> Arc<Self> {
        let (writes, pending) = mpsc::unbounded_channel();
        let table = Arc::new(ProcessTable {
            store: Arc::clone(&store),
            entries: Arc::new(Mutex::new(BTreeMap::new())),
            early: Arc::new(Mutex::new(BTreeMap::new())),
            writes,
            policy,
        });
        tokio::spawn(write_records(store, Arc::clone(&table.entries), pending));
        table
    }

    /// Records `record` durably, then spawns `spec` for it.
    pub async fn spawn(&self, record: ProcessRecord, spec: Spec) -> Result<Entry, String> {
        let marker = record.marker.clone();
        {
            let record = record.clone();
            let store = Arc::clone(&self.store);
            tokio::task::spawn_blocking(move || store.put_process(&record))
                .await
                .map_err(|error| error.to_string())?
                .map_err(|error| error.to_string())?;
        }
        let handle = Supervised::start(spec, self.policy, self.on_start(&marker));
        let handle = match handle {
            Ok(handle) => handle,
            Err(error) => {
                self.forget(&marker);
                return Err(error.to_string());
            }
        };
        Ok(self.insert(record, handle))
    }

    /// Takes over a process an earlier daemon started; `None` if it is gone.
    pub fn adopt(&self, record: ProcessRecord, spec: Spec) -> Option<Entry> {
        let (pid, start_time) = (record.pid?, record.start_time?);
        let handle = Supervised::adopt(
            spec,
            pid,
            start_time,
            record.restarts,
            self.policy,
            self.on_start(&record.marker),
        )?;
        Some(self.insert(record, handle))
    }

    fn insert(&self, mut record: ProcessRecord, handle: Arc<Supervised>) -> Entry {
        if let Some(incarnation) = lock(&self.early).remove(&record.marker) {
            apply(&mut record, &incarnation);
        }
        let entry = Entry { record, handle };
        let marker = entry.record.marker.clone();
        lock(&self.entries).insert(marker.clone(), entry.clone());
        let _ = self.writes.send(Write::Record(marker));
        entry
    }

    /// Every incarnation's pid goes to the store as soon as it starts.
    fn on_start(&self, marker: &str) -> Arc<dyn Fn(&Incarnation) + Send + Sync> {
        let entries = Arc::clone(&self.entries);
        let early = Arc::clone(&self.early);
        let writes = self.writes.clone();
        let marker = marker.to_string();
        Arc::new(move |incarnation: &Incarnation| {
            match lock(&entries).get_mut(&marker) {
                Some(entry) => apply(&mut entry.record, incarnation),
                None => {
                    lock(&early).insert(marker.clone(), incarnation.clone());
                }
            }
            let _ = writes.send(Write::Record(marker.clone()));
        })
    }

    /// The processes of `app` (and `release`, and `role`, when given).
    pub fn select(&self, app: &str, release: Option<&str>, role: Option<&str>) -> Vec<Entry> {
        lock(&self.entries)
            .values()
            .filter(|entry| entry.record.app == app)
            .filter(|entry| release.is_none_or(|release| entry.record.release == release))
            .filter(|entry| role.is_none_or(|role| entry.record.role == role))
            .cloned()
            .collect()
    }

    /// Releases of `app` that have processes.
    pub fn releases_running(&self, app: &str) -> Vec<String> {
        let mut releases: Vec<String> = self
            .select(app, None, None)
            .into_iter()
            .map(|entry| entry.record.release)
            .collect();
        releases.dedup();
        releases
    }

    /// Changes a process's state (`running`, `warm`, `stopping`).
    pub fn set_state(&self, marker: &str, state: &str, stop_after: Option<SystemTime>) {
        if let Some(entry) = lock(&self.entries).get_mut(marker) {
            entry.record.state = state.to_string();
            entry.record.stop_after_ms = stop_after.map(unix_ms);
        }
        let _ = self.writes.send(Write::Record(marker.to_string()));
    }

    /// The current record of a process.
    pub fn record(&self, marker: &str) -> Option<ProcessRecord> {
        lock(&self.entries)
            .get(marker)
            .map(|entry| entry.record.clone())
    }

    /// Stops a process for good (stop signal, then SIGKILL after its stop
    /// timeout) and forgets it.
    pub async fn stop(&self, marker: &str) {
        let handle = lock(&self.entries)
            .get(marker)
            .map(|entry| Arc::clone(&entry.handle));
        if let Some(handle) = handle {
            self.set_state(marker, "stopping", None);
            let report = handle.stop().await;
            tracing::info!(
                marker,
                signal = report.signal,
                killed = report.killed,
                "Process stopped"
            );
        }
        self.forget(marker);
    }

    /// Drops a process from the table and the store.
    pub fn forget(&self, marker: &str) {
        lock(&self.entries).remove(marker);
        let _ = self.writes.send(Write::Record(marker.to_string()));
    }

    /// Leaves every process running and stops watching: the next daemon
    /// adopts them.
    pub fn detach_all(&self) {
        for entry in lock(&self.entries).values() {
            entry.handle.detach();
        }
    }

    /// `baton ps`.
    pub fn list(&self, app: Option<&str>) -> Vec<ProcessInfo> {
        let mut listed: Vec<ProcessInfo> = lock(&self.entries)
            .values()
            .filter(|entry| app.is_none_or(|app| entry.record.app == app))
            .map(process_info)
            .collect();
        listed.sort_by(|a, b| {
            (&a.app, &a.release, a.role != WEB_ROLE, &a.role, a.index).cmp(&(
                &b.app,
                &b.release,
                b.role != WEB_ROLE,
                &b.role,
                b.index,
            ))
        });
        listed
    }

    /// Waits until every queued record write reached the store.
    pub async fn flush(&self) {
        let (done, wait) = tokio::sync::oneshot::channel();
        let _ = self.writes.send(Write::Flush(done));
        let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
    }
}

/// A queued write: a marker whose latest record (or absence) must reach
/// the store, or a flush waiting for everything queued before it.
enum Write {
    Record(String),
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Applies queued writes in order.
async fn write_records(
    store: Arc<Store>,
    entries: Arc<Mutex<BTreeMap<String, Entry>>>,
    mut pending: mpsc::UnboundedReceiver<Write>,
) {
    while let Some(write) = pending.recv().await {
        let marker = match write {
            Write::Record(marker) => marker,
            Write::Flush(done) => {
                let _ = done.send(());
                continue;
            }
        };
        let record = lock(&entries)
            .get(&marker)
            .map(|entry| entry.record.clone());
        let store = Arc::clone(&store);
        let written = tokio::task::spawn_blocking(move || match record {
            Some(record) => store.put_process(&record),
            None => store.remove_process(&marker).map(|_| ()),
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "Saving a process record failed"),
            Err(error) => tracing::error!(%error, "Saving a process record failed"),
        }
    }
}

fn apply(record: &mut ProcessRecord, incarnation: &Incarnation) {
    record.pid = Some(incarnation.pid);
    record.start_time = Some(incarnation.start_time);
    record.restarts = incarnation.restarts;
    record.started_at_ms = unix_ms(incarnation.started_at);
    if record.state == "starting" {
        record.state = "running".to_string();
    }
}

fn process_info(entry: &Entry) -> ProcessInfo {
    let record = &entry.record;
    let status = entry.handle.status();
    let (pid, state) = match status {
        Status::Running { pid, .. } => (pid, record.state.clone()),
        Status::Restarting { .. } => (0, "restarting".to_string()),
        Status::Stopping { pid } => (pid, "stopping".to_string()),
        Status::Stopped { .. } => (0, "stopped".to_string()),
        Status::Detached => (record.pid.unwrap_or(0), record.state.clone()),
    };
    ProcessInfo {
        app: record.app.clone(),
        role: record.role.clone(),
        index: record.index,
        release: record.release.clone(),
        pid,
        port: record.port,
        started_at_ms: record.started_at_ms,
        restarts: entry.handle.restarts(),
        rss_bytes: if pid == 0 {
            0
        } else {
            baton_supervisor::rss_bytes(pid).unwrap_or(0)
        },
        state,
        log_file: record.log_file.clone().into(),
    }
}

/// Milliseconds since the epoch.
pub fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
