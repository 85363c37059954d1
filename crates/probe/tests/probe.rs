//! Probes tiny in-process servers on 127.0.0.1:0 and checks that every
//! request is counted once, in the right place, over the expected number of
//! connections.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use baton_probe::{ProbeConfig, Report};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// Bound on any single probe run in these tests.
const RUN_LIMIT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Behaviour {
    /// Every 4th request gets 503 without `X-Version`; the rest 200 with
    /// `X-Version: a` (or the request's `X-Want`).
    Mixed,
    /// 200, always with `Connection: close`.
    CloseEach,
    /// 404.
    NotFound,
    /// Answers after 5 s.
    Slow,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Protocol {
    Http1,
    Http2,
    /// HTTP/2 that shuts each connection down gracefully (GOAWAY) after a
    /// few requests.
    Http2Goaway,
}

#[derive(Default)]
struct Stats {
    requests: AtomicU64,
    body_bytes: AtomicU64,
    connections: AtomicU64,
}

/// A server task, stopped when dropped.
struct Server {
    addr: SocketAddr,
    stats: Arc<Stats>,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}/hello", self.addr)
    }

    /// `https://localhost:PORT/`, for a certificate made out to `localhost`.
    fn localhost_url(&self) -> String {
        format!("https://localhost:{}/", self.addr.port())
    }
}

async fn listener() -> TcpListener {
    match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("bind 127.0.0.1:0: {e}"),
    }
}

fn local_addr(listener: &TcpListener) -> SocketAddr {
    match listener.local_addr() {
        Ok(a) => a,
        Err(e) => panic!("local_addr: {e}"),
    }
}

async fn handle(
    request: Request<Incoming>,
    behaviour: Behaviour,
    stats: Arc<Stats>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let n = stats.requests.fetch_add(1, Ordering::SeqCst);
    let want = request
        .headers()
        .get("x-want")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = request.into_body().collect().await;
    let got = body.map(|b| b.to_bytes().len()).unwrap_or(0);
    stats.body_bytes.fetch_add(got as u64, Ordering::SeqCst);
    let mut response = Response::new(Full::new(Bytes::from_static(b"hello world\n")));
    match behaviour {
        Behaviour::Mixed if n % 4 == 3 => {
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        }
        Behaviour::Mixed => {
            let version = want.unwrap_or_else(|| "a".to_owned());
            if let Ok(value) = version.parse() {
                response.headers_mut().insert("x-version", value);
            }
        }
        Behaviour::CloseEach => {
            response
                .headers_mut()
                .insert("connection", http::HeaderValue::from_static("close"));
        }
        Behaviour::NotFound => *response.status_mut() = StatusCode::NOT_FOUND,
        Behaviour::Slow => tokio::time::sleep(Duration::from_secs(5)).await,
    }
    Ok(response)
}

async fn serve_connection<IO>(io: IO, protocol: Protocol, behaviour: Behaviour, stats: Arc<Stats>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let served = Arc::new(AtomicU64::new(0));
    let enough = Arc::new(Notify::new());
    let service = {
        let (served, enough) = (served.clone(), enough.clone());
        service_fn(move |request| {
            if served.fetch_add(1, Ordering::SeqCst) + 1 == 20 {
                enough.notify_one();
            }
            handle(request, behaviour, stats.clone())
        })
    };
    let io = TokioIo::new(io);
    match protocol {
        Protocol::Http1 => {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        }
        Protocol::Http2 => {
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(io, service)
                .await;
        }
        Protocol::Http2Goaway => {
            let mut connection = pin!(
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(io, service)
            );
            tokio::select! {
                _ = connection.as_mut() => return,
                () = enough.notified() => {}
            }
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// A server on 127.0.0.1 that counts every connection it accepts and runs
/// `on_connection` on it, in a task of its own.
async fn serve<F, Fut>(on_connection: F) -> Server
where
    F: Fn(TcpStream, Arc<Stats>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = listener().await;
    let addr = local_addr(&listener);
    let stats = Arc::new(Stats::default());
    let task = tokio::spawn({
        let stats = stats.clone();
        async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                stats.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(on_connection(tcp, stats.clone()));
            }
        }
    });
    Server { addr, stats, task }
}

/// A server speaking `protocol` (over TLS when given an acceptor) that
/// answers as `behaviour` says.
async fn start(protocol: Protocol, behaviour: Behaviour, tls: Option<TlsAcceptor>) -> Server {
    serve(move |tcp, stats| {
        let tls = tls.clone();
        async move {
            match tls {
                None => serve_connection(tcp, protocol, behaviour, stats).await,
                Some(acceptor) => {
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        serve_connection(stream, protocol, behaviour, stats).await;
                    }
                }
            }
        }
    })
    .await
}

/// A [`Behaviour::Mixed`] server speaking `protocol` over TLS with `tls`'s
/// certificate.
async fn start_https(protocol: Protocol, tls: &Tls) -> Server {
    start(protocol, Behaviour::Mixed, Some(tls.acceptor.clone())).await
}

/// A server that reads each request's head and then closes the connection
/// without answering.
async fn start_hanging_up() -> Server {
    serve(|mut tcp, _stats| async move {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        drop(tcp);
    })
    .await
}

/// A raw HTTP/2 server that resets every 10th stream with `reason` and
/// answers the others 200.
async fn start_resetting(reason: h2::Reason) -> Server {
    serve(move |tcp, stats| async move {
        let Ok(mut connection) = h2::server::handshake(tcp).await else {
            return;
        };
        while let Some(Ok((_request, mut respond))) = connection.accept().await {
            let n = stats.requests.fetch_add(1, Ordering::SeqCst) + 1;
            if n % 10 == 0 {
                respond.send_reset(reason);
                continue;
            }
            if let Ok(mut body) = respond.send_response(Response::new(()), false) {
                let _ = body.send_data(Bytes::from_static(b"ok"), true);
            }
        }
    })
    .await
}

fn config(url: String, concurrency: usize, millis: u64) -> ProbeConfig {
    let mut config = ProbeConfig::new(url);
    config.concurrency = concurrency;
    config.duration = Duration::from_millis(millis);
    config.timeout = Duration::from_secs(5);
    config
}

async fn probe(config: ProbeConfig) -> Report {
    match tokio::time::timeout(RUN_LIMIT, baton_probe::run(config)).await {
        Ok(Ok(report)) => report,
        Ok(Err(e)) => panic!("probe did not run: {e}"),
        Err(_) => panic!("probe did not finish within {RUN_LIMIT:?}"),
    }
}

/// The invariants of every report.
fn assert_consistent(report: &Report) {
    assert!(report.total > 0, "no request was sent:\n{report}");
    assert_eq!(report.total, report.ok + report.failed(), "{report}");
}

/// Checks a run against the `Mixed` server: only 200s and 503s, each
/// counted once, and the header counted on every 200.
fn assert_mixed(report: &Report) {
    assert_consistent(report);
    assert!(report.ok > 0, "{report}");
    assert_eq!(report.failed(), report.failures.status_5xx, "{report}");
    assert_eq!(report.status_counts.values().sum::<u64>(), report.total);
    assert_eq!(
        report.status_counts.get(&200).copied().unwrap_or(0),
        report.ok
    );
    assert_eq!(
        report.status_counts.get(&503).copied().unwrap_or(0),
        report.failures.status_5xx
    );
    assert_eq!(
        report.header_counts.values().sum::<u64>(),
        report.ok,
        "{report}"
    );
    assert!(report.latency_ms.max > 0.0, "{report}");
    assert!(report.latency_ms.p50 <= report.latency_ms.max, "{report}");
}

#[tokio::test]
async fn keepalive_uses_one_connection_per_worker() {
    let server = start(Protocol::Http1, Behaviour::Mixed, None).await;
    let mut config = config(server.url("http"), 4, 300);
    config.count_header = Some("X-Version".to_owned());
    let report = probe(config).await;
    assert_mixed(&report);
    assert_eq!(report.connections_opened, 4, "{report}");
    assert_eq!(
        report.header_counts.keys().collect::<Vec<_>>(),
        vec!["a"],
        "{report}"
    );
    assert_eq!(report.count_header.as_deref(), Some("X-Version"));
    assert_eq!(server.stats.requests.load(Ordering::SeqCst), report.total);
    assert_eq!(server.stats.connections.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn no_keepalive_opens_a_connection_per_request() {
    let server = start(Protocol::Http1, Behaviour::Mixed, None).await;
    let mut config = config(server.url("http"), 4, 300);
    config.keepalive = false;
    config.count_header = Some("x-version".to_owned());
    let report = probe(config).await;
    assert_mixed(&report);
    assert_eq!(report.connections_opened, report.total, "{report}");
}

#[tokio::test]
async fn http2_shares_one_connection() {
    let server = start(Protocol::Http2, Behaviour::Mixed, None).await;
    let mut config = config(server.url("http"), 4, 300);
    config.http2 = true;
    config.count_header = Some("X-Version".to_owned());
    let report = probe(config).await;
    assert_mixed(&report);
    assert_eq!(report.connections_opened, 1, "{report}");
    assert_eq!(server.stats.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn http2_reconnects_after_graceful_goaway_without_failures() {
    let server = start(Protocol::Http2Goaway, Behaviour::NotFound, None).await;
    let mut config = config(server.url("http"), 4, 400);
    config.http2 = true;
    let report = probe(config).await;
    assert_consistent(&report);
    // Every response is a 404: anything else would be a request lost to
    // the shutdowns.
    assert_eq!(report.failed(), report.failures.status_other, "{report}");
    assert!(report.connections_opened > 1, "{report}");
}

#[tokio::test]
async fn http2_refused_streams_are_retried_not_counted() {
    let server = start_resetting(h2::Reason::REFUSED_STREAM).await;
    let mut config = config(server.url("http"), 2, 300);
    config.http2 = true;
    let report = probe(config).await;
    assert_consistent(&report);
    assert_eq!(report.failed(), 0, "{report}");
    assert_eq!(report.connections_opened, 1, "{report}");
    // The server saw the refused streams as well as the counted requests.
    let seen = server.stats.requests.load(Ordering::SeqCst);
    assert!(seen > report.total, "server saw {seen}:\n{report}");
}

#[tokio::test]
async fn http2_stream_resets_count_as_resets() {
    let server = start_resetting(h2::Reason::INTERNAL_ERROR).await;
    let mut config = config(server.url("http"), 2, 300);
    config.http2 = true;
    let report = probe(config).await;
    assert_consistent(&report);
    assert!(report.failures.reset > 0, "{report}");
    assert_eq!(report.failed(), report.failures.reset, "{report}");
    assert_eq!(report.connections_opened, 1, "{report}");
}

#[tokio::test]
async fn connection_close_responses_reconnect_without_failures() {
    let server = start(Protocol::Http1, Behaviour::CloseEach, None).await;
    let report = probe(config(server.url("http"), 4, 300)).await;
    assert_consistent(&report);
    assert_eq!(report.failed(), 0, "{report}");
    assert_eq!(report.connections_opened, report.total, "{report}");
}

#[tokio::test]
async fn refused_port_gives_only_connect_failures() {
    let listener = listener().await;
    let addr = local_addr(&listener);
    drop(listener);
    let report = probe(config(format!("http://{addr}/"), 2, 200)).await;
    assert_consistent(&report);
    assert_eq!(report.ok, 0);
    assert_eq!(report.failures.connect, report.total, "{report}");
    assert_eq!(report.connections_opened, 0);
    assert!(
        report.errors.keys().all(|k| k.starts_with("connect:")),
        "{report}"
    );
}

#[tokio::test]
async fn hang_ups_count_as_resets() {
    let server = start_hanging_up().await;
    let report = probe(config(server.url("http"), 2, 200)).await;
    assert_consistent(&report);
    assert_eq!(report.failures.reset, report.total, "{report}");
    assert!(report.status_counts.is_empty());
}

#[tokio::test]
async fn slow_responses_time_out() {
    let server = start(Protocol::Http1, Behaviour::Slow, None).await;
    let mut config = config(server.url("http"), 2, 150);
    config.timeout = Duration::from_millis(100);
    let report = probe(config).await;
    assert_consistent(&report);
    assert_eq!(report.failures.timeout, report.total, "{report}");
    // A timed-out connection is not reused.
    assert_eq!(report.connections_opened, report.total, "{report}");
}

#[tokio::test]
async fn other_statuses_are_counted_apart_from_5xx() {
    let server = start(Protocol::Http1, Behaviour::NotFound, None).await;
    let report = probe(config(server.url("http"), 2, 200)).await;
    assert_consistent(&report);
    assert_eq!(report.failures.status_other, report.total, "{report}");
    assert_eq!(report.status_counts.get(&404), Some(&report.total));
}

#[tokio::test]
async fn request_budget_bodies_and_headers() {
    let server = start(Protocol::Http1, Behaviour::Mixed, None).await;
    let mut config = config(server.url("http"), 3, 10_000);
    config.requests = Some(10);
    config.method = "POST".to_owned();
    config.body_size = 1024;
    config.headers = vec![("X-Want".to_owned(), "b".to_owned())];
    config.count_header = Some("X-Version".to_owned());
    let report = probe(config).await;
    assert_mixed(&report);
    assert_eq!(report.total, 10, "{report}");
    assert!(report.duration_ms < 10_000, "{report}");
    assert_eq!(server.stats.body_bytes.load(Ordering::SeqCst), 10 * 1024);
    assert_eq!(
        report.header_counts.keys().collect::<BTreeSet<_>>(),
        BTreeSet::from([&"b".to_owned()])
    );
}

#[tokio::test]
async fn rate_limits_the_total() {
    let server = start(Protocol::Http1, Behaviour::Mixed, None).await;
    let mut config = config(server.url("http"), 4, 300);
    config.rate = Some(40.0);
    let report = probe(config).await;
    assert_consistent(&report);
    // Slots every 25 ms from 0 to 275 ms.
    assert!(report.total <= 12, "{report}");
}

#[tokio::test]
async fn stop_ends_the_run_early() {
    let server = start(Protocol::Http1, Behaviour::Mixed, None).await;
    let mut config = config(server.url("http"), 2, 60_000);
    config.count_header = Some("X-Version".to_owned());
    let stop = tokio::time::sleep(Duration::from_millis(200));
    let report = match tokio::time::timeout(RUN_LIMIT, baton_probe::run_until(config, stop)).await {
        Ok(Ok(report)) => report,
        other => panic!("{other:?}"),
    };
    assert_mixed(&report);
    assert!(report.duration_ms < 60_000, "{report}");
}

#[tokio::test]
async fn bad_settings_fail_before_probing() {
    let result = baton_probe::run(ProbeConfig::new("not a url")).await;
    assert!(result.is_err());
    let mut config = ProbeConfig::new("https://127.0.0.1:1/");
    config.ca_file = Some("/nonexistent/ca.pem".into());
    let result = baton_probe::run(config).await;
    let text = result.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(text.contains("/nonexistent/ca.pem"), "{text}");
}

/// A certificate for `localhost`, and an acceptor serving it.
struct Tls {
    ca_file: tempfile::NamedTempFile,
    acceptor: TlsAcceptor,
}

fn tls() -> Tls {
    let certified = match rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]) {
        Ok(c) => c,
        Err(e) => panic!("rcgen: {e}"),
    };
    let mut ca_file = match tempfile::NamedTempFile::new() {
        Ok(f) => f,
        Err(e) => panic!("temp file: {e}"),
    };
    if let Err(e) = ca_file.write_all(certified.cert.pem().as_bytes()) {
        panic!("write CA: {e}");
    }
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(vec![cert], key));
    let mut config = match config {
        Ok(c) => c,
        Err(e) => panic!("server TLS config: {e}"),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Tls {
        ca_file,
        acceptor: TlsAcceptor::from(Arc::new(config)),
    }
}

#[tokio::test]
async fn https_with_ca_file() {
    let tls = tls();
    let server = start_https(Protocol::Http1, &tls).await;
    let mut config = config(server.localhost_url(), 2, 300);
    config.ca_file = Some(tls.ca_file.path().to_owned());
    config.count_header = Some("X-Version".to_owned());
    let report = probe(config).await;
    assert_mixed(&report);
    assert_eq!(report.connections_opened, 2, "{report}");
}

#[tokio::test]
async fn https_http2_insecure_shares_one_connection() {
    let tls = tls();
    let server = start_https(Protocol::Http2, &tls).await;
    let mut config = config(server.url("https"), 4, 300);
    config.insecure = true;
    config.http2 = true;
    config.count_header = Some("X-Version".to_owned());
    let report = probe(config).await;
    assert_mixed(&report);
    assert_eq!(report.connections_opened, 1, "{report}");
}

#[tokio::test]
async fn https_untrusted_certificate_is_a_connect_failure() {
    let served = tls();
    let other = tls();
    let server = start_https(Protocol::Http1, &served).await;
    let mut config = config(server.localhost_url(), 1, 100);
    config.ca_file = Some(other.ca_file.path().to_owned());
    let report = probe(config).await;
    assert_consistent(&report);
    assert_eq!(report.failures.connect, report.total, "{report}");
    assert_eq!(server.stats.requests.load(Ordering::SeqCst), 0);
}
