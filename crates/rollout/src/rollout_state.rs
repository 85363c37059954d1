//! Where a rollout is: the phase, and since when.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Outcome, PlanError, RolloutPlan, Route, Strategy, Weight};

/// The phase a rollout is in. Times (`since`) are on the caller's clock:
/// time since the rollout began.
///
/// The state is plain data: the daemon stores it with each decision and
/// hands it back to [`decide`](crate::decide) on the next tick, so a
/// restarted daemon continues where it was.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    /// Requests are mirrored to the candidate; it has no live traffic.
    Shadow {
        /// When the shadow began.
        since: Duration,
    },
    /// The candidate has `weight` of live traffic and must prove itself at
    /// it.
    Step {
        /// The step, counted from 0 in [`RolloutPlan::steps`].
        index: usize,
        /// Its weight.
        weight: Weight,
        /// When the step began (or resumed).
        since: Duration,
    },
    /// The candidate has all traffic; the guardrails keep watching until
    /// the bake is over.
    Bake {
        /// When the bake began (or resumed).
        since: Duration,
    },
    /// An operator froze `frozen`: the route stays as it is, nothing
    /// advances or times out, breaches still roll back. Never holds
    /// another `Paused` or a `Finished`.
    Paused {
        /// The phase that was frozen.
        frozen: Box<RolloutState>,
        /// When it was paused.
        since: Duration,
    },
    /// The rollout is over.
    Finished(Outcome),
}

impl RolloutState {
    /// The state a rollout of `plan` starts in at `now`: the shadow if the
    /// plan has one, else the first step (replace: the bake). The plan is
    /// checked first.
    pub fn initial(plan: &RolloutPlan, now: Duration) -> Result<RolloutState, PlanError> {
        plan.validate()?;
        Ok(if plan.shadow_share().is_some() {
            RolloutState::Shadow { since: now }
        } else {
            RolloutState::first_live(plan, now)
        })
    }

    /// The first phase with live traffic.
    pub(crate) fn first_live(plan: &RolloutPlan, now: Duration) -> RolloutState {
        RolloutState::step_or_bake(plan, 0, now)
    }

    /// Step `index` of the plan, or the bake when there is no such step.
    pub(crate) fn step_or_bake(plan: &RolloutPlan, index: usize, now: Duration) -> RolloutState {
        match plan.steps().get(index) {
            Some(&weight) => RolloutState::Step {
                index,
                weight,
                since: now,
            },
            None => RolloutState::Bake { since: now },
        }
    }

    /// The candidate's share of live traffic in this state: what the proxy
    /// should route to it now.
    pub fn live_weight(&self) -> Weight {
        match self {
            RolloutState::Shadow { .. } => Weight::ZERO,
            RolloutState::Step { weight, .. } => *weight,
            RolloutState::Bake { .. } | RolloutState::Finished(Outcome::Promoted) => Weight::FULL,
            RolloutState::Paused { frozen, .. } => frozen.live_weight(),
            RolloutState::Finished(_) => Weight::ZERO,
        }
    }

    /// Whether requests are being mirrored to the candidate.
    pub fn is_shadowing(&self) -> bool {
        match self {
            RolloutState::Shadow { .. } => true,
            RolloutState::Paused { frozen, .. } => frozen.is_shadowing(),
            _ => false,
        }
    }

    /// The whole route the proxy should have in this state.
    pub fn route(&self, plan: &RolloutPlan) -> Route {
        Route {
            live: self.live_weight(),
            mirror: plan.shadow_share().filter(|_| self.is_shadowing()),
        }
    }

    /// When the current phase began (for a pause, when it was paused);
    /// `None` once finished. The caller counts
    /// [`Observations::phase_requests`](crate::Observations::phase_requests)
    /// from here.
    pub fn since(&self) -> Option<Duration> {
        match self {
            RolloutState::Shadow { since }
            | RolloutState::Step { since, .. }
            | RolloutState::Bake { since }
            | RolloutState::Paused { since, .. } => Some(*since),
            RolloutState::Finished(_) => None,
        }
    }

    /// How the rollout ended, if it has.
    pub fn outcome(&self) -> Option<&Outcome> {
        match self {
            RolloutState::Finished(outcome) => Some(outcome),
            _ => None,
        }
    }

    /// When the phase may end at the earliest (if its guardrails allow);
    /// `None` while paused or finished.
    pub fn earliest_end(&self, plan: &RolloutPlan) -> Option<Duration> {
        let since = self.since()?;
        let length = match self {
            RolloutState::Shadow { .. } => plan.shadow.map(|s| s.duration).unwrap_or_default(),
            RolloutState::Step { .. } => plan.step_duration,
            RolloutState::Bake { .. } => plan.bake,
            RolloutState::Paused { .. } | RolloutState::Finished(_) => return None,
        };
        Some(since.saturating_add(length))
    }

    /// When the phase gives up waiting for evidence; `None` for phases that
    /// cannot time out (the bake only watches for breaches; a pause waits
    /// for an operator).
    ///
    /// A step times out `step_timeout` after it began. A shadow meant to
    /// last longer than a step gets the same patience after its own length
    /// (`step_timeout - step_duration`), so a long shadow is not cut short.
    pub fn deadline(&self, plan: &RolloutPlan) -> Option<Duration> {
        match self {
            RolloutState::Shadow { since } => {
                let length = plan.shadow.map(|s| s.duration).unwrap_or_default();
                let extra = length.saturating_sub(plan.step_duration);
                Some(
                    since
                        .saturating_add(plan.step_timeout)
                        .saturating_add(extra),
                )
            }
            RolloutState::Step { since, .. } => Some(since.saturating_add(plan.step_timeout)),
            _ => None,
        }
    }

    /// The phase in words, for reasons and status: "step 2 of 4 (10%)".
    pub fn label(&self, plan: &RolloutPlan) -> String {
        match self {
            RolloutState::Shadow { .. } => match plan.shadow_share() {
                Some(share) => format!("shadow ({share} mirrored)"),
                None => "shadow".to_string(),
            },
            RolloutState::Step { index, weight, .. } => match &plan.strategy {
                Strategy::BlueGreen => format!("blue-green switch ({weight})"),
                Strategy::Canary { steps } => {
                    format!("step {} of {} ({weight})", index + 1, steps.len())
                }
                Strategy::Replace => format!("step {} ({weight})", index + 1),
            },
            RolloutState::Bake { .. } => "bake at 100%".to_string(),
            RolloutState::Paused { frozen, .. } => format!("paused at {}", frozen.label(plan)),
            RolloutState::Finished(outcome) => outcome.to_string(),
        }
    }

    /// The frozen phase continuing from `now`: its timer starts again.
    pub(crate) fn restarted(&self, now: Duration) -> RolloutState {
        match self {
            RolloutState::Shadow { .. } => RolloutState::Shadow { since: now },
            RolloutState::Step { index, weight, .. } => RolloutState::Step {
                index: *index,
                weight: *weight,
                since: now,
            },
            RolloutState::Bake { .. } => RolloutState::Bake { since: now },
            RolloutState::Paused { frozen, .. } => frozen.restarted(now),
            RolloutState::Finished(outcome) => RolloutState::Finished(outcome.clone()),
        }
    }
}
