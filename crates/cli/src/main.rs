//! The `baton` command: deploys web apps and their workers with zero failed
//! requests. Run with `cargo run -p baton -- --help`.

mod app_command;
mod budget_command;
mod cli;
mod daemon_command;
mod demo_command;
mod duration_arg;
mod flags_command;
mod logging;
mod metrics_command;
mod migrate_command;
mod probe_command;
mod route_command;
mod status_command;
mod traffic_report;
mod upgrade_command;

use std::process::ExitCode;

use clap::Parser;

// The proxy allocates and frees small buffers and header maps on every
// request; glibc's malloc spent ~8% of the daemon's CPU on that under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.command.is_daemon());
    // The daemon's proxy runs on worker threads of its own; its control side
    // (API, health checks, route changes) needs only one thread.
    let runtime = if cli.command.is_daemon() {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Runtime::new()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli.run()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
