//! The result of a probe run: [`Report`] (serialisable, printable as a
//! compact table) and the per-worker `Tally` it is built from.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::error::ProbeError;
use crate::outcome::Outcome;

/// Failed requests, by kind. Each failed request is counted exactly once.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct Failures {
    /// The connection could not be established (refused, connect timeout,
    /// TLS handshake failure).
    pub connect: u64,
    /// The connection broke under the request (reset, unexpected EOF,
    /// incomplete response, HTTP/2 stream reset).
    pub reset: u64,
    /// No complete response within the request timeout.
    pub timeout: u64,
    /// 5xx responses.
    pub status_5xx: u64,
    /// Other non-2xx responses (1xx, 3xx, 4xx).
    pub status_other: u64,
    /// Anything else.
    pub other: u64,
}

impl Failures {
    /// All failed requests.
    pub fn total(&self) -> u64 {
        self.connect + self.reset + self.timeout + self.status_5xx + self.status_other + self.other
    }

    /// Counts one request with `outcome`; [`Outcome::Ok`] is not a failure
    /// and is ignored.
    pub fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Ok => {}
            Outcome::Connect => self.connect += 1,
            Outcome::Reset => self.reset += 1,
            Outcome::Timeout => self.timeout += 1,
            Outcome::Status5xx => self.status_5xx += 1,
            Outcome::StatusOther => self.status_other += 1,
            Outcome::Other => self.other += 1,
        }
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &Failures) {
        self.connect += other.connect;
        self.reset += other.reset;
        self.timeout += other.timeout;
        self.status_5xx += other.status_5xx;
        self.status_other += other.status_other;
        self.other += other.other;
    }
}

/// Latency percentiles in milliseconds, over every request that got a
/// complete response (any status), measured from the start of the request
/// (including connecting, when it needed a new connection) to the last byte
/// of the body. All zero when there was no such request.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

/// What a probe run saw. `total == ok + failures.total()`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Report {
    /// The URL probed.
    pub url: String,
    /// Wall time of the run, including requests that finished after the
    /// duration ended.
    pub duration_ms: u64,
    /// Requests sent (or attempted).
    pub total: u64,
    /// 2xx responses whose whole body was read.
    pub ok: u64,
    /// Failed requests, by kind.
    pub failures: Failures,
    /// Latency percentiles.
    pub latency_ms: Latency,
    /// `total` divided by the wall time.
    pub requests_per_second: f64,
    /// TCP connections the probe opened.
    pub connections_opened: u64,
    /// The response header counted in `header_counts`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_header: Option<String>,
    /// Responses (any status) per value of `count_header`; responses
    /// without the header are not counted here.
    pub header_counts: BTreeMap<String, u64>,
    /// Responses per status code (including responses whose body then
    /// failed to arrive).
    pub status_counts: BTreeMap<u16, u64>,
    /// Samples of the errors behind failures other than status codes:
    /// `"kind: message"` and how often it occurred (at most
    /// a few distinct messages; the rest are counted under
    /// `"(other messages)"`).
    #[serde(default)]
    pub errors: BTreeMap<String, u64>,
}

impl Report {
    /// Number of failed requests.
    pub fn failed(&self) -> u64 {
        self.failures.total()
    }

    /// Whether every request was ok.
    pub fn is_clean(&self) -> bool {
        self.failed() == 0
    }
}

fn counts<K: fmt::Display>(map: &BTreeMap<K, u64>) -> String {
    map.iter()
        .map(|(k, n)| format!("{k}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.duration_ms as f64 / 1000.0;
        let ok_percent = if self.total == 0 {
            0.0
        } else {
            self.ok as f64 * 100.0 / self.total as f64
        };
        let failures = &self.failures;
        writeln!(f, "{:<12} {}", "url", self.url)?;
        writeln!(f, "{:<12} {secs:.2} s", "duration")?;
        writeln!(
            f,
            "{:<12} {} ({:.1}/s) on {} connection{}",
            "requests",
            self.total,
            self.requests_per_second,
            self.connections_opened,
            if self.connections_opened == 1 {
                ""
            } else {
                "s"
            }
        )?;
        writeln!(f, "{:<12} {} ({ok_percent:.2}%)", "ok", self.ok)?;
        writeln!(
            f,
            "{:<12} {}: connect {}, reset {}, timeout {}, 5xx {}, other status {}, other {}",
            "failures",
            failures.total(),
            failures.connect,
            failures.reset,
            failures.timeout,
            failures.status_5xx,
            failures.status_other,
            failures.other
        )?;
        let l = &self.latency_ms;
        write!(
            f,
            "{:<12} p50 {:.2}, p90 {:.2}, p99 {:.2}, max {:.2}",
            "latency ms", l.p50, l.p90, l.p99, l.max
        )?;
        if !self.status_counts.is_empty() {
            write!(f, "\n{:<12} {}", "statuses", counts(&self.status_counts))?;
        }
        if let Some(name) = &self.count_header {
            let values = if self.header_counts.is_empty() {
                "(no response carried it)".to_owned()
            } else {
                counts(&self.header_counts)
            };
            write!(f, "\n{name:<12} {values}")?;
        }
        let mut errors: Vec<_> = self.errors.iter().collect();
        errors.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (i, (message, n)) in errors.into_iter().enumerate() {
            let label = if i == 0 { "errors" } else { "" };
            write!(f, "\n{label:<12} {n}x {message}")?;
        }
        Ok(())
    }
}

/// How many distinct error messages a report keeps.
const MAX_ERROR_SAMPLES: usize = 16;
/// Where messages beyond [`MAX_ERROR_SAMPLES`] are counted.
const OTHER_MESSAGES: &str = "(other messages)";
/// Longest error message kept, in characters.
const MAX_MESSAGE_CHARS: usize = 200;
/// Highest latency the histogram tells apart: one hour, in µs.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// What became of one request, as a worker hands it to its [`Tally`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Exchange {
    pub outcome: Outcome,
    /// Status of the response, if its head arrived.
    pub status: Option<u16>,
    /// Value of the counted header, if the response carried it.
    pub header: Option<String>,
    /// What went wrong, for failures other than a status code.
    pub error: Option<String>,
    /// Time to the end of the body, if the response was complete.
    pub latency: Option<Duration>,
}

impl Exchange {
    /// A request that failed with `outcome` before a response head arrived.
    pub fn failed(outcome: Outcome, error: impl Into<String>) -> Self {
        Self {
            outcome,
            status: None,
            header: None,
            error: Some(error.into()),
            latency: None,
        }
    }
}

/// Counts of one worker (or of several, merged).
#[derive(Clone, Debug)]
pub(crate) struct Tally {
    total: u64,
    ok: u64,
    failures: Failures,
    latency_us: Histogram<u64>,
    status_counts: BTreeMap<u16, u64>,
    header_counts: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Result<Self, ProbeError> {
        let latency_us = Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
            .map_err(|e| ProbeError::Internal(format!("cannot create histogram: {e}")))?;
        Ok(Self {
            total: 0,
            ok: 0,
            failures: Failures::default(),
            latency_us,
            status_counts: BTreeMap::new(),
            header_counts: BTreeMap::new(),
            errors: BTreeMap::new(),
        })
    }

    /// Counts one request.
    pub fn record(&mut self, exchange: Exchange) {
        self.total += 1;
        if exchange.outcome == Outcome::Ok {
            self.ok += 1;
        } else {
            self.failures.count(exchange.outcome);
        }
        if let Some(status) = exchange.status {
            *self.status_counts.entry(status).or_default() += 1;
        }
        if let Some(value) = exchange.header {
            *self.header_counts.entry(value).or_default() += 1;
        }
        if let Some(error) = exchange.error {
            let mut message = format!("{}: {error}", exchange.outcome.label());
            if let Some((cut, _)) = message.char_indices().nth(MAX_MESSAGE_CHARS) {
                message.truncate(cut);
                message.push_str("...");
            }
            self.count_error(message, 1);
        }
        if let Some(latency) = exchange.latency {
            let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            self.latency_us.saturating_record(us.max(1));
        }
    }

    fn count_error(&mut self, message: String, n: u64) {
        let key = if self.errors.contains_key(&message) || self.errors.len() < MAX_ERROR_SAMPLES {
            message
        } else {
            OTHER_MESSAGES.to_owned()
        };
        *self.errors.entry(key).or_default() += n;
    }

    /// Adds `other`'s counts to this one.
    pub fn merge(&mut self, other: &Tally) -> Result<(), ProbeError> {
        self.total += other.total;
        self.ok += other.ok;
        self.failures.merge(&other.failures);
        self.latency_us
            .add(&other.latency_us)
            .map_err(|e| ProbeError::Internal(format!("cannot merge histograms: {e:?}")))?;
        for (status, n) in &other.status_counts {
            *self.status_counts.entry(*status).or_default() += n;
        }
        for (value, n) in &other.header_counts {
            *self.header_counts.entry(value.clone()).or_default() += n;
        }
        for (message, n) in &other.errors {
            self.count_error(message.clone(), *n);
        }
        Ok(())
    }

    /// The report for a run of `url` that took `elapsed`.
    pub fn into_report(
        self,
        url: String,
        elapsed: Duration,
        connections_opened: u64,
        count_header: Option<String>,
    ) -> Report {
        let ms = |us: u64| us as f64 / 1000.0;
        let latency_ms = if self.latency_us.is_empty() {
            Latency::default()
        } else {
            Latency {
                p50: ms(self.latency_us.value_at_quantile(0.50)),
                p90: ms(self.latency_us.value_at_quantile(0.90)),
                p99: ms(self.latency_us.value_at_quantile(0.99)),
                max: ms(self.latency_us.max()),
            }
        };
        let secs = elapsed.as_secs_f64();
        Report {
            url,
            duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            total: self.total,
            ok: self.ok,
            failures: self.failures,
            latency_ms,
            requests_per_second: if secs > 0.0 {
                self.total as f64 / secs
            } else {
                0.0
            },
            connections_opened,
            count_header,
            header_counts: self.header_counts,
            status_counts: self.status_counts,
            errors: self.errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally() -> Tally {
        match Tally::new() {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        }
    }

    fn response(status: u16, version: Option<&str>, ms: u64) -> Exchange {
        Exchange {
            outcome: crate::classify_status(status),
            status: Some(status),
            header: version.map(str::to_owned),
            error: None,
            latency: Some(Duration::from_millis(ms)),
        }
    }

    fn report(t: Tally) -> Report {
        t.into_report(
            "http://127.0.0.1:1/".to_owned(),
            Duration::from_secs(2),
            3,
            Some("X-Version".to_owned()),
        )
    }

    #[test]
    fn tally_counts_every_request_once() {
        let mut t = tally();
        t.record(response(200, Some("a"), 10));
        t.record(response(503, None, 20));
        t.record(response(404, Some("b"), 30));
        t.record(Exchange::failed(Outcome::Connect, "refused"));
        t.record(Exchange::failed(Outcome::Reset, "reset"));
        t.record(Exchange::failed(Outcome::Timeout, "slow"));
        let r = report(t);
        assert_eq!(r.total, 6);
        assert_eq!(r.ok, 1);
        assert_eq!(r.total, r.ok + r.failed());
        assert_eq!(
            r.failures,
            Failures {
                connect: 1,
                reset: 1,
                timeout: 1,
                status_5xx: 1,
                status_other: 1,
                other: 0
            }
        );
        assert_eq!(r.status_counts.values().sum::<u64>(), 3);
        assert_eq!(r.header_counts.get("a"), Some(&1));
        assert_eq!(r.header_counts.get("b"), Some(&1));
        assert_eq!(r.errors.get("connect: refused"), Some(&1));
        assert_eq!(r.requests_per_second, 3.0);
        assert_eq!(r.duration_ms, 2000);
        assert!((r.latency_ms.max - 30.0).abs() < 0.1);
        assert!((r.latency_ms.p50 - 20.0).abs() < 0.1);
    }

    #[test]
    fn merged_tallies_add_up() {
        let mut a = tally();
        a.record(response(200, Some("a"), 5));
        a.record(response(200, Some("a"), 7));
        a.record(Exchange::failed(Outcome::Reset, "reset"));
        let mut b = tally();
        b.record(response(200, Some("b"), 100));
        b.record(response(502, None, 1));
        b.record(Exchange::failed(Outcome::Reset, "reset"));
        a.merge(&b).ok();
        let r = report(a);
        assert_eq!(r.total, 6);
        assert_eq!(r.ok, 3);
        assert_eq!(r.failures.reset, 2);
        assert_eq!(r.failures.status_5xx, 1);
        assert_eq!(r.header_counts.get("a"), Some(&2));
        assert_eq!(r.header_counts.get("b"), Some(&1));
        assert_eq!(r.status_counts.get(&200), Some(&3));
        assert_eq!(r.errors.get("reset: reset"), Some(&2));
        assert!((r.latency_ms.max - 100.0).abs() < 0.1);
    }

    #[test]
    fn error_samples_are_bounded() {
        let mut t = tally();
        for i in 0..100 {
            t.record(Exchange::failed(Outcome::Other, format!("error {i}")));
        }
        t.record(Exchange::failed(Outcome::Other, "x".repeat(1000)));
        let r = report(t);
        assert_eq!(r.errors.len(), MAX_ERROR_SAMPLES + 1);
        assert_eq!(r.errors.values().sum::<u64>(), 101);
        assert!(r.errors.keys().all(|k| k.len() <= MAX_MESSAGE_CHARS + 3));
    }

    #[test]
    fn failures_total_and_merge() {
        let mut f = Failures::default();
        for outcome in [
            Outcome::Ok,
            Outcome::Connect,
            Outcome::Reset,
            Outcome::Timeout,
            Outcome::Status5xx,
            Outcome::StatusOther,
            Outcome::Other,
        ] {
            f.count(outcome);
        }
        assert_eq!(f.total(), 6);
        let g = f.clone();
        f.merge(&g);
        assert_eq!(f.total(), 12);
        assert_eq!(f.reset, 2);
    }

    #[test]
    fn display_is_a_compact_table() {
        let mut t = tally();
        t.record(response(200, Some("a"), 10));
        t.record(response(503, None, 20));
        t.record(Exchange::failed(Outcome::Reset, "connection reset"));
        let text = report(t).to_string();
        assert!(text.contains("url          http://127.0.0.1:1/"), "{text}");
        assert!(
            text.contains("requests     3 (1.5/s) on 3 connections"),
            "{text}"
        );
        assert!(text.contains("ok           1 (33.33%)"), "{text}");
        assert!(
            text.contains(
                "failures     2: connect 0, reset 1, timeout 0, 5xx 1, other status 0, other 0"
            ),
            "{text}"
        );
        assert!(text.contains("statuses     200: 1, 503: 1"), "{text}");
        assert!(text.contains("X-Version    a: 1"), "{text}");
        assert!(
            text.contains("errors       1x reset: connection reset"),
            "{text}"
        );
        assert!(!text.ends_with('\n'));
    }

    #[test]
    fn report_round_trips_through_json() {
        let mut t = tally();
        t.record(response(200, Some("a"), 10));
        let r = report(t);
        let json = serde_json::to_string(&r).unwrap_or_default();
        assert!(json.contains("\"status_counts\":{\"200\":1}"), "{json}");
        let back: Report = match serde_json::from_str(&json) {
            Ok(back) => back,
            Err(e) => panic!("{e}: {json}"),
        };
        assert_eq!(back, r);
    }
}
