//! The app commands: `deploy`, `rollback`, `releases`, `history`, `ps`,
//! `logs`. Each finds its app by `--config FILE` (default `./baton.toml`)
//! or `--app NAME`.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use baton_api::{AppConfig, Client, DeployEvent, DeployRequest, DeploySource, RollbackRequest};
use tokio::sync::mpsc;

/// Which app a command is about.
#[derive(Debug, Clone, clap::Args)]
pub struct AppSelector {
    /// The app's baton.toml [default: ./baton.toml]
    #[arg(long, short = 'c', value_name = "FILE", conflicts_with = "app")]
    pub config: Option<PathBuf>,
    /// The app's name, instead of its baton.toml
    #[arg(long, value_name = "NAME")]
    pub app: Option<String>,
}

impl AppSelector {
    fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| PathBuf::from("baton.toml"))
    }

    /// The app's name: `--app`, or the name in the config file.
    pub fn name(&self) -> anyhow::Result<String> {
        if let Some(app) = &self.app {
            return Ok(app.clone());
        }
        Ok(AppConfig::load(&self.config_path())?.name().to_string())
    }
}

/// `baton deploy`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub selector: AppSelector,
    /// The code to deploy [default: the directory holding baton.toml]
    #[arg(long, value_name = "DIR", conflicts_with = "git")]
    pub source: Option<PathBuf>,
    /// Deploy from a git repository (URL or path) instead of a directory
    #[arg(long, value_name = "REPO")]
    pub git: Option<String>,
    /// The branch, tag or commit of --git
    #[arg(
        long = "ref",
        value_name = "REF",
        requires = "git",
        default_value = "HEAD"
    )]
    pub reference: String,
    /// How traffic moves to the new version, overriding `[rollout] strategy`
    #[arg(long, value_parser = ["replace", "blue-green", "canary"])]
    pub strategy: Option<String>,
    /// Deploy although the migration lint finds errors; the reason is kept in the deploy's history
    #[arg(long, value_name = "REASON", value_parser = non_empty_reason)]
    pub allow_unsafe_migrations: Option<String>,
    /// Deploy although the app's error budget is spent; the reason is kept in the deploy's history
    #[arg(long, value_name = "REASON", value_parser = non_empty_force_reason)]
    pub force: Option<String>,
    /// Print the events as JSON lines
    #[arg(long)]
    pub json: bool,
}

/// `--force` must say why: it is what history keeps.
fn non_empty_force_reason(reason: &str) -> Result<String, String> {
    if reason.trim().is_empty() {
        return Err("give the reason to deploy anyway, e.g. \"hotfix for the outage\"".to_string());
    }
    Ok(reason.to_string())
}

/// A reason must say something: it is what history keeps.
fn non_empty_reason(reason: &str) -> Result<String, String> {
    if reason.trim().is_empty() {
        return Err(
            "give the reason the migrations are safe anyway, e.g. \"users has 40 rows\""
                .to_string(),
        );
    }
    Ok(reason.trim().to_string())
}

/// `baton rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub selector: AppSelector,
    /// The release to return to [default: the one that served before the current one]
    #[arg(long, value_name = "RELEASE_ID")]
    pub to: Option<String>,
    /// Print the events as JSON lines
    #[arg(long)]
    pub json: bool,
}

/// `baton releases` and `baton ps`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub selector: AppSelector,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

/// `baton history`.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub selector: AppSelector,
    /// How many runs to show, newest first
    #[arg(short = 'n', long, default_value_t = 20)]
    pub limit: usize,
    /// Show one run's every stage, output line and rollout decision
    #[arg(long, value_name = "ID")]
    pub deploy: Option<i64>,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

/// `baton logs`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// `web` or a worker's name [default: every process]
    pub role: Option<String>,
    #[command(flatten)]
    pub selector: AppSelector,
    /// The release whose logs to show [default: the current one]
    #[arg(long, value_name = "ID")]
    pub release: Option<String>,
    /// Keep printing new lines as they are written
    #[arg(short, long)]
    pub follow: bool,
    /// Lines to show from the end of each log
    #[arg(short = 'n', long, default_value_t = 50)]
    pub lines: usize,
}

/// `baton pause`.
#[derive(Debug, clap::Args)]
pub struct PauseArgs {
    #[command(flatten)]
    pub selector: AppSelector,
    /// Longest a request is held; then it is answered 503 with Retry-After
    #[arg(long, default_value = "10s", value_parser = crate::duration_arg::parse_duration)]
    pub max: Duration,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

/// Runs `baton pause`: the front door holds the app's new requests (up to
/// `--max` each) while requests in flight finish, for short maintenance
/// without errors.
pub async fn pause(args: PauseArgs, client: Client) -> anyhow::Result<ExitCode> {
    let app = args.selector.name()?;
    let request = baton_api::PauseRequest {
        max_ms: crate::duration_arg::millis(args.max),
    };
    let route = client.pause_route(&app, &request).await?;
    let what = format!(
        "paused (new requests held up to {} each; `baton resume` lets them through)",
        humantime::format_duration(args.max)
    );
    crate::route_command::print_route_change(&route, args.json, &what)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `baton resume`.
pub async fn resume(args: ListArgs, client: Client) -> anyhow::Result<ExitCode> {
    let route = client.resume_route(&args.selector.name()?).await?;
    crate::route_command::print_route_change(&route, args.json, "resumed")?;
    Ok(ExitCode::SUCCESS)
}

/// `baton rollout pause|resume`.
#[derive(Debug, clap::Subcommand)]
pub enum RolloutAction {
    /// Freeze the running rollout at its weight (guardrails still roll back)
    Pause(ListArgs),
    /// Go on from a pause; the step's timer starts again
    Resume(ListArgs),
}

/// Runs `baton promote`, `baton abort` and `baton rollout pause|resume`:
/// a word to the app's running rollout; the deploy's own output shows
/// what it did.
pub async fn rollout_command(
    args: ListArgs,
    command: baton_api::RolloutCommand,
    client: Client,
) -> anyhow::Result<ExitCode> {
    let app = args.selector.name()?;
    let request = baton_api::RolloutRequest {
        command,
        user: user_name(),
    };
    let info = client.rollout_command(&app, &request).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        let word = match command {
            baton_api::RolloutCommand::Promote => "promote",
            baton_api::RolloutCommand::Abort => "abort",
            baton_api::RolloutCommand::Pause => "pause",
            baton_api::RolloutCommand::Resume => "resume",
        };
        println!("{app}: {word} sent to the running rollout");
    }
    Ok(ExitCode::SUCCESS)
}

/// A progress line is printed when a stage runs longer than this.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Runs `baton deploy`.
pub async fn deploy(args: DeployArgs, client: Client) -> anyhow::Result<ExitCode> {
    let (config, config_dir) = match &args.selector.app {
        Some(app) => (client.app(app).await?.config, None),
        None => {
            let path = args.selector.config_path();
            let config = AppConfig::load(&path)?;
            let dir = std::path::absolute(&path)
                .ok()
                .and_then(|path| path.parent().map(Path::to_path_buf));
            (config, dir)
        }
    };
    let source = match (&args.git, &args.source) {
        (Some(repo), _) => {
            let local = Path::new(repo);
            let repo = if local.exists() {
                std::path::absolute(local)?.display().to_string()
            } else {
                repo.clone()
            };
            DeploySource::Git {
                repo,
                reference: args.reference.clone(),
            }
        }
        (None, Some(dir)) => DeploySource::Dir {
            path: std::path::absolute(dir)
                .with_context(|| format!("cannot resolve --source {}", dir.display()))?,
        },
        (None, None) => match config_dir {
            Some(path) => DeploySource::Dir { path },
            None => bail!("with --app, say what to deploy: --source DIR or --git REPO --ref REF"),
        },
    };
    let request = DeployRequest {
        config,
        source,
        user: user_name(),
        strategy: args.strategy.clone(),
        allow_unsafe_migrations: args.allow_unsafe_migrations.clone(),
        force: args.force.clone(),
    };
    let client_task = {
        let (sender, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            client
                .deploy(&request, |event| {
                    let _ = sender.send(event.clone());
                })
                .await
        });
        (task, events)
    };
    follow_run(client_task, args.json).await
}

/// Runs `baton rollback`.
pub async fn rollback(args: RollbackArgs, client: Client) -> anyhow::Result<ExitCode> {
    let app = args.selector.name()?;
    let request = RollbackRequest {
        to: args.to.clone(),
        user: user_name(),
    };
    let (sender, events) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        client
            .rollback(&app, &request, |event| {
                let _ = sender.send(event.clone());
            })
            .await
    });
    follow_run((task, events), args.json).await
}

type RunTask = (
    tokio::task::JoinHandle<Result<DeployEvent, baton_api::ApiError>>,
    mpsc::UnboundedReceiver<DeployEvent>,
);

/// Prints a run's events as they come, with a progress line for long
/// stages; the exit code says how it ended.
async fn follow_run((task, mut events): RunTask, json: bool) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout();
    let mut running: Option<(String, tokio::time::Instant)> = None;
    let mut ticker = tokio::time::interval(PROGRESS_EVERY);
    ticker.tick().await;
    let mut succeeded = None;
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                if json {
                    writeln!(stdout, "{}", serde_json::to_string(&event)?)?;
                } else {
                    print_event(&event);
                }
                match &event {
                    DeployEvent::StageStarted { stage, .. } => {
                        running = Some((stage.clone(), tokio::time::Instant::now()));
                        ticker.reset();
                    }
                    DeployEvent::StageFinished { .. } => running = None,
                    DeployEvent::Succeeded { .. } => succeeded = Some(true),
                    DeployEvent::Failed { .. } => succeeded = Some(false),
                    _ => {}
                }
            }
            _ = ticker.tick(), if !json && running.is_some() => {
                if let Some((stage, since)) = &running {
                    println!("{:<14} still running ({} s)", stage, since.elapsed().as_secs());
                }
            }
        }
    }
    match task.await? {
        Ok(_) => {}
        Err(error) => {
            if succeeded.is_none() {
                return Err(error.into());
            }
        }
    }
    Ok(if succeeded == Some(true) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints one deploy or rollback event the way `baton deploy` does.
pub(crate) fn print_event(event: &DeployEvent) {
    match event {
        DeployEvent::StageStarted { stage, detail } => {
            if detail.is_empty() {
                println!("{stage:<14} ...");
            } else {
                println!("{stage:<14} ... {detail}");
            }
        }
        DeployEvent::StageFinished {
            stage,
            duration_ms,
            detail,
        } => {
            let took = format_ms(*duration_ms);
            if detail.is_empty() {
                println!("{stage:<14} ok  {took}");
            } else {
                println!("{stage:<14} ok  {took}  {detail}");
            }
        }
        DeployEvent::Output { stage, line } => println!("{stage:<14} |   {line}"),
        DeployEvent::Warning { message } => println!("warning: {message}"),
        DeployEvent::Succeeded { report } => {
            let previous = report
                .previous_release
                .as_deref()
                .map(|previous| format!(", replacing {previous}"))
                .unwrap_or_default();
            println!(
                "{} is live: release {}{previous} in {} (boot {}, drain {}{})",
                report.app,
                report.release,
                format_ms(report.duration_ms),
                format_ms(report.boot_ms),
                format_ms(report.drain_ms),
                if report.warm { ", warm" } else { "" }
            );
            if let Some(traffic) = &report.traffic {
                print!("{}", crate::traffic_report::render(traffic));
            }
        }
        DeployEvent::Failed { stage, error } => {
            eprintln!("error: failed at {stage}: {error}");
        }
    }
}

/// Runs `baton releases`.
pub async fn releases(args: ListArgs, client: Client) -> anyhow::Result<ExitCode> {
    let releases = client.releases(&args.selector.name()?).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&releases)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<2} {:<28} {:<20} {:<10} {:<8} SOURCE",
        "", "RELEASE", "CREATED", "REVISION", "RUNNING"
    );
    for release in releases.iter().rev() {
        let mark = if release.current {
            "*"
        } else if release.rollback_target {
            "<"
        } else {
            ""
        };
        println!(
            "{:<2} {:<28} {:<20} {:<10} {:<8} {}",
            mark,
            release.id,
            format_time(release.created_at_ms),
            release.revision,
            if release.running { "yes" } else { "" },
            release.source
        );
    }
    println!("(* current, < what `baton rollback` returns to)");
    Ok(ExitCode::SUCCESS)
}

/// Runs `baton history`.
pub async fn history(args: HistoryArgs, client: Client) -> anyhow::Result<ExitCode> {
    if let Some(id) = args.deploy {
        return deploy_events(&args.selector.name()?, id, args.json, &client).await;
    }
    let history = client.history(&args.selector.name()?, args.limit).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&history)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<5} {:<20} {:<9} {:<28} {:<10} {:<12} {:<9} SOURCE / REASON",
        "ID", "STARTED", "KIND", "RELEASE", "USER", "OUTCOME", "TOOK"
    );
    for entry in history {
        let (outcome, kind) = (entry.outcome.as_str(), entry.kind.as_str());
        let took = entry.duration_ms.map(format_ms).unwrap_or_default();
        let reason = entry
            .reason
            .as_deref()
            .and_then(|reason| reason.lines().next())
            .map(|reason| format!(" — {reason}"))
            .unwrap_or_default();
        println!(
            "{:<5} {:<20} {:<9} {:<28} {:<10} {:<12} {:<9} {}{}",
            entry.id,
            format_time(entry.started_at_ms),
            kind,
            if entry.release.is_empty() {
                "-"
            } else {
                &entry.release
            },
            entry.user,
            outcome,
            took,
            entry.source,
            reason
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `baton history --deploy ID`: the run's events as they were streamed,
/// from the log the daemon keeps of each run.
async fn deploy_events(
    app: &str,
    id: i64,
    json: bool,
    client: &Client,
) -> anyhow::Result<ExitCode> {
    let state_dir = PathBuf::from(client.daemon_info().await?.state_dir);
    let path = state_dir
        .join("logs")
        .join(app)
        .join("deploys")
        .join(format!("{id}.log"));
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no record of run {id} of {app} at {}; `baton history` lists the runs",
            path.display()
        )
    })?;
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        if json {
            println!("{line}");
            continue;
        }
        match serde_json::from_str::<DeployEvent>(line) {
            Ok(event) => print_event(&event),
            Err(_) => println!("{line}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `baton ps`.
pub async fn ps(args: ListArgs, client: Client) -> anyhow::Result<ExitCode> {
    let app = if args.selector.app.is_some() || args.selector.config.is_some() {
        Some(args.selector.name()?)
    } else if Path::new("baton.toml").exists() {
        args.selector.name().ok()
    } else {
        None
    };
    let processes = client.processes(app.as_deref()).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&processes)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<12} {:<10} {:<28} {:<8} {:<6} {:<9} {:<8} {:<9} STATE",
        "APP", "ROLE", "RELEASE", "PID", "PORT", "UPTIME", "RESTARTS", "RSS"
    );
    let now = unix_ms();
    for process in processes {
        let uptime = if process.pid == 0 {
            "-".to_string()
        } else {
            humantime::format_duration(Duration::from_secs(
                now.saturating_sub(process.started_at_ms) / 1000,
            ))
            .to_string()
        };
        println!(
            "{:<12} {:<10} {:<28} {:<8} {:<6} {:<9} {:<8} {:<9} {}",
            process.app,
            format!("{}.{}", process.role, process.index),
            process.release,
            process.pid,
            process
                .port
                .map(|port| port.to_string())
                .unwrap_or_default(),
            uptime,
            process.restarts,
            bytesize::ByteSize::b(process.rss_bytes)
                .display()
                .iec_short()
                .to_string(),
            process.state
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `baton logs`.
pub async fn logs(args: LogsArgs, client: Client) -> anyhow::Result<ExitCode> {
    let app = args.selector.name()?;
    let release = match &args.release {
        Some(release) => release.clone(),
        None => client
            .app(&app)
            .await?
            .current_release
            .with_context(|| format!("{app} has no current release; pass --release ID"))?,
    };
    let state_dir = PathBuf::from(client.daemon_info().await?.state_dir);
    let dir = state_dir.join("logs").join(&app).join(&release);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| {
            format!(
                "no logs for release {release} of {app} in {}",
                dir.display()
            )
        })?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .filter(|path| {
            let name = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .unwrap_or("");
            args.role.as_deref().is_none_or(|role| {
                name.rsplit_once('-')
                    .is_some_and(|(prefix, _)| prefix == role)
            })
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!(
            "no {} logs for release {release} of {app} in {}",
            args.role.as_deref().unwrap_or("process"),
            dir.display()
        );
    }
    let label = |path: &Path| {
        path.file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or("")
            .to_string()
    };
    let many = files.len() > 1;
    let mut offsets = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        for line in &lines[lines.len().saturating_sub(args.lines)..] {
            print_log_line(many, &label(path), line);
        }
        offsets.push(text.len() as u64);
    }
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for (path, offset) in files.iter().zip(offsets.iter_mut()) {
            let Ok(mut file) = std::fs::File::open(path) else {
                continue;
            };
            let length = file.metadata().map(|meta| meta.len()).unwrap_or(0);
            // Rotation truncates the file in place: start over at its top.
            if length < *offset {
                *offset = 0;
            }
            if length == *offset {
                continue;
            }
            let mut fresh = String::new();
            if file.seek(SeekFrom::Start(*offset)).is_ok()
                && file.read_to_string(&mut fresh).is_ok()
            {
                let complete = fresh.rfind('\n').map_or(0, |end| end + 1);
                for line in fresh[..complete].lines() {
                    print_log_line(many, &label(path), line);
                }
                *offset += complete as u64;
            }
        }
    }
}

fn print_log_line(many: bool, label: &str, line: &str) {
    if many {
        println!("{label:<10} | {line}");
    } else {
        println!("{line}");
    }
}

/// Who runs the command, for history.
pub(crate) fn user_name() -> String {
    for name in ["SUDO_USER", "USER", "LOGNAME"] {
        if let Ok(user) = std::env::var(name)
            && !user.is_empty()
        {
            return user;
        }
    }
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map_or_else(
            || format!("uid {}", nix::unistd::getuid()),
            |user| user.name,
        )
}

/// `412 ms` or `1.3 s`.
pub(crate) fn format_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

pub(crate) fn format_time(ms: u64) -> String {
    let time = UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(time)
        .to_string()
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_string()
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}
