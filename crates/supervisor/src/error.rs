//! What can go wrong when starting or signalling a process.

use std::io;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::sys::signal::Signal;

/// Starting a process failed; nothing was left running.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The spec has no command to run.
    #[error("cannot start process {marker}: its command is empty; set a command to run")]
    EmptyCommand {
        /// The spec's marker, to say which process this was.
        marker: String,
    },
    /// The log file (or its directory) could not be opened or created.
    #[error("cannot open log file {path}: {source}; check that its directory is writable")]
    LogFile {
        /// The log file.
        path: PathBuf,
        /// Why it failed.
        source: io::Error,
    },
    /// The operating system refused to start the process.
    #[error(
        "cannot start `{command}` in {dir}: {source}; check that the directory exists and is readable"
    )]
    Spawn {
        /// The command as configured.
        command: String,
        /// Its working directory.
        dir: PathBuf,
        /// Why it failed.
        source: io::Error,
    },
    /// The process started but its identity could not be read from /proc,
    /// so it could never be found again; it was killed.
    #[error(
        "started `{command}` as pid {pid} but could not read /proc/{pid}/stat; is /proc mounted? The process was killed"
    )]
    Identity {
        /// The command as configured.
        command: String,
        /// The pid it briefly had.
        pid: u32,
    },
    /// There is no Tokio runtime to watch the process from.
    #[error(
        "cannot start `{command}`: no Tokio runtime to watch it from; start processes from inside the daemon's runtime"
    )]
    NoRuntime {
        /// The command as configured.
        command: String,
    },
}

/// Sending a signal to a process group failed.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// The pid cannot name a process group baton started: 0 and 1 would hit
    /// the daemon's own group or init, and pids above `i32::MAX` do not exist.
    #[error("refusing to send {signal} to process group {pid}: not a process group baton started")]
    InvalidPid {
        /// The pid asked for.
        pid: u32,
        /// The signal that was not sent.
        signal: Signal,
    },
    /// No process is left in the group.
    #[error("cannot send {signal} to process group {pid}: it has already exited")]
    Gone {
        /// The group's id (its leader's pid).
        pid: u32,
        /// The signal that was not sent.
        signal: Signal,
    },
    /// The kernel refused, usually for lack of permission.
    #[error(
        "cannot send {signal} to process group {pid}: {source}; the daemon must run as the app's user or as root"
    )]
    Refused {
        /// The group's id (its leader's pid).
        pid: u32,
        /// The signal that was not sent.
        signal: Signal,
        /// The kernel's answer.
        source: Errno,
    },
}
