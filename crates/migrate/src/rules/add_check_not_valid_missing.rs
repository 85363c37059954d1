//! `add-check-not-valid-missing`: a scan under ACCESS EXCLUSIVE.

use pg_query::protobuf::ConstrType;

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::rules::added_constraint;
use crate::statement::Statement;

pub(crate) const RULE: Rule = Rule {
    name: "add-check-not-valid-missing",
    concern: Concern::Lock,
    summary: "checks every row under ACCESS EXCLUSIVE",
    help: "Add it with NOT VALID (new rows are checked at once, the lock is brief), then `VALIDATE CONSTRAINT` in the next migration: it takes only SHARE UPDATE EXCLUSIVE, so reads and writes go on during the scan.",
    check,
};

fn check(statement: &Statement<'_>, _: &Context<'_>) -> Vec<Hit> {
    added_constraint::hits(
        statement,
        ConstrType::ConstrCheck,
        |c| c.initially_valid,
        |table, name| {
            format!(
                "adding check constraint{name} to `{table}` checks every existing row under an ACCESS EXCLUSIVE lock: reads and writes wait for the whole scan"
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use crate::rules::firing::fires;

    const RULE: &str = "add-check-not-valid-missing";

    #[test]
    fn flags_a_validated_check() {
        assert!(fires(
            RULE,
            "ALTER TABLE users ADD CONSTRAINT age_positive CHECK (age > 0);"
        ));
    }

    #[test]
    fn passes_not_valid_then_validate() {
        assert!(!fires(
            RULE,
            "ALTER TABLE users ADD CONSTRAINT age_positive CHECK (age > 0) NOT VALID;\n\
             ALTER TABLE users VALIDATE CONSTRAINT age_positive;"
        ));
        assert!(!fires(
            RULE,
            "CREATE TABLE t (a int);\nALTER TABLE t ADD CHECK (a > 0);"
        ));
    }
}
