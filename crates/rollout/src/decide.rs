//! The rollout state machine: from a state, the evidence and the time, the
//! next state and what to do.
//!
//! The rules, in the order they apply:
//!
//! 1. A finished rollout stays finished; commands are ignored.
//! 2. Any breached guardrail rolls back at once, in every phase (shadow,
//!    any step, the bake, a pause), before any command is looked at: the
//!    evidence wins over an operator's promote, and an abort in the same
//!    instant ends the same way but with the numbers recorded.
//! 3. Commands: `Abort` rolls back; `Promote` skips the shadow and the
//!    remaining steps and starts the bake at 100% (like Argo Rollouts'
//!    `promote` applied to every remaining step; unlike its `--full`, the
//!    bake's watch stays, as the safety net a promotion keeps; during the
//!    bake a promote changes nothing, so a repeated one cannot skip it);
//!    `Pause` freezes until resumed, like `kubectl argo rollouts pause`; `Resume`
//!    restarts the frozen phase's timer from now, so the step again lasts
//!    its full length at its weight.
//! 4. A shadow or a step ends when it has lasted its length, every
//!    guardrail holds (no evidence means wait, never pass), and the
//!    candidate served `min_requests` in this phase. One that has not
//!    ended by its deadline rolls back as timed out: low traffic never
//!    passes a step by silence. (Flagger counts "no values found" as a
//!    failed check, which rolls a quiet canary back at its first interval;
//!    here silence waits, up to `step_timeout`.)
//! 5. The bake only watches: it promotes when it has lasted `bake` without
//!    a breach, whether or not its windows were full. Evidence was the
//!    steps' job; after 100% there is nothing more to expose, and a quiet
//!    hour must not roll back a version that already serves everyone.
//!    (Argo Rollouts pauses for a human on an inconclusive post-promotion
//!    analysis; here a quiet bake is no reason to hold.)
//!
//! Only route changes are emitted as actions, so deciding again on the
//! state a decision returned never repeats one.

use std::time::Duration;

use crate::human::{count, span};
use crate::judge::{Scene, judge};
use crate::{
    Action, Command, Decision, Observations, Outcome, PlanError, RolloutPlan, RolloutState, Route,
    Verdict,
};

/// The first decision of a rollout of `plan` at `now`: its initial state
/// and the action that sets it up (start mirroring, or route the first
/// weight). The plan is checked first.
pub fn start(plan: &RolloutPlan, now: Duration) -> Result<Decision, PlanError> {
    let next = RolloutState::initial(plan, now)?;
    let action = Action::between(Route::default(), &next, next.route(plan));
    let reason = format!(
        "{} rollout begins: {}",
        plan.strategy.name(),
        entering(plan, &next)
    );
    Ok(Decision {
        next,
        action,
        verdicts: Vec::new(),
        reason,
    })
}

/// Decides what a rollout of `plan` in `state` does at `now`, given what
/// was observed. Pure: the same inputs always give the same decision.
pub fn decide(
    plan: &RolloutPlan,
    state: &RolloutState,
    observations: &Observations,
    now: Duration,
) -> Decision {
    if let RolloutState::Finished(outcome) = state {
        let mut reason = format!("the rollout is over ({outcome})");
        if let Some(command) = observations.command {
            reason.push_str(&format!("; {} ignored", command_name(command)));
        }
        return Decision {
            next: state.clone(),
            action: Action::Hold,
            verdicts: Vec::new(),
            reason,
        };
    }
    let scene = Scene {
        shadowing: state.is_shadowing(),
        live: state.live_weight(),
    };
    let verdicts: Vec<Verdict> = plan
        .guardrails
        .iter()
        .enumerate()
        .map(|(index, guardrail)| {
            judge(
                guardrail,
                observations.readings.get(index),
                plan.min_requests,
                scene,
            )
        })
        .collect();
    let (next, reason) = next_state(plan, state, observations, &verdicts, now);
    let action = Action::between(state.route(plan), &next, next.route(plan));
    Decision {
        next,
        action,
        verdicts,
        reason,
    }
}

fn next_state(
    plan: &RolloutPlan,
    state: &RolloutState,
    observations: &Observations,
    verdicts: &[Verdict],
    now: Duration,
) -> (RolloutState, String) {
    let label = state.label(plan);
    let breaches: Vec<String> = verdicts
        .iter()
        .filter(|verdict| verdict.finding.is_breached())
        .map(Verdict::to_string)
        .collect();
    if !breaches.is_empty() {
        let reason = breaches.join("; ");
        let said = format!("{reason}: all traffic back to stable from {label}");
        return (RolloutState::Finished(Outcome::RolledBack { reason }), said);
    }

    let mut ignored = None;
    match (observations.command, state) {
        (Some(Command::Abort), _) => {
            return (
                RolloutState::Finished(Outcome::Aborted),
                format!("{label}: aborted by an operator, all traffic back to stable"),
            );
        }
        (Some(Command::Promote), RolloutState::Bake { .. }) => {
            ignored = Some("promote changes nothing during the bake (already at 100%)");
        }
        (Some(Command::Promote), _) => {
            let next = RolloutState::Bake { since: now };
            let said = format!(
                "{label}: promoted by an operator, the rest skipped; {}",
                entering(plan, &next)
            );
            return (next, said);
        }
        (Some(Command::Pause), RolloutState::Paused { .. }) => {
            ignored = Some("pause changes nothing (already paused)");
        }
        (Some(Command::Pause), _) => {
            let next = RolloutState::Paused {
                frozen: Box::new(state.clone()),
                since: now,
            };
            let said = format!("{label}: paused by an operator; a breach still rolls back");
            return (next, said);
        }
        (Some(Command::Resume), RolloutState::Paused { frozen, .. }) => {
            let next = frozen.restarted(now);
            let said = format!("resumed by an operator: {}", entering(plan, &next));
            return (next, said);
        }
        (Some(Command::Resume), _) => ignored = Some("resume changes nothing (not paused)"),
        (None, _) => {}
    }

    let (next, said) = match state {
        RolloutState::Paused { since, .. } => (
            state.clone(),
            format!(
                "{label} for {}; a breach still rolls back",
                span(now.saturating_sub(*since))
            ),
        ),
        RolloutState::Bake { since } => bake(plan, *since, verdicts, now),
        _ => gate(plan, state, observations, verdicts, now),
    };
    match ignored {
        Some(note) => (next, format!("{note}; {said}")),
        None => (next, said),
    }
}

/// A shadow or a step: it ends on evidence, or times out for lack of it.
fn gate(
    plan: &RolloutPlan,
    state: &RolloutState,
    observations: &Observations,
    verdicts: &[Verdict],
    now: Duration,
) -> (RolloutState, String) {
    let label = state.label(plan);
    let since = state.since().unwrap_or(now);
    let earliest = state.earliest_end(plan).unwrap_or(now);
    let deadline = state.deadline(plan).unwrap_or(Duration::MAX);
    let elapsed = now.saturating_sub(since);

    let mut missing: Vec<String> = verdicts
        .iter()
        .filter(|verdict| verdict.finding.is_no_evidence())
        .map(Verdict::to_string)
        .collect();
    if observations.phase_requests < plan.min_requests {
        missing.push(format!(
            "only {} requests since {label} began, need {}",
            count(observations.phase_requests),
            count(plan.min_requests)
        ));
    }

    if now >= earliest && missing.is_empty() {
        let next = match state {
            RolloutState::Step { index, .. } => RolloutState::step_or_bake(plan, index + 1, now),
            _ => RolloutState::first_live(plan, now),
        };
        let said = format!(
            "{label} passed after {} with every guardrail holding; {}",
            span(elapsed),
            entering(plan, &next)
        );
        return (next, said);
    }
    // Past the deadline with everything present can only mean a plan whose
    // timeout is shorter than its step; such a step passes when it ends.
    if now >= deadline && !missing.is_empty() {
        let reason = format!(
            "{label} found too little evidence in {}: {}",
            span(deadline.saturating_sub(since)),
            missing.join("; ")
        );
        let said = format!("{reason}: all traffic back to stable");
        return (RolloutState::Finished(Outcome::TimedOut { reason }), said);
    }
    let length = earliest.saturating_sub(since);
    let said = if missing.is_empty() {
        format!(
            "{label}: {} of {}, every guardrail holds",
            span(elapsed),
            span(length)
        )
    } else {
        format!(
            "{label}: {} of {}, waiting for evidence (times out in {}): {}",
            span(elapsed),
            span(length),
            span(deadline.saturating_sub(now)),
            missing.join("; ")
        )
    };
    (state.clone(), said)
}

/// The bake: it watches for breaches (handled before) until it is over.
fn bake(
    plan: &RolloutPlan,
    since: Duration,
    verdicts: &[Verdict],
    now: Duration,
) -> (RolloutState, String) {
    let elapsed = now.saturating_sub(since);
    if elapsed < plan.bake {
        let said = format!(
            "bake at 100%: {} of {}, no guardrail breached",
            span(elapsed),
            span(plan.bake)
        );
        return (RolloutState::Bake { since }, said);
    }
    let silent: Vec<&str> = verdicts
        .iter()
        .filter(|verdict| verdict.finding.is_no_evidence())
        .map(|verdict| verdict.guardrail.as_str())
        .collect();
    let mut said = format!(
        "baked {} at 100% with no guardrail breached: the candidate becomes stable",
        span(elapsed)
    );
    if !silent.is_empty() {
        said.push_str(&format!(" (no evidence at the end: {})", silent.join(", ")));
    }
    (RolloutState::Finished(Outcome::Promoted), said)
}

/// The phase just entered, and how long it lasts at least.
fn entering(plan: &RolloutPlan, state: &RolloutState) -> String {
    let label = state.label(plan);
    match state {
        RolloutState::Shadow { .. } | RolloutState::Step { .. } => {
            let length = state
                .earliest_end(plan)
                .zip(state.since())
                .map(|(end, since)| end.saturating_sub(since))
                .unwrap_or_default();
            format!("{label} for at least {}", span(length))
        }
        RolloutState::Bake { .. } => {
            format!("{label} for {}, guardrails watching", span(plan.bake))
        }
        _ => label,
    }
}

fn command_name(command: Command) -> &'static str {
    match command {
        Command::Promote => "promote",
        Command::Abort => "abort",
        Command::Pause => "pause",
        Command::Resume => "resume",
    }
}

#[cfg(test)]
mod tests;
