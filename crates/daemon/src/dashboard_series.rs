//! The dashboard's charts as plain data: per version, points of request
//! rate, error rate and p99 latency over time, and the markers of deploys
//! and rollbacks drawn across them. Two resolutions: a point a minute from
//! the stored rollups (plus the minute so far), and a point per 5-second
//! slice from the proxy's memory, so a canary's share visibly moves within
//! seconds. Pure: the readings come in, the series go out.

use std::collections::BTreeMap;

use baton_api::{DeployKind, DeployOutcomeKind, HistoryEntry};
use baton_telemetry::WindowSnapshot;
use baton_telemetry::rollup::{MINUTE_MS, MinuteRollup};
use serde::Serialize;

/// One point of one version's chart.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Point {
    /// The start of the span it covers, Unix ms.
    pub t_ms: u64,
    /// Requests that finished in the span.
    pub requests: u64,
    /// Requests per second over the span.
    pub rps: f64,
    /// Share of those requests that failed on the upstream's side.
    pub error_rate: f64,
    /// 99th percentile latency in ms (0 without requests).
    pub p99_ms: f64,
}

/// One version's points, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VersionSeries {
    /// The version's label.
    pub version: String,
    /// Its points.
    pub points: Vec<Point>,
}

/// A chart's data: every version's points at one resolution.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Series {
    /// The span of one point, ms.
    pub step_ms: u64,
    /// The versions, by label.
    pub versions: Vec<VersionSeries>,
}

/// A moment worth a line across the charts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Marker {
    /// When, Unix ms.
    pub t_ms: u64,
    /// `deploy` or `rollback` (a run started), `finished` (it succeeded),
    /// `failed` (it ended with the old version serving: an aborted or
    /// rolled-back canary), `interrupted` (the daemon stopped under it).
    pub kind: &'static str,
    /// The run's number in the history.
    pub deploy_id: i64,
    /// What happened, for the tooltip.
    pub text: String,
}

/// Per-minute series of the `rollups` (each with its version) whose minute
/// starts at or after `from_ms`, as of `now_ms`. Rollups of the same
/// version and minute add up (a daemon restarted mid-minute leaves two);
/// minutes a version saw no request between its first and last are zero.
/// The minute `now_ms` is in counts as long as it has lasted.
pub fn minute_series(
    rollups: impl IntoIterator<Item = (String, MinuteRollup)>,
    from_ms: u64,
    now_ms: u64,
) -> Series {
    let mut merged: BTreeMap<String, BTreeMap<u64, MinuteRollup>> = BTreeMap::new();
    for (version, rollup) in rollups {
        if rollup.minute_ms < from_ms || rollup.minute_ms > now_ms {
            continue;
        }
        let minute = merged
            .entry(version)
            .or_default()
            .entry(rollup.minute_ms)
            .or_insert_with(|| MinuteRollup {
                minute_ms: rollup.minute_ms,
                ..MinuteRollup::default()
            });
        minute.requests = minute.requests.saturating_add(rollup.requests);
        minute.errors = minute.errors.saturating_add(rollup.errors);
        minute.latency.merge(&rollup.latency);
    }
    let versions = merged
        .into_iter()
        .map(|(version, minutes)| {
            let (Some(first), Some(last)) = (
                minutes.keys().next().copied(),
                minutes.keys().next_back().copied(),
            ) else {
                return VersionSeries {
                    version,
                    points: Vec::new(),
                };
            };
            let points = (first..=last)
                .step_by(MINUTE_MS as usize)
                .map(|minute_ms| {
                    let span_ms = now_ms.saturating_sub(minute_ms).clamp(1_000, MINUTE_MS);
                    match minutes.get(&minute_ms) {
                        Some(rollup) => point(
                            minute_ms,
                            span_ms,
                            rollup.requests,
                            rollup.errors,
                            rollup
                                .latency
                                .quantile(0.99)
                                .map_or(0.0, |p99| p99.as_secs_f64() * 1000.0),
                        ),
                        None => point(minute_ms, span_ms, 0, 0, 0.0),
                    }
                })
                .collect();
            VersionSeries { version, points }
        })
        .collect();
    Series {
        step_ms: MINUTE_MS,
        versions,
    }
}

/// Per-slice series of each version's `slices` (slice start in Unix ms,
/// its snapshot), as the proxy's memory holds them.
pub fn slice_series(
    slices: impl IntoIterator<Item = (String, Vec<(u64, WindowSnapshot)>)>,
    step_ms: u64,
) -> Series {
    let versions = slices
        .into_iter()
        .map(|(version, slices)| VersionSeries {
            version,
            points: slices
                .into_iter()
                .map(|(t_ms, snapshot)| {
                    point(
                        t_ms,
                        snapshot.window_ms.max(1),
                        snapshot.counts.requests,
                        snapshot.counts.errors(),
                        snapshot.p99_ms,
                    )
                })
                .collect(),
        })
        .collect();
    Series { step_ms, versions }
}

fn point(t_ms: u64, span_ms: u64, requests: u64, errors: u64, p99_ms: f64) -> Point {
    Point {
        t_ms,
        requests,
        rps: requests as f64 * 1000.0 / span_ms as f64,
        error_rate: if requests == 0 {
            0.0
        } else {
            errors as f64 / requests as f64
        },
        p99_ms,
    }
}

/// The markers of the runs in `history` that fall at or after `from_ms`:
/// each run's start, and its end once it has one. Oldest first.
pub fn markers(history: &[HistoryEntry], from_ms: u64) -> Vec<Marker> {
    let mut markers: Vec<Marker> = history
        .iter()
        .flat_map(|entry| {
            let kind = match entry.kind {
                DeployKind::Deploy => "deploy",
                DeployKind::Rollback => "rollback",
            };
            let release = if entry.release.is_empty() {
                String::new()
            } else {
                format!(" of {}", entry.release)
            };
            let start = Marker {
                t_ms: entry.started_at_ms,
                kind,
                deploy_id: entry.id,
                text: format!("{kind} #{}{release} started by {}", entry.id, entry.user),
            };
            let end = entry.duration_ms.and_then(|duration| {
                let (kind, what) = match entry.outcome {
                    DeployOutcomeKind::Succeeded => ("finished", "finished"),
                    DeployOutcomeKind::Failed => ("failed", "failed; the old version serves"),
                    DeployOutcomeKind::Interrupted => ("interrupted", "interrupted"),
                    DeployOutcomeKind::Running => return None,
                };
                let reason = entry
                    .reason
                    .as_deref()
                    .map(|reason| format!(": {reason}"))
                    .unwrap_or_default();
                Some(Marker {
                    t_ms: entry.started_at_ms.saturating_add(duration),
                    kind,
                    deploy_id: entry.id,
                    text: format!("#{} {what}{reason}", entry.id),
                })
            });
            std::iter::once(start).chain(end)
        })
        .filter(|marker| marker.t_ms >= from_ms)
        .collect();
    markers.sort_by_key(|marker| (marker.t_ms, marker.deploy_id));
    markers
}

#[cfg(test)]
mod tests {
    use super::*;

    use baton_telemetry::{LatencyBuckets, Totals};

    const T0: u64 = 1_767_261_600_000;

    fn rollup(minute: u64, requests: u64, errors: u64, micros: u64) -> MinuteRollup {
        let mut latency = LatencyBuckets::default();
        latency.add(micros, requests);
        MinuteRollup {
            minute_ms: T0 + minute * MINUTE_MS,
            until_ms: T0 + (minute + 1) * MINUTE_MS,
            requests,
            errors,
            latency,
        }
    }

    #[test]
    fn minutes_add_up_per_version_and_gaps_are_zero() {
        let series = minute_series(
            [
                ("v1".to_string(), rollup(0, 600, 6, 2_000)),
                ("v1".to_string(), rollup(2, 300, 0, 2_000)),
                // A restart mid-minute left two rollups of minute 2.
                ("v1".to_string(), rollup(2, 300, 3, 2_000)),
                ("v2".to_string(), rollup(2, 60, 0, 50_000)),
                // Before the chart's start: left out.
                ("v0".to_string(), rollup(0, 1, 0, 1_000)),
            ]
            .into_iter()
            .map(|(version, mut rollup)| {
                if version == "v0" {
                    rollup.minute_ms -= 10 * MINUTE_MS;
                }
                (version, rollup)
            }),
            T0,
            T0 + 10 * MINUTE_MS,
        );
        assert_eq!(series.step_ms, MINUTE_MS);
        let labels: Vec<&str> = series.versions.iter().map(|v| v.version.as_str()).collect();
        assert_eq!(labels, ["v1", "v2"]);
        let v1 = &series.versions[0].points;
        let requests: Vec<u64> = v1.iter().map(|p| p.requests).collect();
        assert_eq!(requests, [600, 0, 600]);
        assert!((v1[0].rps - 10.0).abs() < 1e-9);
        assert!((v1[0].error_rate - 0.01).abs() < 1e-9);
        assert!((v1[2].error_rate - 0.005).abs() < 1e-9);
        assert_eq!(v1[1].t_ms, T0 + MINUTE_MS);
        let v2 = &series.versions[1].points;
        assert_eq!(v2.len(), 1);
        assert!(
            v2[0].p99_ms >= 40.0 && v2[0].p99_ms <= 60.0,
            "{}",
            v2[0].p99_ms
        );
    }

    #[test]
    fn the_minute_so_far_is_a_rate_over_what_has_passed() {
        let series = minute_series(
            [("v1".to_string(), rollup(0, 150, 0, 1_000))],
            T0,
            T0 + 15_000,
        );
        assert!((series.versions[0].points[0].rps - 10.0).abs() < 1e-9);
    }

    #[test]
    fn slices_become_points_with_their_own_span() {
        let snapshot = |requests, errors, window_ms| WindowSnapshot {
            window_ms,
            counts: Totals {
                requests,
                status_5xx: errors,
                ..Totals::default()
            },
            p99_ms: 3.0,
            ..WindowSnapshot::default()
        };
        let series = slice_series(
            [(
                "v2".to_string(),
                vec![
                    (T0, snapshot(50, 5, 5_000)),
                    (T0 + 5_000, snapshot(10, 0, 1_000)),
                ],
            )],
            5_000,
        );
        let points = &series.versions[0].points;
        assert!((points[0].rps - 10.0).abs() < 1e-9);
        assert!((points[0].error_rate - 0.1).abs() < 1e-9);
        assert!((points[1].rps - 10.0).abs() < 1e-9);
        assert_eq!(points[1].t_ms, T0 + 5_000);
        assert_eq!(points[1].p99_ms, 3.0);
    }

    /// A history row as the wire has it: fields the markers do not read
    /// are left to their defaults.
    fn entry(id: i64, kind: DeployKind, outcome: DeployOutcomeKind, started: u64) -> HistoryEntry {
        serde_json::from_value(serde_json::json!({
            "id": id,
            "app": "web",
            "kind": kind,
            "release": format!("r{id}"),
            "previous_release": null,
            "started_at_ms": started,
            "duration_ms": (outcome != DeployOutcomeKind::Running).then_some(30_000),
            "user": "ann",
            "source": "dir",
            "outcome": outcome,
            "reason": (outcome == DeployOutcomeKind::Failed).then_some("aborted by ann"),
            "stages": [],
        }))
        .expect("a history entry")
    }

    #[test]
    fn each_run_marks_its_start_and_its_end() {
        let history = [
            entry(
                3,
                DeployKind::Deploy,
                DeployOutcomeKind::Running,
                T0 + 200_000,
            ),
            entry(
                2,
                DeployKind::Deploy,
                DeployOutcomeKind::Failed,
                T0 + 100_000,
            ),
            entry(1, DeployKind::Rollback, DeployOutcomeKind::Succeeded, T0),
            entry(
                0,
                DeployKind::Deploy,
                DeployOutcomeKind::Succeeded,
                T0 - 600_000,
            ),
        ];
        let markers = markers(&history, T0);
        let kinds: Vec<(i64, &str)> = markers.iter().map(|m| (m.deploy_id, m.kind)).collect();
        assert_eq!(
            kinds,
            [
                (1, "rollback"),
                (1, "finished"),
                (2, "deploy"),
                (2, "failed"),
                (3, "deploy"),
            ]
        );
        assert_eq!(markers[3].t_ms, T0 + 130_000);
        assert!(
            markers[3].text.contains("aborted by ann"),
            "{}",
            markers[3].text
        );
        assert!(markers[2].text.contains("r2"), "{}", markers[2].text);
    }
}
