//! baton's process supervisor: app and worker processes on this host.
//!
//! It spawns a process with exactly the environment it is given, in its own
//! process group, with stdout and stderr appended to a log file it rotates;
//! it watches the process, restarts it with capped backoff when it exits
//! unasked, stops it with a signal and a timeout, and, after the daemon
//! itself restarted, re-adopts the processes an earlier daemon left running.
//! Processes never depend on the daemon staying alive: no pipes to it, no
//! parent-death signal.
//!
//! It must not route traffic, touch release directories or keep a state
//! database: it reports every new incarnation through a callback and the
//! daemon decides what to persist.
#![deny(missing_docs)]

mod backoff;
mod error;
mod exit_description;
mod incarnation;
mod log_file;
mod poll;
mod proc_info;
mod signal;
mod spawn;
mod spec;
mod status;
mod stop_report;
mod supervised;
#[cfg(test)]
mod test_support;

pub use backoff::{RestartPolicy, backoff, failures_after_exit};
pub use error::{SignalError, SpawnError};
pub use incarnation::Incarnation;
pub use log_file::{LogRotation, rotate_if_needed, tail_lines};
pub use proc_info::{cpu_seconds, find_by_marker, is_alive, process_start_time, rss_bytes};
pub use signal::kill_group;
pub use spawn::MARKER_VAR;
pub use spec::Spec;
pub use status::Status;
pub use stop_report::StopReport;
pub use supervised::{OnStart, Supervised};
