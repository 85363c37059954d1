//! `[rollout]`: how a candidate is exposed and what it must prove.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::human;
use crate::{Guardrail, Metric, Weight};

/// How a rollout exposes the candidate and when it may go further.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RolloutPlan {
    /// How live traffic moves to the candidate.
    pub strategy: Strategy,
    /// The least time a step lasts before the next, if the guardrails hold.
    pub step_duration: Duration,
    /// How long a step may wait for evidence before the rollout gives up
    /// (measured from the step's start).
    pub step_timeout: Duration,
    /// A window with fewer candidate requests than this is no evidence.
    pub min_requests: u64,
    /// How long the guardrails keep watching once the candidate has all
    /// traffic, before it is promoted.
    pub bake: Duration,
    /// Mirrored traffic before any live traffic; `None` (or a share of 0%)
    /// skips it.
    pub shadow: Option<ShadowPlan>,
    /// Every one must hold; in the order observations are given.
    pub guardrails: Vec<Guardrail>,
}

/// How live traffic moves to the candidate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// All traffic at once, then the bake.
    Replace,
    /// All traffic at once after the shadow (if any), held for one step's
    /// worth of evidence, then the bake.
    BlueGreen,
    /// Live traffic in increasing steps, each held until it has proved
    /// itself, ending at 100%; then the bake.
    Canary {
        /// The candidate's weight at each step: strictly increasing, above
        /// 0%, the last 100%.
        steps: Vec<Weight>,
    },
}

/// The shadow pre-stage: a share of requests copied to the candidate, whose
/// answers are compared and thrown away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShadowPlan {
    /// The share of (mirrorable) requests copied.
    pub share: Weight,
    /// The least time the shadow lasts before live traffic, if the
    /// guardrails hold.
    pub duration: Duration,
}

/// Why a plan cannot run, said so that the user can fix `baton.toml`.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// A canary without steps.
    #[error(
        "a canary needs at least one step; write e.g. steps = [\"1%\", \"10%\", \"50%\", \"100%\"]"
    )]
    NoSteps,
    /// A step that does not raise the weight.
    #[error(
        "canary steps must increase from above 0%: step {number} ({weight}) is not above {previous}"
    )]
    StepNotIncreasing {
        /// The step, counted from 1.
        number: usize,
        /// Its weight.
        weight: Weight,
        /// The weight before it (0% for the first step).
        previous: Weight,
    },
    /// A last step below 100%.
    #[error(
        "the last canary step is {last}; end the steps with \"100%\" so the candidate takes all traffic"
    )]
    LastStepNotFull {
        /// The last step's weight.
        last: Weight,
    },
    /// A step timeout no step could meet.
    #[error(
        "step_timeout ({}) is shorter than step_duration ({}), so no step could pass; \
         make step_timeout at least as long",
        human::span(*step_timeout), human::span(*step_duration)
    )]
    TimeoutBeforeStepEnds {
        /// The least time a step lasts.
        step_duration: Duration,
        /// How long a step may wait for evidence.
        step_timeout: Duration,
    },
    /// `min_requests = 0`.
    #[error("min_requests = 0 would let an empty window pass a step; set it to at least 1")]
    NoMinRequests,
    /// A guardrail measured over nothing.
    #[error("guardrail {number} ({name}) has a window of 0s; give it one such as \"2m\"")]
    EmptyWindow {
        /// The guardrail, counted from 1.
        number: usize,
        /// Its metric's name.
        name: String,
    },
    /// An external guardrail without a name.
    #[error("guardrail {number} has an empty name; name the metric it reads")]
    UnnamedExternal {
        /// The guardrail, counted from 1.
        number: usize,
    },
    /// An external guardrail without a limit, or with limits that cannot
    /// both hold.
    #[error("guardrail {number} ({name}) {problem}")]
    ExternalLimits {
        /// The guardrail, counted from 1.
        number: usize,
        /// Its name.
        name: String,
        /// What is wrong with `min` and `max`.
        problem: String,
    },
}

impl Default for RolloutPlan {
    /// The plan of a `baton.toml` without `[rollout]` settings: replace,
    /// 2 minute steps that time out after 15, at least 100 requests per
    /// window, a 5 minute bake, no shadow, the default guardrails.
    fn default() -> Self {
        RolloutPlan {
            strategy: Strategy::Replace,
            step_duration: Duration::from_secs(120),
            step_timeout: Duration::from_secs(15 * 60),
            min_requests: 100,
            bake: Duration::from_secs(5 * 60),
            shadow: None,
            guardrails: Guardrail::defaults(),
        }
    }
}

impl Strategy {
    /// A canary with the usual steps: 1%, 10%, 50%, 100%.
    pub fn default_canary() -> Strategy {
        let steps = [1, 10, 50, 100]
            .into_iter()
            .filter_map(Weight::from_percent)
            .collect();
        Strategy::Canary { steps }
    }

    /// Its name in `baton.toml` and in reasons.
    pub fn name(&self) -> &'static str {
        match self {
            Strategy::Replace => "replace",
            Strategy::BlueGreen => "blue-green",
            Strategy::Canary { .. } => "canary",
        }
    }
}

impl RolloutPlan {
    /// Checks everything `decide` relies on; a plan that passes can run.
    pub fn validate(&self) -> Result<(), PlanError> {
        if let Strategy::Canary { steps } = &self.strategy {
            let last = steps.last().ok_or(PlanError::NoSteps)?;
            let mut previous = Weight::ZERO;
            for (index, &weight) in steps.iter().enumerate() {
                if weight <= previous {
                    return Err(PlanError::StepNotIncreasing {
                        number: index + 1,
                        weight,
                        previous,
                    });
                }
                previous = weight;
            }
            if !last.is_full() {
                return Err(PlanError::LastStepNotFull { last: *last });
            }
        }
        if self.step_timeout < self.step_duration {
            return Err(PlanError::TimeoutBeforeStepEnds {
                step_duration: self.step_duration,
                step_timeout: self.step_timeout,
            });
        }
        if self.min_requests == 0 {
            return Err(PlanError::NoMinRequests);
        }
        for (index, guardrail) in self.guardrails.iter().enumerate() {
            validate_guardrail(index + 1, guardrail)?;
        }
        Ok(())
    }

    /// The shadow's share, if there is a shadow phase at all.
    pub fn shadow_share(&self) -> Option<Weight> {
        self.shadow
            .map(|shadow| shadow.share)
            .filter(|share| !share.is_zero())
    }

    /// The live steps' weights: the canary's steps, or one step at 100%
    /// for blue-green; none for replace, which goes straight to the bake.
    pub fn steps(&self) -> &[Weight] {
        match &self.strategy {
            Strategy::Replace => &[],
            Strategy::BlueGreen => &[Weight::FULL],
            Strategy::Canary { steps } => steps,
        }
    }
}

fn validate_guardrail(number: usize, guardrail: &Guardrail) -> Result<(), PlanError> {
    let name = guardrail.metric.name().to_string();
    if let Metric::External { min, max, .. } = &guardrail.metric {
        if name.trim().is_empty() {
            return Err(PlanError::UnnamedExternal { number });
        }
        let problem = match (min, max) {
            (None, None) => Some("has neither min nor max; give it at least one".to_string()),
            (Some(min), Some(max)) if min > max => Some(format!(
                "has min {} above max {}, so nothing could hold",
                human::number(*min),
                human::number(*max)
            )),
            _ if [min, max].into_iter().flatten().any(|x| !x.is_finite()) => {
                Some("has a limit that is not a finite number".to_string())
            }
            _ => None,
        };
        if let Some(problem) = problem {
            return Err(PlanError::ExternalLimits {
                number,
                name,
                problem,
            });
        }
    }
    if guardrail.window.is_zero() {
        return Err(PlanError::EmptyWindow { number, name });
    }
    Ok(())
}
