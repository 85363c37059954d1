//! A table named in a statement.

use pg_query::protobuf::RangeVar;

/// A table as a statement names it: optional schema and the name, both as
/// PostgreSQL folded them (unquoted names are lower case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    /// The schema, when the statement qualified the name.
    pub schema: Option<String>,
    /// The table's name.
    pub name: String,
}

impl TableName {
    /// The table a `RangeVar` names.
    pub fn from_range_var(range_var: &RangeVar) -> TableName {
        TableName {
            schema: (!range_var.schemaname.is_empty()).then(|| range_var.schemaname.clone()),
            name: range_var.relname.clone(),
        }
    }

    /// The table a dotted name list (`DROP TABLE a.b`) names.
    pub fn from_parts(parts: &[&str]) -> Option<TableName> {
        let (name, qualifiers) = parts.split_last()?;
        Some(TableName {
            schema: qualifiers.last().map(|schema| (*schema).to_owned()),
            name: (*name).to_owned(),
        })
    }

    /// Whether both name the same table. An unqualified name matches any
    /// schema: a migration rarely names the same table both ways, and when
    /// it does it means the one on its search path.
    pub fn same_table(&self, other: &TableName) -> bool {
        self.name == other.name
            && match (&self.schema, &other.schema) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}
