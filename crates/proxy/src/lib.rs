//! baton's data plane: the reverse proxy in front of every app.
//!
//! It accepts client connections, routes each request by host and path
//! prefix to a service, holds it while the service is paused, chooses the
//! service's active version or the candidate of its split (override header,
//! sticky cookie, weight), picks a target of that version, streams the
//! exchange, and counts it per version. Route changes swap the whole table
//! at once; a split's weight changes in place. A version that leaves the
//! route drains. It must not persist anything, spawn app processes or
//! decide when to deploy: the daemon tells it what to route.
#![deny(missing_docs)]

mod admission;
mod forward;
mod forwarded_headers;
mod head_scanner;
mod health_check;
mod limits;
mod load_balancer;
mod local_response;
mod mirror;
mod pause_gate;
mod request_annotator;
mod request_body;
mod response_body;
mod route_table;
mod router;
mod server;
mod service;
mod shadow;
mod split;
mod split_slot;
mod sticky_cookie;
mod target;
mod tls;
mod upgrade_relay;
mod upstream_pool;
mod version;
mod workers;

pub use admission::{Admission, Admitted};
pub use forward::{ClientContext, Forwarder};
pub use health_check::{HealthCheck, Streak};
pub use limits::Limits;
pub use load_balancer::{Balance, LoadBalancer};
pub use pause_gate::{HeldTooLong, PauseGate};
pub use request_annotator::{FLAGS_HEADER, RequestAnnotator};
pub use route_table::{RouteConflict, RouteTable};
pub use router::Router;
pub use server::{Server, ShutdownReport};
pub use service::{Service, normalize_prefix, prefix_matches};
pub use shadow::{SHADOW_HEADER, Shadow};
pub use split::{FULL_WEIGHT, OVERRIDE_HEADER, Split};
pub use split_slot::SplitSlot;
pub use sticky_cookie::STICKY_COOKIE;
pub use target::Target;
pub use tls::{TlsError, server_config};
pub use version::{DrainReport, Version};
pub use workers::Workers;

/// Starts health checks for `version` (they stop when it retires).
pub fn spawn_health_checks(version: std::sync::Arc<Version>, check: HealthCheck) {
    health_check::spawn(version, check);
}
