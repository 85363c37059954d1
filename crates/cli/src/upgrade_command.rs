//! `baton upgrade`: replace the running daemon with a new binary without a
//! dropped connection.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use baton_api::{Client, UpgradeRequest};
use clap::Args;

use crate::duration_arg::parse_duration;

/// `baton upgrade` options.
#[derive(Args, Debug)]
pub struct UpgradeArgs {
    /// The new binary [default: the running daemon's own path, read again from disk]
    #[arg(long, value_name = "PATH")]
    pub binary: Option<PathBuf>,
    /// How long the new daemon may take to accept on every socket; past it, it is stopped and the old one serves on
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Asks the daemon to hand its sockets to the new binary; prints who took
/// over, or why the running daemon serves on (exit 1).
pub async fn run(args: UpgradeArgs, client: Client) -> anyhow::Result<ExitCode> {
    let binary = match args.binary {
        // The daemon may run elsewhere in the tree: give it a full path.
        Some(path) => Some(
            std::path::absolute(&path)
                .with_context(|| format!("cannot resolve {}", path.display()))?
                .display()
                .to_string(),
        ),
        None => None,
    };
    let request = UpgradeRequest {
        binary,
        ready_timeout_ms: Some(u64::try_from(args.timeout.as_millis()).unwrap_or(u64::MAX)),
    };
    let outcome = client.upgrade(&request).await?;
    println!(
        "upgraded: daemon {} took over from {} and accepted after {} ms; {} finishes what it \
         holds and exits",
        outcome.new_pid, outcome.old_pid, outcome.ready_ms, outcome.old_pid
    );
    Ok(ExitCode::SUCCESS)
}
