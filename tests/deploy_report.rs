//! End-to-end post-deploy report: the state database holds what the app
//! served in this clock hour on two of the previous seven days (and in
//! another hour, which must not count); a deploy under load then ends with
//! the new version's numbers set against that baseline, and `baton
//! history` keeps the same report.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use baton_api::HistoryEntry;
use baton_state::{RollupRecord, Store};
use baton_telemetry::LatencyBuckets;
use baton_testkit::{AppSource, Daemon};

use support::{Load, TempDir, deploy_app as deploy, ensure_mentions, explain};

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;
const MINUTE_MS: u64 = 60_000;

/// `minutes` minutes from `from_ms` on, each with `requests` requests of
/// which `errors` failed, all taking `latency_ms`.
fn minutes(
    from_ms: u64,
    minutes: u64,
    requests: u64,
    errors: u64,
    latency_ms: u64,
) -> Vec<RollupRecord> {
    let mut latency = LatencyBuckets::default();
    latency.add(latency_ms * 1000, requests);
    (0..minutes)
        .map(|minute| RollupRecord {
            app: "report".to_string(),
            version: "20261001T000000Z-0000000".to_string(),
            minute_ms: from_ms + minute * MINUTE_MS,
            until_ms: from_ms + (minute + 1) * MINUTE_MS + 150,
            requests,
            errors,
            latency: latency.encode(),
        })
        .collect()
}

/// An earlier daemon's rollups: this hour one day and three days ago (60
/// minutes of 100 requests with one error, 30 minutes of 200 without), the
/// same again for the next hour in case the test runs across the turn of
/// the hour, and the hour before two days ago, which is never this hour.
fn earlier_traffic(state: &TempDir) -> anyhow::Result<()> {
    let now_ms = u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
    let hour = now_ms - now_ms % HOUR_MS;
    let mut rollups = Vec::new();
    for this_hour in [hour, hour + HOUR_MS] {
        rollups.extend(minutes(this_hour - DAY_MS, 60, 100, 1, 10));
        rollups.extend(minutes(this_hour - 3 * DAY_MS, 30, 200, 0, 20));
    }
    rollups.extend(minutes(hour - 2 * DAY_MS - HOUR_MS, 60, 5_000, 5_000, 900));
    let store = Store::open(&state.path.join("state.db"))?;
    store.add_rollups(&rollups)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_ends_with_its_traffic_against_the_same_hour_of_the_last_week()
-> anyhow::Result<()> {
    let state = TempDir::new("deploy-report-state")?;
    earlier_traffic(&state)?;
    let app = AppSource::builder("report", "v1")
        .extra("[rollout]\nbake = \"2s\"\n")
        .build()?;
    let daemon = Daemon::builder().state_dir(&state.path).start().await?;
    let outcome = async {
        deploy(&daemon, &app).await?.success()?;
        let load = Load::start(daemon.http_address(), 4, "/");
        load.wait_for_answers(200).await?;
        app.set_version("v2")?;
        let output = deploy(&daemon, &app).await?.success()?;
        let tally = load.stop().await?;
        let failed = tally.failed.load(std::sync::atomic::Ordering::Relaxed);
        ensure!(failed == 0, "{failed} requests failed");
        let release = app.current_release().context("no current release")?;
        ensure_mentions(
            &output.stdout,
            &[
                &format!("traffic        {release}: "),
                "of the previous 7 days: 12000 requests (1.7 req/s), errors 0.50%",
                "p99 ",
                "x baseline",
                "error rate ",
                "traffic ",
            ],
        )?;
        let config = app.config_path().display().to_string();
        let listed = daemon
            .baton(&["history", "--config", &config, "--json"])
            .await?
            .success()?;
        let history: Vec<HistoryEntry> = serde_json::from_str(&listed.stdout)
            .with_context(|| format!("baton history --json printed:\n{}", listed.stdout))?;
        let last = history.first().context("no history")?;
        let report = last
            .traffic
            .as_ref()
            .with_context(|| format!("no report kept: {last:?}"))?;
        ensure!(report.version == release, "{report:?}");
        ensure!(report.baseline_days == 2, "{report:?}");
        let baseline = report.baseline.as_ref().context("no baseline")?;
        ensure!(
            baseline.requests == 12_000 && (baseline.error_rate - 0.005).abs() < 1e-9,
            "{baseline:?}"
        );
        // Half the baseline took 10 ms and half 20 ms; the 900 ms hour
        // before never counted.
        ensure!(
            baseline.p99_ms > 10.0 && baseline.p99_ms <= 25.0,
            "{baseline:?}"
        );
        ensure!(
            report.new_version.requests > 0 && report.new_version.error_rate == 0.0,
            "{report:?}"
        );
        ensure!(report.app_req_per_s > 0.0, "{report:?}");
        ensure!(report.p99_ratio().is_some(), "{report:?}");
        Ok(())
    }
    .await;
    let result = explain(outcome, &daemon);
    drop(daemon);
    drop(state);
    result
}
