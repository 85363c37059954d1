//! `prefer-identity`: serial is a sequence bolted onto a column.

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::rules::column_type;
use crate::statement::Statement;
use crate::type_name;

pub(crate) const RULE: Rule = Rule {
    name: "prefer-identity",
    concern: Concern::Hygiene,
    summary: "serial is a separately owned sequence with its own grants and pitfalls",
    help: "Use `bigint GENERATED ALWAYS AS IDENTITY` (BY DEFAULT if the app inserts its own ids): the sequence belongs to the column, needs no separate grant, and explicit ids are refused instead of colliding later.",
    check,
};

fn check(statement: &Statement<'_>, _: &Context<'_>) -> Vec<Hit> {
    column_type::hits(
        statement,
        |column| type_name::is_serial(column.type_name),
        |_, _| {
            "serial makes a sequence the app role needs its own USAGE grant on, that dumps and ownership changes can detach, and that explicit inserts do not advance".to_owned()
        },
    )
}

#[cfg(test)]
mod tests {
    use crate::rules::firing::fires;

    #[test]
    fn flags_serial_types() {
        assert!(fires(
            "prefer-identity",
            "CREATE TABLE t (id bigserial PRIMARY KEY);"
        ));
        assert!(fires("prefer-identity", "CREATE TABLE t (id serial);"));
    }

    #[test]
    fn passes_identity_columns() {
        assert!(!fires(
            "prefer-identity",
            "CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY);"
        ));
    }
}
