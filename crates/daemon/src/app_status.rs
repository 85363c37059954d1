//! `baton status`: an app's running rollout beside the proxy's own numbers
//! for each version in its route. Right after a restart the proxy's memory
//! is younger than five minutes: the 5-minute numbers then add what the
//! previous daemon counted, from the minute rollups it left in the store.

use std::collections::BTreeMap;
use std::time::Duration;

use baton_api::{AppInfo, AppStatus, RolloutStatus, TrafficSummary, VersionStatus};
use baton_telemetry::rollup::RollupSummary;
use baton_telemetry::{RequestStats, WindowSnapshot};
use tokio::time::Instant;

use crate::route_manager::RouteManager;

const MINUTE: Duration = Duration::from_secs(60);
/// The longer window of `baton status`.
pub const FIVE_MINUTES: Duration = Duration::from_secs(5 * 60);

/// The status of `info`'s app, whose progressive rollout (if one runs)
/// stands at `rollout`. `earlier` holds, per version, the rollups of the
/// last five minutes that an earlier daemon counted (requests this daemon
/// served are in the proxy's memory, never in both); `now_ms` is the wall
/// clock they are measured against.
pub fn build(
    info: AppInfo,
    rollout: Option<RolloutStatus>,
    routes: &RouteManager,
    earlier: &BTreeMap<String, RollupSummary>,
    now_ms: u64,
) -> AppStatus {
    // One instant for every window, so the rows compare like with like.
    let now = Instant::now().into_std();
    let versions = routes
        .versions(&info.name)
        .into_iter()
        .map(|routed| {
            let stats = routed.version.stats();
            let label = routed.version.label().to_string();
            let five = stats.snapshot(now, FIVE_MINUTES);
            let last_5_minutes = match earlier.get(&label) {
                Some(earlier) if earlier.requests > 0 => {
                    with_earlier(&five, stats, now, earlier, now_ms)
                }
                _ => TrafficSummary::from(&five),
            };
            VersionStatus {
                label,
                role: routed.role,
                weight_percent: Some(f64::from(routed.weight_bp) / 100.0),
                last_minute: TrafficSummary::from(&stats.snapshot(now, MINUTE)),
                last_5_minutes,
            }
        })
        .collect();
    AppStatus {
        app: info.name,
        current_release: info.current_release,
        running_deploy: info.running_deploy,
        rollout,
        versions,
        budget: None,
        last_deploy: None,
    }
}

/// The in-memory window `five` of `stats` with the `earlier` rollups added:
/// rates over the span from the first rollup's minute to now, quantiles
/// from the fixed buckets both share (within a bucket of the truth).
fn with_earlier(
    five: &WindowSnapshot,
    stats: &RequestStats,
    now: std::time::Instant,
    earlier: &RollupSummary,
    now_ms: u64,
) -> TrafficSummary {
    let requests = five.counts.requests.saturating_add(earlier.requests);
    let errors = five.counts.errors().saturating_add(earlier.errors);
    let mut latency = stats.window_latency_buckets(now, FIVE_MINUTES);
    latency.merge(&earlier.latency);
    let span_ms = earlier
        .first_minute_ms
        .map_or(five.window_ms, |first| now_ms.saturating_sub(first))
        .max(five.window_ms);
    TrafficSummary::from_buckets(requests, errors, &latency, span_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    use baton_telemetry::{LatencyBuckets, Outcome};

    #[test]
    fn the_window_after_a_restart_adds_what_the_last_daemon_counted() {
        let t0 = std::time::Instant::now();
        let stats = RequestStats::new(t0);
        for _ in 0..10 {
            stats.record(t0, Outcome::Status(200), Duration::from_millis(2));
        }
        let now = t0 + Duration::from_secs(30);
        let five = stats.snapshot(now, FIVE_MINUTES);
        assert_eq!(five.window_ms, 30_000);
        let mut latency = LatencyBuckets::default();
        latency.add(900_000, 90);
        let earlier = RollupSummary {
            first_minute_ms: Some(1_000_000),
            requests: 90,
            errors: 9,
            latency,
        };
        // Now is 3 minutes after the first earlier minute began.
        let summary = with_earlier(&five, &stats, now, &earlier, 1_180_000);
        assert_eq!(summary.requests, 100);
        assert!((summary.req_per_s - 100.0 / 180.0).abs() < 1e-9);
        assert!((summary.error_rate - 0.09).abs() < 1e-12);
        assert!(
            summary.p50_ms > 750.0 && summary.p50_ms <= 1000.0,
            "{summary:?}"
        );
        assert!(
            summary.p99_ms > 750.0 && summary.p99_ms <= 1000.0,
            "{summary:?}"
        );
    }
}
