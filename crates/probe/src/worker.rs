//! One worker: takes the next request slot from the shared schedule, sends
//! one request on its connection (or the shared HTTP/2 one), reads the
//! whole response, counts what happened, and repeats until the schedule
//! says stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::header::CONNECTION;
use http::{HeaderMap, Request, Response, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until, timeout_at};

use crate::config::Plan;
use crate::connection::{Body, Connector, Http1Conn, SharedHttp2};
use crate::outcome::{
    Outcome, classify_error, classify_status, connection_going_away, describe, never_processed,
};
use crate::report::{Exchange, Tally};

/// What all workers of a run share.
pub(crate) struct Shared {
    pub plan: Plan,
    pub connector: Connector,
    pub http2: SharedHttp2,
    pub schedule: Schedule,
}

/// When requests may start: before the deadline, within the request budget,
/// and (with a rate) not before their slot.
pub(crate) struct Schedule {
    start: Instant,
    deadline: Instant,
    rate: Option<f64>,
    limit: Option<u64>,
    issued: AtomicU64,
}

impl Schedule {
    /// A schedule from `start` until `deadline`.
    pub fn new(start: Instant, deadline: Instant, rate: Option<f64>, limit: Option<u64>) -> Self {
        Self {
            start,
            deadline,
            rate,
            limit,
            issued: AtomicU64::new(0),
        }
    }

    /// Waits for the next request slot; false when the run is over (the
    /// deadline passed, the budget is spent or `stop` was raised).
    pub async fn next(&self, stop: &mut watch::Receiver<bool>) -> bool {
        if *stop.borrow() {
            return false;
        }
        let n = self.issued.fetch_add(1, Ordering::Relaxed);
        if self.limit.is_some_and(|limit| n >= limit) {
            return false;
        }
        if let Some(rate) = self.rate {
            let Ok(offset) = Duration::try_from_secs_f64(n as f64 / rate) else {
                return false;
            };
            let at = self.start + offset;
            if at >= self.deadline {
                return false;
            }
            tokio::select! {
                () = sleep_until(at) => {}
                Ok(_) = stop.wait_for(|stopped| *stopped) => return false,
            }
        }
        Instant::now() < self.deadline && !*stop.borrow()
    }
}

/// Runs one worker until the schedule ends, and returns its counts.
pub(crate) async fn work(
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    mut tally: Tally,
) -> Tally {
    let mut connection = None;
    while shared.schedule.next(&mut stop).await {
        let exchange = if shared.plan.http2 {
            http2_request(&shared).await
        } else {
            http1_request(&shared, &mut connection).await
        };
        tally.record(exchange);
    }
    tally
}

fn request(plan: &Plan) -> Request<Body> {
    let mut request = Request::new(Full::new(plan.body.clone()));
    *request.method_mut() = plan.method.clone();
    *request.uri_mut() = plan.request_uri.clone();
    *request.version_mut() = plan.version;
    *request.headers_mut() = plan.headers.clone();
    request
}

fn timed_out(plan: &Plan) -> Exchange {
    Exchange::failed(
        Outcome::Timeout,
        format!("no complete response within {:?}", plan.timeout),
    )
}

fn connect_timed_out(plan: &Plan) -> Exchange {
    Exchange::failed(
        Outcome::Connect,
        format!("no connection within {:?}", plan.timeout),
    )
}

fn failed(error: &hyper::Error) -> Exchange {
    Exchange::failed(classify_error(error), describe(error))
}

/// One request over HTTP/1.1 on the worker's own connection (kept in
/// `slot` for the next request when keep-alive allows).
async fn http1_request(shared: &Shared, slot: &mut Option<Http1Conn>) -> Exchange {
    let plan = &shared.plan;
    let started = Instant::now();
    let deadline = started + plan.timeout;
    let mut conn = match slot.take() {
        Some(conn) if !conn.sender.is_closed() => conn,
        _ => match timeout_at(deadline, shared.connector.http1()).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Exchange::failed(Outcome::Connect, describe(&e)),
            Err(_) => return connect_timed_out(plan),
        },
    };
    // No silent retry on HTTP/1.1: a keep-alive connection the server
    // closed under a request is exactly the failure a client that does not
    // retry sees, and the probe exists to count it.
    match timeout_at(deadline, conn.sender.ready()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return failed(&e),
        Err(_) => return timed_out(plan),
    }
    let response = match timeout_at(deadline, conn.sender.try_send_request(request(plan))).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => return failed(&e.into_error()),
        Err(_) => return timed_out(plan),
    };
    let keep = plan.keepalive && !wants_close(response.version(), response.headers());
    let (exchange, complete) = read_response(plan, response, started, deadline).await;
    if keep && complete {
        *slot = Some(conn);
    }
    exchange
}

/// One request over the shared HTTP/2 connection.
async fn http2_request(shared: &Shared) -> Exchange {
    let plan = &shared.plan;
    let started = Instant::now();
    let deadline = started + plan.timeout;
    let mut retried = false;
    loop {
        let mut conn = match timeout_at(deadline, shared.http2.get(&shared.connector)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Exchange::failed(Outcome::Connect, describe(&e)),
            Err(_) => return connect_timed_out(plan),
        };
        match timeout_at(deadline, conn.sender.ready()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = timeout_at(deadline, shared.http2.retire(conn.id)).await;
                if !retried {
                    retried = true;
                    continue;
                }
                return failed(&e);
            }
            Err(_) => return timed_out(plan),
        }
        match timeout_at(deadline, conn.sender.try_send_request(request(plan))).await {
            Ok(Ok(response)) => return read_response(plan, response, started, deadline).await.0,
            Ok(Err(mut e)) => {
                let unsent = e.take_message().is_some();
                let error = e.into_error();
                if unsent || connection_going_away(&error) {
                    let _ = timeout_at(deadline, shared.http2.retire(conn.id)).await;
                }
                if (unsent || never_processed(&error)) && !retried {
                    retried = true;
                    continue;
                }
                return failed(&error);
            }
            Err(_) => return timed_out(plan),
        }
    }
}

/// Reads the whole body of `response`; returns what happened and whether
/// the response was complete (so its HTTP/1.1 connection may be reused).
async fn read_response(
    plan: &Plan,
    response: Response<Incoming>,
    started: Instant,
    deadline: Instant,
) -> (Exchange, bool) {
    let status = response.status().as_u16();
    let header = plan
        .count_header
        .as_ref()
        .and_then(|name| header_value(response.headers(), name));
    let mut body = response.into_body();
    let mut exchange = Exchange {
        outcome: classify_status(status),
        status: Some(status),
        header,
        error: None,
        latency: None,
    };
    loop {
        match timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(_frame))) => {}
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                exchange.outcome = classify_error(&e);
                exchange.error = Some(format!(
                    "reading the {status} response body: {}",
                    describe(&e)
                ));
                return (exchange, false);
            }
            Err(_) => {
                exchange.outcome = Outcome::Timeout;
                exchange.error = Some(format!(
                    "{status} response body not complete within {:?}",
                    plan.timeout
                ));
                return (exchange, false);
            }
        }
    }
    exchange.latency = Some(started.elapsed());
    (exchange, true)
}

/// All values of header `name`, joined as one.
fn header_value(headers: &HeaderMap, name: &http::HeaderName) -> Option<String> {
    let values: Vec<_> = headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
        .collect();
    if values.is_empty() {
        None
    } else {
        Some(values.join(", "))
    }
}

/// Whether an HTTP/1.x response ends its connection (`Connection: close`,
/// or HTTP/1.0 without `keep-alive`).
fn wants_close(version: Version, headers: &HeaderMap) -> bool {
    let has = |token: &str| {
        headers.get_all(CONNECTION).iter().any(|value| {
            value.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    if has("close") {
        return true;
    }
    version == Version::HTTP_10 && !has("keep-alive")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn connection_close_is_recognised() {
        let mut headers = HeaderMap::new();
        assert!(!wants_close(Version::HTTP_11, &headers));
        assert!(wants_close(Version::HTTP_10, &headers));
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
        assert!(!wants_close(Version::HTTP_10, &headers));
        headers.insert(CONNECTION, HeaderValue::from_static("Upgrade, Close"));
        assert!(wants_close(Version::HTTP_11, &headers));
    }

    #[test]
    fn header_values_join() {
        let name = http::HeaderName::from_static("x-version");
        let mut headers = HeaderMap::new();
        assert_eq!(header_value(&headers, &name), None);
        headers.append(&name, HeaderValue::from_static("a"));
        assert_eq!(header_value(&headers, &name).as_deref(), Some("a"));
        headers.append(&name, HeaderValue::from_static("b"));
        assert_eq!(header_value(&headers, &name).as_deref(), Some("a, b"));
    }

    #[tokio::test(start_paused = true)]
    async fn schedule_honours_budget_and_deadline() {
        let (_tx, mut stop) = watch::channel(false);
        let start = Instant::now();
        let schedule = Schedule::new(start, start + Duration::from_secs(1), None, Some(3));
        let mut granted = 0;
        while schedule.next(&mut stop).await {
            granted += 1;
        }
        assert_eq!(granted, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn schedule_paces_to_the_rate() {
        let (_tx, mut stop) = watch::channel(false);
        let start = Instant::now();
        let schedule = Schedule::new(start, start + Duration::from_secs(1), Some(10.0), None);
        let mut granted = 0;
        while schedule.next(&mut stop).await {
            granted += 1;
        }
        // Slots at 0, 100, ..., 900 ms; the one at 1 s is past the deadline.
        assert_eq!(granted, 10);
        assert!(Instant::now() >= start + Duration::from_millis(900));
    }

    #[tokio::test(start_paused = true)]
    async fn schedule_stops_when_told() {
        let (tx, mut stop) = watch::channel(false);
        let start = Instant::now();
        let schedule = Schedule::new(start, start + Duration::from_secs(100), Some(1.0), None);
        assert!(schedule.next(&mut stop).await);
        let stopper = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let _ = tx.send(true);
            tx
        });
        assert!(!schedule.next(&mut stop).await);
        assert!(Instant::now() < start + Duration::from_secs(1));
        drop(stopper.await);
    }
}
