//! `add-unique-constraint`: an index build under ACCESS EXCLUSIVE.

use pg_query::protobuf::ConstrType;

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::rules::added_constraint;
use crate::statement::Statement;

pub(crate) const RULE: Rule = Rule {
    name: "add-unique-constraint",
    concern: Concern::Lock,
    summary: "builds its index under ACCESS EXCLUSIVE",
    help: "Build the index first with `CREATE UNIQUE INDEX CONCURRENTLY name ON table (cols)`, then `ALTER TABLE table ADD CONSTRAINT name UNIQUE USING INDEX name`, which only attaches it.",
    check,
};

fn check(statement: &Statement<'_>, _: &Context<'_>) -> Vec<Hit> {
    added_constraint::hits(
        statement,
        ConstrType::ConstrUnique,
        |c| c.indexname.is_empty(),
        |table, name| {
            format!(
                "adding unique constraint{name} to `{table}` builds its index under an ACCESS EXCLUSIVE lock: reads and writes wait for the whole build"
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use crate::rules::firing::fires;

    const RULE: &str = "add-unique-constraint";

    #[test]
    fn flags_a_unique_constraint_that_builds_its_index() {
        assert!(fires(
            RULE,
            "ALTER TABLE users ADD CONSTRAINT users_email UNIQUE (email);"
        ));
        assert!(fires(
            RULE,
            "ALTER TABLE users ADD COLUMN handle text UNIQUE;"
        ));
    }

    #[test]
    fn passes_using_an_index_built_concurrently() {
        assert!(!fires(
            RULE,
            "CREATE UNIQUE INDEX CONCURRENTLY users_email ON users (email);\n\
             ALTER TABLE users ADD CONSTRAINT users_email UNIQUE USING INDEX users_email;"
        ));
    }
}
