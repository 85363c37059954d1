//! Keep-alive HTTP/1.1 connections to one upstream target.
//!
//! The pool is ours rather than hyper-util's so that connecting is a step of
//! its own (a refused connect can be retried on another target before the
//! request body is touched) and so that a draining version can close its idle
//! connections at once.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::request_body::UpstreamBody;
use crate::workers::{current_slot, slot_count};

/// Idle connections kept per target; more are closed when returned.
const MAX_IDLE: usize = 512;
/// An idle connection older than this is closed rather than reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why no connection to the target could be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The target refused or the network failed.
    #[error("connecting to {address} failed: {source}")]
    Failed {
        /// The target.
        address: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The connect did not finish within the connect timeout.
    #[error("connecting to {address} timed out after {timeout:?}")]
    TimedOut {
        /// The target.
        address: SocketAddr,
        /// The connect timeout.
        timeout: Duration,
    },
    /// The HTTP/1.1 handshake failed.
    #[error("starting HTTP/1.1 with {address} failed: {source}")]
    Handshake {
        /// The target.
        address: SocketAddr,
        /// What hyper said.
        source: hyper::Error,
    },
}

struct IdleConnection {
    sender: http1::SendRequest<UpstreamBody>,
    idle_since: Instant,
}

/// The keep-alive connections of one target.
pub struct UpstreamPool {
    address: SocketAddr,
    // One idle list per worker thread: a connection's task lives on the
    // worker that opened it, so only that worker reuses it.
    idle: Box<[Mutex<Vec<IdleConnection>>]>,
    closed: AtomicBool,
    opened: AtomicU64,
    /// Failed connects, counted here because every connect to the target
    /// passes through the pool, the ones a retry on another target hides
    /// from the request's outcome included.
    connect_errors: AtomicU64,
}

/// A connection taken from the pool (or newly opened); give it back with
/// [`PooledConnection::release`] once its response body has been read.
pub struct PooledConnection {
    sender: http1::SendRequest<UpstreamBody>,
    reused: bool,
}

impl UpstreamPool {
    /// An empty pool for `address`.
    pub fn new(address: SocketAddr) -> Self {
        UpstreamPool {
            address,
            idle: (0..slot_count()).map(|_| Mutex::new(Vec::new())).collect(),
            closed: AtomicBool::new(false),
            opened: AtomicU64::new(0),
            connect_errors: AtomicU64::new(0),
        }
    }

    /// The most recently used idle connection that is still open, if any.
    pub fn checkout(&self) -> Option<PooledConnection> {
        let now = Instant::now();
        let mut idle = self.idle[current_slot() % self.idle.len()]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        while let Some(candidate) = idle.pop() {
            if !candidate.sender.is_closed()
                && now.duration_since(candidate.idle_since) < IDLE_TIMEOUT
            {
                return Some(PooledConnection {
                    sender: candidate.sender,
                    reused: true,
                });
            }
        }
        None
    }

    /// Opens a new connection.
    pub async fn connect(&self, timeout: Duration) -> Result<PooledConnection, ConnectError> {
        let connected = self.try_connect(timeout).await;
        if connected.is_err() {
            self.connect_errors.fetch_add(1, Ordering::Relaxed);
        }
        connected
    }

    async fn try_connect(&self, timeout: Duration) -> Result<PooledConnection, ConnectError> {
        let address = self.address;
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => return Err(ConnectError::Failed { address, source }),
            Err(_) => return Err(ConnectError::TimedOut { address, timeout }),
        };
        // Small responses must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|source| ConnectError::Handshake { address, source })?;
        tokio::spawn(async move {
            if let Err(error) = connection.with_upgrades().await {
                tracing::debug!(%error, "Upstream connection ended with an error");
            }
        });
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(PooledConnection {
            sender,
            reused: false,
        })
    }

    /// Keeps `connection` for the next request. Call it only after a
    /// response ended cleanly: the connection may still be finishing that
    /// exchange (hyper marks it ready a moment later), which the next user's
    /// `ready().await` absorbs.
    pub fn release(&self, connection: PooledConnection) {
        if self.closed.load(Ordering::Acquire) || connection.sender.is_closed() {
            return;
        }
        let mut idle = self.idle[current_slot() % self.idle.len()]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(IdleConnection {
                sender: connection.sender,
                idle_since: Instant::now(),
            });
        }
    }

    /// Closes every idle connection and every connection returned from now on.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let drained: Vec<_> = self
            .idle
            .iter()
            .flat_map(|slot| {
                let mut idle = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                idle.drain(..).collect::<Vec<_>>()
            })
            .collect();
        drop(drained);
    }

    /// Idle connections held now.
    pub fn idle_count(&self) -> usize {
        self.idle
            .iter()
            .map(|slot| {
                slot.lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .len()
            })
            .sum()
    }

    /// Connections opened since the pool was made.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Connects that failed (refused, timed out, broken handshake) since the
    /// pool was made.
    pub fn connect_errors(&self) -> u64 {
        self.connect_errors.load(Ordering::Relaxed)
    }
}

impl PooledConnection {
    /// Whether the connection served a request before.
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// The sender to write a request on.
    pub fn sender(&mut self) -> &mut http1::SendRequest<UpstreamBody> {
        &mut self.sender
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failed_connects_are_counted() {
        // A port that was just free refuses connections.
        let address = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("address")
        };
        let pool = UpstreamPool::new(address);
        let refused = pool.connect(Duration::from_secs(5)).await;
        assert!(matches!(refused, Err(ConnectError::Failed { .. })));
        assert_eq!((pool.connect_errors(), pool.opened()), (1, 0));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let pool = UpstreamPool::new(listener.local_addr().expect("address"));
        assert!(pool.connect(Duration::from_secs(5)).await.is_ok());
        assert_eq!((pool.connect_errors(), pool.opened()), (0, 1));
    }
}
