//! Whether a column default is computed once or per row.

use pg_query::NodeEnum;
use pg_query::protobuf::Node;

use crate::statement::string_value;

/// Built-in functions that are STABLE or IMMUTABLE, so a default made of
/// them is evaluated once and stored in the catalog (PostgreSQL 11+)
/// instead of per row with a table rewrite. Anything else counts as
/// volatile: that is PostgreSQL's own default for a function created
/// without a volatility, and `random()`, `gen_random_uuid()`,
/// `clock_timestamp()` and `nextval()` are volatile indeed. A stable user
/// function can be allowed with `-- baton:allow` and a reason.
const NOT_VOLATILE: &[&str] = &[
    // time: fixed for the transaction
    "now",
    "transaction_timestamp",
    "statement_timestamp",
    "timezone",
    "date_trunc",
    "date_part",
    "extract",
    "make_date",
    "make_time",
    "make_timestamp",
    "make_timestamptz",
    "make_interval",
    "to_timestamp",
    "to_date",
    "to_char",
    "age",
    // text
    "lower",
    "upper",
    "initcap",
    "btrim",
    "ltrim",
    "rtrim",
    "substring",
    "substr",
    "replace",
    "concat",
    "concat_ws",
    "length",
    "char_length",
    "left",
    "right",
    "lpad",
    "rpad",
    "repeat",
    "md5",
    "format",
    "to_number",
    // numbers
    "abs",
    "round",
    "floor",
    "ceil",
    "ceiling",
    "trunc",
    "power",
    "sqrt",
    // json and arrays
    "jsonb_build_object",
    "json_build_object",
    "jsonb_build_array",
    "json_build_array",
    "to_json",
    "to_jsonb",
    "array_to_json",
    "array_fill",
    "array_length",
    "cardinality",
    // session
    "current_setting",
    "current_database",
    "current_schema",
    "inet_client_addr",
    "pg_backend_pid",
];

/// The first part of `expression` that may give each row a different value
/// (a volatile or unknown function), described for a message; `None` when
/// the whole expression is constant or stable.
pub(crate) fn volatile_part(expression: &Node) -> Option<String> {
    let Some(node) = &expression.node else {
        return None;
    };
    let all = |nodes: &[Node]| nodes.iter().find_map(volatile_part);
    let one = |node: &Option<Box<Node>>| node.as_deref().and_then(volatile_part);
    match node {
        NodeEnum::FuncCall(call) => {
            let name = call.funcname.last().and_then(string_value).unwrap_or("");
            if NOT_VOLATILE.contains(&name) {
                all(&call.args)
            } else {
                Some(format!("{name}()"))
            }
        }
        NodeEnum::AConst(_) | NodeEnum::SqlvalueFunction(_) | NodeEnum::ParamRef(_) => None,
        NodeEnum::TypeCast(cast) => one(&cast.arg),
        NodeEnum::CollateClause(collate) => one(&collate.arg),
        NodeEnum::AExpr(operation) => one(&operation.lexpr).or_else(|| one(&operation.rexpr)),
        NodeEnum::BoolExpr(boolean) => all(&boolean.args),
        NodeEnum::CoalesceExpr(coalesce) => all(&coalesce.args),
        NodeEnum::MinMaxExpr(min_max) => all(&min_max.args),
        NodeEnum::AArrayExpr(array) => all(&array.elements),
        NodeEnum::RowExpr(row) => all(&row.args),
        NodeEnum::List(list) => all(&list.items),
        NodeEnum::NullTest(test) => one(&test.arg),
        NodeEnum::BooleanTest(test) => one(&test.arg),
        NodeEnum::NamedArgExpr(argument) => one(&argument.arg),
        NodeEnum::CaseExpr(case) => one(&case.arg)
            .or_else(|| all(&case.args))
            .or_else(|| one(&case.defresult)),
        NodeEnum::CaseWhen(when) => one(&when.expr).or_else(|| one(&when.result)),
        _ => Some("an expression baton cannot classify".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_of(sql: &str) -> Option<String> {
        let parsed = pg_query::parse(&format!("SELECT {sql}"), 0).expect("test SQL parses");
        let Some(NodeEnum::SelectStmt(select)) = parsed.protobuf.stmts[0]
            .stmt
            .as_ref()
            .and_then(|stmt| stmt.node.as_ref())
        else {
            panic!("not a select")
        };
        let Some(NodeEnum::ResTarget(target)) = &select.target_list[0].node else {
            panic!("no target")
        };
        target.val.as_deref().and_then(volatile_part)
    }

    #[test]
    fn constants_and_stable_calls_are_not_volatile() {
        for sql in [
            "0",
            "'pending'",
            "'{}'::jsonb",
            "now()",
            "CURRENT_TIMESTAMP",
            "pg_catalog.now()",
            "(now() AT TIME ZONE 'utc')",
            "ARRAY[]::text[]",
            "coalesce(NULL, 1) + 2",
            "jsonb_build_object('a', 1)",
        ] {
            assert_eq!(default_of(sql), None, "{sql}");
        }
    }

    #[test]
    fn volatile_and_unknown_calls_are_named() {
        assert_eq!(
            default_of("gen_random_uuid()").as_deref(),
            Some("gen_random_uuid()")
        );
        assert_eq!(default_of("random() * 10").as_deref(), Some("random()"));
        assert_eq!(default_of("nextval('s')").as_deref(), Some("nextval()"));
        assert_eq!(default_of("lower(my_func())").as_deref(), Some("my_func()"));
        assert_eq!(
            default_of("clock_timestamp()::date").as_deref(),
            Some("clock_timestamp()")
        );
    }
}
