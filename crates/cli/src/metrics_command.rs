//! `baton metrics`: the daemon's Prometheus metrics, the text its admin
//! listener serves on `/metrics`, read over the control socket (no token
//! needed: the socket is the owner's alone).

use std::io::Write as _;
use std::process::ExitCode;

use baton_api::Client;

/// Runs `baton metrics`.
pub async fn run(client: Client) -> anyhow::Result<ExitCode> {
    let text = client.metrics().await?;
    let mut stdout = std::io::stdout();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}
