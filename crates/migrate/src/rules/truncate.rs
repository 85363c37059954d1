//! `truncate`: the running version loses the rows it reads.

use pg_query::NodeEnum;

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::statement::Statement;
use crate::table_name::TableName;

pub(crate) const RULE: Rule = Rule {
    name: "truncate",
    concern: Concern::OldVersion,
    summary: "empties the table under ACCESS EXCLUSIVE while the running version reads it",
    help: "Delete rows in batches (DELETE … WHERE id IN (SELECT … LIMIT 1000)) once no code needs them, or truncate in a contract migration after the old version has stopped; never with CASCADE unless every dependent table is meant to go too.",
    check,
};

fn check(statement: &Statement<'_>, _: &Context<'_>) -> Vec<Hit> {
    let NodeEnum::TruncateStmt(truncate) = statement.node() else {
        return Vec::new();
    };
    truncate
        .relations
        .iter()
        .filter_map(|relation| match &relation.node {
            Some(NodeEnum::RangeVar(relation)) => Some(TableName::from_range_var(relation)),
            _ => None,
        })
        .map(|table| {
            Hit::new(format!(
                "TRUNCATE `{table}` deletes every row under an ACCESS EXCLUSIVE lock: the version still running loses the rows it reads and writes"
            ))
            .on(&table)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::rules::firing::{findings, fires};

    #[test]
    fn flags_each_truncated_table() {
        assert_eq!(findings("truncate", "TRUNCATE a, b CASCADE;").len(), 2);
    }

    #[test]
    fn passes_in_a_contract_migration() {
        assert!(!fires("truncate", "-- baton:phase contract\nTRUNCATE a;"));
        assert!(!fires("truncate", "DELETE FROM a;"));
    }
}
