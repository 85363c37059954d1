//! The check shared by the rules about constraints added to existing tables.

use pg_query::protobuf::{ConstrType, Constraint};

use crate::rule::Hit;
use crate::statement::Statement;
use crate::table_name::TableName;

/// One hit per constraint of `kind` that the statement adds and that is
/// `flagged`, worded by `message` and pointing at the constraint.
pub(crate) fn hits(
    statement: &Statement<'_>,
    kind: ConstrType,
    flagged: fn(&Constraint) -> bool,
    message: fn(&TableName, &str) -> String,
) -> Vec<Hit> {
    statement
        .added_constraints_of(kind)
        .into_iter()
        .filter(|(_, constraint)| flagged(constraint))
        .map(|(table, constraint)| {
            let name = if constraint.conname.is_empty() {
                String::new()
            } else {
                format!(" `{}`", constraint.conname)
            };
            Hit::new(message(&table, &name))
                .on(&table)
                .at(constraint.location)
        })
        .collect()
}
