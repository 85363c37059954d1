//! Helpers shared by the end-to-end tests in this directory: per-step
//! deadlines and the daemon's log on failure, `route deploy` arguments and
//! `route list` results, plain HTTP/1.1 and HTTP/2 clients on hyper's
//! connection API (no pool, so a broken connection is seen, never silently
//! replaced), a keep-alive load that counts every failure, and a temporary
//! directory.
//!
//! Starting, waiting for and cleaning up processes is testkit's job, not
//! this module's.

// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, ensure};
use baton_api::{RouteInfo, VersionInfo};
use baton_testkit::{App, AppSource, CommandOutput, Daemon, wait_until};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Version, header};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Incoming};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Longest any single request (or connect) may take before it counts as failed.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(15);
/// Longest a test waits for something the daemon does promptly.
pub const SOON: Duration = Duration::from_secs(15);
/// Longest any single network step of a test may take (see [`step`]).
pub const STEP: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// Deadlines and failure reports
// ---------------------------------------------------------------------------

/// Runs `future` with the per-step deadline [`STEP`].
pub async fn step<T>(what: &str, future: impl Future<Output = T>) -> anyhow::Result<T> {
    tokio::time::timeout(STEP, future)
        .await
        .with_context(|| format!("timed out after {STEP:?} waiting for {what}"))
}

/// Prints the daemon's log when a test fails with an error (a panic prints
/// it already, from the daemon's `Drop`).
pub fn explain(outcome: anyhow::Result<()>, daemon: &Daemon) -> anyhow::Result<()> {
    if outcome.is_err() {
        eprintln!("--- daemon log ---\n{}", daemon.logs());
    }
    outcome
}

/// Waits up to `within` until connecting to `address` is refused (a killed
/// app is gone).
pub async fn wait_refused(address: SocketAddr, within: Duration) -> anyhow::Result<()> {
    wait_until(
        within,
        "the killed app's port to refuse connections",
        || async move { TcpStream::connect(address).await.is_err() },
    )
    .await
}

// ---------------------------------------------------------------------------
// Deploys
// ---------------------------------------------------------------------------

/// `route deploy SERVICE` arguments moving the service to `app` (labelled
/// with its version), plus `extra`.
pub fn deploy_args(service: &str, app: &App, extra: &[&str]) -> Vec<String> {
    let target = app.target();
    [
        "route",
        "deploy",
        service,
        "--target",
        &target,
        "--version",
        app.version(),
    ]
    .iter()
    .chain(extra)
    .map(|arg| arg.to_string())
    .collect()
}

/// Moves `service` to `app` and waits for the deploy (and its drain) to
/// finish successfully.
pub async fn deploy(
    daemon: &Daemon,
    service: &str,
    app: &App,
    extra: &[&str],
) -> anyhow::Result<CommandOutput> {
    let args = deploy_args(service, app, extra);
    daemon.baton(&strs(&args)).await?.success()
}

/// A daemon started with `daemon_args`, routing `web` (any host, any path)
/// to a fresh demo app labelled `version`, and the app. If the deploy fails
/// the daemon's log is printed, as by [`explain`].
pub async fn daemon_routing_web_to(
    version: &str,
    daemon_args: &[&str],
) -> anyhow::Result<(Daemon, App)> {
    let daemon = Daemon::builder()
        .args(daemon_args.iter().copied())
        .start()
        .await?;
    let app = App::start(version).await?;
    let deployed = deploy(&daemon, "web", &app, &[]).await.map(drop);
    explain(deployed, &daemon)?;
    Ok((daemon, app))
}

/// `&str`s of `args`, as [`Daemon::baton`] takes them.
pub fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Runs `baton ARGS…` in the background; join it with [`join`].
pub fn spawn_baton(daemon: &Daemon, args: &[String]) -> JoinHandle<anyhow::Result<CommandOutput>> {
    let mut command = daemon.command();
    command.args(args);
    tokio::spawn(async move {
        let output = command.output().await.context("running baton")?;
        Ok(CommandOutput {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    })
}

/// Waits up to `deadline` for a spawned task.
pub async fn join<T>(task: JoinHandle<T>, deadline: Duration, what: &str) -> anyhow::Result<T> {
    tokio::time::timeout(deadline, task)
        .await
        .with_context(|| format!("{what} did not finish within {deadline:?}"))?
        .with_context(|| format!("{what} panicked"))
}

/// `baton route list --json`, parsed.
pub async fn route_list(daemon: &Daemon) -> anyhow::Result<Vec<RouteInfo>> {
    let output = daemon
        .baton(&["route", "list", "--json"])
        .await?
        .success()?;
    serde_json::from_str(&output.stdout)
        .with_context(|| format!("route list --json printed {:?}", output.stdout))
}

/// The route of `service` in a route listing.
pub fn find_route<'a>(routes: &'a [RouteInfo], service: &str) -> anyhow::Result<&'a RouteInfo> {
    routes
        .iter()
        .find(|route| route.service == service)
        .with_context(|| format!("no service {service:?} in {routes:?}"))
}

/// The version `label` of `service` in a route listing (active or draining).
pub fn find_version<'a>(
    routes: &'a [RouteInfo],
    service: &str,
    label: &str,
) -> Option<&'a VersionInfo> {
    routes
        .iter()
        .filter(|route| route.service == service)
        .flat_map(|route| route.versions.iter())
        .find(|version| version.label == label)
}

/// Requests in flight to version `label` of `service` (0 if not listed).
pub async fn version_in_flight(daemon: &Daemon, service: &str, label: &str) -> u64 {
    match daemon.client().routes().await {
        Ok(routes) => find_version(&routes, service, label).map_or(0, |version| version.in_flight),
        Err(_) => 0,
    }
}

// ---------------------------------------------------------------------------
// HTTP/1.1 and HTTP/2 clients
// ---------------------------------------------------------------------------

/// A whole response: what one request got back.
pub struct Reply {
    pub status: StatusCode,
    pub http_version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// Reads `response` to the end of its body (no deadline of its own).
    pub async fn read(response: Response<Incoming>) -> anyhow::Result<Reply> {
        let (head, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .context("reading the response body")?
            .to_bytes();
        Ok(Reply {
            status: head.status,
            http_version: head.version,
            headers: head.headers,
            body,
        })
    }

    /// The `X-Version` the demo app stamps on its answers, if any.
    pub fn version(&self) -> Option<&str> {
        self.headers
            .get("x-version")
            .and_then(|value| value.to_str().ok())
    }

    /// The body as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Whether it asked to close the connection.
    pub fn closes(&self) -> bool {
        self.headers
            .get_all(header::CONNECTION)
            .iter()
            .any(|value| value.as_bytes().eq_ignore_ascii_case(b"close"))
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &self.text())
            .finish()
    }
}

/// The value of header `name` as text (empty if absent or not text).
pub fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

/// One HTTP/1.1 keep-alive connection (hyper's client connection API, no
/// pool: a broken connection is visible, never silently replaced).
pub struct Http1 {
    sender: http1::SendRequest<Empty<Bytes>>,
    host: String,
}

impl Http1 {
    /// Connects to `address` (bounded by [`REQUEST_DEADLINE`]).
    pub async fn connect(address: SocketAddr) -> anyhow::Result<Http1> {
        let stream = tokio::time::timeout(REQUEST_DEADLINE, TcpStream::connect(address))
            .await
            .with_context(|| format!("connecting to {address} timed out"))?
            .with_context(|| format!("connecting to {address}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Http1 {
            sender,
            host: address.to_string(),
        })
    }

    /// `GET path` on this connection, body read to the end (bounded by
    /// [`REQUEST_DEADLINE`]).
    pub async fn get(&mut self, path: &str) -> anyhow::Result<Reply> {
        let exchange = async {
            self.sender
                .ready()
                .await
                .context("the connection closed before the request")?;
            let request = Request::get(path)
                .header(header::HOST, &self.host)
                .body(Empty::<Bytes>::new())?;
            let response = self.sender.send_request(request).await?;
            Reply::read(response).await
        };
        tokio::time::timeout(REQUEST_DEADLINE, exchange)
            .await
            .with_context(|| format!("GET {path} got no answer within {REQUEST_DEADLINE:?}"))?
    }
}

/// One request on a connection of its own, `Host` its address (bounded by
/// [`REQUEST_DEADLINE`]).
pub async fn get_once(address: SocketAddr, path: &str) -> anyhow::Result<Reply> {
    Http1::connect(address).await?.get(path).await
}

/// A TCP connection to `address`, within [`STEP`].
pub async fn tcp_connect(address: SocketAddr) -> anyhow::Result<TcpStream> {
    Ok(step("connecting", TcpStream::connect(address)).await??)
}

/// Sends `request` on a fresh HTTP/1.1 connection to `address`; returns the
/// response with its body unread.
pub async fn send<B>(address: SocketAddr, request: Request<B>) -> anyhow::Result<Response<Incoming>>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    send_on(tcp_connect(address).await?, request).await
}

/// Sends `request` as an HTTP/1.1 exchange on an established `stream` (TLS,
/// say); returns the response with its body unread.
pub async fn send_on<S, B>(stream: S, request: Request<B>) -> anyhow::Result<Response<Incoming>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(step("the response head", sender.send_request(request)).await??)
}

/// Reads `response` to the end of its body, within [`STEP`].
pub async fn collect(response: Response<Incoming>) -> anyhow::Result<Reply> {
    step("the response body", Reply::read(response)).await?
}

/// Sends `request` on a fresh HTTP/1.1 connection and reads the whole answer.
pub async fn exchange<B>(address: SocketAddr, request: Request<B>) -> anyhow::Result<Reply>
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    collect(send(address, request).await?).await
}

/// One HTTP/1.1 exchange on an established `stream` (TLS, say), the whole
/// answer read.
pub async fn exchange_on<S, B>(stream: S, request: Request<B>) -> anyhow::Result<Reply>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    collect(send_on(stream, request).await?).await
}

/// `GET path` with `Host: host` on a fresh connection to `address`.
pub async fn get(address: SocketAddr, host: &str, path: &str) -> anyhow::Result<Reply> {
    get_with(address, host, path, &[]).await
}

/// `GET path` with `Host: host` and the extra `headers` on a fresh
/// connection to `address`.
pub async fn get_with(
    address: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<Reply> {
    let mut request = Request::get(path).header(header::HOST, host);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    exchange(address, request.body(Empty::<Bytes>::new())?).await
}

/// `POST path` with `Host: host` and `body` on a fresh connection to
/// `address`.
pub async fn post(
    address: SocketAddr,
    host: &str,
    path: &str,
    body: Vec<u8>,
) -> anyhow::Result<Reply> {
    let request = Request::post(path)
        .header(header::HOST, host)
        .body(Full::new(Bytes::from(body)))?;
    exchange(address, request).await
}

/// An h2c (HTTP/2 prior knowledge) connection to `address`, connected and
/// shaken hands within [`SOON`]: its request sender and the task driving
/// the connection, which ends by itself once every sender is gone.
pub async fn http2_connect(
    address: SocketAddr,
) -> anyhow::Result<(
    http2::SendRequest<Empty<Bytes>>,
    JoinHandle<hyper::Result<()>>,
)> {
    let stream = tokio::time::timeout(SOON, TcpStream::connect(address))
        .await
        .context("connect timed out")??;
    let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .context("HTTP/2 handshake with the proxy")?;
    Ok((sender, tokio::spawn(connection)))
}

/// `GET uri` as one more stream on an HTTP/2 connection, body read to the
/// end (no deadline of its own).
pub async fn http2_get(
    sender: &mut http2::SendRequest<Empty<Bytes>>,
    uri: &str,
) -> anyhow::Result<Reply> {
    sender.ready().await?;
    let request = Request::get(uri).body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    Reply::read(response).await
}

// ---------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------

/// What a load run saw.
#[derive(Default)]
pub struct Tally {
    /// Successful (2xx) answers.
    pub ok: AtomicU64,
    /// Failures of any kind.
    pub failed: AtomicU64,
    /// The first few failures, for the report.
    pub failures: Mutex<Vec<String>>,
    /// Successful answers per `X-Version`.
    pub versions: Mutex<BTreeMap<String, u64>>,
    /// Client connections opened.
    pub connections: AtomicU64,
    /// The longest any answer took, in microseconds.
    pub slowest_micros: AtomicU64,
}

impl Tally {
    /// Counts `answer`: ok if 2xx (per version), else a failure.
    pub fn record(&self, answer: Reply) {
        if !answer.status.is_success() {
            self.fail(format!(
                "status {} from {:?}: {}",
                answer.status,
                answer.version(),
                String::from_utf8_lossy(&answer.body).trim()
            ));
            return;
        }
        self.ok.fetch_add(1, Ordering::Relaxed);
        *lock(&self.versions)
            .entry(answer.version().unwrap_or_default().to_string())
            .or_default() += 1;
    }

    /// Counts a failure, keeping the first few descriptions.
    pub fn fail(&self, what: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut failures = lock(&self.failures);
        if failures.len() < 20 {
            failures.push(what);
        }
    }

    /// The longest any answer took so far.
    pub fn slowest(&self) -> Duration {
        Duration::from_micros(self.slowest_micros.load(Ordering::Relaxed))
    }

    /// Successful answers per version so far.
    pub fn versions(&self) -> BTreeMap<String, u64> {
        lock(&self.versions).clone()
    }

    /// Fails, listing the first failures, unless there were none.
    pub fn assert_no_failures(&self) -> anyhow::Result<()> {
        let failed = self.failed.load(Ordering::Relaxed);
        ensure!(
            failed == 0,
            "{failed} of {} requests failed; first ones: {:#?}",
            failed + self.ok.load(Ordering::Relaxed),
            lock(&self.failures)
        );
        Ok(())
    }
}

/// Keep-alive HTTP/1.1 clients, one connection each, requests back to back.
/// A connection that breaks (or is asked to close) counts as a failure and
/// is reopened.
pub struct Load {
    pub tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts `connections` clients sending `GET path` to `address`. The
    /// proxy asking a client to close its connection counts as a failure:
    /// a route change must never do that.
    pub fn start(address: SocketAddr, connections: usize, path: &'static str) -> Load {
        Load::spawn(address, connections, path, Closing::Fails)
    }

    /// Like [`Load::start`], but a response with `Connection: close` is an
    /// answer like any other, and the client reconnects: what a daemon
    /// handing over to a new one (`baton upgrade`) asks of its clients.
    pub fn start_reconnecting(address: SocketAddr, connections: usize, path: &'static str) -> Load {
        Load::spawn(address, connections, path, Closing::Reconnects)
    }

    fn spawn(
        address: SocketAddr,
        connections: usize,
        path: &'static str,
        closing: Closing,
    ) -> Load {
        let tally = Arc::new(Tally::default());
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..connections)
            .map(|_| {
                let tally = Arc::clone(&tally);
                let stop = Arc::clone(&stop);
                tokio::spawn(
                    async move { client_loop(address, path, &tally, &stop, closing).await },
                )
            })
            .collect();
        Load {
            tally,
            stop,
            workers,
        }
    }

    /// Waits until `count` requests in all have succeeded.
    pub async fn wait_for_answers(&self, count: u64) -> anyhow::Result<()> {
        wait_for(&self.tally, count).await
    }

    /// Stops the clients after their current request; returns the tally.
    pub async fn stop(self) -> anyhow::Result<Arc<Tally>> {
        self.stop.store(true, Ordering::Relaxed);
        for worker in self.workers {
            join(worker, Duration::from_secs(30), "a load client").await?;
        }
        Ok(self.tally)
    }
}

/// Waits (up to 60 s) until `tally` counts `count` successful requests.
pub async fn wait_for(tally: &Tally, count: u64) -> anyhow::Result<()> {
    let what = format!("{count} successful requests");
    wait_until(Duration::from_secs(60), &what, || async {
        tally.ok.load(Ordering::Relaxed) >= count
    })
    .await
    .with_context(|| {
        format!(
            "{} failed meanwhile; first ones: {:#?}",
            tally.failed.load(Ordering::Relaxed),
            lock(&tally.failures)
        )
    })
}

/// What a [`Load`] client makes of `Connection: close`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Closing {
    Fails,
    Reconnects,
}

/// One client of a [`Load`]: a connection, requests back to back.
async fn client_loop(
    address: SocketAddr,
    path: &str,
    tally: &Tally,
    stop: &AtomicBool,
    closing: Closing,
) {
    while !stop.load(Ordering::Relaxed) {
        let mut connection = match Http1::connect(address).await {
            Ok(connection) => connection,
            Err(error) => {
                tally.fail(format!("{error:#}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        tally.connections.fetch_add(1, Ordering::Relaxed);
        while !stop.load(Ordering::Relaxed) {
            let started = std::time::Instant::now();
            let answer = connection.get(path).await;
            let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            tally.slowest_micros.fetch_max(took, Ordering::Relaxed);
            match answer {
                Ok(answer) => {
                    let closes = answer.closes();
                    tally.record(answer);
                    if closes {
                        if closing == Closing::Fails {
                            tally.fail("the proxy asked to close the connection".to_string());
                        }
                        break;
                    }
                }
                Err(error) => {
                    tally.fail(format!("{error:#}"));
                    break;
                }
            }
        }
    }
}

/// Locks `mutex`, even if a panicking thread poisoned it.
pub fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    /// Creates `baton-LABEL-PID-N`, unique within this test process.
    pub fn new(label: &str) -> anyhow::Result<Self> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let unique = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("baton-{label}-{}-{unique}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Sends `text` on a WebSocket and waits, within [`SOON`], for it to come
/// back (a Close or anything else instead fails).
pub async fn echo<S>(
    socket: &mut tokio_tungstenite::WebSocketStream<S>,
    text: &str,
) -> anyhow::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    tokio::time::timeout(SOON, socket.send(Message::text(text)))
        .await
        .context("sending on the WebSocket timed out")??;
    let reply = tokio::time::timeout(SOON, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(reply))) => return Ok(reply.to_string()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => anyhow::bail!("expected the echo of {text:?}, got {other:?}"),
            }
        }
    })
    .await
    .with_context(|| format!("no echo of {text:?} within {SOON:?}"))??;
    ensure!(reply == text, "echo of {text:?} came back as {reply:?}");
    Ok(())
}

/// A WebSocket over a plain TCP connection.
pub type WebSocket = tokio_tungstenite::WebSocketStream<TcpStream>;

/// A WebSocket to the demo app's `/ws` echo through the proxy.
pub async fn open_websocket(address: SocketAddr) -> anyhow::Result<WebSocket> {
    let stream = tokio::time::timeout(SOON, TcpStream::connect(address))
        .await
        .context("connecting for the WebSocket timed out")??;
    let (socket, _) = tokio::time::timeout(
        SOON,
        tokio_tungstenite::client_async(format!("ws://{address}/ws"), stream),
    )
    .await
    .context("the WebSocket handshake timed out")??;
    Ok(socket)
}

/// `baton deploy --config <app's baton.toml>`, as arguments.
pub fn deploy_app_args(app: &AppSource) -> Vec<String> {
    vec![
        "deploy".to_string(),
        "--config".to_string(),
        app.config_path().display().to_string(),
    ]
}

/// Runs `baton deploy` for `app`, successful or not.
pub async fn deploy_app(daemon: &Daemon, app: &AppSource) -> anyhow::Result<CommandOutput> {
    let args = deploy_app_args(app);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    daemon.baton(&args).await
}

/// Deploys `app` as v1, puts `clients` keep-alive clients on `GET /`,
/// then deploys v2 with `env` (say `SLOW_MS = "1500"`) in its `[web]`
/// environment, expecting that deploy to fail. Returns its output and what
/// the clients saw from start to end.
pub async fn deploy_failing_candidate(
    daemon: &Daemon,
    app: &AppSource,
    env: &str,
    clients: usize,
) -> anyhow::Result<(CommandOutput, Arc<Tally>)> {
    deploy_app(daemon, app).await?.success()?;
    let load = Load::start(daemon.http_address(), clients, "/");
    load.wait_for_answers(100).await?;
    let config = std::fs::read_to_string(app.config_path())?;
    app.write_config(&config.replace("[web]\n", &format!("[web]\nenv = {{ {env} }}\n")))?;
    app.set_version("v2")?;
    let output = deploy_app(daemon, app).await?;
    let tally = load.stop().await?;
    ensure!(
        !output.status.success(),
        "the candidate with {env} was promoted:\n{}",
        output.stdout
    );
    Ok((output, tally))
}

/// Fails unless `text` contains every one of `expected`.
pub fn ensure_mentions(text: &str, expected: &[&str]) -> anyhow::Result<()> {
    for expected in expected {
        ensure!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    Ok(())
}

/// The version that answers `GET /` through the daemon now.
pub async fn serving(daemon: &Daemon) -> anyhow::Result<String> {
    let reply = get_once(daemon.http_address(), "/").await?;
    ensure!(reply.status.is_success(), "GET / answered {reply:?}");
    reply
        .version()
        .map(str::to_string)
        .context("the answer has no X-Version")
}

/// Stops `daemon` (SIGTERM) and starts another on its state directory with
/// `args`. Returns the new daemon and the state directory's keeper: drop
/// the keeper after the daemon, or the directory goes first.
pub async fn restart(
    mut daemon: Daemon,
    args: &[String],
) -> anyhow::Result<(Daemon, Option<tempfile::TempDir>)> {
    let state = daemon.keep_state();
    daemon.signal(nix::sys::signal::Signal::SIGTERM);
    daemon.wait_exit(Duration::from_secs(30)).await?;
    let again = Daemon::builder()
        .state_dir(daemon.state_dir())
        .args(args.iter().cloned())
        .start()
        .await?;
    Ok((again, state))
}

// ---------------------------------------------------------------------------
// The admin listener
// ---------------------------------------------------------------------------

/// The admin token the daemons of [`admin_daemon`] take.
pub const ADMIN_TOKEN: &str = "a-long-random-admin-token";

/// A file holding [`ADMIN_TOKEN`] with permissions `mode`, in a fresh
/// directory (kept alive by the caller).
pub fn admin_token_file(mode: u32) -> anyhow::Result<(TempDir, PathBuf)> {
    let dir = TempDir::new("admin-token")?;
    let path = dir.path.join("admin.token");
    std::fs::write(&path, format!("{ADMIN_TOKEN}\n"))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
    Ok((dir, path))
}

/// A daemon with an admin listener on a free port, its token in a file.
pub async fn admin_daemon() -> anyhow::Result<(Daemon, TempDir)> {
    let (dir, path) = admin_token_file(0o600)?;
    let daemon = Daemon::builder()
        .args(["--admin", "127.0.0.1:0", "--admin-token-file"])
        .args([path.display().to_string()])
        .start()
        .await?;
    Ok((daemon, dir))
}

/// Where the daemon says its admin listener is.
pub async fn admin_address(daemon: &Daemon) -> anyhow::Result<SocketAddr> {
    let info = daemon.client().daemon_info().await?;
    let listener = info
        .listeners
        .iter()
        .find(|listener| listener.protocol == "admin")
        .with_context(|| format!("no admin listener in {:?}", info.listeners))?;
    Ok(listener.address.parse()?)
}

/// `METHOD path` on the admin listener with `authorization`, if any.
pub async fn admin_call(
    address: SocketAddr,
    method: Method,
    path: &str,
    authorization: Option<&str>,
) -> anyhow::Result<Reply> {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, address.to_string());
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    exchange(address, request.body(Empty::<Bytes>::new())?).await
}

/// The `Authorization` value that carries [`ADMIN_TOKEN`].
pub fn bearer() -> String {
    format!("Bearer {ADMIN_TOKEN}")
}

// ---------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------

/// An OpenMetrics exposition (`/metrics`, `baton metrics`), parsed.
pub fn parse_metrics(text: &str) -> anyhow::Result<prometheus_parse::Scrape> {
    ensure!(text.ends_with("# EOF\n"), "not a whole exposition:\n{text}");
    Ok(prometheus_parse::Scrape::parse(
        text.lines().map(|line| Ok(line.to_string())),
    )?)
}

/// Whether `sample` is of `metric` and has `labels` (and maybe others).
pub fn matches(sample: &prometheus_parse::Sample, metric: &str, labels: &[(&str, &str)]) -> bool {
    sample.metric == metric
        && labels
            .iter()
            .all(|(name, value)| sample.labels.get(name) == Some(*value))
}

/// The values of the samples of `metric` with `labels` (and any others).
pub fn values(
    scrape: &prometheus_parse::Scrape,
    metric: &str,
    labels: &[(&str, &str)],
) -> anyhow::Result<Vec<f64>> {
    scrape
        .samples
        .iter()
        .filter(|sample| matches(sample, metric, labels))
        .map(|sample| match sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Ok(v),
            ref other => anyhow::bail!("{metric} {labels:?} is {other:?}"),
        })
        .collect()
}

/// The value of the one sample of `metric` with `labels`.
pub fn value(
    scrape: &prometheus_parse::Scrape,
    metric: &str,
    labels: &[(&str, &str)],
) -> anyhow::Result<f64> {
    match values(scrape, metric, labels)?.as_slice() {
        [one] => Ok(*one),
        other => anyhow::bail!("{metric} {labels:?}: {other:?}, want one sample"),
    }
}
