//! The deploy pipeline: the order of a deploy's and a rollback's stages, what
//! each failure undoes, and the events that report them.
//!
//! This crate decides; it must not do I/O itself. Every effect (staging a
//! release, booting processes, switching traffic, restarting workers) is
//! behind the [`Effects`] trait, so the pipeline is tested with a recording
//! fake and no processes, sockets or disks.
#![deny(missing_docs)]

mod command;
mod decide;
mod decision;
mod effects;
mod guardrail;
mod human;
mod judge;
mod observations;
mod outcome;
mod percent;
mod pipeline;
mod plan_from_config;
mod progress;
mod ratio;
mod reading;
mod rollout_plan;
mod rollout_state;
mod route;
mod stage;
mod verdict;
mod weight;

pub use command::Command;
pub use decide::{decide, start};
pub use decision::{Action, Decision};
pub use effects::{Booted, Effects, EventSink, Hook, MigrationPhase, Switched};
pub use guardrail::{Guardrail, Metric};
pub use observations::Observations;
pub use outcome::Outcome;
pub use percent::{PercentError, PercentProblem};
pub use pipeline::{DeployPlan, RollbackPlan, deploy, rollback};
pub use progress::Progress;
pub use ratio::Ratio;
pub use reading::{MirrorCounts, Reading, WindowCounts};
pub use rollout_plan::{PlanError, RolloutPlan, ShadowPlan, Strategy};
pub use rollout_state::RolloutState;
pub use route::Route;
pub use stage::{Stage, StepError};
pub use verdict::{Finding, Limit, Measurement, Quantity, Verdict};
pub use weight::Weight;
