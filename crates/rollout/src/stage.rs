//! The stages of a deploy and the error a stage fails with.

use std::fmt;

/// One step of a deploy, as the progress stream and history name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Lint the release's migrations (before staging a directory, right
    /// after checking out a git source).
    Preflight,
    /// Copy or clone the code into a new release directory.
    Stage,
    /// Link shared paths and earlier releases' assets.
    Link,
    /// Run the build steps.
    Build,
    /// The `before_deploy` hook.
    BeforeDeploy,
    /// Mark the release complete (its files flushed to disk first).
    Seal,
    /// Apply the expand migrations, before the new version boots.
    MigrateExpand,
    /// Start the new web processes and wait until they are healthy.
    Boot,
    /// Requests sent straight to the new processes, before live traffic.
    Smoke,
    /// The `before_traffic` hook.
    BeforeTraffic,
    /// Move traffic to the new version, drain the old one.
    Switch,
    /// Point `current` at the new release.
    Current,
    /// Restart the workers onto the new release.
    Workers,
    /// Keep the old web processes warm, then stop them.
    Retire,
    /// Stop the old version now and wait for its exit: contract
    /// migrations are pending.
    StopOld,
    /// Apply the contract migrations, once the old version is gone.
    MigrateContract,
    /// The `after_deploy` hook.
    AfterDeploy,
    /// Delete releases beyond `keep_releases`.
    Prune,
}

impl Stage {
    /// The stage's name on the wire and in history.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Preflight => "preflight",
            Stage::Stage => "stage",
            Stage::Link => "link",
            Stage::Build => "build",
            Stage::BeforeDeploy => "before_deploy",
            Stage::Seal => "seal",
            Stage::MigrateExpand => "migrate_expand",
            Stage::Boot => "boot",
            Stage::Smoke => "smoke",
            Stage::BeforeTraffic => "before_traffic",
            Stage::Switch => "switch",
            Stage::Current => "current",
            Stage::Workers => "workers",
            Stage::Retire => "retire",
            Stage::StopOld => "stop_old",
            Stage::MigrateContract => "migrate_contract",
            Stage::AfterDeploy => "after_deploy",
            Stage::Prune => "prune",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an effect failed: a message for the user that says what happened and
/// what to do (the effect that failed knows best).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StepError(pub String);

impl StepError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        StepError(message.into())
    }
}
