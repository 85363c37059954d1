//! `baton upgrade`, on the running daemon's side: start the new binary with
//! the same arguments, hand it the sockets, and wait until it says it
//! accepts on all of them; or give up, kill it, and go on serving as if
//! nothing happened.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::handoff::{
    Answer, HANDOFF_SOCKET_ENV, HandedSocket, HandoffError, Handover, receive_answer, send_handover,
};

/// How long the new daemon may take to accept on every socket, unless the
/// operator says otherwise.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The most of the new daemon's output an error quotes.
const OUTPUT_LIMIT: usize = 16 * 1024;

/// The sockets a daemon hands over: its own duplicates of its listeners,
/// control socket and log, kept aside for this.
#[derive(Debug, Default)]
pub struct Sockets {
    entries: Vec<(HandedSocket, OwnedFd)>,
}

impl Sockets {
    /// Adds a duplicate of `fd` as `socket`.
    pub fn add(&mut self, socket: HandedSocket, fd: impl AsFd) -> std::io::Result<()> {
        self.entries
            .push((socket, fd.as_fd().try_clone_to_owned()?));
        Ok(())
    }
}

/// What `baton upgrade` asks for.
#[derive(Clone, Debug)]
pub struct UpgradeRequest {
    /// The new binary; `None` means the running daemon's own path, read
    /// again from the disk (where a package upgrade put the new version).
    pub binary: Option<PathBuf>,
    /// How long the new daemon may take to be ready.
    pub ready_timeout: Duration,
}

/// A new daemon that took over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upgraded {
    /// Its process id.
    pub pid: u32,
    /// From the start of the hand-over to its answer that it accepts.
    pub ready_after: Duration,
}

/// Why the running daemon keeps serving instead of the new one.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// Something is in progress that a new process could not finish.
    #[error("{0}")]
    Busy(String),
    /// The binary cannot be run.
    #[error("cannot run {path}: {reason}")]
    Binary {
        /// The binary.
        path: String,
        /// Why.
        reason: String,
    },
    /// The new daemon exited before it was ready.
    #[error(
        "the new daemon ({path}) exited ({status}) before it was ready; \
         the running daemon goes on serving. Its output:\n{output}"
    )]
    Exited {
        /// The binary.
        path: String,
        /// How it exited.
        status: ExitStatus,
        /// What it printed.
        output: String,
    },
    /// The new daemon was not ready in time, and was killed.
    #[error(
        "the new daemon ({path}) was not ready within {timeout:?} and was stopped; \
         the running daemon goes on serving. Its output:\n{output}"
    )]
    NotReady {
        /// The binary.
        path: String,
        /// The deadline it missed.
        timeout: Duration,
        /// What it printed.
        output: String,
    },
    /// The new daemon said it could not take over.
    #[error(
        "the new daemon ({path}) could not take over: {reason}; \
         the running daemon goes on serving. Its output:\n{output}"
    )]
    Refused {
        /// The binary.
        path: String,
        /// What it said.
        reason: String,
        /// What it printed.
        output: String,
    },
    /// The hand-over itself failed.
    #[error("the hand-over failed: {0}; the running daemon goes on serving")]
    Handoff(String),
}

/// Starts `request`'s binary as a new daemon with this one's arguments,
/// hands it `sockets` over a Unix socket in `state_dir`, and waits until it
/// is ready. On any failure the new process is killed and its output
/// (logged to `state_dir/upgrade.log` until it is ready) is in the error.
pub async fn hand_over(
    state_dir: &Path,
    sockets: &Sockets,
    request: &UpgradeRequest,
) -> Result<Upgraded, UpgradeError> {
    let binary = match &request.binary {
        Some(binary) => binary.clone(),
        None => own_binary().map_err(|reason| UpgradeError::Binary {
            path: "the running daemon's binary".into(),
            reason,
        })?,
    };
    let path = binary.display().to_string();
    let started = Instant::now();
    let deadline = started + request.ready_timeout;
    let socket_path = state_dir.join(format!("handoff-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&socket_path);
    let listener = UnixListener::bind(&socket_path)
        .map_err(|error| UpgradeError::Handoff(format!("{}: {error}", socket_path.display())))?;
    let log_path = state_dir.join("upgrade.log");
    let spawned = spawn(&binary, &socket_path, &log_path);
    let mut child = match spawned {
        Ok(child) => child,
        Err(reason) => {
            let _ = std::fs::remove_file(&socket_path);
            return Err(UpgradeError::Binary { path, reason });
        }
    };
    let outcome = talk(&mut child, listener, sockets, deadline).await;
    let _ = std::fs::remove_file(&socket_path);
    let output = || read_output(&log_path);
    match outcome {
        Ok(pid) => Ok(Upgraded {
            pid,
            ready_after: started.elapsed(),
        }),
        Err(failure) => {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            Err(match failure {
                Failure::Exited(status) => UpgradeError::Exited {
                    path,
                    status,
                    output: output(),
                },
                Failure::TimedOut => UpgradeError::NotReady {
                    path,
                    timeout: request.ready_timeout,
                    output: output(),
                },
                Failure::Refused(reason) => UpgradeError::Refused {
                    path,
                    reason,
                    output: output(),
                },
                Failure::Handoff(reason) => UpgradeError::Handoff(reason),
            })
        }
    }
}

/// How a hand-over ended short of "ready".
enum Failure {
    Exited(ExitStatus),
    TimedOut,
    Refused(String),
    Handoff(String),
}

/// Accepts the new daemon's connection, sends the sockets, reads its
/// answer: its pid once ready.
async fn talk(
    child: &mut Child,
    listener: UnixListener,
    sockets: &Sockets,
    deadline: Instant,
) -> Result<u32, Failure> {
    let stream = tokio::select! {
        accepted = listener.accept() => accepted
            .map_err(|error| Failure::Handoff(error.to_string()))?
            .0,
        status = child.wait() => return Err(exited(status)),
        () = tokio::time::sleep_until(deadline) => return Err(Failure::TimedOut),
    };
    let stream = stream
        .into_std()
        .and_then(|stream| {
            stream.set_nonblocking(false)?;
            Ok(stream)
        })
        .map_err(|error| Failure::Handoff(error.to_string()))?;
    let handover = Handover {
        old_pid: std::process::id(),
        sockets: sockets.entries.iter().map(|(socket, _)| *socket).collect(),
    };
    let fds: Vec<_> = sockets.entries.iter().map(|(_, fd)| fd.as_fd()).collect();
    send_handover(&stream, &handover, &fds).map_err(|error| Failure::Handoff(error.to_string()))?;
    // The answer is read on a blocking thread; killing the child closes its
    // end, which ends the read.
    let reading = tokio::task::spawn_blocking(move || receive_answer(&stream));
    tokio::select! {
        answer = reading => match answer {
            Ok(Ok(Answer::Ready { pid })) => Ok(pid),
            Ok(Ok(Answer::Failed { reason })) => Err(Failure::Refused(reason)),
            Ok(Err(HandoffError::Closed)) => match child.wait().await {
                Ok(status) => Err(Failure::Exited(status)),
                Err(error) => Err(Failure::Handoff(error.to_string())),
            },
            Ok(Err(error)) => Err(Failure::Handoff(error.to_string())),
            Err(error) => Err(Failure::Handoff(error.to_string())),
        },
        status = child.wait() => Err(exited(status)),
        () = tokio::time::sleep_until(deadline) => Err(Failure::TimedOut),
    }
}

fn exited(status: std::io::Result<ExitStatus>) -> Failure {
    match status {
        Ok(status) => Failure::Exited(status),
        Err(error) => Failure::Handoff(error.to_string()),
    }
}

/// Starts the new daemon in this one's process group (so whatever stops
/// the group stops both), with this one's arguments and environment.
fn spawn(binary: &Path, socket_path: &Path, log_path: &Path) -> Result<Child, String> {
    let log = std::fs::File::create(log_path)
        .map_err(|error| format!("cannot create {}: {error}", log_path.display()))?;
    let log_too = log
        .try_clone()
        .map_err(|error| format!("cannot share {}: {error}", log_path.display()))?;
    Command::new(binary)
        .args(std::env::args_os().skip(1))
        .env(HANDOFF_SOCKET_ENV, socket_path)
        .stdin(Stdio::null())
        .stdout(log_too)
        .stderr(log)
        .spawn()
        .map_err(|error| error.to_string())
}

/// The path this process was started from. After a package upgrade
/// replaced the file, the kernel names it "… (deleted)"; the path itself
/// then holds the new binary, which is the one meant.
fn own_binary() -> Result<PathBuf, String> {
    let path = std::env::current_exe().map_err(|error| error.to_string())?;
    let text = path.to_string_lossy();
    Ok(match text.strip_suffix(" (deleted)") {
        Some(original) => PathBuf::from(original),
        None => path,
    })
}

/// The new daemon's output, at most [`OUTPUT_LIMIT`] bytes of its end.
fn read_output(path: &Path) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let start = text.len().saturating_sub(OUTPUT_LIMIT);
    let output = String::from_utf8_lossy(&text[start..])
        .trim_end()
        .to_string();
    if output.is_empty() {
        "(nothing)".to_string()
    } else {
        output
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn script(dir: &Path, body: &str) -> PathBuf {
        let path = dir.join("new-baton");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn request(binary: PathBuf, timeout: Duration) -> UpgradeRequest {
        UpgradeRequest {
            binary: Some(binary),
            ready_timeout: timeout,
        }
    }

    #[tokio::test]
    async fn a_binary_that_exits_at_once_is_an_error_with_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let binary = script(dir.path(), "echo 'no such flag: --frobnicate' >&2; exit 3");
        let error = hand_over(
            dir.path(),
            &Sockets::default(),
            &request(binary, Duration::from_secs(10)),
        )
        .await
        .unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, UpgradeError::Exited { .. }), "{text}");
        assert!(text.contains("no such flag: --frobnicate"), "{text}");
        assert!(text.contains("goes on serving"), "{text}");
        // Nothing is left behind but the log.
        assert!(
            !dir.path()
                .join(format!("handoff-{}.sock", std::process::id()))
                .exists()
        );
    }

    #[tokio::test]
    async fn a_binary_that_never_answers_is_stopped_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let binary = script(dir.path(), "echo starting; exec sleep 60");
        let started = std::time::Instant::now();
        let error = hand_over(
            dir.path(),
            &Sockets::default(),
            &request(binary, Duration::from_millis(300)),
        )
        .await
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        let text = error.to_string();
        assert!(matches!(error, UpgradeError::NotReady { .. }), "{text}");
        assert!(text.contains("starting"), "{text}");
    }

    #[tokio::test]
    async fn a_missing_binary_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let error = hand_over(
            dir.path(),
            &Sockets::default(),
            &request(dir.path().join("nope"), Duration::from_secs(1)),
        )
        .await
        .unwrap_err();
        assert!(matches!(error, UpgradeError::Binary { .. }), "{error}");
    }
}
