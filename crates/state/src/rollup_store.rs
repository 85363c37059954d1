//! The store's minute rollups: appended by the daemon's rollup writer once a
//! minute, read back per app over a span, pruned by age.

use std::path::Path;

use rusqlite::{Row, params};

use crate::app_store::{Columns, all, to_int};
use crate::error::StateError;
use crate::rollup_records::RollupRecord;
use crate::store::{Fail, Store};

impl Store {
    /// Appends `rollups` in one transaction. Rows are facts, never merged:
    /// two rollups of the same minute (a restart inside it) both stay.
    pub fn add_rollups(&self, rollups: &[RollupRecord]) -> Result<(), StateError> {
        if rollups.is_empty() {
            return Ok(());
        }
        self.write(
            || format!("saving {} minute rollups", rollups.len()),
            |tx| {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO rollups (app, version, minute_ms, until_ms, requests, errors, \
                       latency) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                for rollup in rollups {
                    let record = describe_rollup(&rollup.app, &rollup.version);
                    insert.execute(params![
                        rollup.app,
                        rollup.version,
                        to_int(&record, "minute_ms", rollup.minute_ms)?,
                        to_int(&record, "until_ms", rollup.until_ms)?,
                        to_int(&record, "requests", rollup.requests)?,
                        to_int(&record, "errors", rollup.errors)?,
                        rollup.latency,
                    ])?;
                }
                Ok(())
            },
        )?;
        tracing::debug!(rollups = rollups.len(), "minute rollups saved");
        Ok(())
    }

    /// The rollups of `app` whose minute starts at or after `from_ms` and
    /// whose counts were read by `until_ms`, oldest first: exactly the
    /// requests that finished between those instants, to within a minute at
    /// the start.
    pub fn rollups(
        &self,
        app: &str,
        from_ms: u64,
        until_ms: u64,
    ) -> Result<Vec<RollupRecord>, StateError> {
        let path = self.path();
        let record = format!("the minute rollups of app {app:?}");
        self.read(
            || format!("reading {record}"),
            |tx| {
                let mut stmt = tx.prepare_cached(
                    "SELECT app, version, minute_ms, until_ms, requests, errors, latency \
                     FROM rollups WHERE app = ?1 AND minute_ms >= ?2 AND until_ms <= ?3 \
                     ORDER BY minute_ms, rowid",
                )?;
                let from_ms = to_int(&record, "from_ms", from_ms)?;
                let until_ms = to_int(&record, "until_ms", until_ms.min(i64::MAX as u64))?;
                all(
                    stmt.query(params![app, from_ms, until_ms])?,
                    path,
                    decode_rollup,
                )
            },
        )
    }

    /// Deletes every rollup of a minute before `before_ms`; returns how many.
    pub fn prune_rollups(&self, before_ms: u64) -> Result<usize, StateError> {
        let record = "the minute rollups".to_owned();
        let deleted = self.write(
            || format!("pruning {record}"),
            |tx| {
                let before_ms = to_int(&record, "before_ms", before_ms.min(i64::MAX as u64))?;
                Ok(tx
                    .prepare_cached("DELETE FROM rollups WHERE minute_ms < ?1")?
                    .execute([before_ms])?)
            },
        )?;
        if deleted > 0 {
            tracing::debug!(deleted, "old minute rollups pruned");
        }
        Ok(deleted)
    }
}

fn describe_rollup(app: &str, version: &str) -> String {
    format!("minute rollup of version {version:?} of app {app:?}")
}

fn decode_rollup(row: &Row<'_>, path: &Path) -> Result<RollupRecord, Fail> {
    let app: String = row.get(0)?;
    let version: String = row.get(1)?;
    let columns = Columns::new(row, path, describe_rollup(&app, &version));
    Ok(RollupRecord {
        minute_ms: columns.unsigned(2, "minute_ms")?,
        until_ms: columns.unsigned(3, "until_ms")?,
        requests: columns.unsigned(4, "requests")?,
        errors: columns.unsigned(5, "errors")?,
        latency: row.get(6)?,
        app,
        version,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    const MINUTE: u64 = 60_000;
    /// 2026-01-01T10:00:00Z.
    const T0: u64 = 1_767_261_600_000;

    fn rollup(app: &str, version: &str, minute: u64, requests: u64) -> RollupRecord {
        RollupRecord {
            app: app.to_owned(),
            version: version.to_owned(),
            minute_ms: T0 + minute * MINUTE,
            until_ms: T0 + (minute + 1) * MINUTE + 3,
            requests,
            errors: requests / 10,
            latency: vec![1, 0, 4, requests as u8],
        }
    }

    #[test]
    fn rollups_round_trip_per_app_and_span() {
        let store = Store::open_in_memory().unwrap();
        let rows = [
            rollup("web", "v1", 0, 10),
            rollup("web", "v1", 1, 20),
            rollup("api", "v7", 1, 99),
            rollup("web", "v2", 2, 30),
            // The same minute twice: a restart inside it.
            rollup("web", "v2", 2, 5),
        ];
        store.add_rollups(&rows).unwrap();
        store.add_rollups(&[]).unwrap();
        assert_eq!(
            store.rollups("web", 0, u64::MAX).unwrap(),
            [&rows[0], &rows[1], &rows[3], &rows[4]].map(Clone::clone)
        );
        // From minute 1, read by the end of minute 1.
        let span = store
            .rollups("web", T0 + MINUTE, T0 + 2 * MINUTE + 3)
            .unwrap();
        assert_eq!(span, [rows[1].clone()]);
        assert!(store.rollups("nothing", 0, u64::MAX).unwrap().is_empty());
    }

    #[test]
    fn pruning_deletes_old_minutes_of_every_app() {
        let store = Store::open_in_memory().unwrap();
        store
            .add_rollups(&[
                rollup("web", "v1", 0, 1),
                rollup("api", "v1", 0, 1),
                rollup("web", "v1", 1, 1),
            ])
            .unwrap();
        assert_eq!(store.prune_rollups(T0 + MINUTE).unwrap(), 2);
        assert_eq!(store.prune_rollups(T0 + MINUTE).unwrap(), 0);
        let left = store.rollups("web", 0, u64::MAX).unwrap();
        assert_eq!(left, [rollup("web", "v1", 1, 1)]);
    }

    #[test]
    fn counts_beyond_sqlite_integers_are_refused() {
        let store = Store::open_in_memory().unwrap();
        let mut huge = rollup("web", "v1", 0, 1);
        huge.requests = u64::MAX;
        let error = store.add_rollups(&[huge]).unwrap_err();
        assert!(
            matches!(
                error,
                StateError::RecordOutOfRange {
                    field: "requests",
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(store.rollups("web", 0, u64::MAX).unwrap().is_empty());
    }
}
