//! The column type a statement spells.

use pg_query::NodeEnum;
use pg_query::protobuf::TypeName;

/// The type's own name, without `pg_catalog.`: the parser spells `integer`
/// as `pg_catalog.int4` and `timestamp` as `pg_catalog.timestamp`, so rules
/// compare against PostgreSQL's internal names.
pub(crate) fn base_name(type_name: &TypeName) -> &str {
    type_name
        .names
        .last()
        .and_then(|name| match &name.node {
            Some(NodeEnum::String(name)) => Some(name.sval.as_str()),
            _ => None,
        })
        .unwrap_or("")
}

/// Whether the type carries a modifier, such as the length of `varchar(255)`.
pub(crate) fn has_modifier(type_name: &TypeName) -> bool {
    !type_name.typmods.is_empty()
}

/// The type as a person would write it, for messages: `varchar(255)`,
/// `integer`, `timestamp`.
pub(crate) fn display(type_name: &TypeName) -> String {
    let name = match base_name(type_name) {
        "int2" => "smallint",
        "int4" => "integer",
        "int8" => "bigint",
        "bpchar" => "char",
        "bool" => "boolean",
        "float4" => "real",
        "float8" => "double precision",
        other => other,
    };
    let modifiers: Vec<String> = type_name
        .typmods
        .iter()
        .filter_map(|modifier| match &modifier.node {
            Some(NodeEnum::AConst(constant)) => match &constant.val {
                Some(pg_query::protobuf::a_const::Val::Ival(value)) => Some(value.ival.to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let array = if type_name.array_bounds.is_empty() {
        ""
    } else {
        "[]"
    };
    if modifiers.is_empty() {
        format!("{name}{array}")
    } else {
        format!("{name}({}){array}", modifiers.join(","))
    }
}

/// `serial`, `bigserial` and friends: not types but a sequence plus a
/// `nextval()` default.
pub(crate) fn is_serial(type_name: &TypeName) -> bool {
    matches!(
        base_name(type_name),
        "serial" | "serial4" | "bigserial" | "serial8" | "smallserial" | "serial2"
    )
}
