//! `prefer-jsonb`: json is stored as text.

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::rules::column_type;
use crate::statement::Statement;
use crate::type_name;

pub(crate) const RULE: Rule = Rule {
    name: "prefer-jsonb",
    concern: Concern::Hygiene,
    summary: "json keeps the raw text: no equality, no GIN index, re-parsed on every access",
    help: "Use jsonb, unless the exact text (key order, duplicate keys, whitespace) must be kept.",
    check,
};

fn check(statement: &Statement<'_>, _: &Context<'_>) -> Vec<Hit> {
    column_type::hits(
        statement,
        |column| type_name::base_name(column.type_name) == "json",
        |_, _| {
            "it keeps the text as written: no equality operator (no DISTINCT, GROUP BY or unique index), no GIN index, and a re-parse on every access".to_owned()
        },
    )
}

#[cfg(test)]
mod tests {
    use crate::rules::firing::fires;

    #[test]
    fn flags_json() {
        assert!(fires("prefer-jsonb", "CREATE TABLE t (doc json);"));
        assert!(fires(
            "prefer-jsonb",
            "ALTER TABLE t ALTER COLUMN doc TYPE json;"
        ));
    }

    #[test]
    fn passes_jsonb() {
        assert!(!fires("prefer-jsonb", "CREATE TABLE t (doc jsonb);"));
    }
}
