//! `baton demo`: a zero-downtime deploy, shown end to end on this host.
//!
//! In a temporary directory it starts a daemon, deploys the demo app (two
//! web processes and a worker), then deploys changed versions and rolls
//! back once while a probe sends load through the proxy, and prints the
//! probe's report. Everything it starts runs in its own process group and
//! is stopped before the command returns, on failure and Ctrl-C too.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use baton_api::{
    AppConfig, Client, DeployEvent, DeployReport, DeployRequest, DeploySource, RollbackRequest,
};
use baton_probe::{ProbeConfig, ProbeError, Report};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, getpgid};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app_command::{format_ms, print_event};

/// The demo app's name, also its service in the proxy.
const APP: &str = "demo";
/// Keep-alive connections the probe holds open through every deploy.
const CONNECTIONS: usize = 32;
/// The response header that tells which version answered.
const VERSION_HEADER: &str = "X-Version";
/// Who the deploys are recorded as in `baton history`.
const USER: &str = "baton demo";
/// How long the daemon may take to answer on its control socket.
const DAEMON_START: Duration = Duration::from_secs(10);
/// How long one deploy or rollback may take, from request to drained.
const RUN_DEADLINE: Duration = Duration::from_secs(60);
/// Load before the first deploy and after the rollback, so the report
/// covers steady state on both sides of the changes.
const SETTLE: Duration = Duration::from_secs(1);
/// How long the probe may take to finish its requests in flight.
const PROBE_STOP: Duration = Duration::from_secs(15);
/// How long the daemon may take to exit after SIGTERM.
const DAEMON_STOP: Duration = Duration::from_secs(15);
/// How long app processes may take to exit after SIGTERM.
const APPS_STOP: Duration = Duration::from_secs(5);
/// A bound the probe never reaches: the demo stops it explicitly.
const PROBE_LIMIT: Duration = Duration::from_secs(30 * 60);

/// `baton demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// How many changed versions to deploy under load (before the rollback)
    #[arg(
        long,
        default_value_t = 5,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=100)
    )]
    pub deploys: u32,
    /// Keep the temporary directory (state, releases, logs) and print its path
    #[arg(long)]
    pub keep: bool,
    /// The demo web app [default: demo-app next to the baton executable]
    #[arg(long, value_name = "PATH")]
    pub app_binary: Option<PathBuf>,
    /// The demo worker [default: demo-worker next to the baton executable]
    #[arg(long, value_name = "PATH")]
    pub worker_binary: Option<PathBuf>,
}

/// Runs `baton demo`: exit 0 only if every deploy and the rollback
/// succeeded and the probe saw no failed request.
pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let baton = std::env::current_exe().context("cannot find the baton executable")?;
    let app_binary = demo_binary(
        args.app_binary.as_deref(),
        &baton,
        "demo-app",
        "--app-binary",
    )?;
    let worker_binary = demo_binary(
        args.worker_binary.as_deref(),
        &baton,
        "demo-worker",
        "--worker-binary",
    )?;
    let mut sandbox = Sandbox::create(args.keep)?;
    if args.keep {
        println!("directory  {} (kept)", sandbox.path.display());
    }
    let binaries = Binaries {
        baton,
        app: app_binary,
        worker: worker_binary,
    };
    let outcome = tokio::select! {
        outcome = sandbox.show(&binaries, args.deploys) => outcome,
        signal = interrupted() => {
            eprintln!("\ninterrupted by {signal}: stopping everything");
            Ok(false)
        }
    };
    let stopped = sandbox.stop().await;
    println!("{stopped}");
    if let Err(error) = &outcome {
        // Without --keep the directory, and the log with it, is gone after this.
        eprintln!("{}", sandbox.daemon_log_tail());
        eprintln!("error: {error:#}");
    }
    if args.keep {
        println!(
            "kept       {} (daemon.log, state/, app/releases/)",
            sandbox.path.display()
        );
    }
    let passed = matches!(outcome, Ok(true));
    println!(
        "baton demo {} in {:.1} s",
        if passed { "passed" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The executables the demo runs.
struct Binaries {
    baton: PathBuf,
    app: PathBuf,
    worker: PathBuf,
}

/// `--app-binary`/`--worker-binary`, or the binary built next to `baton`.
fn demo_binary(
    given: Option<&Path>,
    baton: &Path,
    name: &str,
    flag: &str,
) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        let path = std::path::absolute(path)
            .with_context(|| format!("cannot resolve {flag} {}", path.display()))?;
        if !path.is_file() {
            bail!("{flag} {}: no such file", path.display());
        }
        return Ok(path);
    }
    let path = baton
        .parent()
        .map(|dir| dir.join(name))
        .with_context(|| format!("cannot find the directory of {}", baton.display()))?;
    if !path.is_file() {
        bail!(
            "{name} is not next to baton ({} is missing); build it with \
             `cargo build --release --workspace`, or pass {flag} PATH",
            path.display()
        );
    }
    Ok(path)
}

/// The temporary directory and everything started in it. Dropping it
/// SIGKILLs whatever [`Sandbox::stop`] did not get to stop.
struct Sandbox {
    /// Held only to be removed when the sandbox drops; `None` with `--keep`.
    _dir: Option<tempfile::TempDir>,
    /// Canonical, so it compares with the working directories in /proc.
    path: PathBuf,
    daemon: Option<Child>,
    client: Client,
    probe: Option<Probe>,
}

/// The probe running in the background.
struct Probe {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<Report, ProbeError>>,
}

impl Sandbox {
    fn create(keep: bool) -> anyhow::Result<Sandbox> {
        let dir = tempfile::Builder::new()
            .prefix("baton-demo-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let path = dir
            .path()
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", dir.path().display()))?;
        let dir = if keep {
            let _kept = dir.keep();
            None
        } else {
            Some(dir)
        };
        Ok(Sandbox {
            client: Client::new(path.join("state").join("baton.sock")),
            _dir: dir,
            path,
            daemon: None,
            probe: None,
        })
    }

    /// The demo proper; `Ok(false)` when a deploy failed or the probe saw
    /// a failed request.
    async fn show(&mut self, binaries: &Binaries, deploys: u32) -> anyhow::Result<bool> {
        let address = self.start_daemon(&binaries.baton).await?;
        let url = format!("http://{address}/");
        println!(
            "daemon     {url} (state in {})",
            self.path.join("state").display()
        );
        let source = self.write_source(binaries)?;

        println!(
            "\ndeploy v1: 2 web processes and 1 worker, from {}",
            source.display()
        );
        let first = self.deploy(&source, "v1", true).await?;
        let mut versions = BTreeMap::from([(first.release, "v1".to_string())]);

        self.start_probe(&url);
        println!(
            "\nprobe      {CONNECTIONS} keep-alive connections to {url}, counting {VERSION_HEADER}"
        );
        tokio::time::sleep(SETTLE).await;

        let mut deployed = true;
        let (mut deploys_run, mut rollbacks_run) = (0, 0);
        for n in 1..=deploys {
            let version = format!("v{}", n + 1);
            deploys_run += 1;
            match self.deploy(&source, &version, false).await {
                Ok(report) => {
                    println!(
                        "deploy {n}/{deploys}: {version} live in {} (boot {}, drain {})",
                        format_ms(report.duration_ms),
                        format_ms(report.boot_ms),
                        format_ms(report.drain_ms)
                    );
                    versions.insert(report.release, version);
                }
                Err(error) => {
                    eprintln!("deploy {n}/{deploys}: {version} failed: {error:#}");
                    deployed = false;
                    break;
                }
            }
        }
        if deployed {
            rollbacks_run += 1;
            match self.rollback().await {
                Ok(report) => {
                    let version = versions
                        .get(&report.release)
                        .map_or(report.release.as_str(), String::as_str);
                    let how = if report.warm {
                        "warm".to_string()
                    } else {
                        format!("boot {}", format_ms(report.boot_ms))
                    };
                    println!(
                        "rollback: {version} live in {} ({how})",
                        format_ms(report.duration_ms)
                    );
                }
                Err(error) => {
                    eprintln!("rollback failed: {error:#}");
                    deployed = false;
                }
            }
        }
        tokio::time::sleep(SETTLE).await;

        let report = self.stop_probe().await?;
        println!("\n{report}\n");
        let clean = report.is_clean() && report.total > 0;
        println!(
            "result     {} requests through {} and {}: {} failed",
            report.total,
            counted(deploys_run, "deploy"),
            counted(rollbacks_run, "rollback"),
            report.failed()
        );
        Ok(deployed && clean)
    }

    /// Starts `baton daemon` with a proxy on a free port; returns the
    /// proxy's address once the control API answers.
    async fn start_daemon(&mut self, baton: &Path) -> anyhow::Result<String> {
        let log_path = self.path.join("daemon.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let child = std::process::Command::new(baton)
            .arg("daemon")
            .args(["--http", "127.0.0.1:0"])
            .arg("--state-dir")
            .arg(self.path.join("state"))
            // Nothing is in flight when the demo stops it: no reason to wait.
            .args(["--drain-timeout", "5s", "--idle-grace", "1s"])
            .env_remove("BATON_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            // Away from the terminal's group: Ctrl-C reaches the demo only,
            // which then stops the daemon in order.
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {} daemon", baton.display()))?;
        let daemon = self.daemon.insert(child);
        let give_up = Instant::now() + DAEMON_START;
        let info = loop {
            if let Ok(Ok(info)) =
                tokio::time::timeout(Duration::from_secs(1), self.client.daemon_info()).await
            {
                break info;
            }
            if let Ok(Some(status)) = daemon.try_wait() {
                bail!("the daemon exited at once ({status})");
            }
            if Instant::now() >= give_up {
                bail!(
                    "the daemon did not answer on {} within {} s",
                    self.client.socket().display(),
                    DAEMON_START.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        info.listeners
            .into_iter()
            .find(|listener| listener.protocol == "http")
            .map(|listener| listener.address)
            .context("the daemon reports no http listener")
    }

    /// Writes the app's source directory: `server` and `worker` scripts, a
    /// `VERSION` file (set by each deploy) and `baton.toml`.
    fn write_source(&self, binaries: &Binaries) -> anyhow::Result<PathBuf> {
        let source = self.path.join("src");
        std::fs::create_dir_all(&source)
            .with_context(|| format!("cannot create {}", source.display()))?;
        write_script(&source.join("server"), &server_script(&binaries.app))?;
        write_script(&source.join("worker"), &worker_script(&binaries.worker))?;
        let config = source.join("baton.toml");
        std::fs::write(&config, config_text(&self.path.join("app")))
            .with_context(|| format!("cannot write {}", config.display()))?;
        Ok(source)
    }

    /// Deploys `source` at `version`. With `verbose` every stage is printed
    /// as `baton deploy` prints it.
    async fn deploy(
        &self,
        source: &Path,
        version: &str,
        verbose: bool,
    ) -> anyhow::Result<DeployReport> {
        // A changed VERSION changes the content hash, so each deploy is a
        // new release.
        let version_file = source.join("VERSION");
        std::fs::write(&version_file, format!("{version}\n"))
            .with_context(|| format!("cannot write {}", version_file.display()))?;
        let request = DeployRequest {
            config: AppConfig::load(&source.join("baton.toml"))?,
            source: DeploySource::Dir {
                path: source.to_path_buf(),
            },
            user: USER.to_string(),
            strategy: None,
            allow_unsafe_migrations: None,
            force: None,
        };
        let run = self.client.deploy(&request, |event| {
            // The failure is reported once, by the caller.
            if verbose && !matches!(event, DeployEvent::Failed { .. }) {
                print_event(event);
            }
        });
        finished(tokio::time::timeout(RUN_DEADLINE, run).await, "the deploy")
    }

    /// Rolls back to the release before the current one.
    async fn rollback(&self) -> anyhow::Result<DeployReport> {
        let request = RollbackRequest {
            to: None,
            user: USER.to_string(),
        };
        let run = self.client.rollback(APP, &request, |_| {});
        finished(
            tokio::time::timeout(RUN_DEADLINE, run).await,
            "the rollback",
        )
    }

    /// Starts the probe in the background: the same engine and report as
    /// `baton probe URL --concurrency 32 --count-header X-Version`.
    fn start_probe(&mut self, url: &str) {
        let mut config = ProbeConfig::new(url);
        config.concurrency = CONNECTIONS;
        config.duration = PROBE_LIMIT;
        config.count_header = Some(VERSION_HEADER.to_string());
        let (stop, stopped) = oneshot::channel::<()>();
        // A dropped sender ends the run too, so the probe never outlives
        // the demo.
        let task = tokio::spawn(baton_probe::run_until(config, async move {
            let _ = stopped.await;
        }));
        self.probe = Some(Probe { stop, task });
    }

    /// Ends the probe and returns its report.
    async fn stop_probe(&mut self) -> anyhow::Result<Report> {
        let Probe { stop, mut task } = self.probe.take().context("the probe is not running")?;
        let _ = stop.send(());
        match tokio::time::timeout(PROBE_STOP, &mut task).await {
            Ok(joined) => Ok(joined.context("the probe failed")??),
            Err(_) => {
                task.abort();
                bail!("the probe did not finish within {} s", PROBE_STOP.as_secs())
            }
        }
    }

    /// Stops everything in order: the probe, the daemon (SIGTERM), then the
    /// app processes, which a stopping daemon leaves running on purpose (a
    /// new daemon adopts them). Says what it stopped.
    async fn stop(&mut self) -> String {
        if let Some(probe) = self.probe.take() {
            probe.task.abort();
        }
        let Some(mut daemon) = self.daemon.take() else {
            return "stopped    nothing was running".to_string();
        };
        let mut apps: Vec<u32> =
            match tokio::time::timeout(Duration::from_secs(5), self.client.processes(None)).await {
                Ok(Ok(processes)) => processes
                    .iter()
                    .map(|process| process.pid)
                    .filter(|pid| *pid != 0)
                    .collect(),
                _ => Vec::new(),
            };
        let daemon_stop = stop_daemon(&mut daemon).await;
        // Processes the list missed (one starting as the daemon stopped)
        // still have their working directory in a release under here.
        for pid in processes_under(&self.path) {
            if !apps.contains(&pid) {
                apps.push(pid);
            }
        }
        let count = apps.len();
        let killed = stop_groups(&apps).await;
        let apps_stop = if killed == 0 {
            format!("{count} app processes (SIGTERM)")
        } else {
            format!("{count} app processes ({killed} needed SIGKILL)")
        };
        format!("\nstopped    the daemon ({daemon_stop}) and {apps_stop}")
    }

    /// The end of the daemon's log, to show with an error.
    fn daemon_log_tail(&self) -> String {
        let path = self.path.join("daemon.log");
        let mut text = String::new();
        if std::fs::File::open(&path)
            .and_then(|mut file| file.read_to_string(&mut text))
            .is_err()
        {
            return format!("(no daemon log at {})", path.display());
        }
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!(
            "--- the daemon's log ({}), last lines ---\n{tail}",
            path.display()
        )
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(probe) = self.probe.take() {
            probe.task.abort();
        }
        if let Some(mut daemon) = self.daemon.take() {
            // A reaped child's pid may already be someone else's.
            if matches!(daemon.try_wait(), Ok(None)) {
                signal_group(daemon.id(), Signal::SIGKILL);
                let _ = daemon.wait();
            }
        }
        for pid in processes_under(&self.path) {
            signal_group(pid, Signal::SIGKILL);
        }
        // `_dir` is removed after this, when the fields drop.
    }
}

/// The last event of a deploy or rollback, as its report or an error.
fn finished(
    result: Result<Result<DeployEvent, baton_api::ApiError>, tokio::time::error::Elapsed>,
    what: &str,
) -> anyhow::Result<DeployReport> {
    let event = result
        .map_err(|_| anyhow!("{what} did not finish within {} s", RUN_DEADLINE.as_secs()))??;
    match event {
        DeployEvent::Succeeded { report } => Ok(report),
        DeployEvent::Failed { stage, error } => Err(anyhow!("failed at {stage}: {error}")),
        other => Err(anyhow!("{what} ended without an outcome: {other:?}")),
    }
}

/// SIGTERM, then SIGKILL after [`DAEMON_STOP`]; says which it took.
async fn stop_daemon(daemon: &mut Child) -> &'static str {
    if !matches!(daemon.try_wait(), Ok(None)) {
        return "already exited";
    }
    signal_process(daemon.id(), Signal::SIGTERM);
    let give_up = Instant::now() + DAEMON_STOP;
    while Instant::now() < give_up {
        if !matches!(daemon.try_wait(), Ok(None)) {
            return "SIGTERM";
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal_group(daemon.id(), Signal::SIGKILL);
    let _ = daemon.wait();
    "SIGKILL after SIGTERM timed out"
}

/// SIGTERMs each process's group, waits up to [`APPS_STOP`], then
/// SIGKILLs the groups still there; returns how many needed SIGKILL.
async fn stop_groups(pids: &[u32]) -> usize {
    for pid in pids {
        signal_group(*pid, Signal::SIGTERM);
    }
    let give_up = Instant::now() + APPS_STOP;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|pid| alive(*pid)).collect();
        if left.is_empty() {
            return 0;
        }
        if Instant::now() >= give_up {
            for pid in &left {
                signal_group(*pid, Signal::SIGKILL);
            }
            return left.len();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `signal` to the group `pid` leads (every app runs in its own), or
/// to `pid` alone if it leads none: never to the demo's own group.
fn signal_group(pid: u32, signal: Signal) {
    let Ok(raw) = i32::try_from(pid) else { return };
    let pid = Pid::from_raw(raw);
    let own = getpgid(None).ok();
    match getpgid(Some(pid)) {
        Ok(group) if group == pid && Some(group) != own => {
            let _ = killpg(group, signal);
        }
        _ => {
            let _ = kill(pid, signal);
        }
    }
}

fn signal_process(pid: u32, signal: Signal) {
    if let Ok(raw) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(raw), signal);
    }
}

/// Whether `pid` runs. A zombie does not: once the daemon is gone its
/// children belong to init, which may reap them late (or, in a container,
/// never).
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which may itself hold ')'.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state != "Z" && state != "X")
}

/// Pids of processes (other than this one) whose working directory is
/// under `dir`: the app's releases run there.
fn processes_under(dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = std::process::id();
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != own && alive(*pid))
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(dir))
        })
        .collect()
}

/// Resolves with the name of the signal that asks the demo to end early.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut terminate) = signal(SignalKind::terminate()) else {
        // Without a handler SIGTERM ends the process: the apps stay up, but
        // there is nothing better to do.
        let _ = tokio::signal::ctrl_c().await;
        return "Ctrl-C";
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = terminate.recv() => "SIGTERM",
    }
}

fn write_script(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("cannot make {} executable", path.display()))
}

/// The app's `server`: the demo app at the version in `VERSION`.
fn server_script(app: &Path) -> String {
    format!(
        "#!/bin/sh\n\
         # The demo web app; it listens on $PORT and answers with its VERSION.\n\
         VERSION=$(cat VERSION)\n\
         export VERSION\n\
         exec {}\n",
        shell_quote(&app.display().to_string())
    )
}

/// The app's `worker`: the demo worker, its queue in the shared directory
/// so that every release works the same queue.
fn worker_script(worker: &Path) -> String {
    format!(
        "#!/bin/sh\n\
         VERSION=$(cat VERSION)\n\
         QUEUE_DB=\"$BATON_SHARED_DIR/queue.db\"\n\
         export VERSION QUEUE_DB\n\
         exec {}\n",
        shell_quote(&worker.display().to_string())
    )
}

/// The demo's `baton.toml`, with its app root at `root`. Timeouts are
/// short so that a broken setup fails in seconds, not minutes.
fn config_text(root: &Path) -> String {
    format!(
        r#"# Written by `baton demo`.
[app]
name = "{APP}"
root = {root}
keep_releases = 3

[web]
command = "./server"
processes = 2
health_path = "/health"
health_interval = "50ms"
healthy_after = 2
boot_timeout = "20s"
drain_timeout = "10s"
stop_timeout = "5s"
keep_warm = "30s"

[[workers]]
name = "jobs"
command = "./worker"
processes = 1
stop_timeout = "10s"
"#,
        root = toml_string(&root.display().to_string())
    )
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// `1 deploy`, `5 deploys`.
fn counted(n: u32, thing: &str) -> String {
    if n == 1 {
        format!("{n} {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// `text` as one single-quoted shell word.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_parses_as_described() {
        let root = Path::new("/tmp/baton-demo-x/app \"quoted\" \\ dir");
        let config = match AppConfig::parse(&config_text(root), Path::new("/tmp/x/baton.toml")) {
            Ok(config) => config,
            Err(error) => panic!("{error}"),
        };
        assert_eq!(config.name(), APP);
        assert_eq!(config.app.root, root);
        assert_eq!(config.web.processes.get(), 2);
        assert_eq!(config.web.health_interval.get(), Duration::from_millis(50));
        assert_eq!(config.web.keep_warm.get(), Duration::from_secs(30));
        assert_eq!(config.workers.len(), 1);
        assert_eq!(config.workers[0].name.as_str(), "jobs");
        assert_eq!(config.workers[0].processes.get(), 1);
    }

    #[test]
    fn flags_and_their_bounds() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: DemoArgs,
        }
        let parse = |argv: &[&str]| {
            <Cli as clap::Parser>::try_parse_from(
                std::iter::once("demo").chain(argv.iter().copied()),
            )
            .map(|cli| cli.args)
        };
        match parse(&[]) {
            Ok(args) => assert!(args.deploys == 5 && !args.keep && args.app_binary.is_none()),
            Err(error) => panic!("{error}"),
        }
        match parse(&["--deploys", "2", "--keep", "--worker-binary", "w"]) {
            Ok(args) => {
                assert!(args.deploys == 2 && args.keep);
                assert_eq!(args.worker_binary, Some(PathBuf::from("w")));
            }
            Err(error) => panic!("{error}"),
        }
        assert!(parse(&["--deploys", "0"]).is_err());
    }

    #[test]
    fn scripts_quote_the_binary_path() {
        let script = server_script(Path::new("/opt/it's here/demo-app"));
        assert!(
            script.ends_with("exec '/opt/it'\\''s here/demo-app'\n"),
            "{script}"
        );
        assert!(worker_script(Path::new("/w")).contains("QUEUE_DB=\"$BATON_SHARED_DIR/queue.db\""));
    }

    #[test]
    fn a_missing_demo_binary_says_how_to_build_it() {
        let error = match demo_binary(
            None,
            Path::new("/nonexistent/bin/baton"),
            "demo-app",
            "--app-binary",
        ) {
            Ok(path) => panic!("found {}", path.display()),
            Err(error) => error.to_string(),
        };
        assert!(
            error.contains("cargo build --release --workspace"),
            "{error}"
        );
        assert!(error.contains("/nonexistent/bin/demo-app"), "{error}");
    }

    #[test]
    fn this_process_is_alive_and_not_under_an_empty_dir() {
        assert!(alive(std::process::id()));
        assert!(!alive(u32::MAX));
        assert!(processes_under(Path::new("/nonexistent-baton-demo")).is_empty());
    }
}
