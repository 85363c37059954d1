//! The shape every lint rule shares.

use crate::context::Context;
use crate::level::Level;
use crate::statement::Statement;
use crate::table_name::TableName;

/// What a rule protects, which decides its level and where it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concern {
    /// The change breaks the version still running during the deploy (it
    /// reads a dropped column, inserts without a new required one). Allowed
    /// in a contract migration, which runs only once the old version is gone.
    OldVersion,
    /// The change holds a lock that stalls the app's queries, or rewrites
    /// the table under one. Checked in every phase.
    Lock,
    /// A schema choice that costs later (a 32-bit key, `json`). A warning.
    Hygiene,
}

/// One lint rule: a stable name, what it protects, the safe way, and a pure
/// check over one statement and what the file did before it.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Stable kebab-case name, used in output and in `-- baton:allow`.
    pub name: &'static str,
    /// What it protects.
    pub concern: Concern,
    /// One line on why the flagged change hurts, for listings.
    pub summary: &'static str,
    /// The safe multi-step way to make the same change.
    pub help: &'static str,
    /// Finds this rule's problems in one statement.
    pub(crate) check: fn(&Statement<'_>, &Context<'_>) -> Vec<Hit>,
}

impl Rule {
    /// Errors fail the lint; hygiene rules only warn.
    pub fn level(&self) -> Level {
        match self.concern {
            Concern::Hygiene => Level::Warning,
            Concern::OldVersion | Concern::Lock => Level::Error,
        }
    }
}

/// One problem a rule found in a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hit {
    /// What goes wrong here, naming the table and column.
    pub(crate) message: String,
    /// The table it happens to: a table created earlier in the same file is
    /// empty and unknown to the old version, so hits on it are dropped
    /// (except hygiene ones).
    pub(crate) table: Option<TableName>,
    /// Byte offset of the part at fault, when finer than the statement.
    pub(crate) location: Option<usize>,
}

impl Hit {
    pub(crate) fn new(message: impl Into<String>) -> Hit {
        Hit {
            message: message.into(),
            table: None,
            location: None,
        }
    }

    /// The table the problem happens to.
    pub(crate) fn on(mut self, table: &TableName) -> Hit {
        self.table = Some(table.clone());
        self
    }

    /// The table the problem happens to, when the statement names one.
    pub(crate) fn on_table(mut self, table: Option<&TableName>) -> Hit {
        self.table = table.cloned();
        self
    }

    /// Points at a parse-tree location (-1 keeps the statement's start).
    pub(crate) fn at(mut self, location: i32) -> Hit {
        self.location = crate::statement::location(location);
        self
    }
}
