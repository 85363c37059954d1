//! `add-column-volatile-default`: a per-row value means a table rewrite.

use pg_query::NodeEnum;
use pg_query::protobuf::ConstrType;

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::statement::{Statement, column_constraint};
use crate::{type_name, volatility};

pub(crate) const RULE: Rule = Rule {
    name: "add-column-volatile-default",
    concern: Concern::Lock,
    summary: "a value computed per row (volatile default, serial, identity, stored generated column) rewrites the table under ACCESS EXCLUSIVE",
    help: "Add the column with no default (or a constant one), then `ALTER COLUMN … SET DEFAULT …` (applies to new rows only, no rewrite), and backfill existing rows in batches. A constant or stable default (0, 'x', now()) needs no rewrite on PostgreSQL 11+.",
    check,
};

/// The first release that stores a non-volatile default in the catalog
/// instead of rewriting the table.
const METADATA_DEFAULT_FROM: u32 = 11;

fn check(statement: &Statement<'_>, context: &Context<'_>) -> Vec<Hit> {
    statement
        .added_columns()
        .into_iter()
        .filter_map(|(table, def)| {
            let column = &def.colname;
            let why = if def.type_name.as_ref().is_some_and(type_name::is_serial) {
                "a serial column fills every existing row from a sequence (a volatile nextval() default)".to_owned()
            } else if column_constraint(def, ConstrType::ConstrIdentity).is_some() {
                "an identity column fills every existing row from a sequence".to_owned()
            } else if column_constraint(def, ConstrType::ConstrGenerated).is_some_and(|c| c.generated_kind == "s") {
                "a stored generated column computes and stores a value for every existing row".to_owned()
            } else {
                let default = column_constraint(def, ConstrType::ConstrDefault)?.raw_expr.as_deref()?;
                let is_null = matches!(&default.node, Some(NodeEnum::AConst(constant)) if constant.isnull);
                if context.options.pg_version < METADATA_DEFAULT_FROM && !is_null {
                    format!(
                        "before PostgreSQL {METADATA_DEFAULT_FROM} (linting for {}) any default is written into every existing row",
                        context.options.pg_version
                    )
                } else {
                    let part = volatility::volatile_part(default)?;
                    format!("its default calls {part}, which is volatile (or not known to be stable), so it is computed for every existing row")
                }
            };
            Some(
                Hit::new(format!(
                    "adding column `{column}` to `{table}` rewrites the table and its indexes under an ACCESS EXCLUSIVE lock that blocks reads and writes: {why}"
                ))
                .on(&table)
                .at(def.location),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::LintOptions;
    use crate::rules::firing::{findings_with, fires};

    const RULE: &str = "add-column-volatile-default";

    #[test]
    fn flags_volatile_defaults_and_per_row_values() {
        assert!(fires(
            RULE,
            "ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();"
        ));
        assert!(fires(
            RULE,
            "ALTER TABLE users ADD COLUMN seen timestamptz DEFAULT clock_timestamp();"
        ));
        assert!(fires(RULE, "ALTER TABLE users ADD COLUMN n bigserial;"));
        assert!(fires(
            RULE,
            "ALTER TABLE users ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY;"
        ));
        assert!(fires(
            RULE,
            "ALTER TABLE users ADD COLUMN d int GENERATED ALWAYS AS (a * 2) STORED;"
        ));
        assert!(fires(
            RULE,
            "-- baton:phase contract\nALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();"
        ));
    }

    #[test]
    fn passes_constant_and_stable_defaults_on_11_and_later() {
        assert!(!fires(
            RULE,
            "ALTER TABLE users ADD COLUMN state text NOT NULL DEFAULT 'new';"
        ));
        assert!(!fires(
            RULE,
            "ALTER TABLE users ADD COLUMN created timestamptz DEFAULT now();"
        ));
        assert!(!fires(
            RULE,
            "ALTER TABLE users ADD COLUMN created timestamptz DEFAULT CURRENT_TIMESTAMP;"
        ));
        assert!(!fires(
            RULE,
            "ALTER TABLE users ADD COLUMN tags jsonb DEFAULT '{}'::jsonb;"
        ));
        assert!(!fires(RULE, "ALTER TABLE users ADD COLUMN note text;"));
    }

    #[test]
    fn flags_any_default_before_11_but_null() {
        let pg10 = LintOptions {
            pg_version: 10,
            ..LintOptions::default()
        };
        assert_eq!(
            findings_with(
                RULE,
                "ALTER TABLE users ADD COLUMN state text DEFAULT 'new';",
                &pg10
            )
            .len(),
            1
        );
        assert!(
            findings_with(
                RULE,
                "ALTER TABLE users ADD COLUMN state text DEFAULT NULL;",
                &pg10
            )
            .is_empty()
        );
    }

    #[test]
    fn passes_on_a_table_created_in_the_same_file() {
        assert!(!fires(
            RULE,
            "CREATE TABLE t (a int);\nALTER TABLE t ADD COLUMN token uuid DEFAULT gen_random_uuid();"
        ));
    }
}
