//! The state machine's rules as tables, on a fake clock (plain Durations
//! since the rollout began).

use std::time::Duration;

use crate::{
    Action, Command, Decision, Guardrail, Metric, MirrorCounts, Observations, Outcome, PlanError,
    Reading, RolloutPlan, RolloutState, ShadowPlan, Strategy, Weight, WindowCounts, decide, start,
};

fn m(minutes: u64) -> Duration {
    Duration::from_secs(minutes * 60)
}

fn s(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

fn pct(percent: u16) -> Weight {
    Weight::from_percent(percent).unwrap()
}

// Plans: the defaults of issue 4 (2m steps, 15m timeout, 100 requests,
// 5m bake, the three default guardrails) with a strategy.

fn canary() -> RolloutPlan {
    RolloutPlan {
        strategy: Strategy::default_canary(),
        ..RolloutPlan::default()
    }
}

fn blue_green() -> RolloutPlan {
    RolloutPlan {
        strategy: Strategy::BlueGreen,
        ..RolloutPlan::default()
    }
}

fn replace() -> RolloutPlan {
    RolloutPlan::default()
}

/// A canary that mirrors 5% for 1m first, judged on mismatches too.
fn shadowed() -> RolloutPlan {
    let mut plan = canary();
    plan.shadow = Some(ShadowPlan {
        share: pct(5),
        duration: m(1),
    });
    plan.guardrails.push(Guardrail {
        metric: Metric::ShadowMismatchRate {
            max: "1%".parse().unwrap(),
        },
        window: m(1),
    });
    plan
}

/// A canary that also reads a business metric (must stay at or above 0.95).
fn with_checkout() -> RolloutPlan {
    let mut plan = canary();
    plan.guardrails.push(Guardrail {
        metric: Metric::External {
            name: "checkout_success_rate".to_string(),
            min: Some(0.95),
            max: None,
        },
        window: m(2),
    });
    plan
}

// The world as the daemon would measure it; `seen` turns it into one
// reading per guardrail of the plan.

#[derive(Clone)]
struct World {
    candidate: WindowCounts,
    stable: WindowCounts,
    mirror: MirrorCounts,
    external: Option<f64>,
    phase_requests: u64,
    command: Option<Command>,
}

fn counts(requests: u64, errors: u64, p99_ms: u64) -> WindowCounts {
    WindowCounts {
        requests,
        errors,
        p99: Some(Duration::from_millis(p99_ms)),
    }
}

/// Plenty of traffic, 0.2% errors against stable's 0.1%, p99 150ms.
fn healthy() -> World {
    World {
        candidate: counts(1000, 2, 150),
        stable: counts(20_000, 20, 140),
        mirror: MirrorCounts {
            mirrored: 1000,
            mismatched: 2,
        },
        external: Some(0.99),
        phase_requests: 1000,
        command: None,
    }
}

/// Healthy, but the candidate saw only 37 requests in its windows.
fn quiet() -> World {
    World {
        candidate: counts(37, 0, 150),
        phase_requests: 37,
        ..healthy()
    }
}

/// The candidate fails 5% of 1,000 requests.
fn failing() -> World {
    World {
        candidate: counts(1000, 50, 150),
        ..healthy()
    }
}

/// The candidate's p99 is 1.5s.
fn slow() -> World {
    World {
        candidate: counts(1000, 2, 1500),
        ..healthy()
    }
}

/// 0.9% errors (under the 1% limit) while stable has 0.1%: 0.8 points
/// worse.
fn worse_than_stable() -> World {
    World {
        candidate: counts(1000, 9, 150),
        ..healthy()
    }
}

/// At 100% stable has no live traffic left.
fn healthy_alone() -> World {
    World {
        stable: WindowCounts::default(),
        ..healthy()
    }
}

fn unreachable_checkout() -> World {
    World {
        external: None,
        ..healthy()
    }
}

fn mismatching() -> World {
    World {
        mirror: MirrorCounts {
            mirrored: 1000,
            mismatched: 30,
        },
        ..healthy()
    }
}

fn commanding(command: Command, world: World) -> World {
    World {
        command: Some(command),
        ..world
    }
}

fn seen(plan: &RolloutPlan, world: &World) -> Observations {
    let readings = plan
        .guardrails
        .iter()
        .map(|guardrail| match guardrail.metric {
            Metric::ShadowMismatchRate { .. } => Reading::Mirror(world.mirror),
            Metric::External { .. } => Reading::External(world.external),
            _ => Reading::Traffic {
                candidate: world.candidate,
                stable: world.stable,
            },
        })
        .collect();
    Observations {
        readings,
        phase_requests: world.phase_requests,
        command: world.command,
    }
}

// States.

fn step(index: usize, percent: u16, since: Duration) -> RolloutState {
    RolloutState::Step {
        index,
        weight: pct(percent),
        since,
    }
}

fn paused(frozen: RolloutState, since: Duration) -> RolloutState {
    RolloutState::Paused {
        frozen: Box::new(frozen),
        since,
    }
}

fn rolled_back(reason: &str) -> RolloutState {
    RolloutState::Finished(Outcome::RolledBack {
        reason: reason.to_string(),
    })
}

fn timed_out(reason: &str) -> RolloutState {
    RolloutState::Finished(Outcome::TimedOut {
        reason: reason.to_string(),
    })
}

struct Case {
    name: &'static str,
    plan: RolloutPlan,
    state: RolloutState,
    world: World,
    now: Duration,
    action: Action,
    next: RolloutState,
    /// A part of the reason.
    says: &'static str,
}

fn check(case: &Case) -> Decision {
    let observations = seen(&case.plan, &case.world);
    let decision = decide(&case.plan, &case.state, &observations, case.now);
    let name = case.name;
    assert_eq!(decision.action, case.action, "{name}: {}", decision.reason);
    assert_eq!(decision.next, case.next, "{name}: {}", decision.reason);
    assert!(
        decision.reason.contains(case.says),
        "{name}: {:?} does not say {:?}",
        decision.reason,
        case.says
    );
    let judged = match case.state {
        RolloutState::Finished(_) => 0,
        _ => case.plan.guardrails.len(),
    };
    assert_eq!(
        decision.verdicts.len(),
        judged,
        "{name}: one verdict per guardrail"
    );
    // Deciding again on the new state with the same inputs is a no-op:
    // nothing is emitted twice, and a command repeated changes nothing more.
    let again = decide(&case.plan, &decision.next, &observations, case.now);
    assert_eq!(again.action, Action::Hold, "{name} again: {}", again.reason);
    assert_eq!(again.next, decision.next, "{name} again: {}", again.reason);
    decision
}

#[test]
fn steps_advance_hold_and_time_out() {
    let cases = [
        Case {
            name: "advance: the step lasted and every guardrail holds",
            plan: canary(),
            state: step(0, 1, m(0)),
            world: healthy(),
            now: m(2),
            action: Action::SetWeight(pct(10)),
            next: step(1, 10, m(2)),
            says: "step 1 of 4 (1%) passed after 2m with every guardrail holding; \
                   step 2 of 4 (10%) for at least 2m",
        },
        Case {
            name: "hold: not enough time at the step",
            plan: canary(),
            state: step(1, 10, m(2)),
            world: healthy(),
            now: m(3),
            action: Action::Hold,
            next: step(1, 10, m(2)),
            says: "step 2 of 4 (10%): 1m of 2m, every guardrail holds",
        },
        Case {
            name: "hold: no evidence, however long the step has lasted",
            plan: canary(),
            state: step(0, 1, m(0)),
            world: quiet(),
            now: m(10),
            action: Action::Hold,
            next: step(0, 1, m(0)),
            says: "waiting for evidence (times out in 5m): \
                   error rate: no evidence over 2m (only 37 requests, need 100)",
        },
        Case {
            name: "hold: full windows from the previous step do not pass this one",
            plan: canary(),
            state: step(1, 10, m(2)),
            world: World {
                phase_requests: 40,
                ..healthy()
            },
            now: m(5),
            action: Action::Hold,
            next: step(1, 10, m(2)),
            says: "only 40 requests since step 2 of 4 (10%) began, need 100",
        },
        Case {
            name: "low traffic: still waiting just before step_timeout",
            plan: canary(),
            state: step(0, 1, m(0)),
            world: quiet(),
            now: m(15) - s(1),
            action: Action::Hold,
            next: step(0, 1, m(0)),
            says: "times out in 1s",
        },
        Case {
            name: "low traffic: step_timeout rolls back as timed out",
            plan: canary(),
            state: step(0, 1, m(0)),
            world: quiet(),
            now: m(15),
            action: Action::RollBack,
            next: timed_out(
                "step 1 of 4 (1%) found too little evidence in 15m: \
                 error rate: no evidence over 2m (only 37 requests, need 100); \
                 p99 latency: no evidence over 3m (only 37 requests, need 100); \
                 error rate vs stable: no evidence over 2m (only 37 candidate requests, need 100); \
                 only 37 requests since step 1 of 4 (1%) began, need 100",
            ),
            says: "all traffic back to stable",
        },
        Case {
            name: "evidence arriving late still passes before the timeout",
            plan: canary(),
            state: step(2, 50, m(4)),
            world: healthy(),
            now: m(17),
            action: Action::SetWeight(pct(100)),
            next: step(3, 100, m(17)),
            says: "passed after 13m",
        },
        Case {
            name: "the 100% step ends in the bake; stable's silence is not judged",
            plan: canary(),
            state: step(3, 100, m(6)),
            world: healthy_alone(),
            now: m(8),
            action: Action::Hold,
            next: RolloutState::Bake { since: m(8) },
            says: "bake at 100% for 5m, guardrails watching",
        },
    ];
    for case in &cases {
        check(case);
    }
}

#[test]
fn breaches_roll_back_at_once() {
    let cases = [
        Case {
            name: "error rate breach at a step",
            plan: canary(),
            state: step(1, 10, m(2)),
            world: failing(),
            now: m(2) + s(30),
            action: Action::RollBack,
            next: rolled_back(
                "error rate 5% > 1% over 2m (50 errors in 1,000 requests); \
                 error rate vs stable 4.9 points > 0.5 points over 2m \
                 (candidate 5% of 1,000 requests, stable 0.1% of 20,000)",
            ),
            says: "all traffic back to stable from step 2 of 4 (10%)",
        },
        Case {
            name: "p99 breach",
            plan: canary(),
            state: step(0, 1, m(0)),
            world: slow(),
            now: s(45),
            action: Action::RollBack,
            next: rolled_back("p99 latency 1500ms > 1200ms over 3m (1,000 requests)"),
            says: "p99 latency 1500ms > 1200ms",
        },
        Case {
            name: "error rate vs stable: under the absolute limit, too far above stable",
            plan: canary(),
            state: step(2, 50, m(4)),
            world: worse_than_stable(),
            now: m(5),
            action: Action::RollBack,
            next: rolled_back(
                "error rate vs stable 0.8 points > 0.5 points over 2m \
                 (candidate 0.9% of 1,000 requests, stable 0.1% of 20,000)",
            ),
            says: "error rate vs stable 0.8 points > 0.5 points",
        },
        Case {
            name: "bake breach after 100%",
            plan: canary(),
            state: RolloutState::Bake { since: m(8) },
            world: World {
                stable: WindowCounts::default(),
                ..slow()
            },
            now: m(12),
            action: Action::RollBack,
            next: rolled_back("p99 latency 1500ms > 1200ms over 3m (1,000 requests)"),
            says: "from bake at 100%",
        },
        Case {
            name: "a breach wins over an operator's promote",
            plan: canary(),
            state: step(0, 1, m(0)),
            world: commanding(Command::Promote, slow()),
            now: m(1),
            action: Action::RollBack,
            next: rolled_back("p99 latency 1500ms > 1200ms over 3m (1,000 requests)"),
            says: "p99 latency",
        },
        Case {
            name: "a breach is acted on even with too few requests for the step",
            plan: canary(),
            state: step(0, 1, m(0)),
            world: World {
                phase_requests: 3,
                ..slow()
            },
            now: s(10),
            action: Action::RollBack,
            next: rolled_back("p99 latency 1500ms > 1200ms over 3m (1,000 requests)"),
            says: "p99 latency",
        },
    ];
    for case in &cases {
        check(case);
    }
}

#[test]
fn operator_commands() {
    let cases = [
        Case {
            name: "pause freezes the weight",
            plan: canary(),
            state: step(1, 10, m(2)),
            world: commanding(Command::Pause, healthy()),
            now: m(3),
            action: Action::Hold,
            next: paused(step(1, 10, m(2)), m(3)),
            says: "step 2 of 4 (10%): paused by an operator; a breach still rolls back",
        },
        Case {
            name: "paused: no advancing, no timing out",
            plan: canary(),
            state: paused(step(1, 10, m(2)), m(3)),
            world: healthy(),
            now: m(60),
            action: Action::Hold,
            next: paused(step(1, 10, m(2)), m(3)),
            says: "paused at step 2 of 4 (10%) for 57m",
        },
        Case {
            name: "paused: a breach still rolls back",
            plan: canary(),
            state: paused(step(1, 10, m(2)), m(3)),
            world: failing(),
            now: m(20),
            action: Action::RollBack,
            next: rolled_back(
                "error rate 5% > 1% over 2m (50 errors in 1,000 requests); \
                 error rate vs stable 4.9 points > 0.5 points over 2m \
                 (candidate 5% of 1,000 requests, stable 0.1% of 20,000)",
            ),
            says: "from paused at step 2 of 4 (10%)",
        },
        Case {
            name: "resume restarts the step's timer",
            plan: canary(),
            state: paused(step(1, 10, m(2)), m(3)),
            world: commanding(Command::Resume, healthy()),
            now: m(10),
            action: Action::Hold,
            next: step(1, 10, m(10)),
            says: "resumed by an operator: step 2 of 4 (10%) for at least 2m",
        },
        Case {
            name: "resume when not paused changes nothing",
            plan: canary(),
            state: step(1, 10, m(2)),
            world: commanding(Command::Resume, healthy()),
            now: m(3),
            action: Action::Hold,
            next: step(1, 10, m(2)),
            says: "resume changes nothing (not paused); step 2 of 4 (10%): 1m of 2m",
        },
        Case {
            name: "promote skips the remaining steps, the bake still watches",
            plan: canary(),
            state: step(0, 1, m(0)),
            world: commanding(Command::Promote, quiet()),
            now: m(1),
            action: Action::SetWeight(Weight::FULL),
            next: RolloutState::Bake { since: m(1) },
            says: "step 1 of 4 (1%): promoted by an operator, the rest skipped; \
                   bake at 100% for 5m, guardrails watching",
        },
        Case {
            name: "promote during the bake changes nothing",
            plan: canary(),
            state: RolloutState::Bake { since: m(8) },
            world: commanding(Command::Promote, healthy_alone()),
            now: m(9),
            action: Action::Hold,
            next: RolloutState::Bake { since: m(8) },
            says: "promote changes nothing during the bake",
        },
        Case {
            name: "promote from a paused shadow stops mirroring and goes to 100%",
            plan: shadowed(),
            state: paused(RolloutState::Shadow { since: m(0) }, s(30)),
            world: commanding(Command::Promote, healthy()),
            now: m(2),
            action: Action::StopShadow { live: Weight::FULL },
            next: RolloutState::Bake { since: m(2) },
            says: "paused at shadow (5% mirrored): promoted by an operator",
        },
        Case {
            name: "abort at a step",
            plan: canary(),
            state: step(2, 50, m(4)),
            world: commanding(Command::Abort, healthy()),
            now: m(5),
            action: Action::RollBack,
            next: RolloutState::Finished(Outcome::Aborted),
            says: "step 3 of 4 (50%): aborted by an operator, all traffic back to stable",
        },
        Case {
            name: "abort during the bake",
            plan: canary(),
            state: RolloutState::Bake { since: m(8) },
            world: commanding(Command::Abort, healthy_alone()),
            now: m(9),
            action: Action::RollBack,
            next: RolloutState::Finished(Outcome::Aborted),
            says: "bake at 100%: aborted by an operator",
        },
        Case {
            name: "a finished rollout ignores commands",
            plan: canary(),
            state: RolloutState::Finished(Outcome::Promoted),
            world: commanding(Command::Abort, failing()),
            now: m(30),
            action: Action::Hold,
            next: RolloutState::Finished(Outcome::Promoted),
            says: "the rollout is over (promoted); abort ignored",
        },
    ];
    for case in &cases {
        check(case);
    }
}

#[test]
fn bake_shadow_and_strategies() {
    let cases = [
        Case {
            name: "the bake watches until it is over",
            plan: canary(),
            state: RolloutState::Bake { since: m(8) },
            world: healthy_alone(),
            now: m(12),
            action: Action::Hold,
            next: RolloutState::Bake { since: m(8) },
            says: "bake at 100%: 4m of 5m, no guardrail breached",
        },
        Case {
            name: "a bake without a breach promotes",
            plan: canary(),
            state: RolloutState::Bake { since: m(8) },
            world: healthy_alone(),
            now: m(13),
            action: Action::Promote,
            next: RolloutState::Finished(Outcome::Promoted),
            says: "baked 5m at 100% with no guardrail breached",
        },
        Case {
            name: "a quiet bake promotes too, and says it was quiet",
            plan: replace(),
            state: RolloutState::Bake { since: m(0) },
            world: quiet(),
            now: m(5),
            action: Action::Promote,
            next: RolloutState::Finished(Outcome::Promoted),
            says: "(no evidence at the end: error rate, p99 latency)",
        },
        Case {
            name: "shadow: holds while too short",
            plan: shadowed(),
            state: RolloutState::Shadow { since: m(0) },
            world: healthy(),
            now: s(30),
            action: Action::Hold,
            next: RolloutState::Shadow { since: m(0) },
            says: "shadow (5% mirrored): 30s of 1m, every guardrail holds",
        },
        Case {
            name: "shadow then the first live step",
            plan: shadowed(),
            state: RolloutState::Shadow { since: m(0) },
            world: healthy(),
            now: m(1),
            action: Action::StopShadow { live: pct(1) },
            next: step(0, 1, m(1)),
            says: "shadow (5% mirrored) passed after 1m",
        },
        Case {
            name: "shadow mismatches roll back before any live traffic",
            plan: shadowed(),
            state: RolloutState::Shadow { since: m(0) },
            world: mismatching(),
            now: s(40),
            action: Action::RollBack,
            next: rolled_back(
                "shadow mismatch rate 3% > 1% over 1m (30 of 1,000 mirrored requests differed)",
            ),
            says: "from shadow (5% mirrored)",
        },
        Case {
            name: "after the shadow, its mismatch rate is not judged",
            plan: shadowed(),
            state: step(0, 1, m(1)),
            world: World {
                mirror: MirrorCounts::default(),
                ..healthy()
            },
            now: m(3),
            action: Action::SetWeight(pct(10)),
            next: step(1, 10, m(3)),
            says: "passed",
        },
        Case {
            name: "blue-green: all traffic held one step, then the bake",
            plan: blue_green(),
            state: step(0, 100, m(0)),
            world: healthy_alone(),
            now: m(2),
            action: Action::Hold,
            next: RolloutState::Bake { since: m(2) },
            says: "blue-green switch (100%) passed after 2m",
        },
        Case {
            name: "blue-green: a quiet switch waits for evidence",
            plan: blue_green(),
            state: step(0, 100, m(0)),
            world: World {
                stable: WindowCounts::default(),
                ..quiet()
            },
            now: m(5),
            action: Action::Hold,
            next: step(0, 100, m(0)),
            says: "blue-green switch (100%): 5m of 2m, waiting for evidence",
        },
        Case {
            name: "external guardrail unreachable: no evidence, never a pass",
            plan: with_checkout(),
            state: step(0, 1, m(0)),
            world: unreachable_checkout(),
            now: m(4),
            action: Action::Hold,
            next: step(0, 1, m(0)),
            says: "checkout_success_rate: no evidence over 2m (the source could not be read)",
        },
        Case {
            name: "external guardrail unreachable until the timeout",
            plan: with_checkout(),
            state: step(0, 1, m(0)),
            world: unreachable_checkout(),
            now: m(15),
            action: Action::RollBack,
            next: timed_out(
                "step 1 of 4 (1%) found too little evidence in 15m: \
                 checkout_success_rate: no evidence over 2m (the source could not be read)",
            ),
            says: "all traffic back to stable",
        },
        Case {
            name: "external guardrail below its minimum",
            plan: with_checkout(),
            state: step(1, 10, m(2)),
            world: World {
                external: Some(0.91),
                ..healthy()
            },
            now: m(3),
            action: Action::RollBack,
            next: rolled_back("checkout_success_rate = 0.91 < 0.95 over 2m"),
            says: "checkout_success_rate = 0.91 < 0.95",
        },
    ];
    for case in &cases {
        check(case);
    }
}

#[test]
fn start_sets_up_the_first_phase() {
    let cases: [(&str, RolloutPlan, Action, RolloutState, &str); 4] = [
        (
            "canary",
            canary(),
            Action::SetWeight(pct(1)),
            step(0, 1, m(0)),
            "canary rollout begins: step 1 of 4 (1%) for at least 2m",
        ),
        (
            "blue-green",
            blue_green(),
            Action::SetWeight(Weight::FULL),
            step(0, 100, m(0)),
            "blue-green rollout begins: blue-green switch (100%) for at least 2m",
        ),
        (
            "replace",
            replace(),
            Action::SetWeight(Weight::FULL),
            RolloutState::Bake { since: m(0) },
            "replace rollout begins: bake at 100% for 5m, guardrails watching",
        ),
        (
            "shadow first",
            shadowed(),
            Action::StartShadow(pct(5)),
            RolloutState::Shadow { since: m(0) },
            "canary rollout begins: shadow (5% mirrored) for at least 1m",
        ),
    ];
    for (name, plan, action, next, reason) in cases {
        let decision = start(&plan, m(0)).unwrap();
        assert_eq!(decision.action, action, "{name}");
        assert_eq!(decision.next, next, "{name}");
        assert_eq!(decision.reason, reason, "{name}");
    }
    let mut zero_shadow = canary();
    zero_shadow.shadow = Some(ShadowPlan {
        share: Weight::ZERO,
        duration: m(1),
    });
    assert_eq!(start(&zero_shadow, m(0)).unwrap().next, step(0, 1, m(0)));
}

#[test]
fn invalid_plans_are_refused_with_what_to_fix() {
    let canary_of = |steps: &[u16]| RolloutPlan {
        strategy: Strategy::Canary {
            steps: steps.iter().map(|&p| pct(p)).collect(),
        },
        ..RolloutPlan::default()
    };
    let external = |min, max| RolloutPlan {
        guardrails: vec![Guardrail {
            metric: Metric::External {
                name: "checkout".to_string(),
                min,
                max,
            },
            window: m(1),
        }],
        ..RolloutPlan::default()
    };
    let cases: Vec<(RolloutPlan, PlanError, &str)> = vec![
        (
            canary_of(&[]),
            PlanError::NoSteps,
            "a canary needs at least one step; write e.g. steps = [\"1%\", \"10%\", \"50%\", \"100%\"]",
        ),
        (
            canary_of(&[10, 10, 100]),
            PlanError::StepNotIncreasing {
                number: 2,
                weight: pct(10),
                previous: pct(10),
            },
            "canary steps must increase from above 0%: step 2 (10%) is not above 10%",
        ),
        (
            canary_of(&[0, 100]),
            PlanError::StepNotIncreasing {
                number: 1,
                weight: Weight::ZERO,
                previous: Weight::ZERO,
            },
            "canary steps must increase from above 0%: step 1 (0%) is not above 0%",
        ),
        (
            canary_of(&[1, 50]),
            PlanError::LastStepNotFull { last: pct(50) },
            "the last canary step is 50%; end the steps with \"100%\" so the candidate takes all traffic",
        ),
        (
            RolloutPlan {
                step_timeout: m(1),
                ..canary()
            },
            PlanError::TimeoutBeforeStepEnds {
                step_duration: m(2),
                step_timeout: m(1),
            },
            "step_timeout (1m) is shorter than step_duration (2m), so no step could pass; \
             make step_timeout at least as long",
        ),
        (
            RolloutPlan {
                min_requests: 0,
                ..canary()
            },
            PlanError::NoMinRequests,
            "min_requests = 0 would let an empty window pass a step; set it to at least 1",
        ),
        (
            RolloutPlan {
                guardrails: vec![Guardrail {
                    metric: Metric::P99Latency { max: s(1) },
                    window: Duration::ZERO,
                }],
                ..canary()
            },
            PlanError::EmptyWindow {
                number: 1,
                name: "p99 latency".to_string(),
            },
            "guardrail 1 (p99 latency) has a window of 0s; give it one such as \"2m\"",
        ),
        (
            external(None, None),
            PlanError::ExternalLimits {
                number: 1,
                name: "checkout".to_string(),
                problem: "has neither min nor max; give it at least one".to_string(),
            },
            "guardrail 1 (checkout) has neither min nor max; give it at least one",
        ),
        (
            external(Some(0.99), Some(0.9)),
            PlanError::ExternalLimits {
                number: 1,
                name: "checkout".to_string(),
                problem: "has min 0.99 above max 0.9, so nothing could hold".to_string(),
            },
            "guardrail 1 (checkout) has min 0.99 above max 0.9, so nothing could hold",
        ),
    ];
    for (plan, error, message) in cases {
        assert_eq!(plan.validate(), Err(error.clone()));
        assert_eq!(error.to_string(), message);
        assert_eq!(start(&plan, m(0)), Err(error));
    }
    for plan in [
        canary(),
        blue_green(),
        replace(),
        shadowed(),
        with_checkout(),
    ] {
        assert_eq!(plan.validate(), Ok(()));
    }
}

/// A healthy canary on a clock ticking every 10 seconds, with the route
/// applied as the actions say: each weight is set exactly once, in order,
/// then promoted after the bake.
#[test]
fn a_healthy_canary_walks_every_step_once() {
    let plan = canary();
    let mut decision = start(&plan, m(0)).unwrap();
    let mut actions = vec![decision.action];
    let mut now = m(0);
    while decision.next.outcome().is_none() && now < m(60) {
        now += s(10);
        let world = World {
            stable: if decision.next.live_weight().is_full() {
                WindowCounts::default()
            } else {
                healthy().stable
            },
            ..healthy()
        };
        decision = decide(&plan, &decision.next, &seen(&plan, &world), now);
        if decision.action != Action::Hold {
            actions.push(decision.action);
        }
    }
    assert_eq!(
        actions,
        [
            Action::SetWeight(pct(1)),
            Action::SetWeight(pct(10)),
            Action::SetWeight(pct(50)),
            Action::SetWeight(pct(100)),
            Action::Promote,
        ]
    );
    // Four 2m steps, then the 5m bake.
    assert_eq!(now, m(13));
}

#[test]
fn pause_and_resume_on_a_clock() {
    let plan = canary();
    let world = healthy();
    let run = |state: &RolloutState, command: Option<Command>, now: Duration| {
        let world = World {
            command,
            ..world.clone()
        };
        decide(&plan, state, &seen(&plan, &world), now)
    };
    let at_ten = step(1, 10, m(2));
    let frozen = run(&at_ten, Some(Command::Pause), m(3)).next;
    // An hour paused: nothing advances, nothing times out.
    assert_eq!(run(&frozen, None, m(63)).action, Action::Hold);
    let resumed = run(&frozen, Some(Command::Resume), m(63)).next;
    assert_eq!(resumed, step(1, 10, m(63)));
    // The step's 2 minutes count from the resume, not from its start.
    assert_eq!(run(&resumed, None, m(64)).action, Action::Hold);
    assert_eq!(
        run(&resumed, None, m(65)).action,
        Action::SetWeight(pct(50))
    );
}

#[test]
fn progress_shows_time_to_the_next_step() {
    let plan = canary();
    let state = step(1, 10, m(2));
    let progress = state.progress(&plan, m(3) + s(20));
    assert_eq!(progress.label, "step 2 of 4 (10%)");
    assert_eq!(progress.route.live, pct(10));
    assert_eq!(progress.route.mirror, None);
    assert_eq!(progress.next_in, Some(s(40)));
    assert_eq!(progress.times_out_in, Some(m(13) + s(40)));

    let shadow = RolloutState::Shadow { since: m(0) };
    let progress = shadow.progress(&shadowed(), s(15));
    assert_eq!(progress.route.mirror, Some(pct(5)));
    assert_eq!(progress.route.live, Weight::ZERO);
    assert_eq!(progress.next_in, Some(s(45)));

    let frozen = paused(step(1, 10, m(2)), m(3));
    let progress = frozen.progress(&plan, m(30));
    assert_eq!(progress.label, "paused at step 2 of 4 (10%)");
    assert_eq!((progress.next_in, progress.times_out_in), (None, None));
    assert_eq!(frozen.live_weight(), pct(10));

    let bake = RolloutState::Bake { since: m(8) };
    let progress = bake.progress(&plan, m(9));
    assert_eq!(progress.next_in, Some(m(4)));
    assert_eq!(progress.times_out_in, None);

    assert_eq!(
        RolloutState::Finished(Outcome::Aborted).live_weight(),
        Weight::ZERO
    );
    assert_eq!(
        RolloutState::Finished(Outcome::Promoted).live_weight(),
        Weight::FULL
    );
}

/// A shadow longer than a step keeps the step's patience after its own
/// length instead of timing out when it should be ending.
#[test]
fn a_long_shadow_times_out_after_its_length() {
    let mut plan = shadowed();
    plan.shadow = Some(ShadowPlan {
        share: pct(5),
        duration: m(30),
    });
    let shadow = RolloutState::Shadow { since: m(0) };
    // 30m of shadow plus the 13m a step may wait beyond its 2m.
    assert_eq!(shadow.deadline(&plan), Some(m(43)));
    assert_eq!(shadowed().validate(), Ok(()));
    let short = RolloutState::Shadow { since: m(0) };
    assert_eq!(short.deadline(&shadowed()), Some(m(15)));
}
