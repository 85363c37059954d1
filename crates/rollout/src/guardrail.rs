//! A condition the candidate must keep to be exposed further.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Ratio;

/// One guardrail of `[[rollout.guardrails]]`: a metric, its limit and the
/// window it is measured over. Every guardrail must hold for a step to
/// advance; any one breached rolls the candidate back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Guardrail {
    /// What is measured, and its limit.
    pub metric: Metric,
    /// How far back the measurement looks (the caller's rolling window).
    pub window: Duration,
}

/// What a guardrail measures, with its limit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// The candidate's (5xx + connection failures) / requests must not
    /// exceed `max`.
    ErrorRate {
        /// The highest error rate that still holds.
        max: Ratio,
    },
    /// The candidate's 99th-percentile latency must not exceed `max`.
    P99Latency {
        /// The highest p99 that still holds.
        max: Duration,
    },
    /// The candidate's error rate minus stable's over the same window must
    /// not exceed `max` percentage points. It catches a candidate that is
    /// clearly worse than stable while both are under the absolute limit.
    ErrorRateVsStable {
        /// The most the candidate may be worse by, in points (0.5% = half
        /// a point).
        max: Ratio,
    },
    /// Among mirrored requests, those whose candidate answer differed from
    /// stable's (status class, or latency beyond the proxy's tolerance)
    /// must not exceed `max`. Judged only while shadowing.
    ShadowMismatchRate {
        /// The highest mismatch rate that still holds.
        max: Ratio,
    },
    /// A number fetched from outside (a `prometheus` query or an `http`
    /// JSON endpoint) must stay within `min..=max`. The daemon fetches it;
    /// an unreachable source is no evidence, never a pass.
    External {
        /// How people call it ("checkout_success_rate").
        name: String,
        /// The lowest value that still holds.
        min: Option<f64>,
        /// The highest value that still holds.
        max: Option<f64>,
    },
}

impl Metric {
    /// The metric's name in verdicts and reasons.
    pub fn name(&self) -> &str {
        match self {
            Metric::ErrorRate { .. } => "error rate",
            Metric::P99Latency { .. } => "p99 latency",
            Metric::ErrorRateVsStable { .. } => "error rate vs stable",
            Metric::ShadowMismatchRate { .. } => "shadow mismatch rate",
            Metric::External { name, .. } => name,
        }
    }
}

impl Guardrail {
    /// The guardrails a rollout has when `baton.toml` names none: error
    /// rate at most 1% over 2 minutes, p99 at most 1200 ms over 3 minutes,
    /// and the candidate's error rate at most 0.5 points above stable's
    /// over 2 minutes.
    pub fn defaults() -> Vec<Guardrail> {
        const ONE_PERCENT: Ratio = ratio(10_000);
        const HALF_A_POINT: Ratio = ratio(5_000);
        vec![
            Guardrail {
                metric: Metric::ErrorRate { max: ONE_PERCENT },
                window: Duration::from_secs(120),
            },
            Guardrail {
                metric: Metric::P99Latency {
                    max: Duration::from_millis(1200),
                },
                window: Duration::from_secs(180),
            },
            Guardrail {
                metric: Metric::ErrorRateVsStable { max: HALF_A_POINT },
                window: Duration::from_secs(120),
            },
        ]
    }
}

/// A ratio known at compile time to be in range.
const fn ratio(parts_per_million: u32) -> Ratio {
    match Ratio::from_parts_per_million(parts_per_million) {
        Some(ratio) => ratio,
        None => panic!("a constant ratio above 100%"),
    }
}
