//! The store's apps, releases, deploy history and processes.
//!
//! Each method is one transaction, run through [`Store::read`] or
//! [`Store::write`]. Rows are decoded by one function per table, and every
//! statement that feeds it selects the same column-list macro, so the order
//! of the columns is written once.

use std::path::Path;

use rusqlite::{Row, Rows, params};

use crate::app_records::{AppRecord, DeployRecord, ProcessRecord, ReleaseRecord};
use crate::error::StateError;
use crate::store::{Fail, Store};

// The columns each decode_* function reads, in its order. Macros, not
// consts, so that concat! builds each statement as one static string.

macro_rules! app_columns {
    () => {
        "name, config, current_release_id, updated_at_ms"
    };
}

macro_rules! release_columns {
    () => {
        "app, id, created_at_ms, source, revision, config"
    };
}

macro_rules! deploy_columns {
    () => {
        "id, app, kind, release_id, previous_release_id, started_at_ms, finished_at_ms, \
         user, source, outcome, reason, stages, report"
    };
}

macro_rules! process_columns {
    () => {
        "marker, app, release_id, role, instance, pid, start_time, port, started_at_ms, \
         restarts, state, stop_after_ms, log_file"
    };
}

impl Store {
    /// Creates or replaces the app `app.name`, every field as given.
    pub fn put_app(&self, app: &AppRecord) -> Result<(), StateError> {
        let record = describe_app(&app.name);
        self.write(
            || format!("saving {record}"),
            |tx| {
                let updated_at_ms = to_int(&record, "updated_at_ms", app.updated_at_ms)?;
                tx.prepare_cached(
                    "INSERT INTO apps (name, config, current_release_id, updated_at_ms) \
                     VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (name) DO UPDATE SET config = excluded.config, \
                       current_release_id = excluded.current_release_id, \
                       updated_at_ms = excluded.updated_at_ms",
                )?
                .execute(params![
                    app.name,
                    app.config_json,
                    app.current_release,
                    updated_at_ms
                ])?;
                Ok(())
            },
        )?;
        tracing::debug!(app = %app.name, "app saved");
        Ok(())
    }

    /// The app called `name`, if there is one.
    pub fn app(&self, name: &str) -> Result<Option<AppRecord>, StateError> {
        let path = self.path();
        self.read(
            || format!("reading {}", describe_app(name)),
            |tx| {
                let mut stmt = tx.prepare_cached(concat!(
                    "SELECT ",
                    app_columns!(),
                    " FROM apps WHERE name = ?1"
                ))?;
                first(stmt.query([name])?, path, decode_app)
            },
        )
    }

    /// Every app, sorted by name.
    pub fn apps(&self) -> Result<Vec<AppRecord>, StateError> {
        let path = self.path();
        self.read(
            || "reading apps".to_owned(),
            |tx| {
                let mut stmt = tx.prepare_cached(concat!(
                    "SELECT ",
                    app_columns!(),
                    " FROM apps ORDER BY name"
                ))?;
                all(stmt.query([])?, path, decode_app)
            },
        )
    }

    /// Sets (`Some`) or clears (`None`) the release serving for `app`, and
    /// its `updated_at_ms` to `now_ms`. The release is not checked against
    /// the stored releases. Fails with [`StateError::UnknownApp`] if there
    /// is no such app.
    pub fn set_current_release(
        &self,
        app: &str,
        release: Option<&str>,
        now_ms: u64,
    ) -> Result<(), StateError> {
        let record = describe_app(app);
        let path = self.path();
        self.write(
            || format!("setting the current release of {record}"),
            |tx| {
                let now_ms = to_int(&record, "updated_at_ms", now_ms)?;
                let touched = tx
                    .prepare_cached(
                        "UPDATE apps SET current_release_id = ?2, updated_at_ms = ?3 \
                         WHERE name = ?1",
                    )?
                    .execute(params![app, release, now_ms])?;
                if touched == 0 {
                    return Err(StateError::UnknownApp {
                        path: path.to_path_buf(),
                        name: app.to_owned(),
                    }
                    .into());
                }
                Ok(())
            },
        )?;
        tracing::debug!(app, release = ?release, "current release set");
        Ok(())
    }

    /// Creates or replaces the release `release.id` of `release.app`.
    pub fn put_release(&self, release: &ReleaseRecord) -> Result<(), StateError> {
        let record = describe_release(&release.app, &release.id);
        self.write(
            || format!("saving {record}"),
            |tx| {
                let created_at_ms = to_int(&record, "created_at_ms", release.created_at_ms)?;
                tx.prepare_cached(
                    "INSERT INTO releases (app, id, created_at_ms, source, revision, config) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                     ON CONFLICT (app, id) DO UPDATE SET \
                       created_at_ms = excluded.created_at_ms, source = excluded.source, \
                       revision = excluded.revision, config = excluded.config",
                )?
                .execute(params![
                    release.app,
                    release.id,
                    created_at_ms,
                    release.source,
                    release.revision,
                    release.config_json
                ])?;
                Ok(())
            },
        )?;
        tracing::debug!(app = %release.app, release = %release.id, "release saved");
        Ok(())
    }

    /// The releases of `app`, oldest first (by `created_at_ms`, then `id`).
    pub fn releases(&self, app: &str) -> Result<Vec<ReleaseRecord>, StateError> {
        let path = self.path();
        self.read(
            || format!("reading the releases of {}", describe_app(app)),
            |tx| {
                let mut stmt = tx.prepare_cached(concat!(
                    "SELECT ",
                    release_columns!(),
                    " FROM releases WHERE app = ?1 ORDER BY created_at_ms, id"
                ))?;
                all(stmt.query([app])?, path, decode_release)
            },
        )
    }

    /// The release `id` of `app`, if there is one.
    pub fn release(&self, app: &str, id: &str) -> Result<Option<ReleaseRecord>, StateError> {
        let path = self.path();
        self.read(
            || format!("reading {}", describe_release(app, id)),
            |tx| {
                let mut stmt = tx.prepare_cached(concat!(
                    "SELECT ",
                    release_columns!(),
                    " FROM releases WHERE app = ?1 AND id = ?2"
                ))?;
                first(stmt.query([app, id])?, path, decode_release)
            },
        )
    }

    /// Removes the release `id` of `app`. Returns whether there was one.
    /// An app whose current release it was keeps naming it.
    pub fn remove_release(&self, app: &str, id: &str) -> Result<bool, StateError> {
        let removed = self.write(
            || format!("removing {}", describe_release(app, id)),
            |tx| {
                let deleted = tx
                    .prepare_cached("DELETE FROM releases WHERE app = ?1 AND id = ?2")?
                    .execute([app, id])?;
                Ok(deleted > 0)
            },
        )?;
        if removed {
            tracing::debug!(app, release = id, "release removed");
        }
        Ok(removed)
    }

    /// Adds `deploy` to the history and returns the id it was given. Ids
    /// grow with every call and are never handed out again, even if the
    /// newest entries are deleted; `deploy.id` is ignored.
    pub fn start_deploy(&self, deploy: &DeployRecord) -> Result<i64, StateError> {
        let record = format!("new {} of app {:?}", deploy.kind, deploy.app);
        let id = self.write(
            || format!("recording the {record}"),
            |tx| {
                let started_at_ms = to_int(&record, "started_at_ms", deploy.started_at_ms)?;
                let finished_at_ms = to_opt_int(&record, "finished_at_ms", deploy.finished_at_ms)?;
                tx.prepare_cached(
                    "INSERT INTO deploys (app, kind, release_id, previous_release_id, \
                       started_at_ms, finished_at_ms, user, source, outcome, reason, stages, report) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )?
                .execute(params![
                    deploy.app,
                    deploy.kind,
                    deploy.release,
                    deploy.previous_release,
                    started_at_ms,
                    finished_at_ms,
                    deploy.user,
                    deploy.source,
                    deploy.outcome,
                    deploy.reason,
                    deploy.stages_json,
                    deploy.report_json
                ])?;
                Ok(tx.last_insert_rowid())
            },
        )?;
        tracing::debug!(app = %deploy.app, kind = %deploy.kind, id, "deploy recorded");
        Ok(id)
    }

    /// Records the progress or end of the deploy `deploy.id`: its release,
    /// previous release, end time, outcome, reason and stages. The fields
    /// fixed at the start (app, kind, start time, user, source) are left as
    /// they were stored. Fails with [`StateError::UnknownDeploy`] if the
    /// history has no such deploy.
    pub fn update_deploy(&self, deploy: &DeployRecord) -> Result<(), StateError> {
        let record = describe_deploy(deploy.id, &deploy.app);
        let path = self.path();
        self.write(
            || format!("updating {record}"),
            |tx| {
                let finished_at_ms = to_opt_int(&record, "finished_at_ms", deploy.finished_at_ms)?;
                let touched = tx
                    .prepare_cached(
                        "UPDATE deploys SET release_id = ?2, previous_release_id = ?3, \
                           finished_at_ms = ?4, outcome = ?5, reason = ?6, stages = ?7, \
                           report = ?8 \
                         WHERE id = ?1",
                    )?
                    .execute(params![
                        deploy.id,
                        deploy.release,
                        deploy.previous_release,
                        finished_at_ms,
                        deploy.outcome,
                        deploy.reason,
                        deploy.stages_json,
                        deploy.report_json
                    ])?;
                if touched == 0 {
                    return Err(StateError::UnknownDeploy {
                        path: path.to_path_buf(),
                        id: deploy.id,
                    }
                    .into());
                }
                Ok(())
            },
        )?;
        tracing::debug!(app = %deploy.app, id = deploy.id, outcome = %deploy.outcome, "deploy updated");
        Ok(())
    }

    /// The `limit` most recent deploys and rollbacks of `app`, newest first.
    pub fn deploys(&self, app: &str, limit: usize) -> Result<Vec<DeployRecord>, StateError> {
        let path = self.path();
        // More rows than i64::MAX cannot exist, so saturating changes nothing.
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(
            || format!("reading the deploy history of {}", describe_app(app)),
            |tx| {
                let mut stmt = tx.prepare_cached(concat!(
                    "SELECT ",
                    deploy_columns!(),
                    " FROM deploys WHERE app = ?1 ORDER BY id DESC LIMIT ?2"
                ))?;
                all(stmt.query(params![app, limit])?, path, decode_deploy)
            },
        )
    }

    /// Every deploy and rollback that has ended, of every app, oldest first;
    /// for the deploy counters of `/metrics`, read once at start.
    pub fn finished_deploys(&self) -> Result<Vec<DeployRecord>, StateError> {
        let path = self.path();
        self.read(
            || "reading the finished deploys".to_owned(),
            |tx| {
                let mut stmt = tx.prepare_cached(concat!(
                    "SELECT ",
                    deploy_columns!(),
                    " FROM deploys WHERE outcome <> 'running' ORDER BY id"
                ))?;
                all(stmt.query([])?, path, decode_deploy)
            },
        )
    }

    /// The deploys whose outcome is `"running"`, of every app, oldest first.
    pub fn running_deploys(&self) -> Result<Vec<DeployRecord>, StateError> {
        let path = self.path();
        self.read(
            || "reading the running deploys".to_owned(),
            |tx| {
                // The condition is written exactly as in the definition of
                // the partial index deploys_running, so the planner can
                // always prove that index applies.
                let mut stmt = tx.prepare_cached(concat!(
                    "SELECT ",
                    deploy_columns!(),
                    " FROM deploys WHERE outcome = 'running' ORDER BY id"
                ))?;
                all(stmt.query([])?, path, decode_deploy)
            },
        )
    }

    /// For a start after a crash: in one transaction, every deploy whose
    /// outcome is `"running"` becomes `"interrupted"`, with `reason` and
    /// `finished_at_ms = now_ms`. Returns those deploys as they are now
    /// stored, oldest first.
    pub fn interrupt_running_deploys(
        &self,
        reason: &str,
        now_ms: u64,
    ) -> Result<Vec<DeployRecord>, StateError> {
        let path = self.path();
        let mut interrupted = self.write(
            || "marking the running deploys as interrupted".to_owned(),
            |tx| {
                let now_ms = to_int("an interrupted deploy", "finished_at_ms", now_ms)?;
                let mut stmt = tx.prepare_cached(concat!(
                    "UPDATE deploys SET outcome = 'interrupted', reason = ?1, finished_at_ms = ?2 \
                     WHERE outcome = 'running' RETURNING ",
                    deploy_columns!()
                ))?;
                all(stmt.query(params![reason, now_ms])?, path, decode_deploy)
            },
        )?;
        // RETURNING gives rows in no particular order.
        interrupted.sort_by_key(|deploy| deploy.id);
        if !interrupted.is_empty() {
            tracing::info!(
                count = interrupted.len(),
                reason,
                "running deploys marked as interrupted"
            );
        }
        Ok(interrupted)
    }

    /// Creates or replaces the process slot `process.marker`, every field
    /// as given.
    pub fn put_process(&self, process: &ProcessRecord) -> Result<(), StateError> {
        let record = describe_process(&process.marker, &process.app);
        self.write(
            || format!("saving {record}"),
            |tx| {
                let start_time = to_opt_int(&record, "start_time", process.start_time)?;
                let started_at_ms = to_int(&record, "started_at_ms", process.started_at_ms)?;
                let stop_after_ms = to_opt_int(&record, "stop_after_ms", process.stop_after_ms)?;
                tx.prepare_cached(
                    "INSERT INTO processes (marker, app, release_id, role, instance, pid, \
                       start_time, port, started_at_ms, restarts, state, stop_after_ms, log_file) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
                     ON CONFLICT (marker) DO UPDATE SET app = excluded.app, \
                       release_id = excluded.release_id, role = excluded.role, \
                       instance = excluded.instance, pid = excluded.pid, \
                       start_time = excluded.start_time, port = excluded.port, \
                       started_at_ms = excluded.started_at_ms, restarts = excluded.restarts, \
                       state = excluded.state, stop_after_ms = excluded.stop_after_ms, \
                       log_file = excluded.log_file",
                )?
                .execute(params![
                    process.marker,
                    process.app,
                    process.release,
                    process.role,
                    process.index,
                    process.pid,
                    start_time,
                    process.port,
                    started_at_ms,
                    process.restarts,
                    process.state,
                    stop_after_ms,
                    process.log_file
                ])?;
                Ok(())
            },
        )?;
        tracing::debug!(app = %process.app, marker = %process.marker, state = %process.state, "process saved");
        Ok(())
    }

    /// The process slots of `app`, or of every app for `None`, sorted by
    /// app, release, role and index (then marker, should two slots share
    /// those).
    pub fn processes(&self, app: Option<&str>) -> Result<Vec<ProcessRecord>, StateError> {
        let path = self.path();
        self.read(
            || match app {
                Some(app) => format!("reading the processes of {}", describe_app(app)),
                None => "reading processes".to_owned(),
            },
            |tx| {
                let mut stmt = tx.prepare_cached(concat!(
                    "SELECT ",
                    process_columns!(),
                    " FROM processes WHERE ?1 IS NULL OR app = ?1 \
                     ORDER BY app, release_id, role, instance, marker"
                ))?;
                all(stmt.query([app])?, path, decode_process)
            },
        )
    }

    /// Removes the process slot `marker`. Returns whether there was one.
    pub fn remove_process(&self, marker: &str) -> Result<bool, StateError> {
        let removed = self.write(
            || format!("removing process {marker:?}"),
            |tx| {
                let deleted = tx
                    .prepare_cached("DELETE FROM processes WHERE marker = ?1")?
                    .execute([marker])?;
                Ok(deleted > 0)
            },
        )?;
        if removed {
            tracing::debug!(marker, "process removed");
        }
        Ok(removed)
    }
}

// How each record is named in error messages.

fn describe_app(name: &str) -> String {
    format!("app {name:?}")
}

fn describe_release(app: &str, id: &str) -> String {
    format!("release {id:?} of app {app:?}")
}

fn describe_deploy(id: i64, app: &str) -> String {
    format!("deploy {id} of app {app:?}")
}

fn describe_process(marker: &str, app: &str) -> String {
    format!("process {marker:?} of app {app:?}")
}

fn decode_app(row: &Row<'_>, path: &Path) -> Result<AppRecord, Fail> {
    let name: String = row.get(0)?;
    let columns = Columns::new(row, path, describe_app(&name));
    Ok(AppRecord {
        config_json: row.get(1)?,
        current_release: row.get(2)?,
        updated_at_ms: columns.unsigned(3, "updated_at_ms")?,
        name,
    })
}

fn decode_release(row: &Row<'_>, path: &Path) -> Result<ReleaseRecord, Fail> {
    let app: String = row.get(0)?;
    let id: String = row.get(1)?;
    let columns = Columns::new(row, path, describe_release(&app, &id));
    Ok(ReleaseRecord {
        created_at_ms: columns.unsigned(2, "created_at_ms")?,
        source: row.get(3)?,
        revision: row.get(4)?,
        config_json: row.get(5)?,
        app,
        id,
    })
}

fn decode_deploy(row: &Row<'_>, path: &Path) -> Result<DeployRecord, Fail> {
    let id: i64 = row.get(0)?;
    let app: String = row.get(1)?;
    let columns = Columns::new(row, path, describe_deploy(id, &app));
    Ok(DeployRecord {
        id,
        kind: row.get(2)?,
        release: row.get(3)?,
        previous_release: row.get(4)?,
        started_at_ms: columns.unsigned(5, "started_at_ms")?,
        finished_at_ms: columns.optional(6, "finished_at_ms")?,
        user: row.get(7)?,
        source: row.get(8)?,
        outcome: row.get(9)?,
        reason: row.get(10)?,
        stages_json: row.get(11)?,
        report_json: row.get(12)?,
        app,
    })
}

fn decode_process(row: &Row<'_>, path: &Path) -> Result<ProcessRecord, Fail> {
    let marker: String = row.get(0)?;
    let app: String = row.get(1)?;
    let columns = Columns::new(row, path, describe_process(&marker, &app));
    Ok(ProcessRecord {
        release: row.get(2)?,
        role: row.get(3)?,
        index: columns.unsigned(4, "index")?,
        pid: columns.optional(5, "pid")?,
        start_time: columns.optional(6, "start_time")?,
        port: columns.optional(7, "port")?,
        started_at_ms: columns.unsigned(8, "started_at_ms")?,
        restarts: columns.unsigned(9, "restarts")?,
        state: row.get(10)?,
        stop_after_ms: columns.optional(11, "stop_after_ms")?,
        log_file: row.get(12)?,
        marker,
        app,
    })
}

/// The integer columns of one row, read back into the unsigned types of
/// their fields. SQLite stores them as i64, and a value that does not fit
/// was not written by this crate, so it is reported as corruption of the
/// record named here.
pub(crate) struct Columns<'a, 'r> {
    row: &'a Row<'r>,
    path: &'a Path,
    record: String,
}

impl<'a, 'r> Columns<'a, 'r> {
    pub(crate) fn new(row: &'a Row<'r>, path: &'a Path, record: String) -> Self {
        Columns { row, path, record }
    }

    pub(crate) fn unsigned<T: TryFrom<i64>>(
        &self,
        index: usize,
        field: &'static str,
    ) -> Result<T, Fail> {
        let value: i64 = self.row.get(index)?;
        Ok(self.fit(value, field)?)
    }

    fn optional<T: TryFrom<i64>>(
        &self,
        index: usize,
        field: &'static str,
    ) -> Result<Option<T>, Fail> {
        let value: Option<i64> = self.row.get(index)?;
        Ok(value.map(|value| self.fit(value, field)).transpose()?)
    }

    fn fit<T: TryFrom<i64>>(&self, value: i64, field: &'static str) -> Result<T, StateError> {
        T::try_from(value).map_err(|_| StateError::CorruptRecord {
            path: self.path.to_path_buf(),
            record: self.record.clone(),
            field,
            detail: format!("{value} does not fit in a {}", std::any::type_name::<T>()),
        })
    }
}

fn first<T>(
    mut rows: Rows<'_>,
    path: &Path,
    decode: fn(&Row<'_>, &Path) -> Result<T, Fail>,
) -> Result<Option<T>, Fail> {
    rows.next()?.map(|row| decode(row, path)).transpose()
}

pub(crate) fn all<T>(
    mut rows: Rows<'_>,
    path: &Path,
    decode: fn(&Row<'_>, &Path) -> Result<T, Fail>,
) -> Result<Vec<T>, Fail> {
    let mut records = Vec::new();
    while let Some(row) = rows.next()? {
        records.push(decode(row, path)?);
    }
    Ok(records)
}

/// SQLite integers are signed 64-bit; refuse rather than wrap.
pub(crate) fn to_int(record: &str, field: &'static str, value: u64) -> Result<i64, StateError> {
    i64::try_from(value).map_err(|_| StateError::RecordOutOfRange {
        record: record.to_owned(),
        field,
        value,
    })
}

fn to_opt_int(
    record: &str,
    field: &'static str,
    value: Option<u64>,
) -> Result<Option<i64>, StateError> {
    value.map(|value| to_int(record, field, value)).transpose()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use rusqlite::Connection;

    use super::*;
    use crate::SCHEMA_VERSION;

    fn app(name: &str) -> AppRecord {
        AppRecord {
            name: name.to_owned(),
            config_json: format!(r#"{{"name":"{name}","web":{{"command":"bin/web"}}}}"#),
            current_release: Some("r1".to_owned()),
            updated_at_ms: 1_700_000_000_001,
        }
    }

    fn release(app: &str, id: &str, created_at_ms: u64) -> ReleaseRecord {
        ReleaseRecord {
            app: app.to_owned(),
            id: id.to_owned(),
            created_at_ms,
            source: "/srv/src".to_owned(),
            revision: format!("sha-{id}"),
            config_json: r#"{"workers":{}}"#.to_owned(),
        }
    }

    fn deploy(app: &str) -> DeployRecord {
        DeployRecord {
            id: 0,
            app: app.to_owned(),
            kind: "deploy".to_owned(),
            release: String::new(),
            previous_release: Some("r0".to_owned()),
            started_at_ms: 1_700_000_000_000,
            finished_at_ms: None,
            user: "ana".to_owned(),
            source: "git@example.com:shop.git@main".to_owned(),
            outcome: "running".to_owned(),
            reason: None,
            stages_json: "[]".to_owned(),
            report_json: None,
        }
    }

    fn process(marker: &str, app: &str, release: &str, role: &str, index: u32) -> ProcessRecord {
        ProcessRecord {
            marker: marker.to_owned(),
            app: app.to_owned(),
            release: release.to_owned(),
            role: role.to_owned(),
            index,
            pid: Some(4_000_000),
            start_time: Some(u64::from(u32::MAX) + 7),
            port: Some(65_535),
            started_at_ms: 1_700_000_000_002,
            restarts: 3,
            state: "warm".to_owned(),
            stop_after_ms: Some(1_700_000_900_000),
            log_file: format!("/var/log/baton/{app}/{role}.{index}.log"),
        }
    }

    /// Runs raw SQL, for setting up states the API cannot produce.
    fn sql(store: &Store, statements: &str) {
        store
            .write(
                || "test SQL".to_owned(),
                |tx| Ok(tx.execute_batch(statements)?),
            )
            .unwrap();
    }

    fn ids(deploys: &[DeployRecord]) -> Vec<i64> {
        deploys.iter().map(|d| d.id).collect()
    }

    #[test]
    fn app_round_trips_and_upserts() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(store.app("shop").unwrap(), None);
        let mut record = app("shop");
        store.put_app(&record).unwrap();
        assert_eq!(store.app("shop").unwrap(), Some(record.clone()));

        record.config_json = "{}".to_owned();
        record.current_release = None;
        record.updated_at_ms = 9;
        store.put_app(&record).unwrap();
        assert_eq!(store.app("shop").unwrap(), Some(record.clone()));
        assert_eq!(store.apps().unwrap(), vec![record]);
    }

    #[test]
    fn apps_are_sorted_by_name() {
        let store = Store::open_in_memory().unwrap();
        for name in ["web", "api", "Zed", "admin"] {
            store.put_app(&app(name)).unwrap();
        }
        let names: Vec<_> = store.apps().unwrap().into_iter().map(|a| a.name).collect();
        assert_eq!(names, ["Zed", "admin", "api", "web"]);
    }

    #[test]
    fn current_release_is_set_and_cleared() {
        let store = Store::open_in_memory().unwrap();
        let mut record = app("shop");
        store.put_app(&record).unwrap();

        store.set_current_release("shop", Some("r2"), 50).unwrap();
        record.current_release = Some("r2".to_owned());
        record.updated_at_ms = 50;
        assert_eq!(store.app("shop").unwrap(), Some(record.clone()));

        store.set_current_release("shop", None, 60).unwrap();
        record.current_release = None;
        record.updated_at_ms = 60;
        assert_eq!(store.app("shop").unwrap(), Some(record));
    }

    #[test]
    fn current_release_of_unknown_app_is_an_error() {
        let store = Store::open_in_memory().unwrap();
        let err = store
            .set_current_release("ghost", Some("r1"), 1)
            .unwrap_err();
        assert!(
            matches!(&err, StateError::UnknownApp { name, .. } if name == "ghost"),
            "{err:?}"
        );
        assert!(err.to_string().contains("baton deploy"), "{err}");
        assert!(store.apps().unwrap().is_empty());
    }

    #[test]
    fn releases_round_trip_upsert_and_sort_oldest_first() {
        let store = Store::open_in_memory().unwrap();
        // Written out of order; "b" and "a" share a timestamp, so id decides.
        let late = release("shop", "c", 300);
        let tie_b = release("shop", "b", 200);
        let tie_a = release("shop", "a", 200);
        let first = release("shop", "z", 100);
        for record in [&late, &tie_b, &tie_a, &first] {
            store.put_release(record).unwrap();
        }
        store.put_release(&release("other", "a", 1)).unwrap();

        assert_eq!(
            store.releases("shop").unwrap(),
            vec![first.clone(), tie_a.clone(), tie_b, late.clone()]
        );
        assert_eq!(store.release("shop", "c").unwrap(), Some(late.clone()));
        assert_eq!(store.release("shop", "nope").unwrap(), None);
        assert_eq!(store.release("nope", "c").unwrap(), None);

        let mut changed = late;
        changed.created_at_ms = 50;
        changed.revision = "sha-new".to_owned();
        changed.source = "/elsewhere".to_owned();
        changed.config_json = "{}".to_owned();
        store.put_release(&changed).unwrap();
        assert_eq!(store.release("shop", "c").unwrap(), Some(changed.clone()));
        let order: Vec<_> = store
            .releases("shop")
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(order, ["c", "z", "a", "b"]);
        assert_eq!(store.releases("other").unwrap().len(), 1);
    }

    #[test]
    fn release_removal_reports_whether_there_was_one() {
        let store = Store::open_in_memory().unwrap();
        store.put_release(&release("shop", "r1", 1)).unwrap();
        store.put_release(&release("other", "r1", 1)).unwrap();
        assert!(store.remove_release("shop", "r1").unwrap());
        assert!(!store.remove_release("shop", "r1").unwrap());
        assert_eq!(store.releases("shop").unwrap(), Vec::new());
        assert_eq!(store.releases("other").unwrap().len(), 1);
    }

    #[test]
    fn deploy_round_trips_and_updates_only_its_progress() {
        let store = Store::open_in_memory().unwrap();
        let mut record = deploy("shop");
        record.id = 77; // ignored
        let id = store.start_deploy(&record).unwrap();
        record.id = id;
        assert_eq!(store.deploys("shop", 10).unwrap(), vec![record.clone()]);

        let mut progress = record.clone();
        progress.release = "r1".to_owned();
        progress.previous_release = None;
        progress.finished_at_ms = Some(1_700_000_060_000);
        progress.outcome = "failed".to_owned();
        progress.reason = Some("boot: web did not become healthy".to_owned());
        progress.stages_json = r#"[{"stage":"boot","duration_ms":30000}]"#.to_owned();
        // Fixed at the start: changing them here must not reach the store.
        let mut sent = progress.clone();
        sent.kind = "rollback".to_owned();
        sent.started_at_ms = 1;
        sent.user = "mallory".to_owned();
        sent.source = "elsewhere".to_owned();
        store.update_deploy(&sent).unwrap();
        assert_eq!(store.deploys("shop", 10).unwrap(), vec![progress]);
    }

    #[test]
    fn update_of_unknown_deploy_is_an_error() {
        let store = Store::open_in_memory().unwrap();
        let mut record = deploy("shop");
        record.id = 5;
        let err = store.update_deploy(&record).unwrap_err();
        assert!(
            matches!(err, StateError::UnknownDeploy { id: 5, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn history_is_newest_first_per_app_and_limited() {
        let store = Store::open_in_memory().unwrap();
        let shop: Vec<_> = (0..5)
            .map(|_| store.start_deploy(&deploy("shop")).unwrap())
            .collect();
        let blog = store.start_deploy(&deploy("blog")).unwrap();
        assert!(shop.windows(2).all(|w| w[0] < w[1]), "{shop:?}");

        let newest_first: Vec<_> = shop.iter().rev().copied().collect();
        assert_eq!(ids(&store.deploys("shop", 100).unwrap()), newest_first);
        assert_eq!(ids(&store.deploys("shop", 2).unwrap()), newest_first[..2]);
        assert_eq!(ids(&store.deploys("shop", usize::MAX).unwrap()).len(), 5);
        assert!(store.deploys("shop", 0).unwrap().is_empty());
        assert_eq!(ids(&store.deploys("blog", 100).unwrap()), [blog]);
        assert!(store.deploys("none", 100).unwrap().is_empty());
    }

    #[test]
    fn deploy_ids_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let highest = {
            let store = Store::open(&path).unwrap();
            let first = store.start_deploy(&deploy("shop")).unwrap();
            let second = store.start_deploy(&deploy("shop")).unwrap();
            let third = store.start_deploy(&deploy("blog")).unwrap();
            assert!(first < second && second < third);
            // Delete the newest rows: plain rowids would hand `second` out again.
            sql(&store, &format!("DELETE FROM deploys WHERE id >= {second}"));
            let fourth = store.start_deploy(&deploy("shop")).unwrap();
            assert!(fourth > third, "{fourth} reuses an id");
            sql(&store, "DELETE FROM deploys");
            fourth
        };
        let store = Store::open(&path).unwrap();
        let after_reopen = store.start_deploy(&deploy("shop")).unwrap();
        assert!(after_reopen > highest, "{after_reopen} reuses an id");
    }

    #[test]
    fn interrupting_marks_only_running_deploys() {
        let store = Store::open_in_memory().unwrap();
        let running_shop = store.start_deploy(&deploy("shop")).unwrap();
        let mut done = deploy("shop");
        done.id = store.start_deploy(&done).unwrap();
        done.release = "r1".to_owned();
        done.outcome = "succeeded".to_owned();
        done.finished_at_ms = Some(1_700_000_000_500);
        store.update_deploy(&done).unwrap();
        let running_blog = store.start_deploy(&deploy("blog")).unwrap();
        assert_eq!(
            ids(&store.running_deploys().unwrap()),
            [running_shop, running_blog]
        );
        assert_eq!(ids(&store.finished_deploys().unwrap()), [done.id]);

        let interrupted = store
            .interrupt_running_deploys("the daemon stopped during the deploy", 99)
            .unwrap();
        assert_eq!(ids(&interrupted), [running_shop, running_blog]);
        for record in &interrupted {
            assert_eq!(record.outcome, "interrupted");
            assert_eq!(
                record.reason.as_deref(),
                Some("the daemon stopped during the deploy")
            );
            assert_eq!(record.finished_at_ms, Some(99));
            // What is returned is what is stored.
            assert!(store.deploys(&record.app, 10).unwrap().contains(record));
        }
        assert!(store.running_deploys().unwrap().is_empty());
        assert_eq!(
            ids(&store.finished_deploys().unwrap()),
            [running_shop, done.id, running_blog]
        );
        // Newest first: the finished one, then the interrupted one.
        assert_eq!(store.deploys("shop", 10).unwrap()[..1], [done]);
        assert!(
            store
                .interrupt_running_deploys("again", 100)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn process_round_trips_with_and_without_optional_fields() {
        let store = Store::open_in_memory().unwrap();
        let full = process("m-full", "shop", "r1", "web", 1);
        let bare = ProcessRecord {
            pid: None,
            start_time: None,
            port: None,
            stop_after_ms: None,
            state: "starting".to_owned(),
            restarts: 0,
            ..process("m-bare", "shop", "r1", "web", 2)
        };
        store.put_process(&full).unwrap();
        store.put_process(&bare).unwrap();
        assert_eq!(store.processes(None).unwrap(), vec![full, bare]);
    }

    #[test]
    fn process_upsert_replaces_every_field() {
        let store = Store::open_in_memory().unwrap();
        store
            .put_process(&process("m1", "shop", "r1", "web", 1))
            .unwrap();
        let mut moved = process("m1", "blog", "r9", "mailer", 4);
        moved.pid = None;
        moved.port = None;
        moved.restarts = 8;
        moved.state = "stopping".to_owned();
        moved.stop_after_ms = None;
        moved.log_file = "/tmp/other.log".to_owned();
        store.put_process(&moved).unwrap();
        assert_eq!(store.processes(None).unwrap(), vec![moved]);
    }

    #[test]
    fn processes_sort_by_app_release_role_index_and_filter_by_app() {
        let store = Store::open_in_memory().unwrap();
        let order = [
            process("m6", "blog", "r1", "web", 1),
            process("m5", "shop", "r1", "mailer", 1),
            process("m4", "shop", "r1", "web", 1),
            process("m3", "shop", "r1", "web", 2),
            // Numeric, not text, order: 10 after 2.
            process("m2", "shop", "r1", "web", 10),
            process("m1", "shop", "r2", "web", 1),
        ];
        for record in order.iter().rev() {
            store.put_process(record).unwrap();
        }
        assert_eq!(store.processes(None).unwrap(), order);
        assert_eq!(store.processes(Some("shop")).unwrap(), order[1..]);
        assert_eq!(store.processes(Some("blog")).unwrap(), order[..1]);
        assert!(store.processes(Some("none")).unwrap().is_empty());
    }

    #[test]
    fn process_removal_reports_whether_there_was_one() {
        let store = Store::open_in_memory().unwrap();
        store
            .put_process(&process("m1", "shop", "r1", "web", 1))
            .unwrap();
        store
            .put_process(&process("m2", "shop", "r1", "web", 2))
            .unwrap();
        assert!(store.remove_process("m1").unwrap());
        assert!(!store.remove_process("m1").unwrap());
        let left: Vec<_> = store
            .processes(None)
            .unwrap()
            .into_iter()
            .map(|p| p.marker)
            .collect();
        assert_eq!(left, ["m2"]);
    }

    #[test]
    fn too_large_number_is_refused_and_nothing_changes() {
        let store = Store::open_in_memory().unwrap();
        let mut record = process("m1", "shop", "r1", "web", 1);
        record.stop_after_ms = Some(u64::MAX);
        let err = store.put_process(&record).unwrap_err();
        assert!(
            matches!(&err, StateError::RecordOutOfRange { field: "stop_after_ms", record, .. }
                if record.contains("\"m1\"")),
            "{err:?}"
        );
        assert!(store.processes(None).unwrap().is_empty());

        let mut record = deploy("shop");
        record.started_at_ms = u64::MAX;
        assert!(store.start_deploy(&record).is_err());
        assert!(store.deploys("shop", 10).unwrap().is_empty());
        assert!(store.interrupt_running_deploys("x", u64::MAX).is_err());
    }

    #[test]
    fn unreadable_number_is_reported_as_corrupt() {
        let store = Store::open_in_memory().unwrap();
        store
            .put_process(&process("m1", "shop", "r1", "web", 1))
            .unwrap();
        sql(&store, "UPDATE processes SET port = 70000");
        let err = store.processes(None).unwrap_err();
        assert!(
            matches!(&err, StateError::CorruptRecord { field: "port", record, .. }
                if record == r#"process "m1" of app "shop""#),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("70000 does not fit in a u16"),
            "{err}"
        );

        let id = store.start_deploy(&deploy("shop")).unwrap();
        sql(&store, "UPDATE deploys SET started_at_ms = -1");
        let err = store.running_deploys().unwrap_err();
        assert!(
            matches!(&err, StateError::CorruptRecord { field: "started_at_ms", record, .. }
                if *record == format!(r#"deploy {id} of app "shop""#)),
            "{err:?}"
        );
        // A failed decode inside the interrupting update rolls it back.
        assert!(store.interrupt_running_deploys("x", 1).is_err());
        let outcome: String = store
            .read(
                || "test".to_owned(),
                |tx| Ok(tx.query_row("SELECT outcome FROM deploys", [], |r| r.get(0))?),
            )
            .unwrap();
        assert_eq!(outcome, "running");
    }

    #[test]
    fn version_1_file_is_upgraded_keeping_its_services() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            // A file as a baton with only the routing schema left it.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(include_str!("migrations/0001_routing.sql"))
                .unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute_batch(
                "INSERT INTO services VALUES ('web', '[\"a.example.com\"]', '/', '{}', 1, 1); \
                 INSERT INTO versions VALUES ('web', 'stable', 'v1', 5); \
                 INSERT INTO targets VALUES ('web', 'stable', 0, '127.0.0.1:9000');",
            )
            .unwrap();
        }

        let store = Store::open(&path).unwrap();
        let version: u32 = store
            .read(
                || "test".to_owned(),
                |tx| Ok(tx.query_row("PRAGMA user_version", [], |r| r.get(0))?),
            )
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(SCHEMA_VERSION, 5);

        let service = store.service("web").unwrap().unwrap();
        assert_eq!(service.hosts, ["a.example.com"]);
        let active = service.active.unwrap();
        assert_eq!(active.label, "v1");
        assert_eq!(active.targets, ["127.0.0.1:9000"]);

        store.put_app(&app("shop")).unwrap();
        store.put_release(&release("shop", "r1", 1)).unwrap();
        let id = store.start_deploy(&deploy("shop")).unwrap();
        store
            .put_process(&process("m1", "shop", "r1", "web", 1))
            .unwrap();
        drop(store);

        let store = Store::open(&path).unwrap();
        assert_eq!(store.apps().unwrap(), vec![app("shop")]);
        assert_eq!(store.releases("shop").unwrap().len(), 1);
        assert_eq!(ids(&store.running_deploys().unwrap()), [id]);
        assert_eq!(store.processes(None).unwrap().len(), 1);
        assert_eq!(store.services().unwrap().len(), 1);
    }
}
