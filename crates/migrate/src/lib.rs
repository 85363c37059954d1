//! Schema migrations for PostgreSQL, in two halves that share one reading
//! of the SQL (PostgreSQL's own parser, libpg_query, through the
//! `pg_query` crate): how a file splits into statements and what its
//! `-- baton:` comments say.
//!
//! **The lint** reads migration files and reports the statements that
//! would lock a busy table, rewrite it, or break the version of the app
//! still running while a deploy's old and new code share one database,
//! each with the safe multi-step way to do the same change. It never
//! connects to a database or runs any SQL: it judges files only, so it
//! runs in CI, in a deploy's preflight and on a laptop alike. Rules are
//! pure functions of one parsed statement and what the file said before it
//! ([`rules`]); the lint prints nothing itself, it returns [`Diagnostic`]s
//! and renders them on request ([`render`]).
//!
//! **The runner** applies the files of a directory to a database in their
//! deploy phase ([`Phase`]): expand before the new version boots, contract
//! once the old one has stopped. It is the only part that connects
//! ([`Runner`], with `tokio-postgres`); its decisions are pure functions
//! tested without a database: which files are pending in a phase and
//! whether an applied file changed ([`pending`], [`statuses`]), how a file
//! runs ([`MigrationFile`]: one transaction, or statement by statement when
//! it uses CONCURRENTLY), what is retried and how long to wait
//! ([`RetryPolicy`]), and where the database URL comes from
//! ([`resolve_database_url`]).
#![deny(missing_docs)]

// The lint.
mod context;
mod diagnostic;
mod directive;
mod error;
mod format;
mod level;
mod lint;
mod migration_files;
mod options;
mod phase;
mod rule;
pub mod rules;
mod source_text;
mod statement;
mod syntax_error;
mod table_name;
mod type_name;
mod volatility;

// Shared by both halves: a file through the parser.
mod parsed_file;

// The runner.
mod applied;
mod database_url;
mod lock_retry;
mod migration_file;
mod progress;
mod run_error;
mod run_report;
mod run_settings;
mod runner;

pub use diagnostic::Diagnostic;
pub use error::LintError;
pub use format::{Format, render};
pub use level::Level;
pub use lint::{Report, lint_paths, lint_source, lint_sources};
pub use migration_files::migration_files;
pub use options::LintOptions;
pub use phase::Phase;
pub use rule::{Concern, Rule};

pub use applied::{AppliedMigration, MigrationStatus, pending, statuses};
pub use database_url::{
    DEFAULT_DATABASE_URL_ENV, DatabaseUrl, UrlSource, redacted, resolve_database_url,
};
pub use lock_retry::{DEADLOCK_DETECTED, LOCK_NOT_AVAILABLE, RetryPolicy, is_retryable};
pub use migration_file::{IndexBuild, MigrationFile, MigrationStatement, checksum};
pub use progress::Progress;
pub use run_error::RunError;
pub use run_report::{AppliedNow, RunReport};
pub use run_settings::RunSettings;
pub use runner::{LOCK_KEY, ProgressSink, Runner};
