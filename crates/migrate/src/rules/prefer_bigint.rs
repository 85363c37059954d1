//! `prefer-bigint`: 32-bit keys run out.

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::rules::column_type;
use crate::statement::Statement;
use crate::type_name;

pub(crate) const RULE: Rule = Rule {
    name: "prefer-bigint",
    concern: Concern::Hygiene,
    summary: "a 32-bit key runs out at 2,147,483,647, and widening it later rewrites the table",
    help: "Use bigint (`bigint GENERATED ALWAYS AS IDENTITY` for a key, bigint for a column that references one); it costs 4 more bytes a row.",
    check,
};

fn check(statement: &Statement<'_>, _: &Context<'_>) -> Vec<Hit> {
    column_type::hits(
        statement,
        |column| {
            let narrow = matches!(
                type_name::base_name(column.type_name),
                "int2"
                    | "int4"
                    | "int"
                    | "integer"
                    | "smallint"
                    | "serial"
                    | "serial4"
                    | "smallserial"
                    | "serial2"
            );
            // Only keys and references to keys grow without bound; a count or
            // a quantity in an int is fine.
            let key_like = column.is_key
                || type_name::is_serial(column.type_name)
                || column.column == "id"
                || column.column.ends_with("_id");
            narrow && key_like
        },
        |_, _| {
            "a 32-bit key runs out at 2,147,483,647, and widening it later rewrites the table under an ACCESS EXCLUSIVE lock".to_owned()
        },
    )
}

#[cfg(test)]
mod tests {
    use crate::rules::firing::fires;

    #[test]
    fn flags_32_bit_keys_and_references() {
        assert!(fires(
            "prefer-bigint",
            "CREATE TABLE t (id int PRIMARY KEY);"
        ));
        assert!(fires(
            "prefer-bigint",
            "CREATE TABLE t (code int, PRIMARY KEY (code));"
        ));
        assert!(fires("prefer-bigint", "CREATE TABLE t (id serial);"));
        assert!(fires(
            "prefer-bigint",
            "ALTER TABLE orders ADD COLUMN user_id integer;"
        ));
    }

    #[test]
    fn passes_bigint_keys_and_plain_integers() {
        assert!(!fires(
            "prefer-bigint",
            "CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);"
        ));
        assert!(!fires("prefer-bigint", "CREATE TABLE t (quantity int);"));
    }
}
