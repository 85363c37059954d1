//! How a rollout ended.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How a rollout ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The candidate became stable.
    Promoted,
    /// A guardrail was breached; all traffic went back to stable.
    RolledBack {
        /// The breached guardrails and their numbers.
        reason: String,
    },
    /// An operator aborted; all traffic went back to stable.
    Aborted,
    /// A phase could not gather enough evidence in time; all traffic went
    /// back to stable.
    TimedOut {
        /// What evidence was missing.
        reason: String,
    },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Promoted => f.write_str("promoted"),
            Outcome::RolledBack { reason } => write!(f, "rolled back: {reason}"),
            Outcome::Aborted => f.write_str("aborted by an operator"),
            Outcome::TimedOut { reason } => write!(f, "timed out: {reason}"),
        }
    }
}
