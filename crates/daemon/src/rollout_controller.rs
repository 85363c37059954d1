//! Drives a progressive rollout: asks the pure decision core what to do
//! every tick, from the proxy's own per-version numbers, and does it with
//! the route manager's canary primitives. Every decision that changes
//! something is reported with its reason and evidence.

use std::sync::Arc;
use std::time::Duration;

use baton_api::{DeployEvent, RolloutStatus};
use baton_proxy::{Shadow, Version};
use baton_rollout::{
    Action, Command, EventSink, Metric, MirrorCounts, Observations, Outcome, Reading, RolloutPlan,
    RolloutState, Switched, Weight, WindowCounts, decide, start,
};
use http::Method;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::external_metric::{ExternalMetrics, ExternalSource};
use crate::route_manager::{CanaryTraffic, RouteManager, StagedRoute};
use crate::run_notices::RunNotices;

/// How often the guardrails are judged: a breach sends the traffic back
/// within about this long of being observable.
const TICK: Duration = Duration::from_millis(250);

/// What one rollout runs on.
pub struct Inputs<'a> {
    /// Its steps, timings and guardrails.
    pub plan: &'a RolloutPlan,
    /// How the split treats clients.
    pub split: SplitOptions,
    /// The operator's promote, abort, pause and resume.
    pub commands: &'a mut mpsc::UnboundedReceiver<Command>,
    /// Where its progress is published for `baton status`.
    pub status: &'a StatusBoard,
    /// Where each `prometheus` or `http` guardrail of the plan reads its
    /// number, by guardrail index (the plan does not carry it).
    pub sources: Vec<Option<ExternalSource>>,
    /// Told of a guardrail breach (`guardrail_breached`).
    pub notices: Option<RunNotices>,
}

/// How the split treats clients while the rollout runs.
#[derive(Clone, Debug)]
pub struct SplitOptions {
    /// A client stays on the version it first got (cookie `baton_version`).
    pub sticky: bool,
    /// `X-Baton-Version: candidate|stable` forces a version.
    pub override_header: bool,
    /// The methods whose requests are copied while the candidate is
    /// shadowed.
    pub shadow_methods: Vec<Method>,
}

impl SplitOptions {
    /// The proxy's shadow for a mirrored `share`, if any.
    fn shadow(&self, share: Option<Weight>) -> Option<Shadow> {
        share.map(|share| Shadow {
            share_bp: u32::from(share.basis_points()),
            methods: self.shadow_methods.clone(),
        })
    }
}

/// Where a running rollout stands, for `baton status`; `None` when none
/// runs.
pub type StatusBoard = watch::Sender<Option<RolloutStatus>>;

/// Runs the rollout of `staged` beside `app`'s stable version until it is
/// promoted (the candidate becomes stable; the old version drained) or
/// rolled back (all traffic back on stable; the candidate drained), which
/// is an error carrying the reason and the evidence. Its progress is on
/// `status` while it runs.
pub async fn run(
    routes: &RouteManager,
    app: &str,
    staged: StagedRoute,
    inputs: Inputs<'_>,
    log: &dyn EventSink,
) -> Result<Switched, String> {
    let Inputs {
        plan,
        split,
        commands,
        status,
        sources,
        notices,
    } = inputs;
    // Fetching starts now, so the first numbers are in by the first
    // judgement; dropping it when the run ends, however, stops it.
    let mut externals = ExternalMetrics::start(&plan.guardrails, &sources);
    let status = Published(status);
    let started = Instant::now();
    let first = start(plan, Duration::ZERO).map_err(|error| error.to_string())?;
    let route = first.next.route(plan);
    let traffic = CanaryTraffic {
        weight_bp: u32::from(route.live.basis_points()),
        shadow: split.shadow(route.mirror),
        sticky: split.sticky,
        override_header: split.override_header,
    };
    routes
        .start_canary(staged, traffic)
        .await
        .map_err(|error| error.to_string())?;
    report(log, &first.reason);
    let Some((stable, candidate)) = routes.canary_versions(app) else {
        return Err(format!("the canary of {app} vanished from the route"));
    };
    let mut state = first.next;
    status.publish(plan, &state, Duration::ZERO, first.reason);
    let mut phase_since = state.since();
    let mut phase_base = candidate_requests(&candidate);
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let command = tokio::select! {
            _ = ticker.tick() => None,
            command = commands.recv() => command,
        };
        let now = started.elapsed();
        let observations = Observations {
            readings: readings(plan, &stable, &candidate, &externals),
            phase_requests: candidate_requests(&candidate).saturating_sub(phase_base),
            command,
        };
        for line in externals.news() {
            report(log, &line);
        }
        let decision = decide(plan, &state, &observations, now);
        if decision.action != Action::Hold || command.is_some() {
            report(log, &decision.reason);
        }
        match decision.action {
            Action::Hold => {}
            Action::SetWeight(_) | Action::StartShadow(_) | Action::StopShadow { .. } => {
                let route = decision.next.route(plan);
                routes.set_canary_traffic(
                    app,
                    u32::from(route.live.basis_points()),
                    split.shadow(route.mirror),
                );
            }
            Action::Promote => {
                let outcome = routes
                    .promote_canary(app)
                    .await
                    .map_err(|error| error.to_string())?;
                return Ok(Switched {
                    drain_ms: outcome.drain_ms,
                    requests_cut: outcome.requests_cut_at_drain_timeout,
                    upgraded_closed: outcome.upgraded_connections_closed,
                });
            }
            Action::RollBack => {
                let _ = routes.abort_canary(app).await;
                if let Some(notices) = &notices {
                    notices.breached(&decision.verdicts, &decision.reason);
                }
                let evidence: Vec<String> = decision
                    .verdicts
                    .iter()
                    .map(|verdict| format!("  {verdict}"))
                    .collect();
                let headline = match decision.next.outcome() {
                    Some(Outcome::Aborted) => "the rollout was aborted".to_string(),
                    _ => "the rollout was rolled back".to_string(),
                };
                return Err(format!(
                    "{headline}: {}; all traffic is back on {}.\n{}",
                    decision.reason,
                    stable.label(),
                    evidence.join("\n")
                ));
            }
        }
        state = decision.next;
        status.publish(plan, &state, now, decision.reason);
        if state.since() != phase_since {
            phase_since = state.since();
            phase_base = candidate_requests(&candidate);
        }
    }
}

/// The rollout's status board, emptied however the run ends (an early
/// return included), so `baton status` never shows a rollout that is over.
struct Published<'a>(&'a StatusBoard);

impl Published<'_> {
    fn publish(&self, plan: &RolloutPlan, state: &RolloutState, now: Duration, reason: String) {
        let progress = state.progress(plan, now);
        self.0.send_replace(Some(RolloutStatus {
            strategy: plan.strategy.name().to_string(),
            phase: progress.label,
            weight_percent: f64::from(progress.route.live.basis_points()) / 100.0,
            paused: matches!(state, RolloutState::Paused { .. }),
            next_step_in_s: progress.next_in.map(whole_seconds),
            times_out_in_s: progress.times_out_in.map(whole_seconds),
            reason,
        }));
    }
}

impl Drop for Published<'_> {
    fn drop(&mut self) {
        self.0.send_replace(None);
    }
}

/// Rounded up: "0 s to the next step" should mean it may pass now.
fn whole_seconds(span: Duration) -> u64 {
    span.as_secs() + u64::from(span.subsec_nanos() > 0)
}

fn report(log: &dyn EventSink, reason: &str) {
    log.emit(DeployEvent::Output {
        stage: "rollout".to_string(),
        line: reason.to_string(),
    });
}

/// Live requests the candidate finished so far.
fn candidate_requests(candidate: &Version) -> u64 {
    candidate
        .stats()
        .snapshot(Instant::now().into_std(), Duration::from_secs(600))
        .counts
        .requests
}

/// One reading per guardrail, in plan order, over its own window.
fn readings(
    plan: &RolloutPlan,
    stable: &Arc<Version>,
    candidate: &Arc<Version>,
    externals: &ExternalMetrics,
) -> Vec<Reading> {
    let now = Instant::now().into_std();
    plan.guardrails
        .iter()
        .enumerate()
        .map(|(index, guardrail)| match guardrail.metric {
            Metric::ErrorRate { .. }
            | Metric::P99Latency { .. }
            | Metric::ErrorRateVsStable { .. } => Reading::Traffic {
                candidate: counts(candidate, now, guardrail.window),
                stable: counts(stable, now, guardrail.window),
            },
            Metric::ShadowMismatchRate { .. } => {
                let compared = candidate.mirror_stats().snapshot(now, guardrail.window);
                Reading::Mirror(MirrorCounts {
                    mirrored: compared.compared,
                    mismatched: compared.mismatched,
                })
            }
            Metric::External { .. } => Reading::External(externals.value(index)),
        })
        .collect()
}

fn counts(version: &Version, now: std::time::Instant, window: Duration) -> WindowCounts {
    let snapshot = version.stats().snapshot(now, window);
    let totals = snapshot.counts;
    WindowCounts {
        requests: totals.requests,
        errors: totals.errors(),
        p99: (totals.requests > 0)
            .then(|| Duration::from_secs_f64(snapshot.p99_ms.max(0.0) / 1000.0)),
    }
}
