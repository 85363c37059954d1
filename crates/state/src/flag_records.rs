//! The records of feature flags: the current set, a change to it, and the
//! audit entries changes leave. Plain data, no behaviour.
//!
//! Definitions are Unleash's JSON as text: the daemon (with `baton-flags`)
//! owns their meaning, and the store compares them only as text to tell
//! what a change touched.

use serde::{Deserialize, Serialize};

/// One flag as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagRecord {
    /// The flag's name, unique.
    pub name: String,
    /// The flag as one Unleash feature, JSON text.
    pub definition_json: String,
    /// The revision that last changed it.
    pub revision: u64,
    /// When it last changed, unix epoch millis.
    pub updated_at_ms: u64,
}

/// One segment (a shared set of constraints) as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRecord {
    /// The id strategies refer to it by.
    pub id: u32,
    /// The segment as Unleash writes it, JSON text.
    pub definition_json: String,
}

/// Every flag and segment at one revision.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagSetRecord {
    /// The set's revision: 0 before the first change, then one more per
    /// change.
    pub revision: u64,
    /// The flags, in the document's order.
    pub flags: Vec<FlagRecord>,
    /// The segments, by id.
    pub segments: Vec<SegmentRecord>,
}

/// A change to the flags: the whole set as it is to be, and who made it.
/// The store works out which flags and segments it touched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagChange {
    /// The revision the change was made against; the change is refused if
    /// the set has moved on since (another writer got there first).
    pub base_revision: u64,
    /// What was done, for the audit (`set`, `on`, `off`, `delete`,
    /// `import`, ...).
    pub action: String,
    /// Who did it: an OS user, or the admin listener's caller.
    pub who: String,
    /// When, unix epoch millis.
    pub at_ms: u64,
    /// Every flag as it is to be, in order: `(name, definition JSON)`.
    pub flags: Vec<(String, String)>,
    /// Every segment as it is to be: `(id, definition JSON)`.
    pub segments: Vec<(u32, String)>,
}

/// What a saved change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagChangeOutcome {
    /// The set's revision now: one more than before, or the same when the
    /// change touched nothing.
    pub revision: u64,
    /// How many flags and segments it added, changed or removed.
    pub touched: usize,
}

/// One flag or segment one change touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagAuditRecord {
    /// The revision the change made.
    pub revision: u64,
    /// `flag` or `segment`.
    pub subject: String,
    /// The flag's name, or the segment's id as text.
    pub name: String,
    /// What was done (`set`, `on`, `off`, `delete`, `import`, ...).
    pub action: String,
    /// Who did it.
    pub who: String,
    /// When, unix epoch millis.
    pub at_ms: u64,
    /// The definition before; `None` when it did not exist.
    pub before_json: Option<String>,
    /// The definition after; `None` when it was removed.
    pub after_json: Option<String>,
}
