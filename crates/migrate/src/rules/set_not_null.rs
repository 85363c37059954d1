//! `set-not-null`: a full scan under ACCESS EXCLUSIVE.

use pg_query::NodeEnum;
use pg_query::protobuf::{AlterTableType, ConstrType};

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::statement::{Statement, string_value};

pub(crate) const RULE: Rule = Rule {
    name: "set-not-null",
    concern: Concern::Lock,
    summary: "scans the whole table under ACCESS EXCLUSIVE, and old code writing NULL starts failing",
    help: "Add `CHECK (col IS NOT NULL) NOT VALID`, VALIDATE it in a later migration (SHARE UPDATE EXCLUSIVE: writes go on), then SET NOT NULL, which skips the scan on PostgreSQL 12+, and drop the CHECK. On PostgreSQL 18, `ADD CONSTRAINT … NOT NULL col NOT VALID` then VALIDATE does the same.",
    check,
};

/// The first release whose SET NOT NULL trusts a validated CHECK.
const SCAN_SKIPPED_FROM: u32 = 12;

fn check(statement: &Statement<'_>, context: &Context<'_>) -> Vec<Hit> {
    let mut columns = Vec::new();
    for (table, cmd) in statement.alter_table_commands() {
        match (
            cmd.subtype(),
            cmd.def.as_ref().and_then(|def| def.node.as_ref()),
        ) {
            (AlterTableType::AtSetNotNull, _) => columns.push((table, cmd.name.clone())),
            // PostgreSQL 18: ADD CONSTRAINT name NOT NULL col, without NOT VALID.
            (AlterTableType::AtAddConstraint, Some(NodeEnum::Constraint(constraint)))
                if constraint.contype() == ConstrType::ConstrNotnull
                    && constraint.initially_valid =>
            {
                columns.extend(
                    constraint
                        .keys
                        .iter()
                        .filter_map(string_value)
                        .map(|c| (table.clone(), c.to_owned())),
                );
            }
            _ => {}
        }
    }
    columns
        .into_iter()
        .filter(|(table, column)| {
            !(context.options.pg_version >= SCAN_SKIPPED_FROM && context.has_validated_not_null_check(table, column))
        })
        .map(|(table, column)| {
            Hit::new(format!(
                "SET NOT NULL on `{table}`.`{column}` scans the whole table under an ACCESS EXCLUSIVE lock, so reads and writes wait for the scan; and old code that writes NULL there starts failing"
            ))
            .on(&table)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::LintOptions;
    use crate::rules::firing::{findings_with, fires};

    #[test]
    fn flags_set_not_null_on_an_existing_table() {
        assert!(fires(
            "set-not-null",
            "ALTER TABLE users ALTER COLUMN email SET NOT NULL;"
        ));
        assert!(fires(
            "set-not-null",
            "-- baton:phase contract\nALTER TABLE users ALTER COLUMN email SET NOT NULL;"
        ));
    }

    #[test]
    fn passes_after_a_validated_not_null_check_in_the_same_file() {
        let sql = "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\n\
                   ALTER TABLE users VALIDATE CONSTRAINT email_nn;\n\
                   ALTER TABLE users ALTER COLUMN email SET NOT NULL;\n\
                   ALTER TABLE users DROP CONSTRAINT email_nn;";
        assert!(!fires("set-not-null", sql));
    }

    #[test]
    fn still_flags_when_the_check_is_not_validated_or_the_server_is_old() {
        let unvalidated = "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\n\
                           ALTER TABLE users ALTER COLUMN email SET NOT NULL;";
        assert!(fires("set-not-null", unvalidated));
        let validated = "ALTER TABLE users ADD CONSTRAINT email_nn CHECK (email IS NOT NULL) NOT VALID;\n\
                         ALTER TABLE users VALIDATE CONSTRAINT email_nn;\n\
                         ALTER TABLE users ALTER COLUMN email SET NOT NULL;";
        let pg11 = LintOptions {
            pg_version: 11,
            ..LintOptions::default()
        };
        assert_eq!(findings_with("set-not-null", validated, &pg11).len(), 1);
        let other_column = validated.replace("COLUMN email SET", "COLUMN name SET");
        assert!(fires("set-not-null", &other_column));
    }

    #[test]
    fn judges_the_postgres_18_not_null_constraint_like_set_not_null() {
        assert!(fires(
            "set-not-null",
            "ALTER TABLE users ADD CONSTRAINT nn NOT NULL email;"
        ));
        assert!(!fires(
            "set-not-null",
            "ALTER TABLE users ADD CONSTRAINT nn NOT NULL email NOT VALID;"
        ));
    }
}
