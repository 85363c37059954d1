//! Test support: which findings one rule reports on some SQL.

use crate::{Diagnostic, LintOptions, lint_source};

/// The findings of `rule` on `sql` with default options.
pub(crate) fn findings(rule: &str, sql: &str) -> Vec<Diagnostic> {
    findings_with(rule, sql, &LintOptions::default())
}

/// The findings of `rule` on `sql` with `options`.
pub(crate) fn findings_with(rule: &str, sql: &str, options: &LintOptions) -> Vec<Diagnostic> {
    let diagnostics = lint_source("test.sql", sql, options);
    assert!(
        diagnostics.iter().all(|d| d.rule != "syntax-error"),
        "test SQL does not parse: {diagnostics:?}"
    );
    diagnostics.into_iter().filter(|d| d.rule == rule).collect()
}

/// Whether `rule` reports anything on `sql` with default options.
pub(crate) fn fires(rule: &str, sql: &str) -> bool {
    !findings(rule, sql).is_empty()
}
