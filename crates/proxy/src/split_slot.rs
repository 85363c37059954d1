//! A service's live split: swapped in one atomic step by the rollout, read
//! without a lock by every request, and kept across route-table swaps.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;
use http::{HeaderMap, Method};

use crate::shadow::Shadow;
use crate::split::{FULL_WEIGHT, Side, Split, choose, takes_candidate};
use crate::version::Version;

/// The split in force for one service, if any.
#[derive(Debug, Default)]
pub struct SplitSlot {
    current: ArcSwapOption<Split>,
    // Numbers the requests the weight places. One sequence per service,
    // continued across weight changes, so every run of requests is spread
    // evenly whatever came before it.
    tickets: AtomicU64,
    // The same for the requests the shadow share places.
    mirror_tickets: AtomicU64,
}

/// The version a request goes to.
pub(crate) struct Routed {
    /// The version.
    pub version: Arc<Version>,
    /// Whether the response sets the sticky cookie naming it.
    pub pin: bool,
    /// The candidate a copy of the request goes to, when the split
    /// shadows and this request is one of its share.
    pub mirror: Option<Arc<Version>>,
}

impl SplitSlot {
    /// The split in force.
    pub fn get(&self) -> Option<Arc<Split>> {
        self.current.load_full()
    }

    /// The version for a request with `method` and `headers`, `stable`
    /// being the service's active version.
    pub(crate) fn route(
        &self,
        stable: &Arc<Version>,
        method: &Method,
        headers: &HeaderMap,
    ) -> Routed {
        let current = self.current.load();
        let Some(split) = current.as_ref() else {
            return Routed {
                version: Arc::clone(stable),
                pin: false,
                mirror: None,
            };
        };
        let choice = choose(split, stable, headers, || {
            self.tickets.fetch_add(1, Ordering::Relaxed)
        });
        let (version, mirror) = match choice.side {
            Side::Stable => (Arc::clone(stable), self.mirror_to(split, method)),
            // A request the candidate serves itself has nothing to compare.
            Side::Candidate => (Arc::clone(&split.candidate), None),
        };
        Routed {
            version,
            pin: choice.pin,
            mirror,
        }
    }

    /// The candidate, if a request with `method` that stable serves is one
    /// the shadow share copies.
    fn mirror_to(&self, split: &Split, method: &Method) -> Option<Arc<Version>> {
        let shadow = split.shadow.as_ref()?;
        if !shadow.mirrors(method) {
            return None;
        }
        let ticket = self.mirror_tickets.fetch_add(1, Ordering::Relaxed);
        takes_candidate(ticket, shadow.share_bp).then(|| Arc::clone(&split.candidate))
    }

    /// Puts `split` in force (`None` ends it) and returns the candidate that
    /// left: the previous one, unless it is still the candidate or is
    /// `active` (promoted).
    pub(crate) fn replace(
        &self,
        split: Option<Split>,
        active: &Arc<Version>,
    ) -> Option<Arc<Version>> {
        let split = split.map(|mut split| {
            split.weight_bp = split.weight_bp.min(FULL_WEIGHT);
            Arc::new(split)
        });
        let previous = self.current.swap(split.clone())?;
        let stays = Arc::ptr_eq(&previous.candidate, active)
            || split.is_some_and(|split| Arc::ptr_eq(&split.candidate, &previous.candidate));
        (!stays).then(|| Arc::clone(&previous.candidate))
    }

    /// Changes the candidate's weight only; `false` when no split is in force.
    pub(crate) fn set_weight(&self, weight_bp: u32) -> bool {
        let weight_bp = weight_bp.min(FULL_WEIGHT);
        let previous = self.current.rcu(|current| {
            current.as_ref().map(|split| {
                Arc::new(Split {
                    weight_bp,
                    ..Split::clone(split)
                })
            })
        });
        previous.is_some()
    }

    /// Changes the candidate's weight and shadow together, in one step
    /// for every request; `false` when no split is in force.
    pub(crate) fn set_traffic(&self, weight_bp: u32, shadow: Option<Shadow>) -> bool {
        let weight_bp = weight_bp.min(FULL_WEIGHT);
        let previous = self.current.rcu(|current| {
            current.as_ref().map(|split| {
                Arc::new(Split {
                    weight_bp,
                    shadow: shadow.clone(),
                    ..Split::clone(split)
                })
            })
        });
        previous.is_some()
    }

    /// Ends the split if `version` is its candidate: it has just become the
    /// service's active version (promoted by a route install).
    pub(crate) fn end_if_candidate(&self, version: &Arc<Version>) {
        self.current.rcu(|current| match current {
            Some(split) if Arc::ptr_eq(&split.candidate, version) => None,
            other => other.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load_balancer::LoadBalancer;

    fn version(label: &str) -> Arc<Version> {
        Arc::new(Version::new(label.into(), vec![], LoadBalancer::default()))
    }

    fn split(candidate: &Arc<Version>, weight_bp: u32) -> Option<Split> {
        Some(Split {
            candidate: Arc::clone(candidate),
            weight_bp,
            sticky: false,
            override_header: false,
            shadow: None,
        })
    }

    fn left_label(left: Option<Arc<Version>>) -> Option<String> {
        left.map(|version| version.label().to_string())
    }

    #[test]
    fn the_candidate_that_leaves_is_returned_once() {
        let slot = SplitSlot::default();
        let (stable, first, second) = (version("v1"), version("v2"), version("v3"));
        assert!(slot.replace(None, &stable).is_none());
        assert!(slot.replace(split(&first, 100), &stable).is_none());
        // A new weight for the same candidate: nothing leaves.
        assert!(slot.replace(split(&first, 5_000), &stable).is_none());
        assert_eq!(
            left_label(slot.replace(split(&second, 100), &stable)).as_deref(),
            Some("v2")
        );
        assert_eq!(
            left_label(slot.replace(None, &stable)).as_deref(),
            Some("v3")
        );
        assert!(slot.replace(None, &stable).is_none());
    }

    #[test]
    fn a_promoted_candidate_does_not_leave() {
        let slot = SplitSlot::default();
        let (stable, candidate) = (version("v1"), version("v2"));
        slot.replace(split(&candidate, 100), &stable);
        // The route now names the candidate as active.
        assert!(slot.replace(None, &candidate).is_none());
        slot.replace(split(&candidate, 100), &stable);
        slot.end_if_candidate(&stable);
        assert!(slot.get().is_some());
        slot.end_if_candidate(&candidate);
        assert!(slot.get().is_none());
    }

    #[test]
    fn weights_change_in_place_and_are_capped() {
        let slot = SplitSlot::default();
        let (stable, candidate) = (version("v1"), version("v2"));
        assert!(!slot.set_weight(100));
        slot.replace(split(&candidate, 20_000), &stable);
        assert_eq!(slot.get().map(|split| split.weight_bp), Some(FULL_WEIGHT));
        assert!(slot.set_weight(1_000));
        let now = slot.get().unwrap();
        assert_eq!(now.weight_bp, 1_000);
        assert!(Arc::ptr_eq(&now.candidate, &candidate));
    }

    #[test]
    fn routing_without_a_split_is_the_stable_version() {
        let slot = SplitSlot::default();
        let stable = version("v1");
        let routed = slot.route(&stable, &Method::GET, &HeaderMap::new());
        assert!(Arc::ptr_eq(&routed.version, &stable));
        assert!(!routed.pin);
    }

    #[test]
    fn the_shadow_share_copies_requests_stable_serves() {
        let slot = SplitSlot::default();
        let (stable, candidate) = (version("v1"), version("v2"));
        slot.replace(split(&candidate, 0), &stable);
        let headers = HeaderMap::new();
        let mirrored = |method: &Method| {
            (0..10_000)
                .filter(|_| slot.route(&stable, method, &headers).mirror.is_some())
                .count()
        };
        assert_eq!(mirrored(&Method::GET), 0, "no shadow, no copies");
        let shadow = Shadow {
            share_bp: 2_500,
            methods: vec![Method::GET],
        };
        assert!(slot.set_traffic(0, Some(shadow.clone())));
        assert!(mirrored(&Method::GET).abs_diff(2_500) <= 5);
        assert_eq!(mirrored(&Method::POST), 0);
        // The candidate's own requests are never copied to it.
        assert!(slot.set_traffic(FULL_WEIGHT, Some(shadow)));
        assert_eq!(mirrored(&Method::GET), 0);
        // Live traffic and no shadow, in one change.
        assert!(slot.set_traffic(1_000, None));
        let now = slot.get().unwrap();
        assert_eq!((now.weight_bp, now.shadow.is_none()), (1_000, true));
        assert_eq!(mirrored(&Method::GET), 0);
    }

    #[test]
    fn routing_follows_the_weight() {
        let slot = SplitSlot::default();
        let (stable, candidate) = (version("v1"), version("v2"));
        slot.replace(split(&candidate, 1_000), &stable);
        let headers = HeaderMap::new();
        let to_candidate = (0..10_000)
            .filter(|_| {
                Arc::ptr_eq(
                    &slot.route(&stable, &Method::GET, &headers).version,
                    &candidate,
                )
            })
            .count();
        assert!(to_candidate.abs_diff(1_000) <= 5, "{to_candidate}");
    }
}
