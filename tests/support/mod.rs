//! Helpers shared by the end-to-end tests in this directory: `route deploy`
//! arguments, a plain HTTP/1.1 client on hyper's connection API (no pool, so
//! a broken connection is seen, never silently replaced) and a keep-alive
//! load that counts every failure.
//!
//! Starting, waiting for and cleaning up processes is testkit's job, not
//! this module's.

// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, ensure};
use baton_api::{RouteInfo, VersionInfo};
use baton_testkit::{App, CommandOutput, Daemon, wait_until};
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Longest any single request (or connect) may take before it counts as failed.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(15);
/// Longest a test waits for something the daemon does promptly.
pub const SOON: Duration = Duration::from_secs(15);

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
// HTTP/1.1 client
// ---------------------------------------------------------------------------

/// What one request got back.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// Reads `response` to the end of its body.
    pub async fn read(response: http::Response<hyper::body::Incoming>) -> anyhow::Result<Answer> {
        let (head, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .context("reading the response body")?
            .to_bytes();
        Ok(Answer {
            status: head.status,
            headers: head.headers,
            body,
        })
    }

    /// Its `X-Version`.
    pub fn version(&self) -> &str {
        header_text(&self.headers, "x-version")
    }

    /// Whether it asked to close the connection.
    pub fn closes(&self) -> bool {
        self.headers
            .get_all(header::CONNECTION)
            .iter()
            .any(|value| value.as_bytes().eq_ignore_ascii_case(b"close"))
    }
}

/// The value of header `name` as text (empty if absent or not text).
pub fn header_text<'a>(headers: &'a http::HeaderMap, name: &str) -> &'a str {
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
    pub async fn get(&mut self, path: &str) -> anyhow::Result<Answer> {
        let exchange = async {
            self.sender
                .ready()
                .await
                .context("the connection closed before the request")?;
            let request = Request::get(path)
                .header(header::HOST, &self.host)
                .body(Empty::<Bytes>::new())?;
            let response = self.sender.send_request(request).await?;
            Answer::read(response).await
        };
        tokio::time::timeout(REQUEST_DEADLINE, exchange)
            .await
            .with_context(|| format!("GET {path} got no answer within {REQUEST_DEADLINE:?}"))?
    }
}

/// One request on a connection of its own.
pub async fn get_once(address: SocketAddr, path: &str) -> anyhow::Result<Answer> {
    Http1::connect(address).await?.get(path).await
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
}

impl Tally {
    /// Counts `answer`: ok if 2xx (per version), else a failure.
    pub fn record(&self, answer: Answer) {
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
            .entry(answer.version().to_string())
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
    /// Starts `connections` clients sending `GET path` to `address`.
    pub fn start(address: SocketAddr, connections: usize, path: &'static str) -> Load {
        let tally = Arc::new(Tally::default());
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..connections)
            .map(|_| {
                let tally = Arc::clone(&tally);
                let stop = Arc::clone(&stop);
                tokio::spawn(async move { client_loop(address, path, &tally, &stop).await })
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

/// One client of a [`Load`]: a connection, requests back to back.
async fn client_loop(address: SocketAddr, path: &str, tally: &Tally, stop: &AtomicBool) {
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
            match connection.get(path).await {
                Ok(answer) => {
                    let closes = answer.closes();
                    tally.record(answer);
                    if closes {
                        tally.fail("the proxy asked to close the connection".to_string());
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
