//! The proxy's limits and timeouts.

use std::time::Duration;

/// Limits every connection and request obeys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest request head (request line and headers), in bytes.
    pub max_header_size: usize,
    /// Longest a client may take to send a request head (slowloris).
    pub header_read_timeout: Duration,
    /// Longest a connect to an upstream may take.
    pub connect_timeout: Duration,
    /// Longest an upstream may take to send its response head.
    pub response_header_timeout: Duration,
    /// Largest request body when a service sets none; `None` = unlimited.
    pub max_request_body: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_size: 64 * 1024,
            header_read_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            response_header_timeout: Duration::from_secs(60),
            max_request_body: None,
        }
    }
}
