//! State shared by every request handler.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::http::HeaderValue;

use crate::{config::Config, drain::Drain};

/// What the handlers share; the router holds it in an `Arc`.
pub struct AppState {
    pub version: String,
    /// `X-Version` value, built once.
    pub version_header: HeaderValue,
    healthy: AtomicBool,
    requests: AtomicU64,
    pub drain: Drain,
}

impl AppState {
    pub fn new(config: &Config, drain: Drain) -> Self {
        Self {
            version: config.version.clone(),
            version_header: config.version_header.clone(),
            healthy: AtomicBool::new(config.healthy),
            requests: AtomicU64::new(0),
            drain,
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    /// Counts one request that reached the app.
    pub fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}
