//! The check shared by the hygiene rules about column types.

use crate::rule::Hit;
use crate::statement::{DeclaredColumn, Statement};
use crate::type_name;

/// One hit per column the statement declares or retypes whose type is
/// `flagged`, worded by `why` (given the column and its type as written).
pub(crate) fn hits(
    statement: &Statement<'_>,
    flagged: fn(&DeclaredColumn<'_>) -> bool,
    why: fn(&DeclaredColumn<'_>, &str) -> String,
) -> Vec<Hit> {
    statement
        .declared_columns()
        .iter()
        .filter(|column| flagged(column))
        .map(|column| {
            let spelled = type_name::display(column.type_name);
            Hit::new(format!(
                "`{}`.`{}` is {spelled}: {}",
                column.table,
                column.column,
                why(column, &spelled)
            ))
            .on(&column.table)
            .at(column.type_name.location)
        })
        .collect()
}
