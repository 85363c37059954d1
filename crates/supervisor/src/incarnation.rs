//! One run of a supervised process, between a start and an exit.

use std::time::SystemTime;

/// A new incarnation (first start or restart): what the daemon persists so
/// that its successor can adopt the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incarnation {
    /// The app's pid; also its process group id.
    pub pid: u32,
    /// Field 22 of `/proc/<pid>/stat`: with the pid, the process's identity,
    /// since the kernel reuses pids.
    pub start_time: u64,
    /// Wall-clock time of the start.
    pub started_at: SystemTime,
    /// Restarts before this incarnation; 0 for the first.
    pub restarts: u32,
}
