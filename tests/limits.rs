//! End-to-end tests of the front door's limits and failure answers, against
//! the real `baton daemon`: malformed and hostile client HTTP (written byte
//! for byte on raw TCP connections), body and header size limits, slow
//! clients, upstreams that refuse, crash, stall or turn unhealthy, retries
//! on another target, and the errors given for bad command-line input.
//!
//! A malformed request must be answered by the proxy itself and must never
//! reach an app: the demo app's `/requests` counter (or a recording upstream
//! in this file) shows what got through.
//!
//! Build the binaries first (`cargo build --workspace`): the demo app is not
//! built by `cargo test -p baton`.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use baton_api::{ApiError, DeployRoute};
use baton_testkit::{App, Daemon, binary, wait_until};
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use support::{
    Reply, STEP, TempDir, daemon_routing_web_to, deploy, explain, get, post, route_list, step,
    tcp_connect, wait_refused,
};

/// Deploy options that check health once at deploy and then only every
/// minute: no health-check connections come and go during the test.
const QUIET_HEALTH: &[&str] = &["--healthy-after", "1", "--health-interval", "60s"];
/// Longest the proxy may take to answer and close a raw connection.
const CLOSE_DEADLINE: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------
// Malformed requests
// ---------------------------------------------------------------------------

#[tokio::test]
async fn conflicting_content_lengths_get_400_and_close_and_reach_no_app() -> anyhow::Result<()> {
    assert_malformed_gets_400_and_close_and_reaches_no_app(
        b"POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    )
    .await
}

#[tokio::test]
async fn bad_chunked_encoding_gets_400_and_close_and_reaches_no_app() -> anyhow::Result<()> {
    assert_malformed_gets_400_and_close_and_reaches_no_app(
        b"POST /upload HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    )
    .await
}

/// Sends the malformed `request` on a raw connection to a daemon with one
/// app: it gets 400 and the connection closed, and the app never sees it.
async fn assert_malformed_gets_400_and_close_and_reaches_no_app(
    request: &[u8],
) -> anyhow::Result<()> {
    let (daemon, app) = daemon_routing_web_to("v1", &[]).await?;
    let outcome = async {
        let before = app_requests(&app).await?;
        let reply = raw(daemon.http_address(), request).await?;
        assert_eq!(reply.status(), Some(400), "{reply:?}");
        assert!(
            reply.closed,
            "the connection stayed open after a 400: {reply:?}"
        );
        assert_eq!(
            app_requests(&app).await?,
            before,
            "the malformed request reached the app"
        );
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

/// A request with both Content-Length and Transfer-Encoding (either order)
/// is a smuggling attempt: 400, connection closed, nothing reaches the app.
#[tokio::test]
async fn content_length_with_transfer_encoding_gets_400_and_nothing_is_forwarded()
-> anyhow::Result<()> {
    let (daemon, app) = daemon_routing_web_to("v1", &[]).await?;
    let outcome = async {
        let smuggled = "GET /status/299 HTTP/1.1\r\nHost: app.test\r\n\r\n";
        let heads = [
            // CL.TE: a front end trusting Content-Length would pass the
            // smuggled request on inside the body.
            format!(
                "POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
                5 + smuggled.len()
            ),
            // TE.CL, the other order.
            "POST /upload HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
                .to_string(),
        ];
        for head in heads {
            let before = app_requests(&app).await?;
            let request = format!("{head}0\r\n\r\n{smuggled}");
            let reply = raw(daemon.http_address(), request.as_bytes()).await?;
            assert_eq!(reply.status(), Some(400), "{reply:?}");
            assert!(reply.closed, "the connection stayed open after a 400: {reply:?}");
            assert_eq!(count(&reply.bytes, b"HTTP/1.1 "), 1, "more than one answer: {reply:?}");
            assert!(
                reply.text().contains("Content-Length together with Transfer-Encoding"),
                "{reply:?}"
            );
            assert_eq!(
                app_requests(&app).await?,
                before,
                "the conflicting request reached the app"
            );
        }
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test]
async fn oversized_heads_get_431_and_invalid_header_bytes_get_400() -> anyhow::Result<()> {
    let (daemon, app) = daemon_routing_web_to("v1", &[]).await?;
    let outcome = async {
        let address = daemon.http_address();
        let before = app_requests(&app).await?;

        let big = format!(
            "GET / HTTP/1.1\r\nHost: app.test\r\nX-Big: {}\r\n\r\n",
            "a".repeat(70 * 1024)
        );
        let reply = raw(address, big.as_bytes()).await?;
        assert_eq!(reply.status(), Some(431), "a head over 64 KiB: {reply:?}");
        assert!(reply.closed, "{reply:?}");

        let mut many = String::from("GET / HTTP/1.1\r\nHost: app.test\r\n");
        for index in 0..150 {
            many.push_str(&format!("X-Header-{index}: {index}\r\n"));
        }
        many.push_str("\r\n");
        let reply = raw(address, many.as_bytes()).await?;
        assert_eq!(reply.status(), Some(431), "150 headers: {reply:?}");
        assert!(reply.closed, "{reply:?}");

        let invalid: [&[u8]; 3] = [
            b"GET / HTTP/1.1\r\nHost: app.test\r\nBad Name: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: app.test\r\nX-Bad: a\x01b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: app.test\r\nX-Bad: a\x00b\r\n\r\n",
        ];
        for request in invalid {
            let reply = raw(address, request).await?;
            assert_eq!(
                reply.status(),
                Some(400),
                "{:?}: {reply:?}",
                String::from_utf8_lossy(request)
            );
            assert!(reply.closed, "{reply:?}");
        }

        assert_eq!(
            app_requests(&app).await?,
            before,
            "a refused request reached the app"
        );
        // And the proxy still serves.
        let reply = get(address, "app.test", "/").await?;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test]
async fn a_stalled_request_head_is_cut_after_the_header_read_timeout() -> anyhow::Result<()> {
    let (daemon, app) = daemon_routing_web_to("v1", &["--header-read-timeout", "1s"]).await?;
    let outcome = async {
        let address = daemon.http_address();
        let mut stalled = tcp_connect(address).await?;
        stalled
            .write_all(b"GET / HTTP/1.1\r\nHost: app.test\r\nX-Slow: ")
            .await?;
        let mut silent = tcp_connect(address).await?;

        // Meanwhile, other clients are served.
        let reply = get(address, "app.test", "/").await?;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.version(), Some(app.version()));

        for (what, stream) in [
            ("a partial head", &mut stalled),
            ("no bytes at all", &mut silent),
        ] {
            let reply = read_until_close(stream, CLOSE_DEADLINE).await?;
            assert!(
                reply.closed,
                "a connection that sent {what} was still open {CLOSE_DEADLINE:?} later"
            );
            // Either silence or an error answer; never a forwarded request.
            assert!(
                !reply.text().contains("hello from"),
                "the partial request was forwarded: {reply:?}"
            );
        }
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

// ---------------------------------------------------------------------------
// Body size limits
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_daemon_max_request_body_refuses_larger_bodies_with_413() -> anyhow::Result<()> {
    let daemon = Daemon::builder()
        .args(["--max-request-body", "1KiB"])
        .start()
        .await?;
    let recorder = Recorder::start().await?;
    let outcome = async {
        deploy_target(&daemon, "web", &recorder.target(), QUIET_HEALTH).await?;
        let address = daemon.http_address();

        // Within the limit: passes.
        let reply = post(address, "app.test", "/upload", vec![b'x'; 512]).await?;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.text(), "{\"bytes\":512}");
        recorder.wait_idle().await?;
        assert_eq!(recorder.bodies(), [(512, true)]);

        // A larger Content-Length: refused before anything is forwarded.
        let reply = raw(address, &post_with_length("app.test", 2048)).await?;
        assert_eq!(reply.status(), Some(413), "{reply:?}");
        assert!(reply.closed, "{reply:?}");
        recorder.wait_idle().await?;
        assert_eq!(
            recorder.bodies(),
            [(512, true)],
            "the oversized body reached the upstream"
        );

        // A larger chunked body: refused (413, or the connection cut), and
        // the upstream never gets all of it.
        let reply = raw(address, &post_chunked("app.test", 2, 1024)).await?;
        assert!(
            reply.status() == Some(413) || reply.bytes.is_empty(),
            "a 2 KiB chunked body was not refused: {reply:?}"
        );
        assert!(reply.closed, "{reply:?}");
        recorder.wait_idle().await?;
        recorder.assert_only_allowed_bodies(&[(512, true)], 1024);
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test]
async fn a_service_max_request_body_refuses_larger_bodies_with_413() -> anyhow::Result<()> {
    let daemon = Daemon::start().await?;
    let recorder = Recorder::start().await?;
    let outcome = async {
        let target = recorder.target();
        let small = [
            QUIET_HEALTH,
            &["--host", "small.test", "--max-request-body", "1KiB"],
        ]
        .concat();
        deploy_target(&daemon, "small", &target, &small).await?;
        let big = [QUIET_HEALTH, &["--host", "big.test"]].concat();
        deploy_target(&daemon, "big", &target, &big).await?;
        let address = daemon.http_address();

        let reply = raw(address, &post_with_length("small.test", 2048)).await?;
        assert_eq!(reply.status(), Some(413), "{reply:?}");
        assert!(reply.closed, "{reply:?}");
        recorder.wait_idle().await?;
        assert!(
            recorder.bodies().is_empty(),
            "the oversized body reached the upstream"
        );

        let reply = raw(address, &post_chunked("small.test", 4, 512)).await?;
        assert!(
            reply.status() == Some(413) || reply.bytes.is_empty(),
            "a 2 KiB chunked body was not refused: {reply:?}"
        );
        assert!(reply.closed, "{reply:?}");
        recorder.wait_idle().await?;
        recorder.assert_only_allowed_bodies(&[], 1024);

        // The limit is the service's own: another service takes the body.
        let reply = post(address, "big.test", "/upload", vec![b'x'; 2048]).await?;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.text(), "{\"bytes\":2048}");
        recorder.wait_idle().await?;
        recorder.assert_only_allowed_bodies(&[(2048, true)], 1024);
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

// ---------------------------------------------------------------------------
// Upstream failures
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_refusing_target_gets_502_with_a_short_plain_body() -> anyhow::Result<()> {
    let daemon = Daemon::start().await?;
    let app = App::start("gone").await?;
    let outcome = async {
        // One health check at deploy, the next a minute later: the proxy
        // itself must find the target gone.
        deploy(&daemon, "web", &app, QUIET_HEALTH).await?;
        let address = app.address();
        drop(app);
        wait_refused(address, STEP).await?;

        let reply = get(daemon.http_address(), "app.test", "/").await?;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{reply:?}");
        assert_plain_and_short(&reply, "bad gateway");
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test]
async fn an_upstream_dying_mid_request_gets_502_and_the_daemon_keeps_serving() -> anyhow::Result<()>
{
    let daemon = Daemon::start().await?;
    let crashy = App::start("crashy").await?;
    let steady = App::start("steady").await?;
    let outcome = async {
        deploy(&daemon, "crashy", &crashy, &["--host", "crash.test"]).await?;
        deploy(&daemon, "steady", &steady, &[]).await?;
        let address = daemon.http_address();

        let reply = get(address, "crash.test", "/exit").await?;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{reply:?}");
        assert_plain_and_short(&reply, "bad gateway");

        for _ in 0..5 {
            let reply = get(address, "steady.test", "/").await?;
            assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
            assert_eq!(reply.version(), Some("steady"));
        }
        assert!(
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(daemon.pid())?),
                None
            )
            .is_ok(),
            "the daemon died"
        );
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test]
async fn a_slow_upstream_gets_504_after_the_response_header_timeout() -> anyhow::Result<()> {
    let (daemon, _app) = daemon_routing_web_to("v1", &["--response-header-timeout", "1s"]).await?;
    let outcome = async {
        let address = daemon.http_address();
        let reply = get(address, "app.test", "/slow?ms=3000").await?;
        assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT, "{reply:?}");
        assert_plain_and_short(&reply, "gateway timeout");

        let reply = get(address, "app.test", "/slow?ms=10").await?;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test]
async fn an_unhealthy_only_target_gets_503() -> anyhow::Result<()> {
    let (daemon, app) = daemon_routing_web_to("v1", &[]).await?;
    let outcome = async {
        let reply = post(app.address(), "app", "/knobs/health/fail", Vec::new()).await?;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        let client = daemon.client();
        wait_until(STEP, "route list to show the target unhealthy", || {
            let client = client.clone();
            async move {
                client.routes().await.is_ok_and(|routes| {
                    !routes.is_empty()
                        && routes
                            .iter()
                            .flat_map(|route| &route.versions)
                            .flat_map(|v| &v.targets)
                            .all(|t| !t.healthy)
                })
            }
        })
        .await?;
        let routes = route_list(&daemon).await?;
        assert!(!routes[0].versions[0].targets[0].healthy, "{routes:?}");

        let reply = get(daemon.http_address(), "app.test", "/").await?;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
        assert_plain_and_short(&reply, "no healthy target");
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test]
async fn a_connect_failure_is_retried_on_the_other_target() -> anyhow::Result<()> {
    let daemon = Daemon::start().await?;
    let doomed = App::start("doomed").await?;
    let survivor = App::start("survivor").await?;
    let outcome = async {
        // Health checks a minute apart: only the proxy's own connect
        // failure can steer requests away from the dead target.
        deploy_on_both(
            &daemon,
            (&doomed.target(), "doomed"),
            (&survivor.target(), "survivor"),
        )
        .await?;

        let doomed_address = doomed.address();
        drop(doomed);
        wait_refused(doomed_address, STEP).await?;
        assert_all_answered_by(daemon.http_address(), "survivor", 10, "after the kill").await?;
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

/// The moment between a target going away and the proxy seeing its pooled
/// connections close, made to last: a request sent on such a connection
/// dies unanswered, the target refuses a new connection, and the request
/// (never processed) must go to the other target rather than fail with 502.
#[tokio::test]
async fn a_request_on_a_stale_pooled_connection_fails_over_to_another_target() -> anyhow::Result<()>
{
    let daemon = Daemon::start().await?;
    let vanishing = Vanishing::start().await?;
    let survivor = App::start("survivor").await?;
    let outcome = async {
        deploy_on_both(
            &daemon,
            (&vanishing.target(), "vanishing"),
            (&survivor.target(), "survivor"),
        )
        .await?;

        vanishing.stop().await?;
        assert_all_answered_by(
            daemon.http_address(),
            "survivor",
            6,
            "after the target went",
        )
        .await?;
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

// ---------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_daemon_refuses_bad_listener_flags_with_clear_messages() -> anyhow::Result<()> {
    let state = TempDir::new("limits-flags")?;

    let output = run_baton(&state, &["daemon", "--http", "not-an-address"]).await?;
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not-an-address") && stderr.contains("--http"),
        "{stderr}"
    );

    let output = run_baton(
        &state,
        &["daemon", "--http", "127.0.0.1:0", "--https", "127.0.0.1:0"],
    )
    .await?;
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--tls-cert") && stderr.contains("--tls-key"),
        "{stderr}"
    );

    let missing = state.path.join("missing.pem");
    let missing = missing.to_string_lossy();
    let output = run_baton(
        &state,
        &[
            "daemon",
            "--http",
            "127.0.0.1:0",
            "--https",
            "127.0.0.1:0",
            "--tls-cert",
            &missing,
            "--tls-key",
            &missing,
        ],
    )
    .await?;
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("missing.pem") && stderr.contains("certificate"),
        "{stderr}"
    );
    Ok(())
}

#[tokio::test]
async fn a_deploy_to_an_unreachable_target_fails_and_keeps_the_old_version() -> anyhow::Result<()> {
    let (daemon, app) = daemon_routing_web_to("v1", &[]).await?;
    let outcome = async {
        let unreachable = closed_port_address().await?;
        let started = tokio::time::Instant::now();
        let output = daemon
            .baton(&[
                "route",
                "deploy",
                "web",
                "--target",
                &unreachable,
                "--version",
                "broken",
                "--deploy-timeout",
                "1s",
            ])
            .await?;
        let took = started.elapsed();
        assert!(!output.status.success(), "{output:?}");
        assert!(
            output.stderr.contains(&unreachable),
            "the error does not name the target: {}",
            output.stderr
        );
        assert!(
            took < Duration::from_secs(20),
            "the failed deploy took {took:?}"
        );

        let routes = route_list(&daemon).await?;
        assert_eq!(routes.len(), 1, "{routes:?}");
        assert_eq!(routes[0].versions.len(), 1, "{routes:?}");
        assert_eq!(routes[0].versions[0].label, app.version());
        assert_eq!(routes[0].versions[0].targets[0].address, app.target());

        let reply = get(daemon.http_address(), "app.test", "/").await?;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.version(), Some(app.version()));
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test]
async fn an_invalid_service_name_is_refused_with_a_clear_message() -> anyhow::Result<()> {
    let (daemon, app) = daemon_routing_web_to("v1", &[]).await?;
    let outcome = async {
        let target = app.target();
        for name in ["bad name", "a/b", "ünïcode"] {
            let output = daemon
                .baton(&["route", "deploy", name, "--target", &target])
                .await?;
            assert!(
                !output.status.success(),
                "{name:?} was accepted: {output:?}"
            );
            assert!(
                output.stderr.contains("service name") && output.stderr.contains("letters, digits"),
                "{name:?}: {}",
                output.stderr
            );
        }
        let routes = route_list(&daemon).await?;
        assert_eq!(routes.len(), 1, "{routes:?}");
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test]
async fn a_deploy_onto_another_services_host_and_prefix_is_refused_with_409() -> anyhow::Result<()>
{
    let daemon = Daemon::start().await?;
    let app = App::start("first").await?;
    let other = App::start("second").await?;
    let outcome = async {
        deploy(
            &daemon,
            "first",
            &app,
            &["--host", "app.test", "--path-prefix", "/api"],
        )
        .await?;

        // Same route spelled differently (case, trailing slash).
        let target = other.target();
        let output = daemon
            .baton(&[
                "route",
                "deploy",
                "second",
                "--target",
                &target,
                "--host",
                "APP.test",
                "--path-prefix",
                "/api/",
            ])
            .await?;
        assert!(!output.status.success(), "{output:?}");
        assert!(
            output.stderr.contains("\"first\"") && output.stderr.contains("already routes"),
            "{}",
            output.stderr
        );

        // Straight through the API, to see the status code.
        let request: DeployRoute = serde_json::from_value(serde_json::json!({
            "targets": [target],
            "hosts": ["app.test"],
            "path_prefix": "/api",
            "health_path": "/health",
            "health_interval_ms": 100,
            "healthy_after": 1,
            "health_timeout_ms": 2000,
            "deploy_timeout_ms": 30_000,
            "drain_timeout_ms": 1000,
        }))?;
        match daemon.client().deploy_route("second", &request).await {
            Err(ApiError::Rejected { status, message }) => {
                assert_eq!(status, 409, "{message}");
                assert!(message.contains("first"), "{message}");
            }
            other => anyhow::bail!("expected 409 Conflict, got {other:?}"),
        }

        let routes = daemon.client().routes().await?;
        assert_eq!(routes.len(), 1, "{routes:?}");
        assert_eq!(routes[0].service, "first");
        let reply = get(daemon.http_address(), "app.test", "/api").await?;
        assert_eq!(reply.version(), Some("first"));
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test]
async fn the_control_socket_is_owner_only() -> anyhow::Result<()> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let daemon = Daemon::start().await?;
    let metadata = std::fs::metadata(daemon.socket())?;
    assert!(metadata.file_type().is_socket());
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    Ok(())
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `baton route deploy SERVICE --target TARGET EXTRA…`.
async fn deploy_target(
    daemon: &Daemon,
    service: &str,
    target: &str,
    extra: &[&str],
) -> anyhow::Result<()> {
    let mut args = vec!["route", "deploy", service, "--target", target];
    args.extend_from_slice(extra);
    daemon.baton(&args).await?.success()?;
    Ok(())
}

/// Runs `baton ARGS…` on its own (no daemon), with `state` as its state dir.
async fn run_baton(state: &TempDir, args: &[&str]) -> anyhow::Result<std::process::Output> {
    let mut command = tokio::process::Command::new(binary("baton"));
    command
        .args(args)
        .env("BATON_STATE_DIR", &state.path)
        .env_remove("BATON_SOCKET")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    step(&format!("baton {args:?} to exit"), command.output())
        .await?
        .map_err(Into::into)
}

/// The demo app's count of requests received (not counting this one).
async fn app_requests(app: &App) -> anyhow::Result<u64> {
    let reply = get(app.address(), "app", "/requests").await?;
    anyhow::ensure!(
        reply.status == StatusCode::OK,
        "/requests answered {reply:?}"
    );
    let answer: serde_json::Value = serde_json::from_slice(&reply.body)?;
    answer["count"]
        .as_u64()
        .with_context(|| format!("bad /requests answer {answer}"))
}

/// Deploys `web` on the `first` and `second` targets, each given with the
/// `X-Version` it answers with (health checked only at deploy, see
/// [`QUIET_HEALTH`]), then sends four requests: round robin, both targets
/// serve, each leaving a pooled connection behind.
async fn deploy_on_both(
    daemon: &Daemon,
    (first, first_version): (&str, &str),
    (second, second_version): (&str, &str),
) -> anyhow::Result<()> {
    let extra = [&["--target", second][..], QUIET_HEALTH].concat();
    deploy_target(daemon, "web", first, &extra).await?;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let reply = get(daemon.http_address(), "app.test", "/").await?;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        seen.push(reply.version().unwrap_or_default().to_string());
    }
    assert!(
        seen.iter().any(|v| v == first_version) && seen.iter().any(|v| v == second_version),
        "{seen:?}"
    );
    Ok(())
}

/// Sends `attempts` requests to `address`, one after another; each must get
/// 200 from the app `version` (`when` says when, for the failure message).
async fn assert_all_answered_by(
    address: SocketAddr,
    version: &str,
    attempts: usize,
    when: &str,
) -> anyhow::Result<()> {
    for attempt in 0..attempts {
        let reply = get(address, "app.test", "/").await?;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "request {attempt} {when}: {reply:?}"
        );
        assert_eq!(reply.version(), Some(version));
    }
    Ok(())
}

/// An address where nothing listens.
async fn closed_port_address() -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    drop(listener);
    Ok(address.to_string())
}

/// The proxy's own error answers: plain text, a line or two, no app header.
fn assert_plain_and_short(reply: &Reply, contains: &str) {
    let content_type = reply
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    assert!(
        content_type.is_some_and(|v| v.starts_with("text/plain")),
        "{reply:?}"
    );
    assert!(reply.body.len() < 200, "a long error body: {reply:?}");
    assert!(reply.text().contains(contains), "{reply:?}");
    assert_eq!(
        reply.version(),
        None,
        "the error came from an app: {reply:?}"
    );
}

/// `POST /upload` with a `length`-byte body and `Content-Length`.
fn post_with_length(host: &str, length: usize) -> Vec<u8> {
    let mut request =
        format!("POST /upload HTTP/1.1\r\nHost: {host}\r\nContent-Length: {length}\r\n\r\n")
            .into_bytes();
    request.extend(std::iter::repeat_n(b'x', length));
    request
}

/// `POST /upload` with `chunks` chunks of `size` bytes, chunked.
fn post_chunked(host: &str, chunks: usize, size: usize) -> Vec<u8> {
    let mut request =
        format!("POST /upload HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n")
            .into_bytes();
    for _ in 0..chunks {
        request.extend(format!("{size:x}\r\n").into_bytes());
        request.extend(std::iter::repeat_n(b'x', size));
        request.extend(b"\r\n");
    }
    request.extend(b"0\r\n\r\n");
    request
}

/// What came back on a raw connection, and whether the server closed it.
struct RawReply {
    bytes: Vec<u8>,
    closed: bool,
}

impl RawReply {
    /// The status code of the first response, if one came.
    fn status(&self) -> Option<u16> {
        let text = std::str::from_utf8(self.bytes.get(..12)?).ok()?;
        text.strip_prefix("HTTP/1.1 ")?.parse().ok()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

impl std::fmt::Debug for RawReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text = self.text();
        if text.len() > 2000 {
            text.truncate(2000);
            text.push('…');
        }
        f.debug_struct("RawReply")
            .field("closed", &self.closed)
            .field("bytes", &text)
            .finish()
    }
}

/// Writes `request` on a new connection and reads until the server closes
/// it (or [`CLOSE_DEADLINE`] passes).
async fn raw(address: SocketAddr, request: &[u8]) -> anyhow::Result<RawReply> {
    let mut stream = tcp_connect(address).await?;
    stream.write_all(request).await?;
    read_until_close(&mut stream, CLOSE_DEADLINE).await
}

/// Reads until the peer closes (a reset counts as closed) or `deadline`.
async fn read_until_close(stream: &mut TcpStream, deadline: Duration) -> anyhow::Result<RawReply> {
    let give_up = tokio::time::Instant::now() + deadline;
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout_at(give_up, stream.read(&mut buffer)).await {
            Err(_) => {
                return Ok(RawReply {
                    bytes,
                    closed: false,
                });
            }
            Ok(Ok(0)) => {
                return Ok(RawReply {
                    bytes,
                    closed: true,
                });
            }
            Ok(Ok(read)) => bytes.extend_from_slice(&buffer[..read]),
            Ok(Err(error)) if error.kind() == std::io::ErrorKind::ConnectionReset => {
                return Ok(RawReply {
                    bytes,
                    closed: true,
                });
            }
            Ok(Err(error)) => return Err(error.into()),
        }
    }
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|window| *window == needle)
        .count()
}

/// What a [`Recorder`] saw.
#[derive(Default)]
struct Recorded {
    /// Connections accepted and not yet ended.
    open: u64,
    /// (body bytes received, whether the body ended cleanly) per request.
    bodies: Vec<(u64, bool)>,
}

/// An upstream that answers `/health` and records, for every other request,
/// how much of its body arrived and whether it arrived whole; it answers
/// `{"bytes":N}` and closes every connection after one exchange, so that
/// "no connection open" means "nothing more is on its way".
struct Recorder {
    address: SocketAddr,
    recorded: Arc<Mutex<Recorded>>,
    task: JoinHandle<()>,
}

impl Recorder {
    async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let recorded = Arc::new(Mutex::new(Recorded::default()));
        let shared = Arc::clone(&recorded);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                if let Ok(mut recorded) = shared.lock() {
                    recorded.open += 1;
                }
                let recorded = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(|request: Request<Incoming>| {
                        let recorded = Arc::clone(&recorded);
                        async move { Ok::<_, Infallible>(record(request, &recorded).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(false)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    if let Ok(mut recorded) = recorded.lock() {
                        recorded.open -= 1;
                    }
                });
            }
        });
        Ok(Recorder {
            address,
            recorded,
            task,
        })
    }

    fn target(&self) -> String {
        self.address.to_string()
    }

    fn bodies(&self) -> Vec<(u64, bool)> {
        self.recorded
            .lock()
            .map(|recorded| recorded.bodies.clone())
            .unwrap_or_default()
    }

    /// Waits until every connection the proxy opened to it has ended.
    ///
    /// A connection the proxy opened for a request already answered is in
    /// the kernel's accept queue; one pass of the runtime's I/O driver (the
    /// first tick) accepts it before the count is trusted.
    async fn wait_idle(&self) -> anyhow::Result<()> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let recorded = Arc::clone(&self.recorded);
        wait_until(STEP, "the upstream's connections to end", move || {
            let idle = recorded
                .lock()
                .map(|recorded| recorded.open == 0)
                .unwrap_or(false);
            async move { idle }
        })
        .await
    }

    /// Every body other than the `allowed` ones was cut short at or under
    /// `limit` bytes; each allowed one arrived once.
    fn assert_only_allowed_bodies(&self, allowed: &[(u64, bool)], limit: u64) {
        let bodies = self.bodies();
        for body in allowed {
            let times = bodies.iter().filter(|seen| *seen == body).count();
            assert_eq!(times, 1, "expected body {body:?} once, saw {bodies:?}");
        }
        for &(bytes, complete) in bodies.iter().filter(|seen| !allowed.contains(seen)) {
            assert!(
                !complete && bytes <= limit,
                "the upstream got {bytes} bytes (complete: {complete}) of an oversized body: {bodies:?}"
            );
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(request: Request<Incoming>, recorded: &Mutex<Recorded>) -> Response<Full<Bytes>> {
    if request.uri().path() == "/health" {
        return Response::new(Full::new(Bytes::from_static(b"ok")));
    }
    let mut body = request.into_body();
    let mut bytes = 0u64;
    let mut complete = true;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => bytes += frame.data_ref().map_or(0, |data| data.len() as u64),
            Err(_) => {
                complete = false;
                break;
            }
        }
    }
    if let Ok(mut recorded) = recorded.lock() {
        recorded.bodies.push((bytes, complete));
    }
    Response::new(Full::new(Bytes::from(format!("{{\"bytes\":{bytes}}}"))))
}

/// An upstream that serves (`X-Version: vanishing`) until [`Vanishing::stop`]:
/// then it refuses new connections and drops, unanswered, any request on a
/// connection it had kept alive.
struct Vanishing {
    address: SocketAddr,
    stopped: Arc<std::sync::atomic::AtomicBool>,
    accept: JoinHandle<()>,
}

impl Vanishing {
    async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&stopped);
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let flag = Arc::clone(&flag);
                let service = service_fn(move |_request: Request<Incoming>| {
                    let gone = flag.load(std::sync::atomic::Ordering::Acquire);
                    async move {
                        if gone {
                            // An error from the service: hyper closes the
                            // connection without answering.
                            return Err(std::io::Error::other("gone"));
                        }
                        let mut response = Response::new(Full::new(Bytes::from_static(b"ok\n")));
                        response
                            .headers_mut()
                            .insert("x-version", http::HeaderValue::from_static("vanishing"));
                        Ok(response)
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Vanishing {
            address,
            stopped,
            accept,
        })
    }

    fn target(&self) -> String {
        self.address.to_string()
    }

    /// Stops: closes the listener (new connections are refused) and kills
    /// the next request on every open connection.
    async fn stop(&self) -> anyhow::Result<()> {
        self.stopped
            .store(true, std::sync::atomic::Ordering::Release);
        self.accept.abort();
        wait_refused(self.address, STEP).await
    }
}

impl Drop for Vanishing {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
