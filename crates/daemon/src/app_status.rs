//! `baton status`: an app's running rollout beside the proxy's own numbers
//! for each version in its route.

use std::time::Duration;

use baton_api::{AppInfo, AppStatus, RolloutStatus, TrafficSummary, VersionStatus};
use tokio::time::Instant;

use crate::route_manager::RouteManager;

const MINUTE: Duration = Duration::from_secs(60);
const FIVE_MINUTES: Duration = Duration::from_secs(5 * 60);

/// The status of `info`'s app, whose progressive rollout (if one runs)
/// stands at `rollout`.
pub fn build(info: AppInfo, rollout: Option<RolloutStatus>, routes: &RouteManager) -> AppStatus {
    // One instant for every window, so the rows compare like with like.
    let now = Instant::now().into_std();
    let versions = routes
        .versions(&info.name)
        .into_iter()
        .map(|routed| {
            let stats = routed.version.stats();
            VersionStatus {
                label: routed.version.label().to_string(),
                role: routed.role,
                weight_percent: Some(f64::from(routed.weight_bp) / 100.0),
                last_minute: TrafficSummary::from(&stats.snapshot(now, MINUTE)),
                last_5_minutes: TrafficSummary::from(&stats.snapshot(now, FIVE_MINUTES)),
            }
        })
        .collect();
    AppStatus {
        app: info.name,
        current_release: info.current_release,
        running_deploy: info.running_deploy,
        rollout,
        versions,
    }
}
