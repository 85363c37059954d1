//! Versions that left the route, remembered for a while so that their
//! counters on `/metrics` do not vanish or go backwards the moment a deploy
//! or rollback replaces them: a scrape just after the swap still sees the
//! old version's final totals, and `increase()` over the swap stays right.

use std::sync::Arc;
use std::time::Duration;

use baton_proxy::Version;
use baton_telemetry::exposition::{TargetSeries, VersionSeries};
use tokio::time::Instant;

/// How long a retired version's final counters stay exposed: long enough
/// for any scrape interval and for rate windows over the swap.
pub const KEEP_RETIRED: Duration = Duration::from_secs(3600);

/// The versions the last scrape saw, and the final counters of those that
/// have left since, each with when it was noticed gone.
#[derive(Debug, Default)]
pub struct RetiredVersions {
    seen: Vec<(String, Arc<Version>)>,
    retired: Vec<Retired>,
}

#[derive(Debug)]
struct Retired {
    noticed: Instant,
    version: VersionSeries,
    targets: Vec<TargetSeries>,
}

impl RetiredVersions {
    /// Notes that `live` (app, version) pairs carry traffic now. A version
    /// seen last time and not now has left: it no longer records anything,
    /// so its counters read now are final, and are kept for
    /// [`KEEP_RETIRED`]. Returns the counters of every version kept.
    pub fn update(
        &mut self,
        now: Instant,
        live: &[(String, Arc<Version>)],
    ) -> (Vec<VersionSeries>, Vec<TargetSeries>) {
        let seen = std::mem::replace(&mut self.seen, live.to_vec());
        for (app, version) in seen {
            if !live.iter().any(|(_, other)| Arc::ptr_eq(other, &version)) {
                let (version, targets) = counters(&app, &version);
                self.retired.push(Retired {
                    noticed: now,
                    version,
                    targets,
                });
            }
        }
        self.retired
            .retain(|retired| now.saturating_duration_since(retired.noticed) < KEEP_RETIRED);
        let versions = self.retired.iter().map(|r| r.version.clone()).collect();
        let targets = self
            .retired
            .iter()
            .flat_map(|r| r.targets.iter().cloned())
            .collect();
        (versions, targets)
    }
}

/// `version`'s counters as `/metrics` shows them, gauges left out (they
/// are `None`: a caller with a live version fills them in).
pub fn counters(app: &str, version: &Version) -> (VersionSeries, Vec<TargetSeries>) {
    let stats = version.stats();
    let series = VersionSeries {
        app: app.to_string(),
        version: version.label().to_string(),
        totals: stats.totals(),
        latency: stats.latency_buckets(),
        in_flight: None,
        weight_ratio: None,
    };
    let targets = version
        .targets()
        .iter()
        .map(|target| TargetSeries {
            app: app.to_string(),
            version: version.label().to_string(),
            target: target.address().to_string(),
            healthy: None,
            connect_errors: target.pool().connect_errors(),
        })
        .collect();
    (series, targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    use baton_proxy::{LoadBalancer, Target};
    use baton_telemetry::Outcome;

    fn version(label: &str, requests: u64) -> Arc<Version> {
        let address: std::net::SocketAddr = ([127, 0, 0, 1], 4000).into();
        let target = Arc::new(Target::new(address.to_string(), address));
        let version = Arc::new(Version::new(
            label.to_string(),
            vec![target],
            LoadBalancer::default(),
        ));
        for _ in 0..requests {
            version.stats().record(
                std::time::Instant::now(),
                Outcome::Status(200),
                Duration::from_millis(1),
            );
        }
        version
    }

    #[tokio::test(start_paused = true)]
    async fn a_version_that_left_keeps_its_final_counters_for_an_hour() {
        let mut retired = RetiredVersions::default();
        let (v1, v2) = (version("v1", 5), version("v2", 0));
        let start = Instant::now();
        let live = |versions: &[&Arc<Version>]| -> Vec<(String, Arc<Version>)> {
            versions
                .iter()
                .map(|v| ("web".to_string(), Arc::clone(v)))
                .collect()
        };

        let (kept, _) = retired.update(start, &live(&[&v1]));
        assert!(kept.is_empty());

        // v1 served two more requests, then v2 replaced it.
        for _ in 0..2 {
            v1.stats().record(
                std::time::Instant::now(),
                Outcome::Status(503),
                Duration::from_millis(1),
            );
        }
        let (kept, targets) = retired.update(start + Duration::from_secs(15), &live(&[&v2]));
        assert_eq!(kept.len(), 1);
        assert_eq!(
            (kept[0].version.as_str(), kept[0].totals.requests),
            ("v1", 7)
        );
        assert_eq!(kept[0].totals.status_5xx, 2);
        assert_eq!((kept[0].in_flight, kept[0].weight_ratio), (None, None));
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].healthy, None);

        let (kept, _) = retired.update(start + Duration::from_secs(3000), &live(&[&v2]));
        assert_eq!(kept.len(), 1);
        let (kept, targets) = retired.update(start + Duration::from_secs(3615), &live(&[&v2]));
        assert!(kept.is_empty() && targets.is_empty());
    }
}
