//! The `baton` command: deploys web apps and their workers with zero failed
//! requests. Run with `cargo run -p baton -- --help`.

mod cli;
mod daemon_command;
mod duration_arg;
mod logging;
mod probe_command;
mod route_command;

use std::process::ExitCode;

use clap::Parser;

// The proxy allocates and frees small buffers and header maps on every
// request; glibc's malloc spent ~8% of the daemon's CPU on that under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.command.is_daemon());
    let runtime = match tokio::runtime::Runtime::new() {
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
