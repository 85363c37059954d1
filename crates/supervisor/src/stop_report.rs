//! How a stop went.

use std::time::Duration;

/// The outcome of [`Supervised::stop`](crate::Supervised::stop).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopReport {
    /// The signal sent first, e.g. "SIGTERM"; empty when no process was
    /// running (a restart was pending).
    pub signal: String,
    /// The process exited within the stop timeout.
    pub exited_in_time: bool,
    /// SIGKILL had to be sent, to the process or to what it left behind in
    /// its process group.
    pub killed: bool,
    /// From the stop signal until everything was gone.
    pub waited: Duration,
}

impl StopReport {
    /// Nothing was running, so nothing was sent.
    pub(crate) fn nothing_running() -> StopReport {
        StopReport {
            signal: String::new(),
            exited_in_time: true,
            killed: false,
            waited: Duration::ZERO,
        }
    }
}
