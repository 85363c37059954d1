//! The demo worker baton deploys next to the demo app: it takes jobs from a
//! queue that survives restarts (a SQLite file) and, asked to stop, finishes
//! the job in hand before exiting, so a deploy loses no job and runs none
//! twice. The end-to-end tests check exactly that through `report`.
//!
//! ```text
//! demo-worker                                   work until a stop signal
//! demo-worker enqueue --count N [--min-ms 100] [--max-ms 500]
//! demo-worker report                            counts as one line of JSON
//! ```
//!
//! Every command takes `--db PATH`, or reads `QUEUE_DB`, default `queue.db`
//! in the working directory. The worker names itself `VERSION:pid`
//! (`VERSION` from the environment, default `dev`).
//!
//! Run with `cargo run -p baton-example-worker`.

mod cli;
mod durations;
mod queue;
mod report;
mod stop;
mod worker;

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;

use crate::{
    cli::{Cli, Command, EnqueueArgs},
    queue::Queue,
    report::Report,
    stop::StopSignal,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        None => work(&cli),
        Some(Command::Enqueue(args)) => enqueue(&cli, args),
        Some(Command::Report) => report(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("demo-worker: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn work(cli: &Cli) -> anyhow::Result<()> {
    // First, before anything could start a thread that would not block them.
    let stop = StopSignal::install().context("cannot install signal handling")?;
    let version = match std::env::var("VERSION") {
        Ok(version) => version,
        Err(std::env::VarError::NotPresent) => "dev".to_owned(),
        Err(std::env::VarError::NotUnicode(_)) => bail!("VERSION is not valid UTF-8"),
    };
    let name = format!("{version}:{}", std::process::id());
    let queue = Queue::open(&cli.db)?;
    worker::run(queue, &name, &stop)
}

fn enqueue(cli: &Cli, args: &EnqueueArgs) -> anyhow::Result<()> {
    if args.min_ms > args.max_ms {
        bail!("--min-ms {} is above --max-ms {}", args.min_ms, args.max_ms);
    }
    let durations = durations::spread(args.count, args.min_ms, args.max_ms);
    let mut queue = Queue::open(&cli.db)?;
    let ids = queue.enqueue(&durations)?;
    match ids {
        Some((first, last)) => println!(
            "enqueued {} jobs (ids {first}..={last}, {}..={} ms) into {}",
            args.count,
            args.min_ms,
            args.max_ms,
            cli.db.display()
        ),
        None => println!("enqueued no jobs into {}", cli.db.display()),
    }
    Ok(())
}

fn report(cli: &Cli) -> anyhow::Result<()> {
    let mut queue = Queue::open(&cli.db)?;
    let report = Report::read(&mut queue)?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
