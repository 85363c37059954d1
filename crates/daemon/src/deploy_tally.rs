//! The deploy counters of `/metrics`: finished deploys by outcome, their
//! durations, and rollbacks by reason. Read from the deploy history once at
//! start, then kept up to date as runs end, so that they match `baton
//! history` across restarts and a scrape never reads the whole history.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use baton_api::StageTiming;
use baton_rollout::Stage;
use baton_state::{DeployRecord, Store};
use baton_telemetry::SecondsHistogram;
use baton_telemetry::exposition::{
    DeployDurationSeries, DeploySeries, Exposition, NotificationSeries, RollbackSeries,
};

/// Upper bounds of the deploy duration buckets, in seconds: from a warm
/// rollback (a second) to a canary with long steps (an hour).
const DURATION_BOUNDS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
];

/// Deploy counters per app, shared by the runs that end and the scrapes.
#[derive(Debug, Default)]
pub struct DeployTally {
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    /// Finished deploys by (app, outcome).
    deploys: BTreeMap<(String, String), u64>,
    /// Their durations by (app, outcome).
    durations: BTreeMap<(String, String), SecondsHistogram>,
    /// Rollbacks by (app, reason).
    rollbacks: BTreeMap<(String, &'static str), u64>,
    /// Deploy notifications by (app, target, outcome), since this start:
    /// deliveries are not in the history.
    notifications: BTreeMap<(String, String, &'static str), u64>,
}

impl DeployTally {
    /// Counters over `history`, the finished runs of every app.
    pub fn new(history: impl IntoIterator<Item = DeployRecord>) -> Self {
        let tally = DeployTally::default();
        for record in history {
            tally.record(&record);
        }
        tally
    }

    /// Counters over `store`'s history; empty, with the error logged, when
    /// it cannot be read (deploys then count from this start on).
    pub fn load(store: &Store) -> Self {
        match store.finished_deploys() {
            Ok(history) => DeployTally::new(history),
            Err(error) => {
                tracing::error!(%error, "Reading the deploy history for /metrics failed");
                DeployTally::default()
            }
        }
    }

    /// Counts a run that has just ended (a run still `running` is ignored).
    pub fn record(&self, record: &DeployRecord) {
        if record.outcome == "running" {
            return;
        }
        let mut counts = self.counts();
        if record.kind == "deploy" {
            let key = (record.app.clone(), record.outcome.clone());
            if let Some(finished) = record.finished_at_ms {
                let seconds = finished.saturating_sub(record.started_at_ms) as f64 / 1000.0;
                counts
                    .durations
                    .entry(key.clone())
                    .or_insert_with(|| SecondsHistogram::new(DURATION_BOUNDS))
                    .observe(seconds);
            }
            *counts.deploys.entry(key).or_default() += 1;
        }
        if let Some(reason) = rollback_reason(record) {
            *counts
                .rollbacks
                .entry((record.app.clone(), reason))
                .or_default() += 1;
        }
    }

    /// Counts a deploy notification to `target` of `app` that ended with
    /// `outcome` (`delivered`, `failed`, `dropped`).
    pub fn notification(&self, app: &str, target: &str, outcome: &'static str) {
        *self
            .counts()
            .notifications
            .entry((app.to_string(), target.to_string(), outcome))
            .or_default() += 1;
    }

    /// A panic while counting leaves whole numbers behind (each update is
    /// one increment), so a poisoned lock is used as it is.
    fn counts(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts the counters into `exposition`.
    pub fn expose(&self, exposition: &mut Exposition) {
        let counts = self.counts();
        exposition.deploys = counts
            .deploys
            .iter()
            .map(|((app, outcome), count)| DeploySeries {
                app: app.clone(),
                outcome: outcome.clone(),
                count: *count,
            })
            .collect();
        exposition.deploy_durations = counts
            .durations
            .iter()
            .map(|((app, outcome), durations)| DeployDurationSeries {
                app: app.clone(),
                outcome: outcome.clone(),
                durations: durations.clone(),
            })
            .collect();
        exposition.rollbacks = counts
            .rollbacks
            .iter()
            .map(|((app, reason), count)| RollbackSeries {
                app: app.clone(),
                reason: (*reason).to_string(),
                count: *count,
            })
            .collect();
        exposition.notifications = counts
            .notifications
            .iter()
            .map(|((app, target, outcome), count)| NotificationSeries {
                app: app.clone(),
                target: target.clone(),
                outcome: (*outcome).to_string(),
                count: *count,
            })
            .collect();
    }
}

/// Why a finished run sent an app back to its previous version, if it did:
/// - `manual`: `baton rollback` succeeded;
/// - `guardrail`, `abort`, `timeout`: a progressive rollout ended with all
///   traffic back on stable because a guardrail was breached, an operator
///   aborted, or a phase found too little evidence in time;
/// - `failed_after_switch`: traffic had moved to the new version when a
///   later stage failed, and was given back.
///
/// A deploy that failed before any traffic moved (a build, a boot or health
/// check, a smoke check) left the old version serving untouched: not a
/// rollback, it counts as a failed deploy only.
///
/// The rollout's reason is read from the failure's first words, which the
/// rollout controller writes for people; they are the only record of it.
pub(crate) fn rollback_reason(record: &DeployRecord) -> Option<&'static str> {
    match (record.kind.as_str(), record.outcome.as_str()) {
        ("rollback", "succeeded") => Some("manual"),
        ("deploy", "failed") => {
            let reason = record.reason.as_deref().unwrap_or_default();
            if reason.starts_with("the rollout was aborted") {
                Some("abort")
            } else if reason.starts_with("the rollout was rolled back") {
                Some(if reason.contains("too little evidence") {
                    "timeout"
                } else {
                    "guardrail"
                })
            } else if switched(record) {
                Some("failed_after_switch")
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Whether the run's traffic switch finished.
fn switched(record: &DeployRecord) -> bool {
    serde_json::from_str::<Vec<StageTiming>>(&record.stages_json)
        .unwrap_or_default()
        .iter()
        .any(|stage| stage.stage == Stage::Switch.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        app: &str,
        kind: &str,
        outcome: &str,
        reason: Option<&str>,
        seconds: u64,
    ) -> DeployRecord {
        DeployRecord {
            id: 0,
            app: app.to_string(),
            kind: kind.to_string(),
            release: "r2".to_string(),
            previous_release: Some("r1".to_string()),
            started_at_ms: 1_000_000,
            finished_at_ms: Some(1_000_000 + seconds * 1000),
            user: "ops".to_string(),
            source: "/src".to_string(),
            outcome: outcome.to_string(),
            reason: reason.map(str::to_string),
            stages_json:
                r#"[{"stage":"stage","duration_ms":5},{"stage":"boot","duration_ms":900}]"#
                    .to_string(),
            report_json: None,
        }
    }

    #[test]
    fn rollbacks_are_told_apart_by_what_the_run_recorded() {
        let reason = |kind, outcome, text| rollback_reason(&run("web", kind, outcome, text, 1));
        assert_eq!(reason("rollback", "succeeded", None), Some("manual"));
        assert_eq!(reason("rollback", "failed", Some("boom")), None);
        assert_eq!(
            reason(
                "deploy",
                "failed",
                Some(
                    "the rollout was rolled back: error rate 9% > 1%: all traffic back to stable from canary 10%; all traffic is back on r1."
                )
            ),
            Some("guardrail")
        );
        assert_eq!(
            reason(
                "deploy",
                "failed",
                Some(
                    "the rollout was rolled back: canary 10% found too little evidence in 5m: 3 of 50 requests: all traffic back to stable"
                )
            ),
            Some("timeout")
        );
        assert_eq!(
            reason(
                "deploy",
                "failed",
                Some("the rollout was aborted: aborted by an operator")
            ),
            Some("abort")
        );
        assert_eq!(
            reason("deploy", "failed", Some("web 0 did not become ready")),
            None
        );
        assert_eq!(reason("deploy", "succeeded", None), None);
        assert_eq!(reason("deploy", "interrupted", Some("stopped")), None);

        let mut after_switch = run("web", "deploy", "failed", Some("workers failed"), 1);
        after_switch.stages_json =
            r#"[{"stage":"boot","duration_ms":900},{"stage":"switch","duration_ms":40}]"#
                .to_string();
        assert_eq!(rollback_reason(&after_switch), Some("failed_after_switch"));
    }

    #[test]
    fn counts_by_app_and_outcome() {
        let tally = DeployTally::new([
            run("web", "deploy", "succeeded", None, 4),
            run("web", "deploy", "succeeded", None, 40),
            run(
                "web",
                "deploy",
                "failed",
                Some("the rollout was aborted: x"),
                700,
            ),
            run("api", "rollback", "succeeded", None, 1),
        ]);
        tally.record(&run("web", "deploy", "running", None, 0));
        tally.record(&run("api", "deploy", "interrupted", Some("stopped"), 2));
        let mut exposition = Exposition::default();
        tally.expose(&mut exposition);
        let deploys: Vec<(&str, &str, u64)> = exposition
            .deploys
            .iter()
            .map(|s| (s.app.as_str(), s.outcome.as_str(), s.count))
            .collect();
        assert_eq!(
            deploys,
            [
                ("api", "interrupted", 1),
                ("web", "failed", 1),
                ("web", "succeeded", 2)
            ]
        );
        let succeeded = &exposition.deploy_durations[2];
        assert_eq!(
            (succeeded.app.as_str(), succeeded.outcome.as_str()),
            ("web", "succeeded")
        );
        assert_eq!(succeeded.durations.count(), 2);
        assert_eq!(succeeded.durations.sum(), 44.0);
        let rollbacks: Vec<(&str, &str, u64)> = exposition
            .rollbacks
            .iter()
            .map(|s| (s.app.as_str(), s.reason.as_str(), s.count))
            .collect();
        assert_eq!(rollbacks, [("api", "manual", 1), ("web", "abort", 1)]);
    }
}
