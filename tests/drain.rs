//! Drain end to end: the real `baton` daemon in front of two demo apps
//! (versions `a` and `b`) while `baton route deploy` moves a service between
//! them.
//!
//! What ARCHITECTURE.md ("Drain, precisely") promises for a version leaving
//! the route, checked from the client's side:
//! - no request fails across many switches, and client connections (HTTP/1.1
//!   keep-alive and HTTP/2) are never closed by a switch;
//! - a request in flight to the old version finishes there, and the deploy
//!   returns only once it has;
//! - a WebSocket to the old version stays open until the drain timeout, then
//!   gets a Close frame with code 1001;
//! - a target that never becomes healthy gets no traffic at all.
//!
//! Every wait has a deadline; nothing asserts on speed.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use baton_api::{DeployOutcome, VersionRole};
use baton_testkit::{App, CommandOutput, Daemon, wait_until};
use futures_util::StreamExt;
use http::StatusCode;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::client::Response;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use support::{
    Http1, Load, REQUEST_DEADLINE, SOON, Tally, deploy, deploy_args, echo, find_route,
    find_version, get_once, header_text, http2_connect, http2_get, join, spawn_baton, strs,
    version_in_flight, wait_for,
};

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// 32 keep-alive connections send requests back to back while the service
/// switches between `a` and `b` twenty times: every request succeeds, both
/// versions answer, and no client connection is ever reopened.
#[tokio::test(flavor = "multi_thread")]
async fn keep_alive_clients_see_no_failure_and_no_reconnect_across_switches() -> anyhow::Result<()>
{
    let (daemon, a) = daemon_routing_web_to_a().await?;
    let b = App::start("b").await?;

    let load = Load::start(daemon.http_address(), 32, "/");
    load.wait_for_answers(32 * 5).await?;
    switch_back_and_forth(&daemon, &a, &b, 20).await?;
    // Some more traffic on the final version before stopping.
    let answered = load.tally.ok.load(Ordering::Relaxed);
    load.wait_for_answers(answered + 32 * 5).await?;
    let tally = load.stop().await?;

    tally.assert_no_failures()?;
    ensure_both_answered(&tally)?;
    let opened = tally.connections.load(Ordering::Relaxed);
    ensure!(
        opened == 32,
        "the 32 clients had to open {opened} connections: the proxy closed some under a switch"
    );
    Ok(())
}

/// A 5 s request in flight to `a` when the service switches to `b` finishes
/// with 200 from `a`; meanwhile new requests go to `b`, and `route deploy`
/// returns only after the slow request is done.
#[tokio::test(flavor = "multi_thread")]
async fn request_in_flight_finishes_on_the_old_version_and_deploy_waits_for_it()
-> anyhow::Result<()> {
    let (daemon, _a) = daemon_routing_web_to_a().await?;
    let b = App::start("b").await?;

    let mut slow_client = Http1::connect(daemon.http_address()).await?;
    let slow_sent = Instant::now();
    let slow = tokio::spawn(async move { slow_client.get("/slow?ms=5000").await });
    wait_until(SOON, "the slow request to be in flight on a", || async {
        version_in_flight(&daemon, "web", "a").await >= 1
    })
    .await?;

    let deploying = spawn_baton(
        &daemon,
        &deploy_args("web", &b, &["--drain-timeout", "30s", "--json"]),
    );
    let address = daemon.http_address();
    wait_until_answered_by(address, "b").await?;

    // The switch happened and the slow request still runs: `a` is draining
    // and the deploy is waiting for it.
    let routes = daemon.client().routes().await?;
    let Some(draining) = find_version(&routes, "web", "a") else {
        let slow = join(slow, SOON, "the slow request").await;
        bail!(
            "a should still be listed (draining) while its slow request runs; \
             the slow request: {slow:?}; routes: {routes:#?}; daemon log:\n{}",
            daemon.logs()
        );
    };
    ensure!(
        draining.role == VersionRole::Draining && draining.in_flight >= 1,
        "a should be draining with its slow request in flight, got {draining:?}"
    );
    ensure!(
        !deploying.is_finished(),
        "route deploy returned while a request to the old version was still running"
    );
    let fresh = get_once(address, "/").await?;
    ensure!(
        fresh.status == StatusCode::OK && fresh.version() == Some("b"),
        "a request during the drain should be answered 200 by b, got {} from {:?}",
        fresh.status,
        fresh.version()
    );

    let output = join(deploying, Duration::from_secs(60), "route deploy")
        .await??
        .success()?;
    let deploy_returned = Instant::now();
    let outcome = deploy_outcome(&output)?;
    ensure!(
        outcome.previous_version.as_deref() == Some("a") && outcome.version == "b",
        "unexpected deploy outcome {outcome:?}"
    );
    ensure!(
        outcome.requests_cut_at_drain_timeout == 0,
        "the drain cut requests: {outcome:?}"
    );
    // Causal, not a speed check: the app sleeps 5 s before answering, and the
    // drain cannot end before the answer.
    ensure!(
        deploy_returned.duration_since(slow_sent) >= Duration::from_secs(5),
        "route deploy returned before the old version could have answered the slow request"
    );

    let answer = join(slow, SOON, "the slow request").await??;
    ensure!(
        answer.status == StatusCode::OK && answer.version() == Some("a"),
        "the slow request should finish with 200 from a, got {} from {:?}",
        answer.status,
        answer.version()
    );
    ensure!(
        answer.body.as_ref() == b"slept 5000 ms\n",
        "unexpected slow body {:?}",
        answer.body
    );
    Ok(())
}

/// A WebSocket to `a` keeps echoing after the switch to `b`, and at the drain
/// timeout (2 s) it is closed with a Close frame, code 1001; a WebSocket
/// opened after the switch reaches `b`.
#[tokio::test(flavor = "multi_thread")]
async fn websocket_stays_open_during_drain_and_gets_1001_at_the_deadline() -> anyhow::Result<()> {
    let (daemon, _a) = daemon_routing_web_to_a().await?;
    let b = App::start("b").await?;
    let url = format!("ws://{}/ws", daemon.http_address());

    let (mut old, response) = open_websocket(&url).await?;
    ensure!(
        header_text(response.headers(), "x-version") == "a",
        "the first WebSocket should reach a, got {:?}",
        response.headers()
    );
    echo(&mut old, "before the switch").await?;

    let deploying = spawn_baton(
        &daemon,
        &deploy_args("web", &b, &["--drain-timeout", "2s", "--json"]),
    );
    let address = daemon.http_address();
    wait_until_answered_by(address, "b").await?;

    // Switched, and the drain timeout has not passed: the old socket works.
    echo(&mut old, "during the drain").await.context(
        "the WebSocket to the draining version stopped echoing before the drain timeout",
    )?;

    let (mut new, response) = open_websocket(&url).await?;
    ensure!(
        header_text(response.headers(), "x-version") == "b",
        "a WebSocket opened after the switch should reach b, got {:?}",
        response.headers()
    );

    // At the drain timeout: a Close frame with 1001, not a reset.
    let close = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match old.next().await {
                Some(Ok(Message::Close(frame))) => return Ok(frame),
                Some(Ok(_)) => continue,
                Some(Err(error)) => bail!("the old WebSocket failed instead of closing: {error}"),
                None => bail!("the old WebSocket ended without a Close frame"),
            }
        }
    })
    .await
    .context("the old WebSocket was not closed within 30 s of the switch")??;
    let frame = close.context("the Close frame carried no code")?;
    ensure!(
        frame.code == CloseCode::Away,
        "the Close frame should say 1001 Going Away, got {frame:?}"
    );

    let output = join(deploying, Duration::from_secs(60), "route deploy")
        .await??
        .success()?;
    let outcome = deploy_outcome(&output)?;
    ensure!(
        outcome.upgraded_connections_closed >= 1,
        "the deploy should report the WebSocket it closed: {outcome:?}"
    );

    echo(&mut new, "after the drain").await?;
    let _ = new.close(None).await;
    Ok(())
}

/// One HTTP/2 (h2c, prior knowledge) connection with 8 concurrent streams
/// running back to back survives 10 switches: no stream fails, both
/// versions answer, and the connection is still open at the end.
#[tokio::test(flavor = "multi_thread")]
async fn http2_connection_survives_switches_with_concurrent_streams() -> anyhow::Result<()> {
    let (daemon, a) = daemon_routing_web_to_a().await?;
    let b = App::start("b").await?;

    let (mut sender, connection) = http2_connect(daemon.http_address()).await?;

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let uri = daemon.url("/");
    let streams: Vec<_> = (0..8)
        .map(|_| {
            let mut sender = sender.clone();
            let tally = Arc::clone(&tally);
            let stop = Arc::clone(&stop);
            let uri = uri.clone();
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let exchange = http2_get(&mut sender, &uri);
                    match tokio::time::timeout(REQUEST_DEADLINE, exchange).await {
                        Ok(Ok(answer)) => tally.record(answer),
                        Ok(Err(error)) => tally.fail(format!("stream failed: {error:#}")),
                        Err(_) => tally.fail("stream got no answer in time".to_string()),
                    }
                }
            })
        })
        .collect();

    wait_for(&tally, 8 * 5).await?;
    switch_back_and_forth(&daemon, &a, &b, 10).await?;
    let answered = tally.ok.load(Ordering::Relaxed);
    wait_for(&tally, answered + 8 * 5).await?;
    stop.store(true, Ordering::Relaxed);
    for stream in streams {
        join(stream, SOON, "an HTTP/2 stream worker").await?;
    }

    tally.assert_no_failures()?;
    ensure_both_answered(&tally)?;
    // Still the same connection: it takes one more stream. (It ends by
    // itself once every sender is gone, so this one is kept until here.)
    ensure!(
        !connection.is_finished(),
        "the HTTP/2 connection ended during the switches: {:?}",
        connection.await
    );
    let last = tokio::time::timeout(REQUEST_DEADLINE, http2_get(&mut sender, &uri))
        .await
        .context("the last stream got no answer")?
        .context("the last stream on the HTTP/2 connection failed")?;
    ensure!(
        last.status == StatusCode::OK,
        "unexpected last answer {last:?}"
    );
    drop(sender);
    let ended = join(connection, SOON, "the HTTP/2 connection").await?;
    ensure!(ended.is_ok(), "the HTTP/2 connection ended with {ended:?}");
    Ok(())
}

/// A new target that never passes its health check (`HEALTH=fail`): the
/// deploy fails within its 1 s deploy timeout, naming the target, and
/// traffic never leaves `a`.
#[tokio::test(flavor = "multi_thread")]
async fn unhealthy_target_never_gets_traffic_and_deploy_fails_naming_it() -> anyhow::Result<()> {
    let (daemon, _a) = daemon_routing_web_to_a().await?;
    let sick = App::builder("sick").env("HEALTH", "fail").start().await?;

    let load = Load::start(daemon.http_address(), 4, "/");
    load.wait_for_answers(4 * 5).await?;
    let args = deploy_args("web", &sick, &["--deploy-timeout", "1s"]);
    let output = tokio::time::timeout(Duration::from_secs(30), daemon.baton(&strs(&args)))
        .await
        .context("route deploy of a never-healthy target did not give up")??;
    ensure!(
        !output.status.success(),
        "route deploy of a never-healthy target should fail, got {output:?}"
    );
    ensure!(
        output.stderr.contains(&sick.target()),
        "the error should name the unhealthy target {}, got {:?}",
        sick.target(),
        output.stderr
    );
    let answered = load.tally.ok.load(Ordering::Relaxed);
    load.wait_for_answers(answered + 4 * 5).await?;
    let tally = load.stop().await?;

    tally.assert_no_failures()?;
    let versions = tally.versions();
    ensure!(
        versions.keys().map(String::as_str).eq(["a"]),
        "only a should ever have answered, got {versions:?}"
    );
    let routes = daemon.client().routes().await?;
    let route = find_route(&routes, "web").context("web should still be routed")?;
    ensure!(
        route.versions.len() == 1 && route.versions[0].label == "a",
        "web should still serve a only, got {:?}",
        route.versions
    );
    let sick_requests = get_once(sick.address(), "/requests").await?;
    let counted: serde_json::Value = serde_json::from_slice(&sick_requests.body)?;
    ensure!(
        counted["count"] == 0,
        "the unhealthy target should have received no request, it says {:?}",
        sick_requests.body
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Switches
// ---------------------------------------------------------------------------

/// A daemon routing `web` to app `a` with a 2 s drain timeout, and the app.
async fn daemon_routing_web_to_a() -> anyhow::Result<(Daemon, App)> {
    let daemon = Daemon::start().await?;
    let a = App::start("a").await?;
    deploy(&daemon, "web", &a, &["--drain-timeout", "2s"]).await?;
    Ok((daemon, a))
}

/// Deploys `web` `switches` times, to `b`, `a`, `b`… (2 s drain timeout),
/// each deploy waiting for its drain.
async fn switch_back_and_forth(
    daemon: &Daemon,
    a: &App,
    b: &App,
    switches: usize,
) -> anyhow::Result<()> {
    for switch in 0..switches {
        let next = if switch % 2 == 0 { b } else { a };
        deploy(daemon, "web", next, &["--drain-timeout", "2s"])
            .await
            .with_context(|| format!("switch {} to {}", switch + 1, next.version()))?;
    }
    Ok(())
}

/// Fails unless both `a` and `b` answered some of the requests `tally` counted.
fn ensure_both_answered(tally: &Tally) -> anyhow::Result<()> {
    let versions = tally.versions();
    ensure!(
        versions.get("a").copied().unwrap_or(0) > 0 && versions.get("b").copied().unwrap_or(0) > 0,
        "both versions should have answered, got {versions:?}"
    );
    Ok(())
}

/// Waits until a new request to `address` is answered by version `label`.
async fn wait_until_answered_by(address: SocketAddr, label: &str) -> anyhow::Result<()> {
    let what = format!("new requests to be answered by {label}");
    wait_until(SOON, &what, || async move {
        matches!(get_once(address, "/").await, Ok(answer) if answer.version() == Some(label))
    })
    .await
}

/// What a finished `route deploy --json` printed, parsed.
fn deploy_outcome(output: &CommandOutput) -> anyhow::Result<DeployOutcome> {
    serde_json::from_str(&output.stdout)
        .with_context(|| format!("route deploy --json printed {:?}", output.stdout))
}

// ---------------------------------------------------------------------------
// WebSocket
// ---------------------------------------------------------------------------

type WebSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket to `url`, handshake within [`SOON`].
async fn open_websocket(url: &str) -> anyhow::Result<(WebSocket, Response)> {
    Ok(
        tokio::time::timeout(SOON, tokio_tungstenite::connect_async(url))
            .await
            .context("WebSocket handshake timed out")??,
    )
}
