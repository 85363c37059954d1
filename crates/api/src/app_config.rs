//! `baton.toml`: what an app is, how it is built and how its processes run.
//!
//! The CLI parses the file (so errors point at a line and column of the
//! user's file) and sends the parsed config to the daemon, which stores it
//! with each release. Values are checked while they are read, so a bad
//! duration or signal is reported at its own position.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use crate::targeting_key::TargetingKey;

/// A whole `baton.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// Who the app is and where it lives.
    pub app: AppSection,
    /// Commands that turn a staged release into a runnable one.
    #[serde(default)]
    pub build: BuildSection,
    /// Commands run around a deploy.
    #[serde(default)]
    pub hooks: HooksSection,
    /// The app's schema migrations, linted and run in their phase by the
    /// deploy; `None` (no `[migrate]`) leaves migrations to the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrate: Option<crate::MigrateSection>,
    /// The web processes the proxy routes to.
    pub web: WebSection,
    /// Background processes.
    #[serde(default)]
    pub workers: Vec<WorkerSection>,
    /// Requests sent to each new web process directly, before it gets any
    /// live traffic; one failing check stops the deploy.
    #[serde(default)]
    pub smoke: Vec<SmokeCheck>,
    /// How a new version is exposed to live traffic and what it must prove
    /// on the way.
    #[serde(default)]
    pub rollout: RolloutSection,
    /// Whether the proxy evaluates the flags for each request and hands
    /// the answers to the app.
    #[serde(default)]
    pub flags: FlagsSection,
    /// `[slo]`: the app's availability objective, whose error budget
    /// `baton status` and `baton budget` show and `baton deploy` respects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloSection>,
    /// `[[notify]]`: webhooks and commands told of each deploy's events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<crate::NotifyTarget>,
}

/// `[slo]`: the share of requests that must not fail over a rolling window.
/// What the other share allows is the error budget; while it is spent,
/// `baton deploy` refuses unless forced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloSection {
    /// `availability = "99.9%"`: above 0% and below 100%.
    pub availability: Availability,
    /// `window = "30d"`: from one minute to the 35 days rollups are kept.
    #[serde(default = "default_slo_window")]
    pub window: SloWindow,
}

/// An availability objective: a [`Percent`] above 0% and below 100% (100%
/// would allow no error at all, so no budget could be spent or kept).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Availability(Percent);

impl Availability {
    /// `text` as an objective, or why it is not one.
    pub fn parse(text: &str) -> Result<Availability, String> {
        let percent: Percent = text.parse()?;
        if percent.is_zero() || percent.is_full() {
            return Err(format!(
                "availability {text:?} must be above 0% and below 100%; write e.g. \"99.9%\""
            ));
        }
        Ok(Availability(percent))
    }

    /// The objective as a percentage.
    pub fn percent(self) -> Percent {
        self.0
    }

    /// The objective as a fraction (99.9% is 0.999).
    pub fn fraction(self) -> f64 {
        f64::from(self.0.parts_per_million()) / 1_000_000.0
    }
}

impl Serialize for Availability {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Availability {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Availability::parse(&String::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

/// The rolling window of an objective: at least a minute (rollups are
/// per minute) and at most the 35 days rollups are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SloWindow(DurationText);

impl SloWindow {
    /// The longest window: how long minute rollups are kept.
    pub const MAX: Duration = Duration::from_secs(35 * 24 * 3600);

    /// `window` as an objective's window, or why it is not one.
    pub fn new(window: Duration) -> Result<SloWindow, String> {
        let text = humantime::format_duration(window);
        if window < Duration::from_secs(60) || window > Self::MAX {
            return Err(format!(
                "window \"{text}\" must be from \"1m\" to \"35d\" (rollups are per minute and \
                 kept 35 days); write e.g. \"30d\""
            ));
        }
        Ok(SloWindow(DurationText(window)))
    }

    /// The window.
    pub fn get(self) -> Duration {
        self.0.get()
    }
}

impl<'de> Deserialize<'de> for SloWindow {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        SloWindow::new(DurationText::deserialize(deserializer)?.get()).map_err(de::Error::custom)
    }
}

fn default_slo_window() -> SloWindow {
    SloWindow(DurationText(Duration::from_secs(30 * 24 * 3600)))
}

/// `[flags]`: the proxy evaluates every feature flag for each request and
/// adds the answers to it as `X-Baton-Flags: name=on,other=off,...`, so the
/// app needs no flag SDK.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlagsSection {
    /// Whether the proxy adds `X-Baton-Flags` (it always removes one a
    /// client sent).
    pub inject: bool,
    /// Where a request's targeting key (Unleash's `userId`) is read, so a
    /// user stays in or out of a rollout from one request to the next;
    /// without one, flags are evaluated with no user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub targeting_key: Option<TargetingKey>,
}

/// `[[smoke]]`: one request to the new version and what must come back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmokeCheck {
    /// The request method.
    #[serde(default = "default_method")]
    pub method: HttpMethod,
    /// The request path (and query).
    pub path: UrlPath,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The request body.
    #[serde(default)]
    pub body: Option<String>,
    /// The status that must come back (401 for an admin page without
    /// credentials, say).
    #[serde(default = "default_expect_status")]
    pub expect_status: u16,
    /// A substring the response body must contain.
    #[serde(default)]
    pub expect_body: Option<String>,
    /// The longest the answer may take.
    #[serde(default)]
    pub max_latency: Option<DurationText>,
}

/// An HTTP method name, checked when read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct HttpMethod(String);

impl HttpMethod {
    /// The method (`GET`).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for HttpMethod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let method = text.trim().to_ascii_uppercase();
        let valid = !method.is_empty() && method.bytes().all(|byte| byte.is_ascii_uppercase());
        if !valid {
            return Err(de::Error::custom(format!(
                "{text:?} is not an HTTP method; write e.g. \"GET\" or \"POST\""
            )));
        }
        Ok(HttpMethod(method))
    }
}

fn default_method() -> HttpMethod {
    HttpMethod("GET".to_string())
}

fn default_expect_status() -> u16 {
    200
}

/// `[app]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSection {
    /// The app's name, also its service name in the proxy.
    pub name: AppName,
    /// Where `releases/`, `shared/` and `current` live. A relative path is
    /// taken from the directory holding `baton.toml`.
    pub root: PathBuf,
    /// Host names routed to the app; empty = every host.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Path prefix routed to the app.
    #[serde(default = "default_path_prefix")]
    pub path_prefix: UrlPath,
    /// Releases kept on disk (besides the current one and the rollback target).
    #[serde(default = "default_keep_releases")]
    pub keep_releases: NonZeroU32,
    /// Paths linked from `<root>/shared` into every release.
    #[serde(default)]
    pub shared: Vec<RelativePath>,
    /// A directory of fingerprinted assets, relative to the release.
    #[serde(default)]
    pub asset_dir: Option<RelativePath>,
}

/// `[build]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSection {
    /// Shell commands run in the new release directory, in order.
    #[serde(default)]
    pub steps: Vec<String>,
    /// How long one step may run.
    #[serde(default = "default_build_timeout")]
    pub timeout: DurationText,
}

impl Default for BuildSection {
    fn default() -> Self {
        BuildSection {
            steps: Vec::new(),
            timeout: default_build_timeout(),
        }
    }
}

/// `[hooks]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HooksSection {
    /// Runs after the build; its failure aborts the deploy.
    #[serde(default)]
    pub before_deploy: Option<String>,
    /// Runs once the new version is healthy, before it gets traffic; its
    /// failure aborts the deploy.
    #[serde(default)]
    pub before_traffic: Option<String>,
    /// Runs after the deploy; its failure is reported, nothing is undone.
    #[serde(default)]
    pub after_deploy: Option<String>,
    /// How long one hook may run.
    #[serde(default = "default_hook_timeout")]
    pub timeout: DurationText,
}

impl Default for HooksSection {
    fn default() -> Self {
        HooksSection {
            before_deploy: None,
            before_traffic: None,
            after_deploy: None,
            timeout: default_hook_timeout(),
        }
    }
}

/// `[web]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSection {
    /// Shell command run in the release directory; `PORT` is set.
    pub command: String,
    /// Instances per version.
    #[serde(default = "one")]
    pub processes: NonZeroU32,
    /// Path that answers 2xx once an instance can take traffic.
    #[serde(default = "default_health_path")]
    pub health_path: UrlPath,
    /// Time between health checks.
    #[serde(default = "default_health_interval")]
    pub health_interval: DurationText,
    /// Consecutive 2xx answers that make an instance healthy.
    #[serde(default = "two")]
    pub healthy_after: NonZeroU32,
    /// How long one health check may take.
    #[serde(default = "default_health_timeout")]
    pub health_timeout: DurationText,
    /// How long a new version may take to become healthy.
    #[serde(default = "default_boot_timeout")]
    pub boot_timeout: DurationText,
    /// How long the old version may take to finish its requests.
    #[serde(default = "default_thirty_seconds")]
    pub drain_timeout: DurationText,
    /// The signal that asks an instance to stop.
    #[serde(default)]
    pub stop_signal: StopSignal,
    /// How long after `stop_signal` before SIGKILL.
    #[serde(default = "default_thirty_seconds")]
    pub stop_timeout: DurationText,
    /// How long the previous version keeps running after a deploy, for an
    /// instant rollback.
    #[serde(default = "default_keep_warm")]
    pub keep_warm: DurationText,
    /// Extra environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// `[[workers]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSection {
    /// The worker's name (`baton logs NAME`).
    pub name: AppName,
    /// Shell command run in the release directory.
    pub command: String,
    /// Instances per version.
    #[serde(default = "one")]
    pub processes: NonZeroU32,
    /// The signal that asks a worker to finish its job and exit.
    #[serde(default)]
    pub stop_signal: StopSignal,
    /// How long a stopping worker may take before SIGKILL.
    #[serde(default = "default_thirty_seconds")]
    pub stop_timeout: DurationText,
    /// Never run in two versions at once: the old one exits before the new
    /// one starts.
    #[serde(default)]
    pub singleton: bool,
    /// Extra environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// `[rollout]`: how a new version is exposed to live traffic and what it
/// must prove on the way.
///
/// Every key has a default, so a file without `[rollout]` deploys as before
/// (`replace`, no bake).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RolloutSection {
    /// How live traffic moves to the new version.
    pub strategy: RolloutStrategy,
    /// The candidate's share of live traffic at each canary step: above
    /// 0%, increasing, ending at 100%, at most two decimals. Only a canary
    /// uses them, but they are checked whatever the strategy, since
    /// `--strategy canary` can pick them up at deploy time.
    pub steps: Vec<Percent>,
    /// The least time at a step before the next, if the guardrails hold.
    pub step_duration: DurationText,
    /// A step that cannot gather enough evidence in this long aborts.
    pub step_timeout: DurationText,
    /// A window with fewer candidate requests than this is no evidence:
    /// the step waits, it never passes.
    pub min_requests: u64,
    /// How long the guardrails keep watching once the candidate has all
    /// traffic, before it becomes stable.
    ///
    /// Unset, it follows the strategy actually used (including one chosen
    /// with `--strategy`): 5 minutes for `canary` and `blue-green`, none
    /// for `replace`, so that a plain deploy finishes as quickly as it did
    /// before rollouts existed. Set, it applies to every strategy. See
    /// [`RolloutSection::bake_for`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bake: Option<DurationText>,
    /// A client placed on a version stays on it (cookie `baton_version`).
    pub sticky: bool,
    /// `X-Baton-Version: candidate|stable` forces a version, for testers.
    pub override_header: bool,
    /// The share of requests mirrored to the candidate before it gets live
    /// traffic; 0% skips the shadow.
    pub shadow: Percent,
    /// How long the shadow lasts.
    pub shadow_duration: DurationText,
    /// Only requests with these methods are mirrored.
    pub shadow_methods: Vec<HttpMethod>,
    /// `[[rollout.guardrails]]`: every one must hold. Empty means the
    /// default three: error rate at most 1% over 2 minutes, p99 latency
    /// at most 1200 ms over 3 minutes, and the candidate's error rate at
    /// most 0.5 points above stable's over 2 minutes.
    pub guardrails: Vec<GuardrailConfig>,
}

impl Default for RolloutSection {
    fn default() -> Self {
        RolloutSection {
            strategy: RolloutStrategy::Replace,
            steps: [1, 10, 50, 100]
                .into_iter()
                .map(|percent| Percent(percent * Percent::PER_PERCENT))
                .collect(),
            step_duration: DurationText(Duration::from_secs(2 * 60)),
            step_timeout: DurationText(Duration::from_secs(15 * 60)),
            min_requests: 100,
            bake: None,
            sticky: true,
            override_header: true,
            shadow: Percent::ZERO,
            shadow_duration: DurationText(Duration::from_secs(60)),
            shadow_methods: vec![
                HttpMethod("GET".to_string()),
                HttpMethod("HEAD".to_string()),
            ],
            guardrails: Vec::new(),
        }
    }
}

impl RolloutSection {
    /// The bake when `strategy` is used: the one written, else 5 minutes
    /// for canary and blue-green and none for replace.
    pub fn bake_for(&self, strategy: RolloutStrategy) -> Duration {
        match (self.bake, strategy) {
            (Some(bake), _) => bake.get(),
            (None, RolloutStrategy::Replace) => Duration::ZERO,
            (None, RolloutStrategy::BlueGreen | RolloutStrategy::Canary) => {
                Duration::from_secs(5 * 60)
            }
        }
    }
}

/// `strategy` in `[rollout]` (and `baton deploy --strategy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RolloutStrategy {
    /// All traffic moves to the new version at once.
    #[default]
    Replace,
    /// The new version gets no live traffic until its checks pass, then
    /// all of it in one swap.
    BlueGreen,
    /// Live traffic moves in `steps`, each held until the guardrails have
    /// seen enough.
    Canary,
}

impl RolloutStrategy {
    /// Its name in `baton.toml` (`"blue-green"`).
    pub fn name(self) -> &'static str {
        match self {
            RolloutStrategy::Replace => "replace",
            RolloutStrategy::BlueGreen => "blue-green",
            RolloutStrategy::Canary => "canary",
        }
    }
}

impl fmt::Display for RolloutStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RolloutStrategy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        [
            RolloutStrategy::Replace,
            RolloutStrategy::BlueGreen,
            RolloutStrategy::Canary,
        ]
        .into_iter()
        .find(|strategy| strategy.name() == text.trim())
        .ok_or_else(|| format!("{text:?} is not a strategy; use replace, blue-green or canary"))
    }
}

/// `[[rollout.guardrails]]`: a condition the candidate must keep.
///
/// Which keys apply depends on `metric`; the others are refused with the
/// key's position when the file is read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardrailConfig {
    /// What is measured.
    pub metric: GuardrailMetric,
    /// The highest value that holds: a percentage for rates, a duration
    /// for `p99_latency`, a number for `prometheus` and `http`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<GuardrailLimit>,
    /// The lowest value that holds (`prometheus` and `http` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<GuardrailLimit>,
    /// How far back each measurement looks.
    pub window: DurationText,
    /// The Prometheus server (`prometheus` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The PromQL query whose single number is compared (`prometheus` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The JSON endpoint (`http` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Where the number is in the endpoint's answer (`http` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_path: Option<String>,
}

/// `metric` of a guardrail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardrailMetric {
    /// The candidate's (5xx + connection failures) / requests.
    ErrorRate,
    /// The candidate's 99th-percentile latency.
    P99Latency,
    /// The candidate's error rate minus stable's over the same window.
    ErrorRateVsStable,
    /// The share of mirrored requests whose answers differed.
    ShadowMismatchRate,
    /// A number from a Prometheus query.
    Prometheus,
    /// A number from a JSON endpoint.
    Http,
}

impl GuardrailMetric {
    /// Its name in `baton.toml` (`"error_rate"`).
    pub fn name(self) -> &'static str {
        match self {
            GuardrailMetric::ErrorRate => "error_rate",
            GuardrailMetric::P99Latency => "p99_latency",
            GuardrailMetric::ErrorRateVsStable => "error_rate_vs_stable",
            GuardrailMetric::ShadowMismatchRate => "shadow_mismatch_rate",
            GuardrailMetric::Prometheus => "prometheus",
            GuardrailMetric::Http => "http",
        }
    }

    /// Whether it measures a share of requests (its limit a percentage).
    pub fn is_rate(self) -> bool {
        matches!(
            self,
            GuardrailMetric::ErrorRate
                | GuardrailMetric::ErrorRateVsStable
                | GuardrailMetric::ShadowMismatchRate
        )
    }

    /// Whether it reads a number from outside the proxy.
    pub fn is_external(self) -> bool {
        matches!(self, GuardrailMetric::Prometheus | GuardrailMetric::Http)
    }
}

/// A guardrail's `max` or `min`, in the form that was written: `"1%"`,
/// `"1200ms"` or a bare number. Whether the form suits the metric is
/// checked after the whole file is read, so the error can name both.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GuardrailLimit {
    /// A percentage (`"1%"`).
    Percent(Percent),
    /// A duration (`"1200ms"`).
    Duration(DurationText),
    /// A number (`0.95`).
    Number(f64),
}

impl fmt::Display for GuardrailLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuardrailLimit::Percent(percent) => write!(f, "\"{percent}\""),
            GuardrailLimit::Duration(duration) => {
                write!(f, "\"{}\"", humantime::format_duration(duration.get()))
            }
            GuardrailLimit::Number(number) => write!(f, "{number}"),
        }
    }
}

impl Serialize for GuardrailLimit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            GuardrailLimit::Percent(percent) => percent.serialize(serializer),
            GuardrailLimit::Duration(duration) => duration.serialize(serializer),
            GuardrailLimit::Number(number) => serializer.serialize_f64(*number),
        }
    }
}

impl<'de> Deserialize<'de> for GuardrailLimit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LimitVisitor;

        impl de::Visitor<'_> for LimitVisitor {
            type Value = GuardrailLimit;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a percentage (\"1%\"), a duration (\"1200ms\") or a number (0.95)")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<GuardrailLimit, E> {
                if text.trim_end().ends_with('%') {
                    return text.parse().map(GuardrailLimit::Percent).map_err(E::custom);
                }
                humantime::parse_duration(text.trim())
                    .map(|duration| GuardrailLimit::Duration(DurationText(duration)))
                    .map_err(|_| {
                        E::custom(format!(
                            "{text:?} is neither a percentage (\"1%\") nor a duration \
                             (\"1200ms\"); a prometheus or http limit is a number without quotes"
                        ))
                    })
            }

            fn visit_f64<E: de::Error>(self, number: f64) -> Result<GuardrailLimit, E> {
                Ok(GuardrailLimit::Number(number))
            }

            fn visit_i64<E: de::Error>(self, number: i64) -> Result<GuardrailLimit, E> {
                // Limits are compared as floats anyway; a huge integer
                // losing its last digits changes nothing a guardrail sees.
                Ok(GuardrailLimit::Number(number as f64))
            }

            fn visit_u64<E: de::Error>(self, number: u64) -> Result<GuardrailLimit, E> {
                Ok(GuardrailLimit::Number(number as f64))
            }
        }

        deserializer.deserialize_any(LimitVisitor)
    }
}

/// A share written as a percentage (`"1%"`, `"0.5%"`, `"100%"`), from 0%
/// to 100%, exact to 0.0001%.
///
/// It is kept in parts per million so that limits and weights compare
/// without float rounding, and written back as the shortest exact text,
/// which is also its JSON form.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percent(u32);

impl Percent {
    /// 0%.
    pub const ZERO: Percent = Percent(0);
    /// 100%.
    pub const FULL: Percent = Percent(1_000_000);
    const PER_PERCENT: u32 = 10_000;

    /// The share of `parts_per_million`; `None` above a million.
    pub const fn from_parts_per_million(parts_per_million: u32) -> Option<Percent> {
        if parts_per_million <= Self::FULL.0 {
            Some(Percent(parts_per_million))
        } else {
            None
        }
    }

    /// The share in parts per million (1% = 10,000).
    pub const fn parts_per_million(self) -> u32 {
        self.0
    }

    /// Whether this is 0%.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Whether this is 100%.
    pub const fn is_full(self) -> bool {
        self.0 == Self::FULL.0
    }
}

impl FromStr for Percent {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let hint = "write a percentage such as \"1%\", \"0.5%\" or \"100%\"";
        let fail = |problem: &str| format!("{text:?} is not a valid percentage: {problem}");
        let number = text
            .trim()
            .strip_suffix('%')
            .ok_or_else(|| fail(hint))?
            .trim_end();
        if number.starts_with('-') {
            return Err(fail("a percentage cannot be negative"));
        }
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) || number.ends_with('.') {
            return Err(fail(hint));
        }
        // Trailing zeros carry no precision: "1.000000%" is fine.
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > 4 {
            return Err(fail(
                "it has more than 4 decimal places (the finest step is 0.0001%)",
            ));
        }
        let over = || fail("it is more than 100%");
        // Longer than this is over 100% whatever the digits; checking first
        // keeps the arithmetic below from overflowing.
        let whole = whole.trim_start_matches('0');
        if whole.len() > 3 {
            return Err(over());
        }
        let whole: u32 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| fail(hint))?
        };
        let fraction: u32 = format!("{fraction:0<4}").parse().map_err(|_| fail(hint))?;
        Percent::from_parts_per_million(whole * Self::PER_PERCENT + fraction).ok_or_else(over)
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, fraction) = (self.0 / Self::PER_PERCENT, self.0 % Self::PER_PERCENT);
        if fraction == 0 {
            write!(f, "{whole}%")
        } else {
            let fraction = format!("{fraction:04}");
            write!(f, "{whole}.{}%", fraction.trim_end_matches('0'))
        }
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(de::Error::custom)
    }
}

/// Where `baton.toml` went wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", path.display())]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong and what to write instead.
    pub message: String,
}

impl AppConfig {
    /// Parses `text`, read from `path`. A relative `root` is resolved
    /// against `path`'s directory.
    pub fn parse(text: &str, path: &Path) -> Result<AppConfig, ConfigError> {
        let mut config: AppConfig = toml::from_str(text).map_err(|error| {
            let offset = error.span().map_or(0, |span| span.start);
            located(text, path, offset, error.message().to_string())
        })?;
        config.check(text, path)?;
        if config.app.root.is_relative() {
            let base = path.parent().unwrap_or(Path::new("."));
            let base = if base.as_os_str().is_empty() {
                Path::new(".")
            } else {
                base
            };
            let base = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
            config.app.root = base.join(&config.app.root);
        }
        Ok(config)
    }

    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<AppConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError {
            path: path.to_path_buf(),
            line: 1,
            column: 1,
            message: format!("cannot read the file: {error}"),
        })?;
        AppConfig::parse(&text, path)
    }

    /// The app's name.
    pub fn name(&self) -> &str {
        self.app.name.as_str()
    }

    fn check(&self, text: &str, path: &Path) -> Result<(), ConfigError> {
        if let Some(migrate) = &self.migrate {
            migrate.check(text, path)?;
        }
        let mut seen = std::collections::BTreeSet::new();
        for worker in &self.workers {
            if !seen.insert(worker.name.as_str()) {
                let needle = format!("\"{}\"", worker.name.as_str());
                let offset = text.match_indices(&needle).nth(1).map_or(0, |(at, _)| at);
                return Err(located(
                    text,
                    path,
                    offset,
                    format!(
                        "two [[workers]] are named {:?}; give each worker its own name",
                        worker.name.as_str()
                    ),
                ));
            }
            if worker.name.as_str() == "web" {
                let offset = text.find("\"web\"").unwrap_or(0);
                return Err(located(
                    text,
                    path,
                    offset,
                    "a worker cannot be named \"web\": that name means the web processes"
                        .to_string(),
                ));
            }
        }
        for host in &self.app.hosts {
            if !crate::is_host_name(host) {
                let offset = text.find(host.as_str()).unwrap_or(0);
                return Err(located(
                    text,
                    path,
                    offset,
                    format!(
                        "{host:?} is not a host name (use e.g. app.example.com or *.example.com)"
                    ),
                ));
            }
        }
        for check in &self.smoke {
            if !(100..=599).contains(&check.expect_status) {
                let offset = text.find("expect_status").unwrap_or(0);
                return Err(located(
                    text,
                    path,
                    offset,
                    format!(
                        "expect_status = {} is not an HTTP status (100 to 599)",
                        check.expect_status
                    ),
                ));
            }
        }
        if self.web.command.trim().is_empty() {
            let offset = text.find("command").unwrap_or(0);
            return Err(located(
                text,
                path,
                offset,
                "[web] command is empty; write the command that starts the server".to_string(),
            ));
        }
        self.rollout.check(text, path)?;
        crate::NotifyTarget::check_all(&self.notify, text, path)?;
        if !self.flags.inject && self.flags.targeting_key.is_some() {
            return Err(located(
                text,
                path,
                key_offset(text, "[flags]", 0, "targeting_key"),
                "targeting_key is set but inject is false, so no flag would be evaluated for \
                 the app's requests; add inject = true, or remove targeting_key"
                    .to_string(),
            ));
        }
        Ok(())
    }
}

const ROLLOUT: &str = "[rollout]";
const GUARDRAILS: &str = "[[rollout.guardrails]]";

impl RolloutSection {
    fn check(&self, text: &str, path: &Path) -> Result<(), ConfigError> {
        let at = |key: &str, message: String| {
            located(text, path, key_offset(text, ROLLOUT, 0, key), message)
        };
        self.check_steps().map_err(|message| at("steps", message))?;
        if self.step_timeout.get() < self.step_duration.get() {
            // Point at whichever of the two was written; step_timeout if both.
            let key = if key_line(text, ROLLOUT, 0, "step_timeout").is_some() {
                "step_timeout"
            } else {
                "step_duration"
            };
            return Err(at(
                key,
                format!(
                    "step_timeout ({}) is shorter than step_duration ({}), so no step could \
                     pass; make step_timeout at least as long",
                    humantime::format_duration(self.step_timeout.get()),
                    humantime::format_duration(self.step_duration.get())
                ),
            ));
        }
        if self.min_requests == 0 {
            return Err(at(
                "min_requests",
                "min_requests = 0 would let an empty window pass a step; set it to at least 1"
                    .to_string(),
            ));
        }
        if !self.shadow.is_zero() && self.shadow_methods.is_empty() {
            return Err(at(
                "shadow_methods",
                "shadow_methods is empty, so no request would be copied; list the methods to \
                 mirror, e.g. shadow_methods = [\"GET\", \"HEAD\"]"
                    .to_string(),
            ));
        }
        for (index, guardrail) in self.guardrails.iter().enumerate() {
            guardrail.check().map_err(|(key, message)| {
                let offset = key_offset(text, GUARDRAILS, index, key);
                let message = format!(
                    "guardrail {} ({}): {message}",
                    index + 1,
                    guardrail.metric.name()
                );
                located(text, path, offset, message)
            })?;
        }
        Ok(())
    }

    fn check_steps(&self) -> Result<(), String> {
        let last = self.steps.last().ok_or_else(|| {
            "steps is empty; write e.g. steps = [\"1%\", \"10%\", \"50%\", \"100%\"]".to_string()
        })?;
        let mut previous = Percent::ZERO;
        for (index, &step) in self.steps.iter().enumerate() {
            // The proxy splits traffic in basis points.
            if !step.parts_per_million().is_multiple_of(100) {
                return Err(format!(
                    "step {} ({step}) is finer than the proxy can split traffic (0.01%); round it",
                    index + 1
                ));
            }
            if step <= previous {
                return Err(format!(
                    "canary steps must increase from above 0%: step {} ({step}) is not above \
                     {previous}",
                    index + 1
                ));
            }
            previous = step;
        }
        if !last.is_full() {
            return Err(format!(
                "the last canary step is {last}; end the steps with \"100%\" so the candidate \
                 takes all traffic"
            ));
        }
        Ok(())
    }
}

impl GuardrailConfig {
    /// The first problem, with the key it is at.
    fn check(&self) -> Result<(), (&'static str, String)> {
        let metric = self.metric.name();
        if self.window.get().is_zero() {
            return Err((
                "window",
                "window = \"0s\" measures nothing; give it one such as \"2m\"".to_string(),
            ));
        }
        let foreign: &[(&'static str, bool, &str)] = &[
            ("server", self.server.is_some(), "prometheus"),
            ("query", self.query.is_some(), "prometheus"),
            ("url", self.url.is_some(), "http"),
            ("json_path", self.json_path.is_some(), "http"),
        ];
        for &(key, written, owner) in foreign {
            if written && owner != metric {
                return Err((
                    key,
                    format!("{key} belongs to {owner} guardrails; remove it from this one"),
                ));
            }
        }
        match self.metric {
            GuardrailMetric::ErrorRate
            | GuardrailMetric::ErrorRateVsStable
            | GuardrailMetric::ShadowMismatchRate => {
                if self.min.is_some() {
                    return Err((
                        "min",
                        format!("{metric} takes only max, the highest rate that holds"),
                    ));
                }
                match self.max {
                    Some(GuardrailLimit::Percent(_)) => {}
                    Some(other) => {
                        return Err((
                            "max",
                            format!(
                                "max = {other}, but {metric} is a rate; write a percentage \
                                 such as max = \"1%\""
                            ),
                        ));
                    }
                    None => {
                        return Err((
                            "metric",
                            format!("{metric} needs max, a percentage such as max = \"1%\""),
                        ));
                    }
                }
            }
            GuardrailMetric::P99Latency => {
                if self.min.is_some() {
                    return Err((
                        "min",
                        format!("{metric} takes only max, the highest latency that holds"),
                    ));
                }
                match self.max {
                    Some(GuardrailLimit::Duration(_)) => {}
                    Some(other) => {
                        return Err((
                            "max",
                            format!(
                                "max = {other}, but {metric} is a latency; write a duration \
                                 such as max = \"1200ms\""
                            ),
                        ));
                    }
                    None => {
                        return Err((
                            "metric",
                            format!("{metric} needs max, a duration such as max = \"1200ms\""),
                        ));
                    }
                }
            }
            GuardrailMetric::Prometheus | GuardrailMetric::Http => {
                let required: [(&'static str, &Option<String>, &str); 2] =
                    if self.metric == GuardrailMetric::Prometheus {
                        [
                            ("server", &self.server, "\"http://127.0.0.1:9090\""),
                            ("query", &self.query, "'sum(rate(orders_total[2m]))'"),
                        ]
                    } else {
                        [
                            ("url", &self.url, "\"http://127.0.0.1:8081/stats\""),
                            ("json_path", &self.json_path, "\"$.success_rate\""),
                        ]
                    };
                for (key, value, example) in required {
                    if value.as_deref().is_none_or(|value| value.trim().is_empty()) {
                        return Err((
                            "metric",
                            format!("{metric} needs {key}, e.g. {key} = {example}"),
                        ));
                    }
                }
                let [(address_key, address, example), ..] = required;
                check_plain_http(address_key, address.as_deref().unwrap_or_default(), example)
                    .map_err(|message| (address_key, message))?;
                if let Some(path) = &self.json_path
                    && let Err(error) = serde_json_path::JsonPath::parse(path)
                {
                    return Err((
                        "json_path",
                        format!(
                            "json_path = {path:?} is not a JSONPath (RFC 9535): {error}; write \
                             e.g. json_path = \"$.success_rate\""
                        ),
                    ));
                }
                let mut numbers = [None, None];
                for (slot, (key, limit)) in numbers
                    .iter_mut()
                    .zip([("min", self.min), ("max", self.max)])
                {
                    match limit {
                        Some(GuardrailLimit::Number(number)) if number.is_finite() => {
                            *slot = Some(number);
                        }
                        Some(other) => {
                            return Err((
                                key,
                                format!(
                                    "{key} = {other}, but a {metric} guardrail compares a plain \
                                     number; write it without quotes, e.g. {key} = 0.95"
                                ),
                            ));
                        }
                        None => {}
                    }
                }
                match numbers {
                    [None, None] => {
                        return Err((
                            "metric",
                            format!("{metric} needs min or max (or both), e.g. min = 0.95"),
                        ));
                    }
                    [Some(min), Some(max)] if min > max => {
                        return Err((
                            "min",
                            format!("min ({min}) is above max ({max}), so nothing could hold"),
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// A guardrail's `server` or `url`, or a notification's `webhook`, must be
/// a plain `http://` address with a host: the daemon reaches it with its
/// own HTTP/1 client, which speaks no TLS, and an address that cannot be
/// reached would only fail at deploy time, long after the file was written.
pub(crate) fn check_plain_http(key: &str, address: &str, example: &str) -> Result<(), String> {
    let users = if key == "webhook" {
        "webhooks"
    } else {
        "guardrails"
    };
    let uri: http::Uri = address.parse().map_err(|error| {
        format!("{key} = {address:?} is not a URL ({error}); write e.g. {key} = {example}")
    })?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(format!(
                "{key} = {address:?} uses https, which {users} cannot use: baton speaks to \
                 them over plain http; use an http:// address (e.g. one on 127.0.0.1, or a \
                 local proxy in front of the TLS endpoint)"
            ));
        }
        Some(other) => {
            return Err(format!(
                "{key} = {address:?} uses {other}://; {users} take only http:// addresses, \
                 e.g. {key} = {example}"
            ));
        }
        None => {
            return Err(format!(
                "{key} = {address:?} has no scheme; write the whole address, e.g. {key} = \
                 {example}"
            ));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!(
            "{key} = {address:?} names no host; write e.g. {key} = {example}"
        ));
    }
    if key == "server" && uri.query().is_some() {
        return Err(format!(
            "{key} = {address:?} has a ?query; give the Prometheus server's base address \
             (baton adds /api/v1/query and the query), e.g. {key} = {example}"
        ));
    }
    Ok(())
}

/// Where `key = …` is written in the `occurrence`-th (0-based) table
/// headed `header`, else where that table starts, else where `key` first
/// appears at all. Positions after parsing are searched for because the
/// parsed values no longer carry their spans; a line-based scan is enough
/// for the way `baton.toml` is written.
pub(crate) fn key_offset(text: &str, header: &str, occurrence: usize, key: &str) -> usize {
    key_line(text, header, occurrence, key)
        .or_else(|| table_start(text, header, occurrence))
        .or_else(|| text.find(key))
        .unwrap_or(0)
}

fn key_line(text: &str, header: &str, occurrence: usize, key: &str) -> Option<usize> {
    let mut seen = 0;
    let mut inside = false;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            if inside {
                return None;
            }
            if table_header(trimmed) == header {
                inside = seen == occurrence;
                seen += 1;
            }
            continue;
        }
        let written = trimmed
            .split_once('=')
            .map(|(name, _)| name.trim().trim_matches('"'));
        if inside && written == Some(key) {
            return Some(start + (line.len() - trimmed.len()));
        }
    }
    None
}

fn table_start(text: &str, header: &str, occurrence: usize) -> Option<usize> {
    let mut offset = 0;
    let mut seen = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') && table_header(trimmed) == header {
            if seen == occurrence {
                return Some(offset + (line.len() - trimmed.len()));
            }
            seen += 1;
        }
        offset += line.len();
    }
    None
}

/// `[[ rollout.guardrails ]]  # note` as `[[rollout.guardrails]]`.
fn table_header(line: &str) -> String {
    let code = line.split_once('#').map_or(line, |(code, _)| code);
    code.chars().filter(|c| !c.is_whitespace()).collect()
}

pub(crate) fn located(text: &str, path: &Path, offset: usize, message: String) -> ConfigError {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(1, |start| start.chars().count() + 1);
    ConfigError {
        path: path.to_path_buf(),
        line,
        column,
        message,
    }
}

/// A name that can travel in URLs, file names and the proxy's route table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AppName(String);

impl AppName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AppName {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        crate::check_service_name(&name)?;
        Ok(AppName(name))
    }
}

impl<'de> Deserialize<'de> for AppName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        AppName::try_from(String::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

/// A URL path: starts with `/`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct UrlPath(String);

impl UrlPath {
    /// The path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for UrlPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let path = String::deserialize(deserializer)?;
        if !path.starts_with('/') || path.chars().any(char::is_whitespace) {
            return Err(de::Error::custom(format!(
                "{path:?} is not a URL path; it must start with '/' (e.g. \"/health\")"
            )));
        }
        Ok(UrlPath(path))
    }
}

/// A path inside a release: relative, no `..`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RelativePath(PathBuf);

impl RelativePath {
    /// A path known to be relative and without `..`.
    pub(crate) fn new(path: PathBuf) -> Self {
        RelativePath(path)
    }

    /// The path.
    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

impl<'de> Deserialize<'de> for RelativePath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let path = PathBuf::from(text.trim_end_matches('/'));
        let inside = !text.is_empty()
            && path.is_relative()
            && path
                .components()
                .all(|part| matches!(part, std::path::Component::Normal(_)));
        if !inside {
            return Err(de::Error::custom(format!(
                "{text:?} must be a path inside the release, like \"storage\" or \"public/assets\" \
                 (relative, without '..')"
            )));
        }
        Ok(RelativePath(path))
    }
}

/// A duration written as text (`"30s"`, `"250ms"`, `"1h"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurationText(pub Duration);

impl DurationText {
    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl fmt::Display for DurationText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for DurationText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(text.trim())
            .map(DurationText)
            .map_err(|error| {
                de::Error::custom(format!(
                    "{text:?} is not a duration ({error}); write e.g. \"30s\", \"250ms\" or \"1h\""
                ))
            })
    }
}

/// The signal that asks a process to stop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGTERM.
    #[default]
    Term,
    /// SIGINT.
    Int,
    /// SIGQUIT.
    Quit,
    /// SIGHUP.
    Hup,
    /// SIGUSR1.
    Usr1,
    /// SIGUSR2.
    Usr2,
    /// SIGWINCH.
    Winch,
    /// SIGKILL.
    Kill,
}

impl StopSignal {
    const ALL: [(StopSignal, &'static str); 8] = [
        (StopSignal::Term, "TERM"),
        (StopSignal::Int, "INT"),
        (StopSignal::Quit, "QUIT"),
        (StopSignal::Hup, "HUP"),
        (StopSignal::Usr1, "USR1"),
        (StopSignal::Usr2, "USR2"),
        (StopSignal::Winch, "WINCH"),
        (StopSignal::Kill, "KILL"),
    ];

    /// The name without `SIG` (`TERM`).
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(signal, _)| *signal == self)
            .map_or("TERM", |(_, name)| name)
    }

    /// Parses `TERM`, `SIGTERM` or `term`.
    pub fn parse(text: &str) -> Option<StopSignal> {
        let upper = text.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        Self::ALL
            .iter()
            .find(|(_, name)| *name == bare)
            .map(|(signal, _)| *signal)
    }
}

impl fmt::Display for StopSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for StopSignal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for StopSignal {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        StopSignal::parse(&text).ok_or_else(|| {
            de::Error::custom(format!(
                "{text:?} is not a stop signal; use one of TERM, INT, QUIT, HUP, USR1, USR2, WINCH, KILL"
            ))
        })
    }
}

fn default_path_prefix() -> UrlPath {
    UrlPath("/".to_string())
}
fn default_health_path() -> UrlPath {
    UrlPath("/health".to_string())
}
fn default_keep_releases() -> NonZeroU32 {
    NonZeroU32::MIN.saturating_add(4)
}
fn one() -> NonZeroU32 {
    NonZeroU32::MIN
}
fn two() -> NonZeroU32 {
    NonZeroU32::MIN.saturating_add(1)
}
fn default_build_timeout() -> DurationText {
    DurationText(Duration::from_secs(30 * 60))
}
fn default_hook_timeout() -> DurationText {
    DurationText(Duration::from_secs(5 * 60))
}
fn default_health_interval() -> DurationText {
    DurationText(Duration::from_millis(100))
}
fn default_health_timeout() -> DurationText {
    DurationText(Duration::from_secs(2))
}
fn default_boot_timeout() -> DurationText {
    DurationText(Duration::from_secs(60))
}
fn default_thirty_seconds() -> DurationText {
    DurationText(Duration::from_secs(30))
}
fn default_keep_warm() -> DurationText {
    DurationText(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
[app]
name = "hello"
root = "/srv/hello"
hosts = ["hello.test"]
path_prefix = "/"
keep_releases = 5
shared = [".env", "storage"]
asset_dir = "public/assets"

[build]
steps = ["make build"]

[hooks]
before_deploy = "bin/check"
before_traffic = "bin/warm-cache"
after_deploy = "bin/notify"

[web]
command = "./server"
processes = 1
health_path = "/health"
health_interval = "100ms"
healthy_after = 2
boot_timeout = "60s"
drain_timeout = "30s"
stop_signal = "TERM"
stop_timeout = "30s"
keep_warm = "60s"
env = { RUST_LOG = "info" }

[[workers]]
name = "jobs"
command = "./worker"
processes = 2
stop_signal = "QUIT"
stop_timeout = "1h"
singleton = false
"#;

    fn parse(text: &str) -> Result<AppConfig, ConfigError> {
        AppConfig::parse(text, Path::new("/app/baton.toml"))
    }

    #[test]
    fn the_documented_file_parses() {
        let config = parse(FULL).unwrap();
        assert_eq!(config.name(), "hello");
        assert_eq!(config.web.health_interval.get(), Duration::from_millis(100));
        assert_eq!(
            config.workers[0].stop_timeout.get(),
            Duration::from_secs(3600)
        );
        assert_eq!(config.workers[0].stop_signal, StopSignal::Quit);
        assert_eq!(config.app.shared.len(), 2);
        assert_eq!(config.web.env["RUST_LOG"], "info");
    }

    #[test]
    fn a_config_survives_the_wire() {
        let with_rollout = format!("{FULL}{ROLLOUT}");
        let mut with_limits = parse(BASE).unwrap();
        // Built by hand: a file could not hold these guardrails yet, but a
        // stored config may once it can.
        with_limits.rollout.guardrails = vec![GuardrailConfig {
            metric: GuardrailMetric::Prometheus,
            max: Some(GuardrailLimit::Number(1.5)),
            min: Some(GuardrailLimit::Number(0.95)),
            window: DurationText(Duration::from_secs(90)),
            server: Some("http://127.0.0.1:9090".to_string()),
            query: Some("sum(rate(x[2m]))".to_string()),
            url: None,
            json_path: None,
        }];
        with_limits.rollout.shadow = percent("0.0001%");
        for config in [
            parse(FULL).unwrap(),
            parse(&with_rollout).unwrap(),
            with_limits,
        ] {
            let json = serde_json::to_string(&config).unwrap();
            let back: AppConfig = serde_json::from_str(&json).unwrap();
            assert_eq!(back, config, "{json}");
        }
        let json = serde_json::to_value(parse(&with_rollout).unwrap().rollout).unwrap();
        assert_eq!(json["steps"][0], "1%");
        assert_eq!(json["guardrails"][2]["max"], "0.5%");
        assert_eq!(json["guardrails"][1]["max"], "1s 200ms");
        assert_eq!(json["bake"], "5m");
    }

    #[test]
    fn defaults_fill_a_minimal_file() {
        let config =
            parse("[app]\nname = \"a\"\nroot = \"srv\"\n[web]\ncommand = \"./s\"\n").unwrap();
        assert_eq!(config.app.root, PathBuf::from("/app/srv"));
        assert_eq!(config.app.keep_releases.get(), 5);
        assert_eq!(config.web.healthy_after.get(), 2);
        assert_eq!(config.web.keep_warm.get(), Duration::from_secs(60));
        assert_eq!(config.web.stop_signal, StopSignal::Term);
        assert!(config.workers.is_empty());
    }

    #[test]
    fn a_bad_duration_points_at_its_line_and_column() {
        let text = "[app]\nname = \"a\"\nroot = \"/r\"\n[web]\ncommand = \"./s\"\ndrain_timeout = \"soon\"\n";
        let error = parse(text).unwrap_err();
        assert_eq!((error.line, error.column), (6, 17), "{error}");
        assert!(error.message.contains("not a duration"), "{error}");
        assert!(
            error.to_string().starts_with("/app/baton.toml:6:17: "),
            "{error}"
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_where_they_are() {
        let typo = "[app]\nname = \"a\"\nroot = \"/r\"\n[web]\ncomand = \"./s\"\n";
        let error = parse(typo).unwrap_err();
        assert_eq!(error.line, 5, "{error}");
        assert!(error.message.contains("comand"), "{error}");

        let signal = "[app]\nname = \"a\"\nroot = \"/r\"\n[web]\ncommand = \"x\"\nstop_signal = \"NICELY\"\n";
        let error = parse(signal).unwrap_err();
        assert_eq!(error.line, 6, "{error}");
        assert!(error.message.contains("USR1"), "{error}");

        let name = "[app]\nname = \"a b\"\nroot = \"/r\"\n[web]\ncommand = \"x\"\n";
        assert_eq!(parse(name).unwrap_err().line, 2);

        let shared =
            "[app]\nname = \"a\"\nroot = \"/r\"\nshared = [\"../etc\"]\n[web]\ncommand = \"x\"\n";
        assert_eq!(parse(shared).unwrap_err().line, 4);

        let health = "[app]\nname = \"a\"\nroot = \"/r\"\n[web]\ncommand = \"x\"\nhealth_path = \"health\"\n";
        assert_eq!(parse(health).unwrap_err().line, 6);
    }

    #[test]
    fn duplicate_workers_and_missing_sections_are_refused() {
        let twice = "[app]\nname = \"a\"\nroot = \"/r\"\n[web]\ncommand = \"x\"\n\
                     [[workers]]\nname = \"jobs\"\ncommand = \"w\"\n\
                     [[workers]]\nname = \"jobs\"\ncommand = \"w\"\n";
        let error = parse(twice).unwrap_err();
        assert_eq!(error.line, 10, "{error}");
        let no_web = "[app]\nname = \"a\"\nroot = \"/r\"\n";
        assert!(parse(no_web).unwrap_err().message.contains("web"));
    }

    #[test]
    fn smoke_checks_parse_with_defaults() {
        let text = "[app]\nname = \"a\"\nroot = \"/r\"\n[web]\ncommand = \"x\"\n\
                    [[smoke]]\npath = \"/\"\nexpect_body = \"ok\"\nmax_latency = \"300ms\"\n\
                    [[smoke]]\nmethod = \"post\"\npath = \"/admin\"\nexpect_status = 401\n\
                    headers = { X-Test = \"1\" }\nbody = \"{}\"\n";
        let config = parse(text).unwrap();
        assert_eq!(config.smoke.len(), 2);
        assert_eq!(config.smoke[0].method.as_str(), "GET");
        assert_eq!(config.smoke[0].expect_status, 200);
        assert_eq!(
            config.smoke[0].max_latency.map(DurationText::get),
            Some(Duration::from_millis(300))
        );
        assert_eq!(config.smoke[1].method.as_str(), "POST");
        assert_eq!(config.smoke[1].expect_status, 401);
        let bad = "[app]\nname = \"a\"\nroot = \"/r\"\n[web]\ncommand = \"x\"\n\
                   [[smoke]]\npath = \"/\"\nexpect_status = 42\n";
        assert_eq!(parse(bad).unwrap_err().line, 8);
    }

    const BASE: &str = "[app]\nname = \"a\"\nroot = \"/r\"\n[web]\ncommand = \"./s\"\n";

    /// The `[rollout]` example of the docs, up to its external guardrails.
    const ROLLOUT: &str = r#"
[rollout]
strategy = "canary"                    # "replace" (default), "blue-green", "canary"
steps = ["1%", "10%", "50%", "100%"]   # canary weights
step_duration = "2m"                   # time at a step before the next, if the guardrails hold
step_timeout = "15m"                   # a step that cannot gather evidence this long aborts
min_requests = 100                     # a window with fewer requests is "no evidence": wait, never pass
bake = "5m"                            # guardrails keep watching after 100%
sticky = true                          # a client stays on its version (cookie baton_version)
override_header = true                 # X-Baton-Version: candidate|stable forces a version (testers)
shadow = "0%"                          # mirror this share of requests to the candidate before live traffic
shadow_duration = "1m"
shadow_methods = ["GET", "HEAD"]

[[rollout.guardrails]]                 # every guardrail must hold
metric = "error_rate"                  # (5xx + connection failures) / requests, per version
max = "1%"
window = "2m"
[[rollout.guardrails]]
metric = "p99_latency"
max = "1200ms"
window = "3m"
[[rollout.guardrails]]
metric = "error_rate_vs_stable"        # candidate minus stable over the same window
max = "0.5%"
window = "2m"
"#;

    const PROMETHEUS: &str = r#"
[[rollout.guardrails]]                 # a business or external metric (seed: "checkout drop > 5%")
metric = "prometheus"
server = "http://127.0.0.1:9090"
query = 'sum(rate(checkout_completed_total[2m]))'
min = 0.95                             # or max; compared each window
window = "2m"
"#;

    const HTTP: &str = r#"
[[rollout.guardrails]]
metric = "http"                        # any JSON endpoint
url = "http://127.0.0.1:8081/stats"
json_path = "$.checkout_success_rate"
min = 0.98
window = "1m"
"#;

    const SMOKE: &str = r#"
[[smoke]]                              # run against the candidate directly, before it sees live traffic
method = "GET"                         # optional, with headers = {…} and body = "…"
path = "/"
expect_status = 200
expect_body = "ok"                     # optional substring
max_latency = "300ms"
"#;

    /// The 1-based line of the `nth` (0-based) line containing `needle`.
    fn line_of(text: &str, needle: &str, nth: usize) -> usize {
        text.lines()
            .enumerate()
            .filter(|(_, line)| line.contains(needle))
            .nth(nth)
            .map(|(index, _)| index + 1)
            .unwrap()
    }

    fn percent(text: &str) -> Percent {
        text.parse().unwrap()
    }

    #[test]
    fn the_documented_rollout_section_parses() {
        let text = format!("{BASE}{ROLLOUT}{SMOKE}");
        let rollout = parse(&text).unwrap().rollout;
        assert_eq!(rollout.strategy, RolloutStrategy::Canary);
        let steps: Vec<String> = rollout.steps.iter().map(Percent::to_string).collect();
        assert_eq!(steps, ["1%", "10%", "50%", "100%"]);
        assert_eq!(rollout.step_duration.get(), Duration::from_secs(120));
        assert_eq!(rollout.step_timeout.get(), Duration::from_secs(900));
        assert_eq!(rollout.min_requests, 100);
        assert_eq!(
            rollout.bake.map(DurationText::get),
            Some(Duration::from_secs(300))
        );
        assert!(rollout.sticky && rollout.override_header);
        assert!(rollout.shadow.is_zero());
        assert_eq!(rollout.shadow_methods.len(), 2);
        assert_eq!(rollout.guardrails.len(), 3);
        let first = &rollout.guardrails[0];
        assert_eq!(first.metric, GuardrailMetric::ErrorRate);
        assert_eq!(first.max, Some(GuardrailLimit::Percent(percent("1%"))));
        assert_eq!(first.window.get(), Duration::from_secs(120));
        assert_eq!(
            rollout.guardrails[1].max,
            Some(GuardrailLimit::Duration(DurationText(
                Duration::from_millis(1200)
            )))
        );
        assert_eq!(
            rollout.guardrails[2].max.map(|max| max.to_string()),
            Some("\"0.5%\"".to_string())
        );
    }

    #[test]
    fn external_and_shadow_mismatch_guardrails_are_read() {
        let text = format!("{BASE}{ROLLOUT}{PROMETHEUS}{HTTP}{SMOKE}");
        let rollout = parse(&text).unwrap().rollout;
        let prometheus = &rollout.guardrails[3];
        assert_eq!(prometheus.metric, GuardrailMetric::Prometheus);
        assert_eq!(prometheus.server.as_deref(), Some("http://127.0.0.1:9090"));
        assert_eq!(
            prometheus.query.as_deref(),
            Some("sum(rate(checkout_completed_total[2m]))")
        );
        assert_eq!(prometheus.min, Some(GuardrailLimit::Number(0.95)));
        let http = &rollout.guardrails[4];
        assert_eq!(http.metric, GuardrailMetric::Http);
        assert_eq!(http.url.as_deref(), Some("http://127.0.0.1:8081/stats"));
        assert_eq!(http.json_path.as_deref(), Some("$.checkout_success_rate"));
        assert_eq!(http.window.get(), Duration::from_secs(60));
        let text = format!(
            "{BASE}[rollout]\nshadow = \"10%\"\n[[rollout.guardrails]]\n\
             metric = \"shadow_mismatch_rate\"\nmax = \"1%\"\nwindow = \"1m\"\n"
        );
        let rollout = parse(&text).unwrap().rollout;
        assert_eq!(
            rollout.guardrails[0].metric,
            GuardrailMetric::ShadowMismatchRate
        );
        assert_eq!(
            rollout.guardrails[0].max,
            Some(GuardrailLimit::Percent(percent("1%")))
        );
    }

    #[test]
    fn rollout_defaults_keep_a_plain_deploy_as_it_was() {
        let rollout = parse(BASE).unwrap().rollout;
        assert_eq!(rollout, RolloutSection::default());
        assert_eq!(rollout.strategy, RolloutStrategy::Replace);
        let steps: Vec<u32> = rollout
            .steps
            .iter()
            .map(|s| s.parts_per_million())
            .collect();
        assert_eq!(steps, [10_000, 100_000, 500_000, 1_000_000]);
        assert_eq!(rollout.step_duration.get(), Duration::from_secs(120));
        assert_eq!(rollout.step_timeout.get(), Duration::from_secs(900));
        assert_eq!(rollout.min_requests, 100);
        assert_eq!(rollout.bake, None);
        assert_eq!(rollout.bake_for(RolloutStrategy::Replace), Duration::ZERO);
        assert_eq!(
            rollout.bake_for(RolloutStrategy::Canary),
            Duration::from_secs(300)
        );
        assert_eq!(
            rollout.bake_for(RolloutStrategy::BlueGreen),
            Duration::from_secs(300)
        );
        assert!(rollout.sticky && rollout.override_header);
        assert_eq!(rollout.shadow, Percent::ZERO);
        assert_eq!(rollout.shadow_duration.get(), Duration::from_secs(60));
        let methods: Vec<&str> = rollout
            .shadow_methods
            .iter()
            .map(HttpMethod::as_str)
            .collect();
        assert_eq!(methods, ["GET", "HEAD"]);
        assert!(rollout.guardrails.is_empty());

        let set = parse(&format!("{BASE}[rollout]\nbake = \"30s\"\n")).unwrap();
        assert_eq!(
            set.rollout.bake_for(RolloutStrategy::Replace),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn the_slo_section_is_read_and_checked_where_it_is_written() {
        let base =
            "[app]\nname = \"web\"\nroot = \"/srv/web\"\n\n[web]\ncommand = \"./server\"\n\n";
        let config = parse(&format!(
            "{base}[slo]\navailability = \"99.9%\"\nwindow = \"1h\"\n"
        ))
        .expect("slo");
        let slo = config.slo.expect("slo");
        assert!((slo.availability.fraction() - 0.999).abs() < 1e-12);
        assert_eq!(slo.window.get(), Duration::from_secs(3600));
        let default = parse(&format!("{base}[slo]\navailability = \"99%\"\n")).expect("slo");
        assert_eq!(
            default.slo.expect("slo").window.get(),
            Duration::from_secs(30 * 24 * 3600)
        );
        assert_eq!(parse(base).expect("no slo").slo, None);
        for (bad, key, says) in [
            ("availability = \"100%\"\n", "availability", "below 100%"),
            ("availability = \"0%\"\n", "availability", "above 0%"),
            ("availability = \"99.9\"\n", "availability", "percentage"),
            (
                "availability = \"99%\"\nwindow = \"30s\"\n",
                "window",
                "from \"1m\"",
            ),
            (
                "availability = \"99%\"\nwindow = \"40d\"\n",
                "window",
                "35d",
            ),
            (
                "availability = \"99%\"\nwindow = \"soon\"\n",
                "window",
                "not a duration",
            ),
            (
                "availability = \"99%\"\nbudget = 3\n",
                "budget",
                "unknown field",
            ),
            (
                "window = \"1h\"\n",
                "window",
                "missing field `availability`",
            ),
        ] {
            let text = format!("{base}[slo]\n{bad}");
            let error = parse(&text).expect_err(bad);
            assert!(error.message.contains(says), "{bad}: {error}");
            let expected_line = if key == "window" && bad.starts_with("window") {
                line_of(&text, "[slo]", 0)
            } else {
                line_of(&text, key, 0)
            };
            assert_eq!(error.line, expected_line, "{bad}: {error}");
        }
    }

    #[test]
    fn rollout_errors_point_at_the_key() {
        // (the lines after BASE, the key whose line the error is on, what it says)
        let cases: &[(&str, &str, &str)] = &[
            (
                "[rollout]\nstrategy = \"canary\"\nsteps = [\"10%\", \"5%\", \"100%\"]\n",
                "steps",
                "step 2 (5%) is not above 10%",
            ),
            (
                "[rollout]\nsteps = [\"1%\", \"50%\"]\n",
                "steps",
                "the last canary step is 50%",
            ),
            ("[rollout]\nsteps = []\n", "steps", "steps is empty"),
            (
                "[rollout]\nsteps = [\"0%\", \"100%\"]\n",
                "steps",
                "step 1 (0%) is not above 0%",
            ),
            (
                "[rollout]\nsteps = [\"0.005%\", \"100%\"]\n",
                "steps",
                "finer than the proxy can split",
            ),
            (
                "[rollout]\nstep_duration = \"5m\"\nstep_timeout = \"1m\"\n",
                "step_timeout",
                "step_timeout (1m) is shorter than step_duration (5m)",
            ),
            (
                "[rollout]\nstep_duration = \"20m\"\n",
                "step_duration",
                "is shorter than step_duration (20m)",
            ),
            (
                "[rollout]\nmin_requests = 0\n",
                "min_requests",
                "min_requests = 0",
            ),
            (
                "[rollout]\nshadow = \"5%\"\nshadow_methods = []\n",
                "shadow_methods =",
                "shadow_methods is empty, so no request would be copied",
            ),
            (
                "[[rollout.guardrails]]\nmetric = \"error_rate\"\nmax = \"1%\"\nwindow = \"1m\"\n\
                 [[rollout.guardrails]]\nmetric = \"p99_latency\"\nmax = \"2%\"\nwindow = \"1m\"\n",
                "max = \"2%\"",
                "guardrail 2 (p99_latency): max = \"2%\", but p99_latency is a latency",
            ),
            (
                "[[rollout.guardrails]]\nmetric = \"error_rate\"\nwindow = \"1m\"\nmax = \"300ms\"\n",
                "max",
                "max = \"300ms\", but error_rate is a rate",
            ),
            (
                "[[rollout.guardrails]]\nmetric = \"error_rate_vs_stable\"\nmax = 0.5\nwindow = \"1m\"\n",
                "max",
                "but error_rate_vs_stable is a rate; write a percentage",
            ),
            (
                "[[rollout.guardrails]]\nmetric = \"error_rate\"\nmin = \"1%\"\nmax = \"2%\"\nwindow = \"1m\"\n",
                "min",
                "error_rate takes only max",
            ),
            (
                "[[rollout.guardrails]]\nmetric = \"error_rate\"\nwindow = \"1m\"\n",
                "metric",
                "error_rate needs max",
            ),
            (
                "[[rollout.guardrails]]\nmetric = \"error_rate\"\nmax = \"1%\"\nwindow = \"0s\"\n",
                "window",
                "window = \"0s\" measures nothing",
            ),
            (
                "[[rollout.guardrails]]\nmetric = \"error_rate\"\nmax = \"1%\"\nwindow = \"1m\"\n\
                 query = \"up\"\n",
                "query",
                "query belongs to prometheus guardrails",
            ),
            (
                "[[rollout.guardrails]]\nmetric = \"prometheus\"\nserver = \"http://p:9090\"\n\
                 min = 0.9\nwindow = \"1m\"\n",
                "metric",
                "prometheus needs query",
            ),
            (
                "[[rollout.guardrails]]\nmetric = \"prometheus\"\nserver = \"http://p:9090\"\n\
                 query = \"up\"\nwindow = \"1m\"\nmax = \"5%\"\n",
                "max",
                "a prometheus guardrail compares a plain number",
            ),
            (
                "[[rollout.guardrails]]\nmetric = \"http\"\nurl = \"http://s/stats\"\n\
                 json_path = \"$.ok\"\nwindow = \"1m\"\nmin = 2\nmax = 1\n",
                "min",
                "min (2) is above max (1)",
            ),
            (
                "[[rollout.guardrails]]\nmetric = \"http\"\nwindow = \"1m\"\nmin = 1\n\
                 url = \"https://s/stats\"\njson_path = \"$.ok\"\n",
                "url",
                "url = \"https://s/stats\" uses https, which guardrails cannot use",
            ),
            (
                "[[rollout.guardrails]]\nmetric = \"prometheus\"\nquery = \"up\"\n\
                 window = \"1m\"\nmin = 1\nserver = \"127.0.0.1:9090\"\n",
                "server",
                "server = \"127.0.0.1:9090\" has no scheme",
            ),
            (
                "[[rollout.guardrails]]\nmetric = \"prometheus\"\nquery = \"up\"\n\
                 window = \"1m\"\nmin = 1\nserver = \"ftp://p/\"\n",
                "server",
                "uses ftp://; guardrails take only http:// addresses",
            ),
            (
                "[[rollout.guardrails]]\nmetric = \"prometheus\"\nquery = \"up\"\n\
                 window = \"1m\"\nmin = 1\nserver = \"http://p:9090/?x=1\"\n",
                "server",
                "has a ?query; give the Prometheus server's base address",
            ),
            (
                "[[rollout.guardrails]]\nmetric = \"http\"\nwindow = \"1m\"\nmin = 1\n\
                 url = \"http://s/a b\"\njson_path = \"$.ok\"\n",
                "url",
                "url = \"http://s/a b\" is not a URL",
            ),
            (
                "[[rollout.guardrails]]\nmetric = \"http\"\nwindow = \"1m\"\nmin = 1\n\
                 url = \"http://s/stats\"\njson_path = \"checkout.rate\"\n",
                "json_path",
                "json_path = \"checkout.rate\" is not a JSONPath (RFC 9535)",
            ),
        ];
        for &(lines, key, message) in cases {
            let text = format!("{BASE}{lines}");
            let error = parse(&text).unwrap_err();
            let line = line_of(&text, key, 0);
            assert_eq!(error.line, line, "{lines}: {error}");
            assert!(error.message.contains(message), "{lines}: {error}");
        }
    }

    #[test]
    fn rollout_values_are_refused_while_read() {
        let cases: &[(&str, usize, &str)] = &[
            ("[rollout]\nstrategy = \"big-bang\"\n", 7, "blue-green"),
            (
                "[rollout]\nshadow = \"half\"\n",
                7,
                "not a valid percentage",
            ),
            (
                "[rollout]\nsteps = [\"1%\", \"150%\"]\n",
                7,
                "more than 100%",
            ),
            (
                "[rollout]\nshadow_methods = [\"G T\"]\n",
                7,
                "not an HTTP method",
            ),
            (
                "[rollout]\nstep_duration = \"later\"\n",
                7,
                "not a duration",
            ),
            ("[rollout]\nstrateg = \"canary\"\n", 7, "strateg"),
            (
                "[[rollout.guardrails]]\nmetric = \"error_rate\"\nmax = \"often\"\nwindow = \"1m\"\n",
                8,
                "neither a percentage",
            ),
            (
                "[[rollout.guardrails]]\nmetric = \"errors\"\nmax = \"1%\"\nwindow = \"1m\"\n",
                7,
                "p99_latency",
            ),
            (
                "[[rollout.guardrails]]\nmetric = \"error_rate\"\nmax = \"1%\"\nwndow = \"1m\"\n",
                9,
                "wndow",
            ),
        ];
        for &(lines, line, message) in cases {
            let error = parse(&format!("{BASE}{lines}")).unwrap_err();
            assert_eq!(error.line, line, "{lines}: {error}");
            assert!(error.message.contains(message), "{lines}: {error}");
        }
    }

    #[test]
    fn percentages_read_and_write_exactly() {
        for (text, ppm, written) in [
            ("1%", 10_000, "1%"),
            ("0.5%", 5_000, "0.5%"),
            ("0.0001%", 1, "0.0001%"),
            (" 12.30 %", 123_000, "12.3%"),
            ("100%", 1_000_000, "100%"),
            ("0%", 0, "0%"),
        ] {
            let percent = percent(text);
            assert_eq!(percent.parts_per_million(), ppm, "{text}");
            assert_eq!(percent.to_string(), written, "{text}");
        }
        for (text, problem) in [
            ("1", "write a percentage"),
            (".5%", "write a percentage"),
            ("-1%", "negative"),
            ("100.0001%", "more than 100%"),
            ("99999999999%", "more than 100%"),
            ("0.00001%", "more than 4 decimal places"),
        ] {
            let error = text.parse::<Percent>().unwrap_err();
            assert!(error.contains(problem), "{text}: {error}");
        }
    }

    #[test]
    fn strategies_parse_by_name() {
        assert_eq!("blue-green".parse(), Ok(RolloutStrategy::BlueGreen));
        assert_eq!(" canary".parse(), Ok(RolloutStrategy::Canary));
        let error = "bluegreen".parse::<RolloutStrategy>().unwrap_err();
        assert!(error.contains("replace, blue-green or canary"), "{error}");
    }

    #[test]
    fn flags_injection_is_read_and_its_key_checked_where_it_is_written() {
        let config = parse(&format!(
            "{BASE}[flags]\ninject = true\ntargeting_key = \"header:X-User-Id\"\n"
        ))
        .unwrap();
        assert!(config.flags.inject);
        assert_eq!(
            config.flags.targeting_key,
            Some(TargetingKey::Header("x-user-id".to_string()))
        );
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<AppConfig>(&json).unwrap(), config);
        assert_eq!(parse(BASE).unwrap().flags, FlagsSection::default());

        let base_lines = BASE.matches('\n').count();
        for (lines, column, said) in [
            (
                "[flags]\ninject = true\ntargeting_key = \"user_id\"\n",
                17,
                "names no source",
            ),
            (
                "[flags]\ninject = true\ntargeting_key = \"query:u\"\n",
                17,
                "\"query\" is not a source",
            ),
            (
                "[flags]\ntargeting_key = \"cookie:u\"\n",
                1,
                "inject is false",
            ),
            ("[flags]\ninjekt = true\n", 1, "unknown field `injekt`"),
        ] {
            let error = parse(&format!("{BASE}{lines}")).unwrap_err();
            let line = base_lines + lines.matches('\n').count();
            assert_eq!((error.line, error.column), (line, column), "{error}");
            assert!(error.message.contains(said), "{error}");
        }
    }

    #[test]
    fn signals_parse_with_or_without_sig() {
        assert_eq!(StopSignal::parse("SIGUSR1"), Some(StopSignal::Usr1));
        assert_eq!(StopSignal::parse("quit"), Some(StopSignal::Quit));
        assert_eq!(StopSignal::parse("SIGFOO"), None);
    }
}
