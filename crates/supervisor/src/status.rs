//! What a supervised process is doing right now.

use std::time::{Duration, SystemTime};

/// The state of a [`Supervised`](crate::Supervised) process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// A process is running and watched.
    Running {
        /// Its pid.
        pid: u32,
        /// When it started.
        since: SystemTime,
    },
    /// The process exited unexpectedly; a new one starts after the delay.
    Restarting {
        /// Delay chosen by the backoff.
        after: Duration,
        /// How the last one ended, e.g. "exited with status 3".
        last_exit: String,
    },
    /// The stop signal was sent; waiting for the process to go.
    Stopping {
        /// Its pid.
        pid: u32,
    },
    /// Stopped for good: no process, no restart.
    Stopped {
        /// How the last process ended.
        exit: String,
    },
    /// No longer watched; the process was left running for the next daemon.
    Detached,
}
