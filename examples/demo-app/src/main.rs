//! The demo app baton deploys: a small HTTP server whose routes exercise what
//! a zero-downtime proxy has to get right (slow and streamed responses,
//! uploads, WebSockets, server-sent events, crashes mid-response, health
//! flips). It is what users deploy in the demo and what the end-to-end tests
//! run behind the proxy.
//!
//! Settings come from the environment (see [`config`]), including knobs that
//! make it misbehave on purpose: slow to boot, slow to answer, unhealthy, or
//! failing a share of its requests. Once bound it prints
//! exactly one line, `listening on ADDR`, to stdout and logs to stderr only.
//! SIGTERM or SIGINT drains it gracefully and it exits 0.
//!
//! Run with `cargo run -p baton-example-app`.

mod config;
mod crash;
mod database;
mod drain;
mod error_rate;
mod events;
mod middleware;
mod routes;
mod server;
mod signals;
mod state;
mod upload;
mod websocket;

use std::{io::IsTerminal, process::ExitCode};

use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    init_logging();
    match server::run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("demo-app: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr only: stdout carries the single `listening on` line.
fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
