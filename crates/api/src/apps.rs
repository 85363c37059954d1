//! Wire types for apps: deploys, rollbacks, releases, history, processes.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::AppConfig;

/// Where a deploy's code comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DeploySource {
    /// A directory, copied into the release (without `.git`).
    Dir {
        /// Absolute path.
        path: PathBuf,
    },
    /// A git repository, cloned at `reference`.
    Git {
        /// URL or path of the repository.
        repo: String,
        /// Branch, tag or commit.
        reference: String,
    },
}

impl std::fmt::Display for DeploySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeploySource::Dir { path } => write!(f, "{}", path.display()),
            DeploySource::Git { repo, reference } => write!(f, "{repo}@{reference}"),
        }
    }
}

/// `baton deploy`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeployRequest {
    /// The parsed `baton.toml`.
    pub config: AppConfig,
    /// The code to deploy.
    pub source: DeploySource,
    /// Who asked (recorded in history).
    pub user: String,
    /// `--strategy`: overrides `[rollout] strategy` for this deploy.
    #[serde(default)]
    pub strategy: Option<String>,
    /// `--allow-unsafe-migrations`: why the migration lint's errors may
    /// ship this time (kept in the deploy's history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_unsafe_migrations: Option<String>,
    /// `--force`: why the deploy may go ahead although the app's error
    /// budget is spent (kept in the deploy's history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<String>,
}

/// An operator's word to a running rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutCommand {
    /// Skip the remaining steps.
    Promote,
    /// All traffic to stable now; the candidate drains and stops.
    Abort,
    /// Freeze at the current weight (guardrails still roll back).
    Pause,
    /// Go on from a pause.
    Resume,
}

/// `POST /v1/apps/{app}/rollout`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutRequest {
    /// What to do.
    pub command: RolloutCommand,
    /// Who asked.
    pub user: String,
}

/// `baton rollback`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRequest {
    /// The release to return to; `None` = the one before the current one.
    #[serde(default)]
    pub to: Option<String>,
    /// Who asked.
    pub user: String,
}

/// One line of a deploy's progress stream (newline-delimited JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum DeployEvent {
    /// A stage began.
    StageStarted {
        /// The stage (`stage`, `build`, `boot`, `switch`, …).
        stage: String,
        /// What it is doing, for humans.
        detail: String,
    },
    /// A stage ended well.
    StageFinished {
        /// The stage.
        stage: String,
        /// How long it took.
        duration_ms: u64,
        /// What it did, for humans.
        detail: String,
    },
    /// A line of output from a build step or hook.
    Output {
        /// The stage that printed it.
        stage: String,
        /// The line, without its newline.
        line: String,
    },
    /// Something worth knowing that does not stop the deploy.
    Warning {
        /// What happened.
        message: String,
    },
    /// The deploy or rollback succeeded; the last event.
    Succeeded {
        /// What was done.
        report: DeployReport,
    },
    /// The deploy or rollback failed; the last event. The previous release
    /// still serves.
    Failed {
        /// The stage that failed.
        stage: String,
        /// What went wrong and what to do.
        error: String,
    },
}

/// Deploy or rollback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployKind {
    /// A new release.
    Deploy,
    /// A return to an earlier release.
    Rollback,
}

impl DeployKind {
    /// `deploy` or `rollback`, as the history and the JSON say it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeployKind::Deploy => "deploy",
            DeployKind::Rollback => "rollback",
        }
    }
}

/// What a finished deploy or rollback did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeployReport {
    /// The app.
    pub app: String,
    /// The release now serving.
    pub release: String,
    /// The release that served before.
    pub previous_release: Option<String>,
    /// Wall time of the whole deploy.
    pub duration_ms: u64,
    /// Each stage with its duration, in order.
    pub stages: Vec<StageTiming>,
    /// Time from the first process start to the whole new version healthy.
    pub boot_ms: u64,
    /// The old version's drain.
    pub drain_ms: u64,
    /// Requests still running at the drain deadline (cut).
    pub requests_cut_at_drain_timeout: u64,
    /// Upgraded connections closed at the drain deadline.
    pub upgraded_connections_closed: u64,
    /// A rollback that reused still-running processes.
    pub warm: bool,
    /// Problems that did not fail the deploy (an `after_deploy` hook, say).
    pub warnings: Vec<String>,
    /// The new version's traffic against the app's usual traffic in this
    /// hour; `None` when the daemon could not read it. (Boxed: the events
    /// that carry a report are rare, the others many.)
    #[serde(default)]
    pub traffic: Option<Box<crate::PostDeployReport>>,
}

/// One stage's duration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageTiming {
    /// The stage.
    pub stage: String,
    /// How long it took.
    pub duration_ms: u64,
}

/// An app the daemon knows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppInfo {
    /// Its name.
    pub name: String,
    /// The config of its current release.
    pub config: AppConfig,
    /// The release serving now.
    pub current_release: Option<String>,
    /// A deploy or rollback running now.
    pub running_deploy: Option<String>,
}

/// A release on disk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseInfo {
    /// `20261122T021500Z-3f9a2c1`.
    pub id: String,
    /// When it was staged.
    pub created_at_ms: u64,
    /// Where its code came from.
    pub source: String,
    /// The git commit or content hash.
    pub revision: String,
    /// Serving now.
    pub current: bool,
    /// What `baton rollback` without `--to` returns to.
    pub rollback_target: bool,
    /// It has processes running.
    pub running: bool,
}

/// Whether a deploy is running or how it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployOutcomeKind {
    /// Still going.
    Running,
    /// Done; the release serves.
    Succeeded,
    /// Failed; the previous release serves.
    Failed,
    /// The daemon stopped during it; the state was repaired on start.
    Interrupted,
}

impl DeployOutcomeKind {
    /// `running`, `succeeded`, `failed` or `interrupted`, as the history
    /// and the JSON say it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeployOutcomeKind::Running => "running",
            DeployOutcomeKind::Succeeded => "succeeded",
            DeployOutcomeKind::Failed => "failed",
            DeployOutcomeKind::Interrupted => "interrupted",
        }
    }
}

/// One deploy or rollback, as `baton history` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Sequence number.
    pub id: i64,
    /// The app.
    pub app: String,
    /// Deploy or rollback.
    pub kind: DeployKind,
    /// The release deployed (empty if it failed before it had one).
    pub release: String,
    /// The release serving before.
    pub previous_release: Option<String>,
    /// When it started.
    pub started_at_ms: u64,
    /// How long it took; `None` while running.
    pub duration_ms: Option<u64>,
    /// Who asked.
    pub user: String,
    /// Where the code came from.
    pub source: String,
    /// How it ended.
    pub outcome: DeployOutcomeKind,
    /// Why it failed.
    pub reason: Option<String>,
    /// Stage timings.
    pub stages: Vec<StageTiming>,
    /// The traffic report printed at its end, kept with it.
    #[serde(default)]
    pub traffic: Option<crate::PostDeployReport>,
}

/// One supervised process, as `baton ps` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// The app.
    pub app: String,
    /// `web` or the worker's name.
    pub role: String,
    /// 1-based instance number.
    pub index: u32,
    /// The release it runs.
    pub release: String,
    /// Its process id (0 while waiting to restart).
    pub pid: u32,
    /// The port it listens on (web only).
    pub port: Option<u16>,
    /// When its current incarnation started.
    pub started_at_ms: u64,
    /// How often it was restarted after a crash.
    pub restarts: u32,
    /// Resident memory, bytes.
    pub rss_bytes: u64,
    /// `running`, `warm` (previous version, kept for rollback), `stopping`
    /// or `restarting`.
    pub state: String,
    /// Where its output goes.
    pub log_file: PathBuf,
}

/// `baton status`: an app, its running rollout, and how each of its
/// versions is serving.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppStatus {
    /// The app.
    pub app: String,
    /// The release serving now.
    pub current_release: Option<String>,
    /// A deploy or rollback running now (`deploy #12`).
    pub running_deploy: Option<String>,
    /// The progressive rollout in progress, if one is.
    pub rollout: Option<RolloutStatus>,
    /// The versions in the app's route: stable first, then the candidate,
    /// then any still draining.
    pub versions: Vec<VersionStatus>,
    /// The error budget of the app's `[slo]`, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetStatus>,
    /// The last deploy or rollback that ended, if any has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_deploy: Option<HistoryEntry>,
}

/// Where an app's error budget stands: its `[slo]`, what the window
/// counted, and how fast the budget burns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetStatus {
    /// The objective, e.g. `99.9%`.
    pub availability: crate::Percent,
    /// The rolling window, e.g. `30days`.
    pub window: crate::DurationText,
    /// Requests over the window.
    pub requests: u64,
    /// Failed requests (5xx and upstream failures) over the window.
    pub errors: u64,
    /// The errors the objective allows over the window.
    pub allowed_errors: f64,
    /// The share of the budget left: 1 untouched, 0 or less spent.
    pub left: f64,
    /// The error rate of the last hour over the allowed rate.
    pub burn_rate_1h: f64,
    /// The error rate of the last 6 hours over the allowed rate.
    pub burn_rate_6h: f64,
}

impl BudgetStatus {
    /// Whether the budget is spent: no error is left to spend.
    pub fn is_spent(&self) -> bool {
        self.left <= 0.0
    }
}

/// Where a running progressive rollout stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RolloutStatus {
    /// `canary`, `blue-green` or `replace`.
    pub strategy: String,
    /// The phase in words: `step 2 of 4 (10%)`, `paused at bake at 100%`.
    pub phase: String,
    /// The candidate's share of live traffic, in percent.
    pub weight_percent: f64,
    /// An operator paused it (`baton rollout resume` goes on).
    pub paused: bool,
    /// Seconds until the phase may end if the guardrails hold (0: as soon
    /// as they allow); `None` while paused.
    pub next_step_in_s: Option<u64>,
    /// Seconds until the phase gives up waiting for evidence; `None` when
    /// it cannot time out.
    pub times_out_in_s: Option<u64>,
    /// The reason of the last decision, as the deploy's history has it.
    pub reason: String,
}

/// What a version does in an app's route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusRole {
    /// Takes the traffic the candidate does not.
    Stable,
    /// The new version, taking a share of the traffic.
    Candidate,
    /// Left the route; finishing its requests.
    Draining,
}

/// One version's share and numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionStatus {
    /// The version's label.
    pub label: String,
    /// What it does.
    pub role: StatusRole,
    /// Its share of new requests, in percent, when the route says.
    pub weight_percent: Option<f64>,
    /// The last minute of its traffic.
    pub last_minute: TrafficSummary,
    /// The last five minutes of its traffic.
    pub last_5_minutes: TrafficSummary,
}

/// A version's traffic over one window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrafficSummary {
    /// Requests that finished in the window.
    pub requests: u64,
    /// Requests per second over the part of the window the stats cover.
    pub req_per_s: f64,
    /// 5xx answers and upstream failures over all requests (0 to 1).
    pub error_rate: f64,
    /// Median latency, milliseconds (0 without requests).
    pub p50_ms: f64,
    /// 95th percentile latency, milliseconds (0 without requests; absent
    /// from the answers of daemons older than this field).
    #[serde(default)]
    pub p95_ms: f64,
    /// 99th percentile latency, milliseconds (0 without requests).
    pub p99_ms: f64,
}

impl TrafficSummary {
    /// `requests` of which `errors` failed, with their latencies, over
    /// `span_ms`; quantiles are read from the fixed buckets (within a
    /// bucket of the truth).
    pub fn from_buckets(
        requests: u64,
        errors: u64,
        latency: &baton_telemetry::LatencyBuckets,
        span_ms: u64,
    ) -> TrafficSummary {
        let ms = |q: f64| {
            latency
                .quantile(q)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        TrafficSummary {
            requests,
            req_per_s: if span_ms == 0 {
                0.0
            } else {
                requests as f64 * 1000.0 / span_ms as f64
            },
            error_rate: if requests == 0 {
                0.0
            } else {
                errors as f64 / requests as f64
            },
            p50_ms: ms(0.50),
            p95_ms: ms(0.95),
            p99_ms: ms(0.99),
        }
    }
}

impl From<&crate::WindowSnapshot> for TrafficSummary {
    fn from(snapshot: &crate::WindowSnapshot) -> Self {
        TrafficSummary {
            requests: snapshot.counts.requests,
            req_per_s: snapshot.requests_per_second(),
            error_rate: snapshot.error_rate(),
            p50_ms: snapshot.p50_ms,
            p95_ms: snapshot.p95_ms,
            p99_ms: snapshot.p99_ms,
        }
    }
}
