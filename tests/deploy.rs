//! End-to-end deploys of the demo app under load.
//!
//! The real `baton` daemon and CLI deploy `AppSource` apps (the demo app as
//! `web`, the demo worker as `jobs`) and the tests check, from the outside,
//! the happy paths of issue 3:
//! - 10 deploys and 2 rollbacks under keep-alive load, uploads and one
//!   WebSocket per switch: no request fails, no client connection is
//!   closed, every answer comes from the version that served when the
//!   request was sent or the one being deployed, and each WebSocket to the
//!   old version keeps echoing after the switch until its client closes it;
//!   `current` is never missing meanwhile;
//! - 200 worker jobs enqueued across 5 deploys are each done exactly once,
//!   by workers of more than one version;
//! - a rollback inside `keep_warm` reuses the old processes; `--to` returns
//!   to a named release; an unknown `--to` names the releases and changes
//!   nothing;
//! - `current` always links to the serving release; retention keeps the
//!   newest `keep_releases`, the current release, the rollback target and
//!   releases with processes; `asset_dir` carries older assets over;
//! - `shared/.env` reaches build steps and processes, never baton's log;
//! - a daemon restart adopts the running processes and serves them;
//! - `ps`, `releases`, `history` and `logs` show what a user needs.
//!
//! Every wait has a deadline; nothing asserts on speed.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use baton_api::{
    DeployEvent, DeployKind, DeployOutcomeKind, DeployReport, HistoryEntry, ProcessInfo,
    ReleaseInfo, RouteInfo, VersionRole,
};
use baton_testkit::{AppSource, CommandOutput, Daemon, binary, wait_until};
use futures_util::StreamExt;
use nix::sys::signal::Signal;
use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use support::{
    Http1, Reply, SOON, Tally, WebSocket, echo, explain, get_once, join, lock, open_websocket,
    post, spawn_baton,
};

/// Longest a test waits for a deploy, a rollback or processes to settle.
const SETTLE: Duration = Duration::from_secs(60);

/// The bytes of each `/upload` request of the load.
const UPLOAD_BYTES: usize = 256 * 1024;

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// The headline: 32 keep-alive connections, a loop of uploads and
/// a WebSocket per switch, across 10 deploys and 2 rollbacks.
#[tokio::test(flavor = "multi_thread")]
async fn ten_deploys_and_two_rollbacks_under_load_fail_no_request() -> anyhow::Result<()> {
    // The drain must outlast each switch's WebSocket, which the test closes
    // itself once it has seen the socket work after the switch; keep_warm
    // must outlast an operation, so that each rollback is warm.
    let app = AppSource::builder("loaded", "v1")
        .web_line("processes = 2")
        .web_line("drain_timeout = \"90s\"")
        .web_line("keep_warm = \"120s\"")
        .build()?;
    let daemon = Daemon::start().await?;
    let outcome = deploys_and_rollbacks_under_load(&daemon, &app).await;
    explain(outcome, &daemon)
}

/// 200 jobs of 100–500 ms, 40 enqueued before each of 5 deploys, two
/// workers per version: each job is done exactly once and none is left
/// behind, and the old versions' workers finished some of them.
#[tokio::test(flavor = "multi_thread")]
async fn workers_do_every_job_exactly_once_across_five_deploys() -> anyhow::Result<()> {
    let app = AppSource::builder("queue", "v1")
        .extra(
            "[[workers]]\nname = \"jobs\"\ncommand = \"./worker\"\nprocesses = 2\n\
             stop_timeout = \"30s\"\n",
        )
        .build()?;
    let daemon = Daemon::start().await?;
    let outcome = jobs_across_deploys(&daemon, &app).await;
    explain(outcome, &daemon)
}

/// A singleton worker never runs in two versions at once: the old one has
/// finished (its stop handler ran to the end) before the new one starts.
/// An ordinary worker's successor starts first, while it finishes its job.
#[tokio::test(flavor = "multi_thread")]
async fn a_singleton_worker_never_overlaps_its_successor() -> anyhow::Result<()> {
    let app = AppSource::builder("cron", "v1")
        .extra(
            "[[workers]]\nname = \"tick\"\ncommand = \"./tick tick\"\nsingleton = true\n\n\
             [[workers]]\nname = \"jobs\"\ncommand = \"./tick jobs\"\n",
        )
        .build()?;
    // Logs its start, and on TERM takes a second to finish before it logs
    // its stop.
    app.write_script(
        "tick",
        "#!/bin/sh\nV=$(cat VERSION)\nLOG=\"$BATON_SHARED_DIR/$1.log\"\n\
         echo \"start $V\" >> \"$LOG\"\n\
         trap 'sleep 1; echo \"stop $V\" >> \"$LOG\"; exit 0' TERM\n\
         while :; do sleep 0.05; done\n",
    )?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        deploy(&daemon, &app).await?;
        app.set_version("v2")?;
        deploy(&daemon, &app).await?;
        let log = |name: &str| app.root().join("shared").join(format!("{name}.log"));
        wait_until(SETTLE, "the old workers to log their stop", || {
            let (tick, jobs) = (log("tick"), log("jobs"));
            async move {
                let stopped = |path: &Path| {
                    std::fs::read_to_string(path).is_ok_and(|text| text.contains("stop v1"))
                };
                stopped(&tick) && stopped(&jobs)
            }
        })
        .await?;
        let tick = std::fs::read_to_string(log("tick"))?;
        ensure!(
            tick.lines().collect::<Vec<_>>() == ["start v1", "stop v1", "start v2"],
            "the singleton overlapped its successor:\n{tick}"
        );
        let jobs = std::fs::read_to_string(log("jobs"))?;
        ensure!(
            jobs.lines().collect::<Vec<_>>() == ["start v1", "start v2", "stop v1"],
            "an ordinary worker's successor should start while it finishes:\n{jobs}"
        );
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

/// `baton pause` holds an app's new requests at the front door; `baton
/// resume` lets them through, answered by the app, not failed.
#[tokio::test(flavor = "multi_thread")]
async fn pause_holds_an_apps_requests_and_resume_lets_them_through() -> anyhow::Result<()> {
    let app = AppSource::builder("held", "v1").build()?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        deploy(&daemon, &app).await?;
        daemon
            .baton(&["pause", "--app", "held", "--max", "60s"])
            .await?
            .success()?;
        let address = daemon.http_address();
        let request = tokio::spawn(async move { get_once(address, "/").await });
        wait_until(SOON, "the request to be held by the pause", || async {
            daemon.client().routes().await.is_ok_and(|routes| {
                routes
                    .iter()
                    .find(|route| route.service == "held")
                    .and_then(|route| route.paused.as_ref())
                    .is_some_and(|paused| paused.held >= 1)
            })
        })
        .await?;
        ensure!(!request.is_finished(), "the paused app answered at once");
        let resumed = daemon
            .baton(&["resume", "--app", "held"])
            .await?
            .success()?;
        ensure!(resumed.stdout.contains("resumed"), "{}", resumed.stdout);
        let reply = join(request, SOON, "the held request").await??;
        ensure!(
            reply.status == 200 && reply.version() == Some("v1"),
            "the held request got {} {:?}",
            reply.status,
            reply.version()
        );
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

/// Inside `keep_warm` a rollback is a pure traffic switch back to the very
/// processes that served before; `--to` picks a release; an unknown `--to`
/// fails naming the releases and touches nothing.
#[tokio::test(flavor = "multi_thread")]
async fn rollback_inside_keep_warm_serves_from_the_old_processes() -> anyhow::Result<()> {
    let app = AppSource::builder("rewind", "v1")
        .web_line("processes = 2")
        .web_line("keep_warm = \"300s\"")
        .build()?;
    let daemon = Daemon::start().await?;
    let outcome = warm_rollbacks(&daemon, &app).await;
    explain(outcome, &daemon)
}

/// `keep_warm` counts from a release's latest retirement: a release kept
/// warm, served again by a rollback and then replaced again stays warm for
/// a whole `keep_warm` from that second replacement, so a rollback then is
/// still warm. (The waits bracket the first retirement's expiry by seconds
/// on both sides; nothing is asserted about how fast anything runs.)
#[tokio::test(flavor = "multi_thread")]
async fn keep_warm_counts_from_the_latest_retirement() -> anyhow::Result<()> {
    let app = AppSource::builder("rewarm", "v1")
        .web_line(&format!("keep_warm = \"{}s\"", REWARM.as_secs()))
        .build()?;
    let daemon = Daemon::start().await?;
    let outcome = warm_twice(&daemon, &app).await;
    explain(outcome, &daemon)
}

/// `current` links to the serving release after every deploy and rollback;
/// with `keep_releases = 2` old releases go, except the rollback target and
/// releases whose processes still run (a worker finishing its job);
/// `asset_dir` keeps an older release's fingerprinted file in the new
/// release.
#[tokio::test(flavor = "multi_thread")]
async fn releases_current_retention_and_assets() -> anyhow::Result<()> {
    // No warm processes, so that what retention deletes depends on the
    // releases and the test's own waits alone.
    let app = AppSource::builder("shelf", "v1")
        .app_line("keep_releases = 2")
        .app_line("asset_dir = \"public/assets\"")
        .web_line("keep_warm = \"0s\"")
        .build()?;
    let daemon = Daemon::start().await?;
    let outcome = retention_and_assets(&daemon, &app).await;
    explain(outcome, &daemon)
}

/// `<root>/shared/.env` is the app's environment: a build step sees it (its
/// output is the user's, shown by `deploy`), the web processes run with it,
/// and baton itself never prints its values: not in the daemon's log, the
/// deploy's own messages, the stored deploy log, history, releases or ps.
/// (A build step that echoes a secret prints it on purpose: that line is
/// the app's output, which baton relays as is, so this test's step prints
/// the secret's length only.)
#[tokio::test(flavor = "multi_thread")]
async fn shared_env_reaches_the_app_but_never_batons_own_messages() -> anyhow::Result<()> {
    let app = AppSource::builder("secretive", "v1")
        .extra(
            "[build]\nsteps = [\"echo build sees GREETING=$GREETING and a token of \
             ${#API_TOKEN} characters\"]\n",
        )
        .build()?;
    let daemon = Daemon::start().await?;
    let outcome = env_file_stays_secret(&daemon, &app).await;
    explain(outcome, &daemon)
}

/// SIGTERM stops the daemon but not the apps; the next daemon on the same
/// state adopts the same processes (same pids, the warm ones still warm),
/// serves them, and supervises them: a rollback is a warm switch to the
/// adopted previous version and stops the adopted workers.
#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_restart_adopts_the_running_processes() -> anyhow::Result<()> {
    // Declared before the daemons so that it is dropped after them: no
    // daemon is left to restart what it kills.
    let app = AppSource::builder("steady", "v1")
        .web_line("processes = 2")
        .web_line("keep_warm = \"300s\"")
        .extra("[[workers]]\nname = \"jobs\"\ncommand = \"./worker\"\nprocesses = 2\n")
        .build()?;
    let mut first = Daemon::start().await?;
    let state = first.keep_state();
    let outcome = restart_keeps_processes(&mut first, &app).await;
    // Both daemons append to the same log.
    let outcome = explain(outcome, &first);
    drop(state);
    outcome
}

/// What `ps`, `releases`, `history` and `logs` print after two deploys and
/// a rollback.
#[tokio::test(flavor = "multi_thread")]
async fn ps_releases_history_and_logs_show_what_a_user_needs() -> anyhow::Result<()> {
    let app = AppSource::builder("visible", "v1")
        .web_line("processes = 2")
        .extra("[[workers]]\nname = \"jobs\"\ncommand = \"./worker\"\nprocesses = 2\n")
        .build()?;
    let daemon = Daemon::start().await?;
    let outcome = listings(&daemon, &app).await;
    explain(outcome, &daemon)
}

#[tokio::test]
async fn a_git_repository_deploys_at_the_ref_it_is_given() -> anyhow::Result<()> {
    let app = AppSource::builder("from-git", "v1").build()?;
    let daemon = Daemon::start().await?;
    let outcome = git_refs(&daemon, &app).await;
    explain(outcome, &daemon)
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

/// The source directory becomes a git repository with a tag `v1` and a
/// later commit on `main`; each ref deploys its own version, and the
/// release id carries the commit.
async fn git_refs(daemon: &Daemon, app: &AppSource) -> anyhow::Result<()> {
    let repo = app.source_dir();
    let git = |args: &[&str]| -> anyhow::Result<String> {
        let output = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(&repo)
            .output()?;
        ensure!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    };
    git(&["init", "-q"])?;
    git(&["add", "."])?;
    git(&["commit", "-qm", "v1"])?;
    git(&["tag", "v1"])?;
    let v1_commit = git(&["rev-parse", "--short=7", "HEAD"])?;
    app.set_version("v2")?;
    git(&["commit", "-qam", "v2"])?;
    // Uncommitted changes are not part of any ref.
    app.set_version("dirty")?;

    let config = config_arg(app)?;
    let repo_arg = path_arg(&repo)?;
    let deploy_ref = |reference: &'static str| {
        let (config, repo_arg) = (config.clone(), repo_arg.clone());
        async move {
            let output = daemon
                .baton(&[
                    "deploy", "--config", &config, "--git", &repo_arg, "--ref", reference, "--json",
                ])
                .await?
                .success()?;
            run_report(&output)
        }
    };
    let first = deploy_ref("v1").await?;
    ensure!(
        first.release.ends_with(&v1_commit),
        "{} lacks {v1_commit}",
        first.release
    );
    ensure!(get_once(daemon.http_address(), "/").await?.version() == Some("v1"));
    ensure!(
        !app.root()
            .join("releases")
            .join(&first.release)
            .join(".git")
            .exists(),
        "a release keeps no .git"
    );
    deploy_ref("main").await?;
    ensure!(get_once(daemon.http_address(), "/").await?.version() == Some("v2"));
    let bad = daemon
        .baton(&[
            "deploy",
            "--config",
            &config,
            "--git",
            &repo_arg,
            "--ref",
            "no-such-ref",
        ])
        .await?;
    ensure!(!bad.status.success(), "an unknown ref deployed");
    ensure!(bad.stderr.contains("no-such-ref"), "{}", bad.stderr);
    ensure!(get_once(daemon.http_address(), "/").await?.version() == Some("v2"));
    Ok(())
}

async fn deploys_and_rollbacks_under_load(daemon: &Daemon, app: &AppSource) -> anyhow::Result<()> {
    deploy(daemon, app).await?;
    let load = EpochLoad::start(daemon.http_address(), 32);
    load.wait_for_answers(32 * 5, 3).await?;

    let watching = Arc::new(AtomicBool::new(true));
    let watcher = watch_current(app.root().to_path_buf(), Arc::clone(&watching));

    // `lives[e]` serves once `e` operations have finished.
    let mut lives = vec!["v1".to_string()];
    let mut next_version = 2;
    let config = config_arg(app)?;
    for operation in 1..=12 {
        // Rollbacks after the 4th and the 7th deploy (operations 5 and 9).
        let rolls_back = operation == 5 || operation == 9;
        let (args, target) = if rolls_back {
            let args = ["rollback", "--app", app.name(), "--json"];
            (
                args.map(String::from).to_vec(),
                lives[lives.len() - 2].clone(),
            )
        } else {
            let version = format!("v{next_version}");
            next_version += 1;
            app.set_version(&version)?;
            let args = ["deploy", "--config", &config, "--json"];
            (args.map(String::from).to_vec(), version)
        };
        let report = switch_with_an_open_websocket(daemon, &load, &args, &target)
            .await
            .with_context(|| format!("operation {operation}: {} to {target}", args[0]))?;
        if rolls_back {
            ensure!(
                report.warm,
                "a rollback inside keep_warm should reuse the warm processes: {report:?}"
            );
        }
        lives.push(target);
        load.next_epoch();
    }

    watching.store(false, Ordering::Relaxed);
    let (looks, misses) = join(watcher, SETTLE, "the watcher of `current`").await??;
    ensure!(
        looks > 0 && misses.is_empty(),
        "`current` was missing or led nowhere at {} of {looks} looks: {misses:?}",
        misses.len()
    );

    // The last version takes some traffic alone before the load stops.
    let answered = load.shared.gets.ok.load(Ordering::Relaxed);
    load.wait_for_answers(answered + 32 * 5, 0).await?;
    let (shared, connections) = load.stop().await?;
    shared
        .gets
        .assert_no_failures()
        .context("GET / under load")?;
    shared.uploads.assert_no_failures().context("uploads")?;
    ensure!(
        connections == 32,
        "the 32 keep-alive clients opened {connections} connections: a switch closed some"
    );
    let uploads = shared.uploads.ok.load(Ordering::Relaxed);
    ensure!(
        uploads >= 12,
        "only {uploads} uploads were answered during 12 switches"
    );

    // A request sent while `lives[e]` served is answered by it or by the
    // version the running operation brings in, never by an older one.
    let seen = lock(&shared.seen).clone();
    let mut wrong = Vec::new();
    for ((epoch, version), count) in &seen {
        let epoch = usize::try_from(*epoch)?;
        let allowed: Vec<&String> = lives.iter().skip(epoch).take(2).collect();
        if !allowed.contains(&version) {
            wrong.push(format!(
                "{count} requests sent after operation {epoch} answered by {version:?} \
                 (allowed: {allowed:?})"
            ));
        }
    }
    ensure!(
        wrong.is_empty(),
        "answers from the wrong version: {wrong:#?}"
    );
    let deployed: BTreeSet<&String> = lives.iter().collect();
    let answered_by: BTreeSet<&String> = seen.keys().map(|(_, version)| version).collect();
    ensure!(
        answered_by == deployed,
        "versions that answered {answered_by:?}, versions deployed {deployed:?}"
    );
    Ok(())
}

/// Looks at `<root>/current` until `watching` turns false: how often, and
/// what it found each time it was missing or led to no release.
fn watch_current(
    root: PathBuf,
    watching: Arc<AtomicBool>,
) -> JoinHandle<anyhow::Result<(u64, Vec<String>)>> {
    tokio::task::spawn_blocking(move || {
        let current = root.join("current");
        let (mut looks, mut misses) = (0, Vec::new());
        while watching.load(Ordering::Relaxed) {
            looks += 1;
            match std::fs::read_link(&current) {
                Ok(_) if current.join("VERSION").is_file() => {}
                Ok(target) => misses.push(format!("-> {} (no release)", target.display())),
                Err(error) => misses.push(error.to_string()),
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok((looks, misses))
    })
}

/// Runs `baton ARGS` (a deploy or rollback to `target`) while a WebSocket
/// opened before it keeps echoing; once the load is answered by `target`,
/// checks the socket still works and the run still waits for it (its
/// drain), closes it and returns the run's report.
async fn switch_with_an_open_websocket(
    daemon: &Daemon,
    load: &EpochLoad,
    args: &[String],
    target: &str,
) -> anyhow::Result<DeployReport> {
    let mut socket = open_websocket(daemon.http_address()).await?;
    echo(&mut socket, "before the switch").await?;
    let epoch = load.epoch();
    let mut run = spawn_baton(daemon, args);
    let mut ended: Option<CommandOutput> = None;
    let give_up = Instant::now() + SETTLE;
    let mut echoes = 0;
    while !load.answered(epoch, target) {
        if ended.is_none() && run.is_finished() {
            let output = (&mut run).await.context("the baton command panicked")??;
            ensure!(
                output.status.success(),
                "it failed before {target} answered:\nstdout: {}\nstderr: {}",
                output.stdout,
                output.stderr
            );
            ended = Some(output);
        }
        ensure!(
            Instant::now() < give_up,
            "no request was answered by {target} within {SETTLE:?}"
        );
        echo(&mut socket, &format!("during the switch {echoes}")).await?;
        echoes += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for round in 0..3 {
        echo(&mut socket, &format!("after the switch {round}"))
            .await
            .context("the WebSocket to the old version broke after the switch")?;
    }
    ensure!(
        ended.is_none() && !run.is_finished(),
        "the run ended while a WebSocket to the old version was open and echoing: \
         its drain did not wait for the socket"
    );
    close_websocket(socket).await?;
    let output = join(run, SETTLE * 2, "the deploy or rollback").await??;
    let report = run_report(&output.success()?)?;
    ensure!(
        report.upgraded_connections_closed == 0 && report.requests_cut_at_drain_timeout == 0,
        "the drain cut connections before its deadline: {report:?}"
    );
    Ok(report)
}

async fn jobs_across_deploys(daemon: &Daemon, app: &AppSource) -> anyhow::Result<()> {
    let db = app.root().join("shared").join("queue.db");
    std::fs::create_dir_all(app.root().join("shared"))?;
    let db_arg = path_arg(&db)?;
    let mut releases = Vec::new();
    for version in 1..=5 {
        demo_worker(&["enqueue", "--db", &db_arg, "--count", "40"]).await?;
        app.set_version(&format!("v{version}"))?;
        releases.push(deploy(daemon, app).await?.release);
    }

    let last = Mutex::new(None);
    let finished = wait_until(Duration::from_secs(150), "200 jobs done", || async {
        match queue_report(&db_arg).await {
            Ok(report) => {
                let done = report.done == 200 && report.running == 0;
                *lock(&last) = Some(report);
                done
            }
            Err(_) => false,
        }
    })
    .await;
    finished.with_context(|| format!("the queue last read {:?}", lock(&last)))?;
    let report = queue_report(&db_arg).await?;
    ensure!(
        report.total == 200
            && report.done == 200
            && report.queued == 0
            && report.running == 0
            && report.done_more_than_once == 0,
        "each of the 200 jobs should be done exactly once: {report:?}"
    );
    let versions: BTreeSet<&str> = report
        .by_worker
        .keys()
        .filter_map(|worker| worker.split(':').next())
        .collect();
    ensure!(
        versions.len() > 1,
        "only workers of {versions:?} finished jobs: {report:?}"
    );

    // The old workers exited on their stop signal; only the current
    // release's two run.
    let current = releases.last().context("no release")?.clone();
    wait_processes(
        daemon,
        app.name(),
        "only the current release's workers",
        |ps| {
            let workers: Vec<&ProcessInfo> = ps.iter().filter(|p| p.role == "jobs").collect();
            workers.len() == 2 && workers.iter().all(|p| p.release == current)
        },
    )
    .await?;
    ensure!(
        !daemon.logs().contains("\"killed\":true"),
        "a process had to be SIGKILLed: a worker did not finish its job within stop_timeout"
    );
    Ok(())
}

async fn warm_rollbacks(daemon: &Daemon, app: &AppSource) -> anyhow::Result<()> {
    let r1 = deploy(daemon, app).await?.release;
    let v1_web = web_processes(&processes(daemon, app.name()).await?, &r1);
    ensure!(
        v1_web.len() == 2,
        "v1 should run 2 web processes: {v1_web:?}"
    );
    app.set_version("v2")?;
    let r2 = deploy(daemon, app).await?.release;
    let v2_web = web_processes(&processes(daemon, app.name()).await?, &r2);
    let warm = web_processes(&processes(daemon, app.name()).await?, &r1);
    ensure!(
        same_pids(&warm, &v1_web) && warm.iter().all(|p| p.state == "warm"),
        "after the deploy of v2, v1's processes {v1_web:?} should be kept warm: {warm:?}"
    );
    ensure_serves(daemon, "v2").await?;

    let back = rollback(daemon, app.name(), None).await?;
    ensure!(
        back.warm && back.release == r1 && back.previous_release.as_deref() == Some(r2.as_str()),
        "`baton rollback` inside keep_warm should be a warm switch from {r2} to {r1}: {back:?}"
    );
    let serving = web_processes(&processes(daemon, app.name()).await?, &r1);
    ensure!(
        same_pids(&serving, &v1_web) && serving.iter().all(|p| p.state == "running"),
        "v1 should serve again from its old processes {v1_web:?}: {serving:?}"
    );
    ensure_routed_to(daemon, app.name(), &r1, &v1_web).await?;
    ensure_serves(daemon, "v1").await?;
    ensure_current(app, &r1)?;

    let forward = rollback(daemon, app.name(), Some(&r2)).await?;
    ensure!(
        forward.warm && forward.release == r2,
        "`rollback --to {r2}` should switch back warm: {forward:?}"
    );
    let serving = web_processes(&processes(daemon, app.name()).await?, &r2);
    ensure!(
        same_pids(&serving, &v2_web),
        "v2 should serve from its old processes {v2_web:?}: {serving:?}"
    );
    ensure_routed_to(daemon, app.name(), &r2, &v2_web).await?;
    ensure_serves(daemon, "v2").await?;
    ensure_current(app, &r2)?;

    // A release that does not exist: refused up front, nothing changes.
    let before_ps = pid_table(&processes(daemon, app.name()).await?);
    let before_history = history(daemon, app.name()).await?.len();
    let unknown = "20000101T000000Z-nothere";
    let refused = daemon
        .baton(&["rollback", "--app", app.name(), "--to", unknown])
        .await?;
    ensure!(
        !refused.status.success(),
        "a rollback to an unknown release succeeded: {refused:?}"
    );
    ensure!(
        refused.stderr.contains(unknown)
            && refused.stderr.contains(&r1)
            && refused.stderr.contains(&r2),
        "the error should name the unknown release and the releases there are: {:?}",
        refused.stderr
    );
    ensure_current(app, &r2)?;
    ensure_serves(daemon, "v2").await?;
    let after_ps = pid_table(&processes(daemon, app.name()).await?);
    ensure!(
        before_ps == after_ps,
        "the refused rollback changed the processes: {before_ps:?} -> {after_ps:?}"
    );
    let after_history = history(daemon, app.name()).await?.len();
    ensure!(
        after_history == before_history,
        "the refused rollback was recorded in history ({before_history} -> {after_history} runs)"
    );
    Ok(())
}

/// `keep_warm` of the test that retires a release twice.
const REWARM: Duration = Duration::from_secs(12);

async fn warm_twice(daemon: &Daemon, app: &AppSource) -> anyhow::Result<()> {
    let r1 = deploy(daemon, app).await?.release;
    app.set_version("v2")?;
    deploy(daemon, app).await?;
    // v1 was retired before this instant: its first keep_warm ends before
    // `first_expiry`.
    let first_expiry = Instant::now() + REWARM;
    let back = rollback(daemon, app.name(), None).await?;
    ensure!(
        back.warm && back.release == r1,
        "the first rollback should be warm: {back:?}"
    );
    // v1 is retired again no sooner than half a keep_warm before its first
    // expiry: warm until at least `first_expiry + REWARM / 2`.
    tokio::time::sleep_until(first_expiry - REWARM / 2).await;
    app.set_version("v3")?;
    deploy(daemon, app).await?;
    let v1_web = web_processes(&processes(daemon, app.name()).await?, &r1);
    // Between the two expiries, with a quarter of keep_warm to spare on
    // each side.
    tokio::time::sleep_until(first_expiry + REWARM / 4).await;
    let still = web_processes(&processes(daemon, app.name()).await?, &r1);
    ensure!(
        !v1_web.is_empty() && same_pids(&still, &v1_web) && still.iter().all(|p| p.state == "warm"),
        "v1, replaced again {:?} ago, should still be warm: {v1_web:?} -> {still:?}",
        REWARM * 3 / 4
    );
    let again = rollback(daemon, app.name(), None).await?;
    ensure!(
        again.warm && again.release == r1,
        "a rollback within keep_warm of v1's latest retirement should be warm: {again:?}"
    );
    ensure_serves(daemon, "v1").await
}

async fn retention_and_assets(daemon: &Daemon, app: &AppSource) -> anyhow::Result<()> {
    let assets = app.source_dir().join("public/assets");
    app.write_file("public/assets/app-v1.css", "body { color: red }\n")?;
    let mut ids = vec![String::new()];
    ids.push(deploy_and_check_current(daemon, app).await?);
    ensure_release_dirs(app, &[&ids[1]])?;

    // v2 no longer ships v1's stylesheet; its release still has it.
    std::fs::remove_file(assets.join("app-v1.css"))?;
    app.write_file("public/assets/app-v2.css", "body { color: blue }\n")?;
    app.set_version("v2")?;
    ids.push(deploy_and_check_current(daemon, app).await?);
    ensure_release_dirs(app, &[&ids[1], &ids[2]])?;
    let carried = app
        .root()
        .join("releases")
        .join(&ids[2])
        .join("public/assets/app-v1.css");
    let original = app
        .root()
        .join("releases")
        .join(&ids[1])
        .join("public/assets/app-v1.css");
    let text = std::fs::read_to_string(&carried).with_context(|| {
        format!(
            "v1's asset should be in v2's release at {}",
            carried.display()
        )
    })?;
    ensure!(
        text == "body { color: red }\n",
        "v1's asset changed: {text:?}"
    );
    ensure!(
        same_file(&carried, &original)?,
        "v1's asset should be hard-linked into v2's release, not copied"
    );

    // Newest two kept: each deploy deletes the release before the previous
    // one (its processes are gone: keep_warm is 0 here).
    for version in 3..=5 {
        wait_only_release_runs(daemon, app.name(), &ids[version - 1]).await?;
        let previous = format!("app-v{}.css", version - 1);
        std::fs::remove_file(assets.join(&previous))?;
        app.write_file(&format!("public/assets/app-v{version}.css"), "p {}\n")?;
        app.set_version(&format!("v{version}"))?;
        ids.push(deploy_and_check_current(daemon, app).await?);
        ensure_release_dirs(app, &[&ids[version - 1], &ids[version]])?;
        let kept = app
            .root()
            .join("releases")
            .join(&ids[version])
            .join("public/assets")
            .join(&previous);
        ensure!(
            kept.is_file(),
            "{} should be kept in release {}",
            previous,
            ids[version]
        );
    }

    // A (cold) rollback to v4, then a deploy: v4, the rollback target, is
    // kept although it is not among the newest two.
    wait_only_release_runs(daemon, app.name(), &ids[5]).await?;
    let back = rollback(daemon, app.name(), None).await?;
    ensure!(
        back.release == ids[4] && !back.warm,
        "rollback should cold-start v4 (keep_warm is 0): {back:?}"
    );
    ensure_current(app, &ids[4])?;
    ensure_serves(daemon, "v4").await?;
    wait_only_release_runs(daemon, app.name(), &ids[4]).await?;
    app.set_version("v6")?;
    ids.push(deploy_and_check_current(daemon, app).await?);
    ensure_release_dirs(app, &[&ids[4], &ids[5], &ids[6]])?;
    let listed = releases(daemon, app.name()).await?;
    ensure!(
        listed
            .iter()
            .any(|release| release.id == ids[4] && release.rollback_target),
        "v4 should be listed as the rollback target: {listed:?}"
    );

    // From v7 on the app has a worker. v7's worker takes a long job and is
    // still finishing it (stopping) when v9 goes live: its release, neither
    // among the newest two nor the rollback target, is kept.
    let config = std::fs::read_to_string(app.config_path())?;
    app.write_config(&format!(
        "{config}\n[[workers]]\nname = \"jobs\"\ncommand = \"./worker\"\n\
         stop_timeout = \"300s\"\n"
    ))?;
    wait_only_release_runs(daemon, app.name(), &ids[6]).await?;
    app.set_version("v7")?;
    ids.push(deploy_and_check_current(daemon, app).await?);
    ensure_release_dirs(app, &[&ids[6], &ids[7]])?;
    let db = path_arg(&app.root().join("shared/queue.db"))?;
    let long_job = ["--count", "1", "--min-ms", "600000", "--max-ms", "600000"];
    demo_worker(&[&["enqueue", "--db", &db][..], &long_job[..]].concat()).await?;
    wait_until(SETTLE, "v7's worker to take the long job", || async {
        queue_report(&db)
            .await
            .is_ok_and(|report| report.running == 1)
    })
    .await?;

    wait_only_release_runs(daemon, app.name(), &ids[7]).await?;
    app.set_version("v8")?;
    ids.push(deploy_and_check_current(daemon, app).await?);
    ensure_release_dirs(app, &[&ids[7], &ids[8]])?;
    let (v7, v8) = (ids[7].clone(), ids[8].clone());
    let what = "v7 to have only its worker left, finishing its job";
    wait_processes(daemon, app.name(), what, |processes| {
        let v7_left: Vec<&ProcessInfo> = processes.iter().filter(|p| p.release == v7).collect();
        v7_left.len() == 1
            && v7_left[0].role == "jobs"
            && processes.iter().all(|p| p.release == v7 || p.release == v8)
    })
    .await?;

    app.set_version("v9")?;
    ids.push(deploy_and_check_current(daemon, app).await?);
    ensure_release_dirs(app, &[&ids[7], &ids[8], &ids[9]])?;
    let listed = releases(daemon, app.name()).await?;
    let v7 = listed
        .iter()
        .find(|release| release.id == ids[7])
        .context("v7 is not listed")?;
    ensure!(
        v7.running && !v7.current && !v7.rollback_target,
        "v7 should be listed as running only: {listed:?}"
    );
    let left = processes(daemon, app.name()).await?;
    ensure!(
        left.iter()
            .any(|p| p.release == ids[7] && p.role == "jobs" && p.state == "stopping"),
        "v7's worker should be stopping: {left:?}"
    );
    Ok(())
}

async fn env_file_stays_secret(daemon: &Daemon, app: &AppSource) -> anyhow::Result<()> {
    let secret = format!("tok-{}-c2VjcmV0", std::process::id());
    std::fs::create_dir_all(app.root().join("shared"))?;
    std::fs::write(
        app.root().join("shared/.env"),
        format!("GREETING=hello-from-dotenv\nAPI_TOKEN={secret}\n"),
    )?;
    let config = config_arg(app)?;
    let output = daemon
        .baton(&["deploy", "--config", &config])
        .await?
        .success()?;
    let expected = format!(
        "build sees GREETING=hello-from-dotenv and a token of {} characters",
        secret.len()
    );
    ensure!(
        output.stdout.contains(&expected),
        "the build step's output should show {expected:?}: {}",
        output.stdout
    );
    // The rest of what a user reads: each stage finished, then the verdict.
    for stage in [
        "stage", "link", "build", "boot", "switch", "current", "prune",
    ] {
        ensure!(
            has_line(&output.stdout, &[stage, "ok"], |line| line
                .starts_with(stage)),
            "`baton deploy` should report the {stage} stage done:\n{}",
            output.stdout
        );
    }
    let live = format!("{} is live: release", app.name());
    ensure!(
        output.stdout.contains(&live),
        "`baton deploy` should end with {live:?}:\n{}",
        output.stdout
    );

    let web = processes(daemon, app.name()).await?;
    let pid = web
        .iter()
        .find(|process| process.role == "web")
        .map(|process| process.pid)
        .context("no web process")?;
    let environ = std::fs::read(format!("/proc/{pid}/environ"))?;
    let wanted = format!("API_TOKEN={secret}");
    ensure!(
        environ
            .split(|byte| *byte == 0)
            .any(|entry| entry == wanted.as_bytes()),
        "the web process should run with API_TOKEN from shared/.env"
    );

    let mut places = vec![
        ("the daemon's log".to_string(), daemon.logs()),
        ("deploy's stdout".to_string(), output.stdout.clone()),
        ("deploy's stderr".to_string(), output.stderr.clone()),
    ];
    for command in ["history", "releases", "ps"] {
        let listed = daemon
            .baton(&[command, "--app", app.name(), "--json"])
            .await?
            .success()?;
        places.push((format!("`baton {command} --json`"), listed.stdout));
    }
    let deploy_logs = daemon
        .state_dir()
        .join("logs")
        .join(app.name())
        .join("deploys");
    for entry in std::fs::read_dir(&deploy_logs)? {
        let path = entry?.path();
        places.push((path.display().to_string(), std::fs::read_to_string(&path)?));
    }
    for (place, text) in places {
        ensure!(
            !text.contains(&secret),
            "the secret from shared/.env shows in {place}"
        );
    }
    Ok(())
}

async fn restart_keeps_processes(first: &mut Daemon, app: &AppSource) -> anyhow::Result<()> {
    let r1 = deploy(first, app).await?.release;
    app.set_version("v2")?;
    let r2 = deploy(first, app).await?.release;
    let v1_workers_gone = |processes: &[ProcessInfo]| {
        !processes
            .iter()
            .any(|process| process.release == r1 && process.role == "jobs")
    };
    wait_processes(first, app.name(), "v1's workers to exit", v1_workers_gone).await?;
    let before = processes(first, app.name()).await?;
    ensure!(
        before.len() == 6,
        "v2's 2 web and 2 worker processes and v1's 2 warm web processes should run: {before:?}"
    );

    first.signal(Signal::SIGTERM);
    let status = first.wait_exit(SETTLE).await?;
    ensure!(status.success(), "the daemon stopped with {status}");
    for process in &before {
        ensure!(
            is_running(process.pid),
            "{} {} (pid {}) did not outlive the daemon",
            process.role,
            process.index,
            process.pid
        );
    }

    let second = Daemon::builder()
        .state_dir(first.state_dir())
        .start()
        .await?;
    let after = processes(&second, app.name()).await?;
    ensure!(
        pid_states(&after) == pid_states(&before),
        "the new daemon should adopt the same processes in the same states: {:?} -> {:?}",
        pid_states(&before),
        pid_states(&after)
    );
    wait_serving(&second, "v2").await?;
    let listed = releases(&second, app.name()).await?;
    ensure!(
        listed.iter().any(|r| r.id == r2 && r.current),
        "{r2} should still be current: {listed:?}"
    );

    // Adopted means supervised: the warm v1 takes the traffic back at once,
    // and v2's workers get their stop signal.
    let back = rollback(&second, app.name(), None).await?;
    ensure!(
        back.warm && back.release == r1,
        "a rollback to the adopted warm v1 should be warm: {back:?}"
    );
    let serving = web_processes(&processes(&second, app.name()).await?, &r1);
    ensure!(
        same_pids(&serving, &web_processes(&before, &r1)),
        "v1 should serve from its adopted processes: {before:?} -> {serving:?}"
    );
    ensure_serves(&second, "v1").await?;
    let v2_workers: Vec<u32> = before
        .iter()
        .filter(|process| process.release == r2 && process.role == "jobs")
        .map(|process| process.pid)
        .collect();
    wait_until(SETTLE, "v2's adopted workers to exit", || async {
        v2_workers.iter().all(|pid| !is_running(*pid))
    })
    .await?;
    Ok(())
}

async fn listings(daemon: &Daemon, app: &AppSource) -> anyhow::Result<()> {
    let r1 = deploy(daemon, app).await?.release;
    // Once deployed, the app is known by name.
    app.set_version("v2")?;
    let source = path_arg(&app.source_dir())?;
    let second = daemon
        .baton(&["deploy", "--app", app.name(), "--source", &source, "--json"])
        .await?
        .success()?;
    let r2 = run_report(&second)?.release;
    ensure_current(app, &r2)?;

    let releases = daemon
        .baton(&["releases", "--app", app.name()])
        .await?
        .success()?
        .stdout;
    ensure!(
        has_line(&releases, &["*", &r2, "yes"], |line| line.starts_with('*')),
        "`baton releases` should mark {r2} current (and running):\n{releases}"
    );
    ensure!(
        has_line(&releases, &["<", &r1], |line| line.starts_with('<')),
        "`baton releases` should mark {r1} as the rollback target:\n{releases}"
    );

    let ps = daemon
        .baton(&["ps", "--app", app.name()])
        .await?
        .success()?
        .stdout;
    let listed = processes(daemon, app.name()).await?;
    let wanted = [("web", 1), ("web", 2), ("jobs", 1), ("jobs", 2)];
    for (role, index) in wanted {
        let process = listed
            .iter()
            .find(|p| p.release == r2 && p.role == role && p.index == index)
            .with_context(|| format!("no {role}.{index} of {r2} in {listed:?}"))?;
        let slot = format!("{role}.{index}");
        let pid = process.pid.to_string();
        let mut words = vec![slot.as_str(), r2.as_str(), pid.as_str(), "running"];
        let port = process.port.map(|port| port.to_string());
        if role == "web" {
            words.push(port.as_deref().context("a web process without a port")?);
        }
        ensure!(
            has_line(&ps, &words, |_| true),
            "`baton ps` should show {words:?} on one line:\n{ps}"
        );
    }
    ensure!(
        ps.lines()
            .filter(|line| line.contains(&r1) && line.contains("warm"))
            .count()
            == 2,
        "`baton ps` should show v1's two web processes as warm:\n{ps}"
    );

    let logs = daemon
        .baton(&["logs", "web", "--app", app.name(), "-n", "5"])
        .await?
        .success()?
        .stdout;
    for process in listed.iter().filter(|p| p.release == r2 && p.role == "web") {
        let port = process.port.context("a web process without a port")?;
        let line = format!("listening on 127.0.0.1:{port}");
        ensure!(
            logs.contains(&line),
            "`baton logs web -n 5` should show {line:?}:\n{logs}"
        );
    }
    let worker_logs = daemon
        .baton(&["logs", "jobs", "--app", app.name(), "-n", "5"])
        .await?
        .success()?
        .stdout;
    ensure!(
        worker_logs.contains("worker v2:") && worker_logs.contains("started on queue"),
        "`baton logs jobs` should show the v2 workers starting:\n{worker_logs}"
    );

    rollback(daemon, app.name(), None).await?;
    let table = daemon
        .baton(&["history", "--app", app.name()])
        .await?
        .success()?
        .stdout;
    for (kind, release) in [("rollback", &r1), ("deploy", &r2), ("deploy", &r1)] {
        ensure!(
            has_line(&table, &[kind, release, "succeeded"], |_| true),
            "`baton history` should list a succeeded {kind} of {release}:\n{table}"
        );
    }
    let entries = history(daemon, app.name()).await?;
    let kinds: Vec<(DeployKind, DeployOutcomeKind)> = entries
        .iter()
        .map(|entry| (entry.kind, entry.outcome))
        .collect();
    ensure!(
        kinds
            == [
                (DeployKind::Rollback, DeployOutcomeKind::Succeeded),
                (DeployKind::Deploy, DeployOutcomeKind::Succeeded),
                (DeployKind::Deploy, DeployOutcomeKind::Succeeded),
            ],
        "`baton history --json` newest first: {entries:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

/// `baton deploy --config <app's baton.toml> --json`; the report.
async fn deploy(daemon: &Daemon, app: &AppSource) -> anyhow::Result<DeployReport> {
    let config = config_arg(app)?;
    let output = daemon
        .baton(&["deploy", "--config", &config, "--json"])
        .await?
        .success()?;
    run_report(&output)
}

/// Deploys, then checks `current` links to the new release; its id.
async fn deploy_and_check_current(daemon: &Daemon, app: &AppSource) -> anyhow::Result<String> {
    let release = deploy(daemon, app).await?.release;
    ensure_current(app, &release)?;
    Ok(release)
}

/// `baton rollback --app NAME [--to ID] --json`; the report.
async fn rollback(daemon: &Daemon, app: &str, to: Option<&str>) -> anyhow::Result<DeployReport> {
    let mut args = vec!["rollback", "--app", app, "--json"];
    if let Some(to) = to {
        args.extend(["--to", to]);
    }
    let output = daemon.baton(&args).await?.success()?;
    run_report(&output)
}

/// The report of a `--json` deploy or rollback's last event, `succeeded`.
fn run_report(output: &CommandOutput) -> anyhow::Result<DeployReport> {
    let mut last = None;
    for line in output.stdout.lines().filter(|line| !line.trim().is_empty()) {
        let event: DeployEvent =
            serde_json::from_str(line).with_context(|| format!("not a deploy event: {line:?}"))?;
        last = Some(event);
    }
    match last {
        Some(DeployEvent::Succeeded { report }) => Ok(report),
        other => bail!(
            "the run did not end with `succeeded` but with {other:?}\nstdout: {}\nstderr: {}",
            output.stdout,
            output.stderr
        ),
    }
}

/// `baton ps --app NAME --json`.
async fn processes(daemon: &Daemon, app: &str) -> anyhow::Result<Vec<ProcessInfo>> {
    listing(daemon, "ps", app).await
}

/// `baton releases --app NAME --json`.
async fn releases(daemon: &Daemon, app: &str) -> anyhow::Result<Vec<ReleaseInfo>> {
    listing(daemon, "releases", app).await
}

/// `baton history --app NAME --json`, newest first.
async fn history(daemon: &Daemon, app: &str) -> anyhow::Result<Vec<HistoryEntry>> {
    listing(daemon, "history", app).await
}

async fn listing<T: serde::de::DeserializeOwned>(
    daemon: &Daemon,
    command: &str,
    app: &str,
) -> anyhow::Result<T> {
    let output = daemon
        .baton(&[command, "--app", app, "--json"])
        .await?
        .success()?;
    serde_json::from_str(&output.stdout)
        .with_context(|| format!("`baton {command} --json` printed {:?}", output.stdout))
}

/// The app's `baton.toml` as a command-line argument.
fn config_arg(app: &AppSource) -> anyhow::Result<String> {
    path_arg(&app.config_path())
}

fn path_arg(path: &Path) -> anyhow::Result<String> {
    path.to_str()
        .map(str::to_string)
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

/// Whether one line of `text` passes `first` and holds every word.
fn has_line(text: &str, words: &[&str], first: impl Fn(&str) -> bool) -> bool {
    text.lines().any(|line| {
        first(line)
            && words
                .iter()
                .all(|word| line.split_whitespace().any(|field| field == *word))
    })
}

// ---------------------------------------------------------------------------
// Processes, releases, routes
// ---------------------------------------------------------------------------

/// The web processes of `release`, by index.
fn web_processes(processes: &[ProcessInfo], release: &str) -> Vec<ProcessInfo> {
    let mut web: Vec<ProcessInfo> = processes
        .iter()
        .filter(|process| process.role == "web" && process.release == release)
        .cloned()
        .collect();
    web.sort_by_key(|process| process.index);
    web
}

fn same_pids(left: &[ProcessInfo], right: &[ProcessInfo]) -> bool {
    pid_table(left) == pid_table(right)
}

/// (release, role, index) → pid.
fn pid_table(processes: &[ProcessInfo]) -> BTreeMap<(String, String, u32), u32> {
    processes
        .iter()
        .map(|process| {
            (
                (process.release.clone(), process.role.clone(), process.index),
                process.pid,
            )
        })
        .collect()
}

/// (release, role, index) → (pid, state).
fn pid_states(processes: &[ProcessInfo]) -> BTreeMap<(String, String, u32), (u32, String)> {
    processes
        .iter()
        .map(|process| {
            (
                (process.release.clone(), process.role.clone(), process.index),
                (process.pid, process.state.clone()),
            )
        })
        .collect()
}

/// Whether `pid` runs (a zombie does not).
fn is_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X')
    })
}

/// Polls the daemon's process list until `done` holds.
async fn wait_processes(
    daemon: &Daemon,
    app: &str,
    what: &str,
    done: impl Fn(&[ProcessInfo]) -> bool,
) -> anyhow::Result<()> {
    let client = daemon.client();
    let last = Mutex::new(Vec::new());
    let waited = wait_until(SETTLE, what, || async {
        match client.processes(Some(app)).await {
            Ok(processes) => {
                let ok = done(&processes);
                *lock(&last) = processes;
                ok
            }
            Err(_) => false,
        }
    })
    .await;
    waited.with_context(|| format!("processes last listed: {:#?}", lock(&last)))
}

/// Waits until `release` is the only release of `app` with processes.
async fn wait_only_release_runs(daemon: &Daemon, app: &str, release: &str) -> anyhow::Result<()> {
    let what = format!("only release {release} to have processes");
    wait_processes(daemon, app, &what, |processes| {
        !processes.is_empty() && processes.iter().all(|process| process.release == release)
    })
    .await
}

/// `<root>/current` is a symlink to `releases/<release>`.
fn ensure_current(app: &AppSource, release: &str) -> anyhow::Result<()> {
    let link = app.root().join("current");
    let meta = std::fs::symlink_metadata(&link)
        .with_context(|| format!("{} is missing", link.display()))?;
    ensure!(
        meta.file_type().is_symlink(),
        "{} is not a symlink",
        link.display()
    );
    let target = std::fs::read_link(&link)?;
    let expected = PathBuf::from("releases").join(release);
    ensure!(
        target == expected || target == app.root().join(&expected),
        "current -> {}, expected -> {}",
        target.display(),
        expected.display()
    );
    ensure!(
        link.join("VERSION").is_file(),
        "current does not lead to a release directory"
    );
    Ok(())
}

/// The release directories on disk are exactly `expected`.
fn ensure_release_dirs(app: &AppSource, expected: &[&String]) -> anyhow::Result<()> {
    let on_disk: BTreeSet<String> = app.release_dirs().into_iter().collect();
    let expected: BTreeSet<String> = expected.iter().map(|id| id.to_string()).collect();
    ensure!(
        on_disk == expected,
        "releases on disk {on_disk:?}, expected {expected:?}"
    );
    Ok(())
}

fn same_file(left: &Path, right: &Path) -> anyhow::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let (left, right) = (std::fs::metadata(left)?, std::fs::metadata(right)?);
    Ok(left.dev() == right.dev() && left.ino() == right.ino())
}

/// The service's stable version is `release`, routed to exactly the ports
/// of `web`.
async fn ensure_routed_to(
    daemon: &Daemon,
    service: &str,
    release: &str,
    web: &[ProcessInfo],
) -> anyhow::Result<()> {
    let routes: Vec<RouteInfo> = daemon.client().routes().await?;
    let route = routes
        .iter()
        .find(|route| route.service == service)
        .with_context(|| format!("no route for {service}: {routes:?}"))?;
    let stable = route
        .versions
        .iter()
        .find(|version| version.role == VersionRole::Stable)
        .with_context(|| format!("no stable version: {route:?}"))?;
    let targets: BTreeSet<String> = stable
        .targets
        .iter()
        .map(|target| target.address.clone())
        .collect();
    let ports: BTreeSet<String> = web
        .iter()
        .filter_map(|process| process.port)
        .map(|port| format!("127.0.0.1:{port}"))
        .collect();
    ensure!(
        stable.label == release && targets == ports,
        "the route should send {release} traffic to {ports:?}: {stable:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

/// A few requests through the proxy are all answered by `version`.
async fn ensure_serves(daemon: &Daemon, version: &str) -> anyhow::Result<()> {
    for _ in 0..5 {
        let answer = get_once(daemon.http_address(), "/").await?;
        ensure!(
            answer.status.is_success() && answer.version() == Some(version),
            "expected an answer from {version}: {answer:?}"
        );
    }
    Ok(())
}

/// Waits until the proxy answers from `version` (a restarted daemon's
/// routes take traffic once their health checks pass).
async fn wait_serving(daemon: &Daemon, version: &str) -> anyhow::Result<()> {
    let address = daemon.http_address();
    let what = format!("an answer from {version}");
    wait_until(SOON, &what, || async move {
        matches!(get_once(address, "/").await,
            Ok(answer) if answer.status.is_success() && answer.version() == Some(version))
    })
    .await?;
    ensure_serves(daemon, version).await
}

/// What the load of the headline test shares: the epoch (operations
/// finished so far), answers filed by the epoch their request was sent in
/// and the version that answered, and the tallies.
#[derive(Default)]
struct LoadShared {
    epoch: AtomicU64,
    seen: Mutex<BTreeMap<(u64, String), u64>>,
    gets: Tally,
    uploads: Tally,
    stop: AtomicBool,
}

impl LoadShared {
    fn file(&self, epoch: u64, answer: &Reply) {
        if answer.status.is_success() {
            let version = answer.version().unwrap_or("(none)").to_string();
            *lock(&self.seen).entry((epoch, version)).or_default() += 1;
        }
    }
}

/// Keep-alive GETs of `/` on fixed connections plus one loop of uploads,
/// never retried.
struct EpochLoad {
    shared: Arc<LoadShared>,
    tasks: Vec<JoinHandle<()>>,
}

impl EpochLoad {
    fn start(address: SocketAddr, connections: usize) -> EpochLoad {
        let shared = Arc::new(LoadShared::default());
        let mut tasks: Vec<JoinHandle<()>> = (0..connections)
            .map(|_| tokio::spawn(get_loop(address, Arc::clone(&shared))))
            .collect();
        tasks.push(tokio::spawn(upload_loop(address, Arc::clone(&shared))));
        EpochLoad { shared, tasks }
    }

    fn epoch(&self) -> u64 {
        self.shared.epoch.load(Ordering::SeqCst)
    }

    fn next_epoch(&self) {
        self.shared.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether a request sent in `epoch` was answered by `version`.
    fn answered(&self, epoch: u64, version: &str) -> bool {
        lock(&self.shared.seen).contains_key(&(epoch, version.to_string()))
    }

    /// Waits until `gets` GETs and `uploads` uploads in all succeeded.
    async fn wait_for_answers(&self, gets: u64, uploads: u64) -> anyhow::Result<()> {
        let shared = &self.shared;
        let what = format!("{gets} GETs and {uploads} uploads answered");
        wait_until(SETTLE, &what, || async {
            shared.gets.ok.load(Ordering::Relaxed) >= gets
                && shared.uploads.ok.load(Ordering::Relaxed) >= uploads
        })
        .await
        .with_context(|| {
            format!(
                "failures meanwhile: {:#?} {:#?}",
                lock(&shared.gets.failures),
                lock(&shared.uploads.failures)
            )
        })
    }

    /// Stops after the requests in flight; the tallies and the GET
    /// connections opened.
    async fn stop(self) -> anyhow::Result<(Arc<LoadShared>, u64)> {
        self.shared.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            join(task, SETTLE, "a load client").await?;
        }
        let connections = self.shared.gets.connections.load(Ordering::Relaxed);
        Ok((self.shared, connections))
    }
}

/// One keep-alive connection, `GET /` back to back; a broken connection
/// (or one the proxy asks to close) is a failure, then reopened.
async fn get_loop(address: SocketAddr, shared: Arc<LoadShared>) {
    while !shared.stop.load(Ordering::Relaxed) {
        let mut connection = match Http1::connect(address).await {
            Ok(connection) => connection,
            Err(error) => {
                shared.gets.fail(format!("{error:#}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        shared.gets.connections.fetch_add(1, Ordering::Relaxed);
        while !shared.stop.load(Ordering::Relaxed) {
            let epoch = shared.epoch.load(Ordering::SeqCst);
            match connection.get("/").await {
                Ok(answer) => {
                    let closes = answer.closes();
                    shared.file(epoch, &answer);
                    shared.gets.record(answer);
                    if closes {
                        shared
                            .gets
                            .fail("the proxy asked to close the connection".to_string());
                        break;
                    }
                }
                Err(error) => {
                    shared.gets.fail(format!("{error:#}"));
                    break;
                }
            }
        }
    }
}

/// `POST /upload` of [`UPLOAD_BYTES`] on a fresh connection, back to back;
/// the app must have counted every byte.
async fn upload_loop(address: SocketAddr, shared: Arc<LoadShared>) {
    let host = address.to_string();
    let counted = format!("{{\"bytes\":{UPLOAD_BYTES}}}");
    while !shared.stop.load(Ordering::Relaxed) {
        let epoch = shared.epoch.load(Ordering::SeqCst);
        match post(address, &host, "/upload", vec![b'u'; UPLOAD_BYTES]).await {
            Ok(answer) if answer.status.is_success() && answer.text().trim() != counted => {
                shared
                    .uploads
                    .fail(format!("the upload was not counted whole: {answer:?}"));
            }
            Ok(answer) => {
                shared.file(epoch, &answer);
                shared.uploads.record(answer);
            }
            Err(error) => shared.uploads.fail(format!("{error:#}")),
        }
    }
}

// ---------------------------------------------------------------------------
// WebSocket
// ---------------------------------------------------------------------------

/// Closes from the client's side and waits for the app's reply.
async fn close_websocket(mut socket: WebSocket) -> anyhow::Result<()> {
    tokio::time::timeout(SOON, socket.close(None))
        .await
        .context("closing the WebSocket timed out")??;
    tokio::time::timeout(SOON, async {
        while let Some(message) = socket.next().await {
            if message.is_err() {
                break;
            }
        }
    })
    .await
    .context("the WebSocket's close was not answered")?;
    Ok(())
}

// ---------------------------------------------------------------------------
// The demo worker's queue
// ---------------------------------------------------------------------------

/// `demo-worker report`.
#[derive(Debug, Deserialize)]
struct QueueReport {
    total: i64,
    queued: i64,
    running: i64,
    done: i64,
    done_more_than_once: i64,
    by_worker: BTreeMap<String, i64>,
}

async fn queue_report(db: &str) -> anyhow::Result<QueueReport> {
    let stdout = demo_worker(&["report", "--db", db]).await?;
    serde_json::from_str(stdout.trim())
        .with_context(|| format!("demo-worker report printed {stdout:?}"))
}

/// Runs `demo-worker ARGS` (enqueue, report) and returns its stdout.
async fn demo_worker(args: &[&str]) -> anyhow::Result<String> {
    let mut command = tokio::process::Command::new(binary("demo-worker"));
    command
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(SOON, command.output())
        .await
        .with_context(|| format!("demo-worker {args:?} did not finish within {SOON:?}"))??;
    ensure!(
        output.status.success(),
        "demo-worker {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
