//! What can stop a lint run before it judges anything.

use std::path::PathBuf;

/// A lint run could not read its input. Findings in the SQL are never
/// errors of this kind: they are [`crate::Diagnostic`]s.
#[derive(Debug, thiserror::Error)]
pub enum LintError {
    /// A path given to lint does not exist.
    #[error("{}: no such file or directory; give migration files or a directory of *.sql files", path.display())]
    NotFound {
        /// The path as given.
        path: PathBuf,
    },
    /// A directory could not be listed.
    #[error("cannot list the directory {}: {source}", path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A migration file could not be read as UTF-8 text.
    #[error("cannot read the migration {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}
