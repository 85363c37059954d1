//! How each role of an app is started: command, directory, environment,
//! stop signal, log file.

use std::path::{Path, PathBuf};

use baton_api::{AppConfig, StopSignal};
use baton_release::AppRoot;
use baton_supervisor::{LogRotation, Spec};
use nix::sys::signal::Signal;

use crate::app_env;

/// The role name of web processes (worker names cannot take it).
pub const WEB: &str = "web";

/// What varies between the processes of one release.
pub struct Slot<'a> {
    /// The app's config for this release.
    pub config: &'a AppConfig,
    /// The release id.
    pub release: &'a str,
    /// `web` or a worker's name.
    pub role: &'a str,
    /// 1-based instance number.
    pub index: u32,
    /// The port of a web process.
    pub port: Option<u16>,
    /// The marker placed in the environment.
    pub marker: &'a str,
}

/// The log file of a slot: `<logs>/<app>/<release>/<role>-<index>.log`.
pub fn log_file(logs_dir: &Path, app: &str, release: &str, role: &str, index: u32) -> PathBuf {
    logs_dir
        .join(app)
        .join(release)
        .join(format!("{role}-{index}.log"))
}

/// The spec that starts `slot`, or why it cannot be started.
pub fn spec(slot: &Slot<'_>, logs_dir: &Path, rotation: LogRotation) -> Result<Spec, String> {
    let config = slot.config;
    let root = AppRoot::new(&config.app.root);
    let (command, stop_signal, stop_timeout, extra_env) = if slot.role == WEB {
        (
            &config.web.command,
            config.web.stop_signal,
            config.web.stop_timeout.get(),
            &config.web.env,
        )
    } else {
        let worker = config
            .workers
            .iter()
            .find(|worker| worker.name.as_str() == slot.role)
            .ok_or_else(|| {
                format!(
                    "release {} has no worker named {:?}",
                    slot.release, slot.role
                )
            })?;
        (
            &worker.command,
            worker.stop_signal,
            worker.stop_timeout.get(),
            &worker.env,
        )
    };
    let dotenv =
        baton_release::load_env_file(&root.env_file()).map_err(|error| error.to_string())?;
    let index = slot.index.to_string();
    let port = slot.port.map(|port| port.to_string());
    let shared = root.shared_dir().display().to_string();
    let mut ours = vec![
        ("BATON_APP", config.name()),
        ("BATON_RELEASE", slot.release),
        ("BATON_ROLE", slot.role),
        ("BATON_INDEX", index.as_str()),
        ("BATON_SHARED_DIR", shared.as_str()),
    ];
    if let Some(port) = &port {
        ours.push(("PORT", port.as_str()));
    }
    let env = app_env::layered(&[
        &app_env::inherited(),
        &dotenv,
        &app_env::from_table(extra_env),
        &app_env::pairs(&ours),
    ]);
    Ok(Spec {
        command: exec_ready(command),
        dir: root.release_dir(slot.release),
        env,
        log_file: log_file(logs_dir, config.name(), slot.release, slot.role, slot.index),
        log_rotation: rotation,
        stop_signal: signal(stop_signal),
        stop_timeout,
        marker: slot.marker.to_string(),
    })
}

/// The marker a deploy or rollback's build steps and hooks carry.
pub fn run_marker(app: &str, deploy_id: i64) -> String {
    format!("run-{app}-{deploy_id}")
}

/// The environment of build steps and hooks.
pub fn command_env(
    config: &AppConfig,
    release: &str,
    previous: Option<&str>,
    stage: &str,
    run_marker: &str,
) -> Result<Vec<(String, String)>, String> {
    let root = AppRoot::new(&config.app.root);
    let dotenv =
        baton_release::load_env_file(&root.env_file()).map_err(|error| error.to_string())?;
    let release_dir = root.release_dir(release).display().to_string();
    let shared = root.shared_dir().display().to_string();
    let ours = app_env::pairs(&[
        ("BATON_APP", config.name()),
        ("BATON_RELEASE", release),
        ("BATON_RELEASE_DIR", release_dir.as_str()),
        ("BATON_PREVIOUS_RELEASE", previous.unwrap_or("")),
        ("BATON_SHARED_DIR", shared.as_str()),
        ("BATON_STAGE", stage),
        (baton_supervisor::MARKER_VAR, run_marker),
    ]);
    Ok(app_env::layered(&[
        &app_env::inherited(),
        &dotenv,
        &app_env::from_table(&config.web.env),
        &ours,
    ]))
}

/// The supervisor runs `exec COMMAND` so the app, not a shell, holds the
/// pid and gets the stop signal; `exec` refuses leading `NAME=value`
/// words, so those go through `env`.
fn exec_ready(command: &str) -> String {
    let first = command.split_whitespace().next().unwrap_or("");
    let assignment = first.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    if assignment {
        format!("env {command}")
    } else {
        command.to_string()
    }
}

fn signal(stop: StopSignal) -> Signal {
    match stop {
        StopSignal::Term => Signal::SIGTERM,
        StopSignal::Int => Signal::SIGINT,
        StopSignal::Quit => Signal::SIGQUIT,
        StopSignal::Hup => Signal::SIGHUP,
        StopSignal::Usr1 => Signal::SIGUSR1,
        StopSignal::Usr2 => Signal::SIGUSR2,
        StopSignal::Winch => Signal::SIGWINCH,
        StopSignal::Kill => Signal::SIGKILL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_assignments_go_through_env() {
        assert_eq!(exec_ready("./server --port 1"), "./server --port 1");
        assert_eq!(
            exec_ready("VERSION=$(cat V) ./server"),
            "env VERSION=$(cat V) ./server"
        );
        assert_eq!(exec_ready("bin/run a=b"), "bin/run a=b");
        assert_eq!(exec_ready("1A=b x"), "1A=b x");
    }
}
