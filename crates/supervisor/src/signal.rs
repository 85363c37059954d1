//! Signals to whole process groups.
//!
//! Every process runs in its own group, led by the app, so a signal to the
//! group also reaches whatever the app started: workers, shells, helpers.

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::error::SignalError;

/// Sends `signal` to the process group led by `pid`.
pub fn kill_group(pid: u32, signal: Signal) -> Result<(), SignalError> {
    // killpg(0) would signal the daemon's own group, and 1 is init.
    let group = i32::try_from(pid)
        .ok()
        .filter(|group| *group > 1)
        .ok_or(SignalError::InvalidPid { pid, signal })?;
    match killpg(Pid::from_raw(group), signal) {
        Ok(()) => Ok(()),
        Err(Errno::ESRCH) => Err(SignalError::Gone { pid, signal }),
        Err(source) => Err(SignalError::Refused {
            pid,
            signal,
            source,
        }),
    }
}

/// "SIGSEGV" for 11; "signal 99" for numbers without a name.
pub(crate) fn signal_name(number: i32) -> String {
    Signal::try_from(number).map_or_else(|_| format!("signal {number}"), |s| s.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    use super::*;

    #[test]
    fn refuses_pids_that_are_not_app_groups() {
        for pid in [0, 1, u32::MAX] {
            assert!(matches!(
                kill_group(pid, Signal::SIGTERM),
                Err(SignalError::InvalidPid { .. })
            ));
        }
    }

    #[test]
    fn names_signals() {
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(15), "SIGTERM");
        assert_eq!(signal_name(99), "signal 99");
    }

    #[test]
    fn signals_the_whole_group_and_reports_it_gone() {
        let mut child = Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30; wait"])
            .process_group(0)
            .spawn()
            .expect("spawn sh");
        let pid = child.id();
        let result = kill_group(pid, Signal::SIGKILL);
        let _ = child.wait();
        result.expect("signal sent");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !crate::proc_info::group_members(pid).is_empty() {
            assert!(std::time::Instant::now() < deadline, "group still alive");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
