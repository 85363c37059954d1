//! Starting one incarnation of a process.

use std::process::Stdio;
use std::time::SystemTime;

use nix::sys::signal::Signal;
use tokio::process::{Child, Command};

use crate::error::SpawnError;
use crate::log_file::open_log;
use crate::proc_info::read_stat;
use crate::signal::kill_group;
use crate::spec::Spec;

/// The environment variable that carries a spec's marker into its process.
pub const MARKER_VAR: &str = "BATON_PROCESS_ID";

/// A process just started, with its identity.
pub(crate) struct Spawned {
    pub child: Child,
    pub pid: u32,
    pub start_time: u64,
    pub started_at: SystemTime,
}

/// Starts the spec's command: own process group, exactly the spec's
/// environment plus the marker, stdin from /dev/null, stdout and stderr both
/// appended to the log file.
pub(crate) fn spawn(spec: &Spec) -> Result<Spawned, SpawnError> {
    if spec.command.trim().is_empty() {
        return Err(SpawnError::EmptyCommand {
            marker: spec.marker.clone(),
        });
    }
    let log_error = |source| SpawnError::LogFile {
        path: spec.log_file.clone(),
        source,
    };
    // One open file description for both streams, so their lines interleave
    // in the order they were written.
    let stdout = open_log(&spec.log_file).map_err(log_error)?;
    let stderr = stdout.try_clone().map_err(log_error)?;
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(shell_script(spec))
        .env_clear()
        .envs(spec.env.iter().map(|(key, value)| (key, value)))
        .env(MARKER_VAR, &spec.marker)
        .current_dir(&spec.dir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        // Signals to the group reach everything the app starts; the daemon's
        // own group (and terminal) signals do not reach the app. No
        // PDEATHSIG: apps outlive a daemon that is killed.
        .process_group(0);
    let child = command.spawn().map_err(|source| SpawnError::Spawn {
        command: spec.command.clone(),
        dir: spec.dir.clone(),
        source,
    })?;
    let started_at = SystemTime::now();
    let identity_error = |pid| SpawnError::Identity {
        command: spec.command.clone(),
        pid,
    };
    let Some(pid) = child.id() else {
        return Err(identity_error(0));
    };
    // Not reaped yet, so readable even if it already exited.
    match read_stat(pid) {
        Some(stat) => Ok(Spawned {
            child,
            pid,
            start_time: stat.start_time,
            started_at,
        }),
        None => {
            // Unrecorded and unfindable, it must not run on.
            let _ = kill_group(pid, Signal::SIGKILL);
            Err(identity_error(pid))
        }
    }
}

/// The script given to `sh -c`.
fn shell_script(spec: &Spec) -> String {
    // sh exports PWD to what it runs; the app must see exactly its spec's
    // environment, so PWD goes unless the spec sets it.
    if spec.env.iter().any(|(key, _)| key == "PWD") {
        format!("exec {}", spec.command)
    } else {
        format!("unset PWD; exec {}", spec.command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execs_the_command_so_the_pid_is_the_apps() {
        let mut spec = Spec::new("./server --port 1", "/srv", "/srv/log", "m");
        assert_eq!(shell_script(&spec), "unset PWD; exec ./server --port 1");
        spec.env.push(("PWD".into(), "/srv".into()));
        assert_eq!(shell_script(&spec), "exec ./server --port 1");
    }

    #[tokio::test]
    async fn empty_command_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = Spec::new("  ", dir.path(), dir.path().join("log"), "m");
        assert!(matches!(spawn(&spec), Err(SpawnError::EmptyCommand { .. })));
    }

    #[tokio::test]
    async fn missing_directory_is_a_spawn_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec = Spec::new(
            "sleep 1",
            dir.path().join("missing"),
            dir.path().join("log"),
            "m",
        );
        let error = spawn(&spec).err().expect("spawn fails");
        assert!(matches!(error, SpawnError::Spawn { .. }), "{error}");
        assert!(error.to_string().contains("missing"), "{error}");
    }

    #[tokio::test]
    async fn unwritable_log_is_a_log_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("file");
        std::fs::write(&file, "").expect("write");
        // A log "inside" a regular file cannot be created.
        let spec = Spec::new("sleep 1", dir.path(), file.join("app.log"), "m");
        assert!(matches!(spawn(&spec), Err(SpawnError::LogFile { .. })));
    }
}
