//! How long a migration may wait and run, and how often it is tried.

use std::time::Duration;

use crate::lock_retry::RetryPolicy;

/// The limits every migration of a run gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSettings {
    /// `SET lock_timeout`: the longest a statement waits for a lock, and
    /// so the longest the app's queries queue behind it.
    pub lock_timeout: Duration,
    /// `SET statement_timeout`: the longest one statement may run.
    pub statement_timeout: Duration,
    /// Tries and waits after a lock timeout or a deadlock.
    pub retry: RetryPolicy,
}

impl RunSettings {
    /// The default `lock_timeout`: short enough that the app barely
    /// notices a wait, long enough for a busy table's brief gaps.
    pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(2);
    /// The default `statement_timeout`: room for a large index build or
    /// backfill, a bound on a runaway one.
    pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(10 * 60);
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            lock_timeout: Self::DEFAULT_LOCK_TIMEOUT,
            statement_timeout: Self::DEFAULT_STATEMENT_TIMEOUT,
            retry: RetryPolicy::default(),
        }
    }
}
