//! `baton migrate lint`: check schema migrations before they run.
//! Argument parsing and output only; the rules are `baton_migrate`'s.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use baton_migrate::{Format, LintOptions, lint_paths, render};
use clap::{Subcommand, ValueEnum};

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
pub fn run(command: MigrateCommand) -> anyhow::Result<ExitCode> {
    match command {
        MigrateCommand::Lint(args) => lint(args),
    }
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
