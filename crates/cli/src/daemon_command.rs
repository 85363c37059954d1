//! `baton daemon`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use baton_daemon::{AdminConfig, AdminToken, AdminTokenError, DaemonConfig, FLAGS_TOKEN_ENV};
use baton_proxy::Limits;

use crate::duration_arg::{parse_duration, parse_size};

/// Options of `baton daemon`.
#[derive(Debug, clap::Args)]
pub struct DaemonArgs {
    /// Plain-HTTP listener address (repeatable), e.g. 0.0.0.0:80
    #[arg(long = "http", value_name = "ADDR")]
    pub http: Vec<SocketAddr>,
    /// HTTPS listener address (repeatable); needs --tls-cert and --tls-key
    #[arg(long = "https", value_name = "ADDR")]
    pub https: Vec<SocketAddr>,
    /// PEM certificate chain for HTTPS
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// On SIGTERM, how long requests in flight may take to finish
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// On SIGTERM, how long an idle keep-alive connection is kept for its next request
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub idle_grace: Duration,
    /// After `baton upgrade` hands over, how long the old daemon keeps relaying WebSockets before it closes them and exits
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub upgrade_grace: Duration,
    /// Longest a client may take to send a request head
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers)
    #[arg(long, default_value = "64KiB", value_parser = parse_size)]
    pub max_header_size: u64,
    /// Longest a connect to an upstream target may take
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Longest an upstream may take to send its response head
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub response_header_timeout: Duration,
    /// Proxy worker threads [default: one per CPU core]
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Largest request body for services that set none [default: unlimited]
    #[arg(long, value_parser = parse_size)]
    pub max_request_body: Option<u64>,
    /// Authenticated HTTP admin API listener, e.g. 127.0.0.1:9443 [default: off]; needs a token
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<SocketAddr>,
    /// File holding the admin token (mode 0600) [default: $BATON_ADMIN_TOKEN]
    #[arg(long, value_name = "PATH", requires = "admin")]
    pub admin_token_file: Option<PathBuf>,
    /// File holding a read-only token for OFREP flag evaluation on the admin listener (mode 0600) [default: $BATON_FLAGS_TOKEN, else none]
    #[arg(long, value_name = "PATH", requires = "admin")]
    pub flags_token_file: Option<PathBuf>,
}

/// Runs the daemon in the foreground until SIGTERM or SIGINT.
pub async fn run(args: DaemonArgs, state_dir: PathBuf) -> anyhow::Result<ExitCode> {
    let admin = match args.admin {
        Some(address) => Some(AdminConfig {
            address,
            token: admin_token(args.admin_token_file.as_deref())?,
            flags_token: flags_token(args.flags_token_file.as_deref())
                .context("the read-only flags token")?,
        }),
        None => None,
    };
    let config = DaemonConfig {
        state_dir,
        http: args.http,
        https: args.https,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        limits: Limits {
            max_header_size: usize::try_from(args.max_header_size).unwrap_or(usize::MAX),
            header_read_timeout: args.header_read_timeout,
            connect_timeout: args.connect_timeout,
            response_header_timeout: args.response_header_timeout,
            max_request_body: args.max_request_body,
        },
        drain_timeout: args.drain_timeout,
        idle_grace: args.idle_grace,
        upgrade_grace: args.upgrade_grace,
        workers: args.workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        }),
        admin,
    };
    baton_daemon::run(config).await?;
    Ok(ExitCode::SUCCESS)
}

/// The flags token from `--flags-token-file`, else from `$BATON_FLAGS_TOKEN`,
/// else none (only the admin token evaluates).
fn flags_token(file: Option<&std::path::Path>) -> Result<Option<AdminToken>, AdminTokenError> {
    match file {
        Some(path) => AdminToken::from_file(path).map(Some),
        None => AdminToken::from_var(FLAGS_TOKEN_ENV),
    }
}

/// The admin token from `--admin-token-file`, else from `$BATON_ADMIN_TOKEN`:
/// a file named on the command line is the more deliberate choice.
fn admin_token(file: Option<&std::path::Path>) -> Result<AdminToken, AdminTokenError> {
    match file {
        Some(path) => AdminToken::from_file(path),
        None => AdminToken::from_env()?.ok_or(AdminTokenError::Missing),
    }
}
