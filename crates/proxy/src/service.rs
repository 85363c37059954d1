//! A service: where it is routed from and the version it routes to.

use std::sync::Arc;
use std::time::Duration;

use crate::pause_gate::PauseGate;
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
    /// The version receiving traffic.
    pub active: Arc<Version>,
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
