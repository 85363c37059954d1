//! The notifications of one deploy or rollback: which events it sends,
//! with what in them, to the `[[notify]]` targets of its config.

use std::sync::Arc;

use baton_api::{AppConfig, BudgetStatus, DeployKind, NotifyTarget};
use baton_notify::{Breach, BudgetNumbers, Event, EventKind};
use baton_release::AppRoot;
use baton_rollout::{Finding, Limit, Quantity, Verdict};
use baton_state::DeployRecord;
use bytes::Bytes;

use crate::app_env;
use crate::deploy_tally::rollback_reason;
use crate::notifier::{Channel, Notifier, Target};
use crate::process_table::unix_ms;

/// What one run tells its targets. Cheap to clone; sending only queues.
#[derive(Clone)]
pub struct RunNotices {
    notifier: Arc<Notifier>,
    targets: Arc<[Target]>,
    app: String,
    kind: DeployKind,
    user: String,
    deploy_id: Option<i64>,
    release: Option<String>,
    previous_release: Option<String>,
}

impl RunNotices {
    /// The notices of a run of `config`'s app by `user`, which replaces
    /// `previous`. Fails, naming each, when a target cannot be reached
    /// (a webhook whose key is set nowhere).
    pub fn new(
        notifier: &Arc<Notifier>,
        config: &AppConfig,
        kind: DeployKind,
        user: &str,
        previous: Option<String>,
    ) -> Result<RunNotices, String> {
        let (targets, problems) = targets(config);
        if !problems.is_empty() {
            return Err(problems.join("; "));
        }
        Ok(RunNotices::of(
            notifier, config, kind, user, previous, targets,
        ))
    }

    /// [`RunNotices::new`] for a run that must not be refused over its
    /// notifications (a rollback): a target that cannot be reached is
    /// left out, with a warning in the log.
    pub fn lenient(
        notifier: &Arc<Notifier>,
        config: &AppConfig,
        kind: DeployKind,
        user: &str,
        previous: Option<String>,
    ) -> RunNotices {
        let (targets, problems) = targets(config);
        for problem in problems {
            tracing::warn!(
                app = config.name(),
                "{problem}; its notifications are not sent"
            );
        }
        RunNotices::of(notifier, config, kind, user, previous, targets)
    }

    fn of(
        notifier: &Arc<Notifier>,
        config: &AppConfig,
        kind: DeployKind,
        user: &str,
        previous: Option<String>,
        targets: Vec<Target>,
    ) -> RunNotices {
        RunNotices {
            notifier: Arc::clone(notifier),
            targets: targets.into(),
            app: config.name().to_string(),
            kind,
            user: user.to_string(),
            deploy_id: None,
            release: None,
            previous_release: previous,
        }
    }

    /// The same notices, about release `release`.
    pub fn with_release(mut self, release: Option<String>) -> RunNotices {
        self.release = release;
        self
    }

    /// Sends `deploy_started` for run `deploy_id`, and returns the notices
    /// of that run.
    pub fn started(mut self, deploy_id: i64) -> RunNotices {
        self.deploy_id = Some(deploy_id);
        if self.kind == DeployKind::Deploy {
            self.send(self.event(EventKind::DeployStarted));
        }
        self
    }

    /// Sends `budget_exhausted`: the deploy found `budget` spent, and was
    /// refused, or `forced` for that reason.
    pub fn budget_exhausted(&self, budget: &BudgetStatus, forced: Option<&str>) {
        let mut event = self.event(EventKind::BudgetExhausted);
        event.reason = Some(format!(
            "{} errors in {} requests over {}, {:.0} allowed by availability {}; {}",
            budget.errors,
            budget.requests,
            budget.window,
            budget.allowed_errors,
            budget.availability,
            if forced.is_some() {
                "deployed anyway (forced)"
            } else {
                "the deploy was refused"
            }
        ));
        event.budget = Some(BudgetNumbers {
            availability: budget.availability.to_string(),
            window: budget.window.to_string(),
            requests: budget.requests,
            errors: budget.errors,
            allowed_errors: budget.allowed_errors,
            left: budget.left,
        });
        event.forced = forced.map(str::to_string);
        self.send(event);
    }

    /// Sends `guardrail_breached` with every breached verdict of `verdicts`
    /// (none breached, nothing is sent: an abort or a timeout).
    pub fn breached(&self, verdicts: &[Verdict], reason: &str) {
        let guardrails: Vec<Breach> = verdicts.iter().filter_map(breach).collect();
        if guardrails.is_empty() {
            return;
        }
        let mut event = self.event(EventKind::GuardrailBreached);
        event.reason = Some(reason.to_string());
        event.guardrails = guardrails;
        self.send(event);
    }

    /// Sends the event that ends the run `record` describes, if any.
    pub fn ended(&self, record: &DeployRecord) {
        let Some((kind, why)) = end_event(record) else {
            return;
        };
        let mut event = self.event(kind);
        if !record.release.is_empty() {
            event.release = Some(record.release.clone());
        }
        event.reason = record.reason.clone();
        event.duration_ms = record
            .finished_at_ms
            .map(|end| end.saturating_sub(record.started_at_ms));
        event.rollback_reason = why.map(str::to_string);
        event.traffic = record
            .report_json
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok());
        self.send(event);
    }

    fn event(&self, kind: EventKind) -> Event {
        let now = unix_ms(std::time::SystemTime::now());
        let mut event = Event::new(uuid::Uuid::new_v4().to_string(), kind, &self.app, now);
        event.kind = self.kind.as_str().to_string();
        event.deploy_id = self.deploy_id;
        event.release = self.release.clone();
        event.previous_release = self.previous_release.clone();
        event.user = self.user.clone();
        event
    }

    fn send(&self, event: Event) {
        if self.targets.is_empty() {
            return;
        }
        let body = Bytes::from(event.body());
        self.notifier
            .send(&self.app, &self.targets, event.event, &event.id, body);
    }
}

/// The event that ends a run, and for `rolled_back` why traffic went
/// back. A deploy that failed before its traffic moved rolled nothing
/// back: the release before it never stopped serving.
fn end_event(record: &DeployRecord) -> Option<(EventKind, Option<&'static str>)> {
    match (record.kind.as_str(), record.outcome.as_str()) {
        ("deploy", "succeeded") => Some((EventKind::DeploySucceeded, None)),
        (_, "succeeded" | "failed") => Some(match rollback_reason(record) {
            Some(why) => (EventKind::RolledBack, Some(why)),
            None => (EventKind::DeployFailed, None),
        }),
        _ => None,
    }
}

/// A breached verdict as the event tells it.
fn breach(verdict: &Verdict) -> Option<Breach> {
    let Finding::Breached(measurement) = &verdict.finding else {
        return None;
    };
    let (min, max) = match measurement.limit {
        Limit::AtMost(max) => (None, Some(max)),
        Limit::AtLeast(min) => (Some(min), None),
        Limit::Within { min, max } => (Some(min), Some(max)),
    };
    Some(Breach {
        guardrail: verdict.guardrail.clone(),
        value: number(measurement.value),
        min: min.map(number),
        max: max.map(number),
        unit: unit(measurement.value).to_string(),
        window_s: verdict.window.as_secs_f64(),
        evidence: verdict.to_string(),
    })
}

fn number(quantity: Quantity) -> f64 {
    match quantity {
        Quantity::Percent(x) | Quantity::Points(x) | Quantity::Number(x) => x,
        Quantity::Latency(latency) => latency.as_secs_f64(),
    }
}

fn unit(quantity: Quantity) -> &'static str {
    match quantity {
        Quantity::Percent(_) => "fraction",
        Quantity::Points(_) => "points",
        Quantity::Latency(_) => "seconds",
        Quantity::Number(_) => "number",
    }
}

/// `config`'s targets made ready, and why the others cannot be.
fn targets(config: &AppConfig) -> (Vec<Target>, Vec<String>) {
    if config.notify.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let root = AppRoot::new(&config.app.root);
    let env_file = root.env_file();
    let dotenv = match baton_release::load_env_file(&env_file) {
        Ok(dotenv) => dotenv,
        Err(error) => return (Vec::new(), vec![error.to_string()]),
    };
    let env: Arc<[(String, String)]> = app_env::layered(&[
        &app_env::inherited(),
        &dotenv,
        &app_env::from_table(&config.web.env),
        &app_env::pairs(&[("BATON_APP", config.name())]),
    ])
    .into();
    let mut ready = Vec::new();
    let mut problems = Vec::new();
    for (index, target) in config.notify.iter().enumerate() {
        match channel(target, &env, &root) {
            Ok(channel) => ready.push(Target {
                label: target.label(),
                events: target.events.clone(),
                timeout: target.timeout.get(),
                retries: target.retries,
                channel,
            }),
            Err(why) => problems.push(format!(
                "[[notify]] {} ({}): {why}; set it in the daemon's environment, in {}, or in \
                 [web] env",
                index + 1,
                target.label(),
                env_file.display()
            )),
        }
    }
    (ready, problems)
}

fn channel(
    target: &NotifyTarget,
    env: &Arc<[(String, String)]>,
    root: &AppRoot,
) -> Result<Channel, String> {
    if let Some(command) = &target.command {
        return Ok(Channel::Command {
            command: command.clone(),
            dir: root.path().to_path_buf(),
            env: Arc::clone(env),
        });
    }
    let url = target.webhook.as_deref().unwrap_or_default();
    let uri = url
        .parse()
        .map_err(|error| format!("{url:?} is not a URL: {error}"))?;
    let variable = target.secret_env.as_ref().map_or("", |name| name.as_str());
    let key = env
        .iter()
        .rev()
        .find(|(name, _)| name == variable)
        .map(|(_, value)| value.as_bytes())
        .filter(|key| !key.is_empty())
        .ok_or_else(|| format!("secret_env names {variable}, which is not set"))?;
    Ok(Channel::Webhook {
        uri,
        key: Arc::from(key),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: &str, outcome: &str, reason: Option<&str>, stages: &str) -> DeployRecord {
        DeployRecord {
            id: 3,
            app: "web".to_string(),
            kind: kind.to_string(),
            release: "r2".to_string(),
            previous_release: Some("r1".to_string()),
            started_at_ms: 1_000,
            finished_at_ms: Some(4_500),
            user: "ana".to_string(),
            source: "dir".to_string(),
            outcome: outcome.to_string(),
            reason: reason.map(str::to_string),
            stages_json: stages.to_string(),
            report_json: None,
        }
    }

    #[test]
    fn each_end_has_its_event() {
        let switched = r#"[{"stage":"switch","duration_ms":3}]"#;
        let cases = [
            (
                record("deploy", "succeeded", None, "[]"),
                Some((EventKind::DeploySucceeded, None)),
            ),
            (
                record("deploy", "failed", Some("build failed"), "[]"),
                Some((EventKind::DeployFailed, None)),
            ),
            (
                record(
                    "deploy",
                    "failed",
                    Some("the rollout was rolled back: x"),
                    "[]",
                ),
                Some((EventKind::RolledBack, Some("guardrail"))),
            ),
            (
                record("deploy", "failed", Some("the rollout was aborted: x"), "[]"),
                Some((EventKind::RolledBack, Some("abort"))),
            ),
            (
                record("deploy", "failed", Some("workers crashed"), switched),
                Some((EventKind::RolledBack, Some("failed_after_switch"))),
            ),
            (
                record("rollback", "succeeded", None, "[]"),
                Some((EventKind::RolledBack, Some("manual"))),
            ),
            (
                record("rollback", "failed", Some("boot failed"), "[]"),
                Some((EventKind::DeployFailed, None)),
            ),
            (record("deploy", "running", None, "[]"), None),
        ];
        for (record, expected) in cases {
            assert_eq!(end_event(&record), expected, "{record:?}");
        }
    }

    #[test]
    fn a_breach_carries_the_numbers_and_the_sentence() {
        let verdict = Verdict {
            guardrail: "error rate".to_string(),
            window: std::time::Duration::from_secs(30),
            finding: Finding::Breached(baton_rollout::Measurement {
                value: Quantity::Percent(0.5),
                limit: Limit::AtMost(Quantity::Percent(0.01)),
                basis: "120 requests".to_string(),
            }),
        };
        let breach = breach(&verdict).unwrap();
        assert_eq!(breach.value, 0.5);
        assert_eq!(breach.max, Some(0.01));
        assert_eq!(breach.min, None);
        assert_eq!(breach.unit, "fraction");
        assert_eq!(breach.window_s, 30.0);
        assert_eq!(breach.evidence, verdict.to_string());
        let holds = Verdict {
            finding: Finding::NoEvidence {
                why: "too few".to_string(),
            },
            ..verdict
        };
        assert!(super::breach(&holds).is_none());
    }
}
