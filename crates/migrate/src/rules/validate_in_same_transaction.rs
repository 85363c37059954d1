//! `validate-in-same-transaction`: VALIDATE still under the ADD's lock.

use pg_query::protobuf::AlterTableType;

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::statement::Statement;

pub(crate) const RULE: Rule = Rule {
    name: "validate-in-same-transaction",
    concern: Concern::Lock,
    summary: "VALIDATE in the transaction that added the constraint NOT VALID scans while that lock is still held",
    help: "Move `VALIDATE CONSTRAINT` to the next migration file: baton runs each file in one transaction (unless it uses CONCURRENTLY), and the lock ADD … NOT VALID took is held until that transaction commits.",
    check,
};

fn check(statement: &Statement<'_>, context: &Context<'_>) -> Vec<Hit> {
    statement
        .alter_table_commands_of(AlterTableType::AtValidateConstraint)
        .into_iter()
        .filter(|(table, cmd)| context.validates_in_adding_transaction(table, &cmd.name))
        .map(|(table, cmd)| {
            Hit::new(format!(
                "validating `{}` in the same transaction that added it NOT VALID scans `{table}` while the ADD's lock (ACCESS EXCLUSIVE for a CHECK, SHARE ROW EXCLUSIVE for a foreign key) is still held, which is what NOT VALID was meant to avoid",
                cmd.name
            ))
            .on(&table)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::lint_sources;
    use crate::rules::firing::fires;

    const RULE: &str = "validate-in-same-transaction";
    const ADD: &str = "ALTER TABLE users ADD CONSTRAINT age_positive CHECK (age > 0) NOT VALID;\n";
    const VALIDATE: &str = "ALTER TABLE users VALIDATE CONSTRAINT age_positive;\n";

    #[test]
    fn flags_validate_in_the_file_that_added_not_valid() {
        assert!(fires(RULE, &format!("{ADD}{VALIDATE}")));
        let in_block =
            format!("BEGIN;\n{ADD}{VALIDATE}COMMIT;\nCREATE INDEX CONCURRENTLY i ON t (a);");
        assert!(fires(RULE, &in_block));
    }

    #[test]
    fn passes_validate_in_the_next_file_or_outside_one_transaction() {
        let report = lint_sources([("1.sql", ADD), ("2.sql", VALIDATE)], &Default::default());
        assert!(
            report.diagnostics.iter().all(|d| d.rule != RULE),
            "{:?}",
            report.diagnostics
        );
        // A file with CONCURRENTLY runs statement by statement.
        assert!(!fires(
            RULE,
            &format!("{ADD}{VALIDATE}CREATE INDEX CONCURRENTLY i ON t (a);")
        ));
    }
}
