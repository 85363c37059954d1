//! The traffic report printed at the end of `baton deploy` and
//! `baton rollback` (and again by `baton history --deploy ID`): the new
//! version's numbers, the same hour of the previous days, and how they
//! compare.

use std::fmt::Write as _;

use baton_api::{BASELINE_DAYS, PostDeployReport, TrafficSummary};

use crate::app_command::format_ms;
use crate::status_command::{errors, latency};

/// Lines indented under the stage column of the deploy's output.
const INDENT: &str = "               ";

/// The report as three lines (two without a baseline).
pub fn render(report: &PostDeployReport) -> String {
    let mut out = String::new();
    let new = &report.new_version;
    let _ = write!(out, "{:<14} {}: ", "traffic", report.version);
    if new.requests == 0 {
        let _ = writeln!(out, "no requests yet in {}", format_ms(report.observed_ms));
    } else {
        let _ = writeln!(
            out,
            "{} requests in {} ({:.1} req/s), {}",
            new.requests,
            format_ms(report.observed_ms),
            new.req_per_s,
            figures(new)
        );
    }
    let hour = format!(
        "{:02}:00-{:02}:00 UTC",
        report.baseline_hour_utc,
        (report.baseline_hour_utc + 1) % 24
    );
    let Some(baseline) = &report.baseline else {
        let _ = writeln!(
            out,
            "{INDENT}baseline: none, no traffic in {hour} on the previous {BASELINE_DAYS} days"
        );
        return out;
    };
    let _ = writeln!(
        out,
        "{INDENT}baseline {hour}, {} of the previous {BASELINE_DAYS} days: {} requests ({:.1} req/s), {}",
        report.baseline_days,
        baseline.requests,
        baseline.req_per_s,
        figures(baseline)
    );
    let mut comparison = Vec::new();
    if let Some(ratio) = report.p99_ratio() {
        comparison.push(format!("p99 {ratio:.2}x baseline"));
    }
    if let Some(points) = report.error_rate_change_points() {
        comparison.push(format!("error rate {points:+.2} points"));
    }
    if let Some(ratio) = report.traffic_ratio() {
        comparison.push(format!(
            "traffic {ratio:.2}x baseline ({:.1} vs {:.1} req/s)",
            report.app_req_per_s, baseline.req_per_s
        ));
    }
    if !comparison.is_empty() {
        let _ = writeln!(out, "{INDENT}{}", comparison.join(", "));
    }
    out
}

/// `errors 0.10%, p50 1.2ms, p95 3.0ms, p99 4.8ms`.
fn figures(traffic: &TrafficSummary) -> String {
    format!(
        "errors {}, p50 {}, p95 {}, p99 {}",
        errors(traffic),
        latency(traffic, traffic.p50_ms),
        latency(traffic, traffic.p95_ms),
        latency(traffic, traffic.p99_ms)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traffic(requests: u64, req_per_s: f64, error_rate: f64, p99_ms: f64) -> TrafficSummary {
        TrafficSummary {
            requests,
            req_per_s,
            error_rate,
            p50_ms: 1.25,
            p95_ms: 3.0,
            p99_ms,
        }
    }

    fn report() -> PostDeployReport {
        PostDeployReport {
            version: "20261122T143000Z-3f9a2c1".to_string(),
            observed_ms: 42_000,
            new_version: traffic(3_412, 81.2, 0.001, 6.0),
            app_req_per_s: 80.0,
            baseline_hour_utc: 23,
            baseline_days: 5,
            baseline: Some(traffic(720_000, 40.0, 0.0005, 4.0)),
        }
    }

    #[test]
    fn the_new_version_is_set_against_the_same_hour_before() {
        let text = render(&report());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "traffic        20261122T143000Z-3f9a2c1: 3412 requests in 42.0 s (81.2 req/s), \
                 errors 0.10%, p50 1.2ms, p95 3.0ms, p99 6.0ms",
                "               baseline 23:00-00:00 UTC, 5 of the previous 7 days: 720000 \
                 requests (40.0 req/s), errors 0.05%, p50 1.2ms, p95 3.0ms, p99 4.0ms",
                "               p99 1.50x baseline, error rate +0.05 points, traffic 2.00x \
                 baseline (80.0 vs 40.0 req/s)",
            ]
        );
    }

    #[test]
    fn without_history_or_requests_it_says_so() {
        let mut quiet = report();
        quiet.baseline = None;
        quiet.baseline_days = 0;
        quiet.new_version = TrafficSummary::default();
        let text = render(&quiet);
        assert_eq!(
            text,
            "traffic        20261122T143000Z-3f9a2c1: no requests yet in 42.0 s\n               \
             baseline: none, no traffic in 23:00-00:00 UTC on the previous 7 days\n"
        );
    }
}
