//! What an operator can ask of a running rollout.

use serde::{Deserialize, Serialize};

/// An operator's command (`baton promote`, `baton abort`,
/// `baton rollout pause|resume`, or the admin API's abort).
///
/// Commands are events: the caller passes one in the single `decide` call
/// that follows its arrival. Each is written so that passing it again
/// anyway changes nothing more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Skip the shadow and the remaining steps: all traffic to the
    /// candidate now, then the bake (guardrails still watching).
    Promote,
    /// All traffic to stable now; the rollout ends as aborted.
    Abort,
    /// Freeze at the current weight: nothing advances or times out, but a
    /// breached guardrail still rolls back.
    Pause,
    /// Continue a paused rollout; the frozen phase's timer starts again.
    Resume,
}
