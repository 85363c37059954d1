//! Judging one guardrail against its reading.
//!
//! Rates are compared in integers (counts against parts per million), so a
//! value exactly at its limit holds whatever the floating-point rounding;
//! floats are only used to show the numbers.

use crate::human::{count, percent};
use crate::{
    Finding, Guardrail, Limit, Measurement, Metric, MirrorCounts, Quantity, Ratio, Reading,
    Verdict, Weight, WindowCounts,
};

/// What the phase means for the guardrails.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scene {
    /// Requests are being mirrored to the candidate (it has no live traffic).
    pub shadowing: bool,
    /// The candidate's share of live traffic.
    pub live: Weight,
}

/// The verdict of `guardrail` on `reading` (`None`: nothing was measured).
pub(crate) fn judge(
    guardrail: &Guardrail,
    reading: Option<&Reading>,
    min_requests: u64,
    scene: Scene,
) -> Verdict {
    let finding = find(&guardrail.metric, reading, min_requests.max(1), scene);
    Verdict {
        guardrail: guardrail.metric.name().to_string(),
        window: guardrail.window,
        finding,
    }
}

fn find(metric: &Metric, reading: Option<&Reading>, min: u64, scene: Scene) -> Finding {
    match (metric, reading) {
        (Metric::ShadowMismatchRate { .. }, _) if !scene.shadowing => Finding::NotJudged {
            why: "there is no shadow traffic in this phase".to_string(),
        },
        (Metric::ErrorRateVsStable { .. }, _) if scene.live.is_full() => Finding::NotJudged {
            why: "stable has no live traffic while the candidate has 100%".to_string(),
        },
        (Metric::ErrorRate { max }, Some(Reading::Traffic { candidate, .. })) => {
            error_rate(*max, candidate, min)
        }
        (Metric::P99Latency { max }, Some(Reading::Traffic { candidate, .. })) => {
            p99(*max, candidate, min)
        }
        (Metric::ErrorRateVsStable { max }, Some(Reading::Traffic { candidate, stable })) => {
            versus_stable(*max, candidate, stable, min)
        }
        (Metric::ShadowMismatchRate { max }, Some(Reading::Mirror(mirror))) => {
            mismatch(*max, mirror, min)
        }
        (Metric::External { min, max, .. }, Some(Reading::External(value))) => {
            external(*min, *max, *value)
        }
        (_, None) => Finding::NoEvidence {
            why: "nothing was measured".to_string(),
        },
        (_, Some(_)) => Finding::NoEvidence {
            why: "the reading given is not the kind this metric needs".to_string(),
        },
    }
}

fn too_few(requests: u64, min: u64, whose: &str) -> Option<Finding> {
    (requests < min).then(|| Finding::NoEvidence {
        why: format!(
            "only {} {whose}requests, need {}",
            count(requests),
            count(min)
        ),
    })
}

fn verdict(breached: bool, measurement: Measurement) -> Finding {
    if breached {
        Finding::Breached(measurement)
    } else {
        Finding::Holds(measurement)
    }
}

fn error_rate(max: Ratio, candidate: &WindowCounts, min: u64) -> Finding {
    rate(
        candidate.errors,
        candidate.requests,
        max,
        min,
        "",
        format!(
            "{} errors in {} requests",
            count(candidate.errors),
            count(candidate.requests)
        ),
    )
}

fn p99(max: std::time::Duration, candidate: &WindowCounts, min: u64) -> Finding {
    if let Some(no_evidence) = too_few(candidate.requests, min, "") {
        return no_evidence;
    }
    let Some(p99) = candidate.p99 else {
        return Finding::NoEvidence {
            why: "no latencies were recorded".to_string(),
        };
    };
    verdict(
        p99 > max,
        Measurement {
            value: Quantity::Latency(p99),
            limit: Limit::AtMost(Quantity::Latency(max)),
            basis: format!("{} requests", count(candidate.requests)),
        },
    )
}

fn versus_stable(max: Ratio, candidate: &WindowCounts, stable: &WindowCounts, min: u64) -> Finding {
    if let Some(no_evidence) = too_few(candidate.requests, min, "candidate ") {
        return no_evidence;
    }
    if let Some(no_evidence) = too_few(stable.requests, min, "stable ") {
        return no_evidence;
    }
    let candidate_rate = fraction(candidate.errors, candidate.requests);
    let stable_rate = fraction(stable.errors, stable.requests);
    verdict(
        worse_by_more_than(candidate, stable, max),
        Measurement {
            value: Quantity::Points(candidate_rate - stable_rate),
            limit: Limit::AtMost(Quantity::Points(max.as_fraction())),
            basis: format!(
                "candidate {} of {} requests, stable {} of {}",
                percent(candidate_rate),
                count(candidate.requests),
                percent(stable_rate),
                count(stable.requests)
            ),
        },
    )
}

fn mismatch(max: Ratio, mirror: &MirrorCounts, min: u64) -> Finding {
    rate(
        mirror.mismatched,
        mirror.mirrored,
        max,
        min,
        "mirrored ",
        format!(
            "{} of {} mirrored requests differed",
            count(mirror.mismatched),
            count(mirror.mirrored)
        ),
    )
}

/// `part` of `whole` must not exceed `max`; fewer than `min` in `whole` is
/// no evidence.
fn rate(part: u64, whole: u64, max: Ratio, min: u64, whose: &str, basis: String) -> Finding {
    if let Some(no_evidence) = too_few(whole, min, whose) {
        return no_evidence;
    }
    verdict(
        above(part, whole, max),
        Measurement {
            value: Quantity::Percent(fraction(part, whole)),
            limit: Limit::AtMost(Quantity::Percent(max.as_fraction())),
            basis,
        },
    )
}

fn external(min: Option<f64>, max: Option<f64>, value: Option<f64>) -> Finding {
    let Some(value) = value else {
        return Finding::NoEvidence {
            why: "the source could not be read".to_string(),
        };
    };
    // A NaN or infinite answer is what a query over no data returns; it
    // says nothing about the candidate.
    if !value.is_finite() {
        return Finding::NoEvidence {
            why: format!("the source returned {value}"),
        };
    }
    let limit = match (min, max) {
        (Some(min), Some(max)) => Limit::Within {
            min: Quantity::Number(min),
            max: Quantity::Number(max),
        },
        (Some(min), None) => Limit::AtLeast(Quantity::Number(min)),
        (None, Some(max)) => Limit::AtMost(Quantity::Number(max)),
        (None, None) => {
            return Finding::NotJudged {
                why: "it has neither min nor max".to_string(),
            };
        }
    };
    let breached = min.is_some_and(|min| value < min) || max.is_some_and(|max| value > max);
    verdict(
        breached,
        Measurement {
            value: Quantity::Number(value),
            limit,
            basis: String::new(),
        },
    )
}

fn fraction(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// `part / whole > max`, exactly.
fn above(part: u64, whole: u64, max: Ratio) -> bool {
    let million = u128::from(Ratio::MILLION);
    u128::from(part) * million > u128::from(max.parts_per_million()) * u128::from(whole)
}

/// `ce/cr - se/sr > max`, exactly: `(ce·sr - se·cr)·10⁶ > max·cr·sr`.
fn worse_by_more_than(candidate: &WindowCounts, stable: &WindowCounts, max: Ratio) -> bool {
    let (ce, cr) = (u128::from(candidate.errors), u128::from(candidate.requests));
    let (se, sr) = (u128::from(stable.errors), u128::from(stable.requests));
    // Products of two u64 always fit in a u128.
    let (worse, better) = (ce * sr, se * cr);
    if worse <= better {
        return false;
    }
    let million = u128::from(Ratio::MILLION);
    let lhs = (worse - better).checked_mul(million);
    let rhs = (cr * sr).checked_mul(u128::from(max.parts_per_million()));
    match (lhs, rhs) {
        (Some(lhs), Some(rhs)) => lhs > rhs,
        // Only counts beyond any real traffic get here; floats are close
        // enough for them.
        _ => {
            fraction(candidate.errors, candidate.requests)
                - fraction(stable.errors, stable.requests)
                > max.as_fraction()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const LIVE: Scene = Scene {
        shadowing: false,
        live: Weight::ZERO,
    };

    fn counts(requests: u64, errors: u64) -> WindowCounts {
        WindowCounts {
            requests,
            errors,
            p99: Some(Duration::from_millis(100)),
        }
    }

    fn rate(text: &str) -> Ratio {
        text.parse().unwrap()
    }

    #[test]
    fn limits_are_exact_at_the_boundary() {
        assert!(!above(10, 1000, rate("1%")));
        assert!(above(11, 1000, rate("1%")));
        // 1.5% - 1% = 0.5 points exactly: holds.
        assert!(!worse_by_more_than(
            &counts(1000, 15),
            &counts(2000, 20),
            rate("0.5%")
        ));
        assert!(worse_by_more_than(
            &counts(1000, 16),
            &counts(2000, 20),
            rate("0.5%")
        ));
        // Better than stable is never a breach.
        assert!(!worse_by_more_than(
            &counts(1000, 0),
            &counts(1000, 500),
            rate("0%")
        ));
        // Counts no server will see still decide without overflowing.
        assert!(worse_by_more_than(
            &counts(u64::MAX, u64::MAX),
            &counts(u64::MAX, 0),
            rate("0.5%")
        ));
    }

    #[test]
    fn breaches_read_like_sentences() {
        let cases: &[(Metric, Reading, &str)] = &[
            (
                Metric::ErrorRate { max: rate("1%") },
                Reading::Traffic {
                    candidate: counts(2340, 120),
                    stable: counts(50_000, 10),
                },
                "error rate 5.13% > 1% over 2m (120 errors in 2,340 requests)",
            ),
            (
                Metric::P99Latency {
                    max: Duration::from_millis(1200),
                },
                Reading::Traffic {
                    candidate: WindowCounts {
                        requests: 500,
                        errors: 0,
                        p99: Some(Duration::from_millis(1530)),
                    },
                    stable: counts(50_000, 10),
                },
                "p99 latency 1530ms > 1200ms over 2m (500 requests)",
            ),
            (
                Metric::ErrorRateVsStable { max: rate("0.5%") },
                Reading::Traffic {
                    candidate: counts(1000, 23),
                    stable: counts(50_000, 200),
                },
                "error rate vs stable 1.9 points > 0.5 points over 2m \
                 (candidate 2.3% of 1,000 requests, stable 0.4% of 50,000)",
            ),
            (
                Metric::External {
                    name: "checkout_success_rate".to_string(),
                    min: Some(0.95),
                    max: None,
                },
                Reading::External(Some(0.91)),
                "checkout_success_rate = 0.91 < 0.95 over 2m",
            ),
        ];
        for (metric, reading, sentence) in cases {
            let guardrail = Guardrail {
                metric: metric.clone(),
                window: Duration::from_secs(120),
            };
            let verdict = judge(&guardrail, Some(reading), 100, LIVE);
            assert!(verdict.finding.is_breached(), "{verdict}");
            assert_eq!(verdict.to_string(), *sentence);
        }
    }

    #[test]
    fn no_evidence_and_not_judged() {
        let traffic = |candidate, stable| Reading::Traffic { candidate, stable };
        let full = Scene {
            shadowing: false,
            live: Weight::FULL,
        };
        let vs_stable = Metric::ErrorRateVsStable { max: rate("0.5%") };
        let cases: &[(Metric, Option<Reading>, Scene, &str)] = &[
            (
                Metric::ErrorRate { max: rate("1%") },
                Some(traffic(counts(37, 0), counts(5000, 0))),
                LIVE,
                "error rate: no evidence over 1m (only 37 requests, need 100)",
            ),
            (
                vs_stable.clone(),
                Some(traffic(counts(500, 0), counts(12, 0))),
                LIVE,
                "error rate vs stable: no evidence over 1m (only 12 stable requests, need 100)",
            ),
            (
                vs_stable,
                Some(traffic(counts(500, 0), counts(0, 0))),
                full,
                "error rate vs stable: not judged \
                 (stable has no live traffic while the candidate has 100%)",
            ),
            (
                Metric::P99Latency {
                    max: Duration::from_millis(1200),
                },
                Some(traffic(
                    WindowCounts {
                        requests: 500,
                        errors: 0,
                        p99: None,
                    },
                    counts(0, 0),
                )),
                LIVE,
                "p99 latency: no evidence over 1m (no latencies were recorded)",
            ),
            (
                Metric::ShadowMismatchRate { max: rate("1%") },
                Some(Reading::Mirror(MirrorCounts {
                    mirrored: 500,
                    mismatched: 0,
                })),
                LIVE,
                "shadow mismatch rate: not judged (there is no shadow traffic in this phase)",
            ),
            (
                Metric::External {
                    name: "checkout".to_string(),
                    min: Some(0.95),
                    max: None,
                },
                Some(Reading::External(Some(f64::NAN))),
                LIVE,
                "checkout: no evidence over 1m (the source returned NaN)",
            ),
            (
                Metric::ErrorRate { max: rate("1%") },
                Some(Reading::External(Some(1.0))),
                LIVE,
                "error rate: no evidence over 1m \
                 (the reading given is not the kind this metric needs)",
            ),
            (
                Metric::ErrorRate { max: rate("1%") },
                None,
                LIVE,
                "error rate: no evidence over 1m (nothing was measured)",
            ),
        ];
        for (metric, reading, scene, sentence) in cases {
            let guardrail = Guardrail {
                metric: metric.clone(),
                window: Duration::from_secs(60),
            };
            let verdict = judge(&guardrail, reading.as_ref(), 100, *scene);
            assert_eq!(verdict.to_string(), *sentence);
        }
    }
}
