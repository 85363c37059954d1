//! How often each flag was evaluated, and with what result, for
//! `baton_flag_evaluations_total` in `/metrics`. A flag's counters outlive
//! the revisions of the flag set: each compiled revision holds the same
//! counters for the flags it keeps, aligned with its flags' order, so the
//! proxy counts an evaluation with one relaxed atomic add and no lookup.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use baton_telemetry::exposition::FlagEvaluationSeries;

/// Who asked for an evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvaluationSource {
    /// The proxy, for `X-Baton-Flags` on a request to an app.
    Proxy,
    /// An OpenFeature SDK, over OFREP.
    Ofrep,
}

impl EvaluationSource {
    const ALL: [EvaluationSource; 2] = [EvaluationSource::Proxy, EvaluationSource::Ofrep];

    fn label(self) -> &'static str {
        match self {
            EvaluationSource::Proxy => "proxy",
            EvaluationSource::Ofrep => "ofrep",
        }
    }
}

/// One flag's evaluations by source and result.
#[derive(Debug, Default)]
pub struct FlagTally {
    /// Indexed by `source * 2 + enabled`.
    counts: [AtomicU64; 4],
}

impl FlagTally {
    /// Counts one evaluation.
    pub fn record(&self, source: EvaluationSource, enabled: bool) {
        self.counts[slot(source, enabled)].fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self, source: EvaluationSource, enabled: bool) -> u64 {
        self.counts[slot(source, enabled)].load(Ordering::Relaxed)
    }
}

fn slot(source: EvaluationSource, enabled: bool) -> usize {
    let source = match source {
        EvaluationSource::Proxy => 0,
        EvaluationSource::Ofrep => 1,
    };
    source * 2 + usize::from(enabled)
}

/// Every flag's counters since the daemon started, by name.
#[derive(Debug, Default)]
pub struct FlagTallies {
    by_name: Mutex<HashMap<String, Arc<FlagTally>>>,
}

impl FlagTallies {
    /// The counters of `names`, in their order; a flag seen for the first
    /// time starts at zero, a flag seen before keeps counting where it was.
    pub fn for_flags<'a>(&self, names: impl Iterator<Item = &'a str>) -> Vec<Arc<FlagTally>> {
        let mut by_name = self.by_name.lock().unwrap_or_else(PoisonError::into_inner);
        names
            .map(|name| Arc::clone(by_name.entry(name.to_string()).or_default()))
            .collect()
    }

    /// Every counted flag (deleted ones included: a counter never goes
    /// back), sorted by flag, source and result, for `/metrics`.
    pub fn expose(&self) -> Vec<FlagEvaluationSeries> {
        let by_name = self.by_name.lock().unwrap_or_else(PoisonError::into_inner);
        let mut series = Vec::new();
        for (flag, tally) in by_name.iter() {
            for source in EvaluationSource::ALL {
                for enabled in [false, true] {
                    let count = tally.count(source, enabled);
                    if count == 0 {
                        continue;
                    }
                    series.push(FlagEvaluationSeries {
                        flag: flag.clone(),
                        source: source.label().to_string(),
                        result: if enabled { "on" } else { "off" }.to_string(),
                        count,
                    });
                }
            }
        }
        series
            .sort_by(|a, b| (&a.flag, &a.source, &a.result).cmp(&(&b.flag, &b.source, &b.result)));
        series
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_follow_a_flag_across_revisions_and_only_counted_ones_show() {
        let tallies = FlagTallies::default();
        let first = tallies.for_flags(["a", "b"].into_iter());
        first[0].record(EvaluationSource::Proxy, true);
        first[0].record(EvaluationSource::Proxy, true);
        first[1].record(EvaluationSource::Ofrep, false);
        // The next revision drops b, adds c and keeps a's counts.
        let second = tallies.for_flags(["c", "a"].into_iter());
        second[1].record(EvaluationSource::Proxy, false);
        let seen: Vec<(String, String, String, u64)> = tallies
            .expose()
            .into_iter()
            .map(|s| (s.flag, s.source, s.result, s.count))
            .collect();
        let row = |flag: &str, source: &str, result: &str, count| {
            (
                flag.to_string(),
                source.to_string(),
                result.to_string(),
                count,
            )
        };
        assert_eq!(
            seen,
            [
                row("a", "proxy", "off", 1),
                row("a", "proxy", "on", 2),
                row("b", "ofrep", "off", 1),
            ]
        );
    }
}
