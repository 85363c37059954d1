//! The demo app (`examples/demo-app`) as a test upstream.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::Signal;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::binaries::binary;
use crate::process_group::{kill_group, signal_process};

/// A running demo app on 127.0.0.1 and a port of its own choosing.
pub struct App {
    child: Child,
    pid: u32,
    address: SocketAddr,
    version: String,
}

/// Options for an [`App`].
#[derive(Default)]
pub struct AppBuilder {
    version: String,
    env: Vec<(String, String)>,
}

impl AppBuilder {
    /// Sets an environment variable of the app (`HEALTH`, `BOOT_DELAY_MS`, …).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Starts it and waits (up to 10 s) until it listens.
    pub async fn start(self) -> anyhow::Result<App> {
        let mut command = Command::new(binary("demo-app"));
        command
            .env("PORT", "0")
            .env("VERSION", &self.version)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .kill_on_drop(true);
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let mut child = command.spawn().with_context(|| {
            format!(
                "starting {} (build it with cargo build)",
                binary("demo-app").display()
            )
        })?;
        let pid = child.id().context("demo app exited at once")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .context("demo app did not print its address within 10 s")??
            .context("demo app closed stdout before listening")?;
        let address = line
            .strip_prefix("listening on ")
            .context("unexpected first line from demo app")?
            .trim()
            .parse()
            .with_context(|| format!("bad address in {line:?}"))?;
        // Keep draining stdout so the app never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(App {
            child,
            pid,
            address,
            version: self.version,
        })
    }
}

impl App {
    /// Options for an app answering as `version` (its `X-Version` header).
    pub fn builder(version: &str) -> AppBuilder {
        AppBuilder {
            version: version.to_string(),
            env: Vec::new(),
        }
    }

    /// Starts an app answering as `version`.
    pub async fn start(version: &str) -> anyhow::Result<App> {
        App::builder(version).start().await
    }

    /// `127.0.0.1:PORT`, as `--target` wants it.
    pub fn target(&self) -> String {
        self.address.to_string()
    }

    /// Its address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Its version label.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// SIGTERM, then waits up to `deadline` for it to exit.
    pub async fn stop(&mut self, deadline: Duration) -> anyhow::Result<std::process::ExitStatus> {
        signal_process(self.pid, Signal::SIGTERM);
        tokio::time::timeout(deadline, self.child.wait())
            .await
            .context("demo app did not exit after SIGTERM")?
            .context("waiting for demo app")
    }
}

impl Drop for App {
    fn drop(&mut self) {
        // A reaped process's id may already belong to someone else.
        if matches!(self.child.try_wait(), Ok(None)) {
            kill_group(self.pid);
        }
    }
}
