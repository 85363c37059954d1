//! The records the store persists: plain data, no behaviour.
//!
//! These types are also what other crates hand around, so they derive serde
//! and carry serde defaults: a field added later must not make older JSON (or
//! older `options` columns) unreadable.

use serde::{Deserialize, Serialize};

/// One routed service: where its traffic comes from and which version gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    /// Unique name; the key everything else hangs off.
    pub name: String,
    /// Host names this service answers for: exact (`a.example.com`) or
    /// wildcard (`*.example.com`). Empty means it is the catch-all.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Path prefix this service answers for; `/` means every path.
    #[serde(default = "default_path_prefix")]
    pub path_prefix: String,
    /// Health checking, balancing, draining and limits.
    #[serde(default)]
    pub options: ServiceOptions,
    /// The stable version receiving traffic, if one has been deployed.
    #[serde(default)]
    pub active: Option<VersionRecord>,
    /// Set while requests to this service are held at the pause gate.
    #[serde(default)]
    pub pause: Option<PauseRecord>,
}

impl ServiceRecord {
    /// A service with no hosts (catch-all), prefix `/`, default options, no
    /// version and not paused.
    pub fn new(name: impl Into<String>) -> Self {
        ServiceRecord {
            name: name.into(),
            hosts: Vec::new(),
            path_prefix: default_path_prefix(),
            options: ServiceOptions::default(),
            active: None,
            pause: None,
        }
    }
}

fn default_path_prefix() -> String {
    "/".to_owned()
}

/// Per-service settings.
///
/// Stored as one JSON column, so a later field needs only a serde default,
/// not a schema migration. An older baton reading a newer column ignores
/// fields it does not know (and drops them if it rewrites the service).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceOptions {
    /// Path requested on each target to decide whether it is healthy.
    pub health_path: String,
    /// Time between two health checks of one target.
    pub health_interval_ms: u64,
    /// Consecutive passing checks before a target receives traffic.
    pub healthy_after: u32,
    /// How long one health check may take before it counts as failed.
    pub health_timeout_ms: u64,
    /// How long in-flight requests to a leaving version may run on.
    pub drain_timeout_ms: u64,
    /// How requests are spread over a version's targets.
    pub balance: Balance,
    /// Largest request body accepted, in bytes; `None` for no limit.
    pub max_request_body: Option<u64>,
    /// Set when the proxy adds the flags evaluated for each request to it
    /// (`X-Baton-Flags`); `None` for no injection.
    pub flags: Option<FlagInjection>,
}

/// How the proxy evaluates flags for a service's requests.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FlagInjection {
    /// Where a request's targeting key (Unleash's `userId`) is read:
    /// `cookie:NAME` or `header:NAME`, as written in `baton.toml`; `None`
    /// evaluates without one.
    pub targeting_key: Option<String>,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            health_path: "/up".to_owned(),
            health_interval_ms: 1_000,
            healthy_after: 1,
            health_timeout_ms: 5_000,
            drain_timeout_ms: 30_000,
            balance: Balance::default(),
            max_request_body: None,
            flags: None,
        }
    }
}

/// Load-balancing policy over one version's targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Balance {
    /// Each target in turn.
    #[default]
    RoundRobin,
    /// The target with the fewest requests in flight.
    LeastInFlight,
}

/// One deployed version of a service and where it listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// Human label of the version (release id, git sha, ...).
    pub label: String,
    /// Upstream addresses as `host:port`, in the order given (order is kept).
    pub targets: Vec<String>,
    /// When this version started receiving traffic, unix epoch millis.
    pub activated_at_ms: u64,
}

/// A pause in effect: requests wait at the gate instead of reaching upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseRecord {
    /// Longest a request may be held before it is answered with an error.
    pub max_ms: u64,
    /// When the pause began, unix epoch millis.
    pub since_ms: u64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn balance_is_kebab_case() {
        assert_eq!(
            serde_json::to_string(&Balance::LeastInFlight).unwrap(),
            "\"least-in-flight\""
        );
        assert_eq!(
            serde_json::from_str::<Balance>("\"round-robin\"").unwrap(),
            Balance::RoundRobin
        );
    }

    #[test]
    fn options_missing_fields_take_defaults() {
        let options: ServiceOptions =
            serde_json::from_str(r#"{"health_path":"/healthz"}"#).unwrap();
        assert_eq!(options.health_path, "/healthz");
        assert_eq!(
            options.drain_timeout_ms,
            ServiceOptions::default().drain_timeout_ms
        );
    }

    #[test]
    fn minimal_service_json_takes_defaults() {
        let record: ServiceRecord = serde_json::from_str(r#"{"name":"web"}"#).unwrap();
        assert_eq!(record, ServiceRecord::new("web"));
    }
}
