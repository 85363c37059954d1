//! `add-foreign-key-not-valid-missing`: a scan that blocks writes to two tables.

use pg_query::protobuf::ConstrType;

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::rules::added_constraint;
use crate::statement::Statement;

pub(crate) const RULE: Rule = Rule {
    name: "add-foreign-key-not-valid-missing",
    concern: Concern::Lock,
    summary: "checks every row while blocking writes to both tables",
    help: "Add it with NOT VALID (new rows are checked at once, existing ones are not), then `VALIDATE CONSTRAINT` in the next migration: it takes only SHARE UPDATE EXCLUSIVE, so writes go on during the scan.",
    check,
};

fn check(statement: &Statement<'_>, _: &Context<'_>) -> Vec<Hit> {
    added_constraint::hits(
        statement,
        ConstrType::ConstrForeign,
        |c| c.initially_valid,
        |table, name| {
            format!(
                "adding foreign key{name} to `{table}` checks every existing row while holding SHARE ROW EXCLUSIVE locks on `{table}` and the table it references: writes to both wait for the whole scan"
            )
        },
    )
}

#[cfg(test)]
mod tests {
    use crate::rules::firing::fires;

    const RULE: &str = "add-foreign-key-not-valid-missing";

    #[test]
    fn flags_a_validated_foreign_key() {
        assert!(fires(
            RULE,
            "ALTER TABLE orders ADD CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users (id);"
        ));
        assert!(fires(
            RULE,
            "ALTER TABLE orders ADD COLUMN user_id bigint REFERENCES users (id);"
        ));
    }

    #[test]
    fn passes_not_valid_and_a_new_table() {
        assert!(!fires(
            RULE,
            "ALTER TABLE orders ADD CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;"
        ));
        assert!(!fires(
            RULE,
            "CREATE TABLE orders (id bigint, user_id bigint REFERENCES users (id));"
        ));
        assert!(!fires(
            RULE,
            "CREATE TABLE orders (id bigint);\nALTER TABLE orders ADD FOREIGN KEY (id) REFERENCES users (id);"
        ));
    }
}
