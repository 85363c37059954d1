//! The real `baton daemon` as a test fixture.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;
use baton_api::Client;
use nix::sys::signal::Signal;
use tokio::process::{Child, Command};

use crate::binaries::binary;
use crate::process_group::{group_alive, kill_group, signal_process};

/// A running daemon with a private state directory and port-0 listeners.
pub struct Daemon {
    child: Option<Child>,
    pid: u32,
    state_dir: PathBuf,
    // Held so the directory lives as long as the daemon (and is removed after).
    _temp: Option<tempfile::TempDir>,
    http: SocketAddr,
    https: Option<SocketAddr>,
}

/// Options for a [`Daemon`].
#[derive(Default)]
pub struct DaemonBuilder {
    args: Vec<String>,
    state_dir: Option<PathBuf>,
    tls: Option<(PathBuf, PathBuf)>,
}

/// What a finished `baton` command printed.
#[derive(Debug)]
pub struct CommandOutput {
    /// Its exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CommandOutput {
    /// Fails with both outputs unless the command succeeded.
    pub fn success(self) -> anyhow::Result<Self> {
        anyhow::ensure!(
            self.status.success(),
            "command failed ({}):\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout,
            self.stderr
        );
        Ok(self)
    }
}

impl DaemonBuilder {
    /// Adds daemon arguments (e.g. `["--drain-timeout", "2s"]`).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Uses an existing state directory (to restart on the same state).
    pub fn state_dir(mut self, dir: &Path) -> Self {
        self.state_dir = Some(dir.to_path_buf());
        self
    }

    /// Adds an HTTPS listener with this certificate and key.
    pub fn tls(mut self, cert: &Path, key: &Path) -> Self {
        self.tls = Some((cert.to_path_buf(), key.to_path_buf()));
        self
    }

    /// Starts the daemon and waits (up to 10 s) until its control API answers.
    pub async fn start(self) -> anyhow::Result<Daemon> {
        let (temp, state_dir) = match self.state_dir {
            Some(dir) => (None, dir),
            None => {
                let temp = tempfile::Builder::new().prefix("baton-test-").tempdir()?;
                let dir = temp.path().join("state");
                (Some(temp), dir)
            }
        };
        std::fs::create_dir_all(&state_dir)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(state_dir.join("daemon.log"))?;
        let mut command = Command::new(binary("baton"));
        command
            .arg("daemon")
            .args(["--http", "127.0.0.1:0"])
            .env("BATON_STATE_DIR", &state_dir)
            .env_remove("BATON_SOCKET")
            .env(
                "RUST_LOG",
                std::env::var("BATON_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0);
        if let Some((cert, key)) = &self.tls {
            command
                .args(["--https", "127.0.0.1:0", "--tls-cert"])
                .arg(cert)
                .arg("--tls-key")
                .arg(key);
        }
        command.args(&self.args);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", binary("baton").display()))?;
        let pid = child.id().context("daemon exited at once")?;
        let client = Client::new(state_dir.join("baton.sock"));
        let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
        let info = loop {
            if let Ok(answer) = client.daemon_info().await {
                break answer;
            }
            let exited = matches!(child.try_wait(), Ok(Some(_)));
            if exited || tokio::time::Instant::now() >= give_up {
                kill_group(pid);
                let logs =
                    std::fs::read_to_string(state_dir.join("daemon.log")).unwrap_or_default();
                anyhow::bail!("the daemon did not start serving within 10 s:\n{logs}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let address = |protocol: &str| {
            info.listeners
                .iter()
                .find(|listener| listener.protocol == protocol)
                .and_then(|listener| listener.address.parse().ok())
        };
        let http = address("http").context("daemon reports no http listener")?;
        Ok(Daemon {
            child: Some(child),
            pid,
            state_dir,
            _temp: temp,
            http,
            https: address("https"),
        })
    }
}

impl Daemon {
    /// Options for a daemon.
    pub fn builder() -> DaemonBuilder {
        DaemonBuilder::default()
    }

    /// Starts a daemon with default options.
    pub async fn start() -> anyhow::Result<Daemon> {
        Daemon::builder().start().await
    }

    /// The plain-HTTP listener.
    pub fn http_address(&self) -> SocketAddr {
        self.http
    }

    /// The HTTPS listener, if started with TLS.
    pub fn https_address(&self) -> Option<SocketAddr> {
        self.https
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The control socket.
    pub fn socket(&self) -> PathBuf {
        self.state_dir.join("baton.sock")
    }

    /// A control API client.
    pub fn client(&self) -> Client {
        Client::new(self.socket())
    }

    /// The process id of the daemon this fixture started.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The process id of the daemon serving now: after `baton upgrade`,
    /// the new one (it runs in the first one's process group, so cleanup
    /// reaches it).
    pub async fn serving_pid(&self) -> anyhow::Result<u32> {
        Ok(self.client().daemon_info().await?.pid)
    }

    /// The daemon's log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.state_dir.join("daemon.log")).unwrap_or_default()
    }

    /// A `baton` command aimed at this daemon's socket.
    pub fn command(&self) -> Command {
        let mut command = Command::new(binary("baton"));
        command
            .env("BATON_SOCKET", self.socket())
            .env("BATON_STATE_DIR", &self.state_dir)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Runs `baton ARGS…` against this daemon (up to 120 s).
    pub async fn baton(&self, args: &[&str]) -> anyhow::Result<CommandOutput> {
        let output =
            tokio::time::timeout(Duration::from_secs(120), self.command().args(args).output())
                .await
                .with_context(|| format!("baton {args:?} did not finish within 120 s"))??;
        Ok(CommandOutput {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: Signal) {
        signal_process(self.pid, signal);
    }

    /// Waits up to `deadline` for the daemon to exit.
    pub async fn wait_exit(&mut self, deadline: Duration) -> anyhow::Result<ExitStatus> {
        let child = self.child.as_mut().context("daemon already reaped")?;
        let status = tokio::time::timeout(deadline, child.wait())
            .await
            .with_context(|| format!("daemon still running after {deadline:?}"))??;
        Ok(status)
    }

    /// SIGKILLs the daemon and reaps it; the state directory stays.
    pub async fn kill9(&mut self) -> anyhow::Result<()> {
        kill_group(self.pid);
        self.wait_exit(Duration::from_secs(10)).await.map(|_| ())
    }

    /// Takes the temporary directory out, so it outlives this daemon (for a
    /// restart on the same state).
    pub fn keep_state(&mut self) -> Option<tempfile::TempDir> {
        self._temp.take()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // A reaped process's id may already belong to someone else, but not
        // while it still names a process group with members: a daemon that
        // took over by `baton upgrade` runs on in the first one's group.
        let running = self
            .child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)));
        if running || group_alive(self.pid) {
            kill_group(self.pid);
        }
        if std::thread::panicking() {
            eprintln!(
                "--- daemon log ({}) ---\n{}",
                self.state_dir.display(),
                self.logs()
            );
        }
    }
}
