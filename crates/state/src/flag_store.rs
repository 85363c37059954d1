//! The store's feature flags: the current set, changes to it (each one
//! transaction that bumps the revision and writes its audit entries), and
//! the audit history.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{Row, Transaction, params};

use crate::error::StateError;
use crate::flag_records::{
    FlagAuditRecord, FlagChange, FlagChangeOutcome, FlagRecord, FlagSetRecord, SegmentRecord,
};
use crate::store::{Fail, Store};

const FLAG: &str = "flag";
const SEGMENT: &str = "segment";

impl Store {
    /// Every flag and segment, with the set's revision, as one snapshot.
    pub fn flag_set(&self) -> Result<FlagSetRecord, StateError> {
        let path = self.path();
        self.read(
            || "reading the feature flags".to_owned(),
            |tx| read_set(tx, path),
        )
    }

    /// Saves `change` in one transaction: the flags and segments become
    /// exactly the ones it lists, every one added, changed or removed gets an
    /// audit entry, and the revision goes up by one. A change that touches
    /// nothing leaves the revision as it was and writes no entry.
    ///
    /// Fails with [`StateError::FlagRevisionMoved`] (and changes nothing)
    /// when the set is no longer at `change.base_revision`.
    pub fn change_flags(&self, change: &FlagChange) -> Result<FlagChangeOutcome, StateError> {
        let path = self.path();
        let outcome = self.write(
            || format!("saving a change to the feature flags ({})", change.action),
            |tx| write_change(tx, path, change),
        )?;
        tracing::debug!(
            revision = outcome.revision,
            touched = outcome.touched,
            action = %change.action,
            "flags saved"
        );
        Ok(outcome)
    }

    /// The audit entries of one flag (`Some(name)`) or of every flag and
    /// segment (`None`), newest first, at most `limit`.
    pub fn flag_history(
        &self,
        name: Option<&str>,
        limit: usize,
    ) -> Result<Vec<FlagAuditRecord>, StateError> {
        let path = self.path();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(
            || "reading the feature flag history".to_owned(),
            |tx| {
                let mut entries = Vec::new();
                let mut push = |row: &Row<'_>| -> Result<(), Fail> {
                    entries.push(decode_audit(row, path)?);
                    Ok(())
                };
                let columns = "revision, subject, name, action, who, at_ms, before_json, \
                               after_json";
                match name {
                    Some(name) => {
                        let mut stmt = tx.prepare_cached(&format!(
                            "SELECT {columns} FROM flag_audit \
                             WHERE subject = 'flag' AND name = ?1 ORDER BY id DESC LIMIT ?2"
                        ))?;
                        let mut rows = stmt.query(params![name, limit])?;
                        while let Some(row) = rows.next()? {
                            push(row)?;
                        }
                    }
                    None => {
                        let mut stmt = tx.prepare_cached(&format!(
                            "SELECT {columns} FROM flag_audit ORDER BY id DESC LIMIT ?1"
                        ))?;
                        let mut rows = stmt.query(params![limit])?;
                        while let Some(row) = rows.next()? {
                            push(row)?;
                        }
                    }
                }
                Ok(entries)
            },
        )
    }

    /// The last audit entry of every flag that has one (deleted flags
    /// included: theirs is the removal), oldest first: when each flag last
    /// changed and who changed it.
    pub fn flag_last_changes(&self) -> Result<Vec<FlagAuditRecord>, StateError> {
        let path = self.path();
        self.read(
            || "reading when each feature flag last changed".to_owned(),
            |tx| {
                let mut stmt = tx.prepare_cached(
                    "SELECT revision, subject, name, action, who, at_ms, before_json, \
                     after_json FROM flag_audit WHERE id IN \
                     (SELECT MAX(id) FROM flag_audit WHERE subject = 'flag' GROUP BY name) \
                     ORDER BY id",
                )?;
                let mut rows = stmt.query([])?;
                let mut entries = Vec::new();
                while let Some(row) = rows.next()? {
                    entries.push(decode_audit(row, path)?);
                }
                Ok(entries)
            },
        )
    }
}

fn read_revision(tx: &Transaction<'_>, path: &Path) -> Result<u64, Fail> {
    let revision: i64 = tx
        .prepare_cached("SELECT revision FROM flag_revision WHERE id = 1")?
        .query_row([], |row| row.get(0))?;
    Ok(unsigned(path, "the flag revision", "revision", revision)?)
}

fn read_set(tx: &Transaction<'_>, path: &Path) -> Result<FlagSetRecord, Fail> {
    let revision = read_revision(tx, path)?;
    let mut flags = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT name, definition, revision, updated_at_ms FROM flags ORDER BY position",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let name: String = row.get(0)?;
            let record = format!("flag {name:?}");
            flags.push(FlagRecord {
                definition_json: row.get(1)?,
                revision: unsigned(path, &record, "revision", row.get(2)?)?,
                updated_at_ms: unsigned(path, &record, "updated_at_ms", row.get(3)?)?,
                name,
            });
        }
    }
    let mut segments = Vec::new();
    {
        let mut stmt = tx.prepare_cached("SELECT id, definition FROM flag_segments ORDER BY id")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            segments.push(SegmentRecord {
                id: unsigned(path, &format!("segment {id}"), "id", id)?,
                definition_json: row.get(1)?,
            });
        }
    }
    Ok(FlagSetRecord {
        revision,
        flags,
        segments,
    })
}

fn write_change(
    tx: &Transaction<'_>,
    path: &Path,
    change: &FlagChange,
) -> Result<FlagChangeOutcome, Fail> {
    let before = read_set(tx, path)?;
    if before.revision != change.base_revision {
        return Err(StateError::FlagRevisionMoved {
            path: path.to_path_buf(),
            expected: change.base_revision,
            found: before.revision,
        }
        .into());
    }
    let revision = before.revision + 1;
    let at_ms = signed("a flag change", "at_ms", change.at_ms)?;
    let revision_int = signed("a flag change", "revision", revision)?;

    let mut audits: Vec<(&str, String, Option<&str>, Option<&str>)> = Vec::new();
    let old_flags: HashMap<&str, &FlagRecord> = before
        .flags
        .iter()
        .map(|flag| (flag.name.as_str(), flag))
        .collect();
    let new_names: HashMap<&str, ()> = change
        .flags
        .iter()
        .map(|(name, _)| (name.as_str(), ()))
        .collect();
    for (name, definition) in &change.flags {
        let old = old_flags.get(name.as_str());
        if old.map(|old| old.definition_json.as_str()) != Some(definition.as_str()) {
            audits.push((
                FLAG,
                name.clone(),
                old.map(|old| old.definition_json.as_str()),
                Some(definition.as_str()),
            ));
        }
    }
    for old in &before.flags {
        if !new_names.contains_key(old.name.as_str()) {
            audits.push((
                FLAG,
                old.name.clone(),
                Some(old.definition_json.as_str()),
                None,
            ));
        }
    }
    let old_segments: HashMap<u32, &str> = before
        .segments
        .iter()
        .map(|segment| (segment.id, segment.definition_json.as_str()))
        .collect();
    for (id, definition) in &change.segments {
        let old = old_segments.get(id).copied();
        if old != Some(definition.as_str()) {
            audits.push((SEGMENT, id.to_string(), old, Some(definition.as_str())));
        }
    }
    for segment in &before.segments {
        if !change.segments.iter().any(|(id, _)| *id == segment.id) {
            audits.push((
                SEGMENT,
                segment.id.to_string(),
                Some(segment.definition_json.as_str()),
                None,
            ));
        }
    }
    // Reordering alone is no change worth a revision: nothing evaluates
    // differently.
    if audits.is_empty() {
        return Ok(FlagChangeOutcome {
            revision: before.revision,
            touched: 0,
        });
    }

    tx.execute("DELETE FROM flags", [])?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO flags (name, position, definition, revision, updated_at_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (position, (name, definition)) in change.flags.iter().enumerate() {
            // A flag the change did not touch keeps when it last changed.
            let (flag_revision, updated_at_ms) = match old_flags.get(name.as_str()) {
                Some(old) if old.definition_json == *definition => (
                    signed("a flag", "revision", old.revision)?,
                    signed("a flag", "updated_at_ms", old.updated_at_ms)?,
                ),
                _ => (revision_int, at_ms),
            };
            let position = i64::try_from(position).unwrap_or(i64::MAX);
            insert.execute(params![
                name,
                position,
                definition,
                flag_revision,
                updated_at_ms
            ])?;
        }
    }
    tx.execute("DELETE FROM flag_segments", [])?;
    {
        let mut insert =
            tx.prepare_cached("INSERT INTO flag_segments (id, definition) VALUES (?1, ?2)")?;
        for (id, definition) in &change.segments {
            insert.execute(params![id, definition])?;
        }
    }
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO flag_audit \
             (revision, subject, name, action, who, at_ms, before_json, after_json) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for (subject, name, before_json, after_json) in &audits {
            insert.execute(params![
                revision_int,
                subject,
                name,
                change.action,
                change.who,
                at_ms,
                before_json,
                after_json
            ])?;
        }
    }
    tx.execute(
        "UPDATE flag_revision SET revision = ?1 WHERE id = 1",
        [revision_int],
    )?;
    Ok(FlagChangeOutcome {
        revision,
        touched: audits.len(),
    })
}

fn decode_audit(row: &Row<'_>, path: &Path) -> Result<FlagAuditRecord, Fail> {
    let revision: i64 = row.get(0)?;
    let record = format!("flag audit entry of revision {revision}");
    Ok(FlagAuditRecord {
        revision: unsigned(path, &record, "revision", revision)?,
        subject: row.get(1)?,
        name: row.get(2)?,
        action: row.get(3)?,
        who: row.get(4)?,
        at_ms: unsigned(path, &record, "at_ms", row.get(5)?)?,
        before_json: row.get(6)?,
        after_json: row.get(7)?,
    })
}

/// A stored integer read back into its unsigned field; one that does not
/// fit was not written by this crate.
fn unsigned<T: TryFrom<i64>>(
    path: &Path,
    record: &str,
    field: &'static str,
    value: i64,
) -> Result<T, StateError> {
    T::try_from(value).map_err(|_| StateError::CorruptRecord {
        path: path.to_path_buf(),
        record: record.to_owned(),
        field,
        detail: format!("{value} does not fit in a {}", std::any::type_name::<T>()),
    })
}

/// SQLite integers are signed 64-bit; refuse rather than wrap.
fn signed(record: &str, field: &'static str, value: u64) -> Result<i64, StateError> {
    i64::try_from(value).map_err(|_| StateError::RecordOutOfRange {
        record: record.to_owned(),
        field,
        value,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    fn change(base: u64, action: &str, flags: &[(&str, &str)]) -> FlagChange {
        FlagChange {
            base_revision: base,
            action: action.to_owned(),
            who: "alice".to_owned(),
            at_ms: 1_000 + base,
            flags: flags
                .iter()
                .map(|(name, json)| ((*name).to_owned(), (*json).to_owned()))
                .collect(),
            segments: Vec::new(),
        }
    }

    #[test]
    fn a_fresh_store_has_no_flags_at_revision_zero() {
        let store = Store::open_in_memory().unwrap();
        assert_eq!(store.flag_set().unwrap(), FlagSetRecord::default());
        assert!(store.flag_history(None, 10).unwrap().is_empty());
    }

    #[test]
    fn each_change_bumps_the_revision_and_audits_what_it_touched() {
        let store = Store::open_in_memory().unwrap();
        let first = store
            .change_flags(&change(0, "import", &[("a", "{1}"), ("b", "{2}")]))
            .unwrap();
        assert_eq!(
            first,
            FlagChangeOutcome {
                revision: 1,
                touched: 2
            }
        );
        let second = store
            .change_flags(&change(1, "off", &[("a", "{1}"), ("b", "{3}")]))
            .unwrap();
        assert_eq!(second.revision, 2);
        assert_eq!(second.touched, 1);

        let set = store.flag_set().unwrap();
        assert_eq!(set.revision, 2);
        let flags: Vec<_> = set
            .flags
            .iter()
            .map(|flag| (flag.name.as_str(), flag.revision, flag.updated_at_ms))
            .collect();
        assert_eq!(flags, [("a", 1, 1_000), ("b", 2, 1_001)]);

        let history = store.flag_history(Some("b"), 10).unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].revision, 2);
        assert_eq!(history[0].action, "off");
        assert_eq!(history[0].who, "alice");
        assert_eq!(history[0].before_json.as_deref(), Some("{2}"));
        assert_eq!(history[0].after_json.as_deref(), Some("{3}"));
        assert_eq!(history[1].before_json, None);
        assert_eq!(store.flag_history(None, 1).unwrap().len(), 1);
    }

    #[test]
    fn removals_are_audited_and_no_op_changes_keep_the_revision() {
        let store = Store::open_in_memory().unwrap();
        store
            .change_flags(&change(0, "set", &[("a", "{1}"), ("b", "{2}")]))
            .unwrap();
        let same = store
            .change_flags(&change(1, "on", &[("a", "{1}"), ("b", "{2}")]))
            .unwrap();
        assert_eq!(
            same,
            FlagChangeOutcome {
                revision: 1,
                touched: 0
            }
        );
        let removed = store
            .change_flags(&change(1, "delete", &[("b", "{2}")]))
            .unwrap();
        assert_eq!(removed.revision, 2);
        let history = store.flag_history(Some("a"), 10).unwrap();
        assert_eq!(history[0].action, "delete");
        assert_eq!(history[0].after_json, None);
        let names: Vec<_> = store
            .flag_set()
            .unwrap()
            .flags
            .into_iter()
            .map(|flag| flag.name)
            .collect();
        assert_eq!(names, ["b"]);
    }

    #[test]
    fn segments_are_kept_and_audited() {
        let store = Store::open_in_memory().unwrap();
        let mut with_segment = change(0, "import", &[("a", "{1}")]);
        with_segment.segments = vec![(7, "{seg}".to_owned())];
        store.change_flags(&with_segment).unwrap();
        let set = store.flag_set().unwrap();
        assert_eq!(
            set.segments,
            [SegmentRecord {
                id: 7,
                definition_json: "{seg}".to_owned()
            }]
        );
        let history = store.flag_history(None, 10).unwrap();
        assert!(
            history
                .iter()
                .any(|entry| entry.subject == "segment" && entry.name == "7")
        );
        // Gone from the next change: removed, and audited as such.
        store
            .change_flags(&change(1, "import", &[("a", "{1}")]))
            .unwrap();
        assert!(store.flag_set().unwrap().segments.is_empty());
        let latest = &store.flag_history(None, 1).unwrap()[0];
        assert_eq!(
            (latest.subject.as_str(), latest.after_json.as_deref()),
            ("segment", None)
        );
    }

    #[test]
    fn a_change_against_an_old_revision_is_refused_and_changes_nothing() {
        let store = Store::open_in_memory().unwrap();
        store
            .change_flags(&change(0, "set", &[("a", "{1}")]))
            .unwrap();
        let error = store
            .change_flags(&change(0, "set", &[("a", "{2}")]))
            .unwrap_err();
        assert!(
            matches!(
                error,
                StateError::FlagRevisionMoved {
                    expected: 0,
                    found: 1,
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(store.flag_set().unwrap().flags[0].definition_json, "{1}");
        assert_eq!(store.flag_history(None, 10).unwrap().len(), 1);
    }

    #[test]
    fn each_flag_s_last_change_is_its_newest_audit_entry() {
        let store = Store::open_in_memory().unwrap();
        assert!(store.flag_last_changes().unwrap().is_empty());
        let mut first = change(0, "import", &[("a", "{1}"), ("b", "{2}"), ("c", "{3}")]);
        first.segments = vec![(7, "{seg}".to_owned())];
        store.change_flags(&first).unwrap();
        let mut second = change(1, "off", &[("a", "{1}"), ("b", "{4}")]);
        second.who = "bob".to_owned();
        store.change_flags(&second).unwrap();
        let last: Vec<_> = store
            .flag_last_changes()
            .unwrap()
            .into_iter()
            .map(|entry| (entry.name, entry.action, entry.who, entry.at_ms))
            .collect();
        let entry = |name: &str, action: &str, who: &str, at_ms| {
            (name.to_owned(), action.to_owned(), who.to_owned(), at_ms)
        };
        assert_eq!(
            last,
            [
                entry("a", "import", "alice", 1_000),
                entry("b", "off", "bob", 1_001),
                entry("c", "off", "bob", 1_001),
            ],
            "one entry per flag, the newest, segments left out"
        );
    }

    #[test]
    fn flags_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = Store::open(&path).unwrap();
        store
            .change_flags(&change(0, "set", &[("z", "{1}"), ("a", "{2}")]))
            .unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        let set = store.flag_set().unwrap();
        assert_eq!(set.revision, 1);
        let names: Vec<_> = set.flags.iter().map(|flag| flag.name.as_str()).collect();
        assert_eq!(names, ["z", "a"], "the document's order is kept");
    }
}
