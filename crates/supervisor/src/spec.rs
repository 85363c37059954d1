//! What to run and how to run, log and stop it.

use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::log_file::LogRotation;

/// Everything needed to start, restart and stop one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Shell command line; run as `sh -c "exec COMMAND"`, so shell syntax
    /// works and the pid is the app's own.
    pub command: String,
    /// Working directory.
    pub dir: PathBuf,
    /// The whole environment: nothing is inherited from the daemon.
    pub env: Vec<(String, String)>,
    /// Receives stdout and stderr, appended; created with its directory.
    pub log_file: PathBuf,
    /// When and how the log file is rotated.
    pub log_rotation: LogRotation,
    /// Asks the process to stop.
    pub stop_signal: Signal,
    /// How long the process may take to stop before it is killed.
    pub stop_timeout: Duration,
    /// Unique name put in the environment as `BATON_PROCESS_ID`, so a
    /// process whose pid was never recorded can still be found.
    pub marker: String,
}

impl Spec {
    /// A spec with an empty environment, default log rotation, SIGTERM and a
    /// 30 s stop timeout.
    pub fn new(
        command: impl Into<String>,
        dir: impl Into<PathBuf>,
        log_file: impl Into<PathBuf>,
        marker: impl Into<String>,
    ) -> Spec {
        Spec {
            command: command.into(),
            dir: dir.into(),
            env: Vec::new(),
            log_file: log_file.into(),
            log_rotation: LogRotation::default(),
            stop_signal: Signal::SIGTERM,
            stop_timeout: Duration::from_secs(30),
            marker: marker.into(),
        }
    }
}
