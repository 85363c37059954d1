//! Schema migrations: the lint half. It reads PostgreSQL migration files,
//! parses them with PostgreSQL's own parser (libpg_query, through the
//! `pg_query` crate) and reports the statements that would lock a busy
//! table, rewrite it, or break the version of the app still running while a
//! deploy's old and new code share one database, each with the safe
//! multi-step way to do the same change.
//!
//! This half must not connect to a database or run any SQL: it judges files
//! only, so it runs in CI, in a deploy's preflight and on a laptop alike.
//! Rules are pure functions of one parsed statement and what the file said
//! before it ([`rules`]); this crate prints nothing itself, it returns
//! [`Diagnostic`]s and renders them on request ([`render`]).
#![deny(missing_docs)]

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

pub use diagnostic::Diagnostic;
pub use error::LintError;
pub use format::{Format, render};
pub use level::Level;
pub use lint::{Report, lint_paths, lint_source, lint_sources};
pub use migration_files::migration_files;
pub use options::LintOptions;
pub use phase::Phase;
pub use rule::{Concern, Rule};
