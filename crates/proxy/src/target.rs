//! One upstream address of a version, with its health and connections.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::upstream_pool::UpstreamPool;

/// An upstream `host:port` serving one version.
pub struct Target {
    address: String,
    socket_address: SocketAddr,
    healthy: AtomicBool,
    in_flight: AtomicU64,
    pool: UpstreamPool,
}

impl Target {
    /// A target not yet known to be healthy.
    pub fn new(address: String, socket_address: SocketAddr) -> Self {
        Target {
            address,
            socket_address,
            healthy: AtomicBool::new(false),
            in_flight: AtomicU64::new(0),
            pool: UpstreamPool::new(socket_address),
        }
    }

    /// The address as the user wrote it.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The resolved socket address.
    pub fn socket_address(&self) -> SocketAddr {
        self.socket_address
    }

    /// Whether the health checks pass.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// Records the health verdict.
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Release);
    }

    /// Requests in flight to this target.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts a request in; [`Target::finish`] counts it out.
    pub fn start(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request out.
    pub fn finish(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// The target's keep-alive connections.
    pub fn pool(&self) -> &UpstreamPool {
        &self.pool
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("address", &self.address)
            .field("healthy", &self.is_healthy())
            .field("in_flight", &self.in_flight())
            .finish()
    }
}
