//! What one guardrail concluded from one reading, with the numbers behind it.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::human;

/// One guardrail's verdict at one instant: what was measured, against what,
/// over which window. Its `Display` is the sentence history shows
/// ("error rate 5.1% > 1% over 2m (2,340 requests)", or for an external
/// number "$.rate from http://127.0.0.1:8081/stats = 0.91 < 0.95 over 1m").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The guardrail's metric name ("error rate", or an external name).
    pub guardrail: String,
    /// The window it was measured over.
    pub window: Duration,
    /// What it concluded.
    pub finding: Finding,
}

/// What a guardrail concluded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    /// Within its limit.
    Holds(Measurement),
    /// Beyond its limit: the rollout goes back to stable.
    Breached(Measurement),
    /// Nothing to judge on (too few requests, an unreachable source): the
    /// rollout waits, and a step never passes on it.
    NoEvidence {
        /// What was missing.
        why: String,
    },
    /// Not meaningful in this phase (a mismatch rate without shadow
    /// traffic, a comparison with stable when stable has no traffic);
    /// neither blocks nor passes anything.
    NotJudged {
        /// Why it does not apply.
        why: String,
    },
}

/// A measured value against its limit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// What was measured.
    pub value: Quantity,
    /// What it must stay within.
    pub limit: Limit,
    /// What the value was computed from, for people ("2,340 requests").
    pub basis: String,
}

/// A number with its unit.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantity {
    /// A fraction shown as a percentage (0.051 is 5.1%).
    Percent(f64),
    /// A difference of two fractions shown in percentage points (0.019 is
    /// 1.9 points).
    Points(f64),
    /// A latency.
    Latency(Duration),
    /// A plain number from an external source.
    Number(f64),
}

/// The range a measured value must stay within.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// At most this.
    AtMost(Quantity),
    /// At least this.
    AtLeast(Quantity),
    /// Between these, both included.
    Within {
        /// The lowest value that holds.
        min: Quantity,
        /// The highest value that holds.
        max: Quantity,
    },
}

impl Finding {
    /// Whether the guardrail is beyond its limit.
    pub fn is_breached(&self) -> bool {
        matches!(self, Finding::Breached(_))
    }

    /// Whether the guardrail lacked evidence.
    pub fn is_no_evidence(&self) -> bool {
        matches!(self, Finding::NoEvidence { .. })
    }
}

impl Quantity {
    /// The number compared, whatever its unit (latency in seconds).
    fn magnitude(self) -> f64 {
        match self {
            Quantity::Percent(x) | Quantity::Points(x) | Quantity::Number(x) => x,
            Quantity::Latency(duration) => duration.as_secs_f64(),
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Quantity::Percent(fraction) => f.write_str(&human::percent(fraction)),
            Quantity::Points(fraction) => f.write_str(&human::points(fraction)),
            Quantity::Latency(duration) => f.write_str(&human::latency(duration)),
            Quantity::Number(value) => f.write_str(&human::number(value)),
        }
    }
}

impl Measurement {
    /// "5.1% > 1%" when breached, "0.2% ≤ 1%" when it holds; for a range,
    /// the bound that was crossed, or the whole range. The caller says which
    /// (the judgement is exact; comparing the displayed floats again could
    /// disagree with it at the boundary).
    fn describe(&self, breached: bool) -> String {
        let value = self.value;
        match (self.limit, breached) {
            (Limit::AtMost(max), true) => format!("{value} > {max}"),
            (Limit::AtMost(max), false) => format!("{value} ≤ {max}"),
            (Limit::AtLeast(min), true) => format!("{value} < {min}"),
            (Limit::AtLeast(min), false) => format!("{value} ≥ {min}"),
            (Limit::Within { min, .. }, true) if value.magnitude() < min.magnitude() => {
                format!("{value} < {min}")
            }
            (Limit::Within { max, .. }, true) => format!("{value} > {max}"),
            (Limit::Within { min, max }, false) => format!("{value} within {min}..{max}"),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.guardrail;
        let window = human::span(self.window);
        match &self.finding {
            Finding::Holds(measured) | Finding::Breached(measured) => {
                let breached = self.finding.is_breached();
                // An external name is a query or a path ("$.rate from
                // http://…"): "=" keeps its value from reading as part of it.
                let is = if matches!(measured.value, Quantity::Number(_)) {
                    " = "
                } else {
                    " "
                };
                write!(f, "{name}{is}{} over {window}", measured.describe(breached))?;
                if !measured.basis.is_empty() {
                    write!(f, " ({})", measured.basis)?;
                }
                Ok(())
            }
            Finding::NoEvidence { why } => write!(f, "{name}: no evidence over {window} ({why})"),
            Finding::NotJudged { why } => write!(f, "{name}: not judged ({why})"),
        }
    }
}
