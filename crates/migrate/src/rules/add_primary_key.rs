//! `add-primary-key`: an index build under ACCESS EXCLUSIVE.

use pg_query::protobuf::ConstrType;

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::rules::added_constraint;
use crate::statement::Statement;

pub(crate) const RULE: Rule = Rule {
    name: "add-primary-key",
    concern: Concern::Lock,
    summary: "builds its index (and checks NOT NULL) under ACCESS EXCLUSIVE",
    help: "Build the index with `CREATE UNIQUE INDEX CONCURRENTLY`, make the columns NOT NULL the safe way (see set-not-null), then `ALTER TABLE … ADD CONSTRAINT name PRIMARY KEY USING INDEX name`.",
    check,
};

fn check(statement: &Statement<'_>, _: &Context<'_>) -> Vec<Hit> {
    added_constraint::hits(
        statement,
        ConstrType::ConstrPrimary,
        |c| c.indexname.is_empty(),
        |table, name| {
            format!(
                "adding primary key{name} to `{table}` builds its index under an ACCESS EXCLUSIVE lock: reads and writes wait for the whole build"
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use crate::rules::firing::fires;

    const RULE: &str = "add-primary-key";

    #[test]
    fn flags_a_primary_key_that_builds_its_index() {
        assert!(fires(RULE, "ALTER TABLE events ADD PRIMARY KEY (id);"));
        assert!(fires(
            RULE,
            "ALTER TABLE events ADD COLUMN id bigint PRIMARY KEY;"
        ));
    }

    #[test]
    fn passes_using_an_index_and_on_a_new_table() {
        assert!(!fires(
            RULE,
            "ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_id;"
        ));
        assert!(!fires(
            RULE,
            "CREATE TABLE events (id bigint);\nALTER TABLE events ADD PRIMARY KEY (id);"
        ));
    }
}
