//! The events a deploy is announced by, and the JSON body each one is
//! sent as.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum EventKind {
    /// A deploy was accepted and has begun.
    DeployStarted,
    /// A deploy finished: its release serves all traffic.
    DeploySucceeded,
    /// A deploy or rollback failed before any traffic moved: the release
    /// that served before still does, untouched.
    DeployFailed,
    /// Traffic went back to the earlier release: a deploy that failed
    /// after its traffic started to move (a guardrail, an abort, a
    /// failure after the switch), or a `baton rollback`.
    RolledBack,
    /// A guardrail of a progressive rollout was beyond its limit, which
    /// rolls the rollout back.
    GuardrailBreached,
    /// A deploy found the error budget spent: refused, or forced.
    BudgetExhausted,
}

impl EventKind {
    /// Every event, in the order of a deploy's life.
    pub const ALL: [EventKind; 6] = [
        EventKind::DeployStarted,
        EventKind::DeploySucceeded,
        EventKind::DeployFailed,
        EventKind::RolledBack,
        EventKind::GuardrailBreached,
        EventKind::BudgetExhausted,
    ];

    /// The name in config, JSON and the `X-Baton-Event` header.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::DeployStarted => "deploy_started",
            EventKind::DeploySucceeded => "deploy_succeeded",
            EventKind::DeployFailed => "deploy_failed",
            EventKind::RolledBack => "rolled_back",
            EventKind::GuardrailBreached => "guardrail_breached",
            EventKind::BudgetExhausted => "budget_exhausted",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no event, with the ones that are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownEvent(pub String);

impl fmt::Display for UnknownEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = EventKind::ALL.iter().map(|kind| kind.name()).collect();
        write!(
            f,
            "{:?} is not an event; the events are {}",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownEvent {}

impl TryFrom<String> for EventKind {
    type Error = UnknownEvent;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        name.parse()
    }
}

impl FromStr for EventKind {
    type Err = UnknownEvent;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        EventKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| UnknownEvent(name.to_string()))
    }
}

/// One event, as its JSON body says it. Fields that do not apply to an
/// event are `null` (the common ones) or absent (the event-specific ones).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique per event; the same on every target and every retry, so a
    /// receiver can drop duplicates.
    pub id: String,
    /// What happened.
    pub event: EventKind,
    /// The app.
    pub app: String,
    /// `deploy` or `rollback`: the kind of run it is about.
    pub kind: String,
    /// The run's number in `baton history`; `null` on `budget_exhausted`,
    /// which is sent before the deploy is recorded (or refused).
    pub deploy_id: Option<i64>,
    /// The release deployed (or rolled back to), once it has an id.
    pub release: Option<String>,
    /// The release that served before.
    pub previous_release: Option<String>,
    /// Who ran it.
    pub user: String,
    /// When it happened, RFC 3339 in UTC.
    pub at: String,
    /// Why, in words: the failure, the guardrail's verdict, the budget.
    pub reason: Option<String>,
    /// How long the run took, for the events that end it.
    pub duration_ms: Option<u64>,
    /// `rolled_back`: `guardrail`, `timeout` (too little evidence),
    /// `abort` (an operator), `failed_after_switch`, or `manual`
    /// (`baton rollback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_reason: Option<String>,
    /// `guardrail_breached`: each guardrail beyond its limit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guardrails: Vec<Breach>,
    /// `budget_exhausted`: the budget's numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetNumbers>,
    /// `budget_exhausted`: the `--force` reason when the deploy went ahead
    /// anyway; absent when it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced: Option<String>,
    /// `deploy_succeeded`: the traffic report printed at the end of the
    /// deploy (the new version against the same hour of the previous
    /// days), as `baton history --json` keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<serde_json::Value>,
}

/// A guardrail beyond its limit, with the evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Breach {
    /// The guardrail's metric (`error rate`, `p99 latency`, or the external
    /// source).
    pub guardrail: String,
    /// The value measured, in `unit`.
    pub value: f64,
    /// The lowest value that holds, if it has one.
    pub min: Option<f64>,
    /// The highest value that holds, if it has one.
    pub max: Option<f64>,
    /// `fraction` (0.051 is 5.1%), `points` (a difference of fractions),
    /// `seconds`, or `number`.
    pub unit: String,
    /// The window measured over, in seconds.
    pub window_s: f64,
    /// The verdict in words, as `baton history` shows it.
    pub evidence: String,
}

/// An error budget's state when a deploy found it spent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetNumbers {
    /// The objective, e.g. `99.9%`.
    pub availability: String,
    /// The rolling window, e.g. `30days`.
    pub window: String,
    /// Requests over the window.
    pub requests: u64,
    /// Failed requests over the window.
    pub errors: u64,
    /// The errors the objective allows over the window.
    pub allowed_errors: f64,
    /// The share of the budget left (0 or less: spent).
    pub left: f64,
}

impl Event {
    /// An event of `kind` about `app` at `at_ms` (Unix milliseconds), with
    /// the common fields empty.
    pub fn new(id: String, event: EventKind, app: &str, at_ms: u64) -> Event {
        Event {
            id,
            event,
            app: app.to_string(),
            kind: "deploy".to_string(),
            deploy_id: None,
            release: None,
            previous_release: None,
            user: String::new(),
            at: rfc3339(at_ms),
            reason: None,
            duration_ms: None,
            rollback_reason: None,
            guardrails: Vec::new(),
            budget: None,
            forced: None,
            traffic: None,
        }
    }

    /// The body sent: compact JSON, one object.
    pub fn body(&self) -> Vec<u8> {
        // A struct of strings, numbers and lists always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// `at_ms` as RFC 3339 in UTC, to the millisecond.
fn rfc3339(at_ms: u64) -> String {
    let nanos = i128::from(at_ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for kind in EventKind::ALL {
            assert_eq!(kind.name().parse::<EventKind>(), Ok(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::String(kind.name().to_string())
            );
        }
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let error = "deploy_finished".parse::<EventKind>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "\"deploy_finished\" is not an event; the events are deploy_started, \
             deploy_succeeded, deploy_failed, rolled_back, guardrail_breached, budget_exhausted"
        );
    }

    #[test]
    fn the_body_has_the_common_fields_and_only_the_specific_ones_that_apply() {
        let mut event = Event::new(
            "4b1c".to_string(),
            EventKind::DeploySucceeded,
            "web",
            1_700_000_000_123,
        );
        event.deploy_id = Some(7);
        event.release = Some("20231114-221320".to_string());
        event.user = "ana".to_string();
        event.duration_ms = Some(4200);
        let json: serde_json::Value = serde_json::from_slice(&event.body()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": "4b1c",
                "event": "deploy_succeeded",
                "app": "web",
                "kind": "deploy",
                "deploy_id": 7,
                "release": "20231114-221320",
                "previous_release": null,
                "user": "ana",
                "at": "2023-11-14T22:13:20.123Z",
                "reason": null,
                "duration_ms": 4200,
            })
        );
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn a_breach_carries_its_evidence() {
        let mut event = Event::new("x".into(), EventKind::GuardrailBreached, "web", 0);
        event.guardrails.push(Breach {
            guardrail: "error rate".to_string(),
            value: 0.5,
            min: None,
            max: Some(0.01),
            unit: "fraction".to_string(),
            window_s: 30.0,
            evidence: "error rate 50% > 1% over 30s (120 requests)".to_string(),
        });
        let json: serde_json::Value = serde_json::from_slice(&event.body()).unwrap();
        assert_eq!(json["at"], "1970-01-01T00:00:00Z");
        assert_eq!(json["guardrails"][0]["max"], 0.01);
        assert_eq!(json["guardrails"][0]["value"], 0.5);
        assert!(json.get("budget").is_none());
    }
}
