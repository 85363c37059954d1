//! `baton upgrade` end to end: the daemon hands its sockets to a new copy
//! of itself ten times under load (keep-alive and new connections, HTTP/1.1
//! and HTTP/2) with no failed request; a WebSocket opened before keeps
//! echoing; the app processes keep their pids; a new binary that exits at
//! once or never gets ready is stopped and the old daemon serves on; an
//! upgrade while a deploy runs is refused up front.

mod support;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::ensure;
use baton_testkit::{AppSource, Daemon};
use tokio::task::JoinHandle;

use support::{
    Load, SOON, Tally, deploy_app as deploy, deploy_app_args as deploy_args, echo, ensure_mentions,
    explain, get_once, http2_connect, http2_get, join, open_websocket, serving, spawn_baton,
};

/// Requests on a fresh connection each, back to back.
struct FreshConnections {
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl FreshConnections {
    fn start(address: SocketAddr) -> FreshConnections {
        let tally = Arc::new(Tally::default());
        let stop = Arc::new(AtomicBool::new(false));
        let task = {
            let (tally, stop) = (Arc::clone(&tally), Arc::clone(&stop));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match get_once(address, "/").await {
                        Ok(reply) => tally.record(reply),
                        Err(error) => tally.fail(format!("{error:#}")),
                    }
                }
            })
        };
        FreshConnections { tally, stop, task }
    }

    async fn stop(self) -> anyhow::Result<Arc<Tally>> {
        self.stop.store(true, Ordering::Relaxed);
        join(
            self.task,
            Duration::from_secs(30),
            "the new-connection client",
        )
        .await?;
        Ok(self.tally)
    }
}

/// HTTP/2 (h2c) clients, requests back to back on one connection each. A
/// connection the proxy has said GOAWAY on takes no new stream; the client
/// then opens another, as HTTP/2 clients do, and a request the server did
/// not process (GOAWAY crossing it, or a refused stream) is sent again on
/// it. A request that was processed and did not come back answered is a
/// failure.
struct Http2Load {
    tally: Arc<Tally>,
    reconnects: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Http2Load {
    fn start(address: SocketAddr, connections: usize) -> Http2Load {
        let tally = Arc::new(Tally::default());
        let reconnects = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..connections)
            .map(|_| {
                let (tally, reconnects, stop) = (
                    Arc::clone(&tally),
                    Arc::clone(&reconnects),
                    Arc::clone(&stop),
                );
                tokio::spawn(async move {
                    let uri = format!("http://{address}/");
                    while !stop.load(Ordering::Relaxed) {
                        let (mut sender, _connection) = match http2_connect(address).await {
                            Ok(connected) => connected,
                            Err(error) => {
                                tally.fail(format!("HTTP/2 connect: {error:#}"));
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                continue;
                            }
                        };
                        while !stop.load(Ordering::Relaxed) {
                            // Closed by GOAWAY: no stream was sent on it.
                            if sender.ready().await.is_err() {
                                reconnects.fetch_add(1, Ordering::Relaxed);
                                break;
                            }
                            match http2_get(&mut sender, &uri).await {
                                Ok(reply) => tally.record(reply),
                                // Sent as the GOAWAY crossed it: not
                                // processed, so retried on a new connection,
                                // as HTTP/2 clients do (RFC 9113, 8.7).
                                Err(error) if unprocessed(&error) => {
                                    reconnects.fetch_add(1, Ordering::Relaxed);
                                    break;
                                }
                                Err(error) => {
                                    tally.fail(format!("HTTP/2 request: {error:#}"));
                                    break;
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        Http2Load {
            tally,
            reconnects,
            stop,
            tasks,
        }
    }

    async fn stop(self) -> anyhow::Result<(Arc<Tally>, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            join(task, Duration::from_secs(30), "an HTTP/2 client").await?;
        }
        Ok((self.tally, self.reconnects.load(Ordering::Relaxed)))
    }
}

/// Whether an HTTP/2 request failed without the server processing it: the
/// connection was going away (GOAWAY) or the stream was refused, or hyper
/// canceled it before it was sent.
fn unprocessed(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        if let Some(error) = cause.downcast_ref::<hyper::Error>() {
            return error.is_canceled();
        }
        cause.downcast_ref::<h2::Error>().is_some_and(|error| {
            error.is_go_away() || error.reason() == Some(h2::Reason::REFUSED_STREAM)
        })
    })
}

/// The pids of the app's processes, by role and instance.
async fn app_pids(daemon: &Daemon, app: &str) -> anyhow::Result<BTreeSet<(String, u32, u32)>> {
    Ok(daemon
        .client()
        .processes(Some(app))
        .await?
        .into_iter()
        .map(|process| (process.role, process.index, process.pid))
        .collect())
}

/// An executable shell script standing in for a broken new binary.
fn broken_binary(dir: &Path, body: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join("baton-broken");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n"))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_upgrades_under_load_fail_no_request() -> anyhow::Result<()> {
    let app = AppSource::builder("upgraded", "v1")
        .web_line("processes = 2")
        .build()?;
    let daemon = Daemon::builder()
        .args(["--idle-grace", "2s"])
        .start()
        .await?;
    let outcome = async {
        deploy(&daemon, &app).await?.success()?;
        let apps_before = app_pids(&daemon, "upgraded").await?;
        let address = daemon.http_address();
        let keep_alive = Load::start_reconnecting(address, 4, "/");
        let fresh = FreshConnections::start(address);
        let http2 = Http2Load::start(address, 2);
        keep_alive.wait_for_answers(100).await?;
        let mut socket = open_websocket(address).await?;
        echo(&mut socket, "before the upgrades").await?;

        let mut daemons = vec![daemon.serving_pid().await?];
        for round in 1..=10 {
            let answered = keep_alive.tally.ok.load(Ordering::Relaxed);
            let output = daemon.baton(&["upgrade"]).await?.success()?;
            ensure_mentions(&output.stdout, &["upgraded", "took over from"])?;
            let pid = daemon.serving_pid().await?;
            ensure!(
                !daemons.contains(&pid),
                "upgrade {round}: daemon {pid} served before"
            );
            daemons.push(pid);
            // The load goes on through the new daemon before the next one.
            keep_alive.wait_for_answers(answered + 50).await?;
        }
        echo(&mut socket, "after ten upgrades").await?;

        let keep_alive = keep_alive.stop().await?;
        let fresh = fresh.stop().await?;
        let (http2, http2_reconnects) = http2.stop().await?;
        for (what, tally) in [
            ("keep-alive HTTP/1.1", &keep_alive),
            ("new-connection HTTP/1.1", &fresh),
            ("HTTP/2", &http2),
        ] {
            tally
                .assert_no_failures()
                .map_err(|error| error.context(what))?;
            ensure!(
                tally.ok.load(Ordering::Relaxed) > 100,
                "{what}: only {} answers",
                tally.ok.load(Ordering::Relaxed)
            );
        }
        // Each upgrade made the keep-alive clients move over.
        ensure!(
            keep_alive.connections.load(Ordering::Relaxed) > 10,
            "the keep-alive clients never reconnected"
        );
        ensure!(http2_reconnects > 0, "no HTTP/2 connection was told GOAWAY");
        ensure!(
            app_pids(&daemon, "upgraded").await? == apps_before,
            "the app's processes changed across the upgrades"
        );
        ensure!(serving(&daemon).await? == "v1");
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_new_binary_is_stopped_and_the_old_daemon_serves_on() -> anyhow::Result<()> {
    let app = AppSource::builder("steady", "v1").build()?;
    let daemon = Daemon::start().await?;
    let scripts = tempfile::tempdir()?;
    let outcome = async {
        deploy(&daemon, &app).await?.success()?;
        let before = daemon.serving_pid().await?;
        let load = Load::start(daemon.http_address(), 2, "/");
        load.wait_for_answers(20).await?;

        let exits = broken_binary(
            scripts.path(),
            "echo 'baton: cannot load /etc/baton/missing.toml' >&2; exit 3",
        )?;
        let exits = exits.display().to_string();
        let output = daemon.baton(&["upgrade", "--binary", &exits]).await?;
        ensure!(
            !output.status.success(),
            "upgrading to a broken binary succeeded"
        );
        ensure_mentions(
            &output.stderr,
            &[
                "exited",
                "cannot load /etc/baton/missing.toml",
                "goes on serving",
            ],
        )?;

        let hangs = broken_binary(scripts.path(), "echo 'starting slowly'; exec sleep 600")?;
        let hangs = hangs.display().to_string();
        let output = daemon
            .baton(&["upgrade", "--binary", &hangs, "--timeout", "1s"])
            .await?;
        ensure!(
            !output.status.success(),
            "upgrading to a hung binary succeeded"
        );
        ensure_mentions(&output.stderr, &["not ready within", "starting slowly"])?;

        ensure!(daemon.serving_pid().await? == before, "the daemon changed");
        let answered = load.tally.ok.load(Ordering::Relaxed);
        load.wait_for_answers(answered + 20).await?;
        load.stop().await?.assert_no_failures()?;
        // The control socket still takes changes.
        app.set_version("v2")?;
        deploy(&daemon, &app).await?.success()?;
        ensure!(serving(&daemon).await? == "v2");
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_while_a_rollout_runs_is_refused_up_front() -> anyhow::Result<()> {
    let app = AppSource::builder("rolling", "v1")
        .extra(
            "[rollout]\nstrategy = \"canary\"\nsteps = [\"10%\", \"100%\"]\n\
             step_duration = \"10m\"\nstep_timeout = \"20m\"\nmin_requests = 20\n",
        )
        .build()?;
    let daemon = Daemon::start().await?;
    let outcome = async {
        deploy(&daemon, &app).await?.success()?;
        app.set_version("v2")?;
        let rollout = spawn_baton(&daemon, &deploy_args(&app));
        let before = daemon.serving_pid().await?;
        baton_testkit::wait_until(SOON, "the rollout to run", || async {
            daemon
                .client()
                .app("rolling")
                .await
                .is_ok_and(|info| info.running_deploy.is_some())
        })
        .await?;
        let output = daemon.baton(&["upgrade"]).await?;
        ensure!(!output.status.success(), "an upgrade mid-rollout succeeded");
        ensure_mentions(&output.stderr, &["is running", "upgrade is refused"])?;
        ensure!(daemon.serving_pid().await? == before, "the daemon changed");
        // The rollout was left alone and still takes commands.
        daemon
            .baton(&["abort", "--app", "rolling"])
            .await?
            .success()?;
        let aborted = join(rollout, Duration::from_secs(60), "the rollout").await??;
        ensure!(!aborted.status.success(), "the aborted rollout succeeded");
        // With nothing running, the upgrade goes through.
        daemon.baton(&["upgrade"]).await?.success()?;
        ensure!(daemon.serving_pid().await? != before, "no new daemon");
        ensure!(serving(&daemon).await? == "v1");
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}
