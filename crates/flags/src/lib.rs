//! Feature flags as data, and their evaluation: Unleash's model (the
//! `/api/client/features` JSON: flags, strategies, constraints, segments,
//! variants, parent flags) and Unleash's exact bucketing, so that flags
//! brought over from Unleash give every user the same answers here. The
//! official client specification runs against it in
//! `tests/unleash_spec.rs`.
//!
//! This crate is pure: it must not do I/O, start tasks, read the clock or
//! ask the OS anything, and it keeps no state between calls. The time of an
//! evaluation comes in the [`Context`]; the host's name and the random source
//! come through [`Features::with_hostname`] and [`Features::with_random`].
//! Storing flags, revisions, the CLI and the OFREP endpoints belong to the
//! daemon, which calls in here.
//!
//! ```
//! use baton_flags::{Context, Features, Reason};
//!
//! let features = Features::from_unleash_json(
//!     r#"{"version": 2, "features": [{
//!         "name": "new_editor", "enabled": true,
//!         "strategies": [{"name": "flexibleRollout",
//!                         "parameters": {"rollout": "10", "stickiness": "userId"}}]
//!     }]}"#,
//! )?;
//! let alice = Context { user_id: Some("alice".into()), ..Context::default() };
//! let answer = features.evaluate("new_editor", &alice).expect("the flag exists");
//! assert_eq!(answer.reason, Reason::Split);
//! assert_eq!(answer.enabled, features.is_enabled("new_editor", &alice));
//! # Ok::<(), baton_flags::FlagsError>(())
//! ```
#![deny(missing_docs)]

mod bucket;
mod client_features;
mod constraint;
mod context;
mod delta;
mod dependency;
mod error;
mod evaluation;
mod feature;
mod features;
mod host;
mod lenient;
mod network;
mod operator;
mod random;
mod segment;
mod settled;
mod stickiness;
mod strategy;
mod variant;
mod variant_definition;
mod warning;

pub use bucket::{ROLLOUT_SEED, VARIANT_SEED, rollout_bucket, variant_bucket};
pub use client_features::ClientFeatures;
pub use constraint::Constraint;
pub use context::Context;
pub use delta::{Delta, DeltaEvent};
pub use dependency::Dependency;
pub use error::FlagsError;
pub use evaluation::{Evaluation, Reason};
pub use feature::Feature;
pub use features::Features;
pub use operator::Operator;
pub use random::{RandomSource, ThreadRandom};
pub use segment::Segment;
pub use settled::Settled;
pub use strategy::Strategy;
pub use variant::{Payload, Variant};
pub use variant_definition::{VariantDefinition, VariantOverride};
pub use warning::Warning;
