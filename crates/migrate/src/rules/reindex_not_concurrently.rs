//! `reindex-not-concurrently`: the table is locked for the whole rebuild.

use pg_query::NodeEnum;
use pg_query::protobuf::ReindexObjectType;

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::statement::Statement;
use crate::table_name::TableName;

pub(crate) const RULE: Rule = Rule {
    name: "reindex-not-concurrently",
    concern: Concern::Lock,
    summary: "blocks writes to the table (and reads that use the index) for the whole rebuild",
    help: "Use REINDEX … CONCURRENTLY (PostgreSQL 12+), outside a transaction; or build a new index CONCURRENTLY and drop the old one CONCURRENTLY.",
    check,
};

fn check(statement: &Statement<'_>, context: &Context<'_>) -> Vec<Hit> {
    let NodeEnum::ReindexStmt(reindex) = statement.node() else {
        return Vec::new();
    };
    if statement.is_concurrent() {
        return Vec::new();
    }
    let target = reindex.relation.as_ref().map(TableName::from_range_var);
    let table = match reindex.kind() {
        ReindexObjectType::ReindexObjectTable => target.clone(),
        ReindexObjectType::ReindexObjectIndex => target
            .as_ref()
            .and_then(|index| context.index_table(&index.name))
            .cloned(),
        _ => None,
    };
    let what = target.map_or_else(|| reindex.name.clone(), |target| target.to_string());
    vec![
        Hit::new(format!(
            "REINDEX of `{what}` without CONCURRENTLY blocks writes to the table, and queries that would use the index, until the rebuild ends"
        ))
        .on_table(table.as_ref()),
    ]
}

#[cfg(test)]
mod tests {
    use crate::rules::firing::fires;

    const RULE: &str = "reindex-not-concurrently";

    #[test]
    fn flags_a_plain_reindex() {
        assert!(fires(RULE, "REINDEX INDEX users_email;"));
        assert!(fires(RULE, "REINDEX TABLE users;"));
    }

    #[test]
    fn passes_concurrently() {
        assert!(!fires(RULE, "REINDEX INDEX CONCURRENTLY users_email;"));
        assert!(!fires(RULE, "REINDEX (VERBOSE, CONCURRENTLY) TABLE users;"));
    }
}
