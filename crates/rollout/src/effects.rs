//! What the pipeline asks the world to do, as a trait the daemon implements
//! and tests fake.

use std::future::Future;

use baton_api::{DeployEvent, DeploySource, PostDeployReport};

use crate::StepError;

/// Where progress goes (the CLI's stream and the history record).
pub trait EventSink: Send + Sync {
    /// Reports one event.
    fn emit(&self, event: DeployEvent);
}

/// A hook of `[hooks]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// Before the new version boots.
    BeforeDeploy,
    /// After it is healthy, before it gets traffic.
    BeforeTraffic,
    /// After the deploy.
    AfterDeploy,
}

/// The two phases of a deploy's schema migrations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationPhase {
    /// After the build, before the new version boots: changes the old
    /// version tolerates.
    Expand,
    /// Once no process of the old version runs: changes only the new
    /// version tolerates.
    Contract,
}

impl MigrationPhase {
    /// `expand` or `contract`.
    pub fn name(self) -> &'static str {
        match self {
            MigrationPhase::Expand => "expand",
            MigrationPhase::Contract => "contract",
        }
    }
}

/// A new version's web processes, healthy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Booted {
    /// Processes that were still running (kept warm) and reused.
    pub warm: bool,
    /// From the first process start to all healthy.
    pub boot_ms: u64,
    /// What was started, for humans (`2 processes on :37012, :37013`).
    pub detail: String,
}

/// What the traffic switch did to the old version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Switched {
    /// How long the old version took to finish its requests.
    pub drain_ms: u64,
    /// Requests cut at the drain deadline.
    pub requests_cut: u64,
    /// Upgraded connections closed at the drain deadline.
    pub upgraded_closed: u64,
}

/// The effects of one deploy or rollback of one app. Each method does one
/// thing completely or fails leaving nothing half-done behind it (a failed
/// boot stops what it started).
pub trait Effects: Send + Sync {
    /// Copies or clones `source` into a new release; returns its id.
    fn stage(
        &self,
        source: &DeploySource,
    ) -> impl Future<Output = Result<String, StepError>> + Send;
    /// Links shared paths and earlier releases' assets into `release`.
    fn link(&self, release: &str) -> impl Future<Output = Result<String, StepError>> + Send;
    /// Runs one build step in `release`.
    fn build(
        &self,
        release: &str,
        step: &str,
    ) -> impl Future<Output = Result<(), StepError>> + Send;
    /// Runs a hook in `release`.
    fn hook(
        &self,
        release: &str,
        hook: Hook,
        command: &str,
    ) -> impl Future<Output = Result<(), StepError>> + Send;
    /// Marks a staged and built release complete (rollback can use it).
    fn seal(&self, release: &str) -> impl Future<Output = Result<(), StepError>> + Send;
    /// Starts `release`'s web processes (or reuses warm ones) and waits
    /// until every one is healthy.
    fn boot(&self, release: &str) -> impl Future<Output = Result<Booted, StepError>> + Send;
    /// Sends the smoke checks to every booted process of `release`
    /// directly; fails listing each check that did not pass.
    fn smoke(&self, release: &str) -> impl Future<Output = Result<String, StepError>> + Send;
    /// Routes all traffic to `release`, then drains the version that had
    /// it. `None` takes the app out of the route (a first deploy undone).
    fn switch_traffic(
        &self,
        release: Option<&str>,
    ) -> impl Future<Output = Result<Switched, StepError>> + Send;
    /// Points `current` at `release`; `None` removes it (a first deploy
    /// undone).
    fn switch_current(
        &self,
        release: Option<&str>,
    ) -> impl Future<Output = Result<(), StepError>> + Send;
    /// Stops `from`'s workers gracefully and starts `to`'s.
    fn restart_workers(
        &self,
        from: Option<&str>,
        to: &str,
    ) -> impl Future<Output = Result<String, StepError>> + Send;
    /// The old web processes: kept warm for `keep_warm`, then stopped. Does
    /// not wait for the stop.
    fn retire(&self, release: &str) -> impl Future<Output = String> + Send;
    /// Undoes a failed deploy's new version: stops its processes; deletes
    /// its release directory when `delete` (it was staged by this deploy).
    fn discard(&self, release: &str, delete: bool) -> impl Future<Output = ()> + Send;
    /// `release`'s traffic since it went live against the app's usual
    /// traffic in this hour; `None` when the numbers cannot be read (that
    /// never fails a deploy).
    fn traffic_report(
        &self,
        release: &str,
    ) -> impl Future<Output = Option<PostDeployReport>> + Send;
    /// Deletes releases beyond retention; returns what it deleted.
    fn prune(&self) -> impl Future<Output = Result<Vec<String>, StepError>> + Send;
    /// Lints the migrations of `release` once it is staged, else those in
    /// `source` (a directory): fails with the findings when one is an
    /// error, unless the deploy allowed unsafe migrations.
    fn lint_migrations(
        &self,
        source: &DeploySource,
        release: Option<&str>,
    ) -> impl Future<Output = Result<String, StepError>> + Send;
    /// How many migrations of `phase` among `release`'s are not applied.
    fn pending_migrations(
        &self,
        release: &str,
        phase: MigrationPhase,
    ) -> impl Future<Output = Result<usize, StepError>> + Send;
    /// Applies `release`'s pending migrations of `phase`, streaming what
    /// it does; says what it applied.
    fn migrate(
        &self,
        release: &str,
        phase: MigrationPhase,
    ) -> impl Future<Output = Result<String, StepError>> + Send;
    /// Stops every process of the app that is not `release`'s (old web
    /// processes kept warm, old workers finishing their jobs) and waits
    /// until each has exited.
    fn stop_others(&self, release: &str) -> impl Future<Output = Result<String, StepError>> + Send;
}
