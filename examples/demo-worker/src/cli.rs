//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Works through a job queue kept in a SQLite file; with no command, runs
/// jobs until SIGTERM, SIGINT, SIGQUIT or SIGUSR1, finishing the job in hand.
#[derive(Parser, Debug)]
#[command(name = "demo-worker")]
pub struct Cli {
    /// The SQLite file holding the queue; created if missing.
    #[arg(long, env = "QUEUE_DB", default_value = "queue.db", global = true)]
    pub db: PathBuf,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Adds jobs to the queue.
    Enqueue(EnqueueArgs),
    /// Prints the queue's counts as one line of JSON.
    Report,
}

#[derive(Args, Debug)]
pub struct EnqueueArgs {
    /// How many jobs to add.
    #[arg(long)]
    pub count: u32,
    /// Shortest job, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub min_ms: u32,
    /// Longest job, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub max_ms: u32,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn arguments_are_consistent() {
        Cli::command().debug_assert();
    }
}
