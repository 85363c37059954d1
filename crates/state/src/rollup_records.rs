//! Minute rollups as stored: plain data, the latency buckets opaque bytes
//! whose encoding belongs to `baton-telemetry`.

use serde::{Deserialize, Serialize};

/// What one daemon counted for one version of one app in one minute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollupRecord {
    /// The app (the proxy's service name).
    pub app: String,
    /// The version's label.
    pub version: String,
    /// The start of the minute, unix epoch millis.
    pub minute_ms: u64,
    /// When the counts were read, unix epoch millis: about a minute after
    /// `minute_ms`, earlier for a daemon's last rollup before it stopped.
    pub until_ms: u64,
    /// Requests that finished.
    pub requests: u64,
    /// Of those, the ones that failed on the upstream's side.
    pub errors: u64,
    /// Their latencies in fixed buckets, encoded by the writer; kept
    /// verbatim.
    pub latency: Vec<u8>,
}
