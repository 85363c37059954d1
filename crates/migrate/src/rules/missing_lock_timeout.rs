//! `missing-lock-timeout`: a queued lock stalls every query behind it.

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::statement::Statement;

pub(crate) const RULE: Rule = Rule {
    name: "missing-lock-timeout",
    concern: Concern::Lock,
    summary: "without lock_timeout, DDL waiting for its lock stalls every query queued behind it",
    help: "Put `SET lock_timeout = '2s';` before the first statement and retry the migration when it times out. Off by default: baton's runner sets lock_timeout itself; `--require-lock-timeout` checks files that another tool runs.",
    check,
};

fn check(statement: &Statement<'_>, context: &Context<'_>) -> Vec<Hit> {
    // Reported once per file, at the first statement that needs it.
    if !context.options.require_lock_timeout
        || context.lock_timeout_set()
        || context.unguarded_lock_taken()
    {
        return Vec::new();
    }
    statement
        .locked_table()
        .map(|table| {
            Hit::new(format!(
                "this statement locks `{table}` with no lock_timeout set: if a long query or an idle transaction holds `{table}`, it waits in the lock queue, and every query on `{table}` queued after it waits too, so the app stalls"
            ))
            .on(&table)
        })
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::LintOptions;
    use crate::rules::firing::{findings, findings_with};

    const RULE: &str = "missing-lock-timeout";

    fn required() -> LintOptions {
        LintOptions {
            require_lock_timeout: true,
            ..LintOptions::default()
        }
    }

    #[test]
    fn flags_the_first_locking_statement_once_when_required() {
        let sql =
            "SELECT 1;\nALTER TABLE users ADD COLUMN a text;\nALTER TABLE users ADD COLUMN b text;";
        let found = findings_with(RULE, sql, &required());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].line, 2);
    }

    #[test]
    fn passes_after_set_lock_timeout_and_by_default() {
        let sql = "SET lock_timeout = '2s';\nALTER TABLE users ADD COLUMN a text;";
        assert!(findings_with(RULE, sql, &required()).is_empty());
        assert!(findings(RULE, "ALTER TABLE users ADD COLUMN a text;").is_empty());
        let off = "SET lock_timeout = 0;\nALTER TABLE users ADD COLUMN a text;";
        assert_eq!(findings_with(RULE, off, &required()).len(), 1);
        let new_table = "CREATE TABLE t (a int);\nALTER TABLE t ADD COLUMN b text;";
        assert!(findings_with(RULE, new_table, &required()).is_empty());
    }
}
