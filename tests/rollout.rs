//! End-to-end progressive rollouts of the demo app under load: a healthy
//! canary goes through every step and is promoted; a candidate that fails
//! 5% of its requests is rolled back by its error-rate guardrail while the
//! clients it did not serve see no error; an operator's abort and promote
//! reach a running rollout; a shadowed candidate gets copies of GETs only,
//! no client waits for them, and a slow one is rolled back before any
//! client reaches it.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::ensure;
use baton_api::AppInfo;
use baton_testkit::{AppSource, Daemon, wait_until};
use tokio::task::JoinHandle;

use support::{
    Load, SOON, deploy_app as deploy, deploy_app_args as deploy_args, deploy_failing_candidate,
    ensure_mentions, explain, join, serving, spawn_baton,
};

/// Short steps for tests: the same state machine, minutes made seconds.
fn canary(app: &str, step_duration: &str, step_timeout: &str) -> anyhow::Result<AppSource> {
    AppSource::builder(app, "v1")
        .web_line("processes = 2")
        .extra(&format!(
            "[rollout]\nstrategy = \"canary\"\nsteps = [\"10%\", \"50%\", \"100%\"]\n\
             step_duration = \"{step_duration}\"\nstep_timeout = \"{step_timeout}\"\n\
             min_requests = 20\nbake = \"1s\"\n"
        ))
        .build()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_canary_goes_through_every_step_and_is_promoted() -> anyhow::Result<()> {
    let app = canary("healthy", "1s", "60s")?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        // The first deploy has no stable version to split with: one swap.
        deploy(&daemon, &app).await?.success()?;
        let load = Load::start(daemon.http_address(), 8, "/");
        load.wait_for_answers(100).await?;
        app.set_version("v2")?;
        let output = deploy(&daemon, &app).await?.success()?;
        let tally = load.stop().await?;
        tally.assert_no_failures()?;
        for step in ["10%", "50%", "100%", "the candidate becomes stable"] {
            ensure!(
                output.stdout.contains(step),
                "no {step:?} in:\n{}",
                output.stdout
            );
        }
        let versions = tally.versions();
        ensure!(
            versions.get("v1").is_some_and(|n| *n > 0)
                && versions.get("v2").is_some_and(|n| *n > 0),
            "both versions should have served during the canary: {versions:?}"
        );
        ensure!(serving(&daemon).await? == "v2");
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_candidate_failing_five_percent_is_rolled_back_by_its_guardrail() -> anyhow::Result<()> {
    let app = canary("failing", "30s", "60s")?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        // The new release fails 5% of its requests to `/`.
        let (output, tally) =
            deploy_failing_candidate(&daemon, &app, "ERROR_RATE = \"0.05\"", 8).await?;
        ensure_mentions(
            &output.stderr,
            &["rolled back", "error rate", "all traffic is back on"],
        )?;
        ensure!(serving(&daemon).await? == "v1");
        // Every failure came from the candidate: clients on stable saw none.
        let failures = tally.failures.lock().map(|f| f.clone()).unwrap_or_default();
        ensure!(
            failures.iter().all(|failure| failure.contains("\"v2\"")),
            "a failure did not come from the candidate: {failures:#?}"
        );
        // The run's record keeps every decision with its evidence.
        let history = daemon.client().history("failing", 1).await?;
        let id = history
            .first()
            .map(|run| run.id.to_string())
            .unwrap_or_default();
        let record = daemon
            .baton(&["history", "--app", "failing", "--deploy", &id])
            .await?
            .success()?;
        for expected in ["step 1 of 3 (10%)", "error rate", "requests)"] {
            ensure!(
                record.stdout.contains(expected),
                "no {expected:?} in:\n{}",
                record.stdout
            );
        }
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

/// Waits until the app's deploy is running, so a command reaches it.
async fn wait_deploying(daemon: &Daemon, app: &str) -> anyhow::Result<()> {
    wait_until(SOON, "the deploy to run", || async {
        daemon
            .client()
            .app(app)
            .await
            .is_ok_and(|info: AppInfo| info.running_deploy.is_some())
    })
    .await
}

/// Deploys `app` as v1, puts 4 clients on it, then starts deploying v2 (a
/// progressive rollout) in the background and waits until it runs.
async fn start_rollout_under_load(
    daemon: &Daemon,
    app: &AppSource,
    name: &str,
) -> anyhow::Result<(
    Load,
    JoinHandle<anyhow::Result<baton_testkit::CommandOutput>>,
)> {
    deploy(daemon, app).await?.success()?;
    let load = Load::start(daemon.http_address(), 4, "/");
    load.wait_for_answers(50).await?;
    app.set_version("v2")?;
    let rollout = spawn_baton(daemon, &deploy_args(app));
    wait_deploying(daemon, name).await?;
    Ok((load, rollout))
}

#[tokio::test(flavor = "multi_thread")]
async fn abort_and_promote_reach_a_running_rollout() -> anyhow::Result<()> {
    let app = canary("commanded", "10m", "20m")?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        let (load, aborted) = start_rollout_under_load(&daemon, &app, "commanded").await?;
        daemon
            .baton(&["abort", "--app", "commanded"])
            .await?
            .success()?;
        let aborted = join(aborted, Duration::from_secs(60), "the aborted deploy").await??;
        ensure!(!aborted.status.success(), "an aborted deploy succeeded");
        ensure!(aborted.stderr.contains("aborted"), "{}", aborted.stderr);
        ensure!(serving(&daemon).await? == "v1");

        app.set_version("v3")?;
        let promoted = spawn_baton(&daemon, &deploy_args(&app));
        wait_deploying(&daemon, "commanded").await?;
        daemon
            .baton(&["promote", "--app", "commanded"])
            .await?
            .success()?;
        // Ten-minute steps: only the promote command can end this soon.
        let promoted = join(promoted, Duration::from_secs(60), "the promoted deploy").await??;
        promoted.success()?;
        ensure!(serving(&daemon).await? == "v3");

        let tally = load.stop().await?;
        tally.assert_no_failures()?;
        let none = daemon.baton(&["abort", "--app", "commanded"]).await?;
        ensure!(!none.status.success(), "abort without a rollout succeeded");
        ensure!(
            none.stderr.contains("no progressive rollout"),
            "{}",
            none.stderr
        );
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_blue_green_candidate_is_rolled_back_on_p99_during_its_bake() -> anyhow::Result<()> {
    let app = AppSource::builder("slow", "v1")
        .extra(
            "[rollout]\nstrategy = \"blue-green\"\nmin_requests = 20\nbake = \"60s\"\n\n\
             [[rollout.guardrails]]\nmetric = \"p99_latency\"\nmax = \"1200ms\"\nwindow = \"1m\"\n",
        )
        .build()?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        // Every request to the new release's `/` takes 1.5 s.
        let (output, tally) =
            deploy_failing_candidate(&daemon, &app, "SLOW_MS = \"1500\"", 8).await?;
        ensure_mentions(&output.stderr, &["rolled back", "p99 latency", "1200ms"])?;
        ensure!(serving(&daemon).await? == "v1");
        // Slow is not failed: the requests the candidate held finished.
        tally.assert_no_failures()?;
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

/// `baton status --app APP --json`, parsed.
async fn status(daemon: &Daemon, app: &str) -> anyhow::Result<baton_api::AppStatus> {
    let output = daemon
        .baton(&["status", "--app", app, "--json"])
        .await?
        .success()?;
    serde_json::from_str(&output.stdout)
        .map_err(|error| anyhow::anyhow!("status --json printed {:?}: {error}", output.stdout))
}

/// Whether `status` has a version in `role` that served requests in the
/// last minute.
fn served(status: &baton_api::AppStatus, role: baton_api::StatusRole) -> bool {
    status
        .versions
        .iter()
        .any(|version| version.role == role && version.last_minute.requests > 0)
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_a_running_canary_and_no_rollout_after_abort() -> anyhow::Result<()> {
    use baton_api::StatusRole;

    let app = canary("watched", "10m", "20m")?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        let (load, aborted) = start_rollout_under_load(&daemon, &app, "watched").await?;
        // Ten-minute steps: the canary holds its first step for the whole
        // test, so both versions keep serving until the abort.
        wait_until(SOON, "both versions to serve under the canary", || async {
            status(&daemon, "watched").await.is_ok_and(|status| {
                status.rollout.is_some()
                    && served(&status, StatusRole::Candidate)
                    && served(&status, StatusRole::Stable)
            })
        })
        .await?;
        let during = status(&daemon, "watched").await?;
        let rollout = during
            .rollout
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no rollout in {during:#?}"))?;
        ensure!(rollout.strategy == "canary", "{during:#?}");
        ensure!(rollout.weight_percent == 10.0, "{during:#?}");
        ensure!(rollout.phase == "step 1 of 3 (10%)", "{during:#?}");
        ensure!(
            rollout
                .next_step_in_s
                .is_some_and(|seconds| seconds > 500 && seconds <= 600),
            "{during:#?}"
        );
        let weight = |role| {
            during
                .versions
                .iter()
                .find(|version| version.role == role)
                .and_then(|version| version.weight_percent)
        };
        ensure!(weight(StatusRole::Candidate) == Some(10.0), "{during:#?}");
        ensure!(weight(StatusRole::Stable) == Some(90.0), "{during:#?}");
        let text = daemon
            .baton(&["status", "--app", "watched"])
            .await?
            .success()?;
        ensure!(
            text.stdout.contains("canary, step 1 of 3 (10%)"),
            "{}",
            text.stdout
        );

        daemon
            .baton(&["abort", "--app", "watched"])
            .await?
            .success()?;
        let aborted = join(aborted, Duration::from_secs(60), "the aborted deploy").await??;
        ensure!(!aborted.status.success(), "an aborted deploy succeeded");
        let after = status(&daemon, "watched").await?;
        ensure!(after.rollout.is_none(), "{after:#?}");
        ensure!(after.running_deploy.is_none(), "{after:#?}");
        ensure!(
            !after
                .versions
                .iter()
                .any(|version| version.role == StatusRole::Candidate),
            "{after:#?}"
        );
        load.stop().await?.assert_no_failures()?;
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

/// 1,000 clients that keep the cookie they are given never change version
/// while the canary's weight moves from 10% to 50% to 100%: a client placed
/// on either version stays there until the rollout ends.
#[tokio::test(flavor = "multi_thread")]
async fn cookie_holding_clients_never_switch_version_mid_canary() -> anyhow::Result<()> {
    // Steps long enough for every client to be asked at each weight; the
    // bake holds the split open until the test aborts it.
    let app = AppSource::builder("sticky", "v1")
        .web_line("processes = 2")
        .extra(
            "[rollout]\nstrategy = \"canary\"\nsteps = [\"10%\", \"50%\", \"100%\"]\n\
             step_duration = \"4s\"\nstep_timeout = \"60s\"\nmin_requests = 20\nbake = \"10m\"\n",
        )
        .build()?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        deploy(&daemon, &app).await?.success()?;
        let load = Load::start(daemon.http_address(), 2, "/");
        app.set_version("v2")?;
        let deploying = spawn_baton(&daemon, &deploy_args(&app));
        wait_until(SOON, "the canary's first step", || async {
            daemon
                .client()
                .status("sticky")
                .await
                .is_ok_and(|status| status.rollout.is_some())
        })
        .await?;
        // `route list` shows the candidate beside the stable version.
        let routes = daemon.client().routes().await?;
        let roles: Vec<(String, baton_api::VersionRole)> = routes
            .iter()
            .filter(|route| route.service == "sticky")
            .flat_map(|route| route.versions.iter().map(|v| (v.label.clone(), v.role)))
            .collect();
        ensure!(
            roles
                .iter()
                .any(|(_, role)| *role == baton_api::VersionRole::Candidate)
                && roles
                    .iter()
                    .any(|(_, role)| *role == baton_api::VersionRole::Stable),
            "route list during the canary: {roles:?}"
        );
        let address = daemon.http_address();
        let mut cookies: Vec<Option<String>> = vec![None; 1000];
        let mut seen: Vec<std::collections::BTreeSet<String>> = vec![Default::default(); 1000];
        let mut set_cookies = vec![0u32; 1000];
        let rounds_until = tokio::time::Instant::now() + Duration::from_secs(12);
        let mut rounds = 0;
        while tokio::time::Instant::now() < rounds_until {
            rounds += 1;
            for client in 0..cookies.len() {
                let mut request = http::Request::get("/").header(http::header::HOST, "sticky.test");
                if let Some(cookie) = &cookies[client] {
                    request = request.header(http::header::COOKIE, cookie.as_str());
                }
                let request = request.body(http_body_util::Empty::<bytes::Bytes>::new())?;
                let reply = support::exchange(address, request).await?;
                ensure!(reply.status == 200, "client {client} got {}", reply.status);
                if let Some(set) = reply.headers.get(http::header::SET_COOKIE) {
                    set_cookies[client] += 1;
                    let pair = set.to_str()?.split(';').next().unwrap_or_default();
                    cookies[client] = Some(pair.to_string());
                }
                seen[client].insert(reply.version().unwrap_or_default().to_string());
            }
        }
        daemon
            .baton(&["abort", "--app", "sticky"])
            .await?
            .success()?;
        join(deploying, Duration::from_secs(60), "the aborted deploy").await??;
        load.stop().await?.assert_no_failures()?;

        ensure!(rounds >= 3, "only {rounds} rounds of 1,000 clients ran");
        let switched = seen.iter().filter(|versions| versions.len() > 1).count();
        ensure!(
            switched == 0,
            "{switched} clients changed version mid-canary"
        );
        ensure!(
            set_cookies.iter().all(|count| *count == 1),
            "every client should be given its cookie exactly once"
        );
        let on_candidate = seen
            .iter()
            .filter(|versions| versions.contains("v2"))
            .count();
        ensure!(
            on_candidate > 0 && on_candidate < 1000,
            "{on_candidate} of 1,000 clients were placed on the candidate"
        );
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

/// A canary that shadows all of stable's requests for `shadow_duration`
/// before its first live step, judged by the shadow mismatch rate.
fn shadowed(app: &str, shadow_duration: &str, max_mismatch: &str) -> anyhow::Result<AppSource> {
    AppSource::builder(app, "v1")
        .extra(&format!(
            "[rollout]\nstrategy = \"canary\"\nsteps = [\"50%\", \"100%\"]\n\
             step_duration = \"1s\"\nstep_timeout = \"60s\"\nmin_requests = 20\nbake = \"1s\"\n\
             shadow = \"100%\"\nshadow_duration = \"{shadow_duration}\"\n\n\
             [[rollout.guardrails]]\nmetric = \"shadow_mismatch_rate\"\nmax = \"{max_mismatch}\"\n\
             window = \"1m\"\n\n\
             [[rollout.guardrails]]\nmetric = \"error_rate\"\nmax = \"1%\"\nwindow = \"1m\"\n"
        ))
        .build()
}

/// Sends bodiless `POST /` back to back until stopped; how many were sent.
fn post_loop(address: SocketAddr, stop: Arc<AtomicBool>) -> JoinHandle<u64> {
    tokio::spawn(async move {
        let mut sent = 0;
        while !stop.load(Ordering::Relaxed) {
            // Stable has no POST /: the answer does not matter, only where
            // the request went.
            let _ = support::post(address, &address.to_string(), "/", Vec::new()).await;
            sent += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        sent
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn shadow_copies_only_gets_to_the_candidate_before_its_live_steps() -> anyhow::Result<()> {
    let app = shadowed("mirrored", "3s", "1%")?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        deploy(&daemon, &app).await?.success()?;
        let load = Load::start(daemon.http_address(), 4, "/");
        load.wait_for_answers(100).await?;
        let stop_posts = Arc::new(AtomicBool::new(false));
        let posts = post_loop(daemon.http_address(), Arc::clone(&stop_posts));

        app.set_version("v2")?;
        let deploying = spawn_baton(&daemon, &deploy_args(&app));
        // While it only gets copies, the candidate answers no client.
        wait_until(SOON, "the shadow phase", || async {
            status(&daemon, "mirrored").await.is_ok_and(|status| {
                status
                    .rollout
                    .is_some_and(|rollout| rollout.phase.contains("shadow"))
            })
        })
        .await?;
        let before_live = load.tally.versions();
        ensure!(
            !before_live.contains_key("v2"),
            "a client got the candidate while it was shadowed: {before_live:?}"
        );
        let output = join(deploying, Duration::from_secs(90), "the deploy").await??;
        stop_posts.store(true, Ordering::Relaxed);
        let posts_sent = join(posts, Duration::from_secs(10), "the POST client").await?;
        let tally = load.stop().await?;
        let output = output.success()?;
        tally.assert_no_failures()?;
        ensure!(
            output.stdout.contains("shadow"),
            "the deploy did not report its shadow phase:\n{}",
            output.stdout
        );
        ensure!(serving(&daemon).await? == "v2");
        ensure!(posts_sent > 10, "only {posts_sent} POSTs were sent");

        // The promoted candidate counted the copies it got, by method.
        let reply = support::get_once(daemon.http_address(), "/requests").await?;
        let counts: serde_json::Value = serde_json::from_slice(&reply.body)?;
        let copies = &counts["shadow"];
        ensure!(
            copies["GET"].as_u64().is_some_and(|gets| gets >= 20),
            "too few GET copies reached the candidate: {counts}"
        );
        ensure!(
            copies.get("POST").is_none(),
            "a POST was copied to the candidate: {counts}"
        );
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_shadowed_candidate_is_rolled_back_and_no_client_waits_for_it() -> anyhow::Result<()>
{
    let app = shadowed("shadow-slow", "60s", "5%")?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        // Every request to the new release's `/` takes 1.5 s.
        let (output, tally) =
            deploy_failing_candidate(&daemon, &app, "SLOW_MS = \"1500\"", 4).await?;
        ensure_mentions(&output.stderr, &["rolled back", "shadow mismatch rate"])?;
        ensure!(serving(&daemon).await? == "v1");
        tally.assert_no_failures()?;
        let versions = tally.versions();
        ensure!(
            !versions.contains_key("v2"),
            "a client got the shadowed candidate: {versions:?}"
        );
        // Each copy took 1.5 s; the clients never waited for one.
        ensure!(
            tally.slowest() < Duration::from_secs(1),
            "a client waited {:?}",
            tally.slowest()
        );
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}
