//! Every child runs in its own process group so that cleanup reaches its
//! children too.

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// Sends `signal` to the process `pid` only.
pub fn signal_process(pid: u32, signal: Signal) {
    if let Ok(raw) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(raw), signal);
    }
}

/// SIGKILLs the whole group led by `pid`.
pub fn kill_group(pid: u32) {
    if let Ok(raw) = i32::try_from(pid) {
        let _ = killpg(Pid::from_raw(raw), Signal::SIGKILL);
    }
}

/// Whether any process is left in the group led by `pid` (the leader may
/// have exited: a daemon that handed over to a new one in its group).
pub fn group_alive(pid: u32) -> bool {
    i32::try_from(pid).is_ok_and(|raw| killpg(Pid::from_raw(raw), None).is_ok())
}
