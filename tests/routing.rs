//! End-to-end routing tests: the real `baton daemon` in front of real demo
//! apps (one per version label), driven through its listeners and its CLI.
//!
//! Covered: host (exact, `*.wildcard`, catch-all) and longest-prefix
//! routing with 404 when nothing matches; the forwarding headers the app
//! receives and the hop-by-hop headers it must not; streaming (SSE) without
//! buffering; WebSocket relay; a 100 MiB upload streamed with bounded memory;
//! HTTP/2 (h2c prior knowledge and TLS with ALPN) and HTTP/1.1 over TLS;
//! pause/resume; `route list` and `route remove`.
//!
//! Build the binaries first (`cargo build --workspace`): the demo app is not
//! built by `cargo test -p baton`.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use baton_api::VersionRole;
use baton_testkit::{App, Daemon, wait_until};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, StatusCode, Version, header};
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::{Body, Frame};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;

use support::{
    Reply, STEP, TempDir, collect, daemon_routing_web_to, deploy, exchange, exchange_on, explain,
    find_route, get, get_with, route_list, send, step, tcp_connect,
};

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[tokio::test]
async fn routes_by_exact_host_wildcard_longest_prefix_then_catch_all_and_404s_otherwise()
-> anyhow::Result<()> {
    let daemon = Daemon::start().await?;
    let exact = App::start("exact").await?;
    let api = App::start("api").await?;
    let wild = App::start("wild").await?;
    let fallback = App::start("fallback").await?;
    let outcome = async {
        deploy(&daemon, "site", &exact, &["--host", "app.test"]).await?;
        deploy(
            &daemon,
            "api",
            &api,
            &["--host", "app.test", "--path-prefix", "/api"],
        )
        .await?;
        deploy(&daemon, "wild", &wild, &["--host", "*.test"]).await?;
        let address = daemon.http_address();

        let expect = [
            ("app.test", "/", "exact"),
            ("app.test", "/api", "api"),
            ("app.test", "/api/users?page=2", "api"),
            ("APP.Test:8080", "/api/users", "api"),
            // A prefix matches whole segments only.
            ("app.test", "/apiary", "exact"),
            ("shop.test", "/", "wild"),
            ("a.b.test", "/api/users", "wild"),
        ];
        for (host, path, version) in expect {
            // The app answered (its own 404 for paths it lacks is fine):
            // what matters is which app.
            let reply = get(address, host, path).await?;
            assert_eq!(reply.version(), Some(version), "{host}{path}: {reply:?}");
        }

        // No catch-all yet: a host nobody routes, and the bare wildcard
        // domain (`*.test` covers subdomains only), get the proxy's own 404.
        for host in ["elsewhere.org", "test"] {
            let reply = get(address, host, "/").await?;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{host}: {reply:?}");
            assert_eq!(
                reply.version(),
                None,
                "the 404 must be the proxy's own: {reply:?}"
            );
            assert!(reply.text().contains("no service"), "{reply:?}");
        }

        deploy(&daemon, "fallback", &fallback, &[]).await?;
        for (host, path, version) in [
            ("elsewhere.org", "/", "fallback"),
            ("test", "/anything", "fallback"),
            ("app.test", "/", "exact"),
            ("app.test", "/api/x", "api"),
            ("x.test", "/", "wild"),
        ] {
            // The app answered (its own 404 for paths it lacks is fine):
            // what matters is which app.
            let reply = get(address, host, path).await?;
            assert_eq!(reply.version(), Some(version), "{host}{path}: {reply:?}");
        }
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test]
async fn forwarded_headers_reach_the_app_and_hop_by_hop_headers_do_not() -> anyhow::Result<()> {
    let tls = TlsFiles::new()?;
    let daemon = Daemon::builder().tls(&tls.cert, &tls.key).start().await?;
    let app = App::start("headers").await?;
    let outcome = async {
        deploy(&daemon, "web", &app, &[]).await?;
        let address = daemon.http_address();

        let request = "GET /headers HTTP/1.1\r\n\
             Host: app.test\r\n\
             X-Forwarded-For: 203.0.113.7\r\n\
             Connection: close, X-Secret\r\n\
             X-Secret: only-for-the-proxy\r\n\
             Keep-Alive: timeout=5\r\n\
             TE: trailers\r\n\
             Proxy-Connection: keep-alive\r\n\
             Accept: application/json\r\n\
             \r\n";
        let reply = raw_exchange(address, request.as_bytes()).await?;
        let reply = parse_response(&reply)?;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.header("x-version"), Some("headers"), "{reply:?}");
        let seen: Value = serde_json::from_slice(&reply.body)?;
        assert_eq!(
            seen["x-forwarded-for"],
            serde_json::json!(["203.0.113.7, 127.0.0.1"])
        );
        assert_eq!(seen["x-forwarded-proto"], serde_json::json!(["http"]));
        assert_eq!(seen["x-forwarded-host"], serde_json::json!(["app.test"]));
        assert_eq!(seen["accept"], serde_json::json!(["application/json"]));
        let ids = seen["x-request-id"]
            .as_array()
            .context("no X-Request-Id reached the app")?;
        assert_eq!(ids.len(), 1, "{seen}");
        assert!(ids[0].as_str().is_some_and(|id| id.len() >= 16), "{seen}");
        for hop in [
            "x-secret",
            "keep-alive",
            "te",
            "proxy-connection",
            "connection",
        ] {
            assert!(seen.get(hop).is_none(), "{hop} was forwarded: {seen}");
        }

        // A client's own request id is kept as it is.
        let reply = get_with(
            address,
            "app.test",
            "/headers",
            &[("x-request-id", "abc-123")],
        )
        .await?;
        let seen: Value = serde_json::from_slice(&reply.body)?;
        assert_eq!(seen["x-request-id"], serde_json::json!(["abc-123"]));
        assert_eq!(seen["x-forwarded-for"], serde_json::json!(["127.0.0.1"]));

        // Over TLS the app is told the client used https.
        let https = daemon.https_address().context("no https listener")?;
        let stream = tls_connect(https, &tls.cert_der, b"http/1.1").await?;
        let request = Request::get("/headers")
            .header(header::HOST, "app.test")
            .body(Empty::<Bytes>::new())?;
        let reply = exchange_on(stream, request).await?;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        let seen: Value = serde_json::from_slice(&reply.body)?;
        assert_eq!(seen["x-forwarded-proto"], serde_json::json!(["https"]));
        assert_eq!(seen["x-forwarded-host"], serde_json::json!(["app.test"]));
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test]
async fn server_sent_events_stream_through_without_buffering() -> anyhow::Result<()> {
    let (daemon, _app) = daemon_routing_web_to("sse", &[]).await?;
    let outcome = async {
        let request = Request::get("/sse?count=3&interval_ms=500")
            .header(header::HOST, "app.test")
            .body(Empty::<Bytes>::new())?;
        let response = send(daemon.http_address(), request).await?;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.as_bytes()),
            Some(b"text/event-stream".as_slice())
        );
        let mut body = response.into_body();

        // Read until the first whole event; it must come alone, while the
        // stream is still open (a buffering proxy would deliver all three at
        // once, at the end).
        let mut received = String::new();
        while !received.contains("data: 1\n\n") {
            let frame = step("the first event", body.frame())
                .await?
                .context("the stream ended before the first event")??;
            if let Some(data) = frame.data_ref() {
                received.push_str(&String::from_utf8_lossy(data));
            }
        }
        assert!(
            !received.contains("data: 2"),
            "events were buffered: {received:?}"
        );
        assert!(
            !body.is_end_stream(),
            "the stream ended with the first event"
        );

        let rest = step("the rest of the stream", body.collect())
            .await??
            .to_bytes();
        received.push_str(&String::from_utf8_lossy(&rest));
        assert_eq!(received, "data: 1\n\ndata: 2\n\ndata: 3\n\n");
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test]
async fn websocket_echoes_text_and_binary_through_the_proxy() -> anyhow::Result<()> {
    let (daemon, _app) = daemon_routing_web_to("ws", &[]).await?;
    let outcome = async {
        let address = daemon.http_address();
        let stream = tcp_connect(address).await?;
        let (mut socket, response) = step(
            "the WebSocket handshake",
            tokio_tungstenite::client_async(format!("ws://{address}/ws"), stream),
        )
        .await??;
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(
            response.headers().get("x-version").map(|v| v.as_bytes()),
            Some(b"ws".as_slice())
        );

        let text = Message::text("hello through baton");
        socket.send(text.clone()).await?;
        let echoed = step("the text echo", socket.next())
            .await?
            .context("socket closed")??;
        assert_eq!(echoed, text);

        let binary = Message::binary((0..=255u8).collect::<Vec<u8>>());
        socket.send(binary.clone()).await?;
        let echoed = step("the binary echo", socket.next())
            .await?
            .context("socket closed")??;
        assert_eq!(echoed, binary);

        socket.close(None).await?;
        // The close handshake completes: the stream ends, no error.
        step("the close handshake", async {
            while let Some(message) = socket.next().await {
                let message = message?;
                anyhow::ensure!(
                    message.is_close(),
                    "unexpected message after close: {message:?}"
                );
            }
            Ok(())
        })
        .await??;
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test]
async fn a_100_mib_upload_streams_through_with_bounded_daemon_memory() -> anyhow::Result<()> {
    const CHUNK: usize = 1024 * 1024;
    const CHUNKS: usize = 100;
    const TOTAL: u64 = (CHUNK * CHUNKS) as u64;
    let (daemon, _app) = daemon_routing_web_to("upload", &[]).await?;
    let outcome = async {
        let address = daemon.http_address();
        // Warm up the request path before measuring.
        let reply = get(address, "app.test", "/").await?;
        assert_eq!(reply.status, StatusCode::OK);
        let before = memory_kib(daemon.pid(), "VmRSS")?;

        let chunk = Bytes::from(vec![b'x'; CHUNK]);
        let frames = futures_util::stream::iter(
            (0..CHUNKS).map(move |_| Ok::<_, Infallible>(Frame::data(chunk.clone()))),
        );
        let request = Request::post("/upload")
            .header(header::HOST, "app.test")
            .header(header::CONTENT_LENGTH, TOTAL)
            .body(StreamBody::new(frames))?;
        let reply = tokio::time::timeout(Duration::from_secs(180), exchange(address, request))
            .await
            .context("the 100 MiB upload did not finish within 180 s")??;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        let answer: Value = serde_json::from_slice(&reply.body)?;
        assert_eq!(answer["bytes"], serde_json::json!(TOTAL), "{answer}");

        let peak = memory_kib(daemon.pid(), "VmHWM")?;
        eprintln!("daemon RSS before the upload: {before} KiB; peak after: {peak} KiB");
        let grown_mib = peak.saturating_sub(before) / 1024;
        assert!(
            grown_mib < 40,
            "the daemon's peak RSS grew {grown_mib} MiB (from {before} KiB to a peak of {peak} KiB) \
             while streaming {TOTAL} bytes: the body is being buffered"
        );
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test]
async fn http2_prior_knowledge_tls_alpn_h2_and_http11_over_tls_all_work() -> anyhow::Result<()> {
    let tls = TlsFiles::new()?;
    let daemon = Daemon::builder().tls(&tls.cert, &tls.key).start().await?;
    let app = App::start("h2").await?;
    let outcome = async {
        deploy(&daemon, "web", &app, &[]).await?;

        // h2c: HTTP/2 with prior knowledge on the plain listener.
        let stream = tcp_connect(daemon.http_address()).await?;
        let request = Request::get("http://app.test/headers").body(Empty::<Bytes>::new())?;
        let reply = http2_exchange(stream, request).await?;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.http_version, Version::HTTP_2);
        assert_eq!(reply.version(), Some("h2"));
        let seen: Value = serde_json::from_slice(&reply.body)?;
        assert_eq!(seen["x-forwarded-proto"], serde_json::json!(["http"]));
        assert_eq!(seen["x-forwarded-host"], serde_json::json!(["app.test"]));

        // HTTPS, ALPN h2.
        let https = daemon.https_address().context("no https listener")?;
        let stream = tls_connect(https, &tls.cert_der, b"h2").await?;
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(b"h2".as_slice()));
        let request = Request::get("https://localhost/headers").body(Empty::<Bytes>::new())?;
        let reply = http2_exchange(stream, request).await?;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.http_version, Version::HTTP_2);
        assert_eq!(reply.version(), Some("h2"));
        let seen: Value = serde_json::from_slice(&reply.body)?;
        assert_eq!(seen["x-forwarded-proto"], serde_json::json!(["https"]));

        // HTTPS, ALPN http/1.1.
        let stream = tls_connect(https, &tls.cert_der, b"http/1.1").await?;
        assert_eq!(
            stream.get_ref().1.alpn_protocol(),
            Some(b"http/1.1".as_slice())
        );
        let request = Request::get("/")
            .header(header::HOST, "localhost")
            .body(Empty::<Bytes>::new())?;
        let reply = exchange_on(stream, request).await?;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.http_version, Version::HTTP_11);
        assert_eq!(reply.text(), "hello from h2\n");
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test]
async fn pause_holds_requests_until_resume_and_answers_503_after_max() -> anyhow::Result<()> {
    let (daemon, _app) = daemon_routing_web_to("paused", &[]).await?;
    let outcome = async {
        let address = daemon.http_address();

        // Held, then released by resume.
        daemon
            .baton(&["route", "pause", "web", "--max", "60s"])
            .await?
            .success()?;
        let held = tokio::spawn(async move { get(address, "app.test", "/").await });
        let client = daemon.client();
        wait_until(STEP, "the request to be held", || {
            let client = client.clone();
            async move {
                client.routes().await.is_ok_and(|routes| {
                    routes
                        .iter()
                        .any(|route| route.paused.as_ref().is_some_and(|p| p.held == 1))
                })
            }
        })
        .await?;
        assert!(
            !held.is_finished(),
            "a request to a paused service was answered"
        );
        let list = route_list(&daemon).await?;
        let web = find_route(&list, "web")?;
        let paused = web
            .paused
            .as_ref()
            .context("route list does not show the pause")?;
        assert_eq!(paused.max_ms, 60_000);
        assert_eq!(paused.held, 1);

        daemon.baton(&["route", "resume", "web"]).await?.success()?;
        let reply = step("the held request after resume", held).await???;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.version(), Some("paused"));
        assert!(
            find_route(&route_list(&daemon).await?, "web")?
                .paused
                .is_none()
        );

        // Held past --max: 503 with Retry-After.
        daemon
            .baton(&["route", "pause", "web", "--max", "300ms"])
            .await?
            .success()?;
        let list = route_list(&daemon).await?;
        assert_eq!(
            find_route(&list, "web")?
                .paused
                .as_ref()
                .map(|paused| paused.max_ms),
            Some(300)
        );
        let reply = get(address, "app.test", "/").await?;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
        let retry_after = reply
            .headers
            .get(header::RETRY_AFTER)
            .context("503 without Retry-After")?
            .to_str()?
            .parse::<u64>()?;
        assert!(retry_after >= 1, "Retry-After: {retry_after}");
        assert_eq!(reply.version(), None, "the 503 must be the proxy's own");

        daemon.baton(&["route", "resume", "web"]).await?.success()?;
        let reply = get(address, "app.test", "/").await?;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

#[tokio::test]
async fn route_list_shows_versions_and_targets_and_remove_makes_requests_404() -> anyhow::Result<()>
{
    let daemon = Daemon::start().await?;
    let blue = App::start("blue").await?;
    let green = App::start("green").await?;
    let outcome = async {
        deploy(&daemon, "web", &blue, &["--host", "app.test"]).await?;
        let list = route_list(&daemon).await?;
        assert_eq!(list.len(), 1, "{list:?}");
        let web = find_route(&list, "web")?;
        assert_eq!(web.hosts, ["app.test"]);
        assert_eq!(web.path_prefix, "/");
        assert_eq!(web.versions.len(), 1, "{web:?}");
        assert_eq!(web.versions[0].label, "blue");
        assert_eq!(web.versions[0].role, VersionRole::Stable);
        assert_eq!(web.versions[0].targets.len(), 1);
        assert_eq!(web.versions[0].targets[0].address, blue.target());
        assert!(web.versions[0].targets[0].healthy);

        let text = daemon.baton(&["route", "list"]).await?.success()?.stdout;
        assert!(text.contains("web"), "{text}");
        assert!(text.contains("blue"), "{text}");
        assert!(text.contains(&blue.target()), "{text}");

        // A new version replaces the old one in the listing and the traffic.
        deploy(&daemon, "web", &green, &["--host", "app.test"]).await?;
        let list = route_list(&daemon).await?;
        let web = find_route(&list, "web")?;
        let stable: Vec<_> = web
            .versions
            .iter()
            .filter(|version| version.role == VersionRole::Stable)
            .collect();
        assert_eq!(stable.len(), 1, "{web:?}");
        assert_eq!(stable[0].label, "green");
        assert_eq!(stable[0].targets[0].address, green.target());
        let reply = get(daemon.http_address(), "app.test", "/").await?;
        assert_eq!(reply.version(), Some("green"));
        let text = daemon.baton(&["route", "list"]).await?.success()?.stdout;
        assert!(
            text.contains("green") && text.contains(&green.target()),
            "{text}"
        );

        daemon.baton(&["route", "remove", "web"]).await?.success()?;
        assert!(route_list(&daemon).await?.is_empty());
        let reply = get(daemon.http_address(), "app.test", "/").await?;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{reply:?}");
        assert_eq!(reply.version(), None);
        Ok(())
    }
    .await;
    explain(outcome, &daemon)
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// One HTTP/2 exchange on an established stream (prior knowledge or ALPN h2).
async fn http2_exchange<S>(stream: S, request: Request<Empty<Bytes>>) -> anyhow::Result<Reply>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = step(
        "the HTTP/2 handshake",
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)),
    )
    .await??;
    tokio::spawn(connection);
    collect(step("the response head", sender.send_request(request)).await??).await
}

/// Writes `request` and reads until the server closes (the request asks
/// `Connection: close`).
async fn raw_exchange(address: SocketAddr, request: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut stream = tcp_connect(address).await?;
    stream.write_all(request).await?;
    let mut bytes = Vec::new();
    step(
        "the server to answer and close",
        stream.read_to_end(&mut bytes),
    )
    .await??;
    Ok(bytes)
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
struct Parsed {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Parsed {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(other, _)| other == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Parses one HTTP/1.1 response (Content-Length, chunked or until close).
fn parse_response(bytes: &[u8]) -> anyhow::Result<Parsed> {
    let end = bytes
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .with_context(|| {
            format!(
                "no complete response head in {:?}",
                String::from_utf8_lossy(bytes)
            )
        })?;
    let head = std::str::from_utf8(&bytes[..end])?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let rest = &bytes[end + 4..];
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let body = if header("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)?
    } else if let Some(length) = header("content-length") {
        let length: usize = length.parse()?;
        rest.get(..length)
            .context("response body cut short")?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Parsed {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("bad chunk size line")?;
        let size_text = std::str::from_utf8(&rest[..line_end])?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(rest.get(..size).context("chunk cut short")?);
        rest = rest.get(size + 2..).context("chunk cut short")?;
    }
}

/// A field of `/proc/PID/status` (VmRSS, VmHWM), in KiB.
fn memory_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|line| line.starts_with(&format!("{field}:")))
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    line.split_whitespace()
        .nth(1)
        .context("empty memory line")?
        .parse()
        .with_context(|| format!("bad line {line:?}"))
}

/// A self-signed certificate for `localhost` and its key, as PEM files in a
/// directory removed on drop.
struct TlsFiles {
    /// Kept for its `Drop`, which removes the files.
    _dir: TempDir,
    cert: PathBuf,
    key: PathBuf,
    cert_der: CertificateDer<'static>,
}

impl TlsFiles {
    fn new() -> anyhow::Result<Self> {
        let dir = TempDir::new("routing-tls")?;
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])?;
        let cert = dir.path.join("cert.pem");
        let key = dir.path.join("key.pem");
        std::fs::write(&cert, certified.cert.pem())?;
        std::fs::write(&key, certified.signing_key.serialize_pem())?;
        Ok(TlsFiles {
            _dir: dir,
            cert,
            key,
            cert_der: certified.cert.der().clone(),
        })
    }
}

/// A TLS connection to `address` as `localhost`, trusting only `root`,
/// offering only `alpn`.
async fn tls_connect(
    address: SocketAddr,
    root: &CertificateDer<'static>,
    alpn: &[u8],
) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let connector = TlsConnector::from(Arc::new(config));
    let stream = tcp_connect(address).await?;
    let name = ServerName::try_from("localhost")?;
    Ok(step("the TLS handshake", connector.connect(name, stream)).await??)
}
