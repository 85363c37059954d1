//! `drop-index-not-concurrently`: ACCESS EXCLUSIVE on the index's table.

use pg_query::NodeEnum;
use pg_query::protobuf::ObjectType;

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::statement::Statement;

pub(crate) const RULE: Rule = Rule {
    name: "drop-index-not-concurrently",
    concern: Concern::Lock,
    summary: "takes ACCESS EXCLUSIVE on the table, queued behind every running query",
    help: "Use DROP INDEX CONCURRENTLY, which waits for running queries without blocking new ones (baton runs a file that uses CONCURRENTLY outside a transaction).",
    check,
};

fn check(statement: &Statement<'_>, context: &Context<'_>) -> Vec<Hit> {
    match statement.node() {
        NodeEnum::DropStmt(drop) if drop.remove_type() == ObjectType::ObjectIndex && !drop.concurrent => statement
            .dropped_names()
            .into_iter()
            .map(|parts| {
                let index = parts.join(".");
                Hit::new(format!(
                    "dropping index `{index}` without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on its table: reads and writes queue behind it until every running query on the table has finished"
                ))
                .on_table(parts.last().and_then(|name| context.index_table(name)))
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::firing::fires;

    const RULE: &str = "drop-index-not-concurrently";

    #[test]
    fn flags_a_plain_drop_index() {
        assert!(fires(RULE, "DROP INDEX users_email;"));
    }

    #[test]
    fn passes_concurrently_and_an_index_on_a_table_created_in_the_same_file() {
        assert!(!fires(
            RULE,
            "DROP INDEX CONCURRENTLY IF EXISTS users_email;"
        ));
        assert!(!fires(
            RULE,
            "CREATE TABLE t (a int);\nCREATE INDEX t_a ON t (a);\nDROP INDEX t_a;"
        ));
    }
}
