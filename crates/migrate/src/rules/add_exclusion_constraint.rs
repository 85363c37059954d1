//! `add-exclusion-constraint`: an index build under ACCESS EXCLUSIVE, with
//! no concurrent form.

use pg_query::protobuf::ConstrType;

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::rules::added_constraint;
use crate::statement::Statement;

pub(crate) const RULE: Rule = Rule {
    name: "add-exclusion-constraint",
    concern: Concern::Lock,
    summary: "builds its index under ACCESS EXCLUSIVE, and has no NOT VALID or CONCURRENTLY form",
    help: "There is no online way: add it when the table is created, or in a maintenance window with `-- baton:allow add-exclusion-constraint <why>`, or enforce the rule in the app or a trigger instead.",
    check,
};

fn check(statement: &Statement<'_>, _: &Context<'_>) -> Vec<Hit> {
    added_constraint::hits(
        statement,
        ConstrType::ConstrExclusion,
        |_| true,
        |table, name| {
            format!(
                "adding exclusion constraint{name} to `{table}` builds its index and checks every row under an ACCESS EXCLUSIVE lock: reads and writes wait for the whole build"
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use crate::rules::firing::fires;

    const RULE: &str = "add-exclusion-constraint";

    #[test]
    fn flags_an_exclusion_constraint_on_an_existing_table() {
        assert!(fires(
            RULE,
            "ALTER TABLE bookings ADD CONSTRAINT no_overlap EXCLUDE USING gist (room WITH =, during WITH &&);"
        ));
    }

    #[test]
    fn passes_on_a_table_created_in_the_same_file() {
        assert!(!fires(
            RULE,
            "CREATE TABLE bookings (room int, during tstzrange);\n\
             ALTER TABLE bookings ADD CONSTRAINT no_overlap EXCLUDE USING gist (room WITH =, during WITH &&);"
        ));
    }
}
