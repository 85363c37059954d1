//! `add-required-column`: NOT NULL with no default.

use pg_query::protobuf::ConstrType;

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::statement::{Statement, column_constraint};
use crate::type_name;

pub(crate) const RULE: Rule = Rule {
    name: "add-required-column",
    concern: Concern::OldVersion,
    summary: "a NOT NULL column with no default fails on existing rows and on the old version's inserts",
    help: "Add the column nullable (or with a constant default), deploy code that writes it, backfill existing rows in batches, then make it NOT NULL safely in a later migration (CHECK (col IS NOT NULL) NOT VALID, VALIDATE, SET NOT NULL).",
    check,
};

fn check(statement: &Statement<'_>, _: &Context<'_>) -> Vec<Hit> {
    statement
        .added_columns()
        .into_iter()
        .filter(|(_, def)| {
            let not_null = def.is_not_null || column_constraint(def, ConstrType::ConstrNotnull).is_some();
            // A default, an identity or a generated value fills the column.
            let filled = [ConstrType::ConstrDefault, ConstrType::ConstrIdentity, ConstrType::ConstrGenerated]
                .into_iter()
                .any(|kind| column_constraint(def, kind).is_some())
                || def.type_name.as_ref().is_some_and(type_name::is_serial);
            not_null && !filled
        })
        .map(|(table, def)| {
            Hit::new(format!(
                "adding NOT NULL column `{}` to `{table}` with no default fails if `{table}` has rows, and the version still running, which does not know the column, fails on every INSERT",
                def.colname
            ))
            .on(&table)
            .at(def.location)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::rules::firing::{findings, fires};

    #[test]
    fn flags_a_not_null_column_without_default() {
        let found = findings(
            "add-required-column",
            "ALTER TABLE users\n  ADD COLUMN age int NOT NULL;",
        );
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].line, found[0].column), (2, 14));
    }

    #[test]
    fn passes_with_a_default_identity_or_nullable() {
        assert!(!fires(
            "add-required-column",
            "ALTER TABLE users ADD COLUMN age int NOT NULL DEFAULT 0;"
        ));
        assert!(!fires(
            "add-required-column",
            "ALTER TABLE users ADD COLUMN age int;"
        ));
        assert!(!fires(
            "add-required-column",
            "ALTER TABLE users ADD COLUMN n bigint NOT NULL GENERATED ALWAYS AS IDENTITY;"
        ));
        assert!(!fires(
            "add-required-column",
            "CREATE TABLE t (a int);\nALTER TABLE t ADD COLUMN b int NOT NULL;"
        ));
    }
}
