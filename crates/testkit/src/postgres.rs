//! A throwaway PostgreSQL cluster: `initdb` in a temporary directory, the
//! server on a free 127.0.0.1 port with its unix socket in that directory,
//! stopped (by its process id) and removed when dropped.
//!
//! The server binaries are Debian's (`/usr/lib/postgresql/<version>/bin`,
//! the newest installed), or those in `BATON_PG_BIN`. `scripts/test`
//! installs them. PostgreSQL refuses to run as root, so a test running as
//! root runs `initdb` and the server as the `postgres` user the Debian
//! package creates, and hands it the temporary directory.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use nix::sys::signal::Signal;

use crate::process_group::{kill_group, signal_process};

/// How long a cluster may take to accept connections.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// A running cluster with trust authentication for the user `postgres`.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    server: Child,
}

impl Postgres {
    /// Creates a cluster and starts its server; returns once it accepts
    /// connections.
    pub async fn start() -> anyhow::Result<Postgres> {
        let bin = server_binaries()?;
        let owner = cluster_owner()?;
        let dir = tempfile::Builder::new()
            .prefix("baton-pg-")
            .tempdir()
            .context("creating the cluster's temporary directory")?;
        if let Some((uid, gid)) = owner {
            nix::unistd::chown(dir.path(), Some(uid.into()), Some(gid.into()))
                .context("giving the cluster's directory to the postgres user")?;
        }
        let data = dir.path().join("data");
        let initdb = tokio::process::Command::from(as_owner(
            std::process::Command::new(bin.join("initdb")),
            owner,
        ))
        .args(["--no-sync", "--auth=trust", "--username=postgres"])
        .args(["--encoding=UTF8", "--locale=C", "-D"])
        .arg(&data)
        .output()
        .await
        .with_context(|| format!("running {}", bin.join("initdb").display()))?;
        if !initdb.status.success() {
            bail!(
                "initdb failed ({}): {}",
                initdb.status,
                String::from_utf8_lossy(&initdb.stderr)
            );
        }
        // A port can be taken between picking and binding it: try again.
        let mut failures = Vec::new();
        for _ in 0..3 {
            match start_server(&bin, dir.path(), owner).await {
                Ok((port, server)) => {
                    return Ok(Postgres {
                        dir,
                        bin,
                        port,
                        server,
                    });
                }
                Err(error) => failures.push(format!("{error:#}")),
            }
        }
        bail!(
            "the PostgreSQL server did not start: {}",
            failures.join("\n")
        )
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of the database `postgres`.
    pub fn url(&self) -> String {
        self.url_of("postgres")
    }

    /// The URL of `database`.
    pub fn url_of(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates `database`; returns its URL.
    pub async fn create_database(&self, database: &str) -> anyhow::Result<String> {
        self.psql("postgres", &format!("CREATE DATABASE \"{database}\""))
            .await?;
        Ok(self.url_of(database))
    }

    /// Runs `sql` in `database` with `psql`; returns what it printed, one
    /// row a line, columns separated by `|`.
    pub async fn psql(&self, database: &str, sql: &str) -> anyhow::Result<String> {
        let output = tokio::process::Command::new(self.bin.join("psql"))
            .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
            .arg(self.port.to_string())
            .args(["-d", database, "-c", sql])
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .await
            .context("running psql")?;
        if !output.status.success() {
            bail!(
                "psql -c {sql:?} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// What the server wrote to its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Postgres {
    /// An immediate shutdown (SIGQUIT), then SIGKILL to whatever of its
    /// process group is left; the directory goes with `dir`.
    fn drop(&mut self) {
        if matches!(self.server.try_wait(), Ok(None)) {
            signal_process(self.server.id(), Signal::SIGQUIT);
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while matches!(self.server.try_wait(), Ok(None)) && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        kill_group(self.server.id());
        let _ = self.server.wait();
    }
}

/// Starts the server of the cluster in `dir` on a free port and waits
/// until it answers.
async fn start_server(
    bin: &Path,
    dir: &Path,
    owner: Option<(u32, u32)>,
) -> anyhow::Result<(u16, Child)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let log = std::fs::File::create(dir.join("server.log"))?;
    let mut command = as_owner(std::process::Command::new(bin.join("postgres")), owner);
    command
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
        .arg(dir)
        // A test's data is thrown away: durability buys nothing here.
        .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
        .args(["-c", "full_page_writes=off", "-c", "max_connections=50"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .process_group(0);
    let mut server = command
        .spawn()
        .with_context(|| format!("starting {}", bin.join("postgres").display()))?;
    let deadline = tokio::time::Instant::now() + START_DEADLINE;
    loop {
        if let Some(status) = server.try_wait()? {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            bail!("postgres exited ({status}) on port {port}: {log}");
        }
        let ready = tokio::process::Command::new(bin.join("pg_isready"))
            .args([
                "-q",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-p",
                &port.to_string(),
            ])
            .status()
            .await?;
        if ready.success() {
            return Ok((port, server));
        }
        if tokio::time::Instant::now() >= deadline {
            kill_group(server.id());
            let _ = server.wait();
            bail!("postgres did not accept connections on port {port} within {START_DEADLINE:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The newest installed server's `bin` directory.
fn server_binaries() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("BATON_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "no PostgreSQL server is installed (no /usr/lib/postgresql/*/bin/postgres); \
             scripts/test installs Debian's postgresql, or set BATON_PG_BIN to a bin directory"
        ),
    }
}

/// The (uid, gid) to run the cluster as: `postgres` when the test runs as
/// root (the server refuses root), else the test's own user.
fn cluster_owner() -> anyhow::Result<Option<(u32, u32)>> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let user = nix::unistd::User::from_name("postgres")?.context(
        "running as root, PostgreSQL needs another user: the postgres user (Debian's postgresql package creates it) does not exist",
    )?;
    Ok(Some((user.uid.as_raw(), user.gid.as_raw())))
}

fn as_owner(
    mut command: std::process::Command,
    owner: Option<(u32, u32)>,
) -> std::process::Command {
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
    }
    // The server's children must not look for a home that is root's.
    command.current_dir("/");
    command
}
