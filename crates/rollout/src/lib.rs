//! The deploy pipeline: the order of a deploy's and a rollback's stages, what
//! each failure undoes, and the events that report them.
//!
//! This crate decides; it must not do I/O itself. Every effect (staging a
//! release, booting processes, switching traffic, restarting workers) is
//! behind the [`Effects`] trait, so the pipeline is tested with a recording
//! fake and no processes, sockets or disks.
#![deny(missing_docs)]

mod effects;
mod pipeline;
mod stage;

pub use effects::{Booted, Effects, EventSink, Hook, Switched};
pub use pipeline::{DeployPlan, RollbackPlan, deploy, rollback};
pub use stage::{Stage, StepError};
