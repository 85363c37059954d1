//! One finding in one file.

use serde::Serialize;

use crate::Level;

/// One finding: where it is, which rule, what goes wrong and the safe way.
/// Serialized as one element of the `json` format's array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The file as it was named to the lint.
    pub file: String,
    /// 1-based line of the statement (or the part of it) at fault.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The rule's stable kebab-case name (`drop-column`, `syntax-error`).
    pub rule: &'static str,
    /// Whether it fails the lint.
    pub level: Level,
    /// What goes wrong: which lock, a rewrite, or how the old code breaks.
    pub message: String,
    /// The safe way to make the same change.
    pub help: String,
    /// The text of `line`, for the human format's excerpt.
    #[serde(skip)]
    pub source_line: String,
}
