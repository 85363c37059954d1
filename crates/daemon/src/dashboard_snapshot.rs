//! What the dashboard shows, read in one go: every app's status (versions,
//! weights, rollout, error budget), its charts and markers, history,
//! releases and processes, and the flags. The answers are the ones the
//! control API gives (`AppManager`, `FlagService`); only the charts are
//! read here, from the stored rollups and the routes' live numbers.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use baton_api::{AppStatus, DeployEvent, FlagList, HistoryEntry, ProcessInfo, ReleaseInfo};
use baton_proxy::Version;
use baton_telemetry::rollup::{MinuteRollup, minute_start};
use baton_telemetry::{RETENTION, SLICE};
use serde::Serialize;
use tokio::time::Instant;

use crate::app_manager::{AppError, AppManager};
use crate::dashboard_series::{self, Marker, Series};
use crate::departed_versions::DepartedVersions;
use crate::flag_service::FlagService;
use crate::process_table::unix_ms;
use crate::rollup_history;

/// How far back the per-minute charts reach.
pub const CHART_SPAN: Duration = Duration::from_secs(60 * 60);

/// How many runs of each app's history the dashboard lists.
pub const HISTORY_ROWS: usize = 20;

/// Everything the dashboard shows at one moment.
#[derive(Debug, Serialize)]
pub struct DashboardSnapshot {
    /// When it was read, Unix ms: the charts' right edge.
    pub now_ms: u64,
    /// Every app.
    pub apps: Vec<AppView>,
    /// Every flag.
    pub flags: FlagList,
}

/// One app as the dashboard shows it.
#[derive(Debug, Serialize)]
pub struct AppView {
    /// Versions with their weights and numbers, the running rollout, the
    /// error budget: what `baton status` shows.
    pub status: AppStatus,
    /// A point a minute over [`CHART_SPAN`].
    pub minutes: Series,
    /// A point per 5-second slice over the proxy's memory (10 minutes).
    pub live: Series,
    /// Deploys and rollbacks over [`CHART_SPAN`].
    pub markers: Vec<Marker>,
    /// The latest runs, newest first, with their stage timings.
    pub history: Vec<HistoryEntry>,
    /// Its releases on disk.
    pub releases: Vec<ReleaseInfo>,
    /// Its processes.
    pub processes: Vec<ProcessInfo>,
}

impl DashboardSnapshot {
    /// Whether a deploy or rollback runs on any app: the page then wants
    /// fresh numbers every second.
    pub fn busy(&self) -> bool {
        self.apps
            .iter()
            .any(|app| app.status.running_deploy.is_some() || app.status.rollout.is_some())
    }
}

/// Reads the dashboard's snapshot now. `departed` remembers the versions
/// that left a route, so the live chart keeps their line.
pub async fn read(
    apps: &AppManager,
    flags: &FlagService,
    departed: &Mutex<DepartedVersions<Version>>,
) -> Result<DashboardSnapshot, AppError> {
    let now_ms = unix_ms(SystemTime::now());
    let routed = apps
        .host()
        .routes
        .every_version()
        .into_iter()
        .map(|(app, routed)| (app, routed.version))
        .collect();
    let departed = departed
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .update(Instant::now(), routed, RETENTION);
    let mut views = Vec::new();
    for info in apps.apps().await? {
        let name = info.name;
        let history = apps.history(&name, HISTORY_ROWS).await?;
        let chart_from = minute_start(now_ms.saturating_sub(span_ms(CHART_SPAN)));
        views.push(AppView {
            status: apps.status(&name).await?,
            minutes: minute_chart(apps, &name, chart_from, now_ms).await,
            live: live_chart(apps, &name, &departed, now_ms),
            markers: dashboard_series::markers(&history, chart_from),
            history,
            releases: apps.releases(&name).await?,
            processes: apps.processes(Some(&name)),
        });
    }
    Ok(DashboardSnapshot {
        now_ms,
        apps: views,
        flags: flags.list(),
    })
}

/// The stored minutes of `app` from `from_ms` on, with the minute so far
/// from the routes' memory (the rollup writer stores it once it is over).
async fn minute_chart(apps: &AppManager, app: &str, from_ms: u64, now_ms: u64) -> Series {
    let host = apps.host();
    let name = app.to_string();
    let mut rollups = host
        .on_store(move |store| rollup_history::read_minutes(store, &name, from_ms))
        .await
        .unwrap_or_else(|error| {
            tracing::warn!(app, %error, "Reading the minute rollups failed");
            Vec::new()
        });
    let this_minute = minute_start(now_ms);
    let since = Duration::from_millis(now_ms - this_minute);
    let now = Instant::now().into_std();
    for routed in host.routes.versions(app) {
        let stats = routed.version.stats();
        let counts = stats.snapshot(now, since).counts;
        if counts.requests == 0 {
            continue;
        }
        rollups.push((
            routed.version.label().to_string(),
            MinuteRollup {
                minute_ms: this_minute,
                until_ms: now_ms,
                requests: counts.requests,
                errors: counts.errors(),
                latency: stats.window_latency_buckets(now, since),
            },
        ));
    }
    dashboard_series::minute_series(rollups, from_ms, now_ms)
}

/// Each of `app`'s versions in its route, and those `departed` from it
/// (unless the same label is routed again), slice by slice over the
/// proxy's memory.
fn live_chart(
    apps: &AppManager,
    app: &str,
    departed: &[(String, Arc<Version>)],
    now_ms: u64,
) -> Series {
    let now = Instant::now().into_std();
    let mut versions: Vec<Arc<Version>> = apps
        .host()
        .routes
        .versions(app)
        .into_iter()
        .map(|routed| routed.version)
        .collect();
    for (departed_app, version) in departed {
        if departed_app == app && !versions.iter().any(|v| v.label() == version.label()) {
            versions.push(Arc::clone(version));
        }
    }
    let versions = versions.into_iter().map(|version| {
        let stats = version.stats();
        // The wall clock of the stats' creation: slices count from it.
        let created_ms =
            now_ms.saturating_sub(span_ms(now.saturating_duration_since(stats.created())));
        let slices = stats
            .slice_snapshots(now, RETENTION)
            .into_iter()
            .map(|(start, snapshot)| (created_ms.saturating_add(span_ms(start)), snapshot))
            .collect();
        (version.label().to_string(), slices)
    });
    dashboard_series::slice_series(versions, span_ms(SLICE))
}

/// The events of run `id` of `app` worth showing beside its history row:
/// its stages, the rollout's decisions with their evidence, warnings and
/// how it ended (build output is left to `baton history --deploy`).
pub async fn run_events(
    apps: &AppManager,
    app: &str,
    id: i64,
) -> Result<Vec<DeployEvent>, AppError> {
    // The name goes into a path: only a known app's is used.
    apps.app(app).await?;
    let path = apps.deploy_log(app, id);
    let text = tokio::fs::read_to_string(&path).await.map_err(|_| {
        AppError::NotFound(format!(
            "no record of run {id} of {app}; the history lists the runs"
        ))
    })?;
    Ok(text
        .lines()
        .filter_map(|line| serde_json::from_str::<DeployEvent>(line).ok())
        .filter(|event| match event {
            DeployEvent::Output { stage, .. } => stage == "rollout",
            _ => true,
        })
        .collect())
}

fn span_ms(span: Duration) -> u64 {
    u64::try_from(span.as_millis()).unwrap_or(u64::MAX)
}
