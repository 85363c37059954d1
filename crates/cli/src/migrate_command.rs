//! `baton migrate lint|run|status`: check schema migrations before they
//! run, apply them in their deploy phase, and show where each stands.
//! Argument parsing and output only; the rules and the runner are
//! `baton_migrate`'s.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use baton_api::AppConfig;
use baton_migrate::{
    DEFAULT_DATABASE_URL_ENV, DatabaseUrl, Format, LintOptions, MigrationFile, Phase, Progress,
    RunSettings, Runner, lint_paths, render, resolve_database_url,
};
use clap::{Subcommand, ValueEnum};

use crate::app_command::{format_ms, format_time};

/// Schema migrations.
#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Check migrations for changes that lock busy tables or break the running version
    ///
    /// Parses each file with PostgreSQL's own parser and reports every
    /// statement that would block the app's queries (a lock held through a
    /// scan or a rewrite) or break the version still running during a
    /// deploy, with the safe way to make the same change. Exits 1 if any
    /// error is found, 0 with only warnings.
    Lint(LintArgs),
    /// Apply the pending migrations of one deploy phase
    ///
    /// Runs the phase's pending files in name order, each in a transaction
    /// with lock_timeout and statement_timeout set (a file using
    /// CONCURRENTLY statement by statement), retrying lock timeouts with
    /// backoff, and records each in the table baton_migrations. Waits while
    /// another runner works on the same database. Exits 1 if a migration
    /// fails or an applied file was changed.
    Run(RunArgs),
    /// Show each migration: applied or pending, its phase, whether the file still matches what ran, when and how long
    ///
    /// Exits 1 if an applied file was changed since it ran (`run` would
    /// refuse to go on).
    Status(StatusArgs),
}

/// Which migrations, which database: shared by `run` and `status`.
#[derive(clap::Args, Debug)]
pub struct TargetArgs {
    /// The database [default: the variable [migrate] database_url_env names (DATABASE_URL) in the environment, else in the app's shared/.env]
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,

    /// The migrations directory [default: [migrate] dir beside baton.toml, else ./migrations]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// The app's baton.toml, for [migrate] and the app's shared/.env [default: ./baton.toml, if there is one]
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Arguments of `baton migrate run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The phase to run: expand (before a new version boots) or contract (once the old version has stopped)
    #[arg(long, value_enum)]
    pub phase: PhaseArg,

    #[command(flatten)]
    pub target: TargetArgs,
}

/// Arguments of `baton migrate status`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Print a JSON array of {name, phase, state, checksum, applied_at_ms, duration_ms}
    #[arg(long)]
    pub json: bool,
}

/// The phases, as the command line spells them.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PhaseArg {
    /// Additive changes the running version tolerates.
    Expand,
    /// Changes only the new version tolerates.
    Contract,
}

impl From<PhaseArg> for Phase {
    fn from(phase: PhaseArg) -> Phase {
        match phase {
            PhaseArg::Expand => Phase::Expand,
            PhaseArg::Contract => Phase::Contract,
        }
    }
}

/// Arguments of `baton migrate lint`.
#[derive(clap::Args, Debug)]
pub struct LintArgs {
    /// Migration files, or directories whose *.sql files are checked in name order
    #[arg(value_name = "PATH", default_value = "migrations")]
    pub paths: Vec<PathBuf>,

    /// Output format: human, json, gcc (file:line:col: error: message [rule]) or github (annotations)
    #[arg(long, value_enum, default_value_t = FormatArg::Human)]
    pub format: FormatArg,

    /// Major version of the PostgreSQL server the migrations will run on (e.g. 15 or 16.4)
    #[arg(long, value_name = "VERSION", default_value_t = LintOptions::DEFAULT_PG_VERSION, value_parser = parse_pg_version)]
    pub pg_version: u32,

    /// Require each file to SET lock_timeout before its first locking statement (for files another tool runs; baton's runner sets it itself)
    #[arg(long)]
    pub require_lock_timeout: bool,
}

/// The output formats, as the command line spells them.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// For people: each finding with its source line, a caret and the help.
    Human,
    /// A JSON array of {file, line, column, rule, level, message, help}.
    Json,
    /// `file:line:col: error: message [rule]`, one line per finding.
    Gcc,
    /// GitHub Actions `::error file=…,line=…,col=…,title=rule::message` annotations.
    Github,
}

impl From<FormatArg> for Format {
    fn from(format: FormatArg) -> Format {
        match format {
            FormatArg::Human => Format::Human,
            FormatArg::Json => Format::Json,
            FormatArg::Gcc => Format::Gcc,
            FormatArg::Github => Format::Github,
        }
    }
}

/// Runs a `baton migrate` command.
pub async fn run(command: MigrateCommand) -> anyhow::Result<ExitCode> {
    match command {
        MigrateCommand::Lint(args) => lint(args),
        MigrateCommand::Run(args) => apply(args).await,
        MigrateCommand::Status(args) => status(args).await,
    }
}

/// What `run` and `status` work on.
struct Target {
    files: Vec<MigrationFile>,
    url: DatabaseUrl,
    settings: RunSettings,
}

impl TargetArgs {
    /// Reads the config (if any), the migrations and the database URL.
    fn resolve(&self) -> anyhow::Result<Target> {
        let config_path = self
            .config
            .clone()
            .or_else(|| Some(PathBuf::from("baton.toml")).filter(|path| path.exists()));
        let config = config_path.as_deref().map(AppConfig::load).transpose()?;
        let section = config.as_ref().and_then(|config| config.migrate.clone());
        let dir = match (&self.dir, &section, &config_path) {
            (Some(dir), _, _) => dir.clone(),
            (None, Some(section), Some(path)) => {
                let beside = path.parent().unwrap_or(Path::new("."));
                beside.join(section.dir.as_path())
            }
            _ => PathBuf::from("migrations"),
        };
        let files = MigrationFile::read_dir(&dir)?;
        let variable = section
            .as_ref()
            .map_or(DEFAULT_DATABASE_URL_ENV, |section| {
                section.database_url_env.as_str()
            })
            .to_owned();
        let env_file = match &config {
            Some(config) => {
                let path = baton_release::AppRoot::new(&config.app.root).env_file();
                let entries = baton_release::load_env_file(&path)
                    .with_context(|| format!("reading the app's env file {}", path.display()))?;
                Some((path, entries))
            }
            None => None,
        };
        let url = resolve_database_url(
            self.database_url.as_deref(),
            &variable,
            std::env::var(&variable).ok(),
            env_file
                .as_ref()
                .map(|(path, entries)| (path.as_path(), entries.as_slice())),
        )?;
        let settings = section
            .as_ref()
            .map_or_else(RunSettings::default, baton_daemon::migrate_settings);
        Ok(Target {
            files,
            url,
            settings,
        })
    }
}

/// `baton migrate run`.
async fn apply(args: RunArgs) -> anyhow::Result<ExitCode> {
    let target = args.target.resolve()?;
    let runner = Runner::connect(&target.url.url, target.settings).await?;
    let print = |progress: &Progress| println!("{progress}");
    let report = runner.run(&target.files, args.phase.into(), &print).await?;
    println!("{}", report.summary());
    Ok(ExitCode::SUCCESS)
}

/// `baton migrate status`.
async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let target = args.target.resolve()?;
    let runner = Runner::connect(&target.url.url, target.settings).await?;
    let statuses = runner.status(&target.files).await?;
    let changed = statuses.iter().any(|status| status.checksum == "changed");
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&statuses)?)?;
    } else {
        let width = statuses
            .iter()
            .map(|status| status.name.len())
            .max()
            .unwrap_or(0)
            .max("MIGRATION".len());
        writeln!(
            out,
            "{:<width$}  {:<8}  {:<7}  {:<8}  {:<19}  TOOK",
            "MIGRATION", "PHASE", "STATE", "CHECKSUM", "APPLIED AT"
        )?;
        for status in &statuses {
            let at = status.applied_at_ms.map_or_else(
                || "-".to_owned(),
                |ms| format_time(u64::try_from(ms).unwrap_or(0)),
            );
            let took = status.duration_ms.map_or_else(
                || "-".to_owned(),
                |ms| format_ms(u64::try_from(ms).unwrap_or(0)),
            );
            let checksum = if status.checksum == "pending" {
                "-"
            } else {
                status.checksum
            };
            writeln!(
                out,
                "{:<width$}  {:<8}  {:<7}  {:<8}  {:<19}  {took}",
                status.name, status.phase, status.state, checksum, at
            )?;
        }
        let applied = statuses.iter().filter(|s| s.state == "applied").count();
        writeln!(
            out,
            "{} migrations: {applied} applied, {} pending (database from {})",
            statuses.len(),
            statuses.len() - applied,
            target.url.source
        )?;
        if changed {
            writeln!(
                out,
                "a file marked changed differs from what ran: restore it, and put the change in a new migration"
            )?;
        }
    }
    Ok(if changed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn lint(args: LintArgs) -> anyhow::Result<ExitCode> {
    let options = LintOptions {
        pg_version: args.pg_version,
        require_lock_timeout: args.require_lock_timeout,
    };
    let report = lint_paths(&args.paths, &options)?;
    std::io::stdout()
        .lock()
        .write_all(render(&report, args.format.into()).as_bytes())
        .context("cannot write the lint report to standard output")?;
    Ok(if report.has_errors() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `15`, or `16.4` (only the major version matters to the rules).
fn parse_pg_version(text: &str) -> Result<u32, String> {
    let major = text.split('.').next().unwrap_or(text);
    match major.parse::<u32>() {
        Ok(major) if (9..100).contains(&major) => Ok(major),
        _ => Err(format!(
            "`{text}` is not a PostgreSQL version; give its major version, e.g. 15"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pg_version_is_its_major_number() {
        assert_eq!(parse_pg_version("15"), Ok(15));
        assert_eq!(parse_pg_version("16.4"), Ok(16));
        assert!(parse_pg_version("fifteen").is_err());
        assert!(parse_pg_version("1").is_err());
    }
}
