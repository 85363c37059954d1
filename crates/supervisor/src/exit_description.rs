//! How an exit is told to people: "exited with status 3", "killed by
//! SIGSEGV".

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use crate::signal::signal_name;

/// Describes how a process ended.
pub(crate) fn describe_exit(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    match status.signal() {
        Some(signal) if status.core_dumped() => {
            format!("killed by {} (core dumped)", signal_name(signal))
        }
        Some(signal) => format!("killed by {}", signal_name(signal)),
        None => format!("ended: {status}"),
    }
}

/// An adopted process is not our child: only its disappearance is seen.
pub(crate) const ADOPTED_EXIT: &str = "exited (status unknown: started by an earlier daemon)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_signals() {
        assert_eq!(
            describe_exit(ExitStatus::from_raw(0)),
            "exited with status 0"
        );
        assert_eq!(
            describe_exit(ExitStatus::from_raw(3 << 8)),
            "exited with status 3"
        );
        assert_eq!(describe_exit(ExitStatus::from_raw(11)), "killed by SIGSEGV");
        assert_eq!(
            describe_exit(ExitStatus::from_raw(11 | 0x80)),
            "killed by SIGSEGV (core dumped)"
        );
        assert_eq!(describe_exit(ExitStatus::from_raw(9)), "killed by SIGKILL");
    }
}
