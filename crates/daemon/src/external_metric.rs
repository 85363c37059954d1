//! `prometheus` and `http` guardrails: the number each one reads from
//! outside the proxy, fetched in the background while a rollout runs.
//!
//! Fail safe throughout: a source that cannot be read gives no value, and
//! a value too old to vouch for the present counts as none. The decision
//! core then waits, and `step_timeout` aborts, so an outage of the metrics
//! system can hold a rollout but never pass a step.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use baton_api::{GuardrailConfig, GuardrailMetric, RolloutSection};
use baton_rollout::{Guardrail, Metric};
use bytes::Bytes;
use http::{StatusCode, Uri, header};
use http_body_util::Full;
use serde_json::Value;
use serde_json_path::JsonPath;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use crate::plain_http;

/// How long one fetch (connect, ask, read the answer) may take. A metrics
/// endpoint that needs longer is broken for this purpose: the reading
/// would describe the past by the time it arrives.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

/// The most of an answer that is read. A number is a few bytes; an answer
/// of megabytes is not the one meant, and reading it would only cost.
const BODY_LIMIT: usize = 1024 * 1024;

/// How much of an unexpected JSON value a message quotes.
const QUOTE_LIMIT: usize = 80;

/// Where an external guardrail's number comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExternalSource {
    /// A PromQL instant query whose answer is one number.
    Prometheus {
        /// The server's base address (`http://127.0.0.1:9090`).
        server: String,
        /// The query.
        query: String,
    },
    /// A JSON endpoint, and where the number is in its answer.
    Http {
        /// The endpoint.
        url: String,
        /// The RFC 9535 JSONPath that selects the number.
        json_path: String,
    },
}

impl ExternalSource {
    /// The source of each `[[rollout.guardrails]]` of `section`, by index
    /// (`None` for the ones measured by the proxy). The rollout plan keeps
    /// those guardrails in this order; when there are none it has the
    /// defaults, which read nothing from outside.
    pub fn by_guardrail(section: &RolloutSection) -> Vec<Option<ExternalSource>> {
        section.guardrails.iter().map(ExternalSource::of).collect()
    }

    fn of(config: &GuardrailConfig) -> Option<ExternalSource> {
        match config.metric {
            GuardrailMetric::Prometheus => Some(ExternalSource::Prometheus {
                server: config.server.clone()?,
                query: config.query.clone()?,
            }),
            GuardrailMetric::Http => Some(ExternalSource::Http {
                url: config.url.clone()?,
                json_path: config.json_path.clone()?,
            }),
            _ => None,
        }
    }

    /// What to ask and how to read the answer. The config check refuses
    /// what fails here; a config that skipped it gets its reason as the
    /// guardrail's lack of evidence instead.
    fn target(&self) -> Result<Target, String> {
        let (address, read) = match self {
            ExternalSource::Prometheus { server, query } => {
                let query = form_urlencoded::Serializer::new(String::new())
                    .append_pair("query", query)
                    .finish();
                let base = server.trim_end_matches('/');
                (format!("{base}/api/v1/query?{query}"), Read::Prometheus)
            }
            ExternalSource::Http { url, json_path } => {
                let path = JsonPath::parse(json_path).map_err(|error| {
                    format!("json_path {json_path:?} is not a JSONPath: {error}")
                })?;
                (url.clone(), Read::JsonPath(path))
            }
        };
        let uri: Uri = address
            .parse()
            .map_err(|error| format!("{address:?} is not a URL: {error}"))?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err(format!("{address:?} is not an http:// address"));
        }
        Ok(Target { uri, read })
    }
}

/// A source made ready to fetch.
#[derive(Debug)]
struct Target {
    uri: Uri,
    read: Read,
}

/// How the number is found in an answer.
#[derive(Debug)]
enum Read {
    /// The one sample of a Prometheus query result.
    Prometheus,
    /// The one value a JSONPath selects.
    JsonPath(JsonPath),
}

impl Read {
    fn value(&self, status: StatusCode, body: &[u8]) -> Result<f64, String> {
        match self {
            Read::Prometheus => prometheus_value(status, body),
            Read::JsonPath(path) => json_path_value(status, body, path),
        }
    }
}

/// The number in a Prometheus instant query's answer: the only sample of a
/// vector, or a scalar. Several series are refused rather than picked from
/// or added up: which one the user meant is theirs to say, in the query.
fn prometheus_value(status: StatusCode, body: &[u8]) -> Result<f64, String> {
    let answer: Value = match serde_json::from_slice(body) {
        Ok(answer) => answer,
        Err(_) if !status.is_success() => return Err(format!("the server answered {status}")),
        Err(error) => return Err(format!("the answer is not JSON ({error})")),
    };
    // Prometheus explains a failed query in the body of its 4xx/5xx.
    match answer["status"].as_str() {
        Some("success") if status.is_success() => {}
        Some("success") => return Err(format!("the server answered {status}")),
        Some(other) => {
            let why = answer["error"].as_str().unwrap_or("no reason given");
            return Err(format!("the query failed ({other}: {why})"));
        }
        None => {
            return Err(format!(
                "the answer has no \"status\"; is this a Prometheus server? ({})",
                quote(&answer)
            ));
        }
    }
    let data = &answer["data"];
    match data["resultType"].as_str() {
        Some("scalar") => sample_value(&data["result"]),
        Some("vector") => match data["result"].as_array().map(Vec::as_slice) {
            Some([one]) => sample_value(&one["value"]),
            Some([]) => Err(
                "the query returned no series (no data yet, or a selector that \
                             matches nothing)"
                    .to_string(),
            ),
            Some(many) => Err(format!(
                "the query returned {} series; aggregate it to one, e.g. with sum(…)",
                many.len()
            )),
            None => Err("the vector result is not a list".to_string()),
        },
        Some(other) => Err(format!(
            "the query returned a {other}, not a number; write an instant query that gives \
             one series or a scalar"
        )),
        None => Err("the answer has no data.resultType".to_string()),
    }
}

/// The value of a Prometheus sample, `[<unix time>, "<value>"]`.
fn sample_value(sample: &Value) -> Result<f64, String> {
    match sample.get(1).and_then(Value::as_str) {
        Some(text) => finite(text),
        None => Err(format!(
            "the sample {} is not [time, \"value\"]",
            quote(sample)
        )),
    }
}

/// The number `path` selects in a JSON answer: a JSON number, or a string
/// holding one (some exporters quote numbers to keep their precision).
fn json_path_value(status: StatusCode, body: &[u8], path: &JsonPath) -> Result<f64, String> {
    if !status.is_success() {
        return Err(format!("the endpoint answered {status}"));
    }
    let answer: Value = serde_json::from_slice(body)
        .map_err(|error| format!("the answer is not JSON ({error})"))?;
    let node =
        path.query(&answer)
            .exactly_one()
            .map_err(|error| match error.as_more_than_one() {
                Some(many) => format!("the path selects {many} values; make it select one"),
                None => "the path selects nothing in the answer".to_string(),
            })?;
    match node {
        Value::Number(number) => number
            .as_f64()
            .filter(|value| value.is_finite())
            .ok_or_else(|| format!("{number} is not a finite number")),
        Value::String(text) => finite(text),
        other => Err(format!("the path selects {}, not a number", quote(other))),
    }
}

/// A finite number from text: NaN and infinities are what queries over no
/// data return, and say nothing about the candidate.
fn finite(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() => Ok(value),
        Ok(_) => Err(format!("the value is {text}")),
        Err(_) => Err(format!("{text:?} is not a number")),
    }
}

/// A JSON value shortened for a message.
fn quote(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > QUOTE_LIMIT {
        let start: String = text.chars().take(QUOTE_LIMIT).collect();
        format!("{start}…")
    } else {
        text
    }
}

/// Asks `target` once, within [`FETCH_TIMEOUT`].
async fn fetch(target: &Target) -> Result<f64, String> {
    let answer = tokio::time::timeout(FETCH_TIMEOUT, get(&target.uri)).await;
    let (status, body) = answer.map_err(|_| {
        format!(
            "no answer within {}",
            humantime::format_duration(FETCH_TIMEOUT)
        )
    })??;
    target.read.value(status, &body)
}

/// One plain HTTP/1.1 GET.
async fn get(uri: &Uri) -> Result<(StatusCode, Bytes), String> {
    let request = plain_http::request_to(http::Method::GET, uri)
        .header(header::ACCEPT, "application/json")
        .header(header::USER_AGENT, "baton-guardrail")
        .body(Full::new(Bytes::new()))
        .map_err(|error| format!("cannot build the request: {error}"))?;
    plain_http::exchange(uri, request, BODY_LIMIT).await
}

/// How often a guardrail over `window` is fetched: four times a window, so
/// a change is seen well within it, but at most once a second (a metrics
/// server is shared, and its numbers move no faster) and at least every
/// 15 s (a long window must still notice a breach soon).
pub fn poll_interval(window: Duration) -> Duration {
    (window / 4).clamp(Duration::from_secs(1), Duration::from_secs(15))
}

/// The last value a source gave, and when it was fetched.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Sample {
    value: f64,
    at: Instant,
}

/// The value a guardrail reads at `now`: the last one fetched, if it is
/// fresh, else none. Fresh is within two polls plus a fetch: one failed or
/// slow poll is a blip, but a source silent longer than that no longer
/// vouches for the candidate, and an old good number must not pass a step.
fn fresh_value(last: Option<Sample>, now: Instant, poll: Duration) -> Option<f64> {
    let oldest = poll * 2 + FETCH_TIMEOUT;
    last.filter(|sample| now.saturating_duration_since(sample.at) <= oldest)
        .map(|sample| sample.value)
}

/// What a fetcher last said about its source, so that it speaks when that
/// changes and not at every poll.
#[derive(Clone, Debug, PartialEq)]
enum Health {
    /// Not asked yet.
    Unknown,
    /// It answers with a number.
    Reading,
    /// It does not, for this reason.
    Failing(String),
}

impl Health {
    fn of(outcome: &Result<f64, String>) -> Health {
        match outcome {
            Ok(_) => Health::Reading,
            Err(why) => Health::Failing(why.clone()),
        }
    }
}

/// One guardrail's latest value, shared by its fetcher and the reader.
#[derive(Clone, Debug, Default)]
struct Latest(Arc<Mutex<Option<Sample>>>);

impl Latest {
    fn get(&self) -> Option<Sample> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, sample: Sample) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(sample);
    }
}

/// A watched guardrail: where its value lands and how often it is fetched.
#[derive(Debug)]
struct Watched {
    latest: Latest,
    poll: Duration,
}

/// The external guardrails of one rollout, each fetched in the background.
/// Dropping it stops every fetch: the rollout is over.
#[derive(Debug)]
pub struct ExternalMetrics {
    /// By guardrail index; `None` for the ones the proxy measures.
    watched: Vec<Option<Watched>>,
    /// Sources that started or stopped answering, for the deploy's output.
    news: mpsc::UnboundedReceiver<String>,
    /// Dropping a set aborts its tasks.
    _fetchers: JoinSet<()>,
}

impl ExternalMetrics {
    /// Starts fetching each external guardrail of `guardrails` from its
    /// source in `sources` (same index). An external guardrail without a
    /// source is never evidence, and says so once.
    pub fn start(guardrails: &[Guardrail], sources: &[Option<ExternalSource>]) -> ExternalMetrics {
        let (tell, news) = mpsc::unbounded_channel();
        let mut fetchers = JoinSet::new();
        let watched = guardrails
            .iter()
            .enumerate()
            .map(|(index, guardrail)| {
                if !matches!(guardrail.metric, Metric::External { .. }) {
                    return None;
                }
                let label = format!("guardrail {} ({})", index + 1, guardrail.metric.name());
                let target = match sources.get(index).and_then(Option::as_ref) {
                    Some(source) => source.target(),
                    None => Err("its source is not known to this rollout".to_string()),
                };
                let latest = Latest::default();
                let poll = poll_interval(guardrail.window);
                let fetcher = Fetcher {
                    label,
                    target,
                    poll,
                    latest: latest.clone(),
                    tell: tell.clone(),
                };
                fetchers.spawn(fetcher.run());
                Some(Watched { latest, poll })
            })
            .collect();
        ExternalMetrics {
            watched,
            news,
            _fetchers: fetchers,
        }
    }

    /// What guardrail `index` reads now: its source's last value while it
    /// is fresh, else `None` (no evidence). Also `None` for a guardrail the
    /// proxy measures.
    pub fn value(&self, index: usize) -> Option<f64> {
        let watched = self.watched.get(index)?.as_ref()?;
        fresh_value(watched.latest.get(), Instant::now(), watched.poll)
    }

    /// Lines saying which sources began answering or stopped, and why,
    /// since this was last asked.
    pub fn news(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.news.try_recv().ok()).collect()
    }
}

/// Fetches one guardrail's number at the start and every `poll` after.
struct Fetcher {
    /// "guardrail 4 ($.rate from http://…)", for messages.
    label: String,
    /// What to ask, or why it cannot be asked.
    target: Result<Target, String>,
    poll: Duration,
    latest: Latest,
    tell: mpsc::UnboundedSender<String>,
}

impl Fetcher {
    async fn run(self) {
        let mut ticker = tokio::time::interval(self.poll);
        // A slow fetch pushes the next one back instead of bunching them.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut health = Health::Unknown;
        loop {
            ticker.tick().await;
            let outcome = match &self.target {
                Ok(target) => fetch(target).await,
                Err(why) => Err(why.clone()),
            };
            if let Ok(value) = outcome {
                self.latest.set(Sample {
                    value,
                    at: Instant::now(),
                });
            }
            let now = Health::of(&outcome);
            if now != health {
                self.say(&health, &outcome);
                health = now;
            }
        }
    }

    /// Tells the log and the deploy's output that the source's state
    /// changed from `before` to `outcome`.
    fn say(&self, before: &Health, outcome: &Result<f64, String>) {
        let label = &self.label;
        let line = match (before, outcome) {
            (Health::Failing(_), Ok(value)) => {
                tracing::info!(guardrail = %label, value, "external guardrail source answers again");
                format!("{label} reads {value} again")
            }
            (_, Ok(value)) => {
                tracing::info!(guardrail = %label, value, "external guardrail source answers");
                format!("{label} reads {value}")
            }
            (_, Err(why)) => {
                tracing::warn!(guardrail = %label, reason = %why, "external guardrail source cannot be read");
                format!("{label} cannot be read: {why}; it gives no evidence until it can")
            }
        };
        // The receiver goes with the rollout; nobody is left to tell then.
        let _ = self.tell.send(line);
    }
}

#[cfg(test)]
mod tests;
