//! One parsed statement and the parts of it that rules look at.

use pg_query::NodeEnum;
use pg_query::protobuf::{
    AlterTableCmd, AlterTableType, ColumnDef, ConstrType, Constraint, ObjectType, RenameStmt,
    TypeName,
};

use crate::table_name::TableName;

/// One statement of a migration: its parse tree and where its first token
/// is in the file. The accessors below walk the few shapes that many rules
/// share (ALTER TABLE's commands, the columns a statement declares, the
/// constraints it adds), so each rule states only its own condition.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Statement<'a> {
    node: &'a NodeEnum,
    start: usize,
}

/// A column a statement declares or retypes, with what the hygiene rules
/// need to judge its type.
#[derive(Debug)]
pub(crate) struct DeclaredColumn<'a> {
    pub(crate) table: TableName,
    pub(crate) column: &'a str,
    pub(crate) type_name: &'a TypeName,
    /// Whether it is (part of) the primary key or an identity column: a key
    /// whose values only grow.
    pub(crate) is_key: bool,
}

impl<'a> Statement<'a> {
    pub(crate) fn new(node: &'a NodeEnum, start: usize) -> Self {
        Statement { node, start }
    }

    /// The parse tree.
    pub(crate) fn node(&self) -> &'a NodeEnum {
        self.node
    }

    /// Byte offset of the statement's first token in the file.
    pub(crate) fn start(&self) -> usize {
        self.start
    }

    /// The commands of an `ALTER TABLE` (not `ALTER INDEX`, `ALTER VIEW`…),
    /// each with the table it alters.
    pub(crate) fn alter_table_commands(&self) -> Vec<(TableName, &'a AlterTableCmd)> {
        let NodeEnum::AlterTableStmt(alter) = self.node else {
            return Vec::new();
        };
        if alter.objtype() != ObjectType::ObjectTable {
            return Vec::new();
        }
        let Some(relation) = &alter.relation else {
            return Vec::new();
        };
        let table = TableName::from_range_var(relation);
        alter
            .cmds
            .iter()
            .filter_map(|cmd| match &cmd.node {
                Some(NodeEnum::AlterTableCmd(cmd)) => Some((table.clone(), cmd.as_ref())),
                _ => None,
            })
            .collect()
    }

    /// The commands of an `ALTER TABLE` of one kind.
    pub(crate) fn alter_table_commands_of(
        &self,
        subtype: AlterTableType,
    ) -> Vec<(TableName, &'a AlterTableCmd)> {
        let mut commands = self.alter_table_commands();
        commands.retain(|(_, cmd)| cmd.subtype() == subtype);
        commands
    }

    /// The columns `ALTER TABLE … ADD COLUMN` adds to an existing table.
    pub(crate) fn added_columns(&self) -> Vec<(TableName, &'a ColumnDef)> {
        self.alter_table_commands_of(AlterTableType::AtAddColumn)
            .into_iter()
            .filter_map(|(table, cmd)| column_def(cmd).map(|def| (table, def)))
            .collect()
    }

    /// The constraints an `ALTER TABLE` adds: `ADD CONSTRAINT …` and those
    /// written on an added column (`ADD COLUMN x int REFERENCES y`).
    pub(crate) fn added_constraints(&self) -> Vec<(TableName, &'a Constraint)> {
        let mut constraints = Vec::new();
        for (table, cmd) in self.alter_table_commands() {
            match cmd.subtype() {
                AlterTableType::AtAddConstraint => {
                    if let Some(NodeEnum::Constraint(constraint)) =
                        cmd.def.as_ref().and_then(|def| def.node.as_ref())
                    {
                        constraints.push((table, constraint.as_ref()));
                    }
                }
                AlterTableType::AtAddColumn => {
                    if let Some(def) = column_def(cmd) {
                        constraints.extend(column_constraints(def).map(|c| (table.clone(), c)));
                    }
                }
                _ => {}
            }
        }
        constraints
    }

    /// The added constraints of one kind.
    pub(crate) fn added_constraints_of(
        &self,
        kind: ConstrType,
    ) -> Vec<(TableName, &'a Constraint)> {
        let mut constraints = self.added_constraints();
        constraints.retain(|(_, constraint)| constraint.contype() == kind);
        constraints
    }

    /// Every column whose type this statement chooses: `CREATE TABLE`'s
    /// columns, `ADD COLUMN` and `ALTER COLUMN … TYPE`.
    pub(crate) fn declared_columns(&self) -> Vec<DeclaredColumn<'a>> {
        let mut columns = Vec::new();
        match self.node {
            NodeEnum::CreateStmt(create) => {
                let Some(relation) = &create.relation else {
                    return columns;
                };
                let table = TableName::from_range_var(relation);
                let table_keys: Vec<&str> = create
                    .table_elts
                    .iter()
                    .filter_map(|element| match &element.node {
                        Some(NodeEnum::Constraint(c))
                            if c.contype() == ConstrType::ConstrPrimary =>
                        {
                            Some(c.keys.iter().filter_map(string_value))
                        }
                        _ => None,
                    })
                    .flatten()
                    .collect();
                for element in &create.table_elts {
                    if let Some(NodeEnum::ColumnDef(def)) = &element.node {
                        let in_table_key = table_keys.contains(&def.colname.as_str());
                        columns.extend(declared(&table, &def.colname, def, in_table_key));
                    }
                }
            }
            NodeEnum::AlterTableStmt(_) => {
                for (table, cmd) in self.alter_table_commands() {
                    let Some(def) = column_def(cmd) else { continue };
                    match cmd.subtype() {
                        AlterTableType::AtAddColumn => {
                            columns.extend(declared(&table, &def.colname, def, false));
                        }
                        // ALTER COLUMN … TYPE names the column on the command.
                        AlterTableType::AtAlterColumnType => {
                            columns.extend(declared(&table, &cmd.name, def, false));
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
        columns
    }

    /// The existing table this statement locks against the app's reads or
    /// writes while it runs, if any: what `lock_timeout` must guard.
    pub(crate) fn locked_table(&self) -> Option<TableName> {
        let relation = match self.node {
            NodeEnum::AlterTableStmt(alter) => alter.relation.as_ref(),
            NodeEnum::IndexStmt(index) if !index.concurrent => index.relation.as_ref(),
            NodeEnum::RenameStmt(rename) => rename.relation.as_ref(),
            NodeEnum::ClusterStmt(cluster) => cluster.relation.as_ref(),
            NodeEnum::CreateTrigStmt(trigger) => trigger.relation.as_ref(),
            NodeEnum::TruncateStmt(truncate) => truncate.relations.iter().find_map(range_var),
            NodeEnum::VacuumStmt(vacuum)
                if vacuum.is_vacuumcmd && has_option(&vacuum.options, "full") =>
            {
                vacuum.rels.iter().find_map(|rel| match &rel.node {
                    Some(NodeEnum::VacuumRelation(rel)) => rel.relation.as_ref(),
                    _ => None,
                })
            }
            NodeEnum::DropStmt(drop) if drop.remove_type() == ObjectType::ObjectTable => {
                return self.dropped_names().into_iter().next().and_then(|parts| {
                    TableName::from_parts(&parts.iter().map(String::as_str).collect::<Vec<_>>())
                });
            }
            _ => None,
        }?;
        Some(TableName::from_range_var(relation))
    }

    /// Whether the statement asks for `CONCURRENTLY`, which PostgreSQL
    /// refuses inside a transaction block.
    pub(crate) fn is_concurrent(&self) -> bool {
        match self.node {
            NodeEnum::IndexStmt(index) => index.concurrent,
            NodeEnum::DropStmt(drop) => drop.concurrent,
            NodeEnum::ReindexStmt(reindex) => has_option(&reindex.params, "concurrently"),
            NodeEnum::AlterTableStmt(_) => self.alter_table_commands().iter().any(|(_, cmd)| {
                matches!(
                    cmd.def.as_ref().and_then(|def| def.node.as_ref()),
                    Some(NodeEnum::PartitionCmd(partition)) if partition.concurrent
                )
            }),
            _ => false,
        }
    }

    /// A `CREATE INDEX CONCURRENTLY`: the table it indexes and the index's
    /// name, if the statement gives one. A failed build leaves an INVALID
    /// index behind that the runner must drop.
    pub(crate) fn concurrent_index(&self) -> Option<(TableName, Option<String>)> {
        match self.node {
            NodeEnum::IndexStmt(index) if index.concurrent => {
                let table = TableName::from_range_var(index.relation.as_ref()?);
                Some((
                    table,
                    (!index.idxname.is_empty()).then(|| index.idxname.clone()),
                ))
            }
            _ => None,
        }
    }

    /// Whether this is `BEGIN`, `COMMIT`, `ROLLBACK`, a savepoint or the
    /// like: transaction control that belongs to the runner.
    pub(crate) fn is_transaction_control(&self) -> bool {
        matches!(self.node, NodeEnum::TransactionStmt(_))
    }

    /// An `ALTER TABLE … RENAME` of `kind` (`ObjectColumn` for a column,
    /// `ObjectTable` for the table itself), with the table it renames in.
    pub(crate) fn renamed(&self, kind: ObjectType) -> Option<(TableName, &'a RenameStmt)> {
        match self.node {
            NodeEnum::RenameStmt(rename) if rename.rename_type() == kind => {
                let table = TableName::from_range_var(rename.relation.as_ref()?);
                Some((table, rename))
            }
            _ => None,
        }
    }

    /// The dotted names a `DROP` statement lists (`DROP TABLE a, s.b`).
    pub(crate) fn dropped_names(&self) -> Vec<Vec<String>> {
        let NodeEnum::DropStmt(drop) = self.node else {
            return Vec::new();
        };
        drop.objects
            .iter()
            .filter_map(|object| match &object.node {
                Some(NodeEnum::List(list)) => Some(
                    list.items
                        .iter()
                        .filter_map(string_value)
                        .map(str::to_owned)
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    }
}

/// The column definition an `ADD COLUMN` or `ALTER COLUMN … TYPE` carries.
pub(crate) fn column_def(cmd: &AlterTableCmd) -> Option<&ColumnDef> {
    match cmd.def.as_ref().and_then(|def| def.node.as_ref()) {
        Some(NodeEnum::ColumnDef(def)) => Some(def),
        _ => None,
    }
}

/// The constraints written on a column (`NOT NULL`, `DEFAULT`, `REFERENCES`…).
pub(crate) fn column_constraints(def: &ColumnDef) -> impl Iterator<Item = &Constraint> {
    def.constraints
        .iter()
        .filter_map(|constraint| match &constraint.node {
            Some(NodeEnum::Constraint(constraint)) => Some(constraint.as_ref()),
            _ => None,
        })
}

/// The first constraint of one kind on a column.
pub(crate) fn column_constraint(def: &ColumnDef, kind: ConstrType) -> Option<&Constraint> {
    column_constraints(def).find(|constraint| constraint.contype() == kind)
}

/// The text of a `String` node.
pub(crate) fn string_value(node: &pg_query::protobuf::Node) -> Option<&str> {
    match &node.node {
        Some(NodeEnum::String(string)) => Some(&string.sval),
        _ => None,
    }
}

/// A byte offset from a parse-tree `location` (-1 when unknown).
pub(crate) fn location(location: i32) -> Option<usize> {
    usize::try_from(location).ok()
}

fn range_var(node: &pg_query::protobuf::Node) -> Option<&pg_query::protobuf::RangeVar> {
    match &node.node {
        Some(NodeEnum::RangeVar(range_var)) => Some(range_var),
        _ => None,
    }
}

/// Whether a utility statement's option list (`VACUUM (FULL)`, `REINDEX
/// (CONCURRENTLY)`) names `option`.
pub(crate) fn has_option(options: &[pg_query::protobuf::Node], option: &str) -> bool {
    options.iter().any(
        |node| matches!(&node.node, Some(NodeEnum::DefElem(element)) if element.defname == option),
    )
}

fn declared<'a>(
    table: &TableName,
    column: &'a str,
    def: &'a ColumnDef,
    in_table_key: bool,
) -> Option<DeclaredColumn<'a>> {
    let type_name = def.type_name.as_ref()?;
    let is_key = in_table_key
        || column_constraint(def, ConstrType::ConstrPrimary).is_some()
        || column_constraint(def, ConstrType::ConstrIdentity).is_some();
    Some(DeclaredColumn {
        table: table.clone(),
        column,
        type_name,
        is_key,
    })
}
