//! Test support for baton's end-to-end tests: runs the real `baton` binary
//! with a temporary state directory and port-0 listeners, starts the demo
//! app and throwaway PostgreSQL clusters, waits with deadlines, and kills
//! what it started (by process group) when dropped.
//!
//! Test-only: nothing in the product depends on it, and it must not
//! re-implement what the binary does; it only starts, watches and stops.
#![deny(missing_docs)]

mod app;
mod app_source;
mod binaries;
mod daemon;
mod group_child;
mod postgres;
mod process_group;
mod wait;

pub use app::{App, AppBuilder};
pub use app_source::{AppSource, AppSourceBuilder, processes_under};
pub use binaries::binary;
pub use daemon::{CommandOutput, Daemon, DaemonBuilder};
pub use group_child::GroupChild;
pub use postgres::Postgres;
pub use wait::wait_until;
