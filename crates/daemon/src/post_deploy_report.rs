//! The report at the end of a deploy: the version that now serves, from the
//! proxy's memory of it, against the app's traffic in the same clock hour
//! (UTC) of each of the previous days, from the minute rollups. A day
//! without traffic in that hour is left out of the baseline rather than
//! counted as an idle hour, so a fresh install compares with what it has.

use std::time::Duration;

use baton_api::{BASELINE_DAYS, PostDeployReport, TrafficSummary};
use baton_state::{StateError, Store};
use baton_telemetry::rollup::{MINUTE_MS, MinuteRollup};
use baton_telemetry::{LatencyBuckets, RETENTION};
use tokio::time::Instant;

use crate::app_host::AppHost;
use crate::rollup_history;
use crate::route_manager::RouteManager;

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;

/// One earlier hour the baseline reads: its minutes start in
/// `[from_ms, until_ms)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HourSpan {
    /// The hour's first millisecond, unix epoch.
    pub from_ms: u64,
    /// The next hour's first millisecond.
    pub until_ms: u64,
}

/// The clock hour (UTC) of `now_ms`, and that hour on each of the
/// [`BASELINE_DAYS`] days before, newest first.
pub fn baseline_hours(now_ms: u64) -> (u8, Vec<HourSpan>) {
    let hour_start = now_ms - now_ms % HOUR_MS;
    let hour_of_day = u8::try_from((hour_start % DAY_MS) / HOUR_MS).unwrap_or(0);
    let spans = (1..=u64::from(BASELINE_DAYS))
        .filter_map(|days| hour_start.checked_sub(days * DAY_MS))
        .map(|from_ms| HourSpan {
            from_ms,
            until_ms: from_ms + HOUR_MS,
        })
        .collect();
    (hour_of_day, spans)
}

/// The baseline over `minutes` (any order, any version): the days among
/// `spans` that had traffic, and their traffic added up, rates over as many
/// whole hours. `None` when no span had a request.
pub fn baseline(spans: &[HourSpan], minutes: &[MinuteRollup]) -> (u32, Option<TrafficSummary>) {
    let mut days = 0u32;
    let (mut requests, mut errors) = (0u64, 0u64);
    let mut latency = LatencyBuckets::default();
    for span in spans {
        let mut any = false;
        for minute in minutes
            .iter()
            .filter(|minute| (span.from_ms..span.until_ms).contains(&minute.minute_ms))
        {
            any |= minute.requests > 0;
            requests = requests.saturating_add(minute.requests);
            errors = errors.saturating_add(minute.errors);
            latency.merge(&minute.latency);
        }
        days += u32::from(any);
    }
    let summary = (requests > 0).then(|| {
        TrafficSummary::from_buckets(requests, errors, &latency, u64::from(days) * HOUR_MS)
    });
    (days, summary)
}

/// The report on `release` of `app` at `now_ms`; `None` when the version
/// is not in the route or the rollups cannot be read (a warning says why).
pub async fn read(
    host: &AppHost,
    app: &str,
    release: &str,
    now_ms: u64,
) -> Option<PostDeployReport> {
    let mut report = new_version(&host.routes, app, release)?;
    let (hour, spans) = baseline_hours(now_ms);
    let (name, hours) = (app.to_string(), spans.clone());
    let minutes = host
        .on_store(move |store| baseline_minutes(store, &name, &hours))
        .await;
    let minutes = match minutes {
        Ok(minutes) => minutes,
        Err(error) => {
            tracing::warn!(app, %error, "Reading the baseline of the deploy report failed");
            return None;
        }
    };
    let (days, baseline) = baseline(&spans, &minutes);
    report.baseline_hour_utc = hour;
    report.baseline_days = days;
    report.baseline = baseline;
    Some(report)
}

/// `release`'s traffic from the proxy's memory, and every version's over
/// the last minute; no baseline yet.
fn new_version(routes: &RouteManager, app: &str, release: &str) -> Option<PostDeployReport> {
    let now = Instant::now().into_std();
    let versions = routes.versions(app);
    let new = versions
        .iter()
        .find(|routed| routed.version.label() == release)?;
    let snapshot = new.version.stats().snapshot(now, RETENTION);
    let last_minute = Duration::from_millis(MINUTE_MS);
    let (mut app_requests, mut app_window_ms) = (0u64, 0u64);
    for routed in &versions {
        let minute = routed.version.stats().snapshot(now, last_minute);
        app_requests = app_requests.saturating_add(minute.counts.requests);
        app_window_ms = app_window_ms.max(minute.window_ms);
    }
    Some(PostDeployReport {
        version: release.to_string(),
        observed_ms: snapshot.window_ms,
        new_version: TrafficSummary::from(&snapshot),
        app_req_per_s: if app_window_ms == 0 {
            0.0
        } else {
            app_requests as f64 * 1000.0 / app_window_ms as f64
        },
        ..PostDeployReport::default()
    })
}

/// The minutes of `app` that start in one of `spans`, every version.
fn baseline_minutes(
    store: &Store,
    app: &str,
    spans: &[HourSpan],
) -> Result<Vec<MinuteRollup>, StateError> {
    let mut minutes = Vec::new();
    for span in spans {
        // A minute's counts are read just after it ends: allow for that
        // when asking the store; `baseline` keeps the hour's minutes only.
        let until_ms = span.until_ms + 2 * MINUTE_MS;
        let read = rollup_history::read_minutes_until(store, app, span.from_ms, until_ms)?;
        minutes.extend(read.into_iter().map(|(_, minute)| minute));
    }
    Ok(minutes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(minute_ms: u64, requests: u64, errors: u64, micros: u64) -> MinuteRollup {
        let mut latency = LatencyBuckets::default();
        latency.add(micros, requests);
        MinuteRollup {
            minute_ms,
            until_ms: minute_ms + MINUTE_MS,
            requests,
            errors,
            latency,
        }
    }

    #[test]
    fn the_baseline_is_this_clock_hour_on_each_of_the_seven_days_before() {
        // 2026-11-22 14:37:12 UTC.
        let now_ms = 1_795_358_232_000;
        let (hour, spans) = baseline_hours(now_ms);
        assert_eq!(hour, 14);
        assert_eq!(spans.len(), 7);
        let today = now_ms - now_ms % HOUR_MS;
        assert_eq!(spans[0].from_ms, today - DAY_MS);
        assert_eq!(spans[6].from_ms, today - 7 * DAY_MS);
        assert!(spans.iter().all(|s| s.until_ms - s.from_ms == HOUR_MS));
    }

    #[test]
    fn days_without_traffic_are_left_out_and_other_hours_never_count() {
        let now_ms = 20 * DAY_MS + 14 * HOUR_MS + 600_000;
        let (_, spans) = baseline_hours(now_ms);
        let yesterday = spans[0].from_ms;
        let three_days_ago = spans[2].from_ms;
        let minutes = [
            minute(yesterday, 3_000, 30, 10_000),
            minute(yesterday + 59 * MINUTE_MS, 600, 0, 10_000),
            minute(three_days_ago + 30 * MINUTE_MS, 3_600, 6, 40_000),
            // The minute after the hour, and the hour before: not this hour.
            minute(yesterday + HOUR_MS, 99_999, 99_999, 900_000),
            minute(yesterday - MINUTE_MS, 99_999, 99_999, 900_000),
        ];
        let (days, summary) = baseline(&spans, &minutes);
        assert_eq!(days, 2);
        let summary = summary.expect("a baseline");
        assert_eq!(summary.requests, 7_200);
        assert!((summary.req_per_s - 1.0).abs() < 1e-9, "{summary:?}");
        assert!((summary.error_rate - 36.0 / 7_200.0).abs() < 1e-12);
        // Half the requests took 10 ms, half 40 ms.
        assert!(
            summary.p50_ms > 7.5 && summary.p50_ms <= 10.0,
            "{summary:?}"
        );
        // Quantiles come from the fixed buckets: within the bucket of 40 ms.
        assert!(
            summary.p99_ms > 30.0 && summary.p99_ms <= 50.0,
            "{summary:?}"
        );
    }

    #[test]
    fn no_traffic_on_any_earlier_day_is_no_baseline() {
        let (_, spans) = baseline_hours(30 * DAY_MS);
        assert_eq!(baseline(&spans, &[]), (0, None));
        let idle = [minute(spans[1].from_ms, 0, 0, 1_000)];
        assert_eq!(baseline(&spans, &idle), (0, None));
    }
}
