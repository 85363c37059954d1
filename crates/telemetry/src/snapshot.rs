//! What a reader gets for one window, and how slices are merged into it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::counts::Counts;
use crate::latency::LatencyHistogram;
use crate::slice::Slice;
use crate::totals::Totals;

/// Request counts and latency quantiles of one (service, version) over a
/// window ending at the snapshot's `now`.
///
/// Latencies are taken over every request, failures included: a timeout is
/// what its client waited, and leaving it out would make a version that
/// times out look fast.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowSnapshot {
    /// The span the counts cover, in milliseconds: the requested window
    /// (clamped to [`RETENTION`](crate::RETENTION)) rounded out to whole
    /// [`SLICE`](crate::SLICE)s, and cut short at the stats' creation. Less
    /// than asked for means the history does not reach back that far yet.
    pub window_ms: u64,
    /// Requests that finished in the window, by outcome. (Flattened: on the
    /// wire the counts sit beside `window_ms` and the quantiles.)
    #[serde(flatten)]
    pub counts: Totals,
    /// Median latency in milliseconds (0 without requests).
    pub p50_ms: f64,
    /// 90th percentile latency in milliseconds (0 without requests).
    pub p90_ms: f64,
    /// 95th percentile latency in milliseconds (0 without requests).
    pub p95_ms: f64,
    /// 99th percentile latency in milliseconds (0 without requests).
    pub p99_ms: f64,
    /// Slowest request in milliseconds (0 without requests).
    pub max_ms: f64,
}

impl WindowSnapshot {
    /// The share of requests that failed on the upstream's side: 5xx
    /// responses, connect failures, timeouts and upstream errors over all
    /// requests. 0 when there were no requests, so that an idle version does
    /// not trip a guardrail; check `requests` for enough evidence.
    pub fn error_rate(&self) -> f64 {
        self.counts.error_rate()
    }

    /// Requests per second over `window_ms`; 0 for an empty window.
    pub fn requests_per_second(&self) -> f64 {
        if self.window_ms == 0 {
            return 0.0;
        }
        self.counts.requests as f64 * 1000.0 / self.window_ms as f64
    }
}

/// Slices merged so far for one snapshot.
#[derive(Debug, Default)]
pub(crate) struct Merge {
    counts: Counts,
    max_micros: u64,
    /// Allocated only once a slice with latencies turns up, so snapshots of
    /// an idle version allocate nothing.
    latencies: Option<LatencyHistogram>,
}

impl Merge {
    pub(crate) fn add(&mut self, slice: &Slice) {
        self.counts.merge(slice.counts());
        self.max_micros = self.max_micros.max(slice.max_micros());
        let Some(source) = slice.latencies() else {
            return;
        };
        match &mut self.latencies {
            None => self.latencies = Some(source.clone()),
            // Every histogram comes from the same constructor, so adding
            // cannot run out of range; were it ever to, the quantiles would
            // miss one slice rather than the proxy fail.
            Some(merged) => {
                let _ = merged.add(source);
            }
        }
    }

    pub(crate) fn finish(self, covered: Duration) -> WindowSnapshot {
        let quantile_ms = |q: f64| match &self.latencies {
            // The histogram reports the top of a value's bucket, which can
            // lie above the real maximum; clamping keeps p99 <= max.
            Some(h) if !h.is_empty() => micros_to_ms(h.value_at_quantile(q).min(self.max_micros)),
            _ => 0.0,
        };
        WindowSnapshot {
            window_ms: u64::try_from(covered.as_millis()).unwrap_or(u64::MAX),
            counts: Totals::from(self.counts),
            p50_ms: quantile_ms(0.50),
            p90_ms: quantile_ms(0.90),
            p95_ms: quantile_ms(0.95),
            p99_ms: quantile_ms(0.99),
            max_ms: micros_to_ms(self.max_micros),
        }
    }
}

fn micros_to_ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(requests: u64, errors: [u64; 4], window_ms: u64) -> WindowSnapshot {
        WindowSnapshot {
            window_ms,
            counts: Totals {
                requests,
                status_5xx: errors[0],
                connect_failures: errors[1],
                timeouts: errors[2],
                upstream_errors: errors[3],
                ..Totals::default()
            },
            ..WindowSnapshot::default()
        }
    }

    #[test]
    fn error_rate_counts_every_upstream_failure() {
        let s = snapshot(100, [4, 3, 2, 1], 1_000);
        assert!((s.error_rate() - 0.10).abs() < 1e-12);
    }

    #[test]
    fn error_rate_ignores_client_errors() {
        let s = WindowSnapshot {
            counts: Totals {
                requests: 10,
                status_4xx: 10,
                ..Totals::default()
            },
            ..WindowSnapshot::default()
        };
        assert_eq!(s.error_rate(), 0.0);
    }

    #[test]
    fn error_rate_without_requests_is_zero() {
        assert_eq!(WindowSnapshot::default().error_rate(), 0.0);
    }

    #[test]
    fn requests_per_second_uses_the_covered_window() {
        assert_eq!(snapshot(300, [0; 4], 60_000).requests_per_second(), 5.0);
        assert_eq!(snapshot(300, [0; 4], 0).requests_per_second(), 0.0);
    }

    #[test]
    fn an_empty_merge_is_all_zero_and_allocates_nothing() {
        let merge = Merge::default();
        assert!(merge.latencies.is_none());
        let s = merge.finish(Duration::from_secs(60));
        assert_eq!(
            s,
            WindowSnapshot {
                window_ms: 60_000,
                ..WindowSnapshot::default()
            }
        );
    }

    #[test]
    fn snapshot_serialises_with_its_field_names() {
        let s = WindowSnapshot {
            window_ms: 120_000,
            counts: Totals {
                requests: 7,
                status_2xx: 6,
                timeouts: 1,
                ..Totals::default()
            },
            p50_ms: 1.5,
            ..WindowSnapshot::default()
        };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["window_ms"], 120_000);
        assert_eq!(json["status_2xx"], 6);
        assert_eq!(json["timeouts"], 1);
        assert_eq!(json["p50_ms"], 1.5);
        let back: WindowSnapshot = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }
}
