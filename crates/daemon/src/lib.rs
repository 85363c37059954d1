//! The baton daemon: wires the proxy, the route manager, the state store and
//! the control API together, and owns the process's life (listeners,
//! systemd readiness, signals, graceful shutdown).
//!
//! It must not hold decisions of its own beyond wiring: routing lives in
//! `baton-proxy`, persistence in `baton-state`, wire types in `baton-api`.
#![deny(missing_docs)]

mod config;
mod control_api;
mod control_socket;
mod daemon;
mod error;
mod listeners;
mod route_manager;

pub use config::{DaemonConfig, default_state_dir};
pub use daemon::run;
pub use error::DaemonError;
