//! The request path: route, pause gate, version split, admission, target
//! choice, upstream exchange, with the error and retry rules of a front door.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use baton_telemetry::Outcome;
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{
    HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, Version as HttpVersion,
    header,
};
use http_body::Body as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::TrySendError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::admission::Admitted;
use crate::forwarded_headers::{add_forwarded, strip_hop_by_hop, wants_upgrade};
use crate::head_scanner::{HeadVerdict, HeadVerdicts};
use crate::limits::Limits;
use crate::local_response::{bad_request, local_response, paused_response};
use crate::mirror;
use crate::request_annotator::FLAGS_HEADER;
use crate::request_body::{BodyFault, BodyFaultFlag, ClientBody, UpstreamBody};
use crate::response_body::{Exchange, ResponseBody};
use crate::router::Router;
use crate::service::Service;
use crate::shadow::Answer;
use crate::target::Target;
use crate::upgrade_relay::Relay;
use crate::upstream_pool::{ConnectError, PooledConnection};
use crate::version::Version;

/// Who sent a request and how.
#[derive(Clone, Debug)]
pub struct ClientContext {
    /// The client's address.
    pub peer: SocketAddr,
    /// Whether it came over TLS.
    pub https: bool,
    /// HTTP/1: the verdicts of the connection's [`HeadScanner`], which sees
    /// the request heads hyper hides. `None` over HTTP/2, where the request
    /// carries the headers as received.
    ///
    /// [`HeadScanner`]: crate::head_scanner::HeadScanner
    pub(crate) head_verdicts: Option<Arc<HeadVerdicts>>,
}

impl ClientContext {
    /// Whether `request`'s head frames its body ambiguously (a smuggling
    /// attempt). Called exactly once per request, first thing.
    fn head_verdict<B>(&self, request: &Request<B>) -> HeadVerdict {
        match &self.head_verdicts {
            Some(verdicts) => verdicts.next(),
            None => HeadVerdict::of_headers(request.headers()),
        }
    }
}

/// Forwards requests to the versions the route table names.
pub struct Forwarder {
    router: Arc<Router>,
    limits: Limits,
    shutdown: CancellationToken,
}

/// A request admitted to a version.
struct Admission {
    service: Arc<Service>,
    version: Arc<Version>,
    admitted: Admitted,
    /// The response sets the sticky cookie naming `version`.
    pin: bool,
    /// The shadowed candidate that gets a copy of the request.
    mirror: Option<Arc<Version>>,
}

/// A connection chosen for a request.
pub(crate) struct Chosen {
    pub(crate) target: Arc<Target>,
    pub(crate) connection: PooledConnection,
}

impl Forwarder {
    /// A forwarder over `router`. `shutdown` fires when upgraded connections
    /// must be told to go away because the daemon stops.
    pub fn new(router: Arc<Router>, limits: Limits, shutdown: CancellationToken) -> Self {
        Forwarder {
            router,
            limits,
            shutdown,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Answers one client request.
    pub async fn handle(
        &self,
        mut request: Request<Incoming>,
        client: &ClientContext,
    ) -> Response<ResponseBody> {
        let started = Instant::now();
        // First: the verdicts are taken one per request, in order.
        if let HeadVerdict::Conflicting(conflict) = client.head_verdict(&request) {
            return bad_request(conflict.message());
        }
        let Some(host) = request_host(&request) else {
            return bad_request("bad request: no Host header");
        };
        // hyper's read buffer bounds the head only loosely (a head arriving in
        // large reads gets past it), so the limit is checked here exactly.
        if head_size(&request) > self.limits.max_header_size {
            return head_too_large(self.limits.max_header_size);
        }
        let path = request.uri().path().to_string();
        let Some(service) = self.router.load().lookup(&host, &path).cloned() else {
            return local_response(
                StatusCode::NOT_FOUND,
                "no service is routed for this host and path",
            );
        };
        if let Err(held) = service.gate.pass().await {
            return paused_response(held.waited.as_secs());
        }
        let Some(Admission {
            service,
            version,
            admitted,
            pin,
            mirror,
        }) = self.admit(&host, &path, request.method(), request.headers())
        else {
            return local_response(
                StatusCode::NOT_FOUND,
                "no service is routed for this host and path",
            );
        };

        let limit = service.max_request_body.or(self.limits.max_request_body);
        if let (Some(limit), Some(length)) = (limit, content_length(request.headers()))
            && length > limit
        {
            return too_large(limit);
        }
        let upgrade = request.version() == HttpVersion::HTTP_11 && wants_upgrade(request.headers());
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
        let (mut parts, body) = request.into_parts();
        let fault = Arc::new(BodyFaultFlag::default());
        let body = match self.read_ahead(body, limit, &fault).await {
            Ok(body) => body,
            Err(response) => return response,
        };
        prepare_upstream_head(&mut parts, client, &host, upgrade);
        if let Some(annotator) = &service.annotator {
            annotator.annotate(&mut parts.headers, client.peer.ip());
        }
        // Only a request without a body is copied: copying a body would
        // mean holding it back from stable until the copy has it too.
        let stable_answer = match mirror {
            Some(candidate) if !upgrade && matches!(body, UpstreamBody::Empty) => mirror::start(
                candidate,
                &parts.method,
                &parts.uri,
                &parts.headers,
                &self.limits,
            ),
            _ => None,
        };
        let chosen = match choose(&version, self.limits.connect_timeout).await {
            Ok(chosen) => chosen,
            Err(response) => {
                return response;
            }
        };
        let Chosen {
            mut target,
            mut connection,
        } = chosen;
        // Only a reused connection can have been closed under us; only then
        // is a copy of the head worth keeping for a retry.
        let replay = (connection.reused() && is_replayable(&parts.method, &body)).then(|| {
            (
                parts.method.clone(),
                parts.uri.clone(),
                parts.headers.clone(),
            )
        });
        target.start();
        let request = Request::from_parts(parts, body);
        let sent = tokio::time::timeout(
            self.limits.response_header_timeout,
            send(
                &version,
                &mut target,
                &mut connection,
                request,
                replay,
                self.limits.connect_timeout,
            ),
        )
        .await;
        let mut response = match sent {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                target.finish();
                return match fault.get() {
                    Some(BodyFault::TooLarge) => too_large(limit.unwrap_or_default()),
                    Some(BodyFault::Malformed) => {
                        bad_request("bad request: malformed or incomplete request body")
                    }
                    None => {
                        tracing::warn!(target = target.address(), %error, "Upstream exchange failed");
                        record(&version, Outcome::UpstreamError, started);
                        local_response(
                            StatusCode::BAD_GATEWAY,
                            "bad gateway: the upstream closed or reset the connection",
                        )
                    }
                };
            }
            Err(_) => {
                target.finish();
                record(&version, Outcome::Timeout, started);
                return local_response(
                    StatusCode::GATEWAY_TIMEOUT,
                    "gateway timeout: the upstream did not answer in time",
                );
            }
        };
        if pin && let Some(cookie) = version.sticky_cookie() {
            // Appended: the app's own cookies stay.
            response
                .headers_mut()
                .append(header::SET_COOKIE, cookie.clone());
        }
        let latency = started.elapsed();
        let status = response.status();
        if let Some(stable_answer) = stable_answer {
            stable_answer.send(Answer {
                outcome: Outcome::Status(status.as_u16()),
                latency,
            });
        }
        if status == StatusCode::SWITCHING_PROTOCOLS
            && let Some(client_upgrade) = client_upgrade
        {
            return self
                .switch_protocols(response, client_upgrade, admitted, version, target, latency)
                .await;
        }
        strip_hop_by_hop(response.headers_mut(), false);
        let (head, body) = response.into_parts();
        let exchange = Exchange::new(
            admitted,
            version,
            target,
            Some(connection),
            status.as_u16(),
            latency,
        );
        Response::from_parts(head, ResponseBody::upstream(body, exchange))
    }

    /// Enters the version of the service for `host` and `path` that the
    /// split (if any) chooses for a request with `headers`, re-reading the
    /// table and the split when the version closed under us (a swap, or a
    /// candidate that left and drained).
    fn admit(
        &self,
        host: &str,
        path: &str,
        method: &Method,
        headers: &HeaderMap,
    ) -> Option<Admission> {
        for _ in 0..8 {
            let table = self.router.load();
            let service = table.lookup(host, path)?;
            let routed = service.route(method, headers);
            if let Some(admitted) = routed.version.admission().enter() {
                return Some(Admission {
                    service: Arc::clone(service),
                    version: routed.version,
                    admitted,
                    pin: routed.pin,
                    mirror: routed.mirror,
                });
            }
        }
        None
    }

    /// Reads the first body frame before anything goes upstream, so a
    /// malformed or oversized body is refused with nothing forwarded.
    async fn read_ahead(
        &self,
        mut body: Incoming,
        limit: Option<u64>,
        fault: &Arc<BodyFaultFlag>,
    ) -> Result<UpstreamBody, Response<ResponseBody>> {
        if body.is_end_stream() {
            return Ok(UpstreamBody::Empty);
        }
        match tokio::time::timeout(self.limits.header_read_timeout, body.frame()).await {
            Ok(None) => Ok(UpstreamBody::Empty),
            Ok(Some(Ok(frame))) => {
                let length = frame.data_ref().map_or(0, |data| data.len() as u64);
                if let Some(limit) = limit.filter(|&limit| length > limit) {
                    return Err(too_large(limit));
                }
                Ok(UpstreamBody::Client(ClientBody::new(
                    Some(frame),
                    body,
                    limit,
                    Arc::clone(fault),
                )))
            }
            Ok(Some(Err(_))) => Err(bad_request("bad request: malformed request body")),
            Err(_) => Err(local_response(
                StatusCode::REQUEST_TIMEOUT,
                "request timeout: the request body did not arrive in time",
            )),
        }
    }

    async fn switch_protocols(
        &self,
        mut response: Response<Incoming>,
        client_upgrade: hyper::upgrade::OnUpgrade,
        admitted: Admitted,
        version: Arc<Version>,
        target: Arc<Target>,
        latency: Duration,
    ) -> Response<ResponseBody> {
        let websocket = response
            .headers()
            .get(header::UPGRADE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.eq_ignore_ascii_case("websocket"));
        let upstream = hyper::upgrade::on(&mut response);
        version
            .stats()
            .record(Instant::now().into_std(), Outcome::Status(101), latency);
        let upstream = match upstream.await {
            Ok(upstream) => upstream,
            Err(error) => {
                target.finish();
                tracing::warn!(target = target.address(), %error, "Upstream upgrade failed");
                return local_response(
                    StatusCode::BAD_GATEWAY,
                    "bad gateway: the upstream upgrade failed",
                );
            }
        };
        Relay {
            admitted,
            version,
            target,
            shutdown: self.shutdown.clone(),
            websocket,
        }
        .spawn(client_upgrade, upstream);
        let (mut head, _) = response.into_parts();
        strip_hop_by_hop(&mut head.headers, true);
        Response::from_parts(head, ResponseBody::empty())
    }
}

/// Picks a target and a connection to it. A failed connect is retried
/// once on another target of the version: nothing reached the upstream.
pub(crate) async fn choose(
    version: &Arc<Version>,
    connect_timeout: Duration,
) -> Result<Chosen, Response<ResponseBody>> {
    let started = Instant::now();
    let mut excluded = None;
    let mut last_error = None;
    let mut waited_for_health = false;
    loop {
        let Some(index) = version.pick(excluded) else {
            if !waited_for_health && !version.was_ever_healthy() {
                waited_for_health = true;
                if version.wait_first_healthy(connect_timeout).await {
                    continue;
                }
            }
            return Err(match last_error {
                Some(error) => connect_failure(version, error, started),
                None => {
                    record(version, Outcome::Status(503), started);
                    local_response(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "service unavailable: no healthy target",
                    )
                }
            });
        };
        let Some(target) = version.targets().get(index).cloned() else {
            continue;
        };
        if let Some(connection) = target.pool().checkout() {
            return Ok(Chosen { target, connection });
        }
        match target.pool().connect(connect_timeout).await {
            Ok(connection) => return Ok(Chosen { target, connection }),
            Err(error) => {
                tracing::warn!(target = target.address(), %error, "Upstream connect failed");
                version.set_target_health(index, false);
                if excluded.is_some() {
                    return Err(connect_failure(version, error, started));
                }
                excluded = Some(index);
                last_error = Some(error);
            }
        }
    }
}

/// Why an upstream exchange failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    #[error(transparent)]
    Upstream(#[from] hyper::Error),
    #[error("the pooled connection had closed and reconnecting failed: {0}")]
    Reconnect(ConnectError),
}

/// Sends on `connection`; a request the upstream never saw (a pooled
/// connection it had just closed) is sent again once on a fresh connection,
/// to `target` or, when it refuses, to another target of `version`
/// (`target` then names the one that took the request).
pub(crate) async fn send(
    version: &Version,
    target: &mut Arc<Target>,
    connection: &mut PooledConnection,
    request: Request<UpstreamBody>,
    replay: Option<(Method, Uri, HeaderMap)>,
    connect_timeout: Duration,
) -> Result<Response<Incoming>, SendError> {
    let reused = connection.reused();
    let unsent = match connection.sender().ready().await {
        Ok(()) => match connection.sender().try_send_request(request).await {
            Ok(response) => return Ok(response),
            Err(error) => retry_candidate(error, reused, replay)?,
        },
        Err(error) if reused => {
            tracing::debug!(%error, "Pooled connection closed before use");
            request
        }
        Err(error) => return Err(error.into()),
    };
    *connection = reconnect(version, target, connect_timeout).await?;
    connection.sender().ready().await?;
    Ok(connection.sender().send_request(unsent).await?)
}

/// A fresh connection for a request whose pooled connection had closed. A
/// target that refuses it has just gone away (its pooled connections were
/// the first to notice): it is marked unhealthy and another healthy target
/// takes the request, which none has seen yet.
async fn reconnect(
    version: &Version,
    target: &mut Arc<Target>,
    connect_timeout: Duration,
) -> Result<PooledConnection, SendError> {
    let error = match target.pool().connect(connect_timeout).await {
        Ok(connection) => return Ok(connection),
        Err(error) => error,
    };
    tracing::warn!(target = target.address(), %error, "Upstream reconnect failed");
    target.set_healthy(false);
    let Some(other) = version
        .pick(None)
        .and_then(|index| version.targets().get(index).cloned())
    else {
        return Err(SendError::Reconnect(error));
    };
    let connection = match other.pool().connect(connect_timeout).await {
        Ok(connection) => connection,
        Err(error) => {
            other.set_healthy(false);
            return Err(SendError::Reconnect(error));
        }
    };
    // No await from here on: the in-flight counts move over in one step.
    target.finish();
    other.start();
    *target = other;
    Ok(connection)
}

/// The request to send again after `error`, if that is safe.
fn retry_candidate(
    mut error: TrySendError<Request<UpstreamBody>>,
    reused: bool,
    replay: Option<(Method, Uri, HeaderMap)>,
) -> Result<Request<UpstreamBody>, hyper::Error> {
    if let Some(request) = error.take_message()
        && reused
    {
        return Ok(request);
    }
    match replay {
        // An idempotent request without a body on a reused connection that
        // closed before any answer: the upstream dropped it unprocessed.
        Some((method, uri, headers)) if reused && error.error().is_incomplete_message() => {
            let mut request = Request::new(UpstreamBody::Empty);
            *request.method_mut() = method;
            *request.uri_mut() = uri;
            *request.headers_mut() = headers;
            Ok(request)
        }
        _ => Err(error.into_error()),
    }
}

fn prepare_upstream_head(parts: &mut Parts, client: &ClientContext, host: &str, upgrade: bool) {
    strip_hop_by_hop(&mut parts.headers, upgrade);
    parts.headers.remove(header::EXPECT);
    // Only the daemon's flag evaluation may say which flags are on.
    parts.headers.remove(&FLAGS_HEADER);
    add_forwarded(
        &mut parts.headers,
        client.peer.ip(),
        client.https,
        Some(host),
    );
    if !parts.headers.contains_key(header::HOST)
        && let Ok(value) = HeaderValue::from_str(host)
    {
        parts.headers.insert(header::HOST, value);
    }
    parts.version = HttpVersion::HTTP_11;
    let origin_form = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    parts.uri = Uri::from(origin_form);
}

fn is_replayable(method: &Method, body: &UpstreamBody) -> bool {
    matches!(body, UpstreamBody::Empty) && (method.is_idempotent())
}

fn request_host<B>(request: &Request<B>) -> Option<String> {
    request
        .uri()
        .authority()
        .map(|authority| authority.as_str().to_string())
        .or_else(|| {
            request
                .headers()
                .get(header::HOST)
                .and_then(|value| value.to_str().ok())
                .map(str::to_string)
        })
        .filter(|host| !host.is_empty())
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok())
}

/// The request head's size as HTTP/1.1 sends it: request line and header lines.
fn head_size<B>(request: &Request<B>) -> usize {
    let target = request
        .uri()
        .path_and_query()
        .map_or(1, |target| target.as_str().len());
    // METHOD SP TARGET SP HTTP/1.1 CRLF
    let line = request.method().as_str().len() + 1 + target + 1 + "HTTP/1.1\r\n".len();
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + ": \r\n".len())
        .sum();
    line + headers + "\r\n".len()
}

fn head_too_large(limit: usize) -> Response<ResponseBody> {
    let mut response = local_response(
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        &format!("request header fields too large: the request head may be up to {limit} bytes"),
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn too_large(limit: u64) -> Response<ResponseBody> {
    let mut response = local_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("payload too large: this service accepts request bodies up to {limit} bytes"),
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

fn connect_failure(
    version: &Version,
    error: ConnectError,
    started: Instant,
) -> Response<ResponseBody> {
    match error {
        ConnectError::TimedOut { .. } => {
            record(version, Outcome::Timeout, started);
            local_response(
                StatusCode::GATEWAY_TIMEOUT,
                "gateway timeout: connecting to the upstream timed out",
            )
        }
        ConnectError::Failed { .. } | ConnectError::Handshake { .. } => {
            record(version, Outcome::ConnectFailure, started);
            local_response(
                StatusCode::BAD_GATEWAY,
                "bad gateway: the upstream refused the connection",
            )
        }
    }
}

pub(crate) fn record(version: &Version, outcome: Outcome, started: Instant) {
    version
        .stats()
        .record(Instant::now().into_std(), outcome, started.elapsed());
}
