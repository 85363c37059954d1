//! `drop-column`: the running version still reads or writes the column.

use pg_query::protobuf::AlterTableType;

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::statement::Statement;

pub(crate) const RULE: Rule = Rule {
    name: "drop-column",
    concern: Concern::OldVersion,
    summary: "the running version still reads or writes the column",
    help: "Deploy code that no longer uses the column first (tell the ORM to ignore it), then drop it in a contract migration (first line `-- baton:phase contract`), which runs only after the old version has stopped.",
    check,
};

fn check(statement: &Statement<'_>, _: &Context<'_>) -> Vec<Hit> {
    statement
        .alter_table_commands_of(AlterTableType::AtDropColumn)
        .into_iter()
        .map(|(table, cmd)| {
            Hit::new(format!(
                "dropping column `{}` of `{table}` breaks the version still running: its queries that name the column (and an ORM that selects every column it knows) fail until it has stopped",
                cmd.name
            ))
            .on(&table)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::rules::firing::{findings, fires};

    #[test]
    fn flags_dropping_a_column() {
        let found = findings(
            "drop-column",
            "SELECT 1;\nALTER TABLE users DROP COLUMN email;\n",
        );
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].line, found[0].column), (2, 1));
        assert!(found[0].message.contains("`email` of `users`"));
    }

    #[test]
    fn passes_in_a_contract_migration() {
        assert!(!fires(
            "drop-column",
            "-- baton:phase contract\nALTER TABLE users DROP COLUMN email;"
        ));
    }

    #[test]
    fn passes_on_a_table_created_in_the_same_file() {
        assert!(!fires(
            "drop-column",
            "CREATE TABLE t (a int, b int);\nALTER TABLE t DROP COLUMN b;"
        ));
    }
}
