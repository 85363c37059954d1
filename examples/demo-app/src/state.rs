//! State shared by every request handler.

use std::{
    collections::BTreeMap,
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::http::HeaderValue;

use crate::{config::Config, database::Database, drain::Drain, error_rate::ErrorRate};

/// What the handlers share; the router holds it in an `Arc`.
pub struct AppState {
    pub version: String,
    /// `X-Version` value, built once.
    pub version_header: HeaderValue,
    healthy: AtomicBool,
    requests: AtomicU64,
    /// Shadow copies (`X-Baton-Shadow: 1`) so far, by method.
    shadow_requests: Mutex<BTreeMap<String, u64>>,
    /// Requests to `/` so far; `ERROR_RATE` picks its failures by this count.
    root_requests: AtomicU64,
    pub error_rate: ErrorRate,
    /// `SLOW_MS`: delay before every answer from `/`.
    pub slow: Duration,
    pub drain: Drain,
    /// `DATABASE_URL`'s connection, for `/visit`.
    pub database: Option<Database>,
}

impl AppState {
    pub fn new(config: &Config, drain: Drain, database: Option<Database>) -> Self {
        Self {
            version: config.version.clone(),
            version_header: config.version_header.clone(),
            healthy: AtomicBool::new(config.healthy),
            requests: AtomicU64::new(0),
            shadow_requests: Mutex::default(),
            root_requests: AtomicU64::new(0),
            error_rate: config.error_rate,
            slow: config.slow,
            drain,
            database,
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

    /// Counts one shadow copy with `method`.
    pub fn count_shadow_request(&self, method: &str) {
        let mut counts = self
            .shadow_requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *counts.entry(method.to_string()).or_default() += 1;
    }

    /// Shadow copies so far, by method.
    pub fn shadow_requests(&self) -> BTreeMap<String, u64> {
        self.shadow_requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Counts one request to `/` and says whether it should answer 500.
    pub fn root_request_fails(&self) -> bool {
        let n = self.root_requests.fetch_add(1, Ordering::Relaxed) + 1;
        self.error_rate.fails(n)
    }
}
