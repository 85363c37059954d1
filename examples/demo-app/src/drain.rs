//! Graceful shutdown bookkeeping: a flag that flips once when draining
//! starts, and a count of open WebSockets (which outlive the HTTP
//! connection they were upgraded from, so the server does not wait for them).

use std::sync::Arc;

use tokio::sync::watch;

/// Cheap to clone; every clone sees the same state.
#[derive(Clone)]
pub struct Drain {
    inner: Arc<Inner>,
}

struct Inner {
    started: watch::Sender<bool>,
    websockets: watch::Sender<usize>,
}

impl Drain {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                started: watch::Sender::new(false),
                websockets: watch::Sender::new(0),
            }),
        }
    }

    /// Starts draining; idempotent.
    pub fn start(&self) {
        self.inner.started.send_replace(true);
    }

    /// Resolves once draining has started.
    pub async fn started(&self) {
        let mut rx = self.inner.started.subscribe();
        // Cannot fail: `self` keeps the sender alive.
        let _ = rx.wait_for(|started| *started).await;
    }

    /// Registers an open WebSocket until the guard is dropped.
    pub fn track_websocket(&self) -> WebSocketGuard {
        self.inner.websockets.send_modify(|open| *open += 1);
        WebSocketGuard {
            drain: self.clone(),
        }
    }

    /// Resolves once no WebSocket is open.
    pub async fn websockets_closed(&self) {
        let mut rx = self.inner.websockets.subscribe();
        let _ = rx.wait_for(|open| *open == 0).await;
    }
}

/// Keeps one WebSocket counted as open.
pub struct WebSocketGuard {
    drain: Drain,
}

impl Drop for WebSocketGuard {
    fn drop(&mut self) {
        self.drain
            .inner
            .websockets
            .send_modify(|open| *open = open.saturating_sub(1));
    }
}
