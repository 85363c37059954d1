//! Wire types for routes: services, their versions and targets.

use baton_telemetry::WindowSnapshot;
use serde::{Deserialize, Serialize};

use crate::flags::FlagInjection;

/// How a version spreads requests over its targets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Balance {
    /// Each target in turn.
    #[default]
    RoundRobin,
    /// The target with the fewest requests in flight.
    LeastInFlight,
}

/// `baton route deploy`: put these targets behind a service, health-gated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployRoute {
    /// Upstream addresses, `host:port`.
    pub targets: Vec<String>,
    /// Host names routed to the service (`*.example.com` wildcards); empty = catch-all.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Path prefix routed to the service.
    #[serde(default = "default_path_prefix")]
    pub path_prefix: String,
    /// A label for the new version; the daemon picks one when absent.
    #[serde(default)]
    pub version: Option<String>,
    /// Health check path on each target.
    pub health_path: String,
    /// Time between health checks.
    pub health_interval_ms: u64,
    /// Consecutive 2xx answers that make a target healthy.
    pub healthy_after: u32,
    /// Timeout of one health check.
    pub health_timeout_ms: u64,
    /// How long the new targets may take to become healthy.
    pub deploy_timeout_ms: u64,
    /// How long the old version may take to finish its requests.
    pub drain_timeout_ms: u64,
    /// How requests spread over the targets.
    #[serde(default)]
    pub balance: Balance,
    /// Largest request body accepted, in bytes; `None` = unlimited.
    #[serde(default)]
    pub max_request_body: Option<u64>,
    /// Set when the proxy evaluates the flags for each request and adds the
    /// answers as `X-Baton-Flags`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inject_flags: Option<FlagInjection>,
}

fn default_path_prefix() -> String {
    "/".to_string()
}

/// What a finished `route deploy` did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployOutcome {
    /// The service.
    pub service: String,
    /// The version now receiving traffic.
    pub version: String,
    /// The version that left the route, if any.
    pub previous_version: Option<String>,
    /// Time until every new target was healthy.
    pub healthy_after_ms: u64,
    /// Time the old version took to drain.
    pub drain_ms: u64,
    /// Requests to the old version still running when the drain timeout ended the drain.
    pub requests_cut_at_drain_timeout: u64,
    /// Upgraded connections (WebSockets) closed at the drain timeout.
    pub upgraded_connections_closed: u64,
}

/// `baton route pause`: hold new requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PauseRequest {
    /// Longest a request is held before it is answered 503.
    pub max_ms: u64,
}

/// A service as `baton route list` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteInfo {
    /// Service name.
    pub service: String,
    /// Host names; empty = catch-all.
    pub hosts: Vec<String>,
    /// Path prefix.
    pub path_prefix: String,
    /// Present while the service is paused.
    pub paused: Option<PauseState>,
    /// Versions receiving or draining traffic.
    pub versions: Vec<VersionInfo>,
}

/// A paused service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PauseState {
    /// Longest a request is held.
    pub max_ms: u64,
    /// Requests held right now.
    pub held: u64,
}

/// What a version is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VersionRole {
    /// Receives the service's traffic.
    Stable,
    /// Takes a weighted share of the traffic during a rollout.
    Candidate,
    /// Left the route; finishing its requests.
    Draining,
}

/// One version of a service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// Version label.
    pub label: String,
    /// Its role.
    pub role: VersionRole,
    /// Its targets.
    pub targets: Vec<TargetInfo>,
    /// Requests in flight.
    pub in_flight: u64,
    /// The last minute of traffic.
    pub last_minute: WindowSnapshot,
}

/// One upstream target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetInfo {
    /// `host:port`.
    pub address: String,
    /// Whether the health checks pass.
    pub healthy: bool,
    /// Requests in flight to it.
    pub in_flight: u64,
}
