//! `/metrics`: what the daemon knows, gathered at each scrape and rendered
//! once, here, for both places that serve it: `GET /metrics` on the admin
//! listener (behind its token) and `GET /v1/metrics` on the control socket
//! (`baton metrics`).
//!
//! Every number is read from counters kept anyway (the proxy's per-version
//! stats, the targets' pools, the deploy tally, /proc); a scrape records
//! nothing and touches no request's path.

use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use baton_api::ProcessInfo;
use baton_proxy::FULL_WEIGHT;
use baton_telemetry::exposition::{self, Exposition, ProcessSeries, TargetSeries, VersionSeries};
use tokio::time::Instant;

use crate::deploy_tally::DeployTally;
use crate::flag_service::FlagService;
use crate::process_table::ProcessTable;
use crate::retired_versions::{RetiredVersions, counters};
use crate::route_manager::RouteManager;

/// The `role` label of the daemon's own process metrics.
const DAEMON_ROLE: &str = "daemon";

/// The sources of `/metrics`.
pub struct MetricsEndpoint {
    routes: Arc<RouteManager>,
    processes: Arc<ProcessTable>,
    deploys: Arc<DeployTally>,
    flags: Arc<FlagService>,
    retired: Mutex<RetiredVersions>,
}

impl MetricsEndpoint {
    /// An endpoint over the daemon's routes, processes, deploy tally and
    /// flags.
    pub fn new(
        routes: Arc<RouteManager>,
        processes: Arc<ProcessTable>,
        deploys: Arc<DeployTally>,
        flags: Arc<FlagService>,
    ) -> Self {
        MetricsEndpoint {
            routes,
            processes,
            deploys,
            flags,
            retired: Mutex::default(),
        }
    }

    /// Everything, as OpenMetrics text.
    pub fn render(&self) -> String {
        let mut exposition = Exposition::default();
        self.expose_traffic(&mut exposition);
        self.deploys.expose(&mut exposition);
        exposition.processes = processes(&self.processes.list(None));
        exposition.flag_evaluations = self.flags.evaluations();
        exposition::render(exposition)
    }

    /// The versions in the routes (and those retired within the hour) with
    /// their targets.
    fn expose_traffic(&self, exposition: &mut Exposition) {
        let live = self.routes.every_version();
        let mut versions = Vec::with_capacity(live.len());
        let mut targets = Vec::new();
        for (app, routed) in &live {
            let (mut series, version_targets) = counters(app, &routed.version);
            series.in_flight = Some(routed.version.in_flight());
            // A draining version takes no new requests: no share to show.
            if routed.role != baton_api::StatusRole::Draining {
                series.weight_ratio = Some(f64::from(routed.weight_bp) / f64::from(FULL_WEIGHT));
            }
            versions.push(series);
            for (mut target, live_target) in
                version_targets.into_iter().zip(routed.version.targets())
            {
                target.healthy = Some(live_target.is_healthy());
                targets.push(target);
            }
        }
        let live: Vec<_> = live
            .into_iter()
            .map(|(app, routed)| (app, routed.version))
            .collect();
        // A panic mid-update leaves at worst a version remembered twice.
        let (retired_versions, retired_targets) = self
            .retired
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .update(Instant::now(), &live);
        versions.extend(retired_versions);
        targets.extend(retired_targets);
        exposition.versions = merged(versions, VersionSeries::same_series, VersionSeries::merge);
        exposition.targets = merged(targets, TargetSeries::same_series, TargetSeries::merge);
        exposition
            .versions
            .sort_by(|a, b| (&a.app, &a.version).cmp(&(&b.app, &b.version)));
        exposition
            .targets
            .sort_by(|a, b| (&a.app, &a.version, &a.target).cmp(&(&b.app, &b.version, &b.target)));
    }
}

/// `series` with the ones of one label set merged into the first of them:
/// a label set must appear once in an exposition.
fn merged<T>(series: Vec<T>, same: impl Fn(&T, &T) -> bool, merge: impl Fn(&mut T, &T)) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(series.len());
    for one in series {
        match out.iter_mut().find(|kept| same(kept, &one)) {
            Some(kept) => merge(kept, &one),
            None => out.push(one),
        }
    }
    out
}

/// CPU and memory of the daemon itself and of every supervised process,
/// read from /proc: `listed` already carries the RSS `baton ps` shows.
fn processes(listed: &[ProcessInfo]) -> Vec<ProcessSeries> {
    let own = std::process::id();
    let daemon = ProcessSeries {
        app: String::new(),
        role: DAEMON_ROLE.to_string(),
        index: 1,
        version: String::new(),
        cpu_seconds: baton_supervisor::cpu_seconds(own).unwrap_or(0.0),
        resident_memory_bytes: baton_supervisor::rss_bytes(own).unwrap_or(0),
    };
    // A process between incarnations (pid 0) has no CPU or memory to show.
    let apps = listed
        .iter()
        .filter(|process| process.pid != 0)
        .map(|process| ProcessSeries {
            app: process.app.clone(),
            role: process.role.clone(),
            index: process.index,
            version: process.release.clone(),
            cpu_seconds: baton_supervisor::cpu_seconds(process.pid).unwrap_or(0.0),
            resident_memory_bytes: process.rss_bytes,
        });
    let mut series: Vec<ProcessSeries> = std::iter::once(daemon).chain(apps).collect();
    // Two records for one slot (a restart being recorded) would repeat a
    // label set; keep the first.
    series.dedup_by(|b, a| {
        (&a.app, &a.role, a.index, &a.version) == (&b.app, &b.role, b.index, &b.version)
    });
    series
}

/// `GET path` answering with the exposition.
pub fn router(endpoint: Arc<MetricsEndpoint>, path: &str) -> Router {
    Router::new().route(path, get(serve)).with_state(endpoint)
}

async fn serve(State(endpoint): State<Arc<MetricsEndpoint>>) -> Response {
    (
        [(header::CONTENT_TYPE, exposition::CONTENT_TYPE)],
        endpoint.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(app: &str, role: &str, index: u32, pid: u32) -> ProcessInfo {
        ProcessInfo {
            app: app.to_string(),
            role: role.to_string(),
            index,
            release: "r1".to_string(),
            pid,
            port: None,
            started_at_ms: 0,
            restarts: 0,
            rss_bytes: 4096,
            state: "running".to_string(),
            log_file: std::path::PathBuf::new(),
        }
    }

    #[test]
    fn the_daemon_and_each_running_process() {
        let own = std::process::id();
        let series = processes(&[
            process("web", "web", 1, own),
            process("web", "web", 2, 0),
            process("web", "worker", 1, own),
        ]);
        let labels: Vec<(&str, &str, u32)> = series
            .iter()
            .map(|s| (s.app.as_str(), s.role.as_str(), s.index))
            .collect();
        assert_eq!(
            labels,
            [("", "daemon", 1), ("web", "web", 1), ("web", "worker", 1)]
        );
        assert!(series[0].cpu_seconds >= 0.0);
        assert!(series[0].resident_memory_bytes >= 4096);
        assert_eq!(series[1].resident_memory_bytes, 4096);
    }

    #[test]
    fn one_label_set_is_exposed_once() {
        let kept = merged(
            vec![(1, 10), (2, 20), (1, 5)],
            |a: &(u8, u32), b: &(u8, u32)| a.0 == b.0,
            |a, b| a.1 += b.1,
        );
        assert_eq!(kept, [(1, 15), (2, 20)]);
    }
}
