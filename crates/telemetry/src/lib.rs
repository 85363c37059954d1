//! Request statistics for the proxy: per (service, version) counts by outcome
//! and latency quantiles over rolling windows of up to [`RETENTION`], plus
//! lifetime totals. The control API reads them for display; canary guardrails
//! read them for decisions ("error rate over the last 2 minutes").
//!
//! Recording sits on the proxy's hot path, so this crate must stay cheap and
//! passive:
//! - no I/O and no clock reading: every method takes the time as an
//!   [`std::time::Instant`] from the caller, which keeps the window arithmetic
//!   testable with fake instants;
//! - no async runtime and no background task: old data is recycled by the
//!   recording path itself;
//! - no allocation per request once traffic is steady, and no latency
//!   histogram at all for time slices that saw no traffic, so an idle daemon
//!   stays small.
//!
//! The stats for one version are a [`RequestStats`], shared as
//! `Arc<RequestStats>`; readers take a [`WindowSnapshot`] or [`Totals`].
//! A candidate being shadowed also keeps [`MirrorStats`]: how its answers to
//! mirrored requests compared with the stable version's.
//!
//! Beyond the windows, lifetime latencies are also counted in fixed
//! [`LatencyBuckets`], which subtract into per-minute [`rollup`]s that the
//! daemon persists, and which the Prometheus [`exposition`] shows as a
//! histogram.

#![deny(missing_docs)]

pub mod budget;
mod counts;
pub mod exposition;
mod latency;
mod latency_buckets;
mod mirror_stats;
mod outcome;
mod request_stats;
pub mod rollup;
mod seconds_histogram;
mod slice;
mod snapshot;
mod totals;
mod window;

pub use latency_buckets::{BOUNDS_MICROS, BUCKETS, BucketsDecodeError, LatencyBuckets};
pub use mirror_stats::{MirrorStats, MirrorWindow};
pub use outcome::Outcome;
pub use request_stats::RequestStats;
pub use seconds_histogram::SecondsHistogram;
pub use snapshot::WindowSnapshot;
pub use totals::Totals;
pub use window::{RETENTION, SLICE};
