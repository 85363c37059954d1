//! The response body sent to the client: an upstream body streamed through
//! (its request counted until the last byte), or a short answer of our own.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use baton_telemetry::Outcome;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::admission::Admitted;
use crate::target::Target;
use crate::upstream_pool::PooledConnection;
use crate::version::Version;

/// Everything one upstream exchange holds until its body is done: the
/// admission (so drains wait for it), the target's in-flight count, and the
/// connection (back to the pool only after a clean end).
pub struct Exchange {
    _admitted: Admitted,
    version: Arc<Version>,
    target: Arc<Target>,
    connection: Option<PooledConnection>,
    status: u16,
    latency: Duration,
    finished: bool,
}

impl Exchange {
    /// An exchange whose response head arrived after `latency`.
    pub fn new(
        admitted: Admitted,
        version: Arc<Version>,
        target: Arc<Target>,
        connection: Option<PooledConnection>,
        status: u16,
        latency: Duration,
    ) -> Self {
        Exchange {
            _admitted: admitted,
            version,
            target,
            connection,
            status,
            latency,
            finished: false,
        }
    }

    fn finish(&mut self, outcome: Outcome, reuse: bool) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        self.version
            .stats()
            .record(Instant::now().into_std(), outcome, self.latency);
        self.target.finish();
        if let Some(connection) = self.connection.take()
            && reuse
        {
            self.target.pool().release(connection);
        }
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        // The client went away before the end: not the upstream's fault.
        self.finish(Outcome::Status(self.status), false);
    }
}

/// A body the proxy sends to a client.
pub enum ResponseBody {
    /// Streamed from an upstream.
    Upstream {
        /// The upstream body.
        body: Incoming,
        /// What ends with it.
        exchange: Exchange,
    },
    /// Written by the proxy.
    Local(Option<Bytes>),
}

impl ResponseBody {
    /// A body streamed from an upstream; an empty one ends its exchange now,
    /// since nobody will poll it.
    pub fn upstream(body: Incoming, mut exchange: Exchange) -> Self {
        if body.is_end_stream() {
            exchange.finish(Outcome::Status(exchange.status), true);
        }
        ResponseBody::Upstream { body, exchange }
    }

    /// A body of our own.
    pub fn local(text: impl Into<Bytes>) -> Self {
        ResponseBody::Local(Some(text.into()))
    }

    /// No body.
    pub fn empty() -> Self {
        ResponseBody::Local(None)
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ResponseBody::Local(bytes) => {
                Poll::Ready(bytes.take().map(|bytes| Ok(Frame::data(bytes))))
            }
            ResponseBody::Upstream { body, exchange } => {
                let polled = Pin::new(&mut *body).poll_frame(cx);
                match &polled {
                    Poll::Ready(None) => exchange.finish(Outcome::Status(exchange.status), true),
                    Poll::Ready(Some(Err(_))) => exchange.finish(Outcome::UpstreamError, false),
                    Poll::Ready(Some(Ok(_))) if body.is_end_stream() => {
                        exchange.finish(Outcome::Status(exchange.status), true);
                    }
                    _ => {}
                }
                polled
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Local(bytes) => bytes.is_none(),
            ResponseBody::Upstream { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Local(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            ResponseBody::Local(None) => SizeHint::with_exact(0),
            ResponseBody::Upstream { body, .. } => body.size_hint(),
        }
    }
}
