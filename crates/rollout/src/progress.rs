//! A rollout's state as `baton status` shows it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{RolloutPlan, RolloutState, Route};

/// Where a rollout stands at one instant, for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The phase in words ("step 2 of 4 (10%)", "paused at bake at 100%").
    pub label: String,
    /// What the proxy routes.
    pub route: Route,
    /// Until the phase may end: the next step, live traffic after the
    /// shadow, or the promotion after the bake. Zero means as soon as the
    /// guardrails allow; `None` while paused or finished.
    pub next_in: Option<Duration>,
    /// Until the phase gives up waiting for evidence; `None` when it
    /// cannot time out.
    pub times_out_in: Option<Duration>,
}

impl RolloutState {
    /// Where this state stands at `now`.
    pub fn progress(&self, plan: &RolloutPlan, now: Duration) -> Progress {
        Progress {
            label: self.label(plan),
            route: self.route(plan),
            next_in: self.earliest_end(plan).map(|end| end.saturating_sub(now)),
            times_out_in: self.deadline(plan).map(|end| end.saturating_sub(now)),
        }
    }
}
