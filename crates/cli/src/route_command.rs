//! `baton route …`: drive the proxy by hand, for apps baton does not run
//! itself (containers, say).

use std::process::ExitCode;
use std::time::Duration;

use baton_api::{
    Balance, Client, DeployOutcome, DeployRoute, PauseRequest, RouteInfo, VersionRole,
};
use clap::{Subcommand, ValueEnum};

use crate::duration_arg::{millis, parse_duration, parse_size};

/// The route subcommands.
#[derive(Debug, Subcommand)]
pub enum RouteCommand {
    /// Health-check new targets, switch the service to them, drain the old ones
    Deploy(DeployArgs),
    /// Show services, versions, targets and their last minute of traffic
    List(OutputArgs),
    /// Take a service out of the proxy (its version drains first)
    Remove(ServiceArgs),
    /// Hold the service's new requests (up to --max each) until resumed
    Pause(PauseArgs),
    /// Release held requests and let new ones through
    Resume(ServiceArgs),
}

/// `--json`.
#[derive(Debug, clap::Args)]
pub struct OutputArgs {
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

/// A service name.
#[derive(Debug, clap::Args)]
pub struct ServiceArgs {
    /// The service
    pub service: String,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Options of `route pause`.
#[derive(Debug, clap::Args)]
pub struct PauseArgs {
    /// The service
    pub service: String,
    /// Longest a request is held; then it is answered 503 with Retry-After
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub max: Duration,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Balance rule on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BalanceArg {
    /// Each target in turn
    RoundRobin,
    /// The target with the fewest requests in flight
    LeastInFlight,
}

/// Options of `route deploy`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// The service
    pub service: String,
    /// Upstream HOST:PORT (repeatable; several are balanced)
    #[arg(long = "target", value_name = "HOST:PORT", required = true)]
    pub targets: Vec<String>,
    /// Host name routed to the service (repeatable; *.example.com wildcards; none = catch-all)
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Path prefix routed to the service
    #[arg(long, default_value = "/")]
    pub path_prefix: String,
    /// Label of the new version [default: v1, v2, …]
    #[arg(long)]
    pub version: Option<String>,
    /// Path each target must answer 2xx on
    #[arg(long, default_value = "/health")]
    pub health_path: String,
    /// Time between health checks
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub health_interval: Duration,
    /// Consecutive 2xx answers that make a target healthy
    #[arg(long, default_value_t = 2)]
    pub healthy_after: u32,
    /// Longest wait for one health answer
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub health_timeout: Duration,
    /// How long the new targets may take to become healthy
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub deploy_timeout: Duration,
    /// How long the old targets may take to finish their requests
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// How requests spread over the targets
    #[arg(long, value_enum, default_value = "round-robin")]
    pub balance: BalanceArg,
    /// Largest request body accepted (answers 413 beyond) [default: the daemon's]
    #[arg(long, value_parser = parse_size)]
    pub max_request_body: Option<u64>,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs a route subcommand against the daemon.
pub async fn run(command: RouteCommand, client: Client) -> anyhow::Result<ExitCode> {
    match command {
        RouteCommand::Deploy(args) => {
            let request = DeployRoute {
                targets: args.targets,
                hosts: args.hosts,
                path_prefix: args.path_prefix,
                version: args.version,
                health_path: args.health_path,
                health_interval_ms: millis(args.health_interval),
                healthy_after: args.healthy_after,
                health_timeout_ms: millis(args.health_timeout),
                deploy_timeout_ms: millis(args.deploy_timeout),
                drain_timeout_ms: millis(args.drain_timeout),
                balance: match args.balance {
                    BalanceArg::RoundRobin => Balance::RoundRobin,
                    BalanceArg::LeastInFlight => Balance::LeastInFlight,
                },
                max_request_body: args.max_request_body,
                inject_flags: None,
            };
            let outcome = client.deploy_route(&args.service, &request).await?;
            print_outcome(&outcome, args.output.json, "deployed")?;
        }
        RouteCommand::List(output) => {
            let routes = client.routes().await?;
            if output.json {
                println!("{}", serde_json::to_string_pretty(&routes)?);
            } else {
                print_routes(&routes);
            }
        }
        RouteCommand::Remove(args) => {
            let outcome = client.remove_route(&args.service).await?;
            print_outcome(&outcome, args.output.json, "removed")?;
        }
        RouteCommand::Pause(args) => {
            let route = client
                .pause_route(
                    &args.service,
                    &PauseRequest {
                        max_ms: millis(args.max),
                    },
                )
                .await?;
            print_route_change(
                &route,
                args.output.json,
                &format!(
                    "paused (requests held up to {})",
                    humantime::format_duration(args.max)
                ),
            )?;
        }
        RouteCommand::Resume(args) => {
            let route = client.resume_route(&args.service).await?;
            print_route_change(&route, args.output.json, "resumed")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_outcome(outcome: &DeployOutcome, json: bool, verb: &str) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(outcome)?);
        return Ok(());
    }
    if verb == "deployed" {
        println!(
            "{}: {} now serves (healthy after {} ms)",
            outcome.service, outcome.version, outcome.healthy_after_ms
        );
    } else {
        println!("{}: removed", outcome.service);
    }
    if let Some(previous) = &outcome.previous_version {
        println!(
            "{}: {} drained in {} ms",
            outcome.service, previous, outcome.drain_ms
        );
        if outcome.requests_cut_at_drain_timeout > 0 || outcome.upgraded_connections_closed > 0 {
            println!(
                "  at the drain timeout: {} requests still running, {} upgraded connections sent 1001",
                outcome.requests_cut_at_drain_timeout, outcome.upgraded_connections_closed
            );
        }
    }
    Ok(())
}

/// Prints a pause or resume's result.
pub(crate) fn print_route_change(route: &RouteInfo, json: bool, what: &str) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(route)?);
    } else {
        println!("{}: {what}", route.service);
    }
    Ok(())
}

fn print_routes(routes: &[RouteInfo]) {
    if routes.is_empty() {
        println!("no services; add one with `baton route deploy SERVICE --target HOST:PORT`");
        return;
    }
    println!(
        "{:<16} {:<24} {:<10} {:<10} {:<9} {:<28} {:>6} {:>8} {:>7} {:>8}",
        "SERVICE",
        "HOSTS",
        "PREFIX",
        "VERSION",
        "ROLE",
        "TARGETS",
        "FLIGHT",
        "REQ/MIN",
        "ERR%",
        "P99"
    );
    for route in routes {
        let hosts = if route.hosts.is_empty() {
            "*".to_string()
        } else {
            route.hosts.join(",")
        };
        let prefix = match &route.paused {
            Some(_) => format!("{} (paused)", route.path_prefix),
            None => route.path_prefix.clone(),
        };
        for version in &route.versions {
            let targets: Vec<String> = version
                .targets
                .iter()
                .map(|target| {
                    format!(
                        "{}{}",
                        target.address,
                        if target.healthy { "" } else { "!" }
                    )
                })
                .collect();
            let role = match version.role {
                VersionRole::Stable => "stable",
                VersionRole::Candidate => "candidate",
                VersionRole::Draining => "draining",
            };
            let minute = &version.last_minute;
            println!(
                "{:<16} {:<24} {:<10} {:<10} {:<9} {:<28} {:>6} {:>8} {:>6.2}% {:>6.1}ms",
                route.service,
                hosts,
                prefix,
                version.label,
                role,
                targets.join(","),
                version.in_flight,
                minute.counts.requests,
                minute.error_rate() * 100.0,
                minute.p99_ms
            );
        }
    }
}
