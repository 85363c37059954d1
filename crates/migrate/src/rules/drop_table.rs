//! `drop-table`: the running version still queries the table.

use pg_query::NodeEnum;
use pg_query::protobuf::ObjectType;

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::statement::Statement;
use crate::table_name::TableName;

pub(crate) const RULE: Rule = Rule {
    name: "drop-table",
    concern: Concern::OldVersion,
    summary: "the running version still queries the table",
    help: "Deploy code that no longer uses the table first, then drop it in a contract migration (first line `-- baton:phase contract`), which runs only after the old version has stopped.",
    check,
};

fn check(statement: &Statement<'_>, _: &Context<'_>) -> Vec<Hit> {
    let NodeEnum::DropStmt(drop) = statement.node() else {
        return Vec::new();
    };
    if drop.remove_type() != ObjectType::ObjectTable {
        return Vec::new();
    }
    statement
        .dropped_names()
        .iter()
        .filter_map(|parts| TableName::from_parts(&parts.iter().map(String::as_str).collect::<Vec<_>>()))
        .map(|table| {
            Hit::new(format!(
                "dropping table `{table}` breaks the version still running: every query it makes on the table fails until it has stopped"
            ))
            .on(&table)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::rules::firing::{findings, fires};

    #[test]
    fn flags_each_dropped_table() {
        assert_eq!(
            findings("drop-table", "DROP TABLE IF EXISTS a, s.b;").len(),
            2
        );
    }

    #[test]
    fn passes_in_a_contract_migration_and_for_other_objects() {
        assert!(!fires(
            "drop-table",
            "-- baton:phase contract\nDROP TABLE a;"
        ));
        assert!(!fires("drop-table", "DROP VIEW v;"));
        assert!(!fires(
            "drop-table",
            "CREATE TABLE tmp (a int);\nDROP TABLE tmp;"
        ));
    }
}
