//! Minute rollups: what one version did in one minute (requests, errors,
//! latency buckets), as the daemon persists them so that numbers over longer
//! spans than the in-memory ring (the last 5 minutes right after a restart,
//! an error budget over 30 days) can be read back.
//!
//! A rollup is the difference between two [`Reading`]s of a version's
//! lifetime counters, so it is exact: every request lands in exactly one
//! rollup of the writer that read it. Everything here is plain arithmetic
//! over plain data; the daemon decides when to read and where to store.

use std::collections::BTreeMap;

use crate::latency_buckets::LatencyBuckets;
use crate::request_stats::RequestStats;

/// A minute in Unix milliseconds.
pub const MINUTE_MS: u64 = 60_000;

/// The start of the minute `unix_ms` falls in.
pub fn minute_start(unix_ms: u64) -> u64 {
    unix_ms - unix_ms % MINUTE_MS
}

/// A version's lifetime counters at one instant: what two consecutive
/// readings subtract into a rollup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reading {
    /// Requests recorded since the stats were created.
    pub requests: u64,
    /// Of those, the ones that failed on the upstream's side (5xx, connect
    /// failures, timeouts, upstream errors).
    pub errors: u64,
    /// Their latencies.
    pub latency: LatencyBuckets,
}

impl Reading {
    /// `stats`' counters now.
    pub fn of(stats: &RequestStats) -> Reading {
        let totals = stats.totals();
        Reading {
            requests: totals.requests,
            errors: totals.errors(),
            latency: stats.latency_buckets(),
        }
    }
}

/// One version's requests in one minute, as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MinuteRollup {
    /// The start of the minute (Unix ms) the requests finished in.
    pub minute_ms: u64,
    /// When the counts were read (Unix ms): about a minute after
    /// `minute_ms`, earlier for the last rollup before the daemon stopped.
    /// The requests counted finished before this instant.
    pub until_ms: u64,
    /// Requests that finished.
    pub requests: u64,
    /// Of those, the ones that failed on the upstream's side.
    pub errors: u64,
    /// Their latencies.
    pub latency: LatencyBuckets,
}

impl MinuteRollup {
    /// What happened between `earlier` and `later`, two readings of the same
    /// stats, the later one taken at `until_ms`; it belongs to the minute
    /// `earlier` was taken in (the writer reads once a minute, just after the
    /// minute turns).
    pub fn between(
        earlier_ms: u64,
        until_ms: u64,
        earlier: &Reading,
        later: &Reading,
    ) -> MinuteRollup {
        MinuteRollup {
            minute_ms: minute_start(earlier_ms),
            until_ms,
            requests: later.requests.saturating_sub(earlier.requests),
            errors: later.errors.saturating_sub(earlier.errors),
            latency: later.latency.since(&earlier.latency),
        }
    }

    /// Whether no request finished in it (such rollups are not stored).
    pub fn is_empty(&self) -> bool {
        self.requests == 0
    }
}

/// Rollups of one version added up over a span.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RollupSummary {
    /// The earliest minute added (Unix ms); `None` when nothing was.
    pub first_minute_ms: Option<u64>,
    /// Requests that finished.
    pub requests: u64,
    /// Of those, the ones that failed on the upstream's side.
    pub errors: u64,
    /// Their latencies.
    pub latency: LatencyBuckets,
}

impl RollupSummary {
    /// Adds one rollup.
    pub fn add(&mut self, rollup: &MinuteRollup) {
        self.first_minute_ms = Some(
            self.first_minute_ms
                .map_or(rollup.minute_ms, |first| first.min(rollup.minute_ms)),
        );
        self.requests = self.requests.saturating_add(rollup.requests);
        self.errors = self.errors.saturating_add(rollup.errors);
        self.latency.merge(&rollup.latency);
    }
}

/// Rollups of one app, each with its version, added up per version.
pub fn merge_by_version(
    rollups: impl IntoIterator<Item = (String, MinuteRollup)>,
) -> BTreeMap<String, RollupSummary> {
    let mut merged: BTreeMap<String, RollupSummary> = BTreeMap::new();
    for (version, rollup) in rollups {
        merged.entry(version).or_default().add(&rollup);
    }
    merged
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::outcome::Outcome;

    /// 2026-01-01T10:00:00Z.
    const TEN_O_CLOCK: u64 = 1_767_261_600_000;

    #[test]
    fn minutes_start_on_the_minute() {
        assert_eq!(minute_start(TEN_O_CLOCK), TEN_O_CLOCK);
        assert_eq!(minute_start(TEN_O_CLOCK + 59_999), TEN_O_CLOCK);
        assert_eq!(minute_start(TEN_O_CLOCK + 60_000), TEN_O_CLOCK + MINUTE_MS);
        assert_eq!(minute_start(0), 0);
    }

    #[test]
    fn a_rollup_is_what_happened_between_two_readings() {
        let t0 = Instant::now();
        let stats = RequestStats::new(t0);
        stats.record(t0, Outcome::Status(200), Duration::from_millis(4));
        let first = Reading::of(&stats);
        stats.record(t0, Outcome::Status(200), Duration::from_millis(40));
        stats.record(t0, Outcome::Status(503), Duration::from_millis(40));
        stats.record(t0, Outcome::Status(404), Duration::from_millis(40));
        let second = Reading::of(&stats);
        let rollup = MinuteRollup::between(TEN_O_CLOCK + 2, TEN_O_CLOCK + 60_003, &first, &second);
        let mut latency = LatencyBuckets::default();
        latency.add(40_000, 3);
        assert_eq!(
            rollup,
            MinuteRollup {
                minute_ms: TEN_O_CLOCK,
                until_ms: TEN_O_CLOCK + 60_003,
                requests: 3,
                errors: 1,
                latency,
            }
        );
        assert!(!rollup.is_empty());
        let nothing = MinuteRollup::between(
            TEN_O_CLOCK + 60_003,
            TEN_O_CLOCK + 120_000,
            &second,
            &second,
        );
        assert!(nothing.is_empty());
        assert_eq!(nothing.minute_ms, TEN_O_CLOCK + MINUTE_MS);
    }

    #[test]
    fn the_first_reading_of_new_stats_counts_from_zero() {
        let t0 = Instant::now();
        let stats = RequestStats::new(t0);
        for _ in 0..7 {
            stats.record(t0, Outcome::Timeout, Duration::from_secs(30));
        }
        let rollup = MinuteRollup::between(
            TEN_O_CLOCK,
            TEN_O_CLOCK + 60_000,
            &Reading::default(),
            &Reading::of(&stats),
        );
        assert_eq!((rollup.requests, rollup.errors), (7, 7));
        assert_eq!(rollup.latency.count(), 7);
    }

    #[test]
    fn merging_adds_up_each_version_apart() {
        let rollup = |minute: u64, requests: u64, errors: u64, micros: u64| MinuteRollup {
            minute_ms: TEN_O_CLOCK + minute * MINUTE_MS,
            until_ms: TEN_O_CLOCK + (minute + 1) * MINUTE_MS,
            requests,
            errors,
            latency: {
                let mut latency = LatencyBuckets::default();
                latency.add(micros, requests);
                latency
            },
        };
        let merged = merge_by_version([
            ("v2".to_string(), rollup(3, 10, 1, 900)),
            ("v1".to_string(), rollup(1, 100, 0, 2_000)),
            ("v2".to_string(), rollup(2, 30, 2, 20_000)),
            // A restart splits a minute into two rollups; both count.
            ("v2".to_string(), rollup(2, 5, 0, 20_000)),
        ]);
        assert_eq!(merged.keys().collect::<Vec<_>>(), ["v1", "v2"]);
        let v2 = &merged["v2"];
        assert_eq!(v2.first_minute_ms, Some(TEN_O_CLOCK + 2 * MINUTE_MS));
        assert_eq!((v2.requests, v2.errors), (45, 3));
        assert_eq!(v2.latency.count(), 45);
        let p99 = v2.latency.quantile(0.99).unwrap_or_default();
        assert!(
            p99 > Duration::from_millis(15) && p99 <= Duration::from_millis(20),
            "{p99:?}"
        );
        assert_eq!(merged["v1"].requests, 100);
    }
}
