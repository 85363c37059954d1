//! What a migration file has done before the statement being judged.

use pg_query::NodeEnum;
use pg_query::protobuf::{
    AlterTableType, ConstrType, Constraint, NullTestType, TransactionStmtKind, VariableSetKind,
};

use crate::options::LintOptions;
use crate::phase::Phase;
use crate::statement::{Statement, string_value};
use crate::table_name::TableName;

/// What the file has done before the statement a rule judges, and the
/// settings of the run. Rules only read it; the linter updates it after
/// each statement with [`Context::observe`].
#[derive(Debug)]
pub(crate) struct Context<'a> {
    pub(crate) options: &'a LintOptions,
    pub(crate) phase: Phase,
    /// Whether baton's runner will run the whole file in one transaction:
    /// it does unless the file uses CONCURRENTLY, which cannot run in one.
    pub(crate) single_transaction: bool,
    created_tables: Vec<TableName>,
    created_indexes: Vec<(String, TableName)>,
    not_null_checks: Vec<NotNullCheck>,
    /// Constraints this file added NOT VALID, with the explicit transaction
    /// (if any) they were added in.
    added_not_valid: Vec<(TableName, String, Option<u32>)>,
    /// The explicit transaction (BEGIN … COMMIT) the file is inside.
    transaction: Option<u32>,
    transactions_begun: u32,
    lock_timeout_set: bool,
    unguarded_lock_taken: bool,
}

/// A `CHECK (column IS NOT NULL)` constraint, which lets `SET NOT NULL`
/// skip its table scan once validated (PostgreSQL 12+). Carried from file
/// to file of one run, since the safe way spreads over migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotNullCheck {
    table: TableName,
    constraint: String,
    column: String,
    validated: bool,
}

impl<'a> Context<'a> {
    /// The context at the top of a file, knowing the not-null checks that
    /// earlier files of the same run added.
    pub(crate) fn new(
        options: &'a LintOptions,
        phase: Phase,
        single_transaction: bool,
        not_null_checks: Vec<NotNullCheck>,
    ) -> Self {
        Context {
            options,
            phase,
            single_transaction,
            created_tables: Vec::new(),
            created_indexes: Vec::new(),
            not_null_checks,
            added_not_valid: Vec::new(),
            transaction: None,
            transactions_begun: 0,
            lock_timeout_set: false,
            unguarded_lock_taken: false,
        }
    }

    /// What later files of the run need to know.
    pub(crate) fn into_not_null_checks(self) -> Vec<NotNullCheck> {
        self.not_null_checks
    }

    /// Whether this file created `table` before the current statement.
    pub(crate) fn created_here(&self, table: &TableName) -> bool {
        self.created_tables
            .iter()
            .any(|created| created.same_table(table))
    }

    /// The table of an index this file created, if it did.
    pub(crate) fn index_table(&self, index: &str) -> Option<&TableName> {
        self.created_indexes
            .iter()
            .find(|(name, _)| name == index)
            .map(|(_, table)| table)
    }

    /// Whether a validated `CHECK (column IS NOT NULL)` exists on `table`.
    pub(crate) fn has_validated_not_null_check(&self, table: &TableName, column: &str) -> bool {
        self.not_null_checks
            .iter()
            .any(|check| check.validated && check.column == column && check.table.same_table(table))
    }

    /// Whether validating `constraint` now would run in the same transaction
    /// as the ADD … NOT VALID that this file ran, whose lock is still held.
    pub(crate) fn validates_in_adding_transaction(
        &self,
        table: &TableName,
        constraint: &str,
    ) -> bool {
        self.added_not_valid
            .iter()
            .any(|(added_table, name, transaction)| {
                name == constraint
                    && added_table.same_table(table)
                    && (self.single_transaction
                        || (transaction.is_some() && *transaction == self.transaction))
            })
    }

    /// Whether the statement runs inside an explicit transaction block.
    pub(crate) fn in_transaction_block(&self) -> bool {
        self.transaction.is_some()
    }

    /// Whether an earlier statement already took a lock on an existing
    /// table with no `lock_timeout` set (reported once, there).
    pub(crate) fn unguarded_lock_taken(&self) -> bool {
        self.unguarded_lock_taken
    }

    /// Whether the file has set a non-zero `lock_timeout`.
    pub(crate) fn lock_timeout_set(&self) -> bool {
        self.lock_timeout_set
    }

    /// Records what `statement` did, for the statements after it.
    pub(crate) fn observe(&mut self, statement: &Statement<'_>) {
        if let Some(table) = statement.locked_table()
            && !self.created_here(&table)
            && !self.lock_timeout_set
        {
            self.unguarded_lock_taken = true;
        }
        match statement.node() {
            NodeEnum::CreateStmt(create) => {
                if let Some(relation) = &create.relation {
                    self.created_tables
                        .push(TableName::from_range_var(relation));
                }
            }
            NodeEnum::CreateTableAsStmt(create) => {
                if let Some(relation) = create.into.as_ref().and_then(|into| into.rel.as_ref()) {
                    self.created_tables
                        .push(TableName::from_range_var(relation));
                }
            }
            NodeEnum::IndexStmt(index) => {
                if let Some(relation) = &index.relation
                    && !index.idxname.is_empty()
                {
                    self.created_indexes
                        .push((index.idxname.clone(), TableName::from_range_var(relation)));
                }
            }
            NodeEnum::TransactionStmt(transaction) => match transaction.kind() {
                TransactionStmtKind::TransStmtBegin | TransactionStmtKind::TransStmtStart => {
                    self.transactions_begun += 1;
                    self.transaction = Some(self.transactions_begun);
                }
                TransactionStmtKind::TransStmtCommit
                | TransactionStmtKind::TransStmtRollback
                | TransactionStmtKind::TransStmtPrepare => self.transaction = None,
                _ => {}
            },
            NodeEnum::VariableSetStmt(set) if set.name == "lock_timeout" => {
                self.lock_timeout_set =
                    set.kind() == VariableSetKind::VarSetValue && !set.args.iter().all(is_zero);
            }
            NodeEnum::AlterTableStmt(_) => self.observe_alter_table(statement),
            _ => {}
        }
    }

    fn observe_alter_table(&mut self, statement: &Statement<'_>) {
        for (table, constraint) in statement.added_constraints() {
            if !constraint.initially_valid && !constraint.conname.is_empty() {
                self.added_not_valid.push((
                    table.clone(),
                    constraint.conname.clone(),
                    self.transaction,
                ));
            }
            if let Some(column) = not_null_check_column(constraint) {
                self.not_null_checks.push(NotNullCheck {
                    table,
                    constraint: constraint.conname.clone(),
                    column: column.to_owned(),
                    validated: constraint.initially_valid,
                });
            }
        }
        for (table, cmd) in statement.alter_table_commands() {
            let same = |check: &NotNullCheck| {
                check.constraint == cmd.name && check.table.same_table(&table)
            };
            match cmd.subtype() {
                AlterTableType::AtValidateConstraint => {
                    for check in self.not_null_checks.iter_mut().filter(|check| same(check)) {
                        check.validated = true;
                    }
                }
                AlterTableType::AtDropConstraint => {
                    self.not_null_checks.retain(|check| !same(check))
                }
                _ => {}
            }
        }
    }
}

/// The column of a `CHECK (column IS NOT NULL)` constraint.
fn not_null_check_column(constraint: &Constraint) -> Option<&str> {
    if constraint.contype() != ConstrType::ConstrCheck {
        return None;
    }
    let Some(NodeEnum::NullTest(test)) = constraint.raw_expr.as_ref().and_then(|e| e.node.as_ref())
    else {
        return None;
    };
    if test.nulltesttype() != NullTestType::IsNotNull {
        return None;
    }
    match test.arg.as_ref().and_then(|arg| arg.node.as_ref()) {
        Some(NodeEnum::ColumnRef(column)) if column.fields.len() == 1 => {
            string_value(&column.fields[0])
        }
        _ => None,
    }
}

/// Whether a `SET lock_timeout` value turns the timeout off (`0`, `'0'`,
/// `'0s'`).
fn is_zero(value: &pg_query::protobuf::Node) -> bool {
    use pg_query::protobuf::a_const::Val;
    match &value.node {
        Some(NodeEnum::AConst(constant)) => match &constant.val {
            Some(Val::Ival(integer)) => integer.ival == 0,
            Some(Val::Sval(text)) => text
                .sval
                .trim_start_matches('0')
                .trim()
                .chars()
                .all(char::is_alphabetic),
            Some(Val::Fval(float)) => float.fval.parse::<f64>().is_ok_and(|v| v == 0.0),
            _ => false,
        },
        _ => false,
    }
}
