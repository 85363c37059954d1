//! The daemon's own life end to end: stopping on SIGTERM under load (HTTP/1.1
//! and HTTP/2), restarting on the same state directory after a clean stop or
//! a kill -9, and one route change at a time per service.
//!
//! What ARCHITECTURE.md ("Drain, precisely": the daemon itself stopping;
//! "State and files") promises, checked from outside the real binary:
//! - on SIGTERM requests in flight finish, every keep-alive client is told
//!   `Connection: close` on a response instead of being cut, HTTP/2 clients
//!   get GOAWAY, and the daemon exits 0;
//! - routes and pauses survive a restart, even after kill -9, and the first
//!   request after a restart waits for the target's first health check
//!   instead of failing;
//! - a second deploy of a service while one runs is refused at once.
//!
//! Every wait has a deadline; nothing asserts on speed.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use baton_testkit::{App, Daemon, wait_until};
use http::StatusCode;
use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use support::{
    Http1, SOON, daemon_routing_web_to, deploy, deploy_args, find_route, get_once, http2_connect,
    http2_get, join, route_list, spawn_baton, version_in_flight, wait_refused,
};

/// How long a stopping daemon may take to exit before the test gives up.
const EXIT_DEADLINE: Duration = Duration::from_secs(30);

/// Waits (up to [`EXIT_DEADLINE`]) for the stopping `daemon` to exit, and
/// fails unless it exits 0.
async fn ensure_exits_0(daemon: &mut Daemon) -> anyhow::Result<()> {
    let status = daemon.wait_exit(EXIT_DEADLINE).await?;
    ensure!(
        status.code() == Some(0),
        "the daemon should exit 0 after SIGTERM, got {status}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// SIGTERM
// ---------------------------------------------------------------------------

/// SIGTERM while 8 keep-alive clients send requests back to back, a 1.5 s
/// request is in flight and one more keep-alive connection sits idle: the
/// slow request finishes with 200, every busy client is told
/// `Connection: close` on a response after the signal and no request fails,
/// the idle connection's next request is still answered (with
/// `Connection: close`), new connections are refused, and the daemon exits 0.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_under_load_closes_keep_alive_connections_politely_and_exits_0()
-> anyhow::Result<()> {
    let (mut daemon, app) = daemon_routing_web_to("a", &["--drain-timeout", "20s"]).await?;
    // The slow request goes to a service of its own, so its in-flight count
    // says when it has reached the upstream.
    deploy(&daemon, "slow", &app, &["--path-prefix", "/slow"]).await?;
    let address = daemon.http_address();

    let signalled = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let signalled = Arc::clone(&signalled);
            let answered = Arc::clone(&answered);
            tokio::spawn(async move { until_told_to_close(address, &signalled, &answered).await })
        })
        .collect();
    wait_until(SOON, "the clients to get answers", || async {
        answered.load(Ordering::Relaxed) >= 8 * 5
    })
    .await?;

    // A keep-alive connection that is idle when the signal comes.
    let mut idle = Http1::connect(address).await?;
    let first = idle.get("/").await?;
    ensure!(
        first.status == StatusCode::OK && !first.closes(),
        "unexpected answer before the signal: {first:?}"
    );

    let mut slow_client = Http1::connect(address).await?;
    let slow = tokio::spawn(async move { slow_client.get("/slow?ms=1500").await });
    wait_until(SOON, "the slow request to reach the app", || async {
        version_in_flight(&daemon, "slow", "a").await >= 1
    })
    .await?;

    signalled.store(true, Ordering::SeqCst);
    daemon.signal(Signal::SIGTERM);

    // Accepting stops at once (the daemon still runs: the slow request holds it).
    wait_until(SOON, "new connections to be refused", || async {
        TcpStream::connect(address).await.is_err()
    })
    .await?;

    // The idle connection was kept: its next request is answered, and told
    // to close (this is where reloads that close idle connections lose requests).
    let late = idle
        .get("/")
        .await
        .context("a request on a connection idle at SIGTERM failed")?;
    ensure!(
        late.status == StatusCode::OK && late.closes(),
        "a request on a connection idle at SIGTERM should get 200 with Connection: close, got {} (close: {})",
        late.status,
        late.closes()
    );

    // Each client ends only when a response tells it to close; any failure
    // before that is an error.
    for (index, client) in clients.into_iter().enumerate() {
        join(client, EXIT_DEADLINE, "a keep-alive client")
            .await?
            .with_context(|| format!("keep-alive client {index}"))?;
    }
    let answer = join(slow, EXIT_DEADLINE, "the slow request")
        .await?
        .context("the request in flight at SIGTERM failed")?;
    ensure!(
        answer.status == StatusCode::OK && answer.version() == Some("a"),
        "the request in flight at SIGTERM should finish with 200 from a, got {} {:?}",
        answer.status,
        answer.body
    );
    ensure!(
        answer.closes(),
        "the request in flight at SIGTERM was answered after it, so with Connection: close"
    );

    ensure_exits_0(&mut daemon).await?;
    ensure!(
        TcpStream::connect(address).await.is_err(),
        "the stopped daemon's listener still accepts connections"
    );
    Ok(())
}

/// Sends `GET /` back to back on one connection until a response says
/// `Connection: close` (the first one answered after the signal should).
/// Any failure, or a close before the signal, is an error.
async fn until_told_to_close(
    address: SocketAddr,
    signalled: &AtomicBool,
    answered: &AtomicU64,
) -> anyhow::Result<()> {
    let mut connection = Http1::connect(address).await?;
    loop {
        // Read before sending: a request sent after this saw `true` was
        // certainly sent after the signal.
        let sent_after_signal = signalled.load(Ordering::SeqCst);
        let answer = connection.get("/").await.with_context(|| {
            format!(
                "a request failed on a connection never told to close \
                 (sent {} the signal)",
                if sent_after_signal { "after" } else { "before" }
            )
        })?;
        ensure!(
            answer.status.is_success(),
            "status {} ({:?})",
            answer.status,
            answer.body
        );
        answered.fetch_add(1, Ordering::Relaxed);
        if answer.closes() {
            ensure!(
                signalled.load(Ordering::SeqCst),
                "the proxy asked to close a connection before it was signalled"
            );
            return Ok(());
        }
    }
}

/// SIGTERM with an HTTP/2 client that has streams in flight: the streams
/// complete, the connection then ends without error (hyper's client saw
/// GOAWAY), a second, idle HTTP/2 connection receives a GOAWAY frame
/// (NO_ERROR) before its close, and the daemon exits 0.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_sends_goaway_to_http2_clients_and_lets_streams_finish() -> anyhow::Result<()> {
    let (mut daemon, _app) = daemon_routing_web_to("a", &["--drain-timeout", "20s"]).await?;
    let address = daemon.http_address();

    let (sender, connection) = http2_connect(address).await?;
    let uri = daemon.url("/slow?ms=1500");
    let streams: Vec<_> = (0..4)
        .map(|_| {
            let mut sender = sender.clone();
            let uri = uri.clone();
            tokio::spawn(async move { http2_get(&mut sender, &uri).await })
        })
        .collect();
    drop(sender);
    let mut idle = RawH2::open(address).await?;
    wait_until(SOON, "the 4 streams to reach the app", || async {
        version_in_flight(&daemon, "web", "a").await >= 4
    })
    .await?;

    daemon.signal(Signal::SIGTERM);

    let goaway = tokio::time::timeout(EXIT_DEADLINE, idle.until_closed())
        .await
        .context("the idle HTTP/2 connection was not closed")??;
    ensure!(
        goaway == Some(0),
        "the idle HTTP/2 connection should get GOAWAY with NO_ERROR before its close, got {goaway:?}"
    );
    for stream in streams {
        let answer = join(stream, EXIT_DEADLINE, "an HTTP/2 stream")
            .await?
            .context("an HTTP/2 stream in flight at SIGTERM failed")?;
        ensure!(
            answer.status == StatusCode::OK && answer.version() == Some("a"),
            "a stream in flight at SIGTERM should finish with 200 from a, got {} {:?}",
            answer.status,
            answer.body
        );
    }
    let ended = join(connection, EXIT_DEADLINE, "the HTTP/2 connection").await?;
    ensure!(
        ended.is_ok(),
        "the HTTP/2 connection should end gracefully after GOAWAY, got {ended:?}"
    );
    ensure_exits_0(&mut daemon).await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Restarts
// ---------------------------------------------------------------------------

/// kill -9, then a new daemon on the same state directory: the route is back
/// (`route list` shows the service and its version) and the very first
/// request, sent as soon as the control API answers, succeeds: the proxy
/// waits for the restored target's first health check.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_then_restart_restores_routes_and_serves_the_first_request() -> anyhow::Result<()> {
    let (mut daemon, app) = daemon_routing_web_to("a", &[]).await?;
    let _state = daemon.keep_state();
    let state_dir = daemon.state_dir().to_path_buf();
    daemon.kill9().await?;
    drop(daemon);

    let daemon = Daemon::builder().state_dir(&state_dir).start().await?;
    let answer = get_once(daemon.http_address(), "/").await?;
    ensure!(
        answer.status == StatusCode::OK && answer.version() == Some("a"),
        "the first request after the restart should be answered 200 by a, got {} {:?}",
        answer.status,
        answer.body
    );

    let routes = route_list(&daemon).await?;
    let route = find_route(&routes, "web").context("web was not restored")?;
    ensure!(
        route.versions.len() == 1
            && route.versions[0].label == "a"
            && route.versions[0].targets.len() == 1
            && route.versions[0].targets[0].address == app.target(),
        "web should be restored as version a on {}, got {:?}",
        app.target(),
        route.versions
    );
    let text = daemon.baton(&["route", "list"]).await?.success()?;
    ensure!(
        text.stdout.contains("web") && text.stdout.contains(&app.target()),
        "route list should show web and its target, printed {:?}",
        text.stdout
    );
    Ok(())
}

/// A restored route whose target is gone (its app was killed while the
/// daemon was down) is answered with 502 or 503, not left hanging.
#[tokio::test(flavor = "multi_thread")]
async fn restored_route_to_a_dead_target_answers_an_error_instead_of_hanging() -> anyhow::Result<()>
{
    let (mut daemon, app) = daemon_routing_web_to("a", &[]).await?;
    let _state = daemon.keep_state();
    let state_dir = daemon.state_dir().to_path_buf();
    daemon.kill9().await?;
    drop(daemon);
    let target = app.address();
    drop(app);
    wait_refused(target, SOON).await?;

    let daemon = Daemon::builder()
        .args(["--connect-timeout", "2s"])
        .state_dir(&state_dir)
        .start()
        .await?;
    let answer = get_once(daemon.http_address(), "/").await?;
    ensure!(
        answer.status == StatusCode::SERVICE_UNAVAILABLE
            || answer.status == StatusCode::BAD_GATEWAY,
        "a restored route to a dead target should answer 502 or 503, got {} {:?}",
        answer.status,
        answer.body
    );
    Ok(())
}

/// A clean stop (SIGTERM) and a restart on the same state directory keep the
/// route and its pause: the restored service still holds requests until
/// `route resume`, which lets the held request through to the app.
#[tokio::test(flavor = "multi_thread")]
async fn clean_restart_restores_routes_and_pause() -> anyhow::Result<()> {
    let (mut daemon, _app) = daemon_routing_web_to("a", &[]).await?;
    let _state = daemon.keep_state();
    let state_dir = daemon.state_dir().to_path_buf();
    daemon
        .baton(&["route", "pause", "web", "--max", "60s"])
        .await?
        .success()?;
    daemon.signal(Signal::SIGTERM);
    ensure_exits_0(&mut daemon).await?;
    drop(daemon);

    let daemon = Daemon::builder().state_dir(&state_dir).start().await?;
    let routes = daemon.client().routes().await?;
    let route = find_route(&routes, "web").context("web was not restored")?;
    ensure!(
        route.versions.len() == 1 && route.versions[0].label == "a",
        "web should be restored as version a, got {:?}",
        route.versions
    );
    let paused = route
        .paused
        .as_ref()
        .context("web was paused before the restart and should still be")?;
    ensure!(
        paused.max_ms == 60_000,
        "the pause should keep its 60 s limit, got {paused:?}"
    );

    let address = daemon.http_address();
    let held = tokio::spawn(async move { get_once(address, "/").await });
    wait_until(SOON, "the request to be held by the pause", || async {
        held_requests(&daemon).await >= 1
    })
    .await?;
    ensure!(!held.is_finished(), "the paused service answered at once");
    daemon.baton(&["route", "resume", "web"]).await?.success()?;
    let answer = join(held, SOON, "the held request")
        .await?
        .context("the held request failed")?;
    ensure!(
        answer.status == StatusCode::OK && answer.version() == Some("a"),
        "the held request should be answered 200 by a after resume, got {} {:?}",
        answer.status,
        answer.body
    );
    Ok(())
}

/// Requests the pause of `web` holds right now (0 if the daemon does not say).
async fn held_requests(daemon: &Daemon) -> u64 {
    let Ok(routes) = daemon.client().routes().await else {
        return 0;
    };
    find_route(&routes, "web")
        .ok()
        .and_then(|route| route.paused.as_ref())
        .map_or(0, |paused| paused.held)
}

// ---------------------------------------------------------------------------
// One change at a time
// ---------------------------------------------------------------------------

/// Two deploys of the same service, both to a target that never becomes
/// healthy (5 s deploy timeout): the one that comes second is refused at
/// once with "already running" while the other keeps waiting, then fails on
/// its own naming the target. Traffic stays on `a` throughout, and a deploy
/// after that succeeds (the service is free again).
#[tokio::test(flavor = "multi_thread")]
async fn second_deploy_while_one_runs_is_refused_at_once() -> anyhow::Result<()> {
    let (daemon, _a) = daemon_routing_web_to("a", &[]).await?;
    let sick = App::builder("sick").env("HEALTH", "fail").start().await?;
    let c = App::start("c").await?;

    let args = deploy_args("web", &sick, &["--deploy-timeout", "5s"]);
    let first = spawn_baton(&daemon, &args);
    // Give the first a head start; the checks below hold whichever of the
    // two takes the service first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = spawn_baton(&daemon, &args);

    let mut pending = [first, second];
    let (refused, index, _) = tokio::time::timeout(
        Duration::from_secs(60),
        futures_util::future::select_all(pending.iter_mut()),
    )
    .await
    .context("neither deploy finished")?;
    let refused = refused.context("route deploy panicked")??;
    let [first, second] = pending;
    let running = if index == 0 { second } else { first };
    ensure!(
        !refused.status.success() && refused.stderr.contains("already running"),
        "the deploy that came second should be refused with \"already running\", got {refused:?}"
    );
    ensure!(
        !running.is_finished(),
        "the running deploy should still be waiting for its target when the other is refused"
    );
    let during = get_once(daemon.http_address(), "/").await?;
    ensure!(
        during.status == StatusCode::OK && during.version() == Some("a"),
        "traffic should stay on a while the deploy waits, got {} from {:?}",
        during.status,
        during.version()
    );

    let failed = join(running, Duration::from_secs(60), "the running deploy").await??;
    ensure!(
        !failed.status.success() && failed.stderr.contains(&sick.target()),
        "the running deploy should fail on its own, naming {}, got {failed:?}",
        sick.target()
    );
    let after = get_once(daemon.http_address(), "/").await?;
    ensure!(
        after.status == StatusCode::OK && after.version() == Some("a"),
        "traffic should still be on a after the failed deploy, got {} from {:?}",
        after.status,
        after.version()
    );

    deploy(&daemon, "web", &c, &[])
        .await
        .context("a deploy after the failed one should be accepted")?;
    let moved = get_once(daemon.http_address(), "/").await?;
    ensure!(
        moved.version() == Some("c"),
        "traffic should move to c, got {:?}",
        moved.version()
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// A raw HTTP/2 connection, to see the GOAWAY frame itself
// ---------------------------------------------------------------------------

const FRAME_SETTINGS: u8 = 0x4;
const FRAME_PING: u8 = 0x6;
const FRAME_GOAWAY: u8 = 0x7;
const FLAG_ACK: u8 = 0x1;

/// An h2c (prior knowledge) connection that opens no stream and answers
/// SETTINGS and PING, as any HTTP/2 client must.
struct RawH2 {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
}

struct Frame {
    kind: u8,
    flags: u8,
    payload: Vec<u8>,
}

impl RawH2 {
    /// Connects and waits for the server's SETTINGS (the server speaks HTTP/2 on it).
    async fn open(address: SocketAddr) -> anyhow::Result<RawH2> {
        let stream = tokio::time::timeout(SOON, TcpStream::connect(address))
            .await
            .context("connect timed out")??;
        let (reader, mut writer) = stream.into_split();
        writer
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await?;
        writer.write_all(&frame(FRAME_SETTINGS, 0, &[])).await?;
        let mut connection = RawH2 { reader, writer };
        tokio::time::timeout(SOON, async {
            loop {
                let Some(frame) = connection.next_frame().await? else {
                    bail!("the proxy closed the HTTP/2 connection at once");
                };
                if connection.answer(&frame).await? {
                    return Ok(());
                }
            }
        })
        .await
        .context("no SETTINGS from the proxy")??;
        Ok(connection)
    }

    /// Reads until the server closes; returns the error code of the last
    /// GOAWAY seen, if any. A reset is an error.
    async fn until_closed(&mut self) -> anyhow::Result<Option<u32>> {
        let mut goaway = None;
        while let Some(frame) = self.next_frame().await? {
            if frame.kind == FRAME_GOAWAY {
                let code = frame.payload.get(4..8).context("GOAWAY frame too short")?;
                goaway = Some(u32::from_be_bytes([code[0], code[1], code[2], code[3]]));
            }
            self.answer(&frame).await?;
        }
        Ok(goaway)
    }

    /// Acknowledges SETTINGS and PING; true if `frame` was the server's SETTINGS.
    async fn answer(&mut self, frame: &Frame) -> anyhow::Result<bool> {
        let acked = frame.flags & FLAG_ACK != 0;
        match frame.kind {
            FRAME_SETTINGS if !acked => {
                self.writer
                    .write_all(&self::frame(FRAME_SETTINGS, FLAG_ACK, &[]))
                    .await?;
                Ok(true)
            }
            FRAME_PING if !acked => {
                self.writer
                    .write_all(&self::frame(FRAME_PING, FLAG_ACK, &frame.payload))
                    .await?;
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    /// The next frame, or `None` at a clean end of stream.
    async fn next_frame(&mut self) -> anyhow::Result<Option<Frame>> {
        let mut head = [0u8; 9];
        match self.reader.read_exact(&mut head).await {
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(error) => return Err(error).context("reading an HTTP/2 frame"),
        }
        let length = u32::from_be_bytes([0, head[0], head[1], head[2]]);
        let mut payload = vec![0u8; usize::try_from(length)?];
        self.reader
            .read_exact(&mut payload)
            .await
            .context("reading an HTTP/2 frame's payload")?;
        Ok(Some(Frame {
            kind: head[3],
            flags: head[4],
            payload,
        }))
    }
}

/// A frame on stream 0.
fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    let length = u32::try_from(payload.len()).unwrap_or(0).to_be_bytes();
    let mut bytes = vec![length[1], length[2], length[3], kind, flags, 0, 0, 0, 0];
    bytes.extend_from_slice(payload);
    bytes
}
