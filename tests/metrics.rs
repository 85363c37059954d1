//! End-to-end tests of the daemon's metrics. `/metrics` on the admin
//! listener (behind its token) and `baton metrics` serve the same
//! Prometheus text, read here by a parser of its own; the request counters
//! equal exactly what the test sent, per version, and a version replaced by
//! a deploy keeps its final counts. A stopping daemon writes the minute so
//! far to the state store's rollups, and the next daemon's `baton status`
//! counts them in its 5-minute numbers.

mod support;

use std::collections::BTreeMap;

use anyhow::{Context, ensure};
use baton_state::Store;
use baton_testkit::{AppSource, Daemon};
use http::{Method, StatusCode};
use prometheus_parse::{Scrape, Value};

use support::{
    Http1, admin_address, admin_call, admin_daemon, bearer, deploy_app, explain, header_text,
    matches, parse_metrics, restart, value, values,
};

/// What the test sent through the proxy, by status class.
#[derive(Debug, Default, PartialEq)]
struct Sent {
    by_class: BTreeMap<&'static str, u64>,
}

impl Sent {
    fn total(&self) -> u64 {
        self.by_class.values().sum()
    }
}

/// Sends `count` requests for each path on one keep-alive connection,
/// checking each answer's status and version, and counts them by class.
async fn send(daemon: &Daemon, version: &str, paths: &[(&str, u16, u64)]) -> anyhow::Result<Sent> {
    let mut connection = Http1::connect(daemon.http_address()).await?;
    let mut sent = Sent::default();
    for (path, status, count) in paths {
        for _ in 0..*count {
            let reply = connection.get(path).await?;
            ensure!(reply.status.as_u16() == *status, "GET {path}: {reply:?}");
            ensure!(reply.version() == Some(version), "GET {path}: {reply:?}");
            let class = match status / 100 {
                2 => "2xx",
                4 => "4xx",
                5 => "5xx",
                _ => anyhow::bail!("no class for {status}"),
            };
            *sent.by_class.entry(class).or_default() += 1;
        }
    }
    Ok(sent)
}

/// Fails unless `metric` has samples with `labels` and each passes `check`.
fn each(
    scrape: &Scrape,
    metric: &str,
    labels: &[(&str, &str)],
    check: impl Fn(f64) -> bool,
) -> anyhow::Result<()> {
    let found = values(scrape, metric, labels)?;
    ensure!(
        !found.is_empty() && found.iter().all(|v| check(*v)),
        "{metric} {labels:?}: {found:?}"
    );
    Ok(())
}

/// The requests of `version` by status class, as exposed.
fn exposed(scrape: &Scrape, app: &str, version: &str) -> anyhow::Result<Sent> {
    let mut exposed = Sent::default();
    for class in [
        "1xx",
        "2xx",
        "3xx",
        "4xx",
        "5xx",
        "connect_failure",
        "timeout",
        "upstream_error",
    ] {
        let labels = [("app", app), ("version", version), ("status_class", class)];
        let count = value(scrape, "baton_http_requests_total", &labels)?;
        if count > 0.0 {
            exposed.by_class.insert(class, count as u64);
        }
    }
    Ok(exposed)
}

/// How many requests the latency histogram of `version` counted (its +Inf
/// bucket).
fn histogram_count(scrape: &Scrape, app: &str, version: &str) -> anyhow::Result<f64> {
    let labels = [("app", app), ("version", version)];
    let histogram = scrape
        .samples
        .iter()
        .find(|sample| matches(sample, "baton_http_request_duration_seconds", &labels))
        .with_context(|| format!("no latency histogram of {version}"))?;
    let Value::Histogram(buckets) = &histogram.value else {
        anyhow::bail!("not a histogram: {histogram:?}");
    };
    buckets
        .iter()
        .find(|bucket| bucket.less_than.is_infinite())
        .map(|bucket| bucket.count)
        .context("no +Inf bucket")
}

async fn scrape_admin(daemon: &Daemon) -> anyhow::Result<Scrape> {
    let admin = admin_address(daemon).await?;
    let reply = admin_call(admin, Method::GET, "/metrics", Some(&bearer())).await?;
    ensure!(reply.status == StatusCode::OK, "{reply:?}");
    let content_type = header_text(&reply.headers, "content-type");
    ensure!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    parse_metrics(&reply.text())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_every_request_exactly_and_need_the_token() -> anyhow::Result<()> {
    let app = AppSource::builder("counted", "v1").build()?;
    let (daemon, _token_dir) = admin_daemon().await?;
    let outcome = async {
        deploy_app(&daemon, &app).await?.success()?;
        let r1 = app.current_release().context("no current release")?;
        let sent_v1 = send(
            &daemon,
            "v1",
            &[
                ("/", 200, 120),
                ("/status/404", 404, 7),
                ("/status/503", 503, 3),
            ],
        )
        .await?;

        let admin = admin_address(&daemon).await?;
        for authorization in [None, Some("Bearer not-the-token")] {
            let refused = admin_call(admin, Method::GET, "/metrics", authorization).await?;
            ensure!(refused.status == StatusCode::UNAUTHORIZED, "{refused:?}");
            ensure!(!refused.text().contains("baton_"), "{refused:?}");
        }

        let scrape = scrape_admin(&daemon).await?;
        ensure!(
            exposed(&scrape, "counted", &r1)? == sent_v1,
            "v1 sent {sent_v1:?}"
        );
        ensure!(histogram_count(&scrape, "counted", &r1)? == sent_v1.total() as f64);
        let r1_labels = [("app", "counted"), ("version", r1.as_str())];
        ensure!(value(&scrape, "baton_rollout_weight_ratio", &r1_labels)? == 1.0);
        ensure!(value(&scrape, "baton_http_requests_in_flight", &r1_labels)? == 0.0);
        each(&scrape, "baton_target_healthy", &r1_labels, |v| v == 1.0)?;
        each(
            &scrape,
            "baton_upstream_connect_errors_total",
            &r1_labels,
            |v| v == 0.0,
        )?;

        // `baton metrics` prints the same text over the control socket.
        let printed = daemon.baton(&["metrics"]).await?.success()?;
        let printed = parse_metrics(&printed.stdout)?;
        ensure!(exposed(&printed, "counted", &r1)? == sent_v1);

        // v2 replaces v1: v1's counters stay as they were, v2's start.
        app.set_version("v2")?;
        deploy_app(&daemon, &app).await?.success()?;
        let r2 = app.current_release().context("no current release")?;
        ensure!(r2 != r1);
        let sent_v2 = send(&daemon, "v2", &[("/", 200, 50)]).await?;
        let scrape = scrape_admin(&daemon).await?;
        ensure!(
            exposed(&scrape, "counted", &r1)? == sent_v1,
            "v1 after the deploy"
        );
        ensure!(
            exposed(&scrape, "counted", &r2)? == sent_v2,
            "v2 sent {sent_v2:?}"
        );
        ensure!(histogram_count(&scrape, "counted", &r1)? == sent_v1.total() as f64);
        // A retired version has counters but no gauges.
        ensure!(value(&scrape, "baton_rollout_weight_ratio", &r1_labels).is_err());
        let r2_labels = [("app", "counted"), ("version", r2.as_str())];
        ensure!(value(&scrape, "baton_rollout_weight_ratio", &r2_labels)? == 1.0);
        each(&scrape, "baton_target_healthy", &r2_labels, |v| v == 1.0)?;

        let succeeded = [("app", "counted"), ("outcome", "succeeded")];
        ensure!(value(&scrape, "baton_deploys_total", &succeeded)? == 2.0);
        let durations = value(&scrape, "baton_deploy_duration_seconds_count", &succeeded)?;
        ensure!(durations == 2.0, "{durations}");

        let web = [
            ("app", "counted"),
            ("role", "web"),
            ("version", r2.as_str()),
        ];
        each(&scrape, "baton_process_resident_memory_bytes", &web, |v| {
            v > 0.0
        })?;
        each(&scrape, "baton_process_cpu_seconds_total", &web, |v| {
            v >= 0.0
        })?;
        let daemon_row = [("role", "daemon")];
        ensure!(value(&scrape, "baton_process_resident_memory_bytes", &daemon_row)? > 0.0);
        ensure!(value(&scrape, "baton_process_cpu_seconds_total", &daemon_row)? > 0.0);
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_daemon_reads_its_5_minutes_from_the_rollups() -> anyhow::Result<()> {
    // Declared before the daemons so that it is dropped after them.
    let app = AppSource::builder("rolled", "v1").build()?;
    let first = Daemon::start().await?;
    let before = async {
        deploy_app(&first, &app).await?.success()?;
        let r1 = app.current_release().context("no current release")?;
        let sent = send(&first, "v1", &[("/", 200, 40), ("/status/500", 500, 2)]).await?;
        Ok((r1, sent))
    }
    .await;
    let (r1, sent) = match before {
        Ok(before) => before,
        Err(error) => return explain(Err(error), &first),
    };
    let (second, _state) = restart(first, &[]).await?;
    let outcome = async {
        // The stopping daemon wrote the minute so far.
        let rollups =
            Store::open(&second.state_dir().join("state.db"))?.rollups("rolled", 0, u64::MAX)?;
        let requests: u64 = rollups.iter().map(|rollup| rollup.requests).sum();
        let errors: u64 = rollups.iter().map(|rollup| rollup.errors).sum();
        ensure!((requests, errors) == (42, 2), "{rollups:?}");
        ensure!(
            rollups.iter().all(|rollup| rollup.version == r1),
            "{rollups:?}"
        );

        let status = second.client().status("rolled").await?;
        let version = status
            .versions
            .iter()
            .find(|version| version.label == r1)
            .with_context(|| format!("{r1} is not in {status:?}"))?;
        ensure!(
            version.last_5_minutes.requests == sent.total(),
            "{version:?}"
        );
        ensure!(
            (version.last_5_minutes.error_rate - 2.0 / 42.0).abs() < 1e-9,
            "{version:?}"
        );
        ensure!(version.last_5_minutes.p50_ms > 0.0, "{version:?}");
        ensure!(version.last_minute.requests == 0, "{version:?}");
        Ok(())
    }
    .await;
    explain(outcome, &second)
}
