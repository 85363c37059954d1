//! `create-index-not-concurrently`: writes wait for the whole build.

use pg_query::NodeEnum;

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::statement::Statement;
use crate::table_name::TableName;

pub(crate) const RULE: Rule = Rule {
    name: "create-index-not-concurrently",
    concern: Concern::Lock,
    summary: "holds a SHARE lock that blocks every write for the whole index build",
    help: "Use CREATE INDEX CONCURRENTLY (writes go on; baton runs a file that uses CONCURRENTLY statement by statement, outside a transaction). If it fails it leaves an INVALID index: drop it and retry.",
    check,
};

fn check(statement: &Statement<'_>, _: &Context<'_>) -> Vec<Hit> {
    match statement.node() {
        NodeEnum::IndexStmt(index) if !index.concurrent => {
            let Some(relation) = &index.relation else {
                return Vec::new();
            };
            let table = TableName::from_range_var(relation);
            vec![
                Hit::new(format!(
                    "creating an index on `{table}` without CONCURRENTLY holds a SHARE lock: every INSERT, UPDATE and DELETE on `{table}` waits until the index is built"
                ))
                .on(&table),
            ]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::firing::fires;

    const RULE: &str = "create-index-not-concurrently";

    #[test]
    fn flags_a_plain_create_index() {
        assert!(fires(RULE, "CREATE INDEX users_email ON users (email);"));
        assert!(fires(
            RULE,
            "CREATE UNIQUE INDEX users_email ON users (email);"
        ));
    }

    #[test]
    fn passes_concurrently_and_on_a_table_created_in_the_same_file() {
        assert!(!fires(
            RULE,
            "CREATE INDEX CONCURRENTLY users_email ON users (email);"
        ));
        assert!(!fires(
            RULE,
            "CREATE TABLE t (a int);\nCREATE INDEX t_a ON t (a);"
        ));
    }
}
