//! The Prometheus exposition of `/metrics` and `baton metrics`: what the
//! daemon gathered, as plain data, rendered in one place by
//! `prometheus-client` in the OpenMetrics text format (which Prometheus
//! scrapes natively and which keeps the classic text format's lines).
//!
//! Names follow Prometheus's conventions: a `baton_` prefix, the unit in the
//! name (`_seconds`, `_bytes`, `_ratio`), `_total` on counters. Every value
//! is read at scrape time from counters the daemon keeps anyway, so nothing
//! here is on the proxy's hot path.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use crate::latency_buckets::{BOUNDS_MICROS, LatencyBuckets};
use crate::seconds_histogram::SecondsHistogram;
use crate::totals::Totals;

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Everything the daemon exposes, gathered at one scrape.
#[derive(Clone, Debug, Default)]
pub struct Exposition {
    /// One per (app, version) the proxy routes, drains, or retired within
    /// the last hour (so that counters do not vanish the moment a version
    /// leaves).
    pub versions: Vec<VersionSeries>,
    /// One per upstream target of those versions.
    pub targets: Vec<TargetSeries>,
    /// Finished deploys per app and outcome.
    pub deploys: Vec<DeploySeries>,
    /// Durations of finished deploys per app and outcome.
    pub deploy_durations: Vec<DeployDurationSeries>,
    /// Rollbacks per app and reason.
    pub rollbacks: Vec<RollbackSeries>,
    /// Deploy notifications per app, target and outcome.
    pub notifications: Vec<NotificationSeries>,
    /// The daemon and every supervised app process.
    pub processes: Vec<ProcessSeries>,
    /// Flag evaluations per flag, source and result.
    pub flag_evaluations: Vec<FlagEvaluationSeries>,
}

/// The request numbers of one version of one app.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VersionSeries {
    /// The app (the proxy's service name).
    pub app: String,
    /// The version's label (the release id for deployed apps).
    pub version: String,
    /// Every request the proxy answered for it since it started.
    pub totals: Totals,
    /// Their latencies, cumulative since it started.
    pub latency: LatencyBuckets,
    /// Requests in flight now; `None` for a version no longer routed.
    pub in_flight: Option<u64>,
    /// Its share (0..=1) of the requests the route's split places; `None`
    /// for a version draining or retired.
    pub weight_ratio: Option<f64>,
}

impl VersionSeries {
    /// The same key as `other`: one (app, version) label set.
    pub fn same_series(&self, other: &VersionSeries) -> bool {
        (&self.app, &self.version) == (&other.app, &other.version)
    }

    /// Adds `other`, a version with the same labels (one that left the route
    /// within the hour, or a second instance during a quick rollback), so
    /// that the label set is exposed once and its counters never go down.
    pub fn merge(&mut self, other: &VersionSeries) {
        self.totals.merge(&other.totals);
        self.latency.merge(&other.latency);
        self.in_flight = add_gauges(self.in_flight, other.in_flight);
        self.weight_ratio = add_gauges(self.weight_ratio, other.weight_ratio);
    }
}

/// One upstream target of a version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetSeries {
    /// The app.
    pub app: String,
    /// The version the target serves.
    pub version: String,
    /// `host:port` as configured.
    pub target: String,
    /// Whether it passes its health checks; `None` for a retired version,
    /// whose targets are no longer checked.
    pub healthy: Option<bool>,
    /// Connection attempts to it that failed (refused, timed out, broken
    /// handshake), retried ones included.
    pub connect_errors: u64,
}

impl TargetSeries {
    /// The same key as `other`: one (app, version, target) label set.
    pub fn same_series(&self, other: &TargetSeries) -> bool {
        (&self.app, &self.version, &self.target) == (&other.app, &other.version, &other.target)
    }

    /// Adds `other`, the same target of another instance of the version:
    /// errors add up, and it is healthy if either instance finds it so.
    pub fn merge(&mut self, other: &TargetSeries) {
        self.connect_errors = self.connect_errors.saturating_add(other.connect_errors);
        self.healthy = match (self.healthy, other.healthy) {
            (Some(mine), Some(theirs)) => Some(mine || theirs),
            (mine, theirs) => mine.or(theirs),
        };
    }
}

/// Sums two gauges of which either may be absent (`None` only if both are).
fn add_gauges<T: std::ops::Add<Output = T>>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

/// How many of an app's deploys ended one way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeploySeries {
    /// The app.
    pub app: String,
    /// `succeeded`, `failed` or `interrupted`.
    pub outcome: String,
    /// How many.
    pub count: u64,
}

/// How long an app's finished deploys of one outcome took.
#[derive(Clone, Debug, PartialEq)]
pub struct DeployDurationSeries {
    /// The app.
    pub app: String,
    /// `succeeded`, `failed` or `interrupted`.
    pub outcome: String,
    /// Their durations.
    pub durations: SecondsHistogram,
}

/// How often an app went back to a previous version for one reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RollbackSeries {
    /// The app.
    pub app: String,
    /// Why, in the daemon's words (`guardrail`, `abort`, `manual`, …).
    pub reason: String,
    /// How many times.
    pub count: u64,
}

/// How many deploy notifications to one target ended one way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotificationSeries {
    /// The app.
    pub app: String,
    /// The target: `webhook <url>` or `command "<command>"`.
    pub target: String,
    /// `delivered`, `failed` (every try failed) or `dropped` (its queue
    /// was full).
    pub outcome: String,
    /// How many.
    pub count: u64,
}

/// How often one flag was evaluated by one source with one result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlagEvaluationSeries {
    /// The flag.
    pub flag: String,
    /// `proxy` (`X-Baton-Flags`) or `ofrep`.
    pub source: String,
    /// `on` or `off`.
    pub result: String,
    /// How many times since the daemon started.
    pub count: u64,
}

/// CPU and memory of one process.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessSeries {
    /// The app; empty for the daemon itself.
    pub app: String,
    /// `web`, a worker's name, or `daemon`.
    pub role: String,
    /// Which of the role's processes, from 1.
    pub index: u32,
    /// The release it runs; empty for the daemon.
    pub version: String,
    /// User plus system CPU time it used.
    pub cpu_seconds: f64,
    /// Its resident memory.
    pub resident_memory_bytes: u64,
}

/// The exposition as OpenMetrics text, `# EOF` included.
pub fn render(exposition: Exposition) -> String {
    let mut registry = Registry::with_prefix("baton");
    registry.register_collector(Box::new(ExpositionCollector(exposition)));
    let mut text = String::new();
    // Writing to a String cannot fail, and every value above is plain.
    if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        text.push_str(&format!("# encoding the metrics failed: {error}\n# EOF\n"));
    }
    text
}

/// Hands the gathered data to the registry's encoder at scrape time.
#[derive(Debug)]
struct ExpositionCollector(Exposition);

/// The label value of each status class counted in [`Totals`], in the
/// order of its fields.
const STATUS_CLASSES: [&str; 8] = [
    "1xx",
    "2xx",
    "3xx",
    "4xx",
    "5xx",
    "connect_failure",
    "timeout",
    "upstream_error",
];

fn by_class(totals: &Totals) -> [u64; 8] {
    [
        totals.status_1xx,
        totals.status_2xx,
        totals.status_3xx,
        totals.status_4xx,
        totals.status_5xx,
        totals.connect_failures,
        totals.timeouts,
        totals.upstream_errors,
    ]
}

type Labels<'a, const N: usize> = [(&'static str, &'a str); N];

impl Collector for ExpositionCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let e = &self.0;
        let seconds = Unit::Seconds;
        let bytes = Unit::Bytes;
        let ratio = Unit::Other("ratio".to_string());

        let mut family = encoder.encode_descriptor(
            "http_requests",
            "Requests the proxy answered for a version since it started, by status class of the upstream's answer (connect_failure, timeout and upstream_error when there was none; other for codes outside 100-599).",
            None,
            MetricType::Counter,
        )?;
        for series in &e.versions {
            let classes = by_class(&series.totals);
            for (class, count) in STATUS_CLASSES.iter().zip(classes) {
                let labels = [
                    ("app", series.app.as_str()),
                    ("version", &series.version),
                    ("status_class", class),
                ];
                counter(&mut family, &labels, count)?;
            }
            let other = series
                .totals
                .requests
                .saturating_sub(classes.iter().sum::<u64>());
            if other > 0 {
                let labels = [
                    ("app", series.app.as_str()),
                    ("version", &series.version),
                    ("status_class", "other"),
                ];
                counter(&mut family, &labels, other)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "http_request_duration",
            "Time from a request's arrival to the end of the upstream's answer, per version, since it started.",
            Some(&seconds),
            MetricType::Histogram,
        )?;
        for series in &e.versions {
            let labels = [("app", series.app.as_str()), ("version", &series.version)];
            let buckets = latency_buckets(&series.latency);
            let sum = series.latency.sum_micros as f64 / 1e6;
            family
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(sum, series.latency.count(), &buckets, None)?;
        }

        let mut family = encoder.encode_descriptor(
            "http_requests_in_flight",
            "Requests a version is serving now (upgraded connections included while relayed).",
            None,
            MetricType::Gauge,
        )?;
        for series in &e.versions {
            if let Some(in_flight) = series.in_flight {
                let labels = [("app", series.app.as_str()), ("version", &series.version)];
                gauge(&mut family, &labels, in_flight)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "rollout_weight",
            "Share of the requests the route's split places that goes to a version: 1 for the only one, the candidate's weight and the rest for stable while a split runs.",
            Some(&ratio),
            MetricType::Gauge,
        )?;
        for series in &e.versions {
            if let Some(weight) = series.weight_ratio {
                let labels = [("app", series.app.as_str()), ("version", &series.version)];
                gauge(&mut family, &labels, weight)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "upstream_connect_errors",
            "Connection attempts to a target that failed (refused, timed out, broken handshake), retried ones included.",
            None,
            MetricType::Counter,
        )?;
        for series in &e.targets {
            counter(&mut family, &target_labels(series), series.connect_errors)?;
        }

        let mut family = encoder.encode_descriptor(
            "target_healthy",
            "1 while a target passes its health checks, else 0.",
            None,
            MetricType::Gauge,
        )?;
        for series in &e.targets {
            if let Some(healthy) = series.healthy {
                gauge(&mut family, &target_labels(series), u64::from(healthy))?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "deploys",
            "Finished deploys per app and outcome, from the deploy history.",
            None,
            MetricType::Counter,
        )?;
        for series in &e.deploys {
            let labels = [("app", series.app.as_str()), ("outcome", &series.outcome)];
            counter(&mut family, &labels, series.count)?;
        }

        let mut family = encoder.encode_descriptor(
            "deploy_duration",
            "How long finished deploys took, from the request to the last stage, per app and outcome.",
            Some(&seconds),
            MetricType::Histogram,
        )?;
        for series in &e.deploy_durations {
            let labels = [("app", series.app.as_str()), ("outcome", &series.outcome)];
            let histogram = &series.durations;
            family
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(
                    histogram.sum(),
                    histogram.count(),
                    &histogram.buckets(),
                    None,
                )?;
        }

        let mut family = encoder.encode_descriptor(
            "rollbacks",
            "Times an app went back to a previous version, by reason: guardrail, abort, timeout (a rollout found too little evidence), failed_after_switch, manual (baton rollback).",
            None,
            MetricType::Counter,
        )?;
        for series in &e.rollbacks {
            let labels = [("app", series.app.as_str()), ("reason", &series.reason)];
            counter(&mut family, &labels, series.count)?;
        }

        let mut family = encoder.encode_descriptor(
            "notifications",
            "Deploy notifications ([[notify]]) since the daemon started, per app, target and outcome: delivered, failed (every try failed), dropped (the target's queue was full).",
            None,
            MetricType::Counter,
        )?;
        for series in &e.notifications {
            let labels = [
                ("app", series.app.as_str()),
                ("target", &series.target),
                ("outcome", &series.outcome),
            ];
            counter(&mut family, &labels, series.count)?;
        }

        let mut family = encoder.encode_descriptor(
            "flag_evaluations",
            "Feature flag evaluations since the daemon started, by flag, source (proxy: X-Baton-Flags on a request; ofrep: an OpenFeature SDK) and result (on or off).",
            None,
            MetricType::Counter,
        )?;
        for series in &e.flag_evaluations {
            let labels = [
                ("flag", series.flag.as_str()),
                ("source", &series.source),
                ("result", &series.result),
            ];
            counter(&mut family, &labels, series.count)?;
        }

        let mut family = encoder.encode_descriptor(
            "process_cpu",
            "User and system CPU time of the daemon (role daemon) and of each app process.",
            Some(&seconds),
            MetricType::Counter,
        )?;
        for series in &e.processes {
            let index = series.index.to_string();
            counter(
                &mut family,
                &process_labels(series, &index),
                series.cpu_seconds,
            )?;
        }

        let mut family = encoder.encode_descriptor(
            "process_resident_memory",
            "Resident memory of the daemon (role daemon) and of each app process.",
            Some(&bytes),
            MetricType::Gauge,
        )?;
        for series in &e.processes {
            let index = series.index.to_string();
            gauge(
                &mut family,
                &process_labels(series, &index),
                series.resident_memory_bytes,
            )?;
        }
        Ok(())
    }
}

fn target_labels(series: &TargetSeries) -> Labels<'_, 3> {
    [
        ("app", series.app.as_str()),
        ("version", &series.version),
        ("target", &series.target),
    ]
}

fn process_labels<'a>(series: &'a ProcessSeries, index: &'a str) -> Labels<'a, 4> {
    [
        ("app", series.app.as_str()),
        ("role", &series.role),
        ("index", index),
        ("version", &series.version),
    ]
}

fn counter<const N: usize>(
    family: &mut MetricEncoder<'_>,
    labels: &Labels<'_, N>,
    value: impl prometheus_client::encoding::EncodeCounterValue,
) -> Result<(), std::fmt::Error> {
    ConstCounter::new(value).encode(family.encode_family(labels)?)
}

fn gauge<const N: usize>(
    family: &mut MetricEncoder<'_>,
    labels: &Labels<'_, N>,
    value: impl prometheus_client::encoding::EncodeGaugeValue,
) -> Result<(), std::fmt::Error> {
    ConstGauge::new(value).encode(family.encode_family(labels)?)
}

/// `(upper bound in seconds, requests in that bucket alone)`, the overflow
/// bucket last as `+Inf`; the encoder makes them cumulative.
fn latency_buckets(latency: &LatencyBuckets) -> Vec<(f64, u64)> {
    BOUNDS_MICROS
        .iter()
        .map(|micros| *micros as f64 / 1e6)
        .chain([f64::INFINITY])
        .zip(latency.counts)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(name_and_labels)?.strip_prefix(' '))
            .and_then(|value| value.parse().ok())
    }

    fn version(app: &str, version: &str) -> VersionSeries {
        let mut latency = LatencyBuckets::default();
        latency.add(2_000, 5);
        latency.add(400_000, 1);
        latency.add(90_000_000, 1);
        VersionSeries {
            app: app.to_string(),
            version: version.to_string(),
            totals: Totals {
                requests: 8,
                status_2xx: 5,
                status_5xx: 1,
                timeouts: 1,
                ..Totals::default()
            },
            latency,
            in_flight: Some(3),
            weight_ratio: Some(0.25),
        }
    }

    #[test]
    fn requests_by_status_class_add_up_to_every_request() {
        let text = render(Exposition {
            versions: vec![version("web", "v2")],
            ..Exposition::default()
        });
        let at = |class: &str| {
            sample(
                &text,
                &format!(
                    "baton_http_requests_total{{app=\"web\",version=\"v2\",status_class=\"{class}\"}}"
                ),
            )
        };
        assert_eq!(at("2xx"), Some(5.0));
        assert_eq!(at("5xx"), Some(1.0));
        assert_eq!(at("timeout"), Some(1.0));
        assert_eq!(at("4xx"), Some(0.0));
        assert_eq!(at("other"), Some(1.0), "{text}");
        assert!(
            text.contains("# TYPE baton_http_requests counter\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn latency_is_a_cumulative_histogram_in_seconds() {
        let text = render(Exposition {
            versions: vec![version("web", "v2")],
            ..Exposition::default()
        });
        let labels = "app=\"web\",version=\"v2\"";
        let bucket = |le: &str| {
            sample(
                &text,
                &format!("baton_http_request_duration_seconds_bucket{{le=\"{le}\",{labels}}}"),
            )
        };
        assert_eq!(bucket("0.001"), Some(0.0));
        assert_eq!(bucket("0.002"), Some(5.0));
        assert_eq!(bucket("0.5"), Some(6.0));
        assert_eq!(bucket("60.0"), Some(6.0));
        assert_eq!(bucket("+Inf"), Some(7.0));
        let count = format!("baton_http_request_duration_seconds_count{{{labels}}}");
        assert_eq!(sample(&text, &count), Some(7.0));
        let sum = format!("baton_http_request_duration_seconds_sum{{{labels}}}");
        assert_eq!(sample(&text, &sum), Some(90.41));
        assert!(text.contains("# UNIT baton_http_request_duration_seconds seconds\n"));
    }

    #[test]
    fn gauges_of_live_versions_only() {
        let mut retired = version("web", "v1");
        retired.in_flight = None;
        retired.weight_ratio = None;
        let text = render(Exposition {
            versions: vec![retired, version("web", "v2")],
            targets: vec![
                TargetSeries {
                    app: "web".into(),
                    version: "v1".into(),
                    target: "127.0.0.1:4001".into(),
                    healthy: None,
                    connect_errors: 2,
                },
                TargetSeries {
                    app: "web".into(),
                    version: "v2".into(),
                    target: "127.0.0.1:4002".into(),
                    healthy: Some(true),
                    connect_errors: 0,
                },
            ],
            ..Exposition::default()
        });
        let v1 = "{app=\"web\",version=\"v1\"}";
        let v2 = "{app=\"web\",version=\"v2\"}";
        assert_eq!(
            sample(&text, &format!("baton_http_requests_in_flight{v2}")),
            Some(3.0)
        );
        assert_eq!(
            sample(&text, &format!("baton_http_requests_in_flight{v1}")),
            None
        );
        assert_eq!(
            sample(&text, &format!("baton_rollout_weight_ratio{v2}")),
            Some(0.25)
        );
        assert_eq!(
            sample(
                &text,
                "baton_upstream_connect_errors_total{app=\"web\",version=\"v1\",target=\"127.0.0.1:4001\"}"
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                "baton_target_healthy{app=\"web\",version=\"v2\",target=\"127.0.0.1:4002\"}"
            ),
            Some(1.0)
        );
        assert!(!text.contains("baton_target_healthy{app=\"web\",version=\"v1\""));
    }

    #[test]
    fn deploys_rollbacks_and_processes() {
        let mut durations = SecondsHistogram::new(&[10.0, 60.0]);
        durations.observe(4.0);
        durations.observe(30.0);
        let text = render(Exposition {
            deploys: vec![DeploySeries {
                app: "web".into(),
                outcome: "succeeded".into(),
                count: 2,
            }],
            deploy_durations: vec![DeployDurationSeries {
                app: "web".into(),
                outcome: "succeeded".into(),
                durations,
            }],
            rollbacks: vec![RollbackSeries {
                app: "web".into(),
                reason: "guardrail".into(),
                count: 1,
            }],
            notifications: vec![NotificationSeries {
                app: "web".into(),
                target: "webhook http://127.0.0.1:9000/x".into(),
                outcome: "delivered".into(),
                count: 3,
            }],
            processes: vec![ProcessSeries {
                app: String::new(),
                role: "daemon".into(),
                index: 1,
                version: String::new(),
                cpu_seconds: 1.5,
                resident_memory_bytes: 4096,
            }],
            ..Exposition::default()
        });
        let web = "app=\"web\",outcome=\"succeeded\"";
        assert_eq!(
            sample(&text, &format!("baton_deploys_total{{{web}}}")),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                &format!("baton_deploy_duration_seconds_bucket{{le=\"10.0\",{web}}}")
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                &format!("baton_deploy_duration_seconds_sum{{{web}}}")
            ),
            Some(34.0)
        );
        assert_eq!(
            sample(
                &text,
                "baton_rollbacks_total{app=\"web\",reason=\"guardrail\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "baton_notifications_total{app=\"web\",target=\"webhook http://127.0.0.1:9000/x\",outcome=\"delivered\"}"
            ),
            Some(3.0)
        );
        let daemon = "{app=\"\",role=\"daemon\",index=\"1\",version=\"\"}";
        assert_eq!(
            sample(&text, &format!("baton_process_cpu_seconds_total{daemon}")),
            Some(1.5)
        );
        assert_eq!(
            sample(
                &text,
                &format!("baton_process_resident_memory_bytes{daemon}")
            ),
            Some(4096.0)
        );
    }

    #[test]
    fn series_of_one_label_set_merge() {
        let mut live = version("web", "v1");
        let mut retired = version("web", "v1");
        retired.in_flight = None;
        retired.weight_ratio = None;
        assert!(live.same_series(&retired));
        assert!(!live.same_series(&version("web", "v2")));
        live.merge(&retired);
        assert_eq!(live.totals.requests, 16);
        assert_eq!(live.latency.count(), 14);
        assert_eq!((live.in_flight, live.weight_ratio), (Some(3), Some(0.25)));

        let target = |healthy, connect_errors| TargetSeries {
            app: "web".into(),
            version: "v1".into(),
            target: "127.0.0.1:1".into(),
            healthy,
            connect_errors,
        };
        let mut a = target(Some(false), 2);
        a.merge(&target(None, 3));
        assert_eq!(a, target(Some(false), 5));
        a.merge(&target(Some(true), 0));
        assert_eq!(a, target(Some(true), 5));
    }

    #[test]
    fn label_values_are_escaped() {
        let text = render(Exposition {
            versions: vec![version("web", "a\"b\\c")],
            ..Exposition::default()
        });
        assert!(text.contains("version=\"a\\\"b\\\\c\""), "{text}");
    }
}
