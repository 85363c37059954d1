//! What the caller measured for one guardrail.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One guardrail's measurement over its window, as the daemon took it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reading {
    /// Per-version request counts, for `ErrorRate`, `P99Latency` and
    /// `ErrorRateVsStable`. While shadowing, the candidate's counts are its
    /// answers to mirrored requests (it has no live traffic), so these
    /// guardrails judge the mirrored traffic.
    Traffic {
        /// The candidate's counts.
        candidate: WindowCounts,
        /// The stable version's counts over the same window.
        stable: WindowCounts,
    },
    /// Mirrored requests and how many were answered differently, for
    /// `ShadowMismatchRate`.
    Mirror(MirrorCounts),
    /// The number an external source gave, for `External`; `None` when the
    /// source could not be read (which is no evidence, never a pass).
    External(Option<f64>),
}

/// One version's requests over a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowCounts {
    /// Requests answered or failed.
    pub requests: u64,
    /// Of those, 5xx answers and connection failures.
    pub errors: u64,
    /// The 99th-percentile latency; `None` when nothing was timed.
    pub p99: Option<Duration>,
}

/// Mirrored requests over a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorCounts {
    /// Requests copied to the candidate and answered by both versions.
    pub mirrored: u64,
    /// Of those, the ones whose answers differed.
    pub mismatched: u64,
}
