//! `vacuum-full`: a rewrite under ACCESS EXCLUSIVE.

use pg_query::NodeEnum;

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::statement::{Statement, has_option};

pub(crate) const RULE: Rule = Rule {
    name: "vacuum-full",
    concern: Concern::Lock,
    summary: "rewrites the table under ACCESS EXCLUSIVE",
    help: "Let autovacuum (or a plain VACUUM, which takes no blocking lock) reclaim space; to shrink a bloated table online use the pg_repack or pg_squeeze extension, outside migrations.",
    check,
};

fn check(statement: &Statement<'_>, _: &Context<'_>) -> Vec<Hit> {
    match statement.node() {
        NodeEnum::VacuumStmt(vacuum)
            if vacuum.is_vacuumcmd && has_option(&vacuum.options, "full") =>
        {
            let table = statement.locked_table();
            let what = table
                .as_ref()
                .map_or_else(|| "every table".to_owned(), |table| format!("`{table}`"));
            vec![
                Hit::new(format!(
                    "VACUUM FULL rewrites {what} under an ACCESS EXCLUSIVE lock: reads and writes wait for the whole rewrite"
                ))
                .on_table(table.as_ref()),
            ]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::firing::fires;

    #[test]
    fn flags_vacuum_full() {
        assert!(fires("vacuum-full", "VACUUM FULL users;"));
        assert!(fires("vacuum-full", "VACUUM (FULL, VERBOSE) users;"));
        assert!(fires("vacuum-full", "VACUUM FULL;"));
    }

    #[test]
    fn passes_a_plain_vacuum_or_analyze() {
        assert!(!fires("vacuum-full", "VACUUM users;"));
        assert!(!fires("vacuum-full", "VACUUM ANALYZE users;"));
        assert!(!fires("vacuum-full", "ANALYZE users;"));
    }
}
