//! A service: where it is routed from and the versions it routes to.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method};

use crate::pause_gate::PauseGate;
use crate::request_annotator::RequestAnnotator;
use crate::shadow::Shadow;
use crate::split::Split;
use crate::split_slot::{Routed, SplitSlot};
use crate::version::Version;

/// A routed service as the request path sees it.
#[derive(Clone, Debug)]
pub struct Service {
    /// Unique name.
    pub name: String,
    /// Host names (`*.example.com` wildcards allowed); empty = catch-all.
    pub hosts: Vec<String>,
    /// Path prefix, normalised without a trailing slash (`/` stays `/`).
    pub path_prefix: String,
    /// Largest request body accepted; `None` = unlimited.
    pub max_request_body: Option<u64>,
    /// How long the version that leaves the route may take to drain.
    pub drain_timeout: Duration,
    /// Shared by every route table that holds this service, so a pause
    /// survives table swaps.
    pub gate: Arc<PauseGate>,
    /// The version receiving traffic (the stable one while a split runs).
    pub active: Arc<Version>,
    /// The candidate taking a share of the traffic, if a rollout runs.
    /// Shared by every route table that holds this service, like the gate:
    /// a route change does not end a split, and the weight changes without
    /// a table swap.
    pub split: Arc<SplitSlot>,
    /// Adds to each request after routing (the daemon's flag injection);
    /// `None` adds nothing.
    pub annotator: Option<Arc<dyn RequestAnnotator>>,
}

impl Service {
    /// Starts, changes or (with `None`) ends the split of this service's
    /// traffic, at once for every request that has not yet chosen a version.
    ///
    /// Returns the candidate that left the route: the previous candidate
    /// when `split` names another one or none (an abort), unless it is the
    /// active version (promoted by [`Router::install`], which also ends the
    /// split). The caller drains it like a replaced version: list it with
    /// [`Router::track_draining`] at once, then [`Version::drain`] it with
    /// this service's `drain_timeout`, then [`Router::untrack_draining`],
    /// and only then stop its processes. Requests already admitted to it
    /// finish; later ones go to the versions still in the split.
    ///
    /// One change per service at a time: two writers racing (an abort with
    /// a promotion) could each believe the other's version left.
    ///
    /// [`Router::install`]: crate::Router::install
    /// [`Router::track_draining`]: crate::Router::track_draining
    /// [`Router::untrack_draining`]: crate::Router::untrack_draining
    pub fn set_split(&self, split: Option<Split>) -> Option<Arc<Version>> {
        self.split.replace(split, &self.active)
    }

    /// Sets the candidate's weight in basis points (capped at 10,000),
    /// keeping the rest of the split; `false` when no split is in force.
    pub fn set_weight(&self, weight_bp: u32) -> bool {
        self.split.set_weight(weight_bp)
    }

    /// Sets the candidate's weight and its shadow (copies of a share of
    /// stable's requests; `None` stops them) in one change, keeping the
    /// rest of the split; `false` when no split is in force.
    pub fn set_traffic(&self, weight_bp: u32, shadow: Option<Shadow>) -> bool {
        self.split.set_traffic(weight_bp, shadow)
    }

    /// The split in force.
    pub fn current_split(&self) -> Option<Arc<Split>> {
        self.split.get()
    }

    /// The version for a request with `method` and `headers`.
    pub(crate) fn route(&self, method: &Method, headers: &HeaderMap) -> Routed {
        self.split.route(&self.active, method, headers)
    }
}

/// `/api/` and `/api` mean the same prefix; `` means `/`.
pub fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_string()
    } else if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    }
}

/// Whether `path` lies under `prefix` on a segment boundary (`/api` covers
/// `/api` and `/api/x`, not `/apix`).
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_normalise() {
        assert_eq!(normalize_prefix(""), "/");
        assert_eq!(normalize_prefix("/"), "/");
        assert_eq!(normalize_prefix("/api/"), "/api");
        assert_eq!(normalize_prefix("api"), "/api");
    }

    #[test]
    fn prefixes_match_on_segments() {
        assert!(prefix_matches("/", "/anything"));
        assert!(prefix_matches("/api", "/api"));
        assert!(prefix_matches("/api", "/api/users"));
        assert!(!prefix_matches("/api", "/apix"));
        assert!(!prefix_matches("/api", "/"));
    }
}
