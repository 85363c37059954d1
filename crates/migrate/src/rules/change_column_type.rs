//! `change-column-type`: a table rewrite under ACCESS EXCLUSIVE.

use pg_query::protobuf::AlterTableType;

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::statement::{Statement, column_def};
use crate::type_name;

pub(crate) const RULE: Rule = Rule {
    name: "change-column-type",
    concern: Concern::Lock,
    summary: "rewrites the table and its indexes under ACCESS EXCLUSIVE, and old code may send the old type",
    help: "Add a column of the new type, write both from the app (or a trigger), backfill in batches, move reads to it, then drop the old column in a contract migration. A binary-coercible change (numeric with more precision, cidr to inet) does not rewrite: allow it with a reason.",
    check,
};

fn check(statement: &Statement<'_>, _: &Context<'_>) -> Vec<Hit> {
    statement
        .alter_table_commands_of(AlterTableType::AtAlterColumnType)
        .into_iter()
        .filter_map(|(table, cmd)| {
            let def = column_def(cmd)?;
            let new_type = def.type_name.as_ref()?;
            // The lint sees the file, not the live schema, so it cannot know
            // the old type. A change to text or varchar without USING is taken
            // for varchar -> text or a longer varchar, which PostgreSQL does
            // without a rewrite; USING always computes new values.
            let widening = def.raw_default.is_none() && matches!(type_name::base_name(new_type), "text" | "varchar");
            (!widening).then(|| {
                Hit::new(format!(
                    "changing `{table}`.`{}` to {} rewrites the table and all its indexes under an ACCESS EXCLUSIVE lock: reads and writes wait for the whole rewrite, and code written for the old type may fail",
                    cmd.name,
                    type_name::display(new_type)
                ))
                .on(&table)
                .at(def.location)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::rules::firing::fires;

    #[test]
    fn flags_a_rewriting_type_change() {
        assert!(fires(
            "change-column-type",
            "ALTER TABLE users ALTER COLUMN id TYPE bigint;"
        ));
        assert!(fires(
            "change-column-type",
            "ALTER TABLE users ALTER COLUMN n TYPE text USING n::text;"
        ));
        assert!(fires(
            "change-column-type",
            "-- baton:phase contract\nALTER TABLE users ALTER COLUMN id TYPE bigint;"
        ));
    }

    #[test]
    fn passes_varchar_to_text_and_a_longer_varchar() {
        assert!(!fires(
            "change-column-type",
            "ALTER TABLE users ALTER COLUMN name TYPE text;"
        ));
        assert!(!fires(
            "change-column-type",
            "ALTER TABLE users ALTER COLUMN name TYPE varchar(500);"
        ));
        assert!(!fires(
            "change-column-type",
            "ALTER TABLE users ALTER COLUMN name SET DATA TYPE varchar;"
        ));
    }

    #[test]
    fn passes_on_a_table_created_in_the_same_file() {
        assert!(!fires(
            "change-column-type",
            "CREATE TABLE t (a int);\nALTER TABLE t ALTER COLUMN a TYPE bigint;"
        ));
    }
}
