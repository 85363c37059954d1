//! Everything `decide` is told about the world at one instant.

use serde::{Deserialize, Serialize};

use crate::{Command, Reading};

/// What the caller measured at `now`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Observations {
    /// One reading per guardrail, in the plan's order. A missing reading,
    /// or one of the wrong kind, is no evidence for its guardrail.
    pub readings: Vec<Reading>,
    /// The candidate's requests since the current phase began (its
    /// `since`): live requests at a step, mirrored ones while shadowing.
    /// A step needs `min_requests` of them at its own weight, so a window
    /// reaching back into the previous step cannot pass it alone.
    pub phase_requests: u64,
    /// A command that arrived since the last decision.
    pub command: Option<Command>,
}
