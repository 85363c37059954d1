//! `rename-column`: the running version still uses the old name.

use pg_query::protobuf::ObjectType;

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::statement::Statement;

pub(crate) const RULE: Rule = Rule {
    name: "rename-column",
    concern: Concern::OldVersion,
    summary: "the running version still uses the old name",
    help: "Add a column with the new name, write both from the app (or a trigger), backfill, move reads to the new one, then drop the old column in a contract migration.",
    check,
};

fn check(statement: &Statement<'_>, _: &Context<'_>) -> Vec<Hit> {
    statement
        .renamed(ObjectType::ObjectColumn)
        .map(|(table, rename)| {
            Hit::new(format!(
                "renaming column `{}` of `{table}` to `{}` breaks the version still running: its queries use the old name and fail",
                rename.subname, rename.newname
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
    fn flags_renaming_a_column() {
        assert!(fires(
            "rename-column",
            "ALTER TABLE users RENAME COLUMN mail TO email;"
        ));
    }

    #[test]
    fn passes_in_a_contract_migration_and_for_other_renames() {
        assert!(!fires(
            "rename-column",
            "-- baton:phase contract\nALTER TABLE users RENAME COLUMN mail TO email;"
        ));
        assert!(!fires(
            "rename-column",
            "ALTER TABLE users RENAME CONSTRAINT a TO b;"
        ));
    }
}
