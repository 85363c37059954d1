//! The traffic report at the end of a deploy: how the version that now
//! serves behaves, against what the app usually does in this hour.

use serde::{Deserialize, Serialize};

use crate::TrafficSummary;

/// How many earlier days the baseline reaches back.
pub const BASELINE_DAYS: u32 = 7;

/// The new version's traffic since it took requests, beside the app's
/// traffic in the same clock hour (UTC) of the previous
/// [`BASELINE_DAYS`] days.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PostDeployReport {
    /// The version (release) the report is about.
    pub version: String,
    /// The span of its traffic the figures cover, milliseconds.
    pub observed_ms: u64,
    /// Its requests, error rate and latency over `observed_ms`.
    pub new_version: TrafficSummary,
    /// Every version of the app over the last five minutes, requests per
    /// second: the volume compared with the baseline's.
    pub app_req_per_s: f64,
    /// The clock hour (UTC, 0–23) the baseline is read from.
    pub baseline_hour_utc: u8,
    /// How many of the previous days had traffic in that hour.
    pub baseline_days: u32,
    /// Every version of the app in that hour on those days; `None` when
    /// none had any traffic.
    pub baseline: Option<TrafficSummary>,
}

impl PostDeployReport {
    /// The new version's p99 as a multiple of the baseline's; `None`
    /// without a baseline or requests on either side.
    pub fn p99_ratio(&self) -> Option<f64> {
        let baseline = self.baseline.as_ref()?;
        ratio(self.new_version.p99_ms, baseline.p99_ms)
            .filter(|_| self.new_version.requests > 0 && baseline.requests > 0)
    }

    /// The app's request rate now as a multiple of the baseline's.
    pub fn traffic_ratio(&self) -> Option<f64> {
        ratio(self.app_req_per_s, self.baseline.as_ref()?.req_per_s)
    }

    /// The new version's error rate minus the baseline's, in percentage
    /// points.
    pub fn error_rate_change_points(&self) -> Option<f64> {
        let baseline = self.baseline.as_ref()?;
        (self.new_version.requests > 0)
            .then_some((self.new_version.error_rate - baseline.error_rate) * 100.0)
    }
}

fn ratio(value: f64, base: f64) -> Option<f64> {
    (base > 0.0).then(|| value / base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traffic(requests: u64, req_per_s: f64, error_rate: f64, p99_ms: f64) -> TrafficSummary {
        TrafficSummary {
            requests,
            req_per_s,
            error_rate,
            p99_ms,
            ..TrafficSummary::default()
        }
    }

    #[test]
    fn comparisons_need_a_baseline_with_traffic() {
        let mut report = PostDeployReport {
            new_version: traffic(100, 10.0, 0.02, 30.0),
            app_req_per_s: 12.0,
            ..PostDeployReport::default()
        };
        assert_eq!(report.p99_ratio(), None);
        assert_eq!(report.traffic_ratio(), None);
        assert_eq!(report.error_rate_change_points(), None);
        report.baseline = Some(traffic(36_000, 8.0, 0.005, 20.0));
        assert_eq!(report.p99_ratio(), Some(1.5));
        assert_eq!(report.traffic_ratio(), Some(1.5));
        let change = report.error_rate_change_points().expect("change");
        assert!((change - 1.5).abs() < 1e-9, "{change}");
        report.new_version = TrafficSummary::default();
        assert_eq!(report.p99_ratio(), None);
        assert_eq!(report.error_rate_change_points(), None);
    }
}
