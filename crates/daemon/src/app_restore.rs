//! A daemon start after a stop or a crash: adopt the app processes that
//! still run, finish or undo what an interrupted deploy left, and restart
//! what is missing, so exactly one release per app serves and no process
//! is left without a supervisor.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use baton_api::AppConfig;
use baton_release::AppRoot;
use baton_state::{DeployRecord, ProcessRecord};
use nix::sys::signal::Signal;

use crate::app_host::{AppHost, blocking};
use crate::app_run::{free_port, spawn_slot, stop_in_background, stop_when_cold};
use crate::process_spec::{self, Slot, WEB};
use crate::process_table::unix_ms;

/// What a restore did, for the log.
#[derive(Debug, Default)]
pub struct RestoreReport {
    /// Deploys the stop interrupted.
    pub interrupted: usize,
    /// Processes taken over.
    pub adopted: usize,
    /// Processes started again (gone, or never recorded).
    pub restarted: usize,
    /// Processes of no live release, stopped.
    pub stopped: usize,
}

/// Repairs every app. `live` maps each app's service to the release the
/// proxy routes to (the route is saved at the switch, so it is the truth).
pub async fn restore(host: &Arc<AppHost>, live: &HashMap<String, String>) -> RestoreReport {
    let mut report = RestoreReport::default();
    let now = unix_ms(SystemTime::now());
    let interrupted = match host
        .on_store(move |store| {
            store.interrupt_running_deploys(
                "the daemon stopped during this run; the next start repaired the state",
                now,
            )
        })
        .await
    {
        Ok(interrupted) => interrupted,
        Err(error) => {
            tracing::error!(%error, "Cannot mark interrupted deploys");
            Vec::new()
        }
    };
    report.interrupted = interrupted.len();
    let apps = match host.on_store(|store| store.apps()).await {
        Ok(apps) => apps,
        Err(error) => {
            tracing::error!(%error, "Cannot read apps; their processes are not restored");
            return report;
        }
    };
    let records = host
        .on_store(|store| store.processes(None))
        .await
        .unwrap_or_default();
    let mut configs: HashMap<(String, String), Option<AppConfig>> = HashMap::new();
    let mut live_releases: HashMap<String, String> = HashMap::new();
    // A web slot restarted after its process vanished keeps its port, so
    // the saved route still points at it.
    let mut lost_ports: HashMap<(String, String, u32), u16> = HashMap::new();

    for app in &apps {
        let serving = live.get(&app.name).cloned().or(app.current_release.clone());
        let Some(serving) = serving else { continue };
        // Killed between the traffic switch and the `current` switch: the
        // route is what clients see, so `current` follows it.
        if app.current_release.as_deref() != Some(serving.as_str())
            && let Some(config) = host.release_config(&app.name, &serving).await
        {
            let root = AppRoot::new(&config.app.root);
            let id = serving.clone();
            let switched =
                blocking(move || root.switch_current(&id).map_err(|error| error.to_string())).await;
            let (name, id) = (app.name.clone(), serving.clone());
            let saved = host
                .on_store(move |store| store.set_current_release(&name, Some(&id), now))
                .await;
            if let Err(error) = switched.and(saved) {
                tracing::error!(app = app.name, %error, "Cannot finish the interrupted switch");
            }
        }
        live_releases.insert(app.name.clone(), serving);
    }
    for deploy in &interrupted {
        stop_run_leftovers(&process_spec::run_marker(&deploy.app, deploy.id));
        record_went_live(host, deploy.clone(), &live_releases).await;
    }

    for record in records {
        let key = (record.app.clone(), record.release.clone());
        if !configs.contains_key(&key) {
            let config = host.release_config(&record.app, &record.release).await;
            configs.insert(key.clone(), config);
        }
        let config = configs.get(&key).cloned().flatten();
        let is_live = live_releases.get(&record.app) == Some(&record.release);
        let slot = (record.app.clone(), record.role.clone(), record.index);
        let port = record.port;
        if !restore_one(host, record, config.as_ref(), is_live, now, &mut report).await
            && is_live
            && let Some(port) = port
        {
            lost_ports.insert(slot, port);
        }
    }

    // Every slot of every live release runs, whatever happened before.
    for (app, release) in &live_releases {
        let Some(config) = host.release_config(app, release).await else {
            continue;
        };
        let running = host.processes.select(app, Some(release), None);
        let has = |role: &str, index: u32| {
            running
                .iter()
                .any(|entry| entry.record.role == role && entry.record.index == index)
        };
        for index in 1..=config.web.processes.get() {
            if !has(WEB, index) {
                let port = lost_ports
                    .get(&(app.clone(), WEB.to_string(), index))
                    .copied();
                restart(host, &config, release, WEB, index, port, &mut report).await;
            }
        }
        for worker in &config.workers {
            for index in 1..=worker.processes.get() {
                if !has(worker.name.as_str(), index) {
                    restart(
                        host,
                        &config,
                        release,
                        worker.name.as_str(),
                        index,
                        None,
                        &mut report,
                    )
                    .await;
                }
            }
        }
    }
    for deploy in &interrupted {
        forget_unserved_releases(host, deploy, &live_releases).await;
    }
    for app in &apps {
        if let Ok(config) = serde_json::from_str::<AppConfig>(&app.config_json) {
            let root = AppRoot::new(&config.app.root);
            let _ = blocking(move || root.remove_incomplete().map_err(|e| e.to_string())).await;
        }
    }
    host.processes.flush().await;
    report
}

/// Build steps and hooks of an interrupted run are nobody's children any
/// more: find them by the marker they carry and stop their groups.
fn stop_run_leftovers(marker: &str) {
    // Each round finds one group; a bound keeps a process that cannot be
    // killed from holding the start up.
    for _ in 0..64 {
        let Some((pid, _)) = baton_supervisor::find_by_marker(marker) else {
            return;
        };
        tracing::info!(
            pid,
            marker,
            "Stopping a build step or hook of an interrupted run"
        );
        let _ = baton_supervisor::kill_group(pid, Signal::SIGKILL);
        if let Ok(raw) = i32::try_from(pid) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An interrupted deploy that never went live may have staged a release:
/// it never served, so it is no release to roll back to. Its record goes
/// now; its directory once its processes (being stopped) are gone.
async fn forget_unserved_releases(
    host: &Arc<AppHost>,
    deploy: &DeployRecord,
    live_releases: &HashMap<String, String>,
) {
    if deploy.kind != "deploy" {
        return;
    }
    let serving = live_releases.get(&deploy.app).cloned();
    let app = deploy.app.clone();
    let releases = host
        .on_store(move |store| store.releases(&app))
        .await
        .unwrap_or_default();
    for release in releases {
        let unserved = release.created_at_ms >= deploy.started_at_ms
            && Some(&release.id) != serving.as_ref()
            && release.id != deploy.release;
        if !unserved {
            continue;
        }
        let (app, id) = (release.app.clone(), release.id.clone());
        let _ = host
            .on_store(move |store| store.remove_release(&app, &id))
            .await;
        let Ok(config) = serde_json::from_str::<AppConfig>(&release.config_json) else {
            continue;
        };
        let host = Arc::clone(host);
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(3600);
            while !host
                .processes
                .select(&release.app, Some(&release.id), None)
                .is_empty()
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let root = AppRoot::new(&config.app.root);
            let id = release.id.clone();
            let removed =
                blocking(move || root.remove_release(&id).map_err(|e| e.to_string())).await;
            if let Err(error) = removed {
                tracing::warn!(release = release.id, %error, "Cannot delete an unserved release");
            }
        });
    }
}

/// A deploy (or rollback) cut after its traffic switch left its release
/// serving, but the end of the run, which records the release id and the
/// app's new config, never came: record them, so history names what serves
/// and `rollback` can return from it.
async fn record_went_live(
    host: &Arc<AppHost>,
    mut deploy: DeployRecord,
    live_releases: &HashMap<String, String>,
) {
    let Some(serving) = live_releases.get(&deploy.app).cloned() else {
        return;
    };
    let went_live = (deploy.release.is_empty() || deploy.release == serving)
        && deploy.previous_release.as_ref() != Some(&serving);
    if !went_live {
        return;
    }
    let config_json = host
        .release_config(&deploy.app, &serving)
        .await
        .and_then(|config| serde_json::to_string(&config).ok());
    deploy.release = serving;
    let saved = host
        .on_store(move |store| {
            store.update_deploy(&deploy)?;
            if let Some(config_json) = config_json
                && let Some(mut app) = store.app(&deploy.app)?
            {
                app.config_json = config_json;
                store.put_app(&app)?;
            }
            Ok(())
        })
        .await;
    if let Err(error) = saved {
        tracing::error!(%error, "Cannot record the release an interrupted deploy made live");
    }
}

/// Adopts, or stops, one recorded process; false when it is gone.
async fn restore_one(
    host: &Arc<AppHost>,
    record: ProcessRecord,
    config: Option<&AppConfig>,
    is_live: bool,
    now: u64,
    report: &mut RestoreReport,
) -> bool {
    let marker = record.marker.clone();
    // A process whose pid never reached the store: find it by its marker.
    let identity = match (record.pid, record.start_time) {
        (Some(pid), Some(start_time)) if baton_supervisor::is_alive(pid, start_time) => {
            Some((pid, start_time))
        }
        (Some(_), Some(_)) => None,
        _ => baton_supervisor::find_by_marker(&marker),
    };
    let warm_until = record.stop_after_ms.filter(|until| *until > now);
    let wanted =
        is_live || (record.state == "warm" && warm_until.is_some()) || record.state == "stopping";
    let Some((pid, start_time)) = identity else {
        host.processes.forget(&marker);
        let _ = host
            .on_store(move |store| store.remove_process(&marker))
            .await;
        return false;
    };
    let spec = config.and_then(|config| {
        let slot = Slot {
            config,
            release: &record.release,
            role: &record.role,
            index: record.index,
            port: record.port,
            marker: &marker,
        };
        process_spec::spec(&slot, &host.logs_dir, host.rotation).ok()
    });
    let Some(spec) = spec else {
        // Nothing to restart it from: it cannot be supervised, so it stops.
        let _ = baton_supervisor::kill_group(pid, Signal::SIGTERM);
        host.processes.forget(&marker);
        let _ = host
            .on_store(move |store| store.remove_process(&marker))
            .await;
        report.stopped += 1;
        return true;
    };
    let adopted = ProcessRecord {
        pid: Some(pid),
        start_time: Some(start_time),
        ..record.clone()
    };
    let Some(entry) = host.processes.adopt(adopted, spec) else {
        host.processes.forget(&marker);
        return false;
    };
    report.adopted += 1;
    if wanted && is_live {
        if record.state != "running" {
            host.processes.set_state(&marker, "running", None);
        }
    } else if wanted && record.state == "warm" {
        let left = warm_until.map_or(Duration::ZERO, |until| {
            Duration::from_millis(until.saturating_sub(now))
        });
        stop_when_cold(host, vec![entry.record.marker.clone()], left);
    } else {
        // An interrupted deploy's new processes, or old ones that were
        // already stopping: they get their stop signal and stop timeout.
        stop_in_background(host, &marker);
        report.stopped += 1;
    }
    true
}

async fn restart(
    host: &Arc<AppHost>,
    config: &AppConfig,
    release: &str,
    role: &str,
    index: u32,
    port: Option<u16>,
    report: &mut RestoreReport,
) {
    let port = match (role == WEB, port) {
        (false, _) => None,
        (true, Some(port)) => Some(port),
        (true, None) => match free_port() {
            Ok(port) => Some(port),
            Err(error) => {
                tracing::error!(%error, "Cannot restart a process of the live release");
                return;
            }
        },
    };
    match spawn_slot(host, config, release, role, index, port).await {
        Ok(_) => report.restarted += 1,
        Err(error) => tracing::error!(%error, "Cannot restart a process of the live release"),
    }
}
