//! `rename-table`: the running version still uses the old name.

use pg_query::protobuf::ObjectType;

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::statement::Statement;

pub(crate) const RULE: Rule = Rule {
    name: "rename-table",
    concern: Concern::OldVersion,
    summary: "the running version still uses the old name",
    help: "Create the table under its new name (or an updatable view named as the new one), write both, backfill, move the code to the new name, then drop the old one in a contract migration.",
    check,
};

fn check(statement: &Statement<'_>, _: &Context<'_>) -> Vec<Hit> {
    statement
        .renamed(ObjectType::ObjectTable)
        .map(|(table, rename)| {
            Hit::new(format!(
                "renaming table `{table}` to `{}` breaks the version still running: every query it makes on `{table}` fails",
                rename.newname
            ))
            .on(&table)
        })
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::rules::firing::fires;

    #[test]
    fn flags_renaming_a_table() {
        assert!(fires(
            "rename-table",
            "ALTER TABLE users RENAME TO accounts;"
        ));
    }

    #[test]
    fn passes_in_a_contract_migration_and_for_a_new_table() {
        assert!(!fires(
            "rename-table",
            "-- baton:phase contract\nALTER TABLE users RENAME TO accounts;"
        ));
        assert!(!fires(
            "rename-table",
            "CREATE TABLE t (a int);\nALTER TABLE t RENAME TO u;"
        ));
        assert!(!fires(
            "rename-table",
            "ALTER TABLE users RENAME COLUMN a TO b;"
        ));
    }
}
