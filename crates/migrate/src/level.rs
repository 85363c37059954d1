//! How bad a finding is.

use serde::Serialize;

/// How bad a finding is: an error fails the lint (exit status 1), a warning
/// is printed and passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Fails the lint: the statement can stall or break production.
    Error,
    /// Printed, but the lint passes: a choice that costs later.
    Warning,
}

impl Level {
    /// The word used in every output format: `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
        }
    }
}
