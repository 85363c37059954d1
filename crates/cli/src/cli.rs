//! The command line: global options and the subcommands.

use std::path::PathBuf;
use std::process::ExitCode;

use baton_api::RolloutCommand;
use clap::{Parser, Subcommand};

use crate::{
    app_command, budget_command, daemon_command, demo_command, flags_command, migrate_command,
    probe_command, route_command, status_command, upgrade_command,
};

/// baton: one binary that deploys web applications with zero failed requests.
#[derive(Debug, Parser)]
#[command(name = "baton", version, about)]
pub struct Cli {
    /// The daemon's control socket [default: STATE_DIR/baton.sock]
    #[arg(long, global = true, env = "BATON_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// The daemon's state directory [default: /var/lib/baton as root, else $XDG_STATE_HOME/baton]
    #[arg(long, global = true, env = "BATON_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: the front-door proxy and the control API (foreground)
    Daemon(daemon_command::DaemonArgs),
    /// Deploy an app from its baton.toml: stage, build, boot, switch, drain
    Deploy(app_command::DeployArgs),
    /// Return to an earlier release (the previous one by default)
    Rollback(app_command::RollbackArgs),
    /// List an app's releases on disk
    Releases(app_command::ListArgs),
    /// Show an app's deploys and rollbacks
    History(app_command::HistoryArgs),
    /// Show supervised processes
    Ps(app_command::ListArgs),
    /// Show (and follow) an app's process output
    Logs(app_command::LogsArgs),
    /// Skip the running rollout's remaining steps
    Promote(app_command::ListArgs),
    /// Send all traffic back to stable now and stop the candidate
    Abort(app_command::ListArgs),
    /// Pause or resume the running rollout
    #[command(subcommand)]
    Rollout(app_command::RolloutAction),
    /// Show the running rollout, error budget, last deploy, and each version's req/s, error rate and p50/p95/p99
    Status(status_command::StatusArgs),
    /// Show an app's error budget under its [slo]: requests, errors, budget left, burn rates
    Budget(budget_command::BudgetArgs),
    /// Print the daemon's Prometheus metrics (what the admin listener serves on /metrics)
    Metrics,
    /// Hold an app's new requests at the front door (short maintenance, no errors)
    Pause(app_command::PauseArgs),
    /// Let an app's held and new requests through again
    Resume(app_command::ListArgs),
    /// Drive the proxy by hand: put targets behind a service, pause, remove
    #[command(subcommand)]
    Route(route_command::RouteCommand),
    /// Schema migrations: lint them, run a deploy phase, show what ran
    #[command(subcommand)]
    Migrate(migrate_command::MigrateCommand),
    /// Feature flags: list, set, switch on and off (kill switch), import and export Unleash's JSON
    #[command(subcommand)]
    Flags(flags_command::FlagsCommand),
    /// Replace the running daemon with a new binary: sockets and apps handed over, no connection dropped
    Upgrade(upgrade_command::UpgradeArgs),
    /// Load-test a URL and count every failure
    Probe(probe_command::ProbeArgs),
    /// Show a zero-downtime deploy: a daemon, the demo app, deploys and a rollback under load
    Demo(demo_command::DemoArgs),
}

impl Command {
    /// Whether this is the long-running daemon (it logs more).
    pub fn is_daemon(&self) -> bool {
        matches!(self, Command::Daemon(_))
    }
}

impl Cli {
    /// Runs the chosen command.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let state_dir = self
            .state_dir
            .unwrap_or_else(baton_daemon::default_state_dir);
        match self.command {
            Command::Daemon(args) => daemon_command::run(args, state_dir).await,
            Command::Route(command) => {
                route_command::run(command, client(self.socket, &state_dir)).await
            }
            Command::Deploy(args) => {
                app_command::deploy(args, client(self.socket, &state_dir)).await
            }
            Command::Rollback(args) => {
                app_command::rollback(args, client(self.socket, &state_dir)).await
            }
            Command::Releases(args) => {
                app_command::releases(args, client(self.socket, &state_dir)).await
            }
            Command::History(args) => {
                app_command::history(args, client(self.socket, &state_dir)).await
            }
            Command::Ps(args) => app_command::ps(args, client(self.socket, &state_dir)).await,
            Command::Logs(args) => app_command::logs(args, client(self.socket, &state_dir)).await,
            Command::Promote(args) => {
                let client = client(self.socket, &state_dir);
                app_command::rollout_command(args, RolloutCommand::Promote, client).await
            }
            Command::Abort(args) => {
                let client = client(self.socket, &state_dir);
                app_command::rollout_command(args, RolloutCommand::Abort, client).await
            }
            Command::Rollout(action) => {
                let client = client(self.socket, &state_dir);
                match action {
                    app_command::RolloutAction::Pause(args) => {
                        app_command::rollout_command(args, RolloutCommand::Pause, client).await
                    }
                    app_command::RolloutAction::Resume(args) => {
                        app_command::rollout_command(args, RolloutCommand::Resume, client).await
                    }
                }
            }
            Command::Status(args) => {
                status_command::run(args, client(self.socket, &state_dir)).await
            }
            Command::Budget(args) => {
                budget_command::run(args, client(self.socket, &state_dir)).await
            }
            Command::Metrics => crate::metrics_command::run(client(self.socket, &state_dir)).await,
            Command::Pause(args) => app_command::pause(args, client(self.socket, &state_dir)).await,
            Command::Resume(args) => {
                app_command::resume(args, client(self.socket, &state_dir)).await
            }
            Command::Migrate(command) => migrate_command::run(command).await,
            Command::Flags(command) => {
                flags_command::run(command, client(self.socket, &state_dir)).await
            }
            Command::Upgrade(args) => {
                upgrade_command::run(args, client(self.socket, &state_dir)).await
            }
            Command::Probe(args) => probe_command::run(args).await,
            Command::Demo(args) => demo_command::run(args).await,
        }
    }
}

fn client(socket: Option<PathBuf>, state_dir: &std::path::Path) -> baton_api::Client {
    baton_api::Client::new(socket.unwrap_or_else(|| state_dir.join("baton.sock")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
