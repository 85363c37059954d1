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
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

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
    /// The web processes the proxy routes to.
    pub web: WebSection,
    /// Background processes.
    #[serde(default)]
    pub workers: Vec<WorkerSection>,
    /// Requests sent to each new web process directly, before it gets any
    /// live traffic; one failing check stops the deploy.
    #[serde(default)]
    pub smoke: Vec<SmokeCheck>,
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
        Ok(())
    }
}

fn located(text: &str, path: &Path, offset: usize, message: String) -> ConfigError {
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
        let config = parse(FULL).unwrap();
        let json = serde_json::to_string(&config).unwrap();
        let back: AppConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
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

    #[test]
    fn signals_parse_with_or_without_sig() {
        assert_eq!(StopSignal::parse("SIGUSR1"), Some(StopSignal::Usr1));
        assert_eq!(StopSignal::parse("quit"), Some(StopSignal::Quit));
        assert_eq!(StopSignal::parse("SIGFOO"), None);
    }
}
