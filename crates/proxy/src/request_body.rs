//! The request body sent upstream: the client's body streamed through, with
//! its first frame read ahead (so a malformed body is refused before anything
//! reaches the upstream) and the service's size limit enforced.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

/// Why the client's body stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFault {
    /// Larger than the service allows.
    TooLarge,
    /// Malformed (bad chunked encoding) or cut off.
    Malformed,
}

/// Shared with the request path so it can tell a client fault from an
/// upstream fault when sending fails.
#[derive(Debug, Default)]
pub struct BodyFaultFlag(AtomicU8);

impl BodyFaultFlag {
    fn set(&self, fault: BodyFault) {
        let code = match fault {
            BodyFault::TooLarge => 1,
            BodyFault::Malformed => 2,
        };
        self.0.store(code, Ordering::Release);
    }

    /// The fault seen, if any.
    pub fn get(&self) -> Option<BodyFault> {
        match self.0.load(Ordering::Acquire) {
            1 => Some(BodyFault::TooLarge),
            2 => Some(BodyFault::Malformed),
            _ => None,
        }
    }
}

/// The error the upstream connection sees when the client's body fails.
#[derive(Debug, thiserror::Error)]
#[error("the client's request body failed: {0:?}")]
pub struct ClientBodyError(pub BodyFault);

/// A request body bound for an upstream.
pub enum UpstreamBody {
    /// No body.
    Empty,
    /// The client's body.
    Client(ClientBody),
}

/// The client's body with its first frame already read.
pub struct ClientBody {
    first: Option<Frame<Bytes>>,
    inner: Incoming,
    limit: Option<u64>,
    received: u64,
    fault: Arc<BodyFaultFlag>,
}

impl ClientBody {
    /// Wraps `inner`, whose first frame (already read) was `first`.
    pub fn new(
        first: Option<Frame<Bytes>>,
        inner: Incoming,
        limit: Option<u64>,
        fault: Arc<BodyFaultFlag>,
    ) -> Self {
        let received = first
            .as_ref()
            .and_then(Frame::data_ref)
            .map_or(0, |data| data.len() as u64);
        ClientBody {
            first,
            inner,
            limit,
            received,
            fault,
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        let body = match self.get_mut() {
            UpstreamBody::Empty => return Poll::Ready(None),
            UpstreamBody::Client(body) => body,
        };
        if let Some(first) = body.first.take() {
            return Poll::Ready(Some(Ok(first)));
        }
        match Pin::new(&mut body.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    body.received += data.len() as u64;
                    if body.limit.is_some_and(|limit| body.received > limit) {
                        body.fault.set(BodyFault::TooLarge);
                        return Poll::Ready(Some(Err(ClientBodyError(BodyFault::TooLarge))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(_))) => {
                body.fault.set(BodyFault::Malformed);
                Poll::Ready(Some(Err(ClientBodyError(BodyFault::Malformed))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamBody::Empty => true,
            UpstreamBody::Client(body) => body.first.is_none() && body.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamBody::Empty => SizeHint::with_exact(0),
            UpstreamBody::Client(body) => {
                let ahead = body
                    .first
                    .as_ref()
                    .and_then(Frame::data_ref)
                    .map_or(0, |data| data.len() as u64);
                let inner = body.inner.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(inner.lower() + ahead);
                if let Some(upper) = inner.upper() {
                    hint.set_upper(upper + ahead);
                }
                hint
            }
        }
    }
}
