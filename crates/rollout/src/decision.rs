//! What `decide` concluded, and what the caller must do about it.

use serde::{Deserialize, Serialize};

use crate::{Outcome, RolloutState, Route, Verdict, Weight};

/// One decision: the next state, the one thing to do to the world, the
/// evidence and the reason. The daemon stores each in the deploy's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The state to pass to the next `decide`.
    pub next: RolloutState,
    /// What the caller must do now.
    pub action: Action,
    /// Every guardrail's verdict, in the plan's order (empty once
    /// finished).
    pub verdicts: Vec<Verdict>,
    /// Why, in a sentence with the numbers.
    pub reason: String,
}

/// What the caller must do to the world. Only changes are emitted: a
/// decision that leaves the route as it was says `Hold`, so deciding again
/// on the same state never repeats an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Change nothing.
    Hold,
    /// Start copying this share of requests to the candidate.
    StartShadow(Weight),
    /// Stop copying requests, and route `live` of live traffic to the
    /// candidate, in one routing change.
    StopShadow {
        /// The candidate's share of live traffic from now on.
        live: Weight,
    },
    /// Route this share of live traffic to the candidate.
    SetWeight(Weight),
    /// The candidate becomes stable: all traffic, `current` switched, the
    /// old version drained and retired.
    Promote,
    /// All traffic to stable now (and no more mirroring); drain and stop
    /// the candidate.
    RollBack,
}

impl Action {
    /// The action that takes the proxy from `from` to what `to` needs.
    pub(crate) fn between(from: Route, to: &RolloutState, to_route: Route) -> Action {
        match to {
            RolloutState::Finished(Outcome::Promoted) => return Action::Promote,
            RolloutState::Finished(_) => return Action::RollBack,
            _ => {}
        }
        match (from.mirror, to_route.mirror) {
            (None, Some(share)) => Action::StartShadow(share),
            (Some(_), None) => Action::StopShadow {
                live: to_route.live,
            },
            _ if from.live != to_route.live => Action::SetWeight(to_route.live),
            _ => Action::Hold,
        }
    }
}
