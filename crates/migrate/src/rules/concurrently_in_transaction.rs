//! `concurrently-in-transaction`: PostgreSQL refuses it.

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::statement::Statement;

pub(crate) const RULE: Rule = Rule {
    name: "concurrently-in-transaction",
    concern: Concern::Lock,
    summary: "CONCURRENTLY cannot run inside a transaction block, so the migration fails",
    help: "Remove the BEGIN/COMMIT around it: baton runs a file that uses CONCURRENTLY statement by statement, outside a transaction, and drops an INVALID index a failed build leaves before retrying.",
    check,
};

fn check(statement: &Statement<'_>, context: &Context<'_>) -> Vec<Hit> {
    if statement.is_concurrent() && context.in_transaction_block() {
        vec![Hit::new(
            "this CONCURRENTLY statement is inside BEGIN … COMMIT: PostgreSQL refuses to run it in a transaction block (it needs several transactions of its own), so the migration fails here",
        )]
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::firing::fires;

    const RULE: &str = "concurrently-in-transaction";

    #[test]
    fn flags_concurrently_inside_begin() {
        assert!(fires(
            RULE,
            "BEGIN;\nCREATE INDEX CONCURRENTLY i ON t (a);\nCOMMIT;"
        ));
        assert!(fires(
            RULE,
            "START TRANSACTION;\nDROP INDEX CONCURRENTLY i;\nCOMMIT;"
        ));
    }

    #[test]
    fn passes_outside_a_transaction_block() {
        assert!(!fires(RULE, "CREATE INDEX CONCURRENTLY i ON t (a);"));
        assert!(!fires(
            RULE,
            "BEGIN;\nSELECT 1;\nCOMMIT;\nCREATE INDEX CONCURRENTLY i ON t (a);"
        ));
    }
}
