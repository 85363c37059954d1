//! What a lint run is told about the target server and the runner.

/// Settings of one lint run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintOptions {
    /// The major version of the PostgreSQL server the migrations will run
    /// on. Some changes are cheap only from a version on (a constant default
    /// is metadata-only from 11).
    pub pg_version: u32,
    /// Whether each file must `SET lock_timeout` itself before its first
    /// locking statement (rule `missing-lock-timeout`). Off by default
    /// because baton's migration runner sets `lock_timeout` around every
    /// migration; turn it on for files that another tool runs.
    pub require_lock_timeout: bool,
}

impl LintOptions {
    /// The server version assumed when none is given: the oldest release
    /// still commonly deployed that has every feature the safe forms need.
    pub const DEFAULT_PG_VERSION: u32 = 15;
}

impl Default for LintOptions {
    fn default() -> Self {
        LintOptions {
            pg_version: Self::DEFAULT_PG_VERSION,
            require_lock_timeout: false,
        }
    }
}
