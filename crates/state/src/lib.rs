//! Persistence of the daemon's state in `$BATON_STATE_DIR/state.db`: routed
//! services, deployed apps with their releases, deploy history and
//! supervised processes, feature flags with their revision and audit, and
//! minute rollups of each version's traffic.
//!
//! An embedded SQLite database in WAL mode. Every change is one transaction,
//! so a `kill -9` at any instant leaves a file that loads and holds either
//! the whole change or none of it. The schema is versioned with
//! `PRAGMA user_version` and upgraded by ordered migrations on open; a file
//! from a newer baton is refused, never rewritten.
//!
//! This crate stores and loads records; it must not do networking, must not
//! be async (callers on tokio use `spawn_blocking` or call directly: calls
//! are short), and must not make routing or deploy decisions (which version
//! gets a request, when to pause or promote, which release to roll back to):
//! it keeps what it is told, verbatim.

#![deny(missing_docs)]

mod app_records;
mod app_store;
mod error;
mod flag_records;
mod flag_store;
mod records;
mod rollup_records;
mod rollup_store;
mod schema;
mod store;

#[cfg(all(test, unix))]
mod crash_test;

pub use app_records::{AppRecord, DeployRecord, ProcessRecord, ReleaseRecord};
pub use error::StateError;
pub use flag_records::{
    FlagAuditRecord, FlagChange, FlagChangeOutcome, FlagRecord, FlagSetRecord, SegmentRecord,
};
pub use records::{
    Balance, FlagInjection, PauseRecord, ServiceOptions, ServiceRecord, VersionRecord,
};
pub use rollup_records::RollupRecord;
pub use schema::SCHEMA_VERSION;
pub use store::Store;
