//! `baton probe URL`: send steady load at a URL and count every failure.
//! Argument parsing and output only; the probing is `baton_probe`'s.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use baton_probe::{ProbeConfig, Report, parse_header};

use crate::duration_arg::{parse_duration, parse_size};

/// Send load to a URL and count every failed request, by kind.
///
/// Runs until --duration ends (or --requests were sent, whichever comes
/// first), then prints a report. Ctrl-C ends the run early and still
/// reports.
#[derive(clap::Args, Debug)]
pub struct ProbeArgs {
    /// URL to send requests to (http:// or https://).
    #[arg(value_name = "URL")]
    pub url: String,

    /// How long to send requests, e.g. 10s, 500ms, 2m.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Stop after this many requests in total (or at the end of --duration,
    /// whichever comes first).
    #[arg(long, value_name = "N")]
    pub requests: Option<u64>,

    /// Number of concurrent workers, each with one request in flight.
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub concurrency: usize,

    /// Total requests per second across all workers, evenly paced
    /// (default: as fast as the server answers).
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,

    /// Reuse connections across requests (the default).
    #[arg(long, overrides_with = "no_keepalive")]
    pub keepalive: bool,

    /// Open a new connection for every request and send `Connection: close`.
    #[arg(long = "no-keepalive", overrides_with = "keepalive")]
    pub no_keepalive: bool,

    /// Speak HTTP/2 (prior knowledge on http://, ALPN h2 on https://) over
    /// one connection shared by all workers.
    #[arg(long, conflicts_with = "no_keepalive")]
    pub http2: bool,

    /// HTTP method.
    #[arg(long, default_value = "GET")]
    pub method: String,

    /// Size of the request body, e.g. 1024, 64KiB, 1MiB.
    #[arg(long, default_value = "0", value_name = "SIZE", value_parser = parse_size)]
    pub body_size: u64,

    /// Extra request header, 'Name: value' (repeatable).
    #[arg(long = "header", short = 'H', value_name = "'NAME: VALUE'", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,

    /// Limit for one request, from connecting to the last byte of the
    /// response.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// Count responses per value of this response header, e.g. X-Version.
    #[arg(long, value_name = "HEADER")]
    pub count_header: Option<String>,

    /// PEM file of CA certificates to trust for https:// (default: the
    /// system's CA bundle).
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,

    /// Do not verify the server's certificate on https://.
    #[arg(long)]
    pub insecure: bool,

    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,

    /// Exit with status 1 if any request failed.
    #[arg(long)]
    pub fail_on_error: bool,

    /// Print nothing but errors (and the JSON report with --json).
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

impl ProbeArgs {
    /// The probe settings these arguments ask for.
    pub fn config(&self) -> ProbeConfig {
        ProbeConfig {
            url: self.url.clone(),
            duration: self.duration,
            requests: self.requests,
            concurrency: self.concurrency,
            rate: self.rate,
            keepalive: !self.no_keepalive,
            http2: self.http2,
            method: self.method.clone(),
            body_size: self.body_size,
            headers: self.headers.clone(),
            timeout: self.timeout,
            count_header: self.count_header.clone(),
            ca_file: self.ca.clone(),
            insecure: self.insecure,
        }
    }
}

/// Runs `baton probe`: probes, prints the report, and tells the exit status
/// (1 with --fail-on-error when a request failed, else 0).
pub async fn run(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let config = args.config();
    if !args.quiet && !args.json {
        eprintln!("{}", announcement(&config));
    }
    let ctrl_c = async {
        // Without a Ctrl-C handler the run simply goes to its end.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let report = baton_probe::run_until(config, ctrl_c)
        .await
        .with_context(|| format!("cannot probe {}", args.url))?;
    if args.json {
        let json = serde_json::to_string_pretty(&report).context("cannot encode the report")?;
        println!("{json}");
    } else if !args.quiet {
        println!("{report}");
    }
    Ok(exit_code(&report, args.fail_on_error))
}

fn exit_code(report: &Report, fail_on_error: bool) -> ExitCode {
    if fail_on_error && report.failed() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The line printed (to stderr) as the probe starts.
fn announcement(config: &ProbeConfig) -> String {
    let mut text = format!(
        "probing {} for {}",
        config.url,
        humantime::format_duration(config.duration)
    );
    if let Some(n) = config.requests {
        text.push_str(&format!(" or {n} requests"));
    }
    let connections = if config.http2 {
        "HTTP/2 on one shared connection"
    } else if config.keepalive {
        "HTTP/1.1 keep-alive"
    } else {
        "HTTP/1.1, a new connection per request"
    };
    let workers = if config.concurrency == 1 {
        "worker"
    } else {
        "workers"
    };
    text.push_str(&format!(
        " with {} {workers}, {connections}",
        config.concurrency
    ));
    if let Some(rate) = config.rate {
        text.push_str(&format!(", {rate} req/s"));
    }
    text.push_str(" (Ctrl-C ends early)");
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: ProbeArgs,
    }

    fn parse(argv: &[&str]) -> Result<ProbeArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("probe").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn defaults() {
        let args = match parse(&["http://127.0.0.1:8080/"]) {
            Ok(args) => args,
            Err(e) => panic!("{e}"),
        };
        let config = args.config();
        assert_eq!(config, ProbeConfig::new("http://127.0.0.1:8080/"));
        assert!(!args.json && !args.quiet && !args.fail_on_error);
    }

    #[test]
    fn every_flag() {
        let args = parse(&[
            "https://example.test/x",
            "--duration",
            "1m 30s",
            "--requests",
            "100",
            "--concurrency",
            "3",
            "--rate",
            "50",
            "--http2",
            "--method",
            "POST",
            "--body-size",
            "1MiB",
            "--header",
            "X-A: 1",
            "-H",
            "X-B: two words",
            "--timeout",
            "250ms",
            "--count-header",
            "X-Version",
            "--ca",
            "ca.pem",
            "--json",
            "--fail-on-error",
            "--quiet",
        ]);
        let args = match args {
            Ok(args) => args,
            Err(e) => panic!("{e}"),
        };
        let config = args.config();
        assert_eq!(config.duration, Duration::from_secs(90));
        assert_eq!(config.requests, Some(100));
        assert_eq!(config.concurrency, 3);
        assert_eq!(config.rate, Some(50.0));
        assert!(config.http2 && config.keepalive);
        assert_eq!(config.method, "POST");
        assert_eq!(config.body_size, 1 << 20);
        assert_eq!(
            config.headers,
            vec![
                ("x-a".to_owned(), "1".to_owned()),
                ("x-b".to_owned(), "two words".to_owned())
            ]
        );
        assert_eq!(config.timeout, Duration::from_millis(250));
        assert_eq!(config.count_header.as_deref(), Some("X-Version"));
        assert_eq!(config.ca_file, Some(PathBuf::from("ca.pem")));
        assert!(args.json && args.fail_on_error && args.quiet);
    }

    #[test]
    fn keepalive_flags_override_each_other() {
        let last = |argv: &[&str]| parse(argv).map(|a| a.config().keepalive).ok();
        assert_eq!(last(&["http://h/", "--no-keepalive"]), Some(false));
        assert_eq!(
            last(&["http://h/", "--no-keepalive", "--keepalive"]),
            Some(true)
        );
        assert_eq!(
            last(&["http://h/", "--keepalive", "--no-keepalive"]),
            Some(false)
        );
    }

    #[test]
    fn contradictions_and_bad_values_are_rejected() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["http://h/", "--ca", "x.pem", "--insecure"]).is_err());
        assert!(parse(&["http://h/", "--http2", "--no-keepalive"]).is_err());
        assert!(parse(&["http://h/", "--duration", "ten"]).is_err());
        assert!(parse(&["http://h/", "--body-size", "lots"]).is_err());
        assert!(parse(&["http://h/", "--header", "no-colon"]).is_err());
    }

    #[test]
    fn exit_code_follows_fail_on_error() {
        let report: Report = match serde_json::from_str(
            r#"{"url":"http://h/","duration_ms":1000,"total":2,"ok":1,
                "failures":{"connect":0,"reset":1,"timeout":0,"status_5xx":0,"status_other":0,"other":0},
                "latency_ms":{"p50":1.0,"p90":1.0,"p99":1.0,"max":1.0},
                "requests_per_second":2.0,"connections_opened":1,
                "header_counts":{},"status_counts":{"200":1}}"#,
        ) {
            Ok(report) => report,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(exit_code(&report, true), ExitCode::from(1));
        assert_eq!(exit_code(&report, false), ExitCode::SUCCESS);
    }

    #[test]
    fn announcement_says_what_will_happen() {
        let mut config = ProbeConfig::new("http://h/");
        config.rate = Some(100.0);
        let text = announcement(&config);
        assert!(text.contains("http://h/ for 10s"), "{text}");
        assert!(
            text.contains("8 workers, HTTP/1.1 keep-alive, 100 req/s"),
            "{text}"
        );
    }
}
