//! The version split on real sockets: a proxy on 127.0.0.1:0 in front of two
//! tiny upstreams, one per version, each answering with its label.
//!
//! Covered: 1,000 clients placed by a 1% weight keep their version through
//! weight changes up to 50% and get the sticky cookie once; new clients
//! follow the weight; the cookie is never set without `sticky`, nor on an
//! override; an abort returns the candidate, which drains, and every client
//! goes back to stable; a refused connect is retried on another target of
//! the chosen version, never on the other version; a shadowed candidate
//! gets copies of the listed methods only, marked as copies, whose answers
//! are compared (status class, latency) and never reach the client.
#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_proxy::{
    Forwarder, Limits, LoadBalancer, Router, Server, Service, Shadow, Split, Target, Version,
    Workers,
};
use bytes::Bytes;
use http::header::{COOKIE, HOST, SET_COOKIE};
use http::{HeaderName, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const CLIENTS: usize = 1_000;
/// Client connections shared by the clients: a client is its cookie, not
/// its connection.
const CONNECTIONS: usize = 32;

/// An upstream answering every request with `label`, and a cookie of its
/// own that must reach the client next to the proxy's.
async fn upstream(label: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(move |_request| async move {
                    let mut response =
                        Response::new(Full::new(Bytes::from_static(label.as_bytes())));
                    response
                        .headers_mut()
                        .insert(SET_COOKIE, "app=1; Path=/".parse().unwrap());
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}

fn version(label: &str, addresses: &[SocketAddr]) -> Arc<Version> {
    let targets = addresses
        .iter()
        .map(|address| Arc::new(Target::new(address.to_string(), *address)))
        .collect();
    let version = Arc::new(Version::new(
        label.to_string(),
        targets,
        LoadBalancer::default(),
    ));
    for index in 0..addresses.len() {
        version.set_target_health(index, true);
    }
    version
}

/// A running proxy with service `app` (stable `v1`, candidate `v2`).
struct Proxy {
    address: SocketAddr,
    service: Arc<Service>,
    stable: Arc<Version>,
    candidate: Arc<Version>,
    workers: Option<Workers>,
}

impl Proxy {
    async fn start(candidate_targets: &[SocketAddr]) -> Proxy {
        // First: connection pools size themselves by the worker count.
        let workers = Workers::start(2).unwrap();
        let stable = version("v1", &[upstream("v1").await]);
        let candidate = version("v2", candidate_targets);
        let router = Arc::new(Router::new());
        router
            .install(Service {
                name: "app".to_string(),
                hosts: vec![],
                path_prefix: "/".to_string(),
                max_request_body: None,
                drain_timeout: Duration::from_secs(5),
                gate: Arc::default(),
                active: Arc::clone(&stable),
                split: Arc::default(),
                annotator: None,
            })
            .unwrap();
        let service = router.load().service("app").cloned().unwrap();
        let forwarder = Arc::new(Forwarder::new(
            router,
            Limits::default(),
            CancellationToken::new(),
        ));
        let server = Server::new(forwarder, Duration::from_millis(10));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        server.serve(listener, None, &workers).unwrap();
        Proxy {
            address,
            service,
            stable,
            candidate,
            workers: Some(workers),
        }
    }

    fn split(&self, weight_bp: u32, sticky: bool, override_header: bool) {
        let left = self.service.set_split(Some(Split {
            candidate: Arc::clone(&self.candidate),
            weight_bp,
            sticky,
            override_header,
            shadow: None,
        }));
        assert!(left.is_none());
    }

    /// Sends request `i` with `headers[i]`, over shared connections; the
    /// answers in the same order.
    async fn round(&self, headers: Vec<Vec<(HeaderName, String)>>) -> Vec<Answer> {
        let headers = Arc::new(headers);
        let mut tasks = Vec::new();
        for connection in 0..CONNECTIONS {
            let headers = Arc::clone(&headers);
            let address = self.address;
            tasks.push(tokio::spawn(async move {
                let mut sender = connect(address).await;
                let mut answers = Vec::new();
                for index in (connection..headers.len()).step_by(CONNECTIONS) {
                    answers.push((index, get(&mut sender, &headers[index]).await));
                }
                answers
            }));
        }
        let mut answers = Vec::new();
        for task in tasks {
            answers.extend(task.await.unwrap());
        }
        answers.sort_by_key(|(index, _)| *index);
        answers.into_iter().map(|(_, answer)| answer).collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(workers) = self.workers.take() {
            workers.stop();
        }
    }
}

#[derive(Debug)]
struct Answer {
    /// The label of the version that answered.
    version: String,
    /// The proxy's `Set-Cookie: baton_version=…`, if any.
    sticky: Option<String>,
    /// Whether the app's own cookie came through.
    app_cookie: bool,
}

async fn connect(address: SocketAddr) -> SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(address).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

async fn get(sender: &mut SendRequest<Empty<Bytes>>, headers: &[(HeaderName, String)]) -> Answer {
    let mut request = Request::get("/").header(HOST, "app.test");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    sender.ready().await.unwrap();
    let response = sender
        .send_request(request.body(Empty::new()).unwrap())
        .await
        .unwrap();
    assert!(response.status().is_success(), "{response:?}");
    let cookies: Vec<String> = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap().to_string())
        .collect();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        version: String::from_utf8(body.to_vec()).unwrap(),
        sticky: cookies
            .iter()
            .find(|cookie| cookie.starts_with("baton_version="))
            .cloned(),
        app_cookie: cookies.iter().any(|cookie| cookie == "app=1; Path=/"),
    }
}

fn without_cookies(count: usize) -> Vec<Vec<(HeaderName, String)>> {
    vec![vec![]; count]
}

/// Each client's cookie header: another cookie first, so the name is found
/// among others.
fn with_cookies(placed: &[String]) -> Vec<Vec<(HeaderName, String)>> {
    placed
        .iter()
        .map(|label| vec![(COOKIE, format!("session=abc; baton_version={label}"))])
        .collect()
}

fn on_candidate(answers: &[Answer]) -> usize {
    answers
        .iter()
        .filter(|answer| answer.version == "v2")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_clients_keep_their_version_while_the_weight_moves() {
    let proxy = Proxy::start(&[upstream("v2").await]).await;
    proxy.split(100, true, false);

    // Placement at 1%: every client gets the cookie naming what answered.
    let first = proxy.round(without_cookies(CLIENTS)).await;
    for answer in &first {
        assert_eq!(
            answer.sticky.as_deref(),
            Some(
                format!(
                    "baton_version={}; Path=/; HttpOnly; SameSite=Lax",
                    answer.version
                )
                .as_str()
            )
        );
        assert!(answer.app_cookie, "the app's own cookie was lost");
    }
    let placed: Vec<String> = first.iter().map(|answer| answer.version.clone()).collect();
    let pinned_to_candidate = on_candidate(&first);
    assert!(
        (1..=20).contains(&pinned_to_candidate),
        "1% of {CLIENTS} placed {pinned_to_candidate} on the candidate"
    );

    // The weight moves while the clients come back: none switches.
    let moving = {
        let service = Arc::clone(&proxy.service);
        tokio::spawn(async move {
            for weight_bp in [1_000, 2_500, 5_000].into_iter().cycle().take(300) {
                assert!(service.set_weight(weight_bp));
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    for weight_bp in [1_000, 2_500, 5_000] {
        assert!(proxy.service.set_weight(weight_bp));
        let again = proxy.round(with_cookies(&placed)).await;
        for (client, answer) in again.iter().enumerate() {
            assert_eq!(answer.version, placed[client], "client {client} switched");
            assert_eq!(answer.sticky, None, "client {client} was placed again");
        }
    }
    moving.await.unwrap();

    // New clients follow the new weight.
    assert!(proxy.service.set_weight(5_000));
    let newcomers = proxy.round(without_cookies(CLIENTS)).await;
    let half = on_candidate(&newcomers);
    assert!(
        half.abs_diff(CLIENTS / 2) <= 10,
        "50% of {CLIENTS} gave {half}"
    );
    assert!(newcomers.iter().all(|answer| answer.sticky.is_some()));

    // Every request was counted on the version that answered it.
    let served_by_candidate = (pinned_to_candidate * 4 + half) as u64;
    let total = (CLIENTS * 5) as u64;
    let counted = |version: &Version| version.stats().totals().requests;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while counted(&proxy.candidate) + counted(&proxy.stable) < total
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(counted(&proxy.candidate), served_by_candidate);
    assert_eq!(counted(&proxy.stable), total - served_by_candidate);

    // Abort: the candidate leaves; its clients go back to stable, unpinned.
    let left = proxy.service.set_split(None).unwrap();
    assert!(Arc::ptr_eq(&left, &proxy.candidate));
    let report = left.drain(Duration::from_secs(5)).await;
    assert_eq!(report.requests_cut, 0);
    let after = proxy.round(with_cookies(&placed)).await;
    assert!(
        after
            .iter()
            .all(|answer| answer.version == "v1" && answer.sticky.is_none())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cookie_is_set_only_when_sticky() {
    let proxy = Proxy::start(&[upstream("v2").await]).await;
    proxy.split(5_000, false, false);
    let answers = proxy.round(without_cookies(200)).await;
    assert!(answers.iter().all(|answer| answer.sticky.is_none()));
    assert!(answers.iter().all(|answer| answer.app_cookie));
    assert_eq!(on_candidate(&answers), 100);

    // Without sticky a cookie naming the candidate does not pin.
    assert!(proxy.service.set_weight(0));
    let named = proxy.round(with_cookies(&vec!["v2".to_string(); 50])).await;
    assert!(
        named
            .iter()
            .all(|answer| answer.version == "v1" && answer.sticky.is_none())
    );

    // With sticky, a cookie naming a version that left is replaced.
    proxy.split(0, true, false);
    let stale = proxy.round(with_cookies(&vec!["v0".to_string(); 10])).await;
    for answer in &stale {
        assert_eq!(answer.version, "v1");
        assert_eq!(
            answer.sticky.as_deref(),
            Some("baton_version=v1; Path=/; HttpOnly; SameSite=Lax")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_override_header_forces_without_pinning() {
    let proxy = Proxy::start(&[upstream("v2").await]).await;
    let header = HeaderName::from_static("x-baton-version");
    let forced = |value: &str| vec![vec![(header.clone(), value.to_string())]; 20];

    proxy.split(0, true, true);
    let to_candidate = proxy.round(forced("candidate")).await;
    assert!(
        to_candidate
            .iter()
            .all(|answer| answer.version == "v2" && answer.sticky.is_none())
    );
    assert!(proxy.service.set_weight(10_000));
    let to_stable = proxy.round(forced("stable")).await;
    assert!(to_stable.iter().all(|answer| answer.version == "v1"));

    // Disabled, the header is ignored: the weight decides.
    assert!(proxy.service.set_split(None).is_some());
    proxy.split(0, true, false);
    let ignored = proxy.round(forced("candidate")).await;
    assert!(ignored.iter().all(|answer| answer.version == "v1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connect_is_retried_on_the_same_version() {
    // The candidate's first target refuses connections but is still listed
    // healthy, as right after it died.
    let refused = {
        let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        reserved.local_addr().unwrap()
    };
    let proxy = Proxy::start(&[refused, upstream("v2").await]).await;
    proxy.split(10_000, false, false);
    let answers = proxy.round(without_cookies(100)).await;
    assert!(answers.iter().all(|answer| answer.version == "v2"));
    assert!(!proxy.candidate.targets()[0].is_healthy());
    assert_eq!(proxy.stable.stats().totals().requests, 0);
}

/// What a recording upstream saw of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    method: Method,
    marked_as_copy: bool,
}

/// An upstream that records every request and answers with the status and
/// after the delay set in it at the time.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Seen>>,
    status: AtomicU16,
    delay_ms: AtomicU64,
}

async fn recording_upstream(recorder: Arc<Recorder>) -> SocketAddr {
    recorder.status.store(200, Ordering::Relaxed);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let recorder = Arc::clone(&recorder);
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let recorder = Arc::clone(&recorder);
                    async move {
                        recorder.seen.lock().unwrap().push(Seen {
                            method: request.method().clone(),
                            marked_as_copy: request.headers().get("x-baton-shadow")
                                == Some(&http::HeaderValue::from_static("1")),
                        });
                        let delay = recorder.delay_ms.load(Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                        let mut response = Response::new(Full::new(Bytes::from_static(b"v2")));
                        *response.status_mut() =
                            StatusCode::from_u16(recorder.status.load(Ordering::Relaxed)).unwrap();
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}

/// Sends `count` requests with `method` one after another on one
/// connection; how long each took, after checking stable answered it.
async fn send_each(proxy: &Proxy, method: Method, count: usize) -> Vec<Duration> {
    let mut sender = connect(proxy.address).await;
    let mut took = Vec::new();
    for _ in 0..count {
        let request = Request::builder()
            .method(method.clone())
            .uri("/")
            .header(HOST, "app.test")
            .body(Empty::new())
            .unwrap();
        let started = std::time::Instant::now();
        sender.ready().await.unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        took.push(started.elapsed());
        if method != Method::HEAD {
            assert_eq!(&body[..], b"v1", "a client got the candidate's answer");
        }
    }
    took
}

/// Waits (10 s at most) until the candidate has compared `count` copies.
async fn compared(candidate: &Version, count: u64) -> baton_telemetry::MirrorWindow {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let window = candidate
            .mirror_stats()
            .snapshot(std::time::Instant::now(), Duration::from_secs(600));
        if window.compared >= count || std::time::Instant::now() > deadline {
            return window;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_copies_reach_the_candidate_and_never_the_client() {
    let recorder = Arc::new(Recorder::default());
    let proxy = Proxy::start(&[recording_upstream(Arc::clone(&recorder)).await]).await;
    proxy.split(0, false, false);
    let shadow = Shadow {
        share_bp: 10_000,
        methods: vec![Method::GET, Method::HEAD],
    };
    assert!(proxy.service.set_traffic(0, Some(shadow.clone())));

    send_each(&proxy, Method::GET, 100).await;
    send_each(&proxy, Method::HEAD, 10).await;
    send_each(&proxy, Method::POST, 20).await;
    let window = compared(&proxy.candidate, 110).await;
    assert_eq!((window.compared, window.mismatched), (110, 0));
    let seen = recorder.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 110, "only GET and HEAD are copied");
    assert!(seen.iter().all(|seen| seen.marked_as_copy));
    assert!(seen.iter().all(|seen| seen.method != Method::POST));
    // Copies count as the candidate's requests; stable served everything.
    assert_eq!(proxy.candidate.stats().totals().requests, 110);
    assert_eq!(proxy.stable.stats().totals().requests, 130);

    // Another status class is a mismatch; the client still gets stable's.
    recorder.status.store(500, Ordering::Relaxed);
    send_each(&proxy, Method::GET, 50).await;
    let window = compared(&proxy.candidate, 160).await;
    assert_eq!((window.compared, window.mismatched), (160, 50));

    // A candidate that takes 2 s neither slows the client nor passes as
    // alike.
    recorder.status.store(200, Ordering::Relaxed);
    recorder.delay_ms.store(2_000, Ordering::Relaxed);
    let took = send_each(&proxy, Method::GET, 5).await;
    assert!(
        took.iter().all(|took| *took < Duration::from_secs(1)),
        "the client waited for the copy: {took:?}"
    );
    let window = compared(&proxy.candidate, 165).await;
    assert_eq!((window.compared, window.mismatched), (165, 55));

    // Shadow off: no more copies.
    recorder.delay_ms.store(0, Ordering::Relaxed);
    assert!(proxy.service.set_traffic(0, None));
    send_each(&proxy, Method::GET, 20).await;
    assert_eq!(recorder.seen.lock().unwrap().len(), 165);

    // A share copies that share of the requests, evenly.
    assert!(proxy.service.set_traffic(
        0,
        Some(Shadow {
            share_bp: 2_500,
            ..shadow
        })
    ));
    send_each(&proxy, Method::GET, 400).await;
    let window = compared(&proxy.candidate, 265).await;
    assert_eq!(window.compared, 265);
}
