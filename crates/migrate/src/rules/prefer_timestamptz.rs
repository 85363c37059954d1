//! `prefer-timestamptz`: wall-clock times without a zone.

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::rules::column_type;
use crate::statement::Statement;
use crate::type_name;

pub(crate) const RULE: Rule = Rule {
    name: "prefer-timestamptz",
    concern: Concern::Hygiene,
    summary: "timestamp without time zone stores wall-clock time, ambiguous across zones and DST",
    help: "Use timestamptz (timestamp with time zone): it stores an instant, takes the same 8 bytes, and converts to the session's zone on output.",
    check,
};

fn check(statement: &Statement<'_>, _: &Context<'_>) -> Vec<Hit> {
    column_type::hits(
        statement,
        |column| type_name::base_name(column.type_name) == "timestamp",
        |_, _| {
            "a timestamp without time zone is a wall-clock reading, so values written under different zone settings or across a DST change cannot be compared".to_owned()
        },
    )
}

#[cfg(test)]
mod tests {
    use crate::rules::firing::fires;

    #[test]
    fn flags_timestamp_without_time_zone() {
        assert!(fires(
            "prefer-timestamptz",
            "CREATE TABLE t (at timestamp);"
        ));
        assert!(fires(
            "prefer-timestamptz",
            "ALTER TABLE t ADD COLUMN at timestamp(3) without time zone;"
        ));
    }

    #[test]
    fn passes_timestamptz() {
        assert!(!fires(
            "prefer-timestamptz",
            "CREATE TABLE t (a timestamptz, b timestamp with time zone);"
        ));
    }
}
