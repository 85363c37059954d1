//! `prefer-text`: a length limit in the type is costly to change.

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::rules::column_type;
use crate::statement::Statement;
use crate::type_name;

pub(crate) const RULE: Rule = Rule {
    name: "prefer-text",
    concern: Concern::Hygiene,
    summary: "a length limit in the type can only be tightened with ALTER TYPE under ACCESS EXCLUSIVE",
    help: "Use text, and if a limit is a real rule, a `CHECK (char_length(col) <= n)` constraint, which can later be replaced NOT VALID without blocking anyone.",
    check,
};

fn check(statement: &Statement<'_>, _: &Context<'_>) -> Vec<Hit> {
    column_type::hits(
        statement,
        |column| match type_name::base_name(column.type_name) {
            "varchar" => type_name::has_modifier(column.type_name),
            "bpchar" => true,
            _ => false,
        },
        |_, spelled| {
            format!(
                "the limit lives in the type, so tightening it later means ALTER COLUMN TYPE, which scans the table under an ACCESS EXCLUSIVE lock{}",
                if spelled.starts_with("char(") {
                    ", and char(n) pads values with spaces"
                } else {
                    ""
                }
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use crate::rules::firing::fires;

    #[test]
    fn flags_varchar_with_a_limit_and_char() {
        assert!(fires("prefer-text", "CREATE TABLE t (name varchar(255));"));
        assert!(fires(
            "prefer-text",
            "ALTER TABLE t ADD COLUMN code char(3);"
        ));
    }

    #[test]
    fn passes_text_and_unbounded_varchar() {
        assert!(!fires(
            "prefer-text",
            "CREATE TABLE t (a text, b varchar, c character varying);"
        ));
    }
}
