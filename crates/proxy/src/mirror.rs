//! A mirrored copy of one request: sent to the shadowed candidate in a task
//! of its own, so the client's exchange with the stable version neither
//! waits for it nor sees its answer; then the two answers are compared.

use std::sync::Arc;
use std::time::Duration;

use baton_telemetry::Outcome;
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::BodyExt;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::admission::Admitted;
use crate::forward::{Chosen, choose, record, send};
use crate::limits::Limits;
use crate::request_body::UpstreamBody;
use crate::response_body::{Exchange, ResponseBody};
use crate::shadow::{Answer, MAX_MIRRORS_IN_FLIGHT, SHADOW_HEADER, answers_differ};
use crate::target::Target;
use crate::version::Version;

/// Where the stable version's answer to the original goes, for the copy's
/// comparison. Dropped unsent when stable failed: the candidate is then not
/// judged on that request.
pub(crate) struct StableAnswer(oneshot::Sender<Answer>);

impl StableAnswer {
    /// Hands over stable's answer to the original request.
    pub(crate) fn send(self, answer: Answer) {
        // The copy may have given up already (its candidate left the route).
        let _ = self.0.send(answer);
    }
}

/// Sends a copy of the request whose upstream head is `method`, `uri` and
/// `headers` (no body) to `candidate`, unless the candidate has left the
/// route or is already answering as many copies as it may. Returns where to
/// put stable's answer once it has come.
pub(crate) fn start(
    candidate: Arc<Version>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    limits: &Limits,
) -> Option<StableAnswer> {
    if candidate.in_flight() >= MAX_MIRRORS_IN_FLIGHT {
        return None;
    }
    let admitted = candidate.admission().enter()?;
    let mut headers = headers.clone();
    headers.insert(SHADOW_HEADER.clone(), HeaderValue::from_static("1"));
    let copy = Copy {
        candidate,
        admitted,
        method: method.clone(),
        uri: uri.clone(),
        headers,
        connect_timeout: limits.connect_timeout,
        response_header_timeout: limits.response_header_timeout,
    };
    let (stable_answer, stable_answered) = oneshot::channel();
    tokio::spawn(copy.run(stable_answered));
    Some(StableAnswer(stable_answer))
}

/// A copy on its way to the candidate.
struct Copy {
    candidate: Arc<Version>,
    // Held until the copy's answer is read, so the candidate's drain waits
    // for its copies as it waits for live requests.
    admitted: Admitted,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    connect_timeout: Duration,
    response_header_timeout: Duration,
}

impl Copy {
    async fn run(self, stable_answered: oneshot::Receiver<Answer>) {
        let candidate = Arc::clone(&self.candidate);
        let answer = self.exchange().await;
        if let Ok(stable) = stable_answered.await {
            candidate
                .mirror_stats()
                .record(Instant::now().into_std(), answers_differ(stable, answer));
        }
    }

    /// Sends the copy and reads the candidate's whole answer, counting it in
    /// the candidate's request numbers like a live request.
    async fn exchange(self) -> Answer {
        let Copy {
            candidate,
            admitted,
            method,
            uri,
            headers,
            connect_timeout,
            response_header_timeout,
        } = self;
        let started = Instant::now();
        let Ok(Chosen {
            mut target,
            mut connection,
        }) = choose(&candidate, connect_timeout).await
        else {
            // `choose` counted the failure.
            return failed(Outcome::ConnectFailure, started);
        };
        let replay = (connection.reused() && method.is_idempotent())
            .then(|| (method.clone(), uri.clone(), headers.clone()));
        let mut request = Request::new(UpstreamBody::Empty);
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        target.start();
        let sent = tokio::time::timeout(
            response_header_timeout,
            send(
                &candidate,
                &mut target,
                &mut connection,
                request,
                replay,
                connect_timeout,
            ),
        )
        .await;
        let response = match sent {
            Ok(Ok(response)) => response,
            Ok(Err(_)) => return unanswered(&candidate, &target, Outcome::UpstreamError, started),
            Err(_) => return unanswered(&candidate, &target, Outcome::Timeout, started),
        };
        let latency = started.elapsed();
        let status = response.status().as_u16();
        let exchange = Exchange::new(
            admitted,
            candidate,
            target,
            Some(connection),
            status,
            latency,
        );
        let mut body = ResponseBody::upstream(response.into_body(), exchange);
        // Read to the end, so the connection can serve the next copy; an
        // answer that streams on (server-sent events) is cut after the
        // response timeout rather than held forever.
        let _ = tokio::time::timeout(response_header_timeout, async {
            while let Some(Ok(_)) = body.frame().await {}
        })
        .await;
        Answer {
            outcome: Outcome::Status(status),
            latency,
        }
    }
}

/// Counts a copy the candidate took but did not answer.
fn unanswered(candidate: &Version, target: &Target, outcome: Outcome, started: Instant) -> Answer {
    target.finish();
    record(candidate, outcome, started);
    failed(outcome, started)
}

fn failed(outcome: Outcome, started: Instant) -> Answer {
    Answer {
        outcome,
        latency: started.elapsed(),
    }
}
