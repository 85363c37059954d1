//! Versions that left an app's route (an aborted canary, the old version
//! after a promote), kept while the proxy's memory of their traffic lasts,
//! so the dashboard's live chart shows their line fall to zero and stay
//! there instead of vanishing the moment they leave.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// The versions seen in the routes last time, and those that have left
/// since, each with when it was noticed gone. Generic over the version type
/// so the bookkeeping is tested without a proxy.
#[derive(Debug)]
pub struct DepartedVersions<T> {
    seen: Vec<(String, Arc<T>)>,
    departed: Vec<(String, Arc<T>, Instant)>,
}

impl<T> Default for DepartedVersions<T> {
    fn default() -> Self {
        DepartedVersions {
            seen: Vec::new(),
            departed: Vec::new(),
        }
    }
}

impl<T> DepartedVersions<T> {
    /// Notes that the `live` (app, version) pairs are in the routes at
    /// `now`; a pair seen before and not now has departed. Returns the
    /// departed ones noticed within `keep`, each with its app. One that came
    /// back (the same version routed again) is live, not departed.
    pub fn update(
        &mut self,
        now: Instant,
        live: Vec<(String, Arc<T>)>,
        keep: Duration,
    ) -> Vec<(String, Arc<T>)> {
        let is_live = |version: &Arc<T>| live.iter().any(|(_, other)| Arc::ptr_eq(version, other));
        for (app, version) in self.seen.drain(..) {
            if !is_live(&version) {
                self.departed.push((app, version, now));
            }
        }
        self.departed
            .retain(|(_, version, left)| !is_live(version) && now.duration_since(*left) < keep);
        self.seen = live;
        self.departed
            .iter()
            .map(|(app, version, _)| (app.clone(), Arc::clone(version)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEEP: Duration = Duration::from_secs(600);

    fn version(label: &str) -> Arc<String> {
        Arc::new(label.to_string())
    }

    fn labels(departed: &[(String, Arc<String>)]) -> Vec<String> {
        departed
            .iter()
            .map(|(app, version)| format!("{app}/{version}"))
            .collect()
    }

    #[test]
    fn a_version_that_leaves_is_kept_for_a_while_then_forgotten() {
        let t0 = Instant::now();
        let (stable, canary) = (version("v1"), version("v2"));
        let mut versions = DepartedVersions::default();
        let both = vec![
            ("web".to_string(), Arc::clone(&stable)),
            ("web".to_string(), Arc::clone(&canary)),
        ];
        assert!(versions.update(t0, both, KEEP).is_empty());
        let only_stable = || vec![("web".to_string(), Arc::clone(&stable))];
        let departed = versions.update(t0 + Duration::from_secs(1), only_stable(), KEEP);
        assert_eq!(labels(&departed), ["web/v2"]);
        let departed = versions.update(t0 + Duration::from_secs(600), only_stable(), KEEP);
        assert_eq!(labels(&departed), ["web/v2"]);
        let departed = versions.update(t0 + Duration::from_secs(602), only_stable(), KEEP);
        assert!(departed.is_empty());
    }

    #[test]
    fn a_version_routed_again_is_live_not_departed() {
        let t0 = Instant::now();
        let routed = version("v1");
        let mut versions = DepartedVersions::default();
        let live = || vec![("web".to_string(), Arc::clone(&routed))];
        versions.update(t0, live(), KEEP);
        assert_eq!(versions.update(t0, Vec::new(), KEEP).len(), 1);
        assert!(versions.update(t0, live(), KEEP).is_empty());
    }

    #[test]
    fn an_equal_but_different_version_is_another_one() {
        let t0 = Instant::now();
        let mut versions = DepartedVersions::default();
        versions.update(t0, vec![("web".to_string(), version("v1"))], KEEP);
        let departed = versions.update(t0, vec![("web".to_string(), version("v1"))], KEEP);
        assert_eq!(labels(&departed), ["web/v1"]);
    }
}
