//! `cluster`: a rewrite under ACCESS EXCLUSIVE.

use pg_query::NodeEnum;

use crate::context::Context;
use crate::rule::{Concern, Hit, Rule};
use crate::statement::Statement;

pub(crate) const RULE: Rule = Rule {
    name: "cluster",
    concern: Concern::Lock,
    summary: "rewrites the table in index order under ACCESS EXCLUSIVE",
    help: "Reorder online with the pg_repack extension (`pg_repack --order-by`), outside migrations, or do without: the order is not kept for new rows anyway.",
    check,
};

fn check(statement: &Statement<'_>, _: &Context<'_>) -> Vec<Hit> {
    if !matches!(statement.node(), NodeEnum::ClusterStmt(_)) {
        return Vec::new();
    }
    let table = statement.locked_table();
    let what = table.as_ref().map_or_else(
        || "every clustered table".to_owned(),
        |table| format!("`{table}`"),
    );
    vec![
        Hit::new(format!(
            "CLUSTER rewrites {what} under an ACCESS EXCLUSIVE lock: reads and writes wait for the whole rewrite"
        ))
        .on_table(table.as_ref()),
    ]
}

#[cfg(test)]
mod tests {
    use crate::rules::firing::fires;

    #[test]
    fn flags_cluster() {
        assert!(fires("cluster", "CLUSTER users USING users_created;"));
        assert!(fires("cluster", "CLUSTER;"));
    }

    #[test]
    fn passes_on_a_table_created_in_the_same_file() {
        assert!(!fires(
            "cluster",
            "CREATE TABLE t (a int);\nCREATE INDEX t_a ON t (a);\nCLUSTER t USING t_a;"
        ));
    }
}
