//! Schema versions and how a database moves forward through them.
//!
//! The schema version lives in `PRAGMA user_version`. Migration `i` (0-based)
//! takes a database from version `i` to `i + 1`. Each runs in its own
//! transaction together with the `user_version` bump, so a crash mid-upgrade
//! leaves the file at the previous version, which the next start upgrades
//! again.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::error::StateError;

/// Every migration in order. To change the schema, append one line here
/// (and its SQL file); never edit or reorder a migration that has shipped.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_routing.sql"),
    include_str!("migrations/0002_apps.sql"),
    include_str!("migrations/0003_flags.sql"),
    include_str!("migrations/0004_rollups.sql"),
    include_str!("migrations/0005_deploy_reports.sql"),
];

/// The schema version this build writes: the number of migrations it knows.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings `conn` up to [`SCHEMA_VERSION`], or refuses a newer file.
/// Returns the version the database is at afterwards.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<u32, StateError> {
    apply(conn, path, MIGRATIONS)
}

fn apply(conn: &mut Connection, path: &Path, migrations: &[&str]) -> Result<u32, StateError> {
    let known = migrations.len() as u32;
    let open_error = |source| StateError::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut current = checked_version(user_version(conn).map_err(open_error)?, known, path)?;

    while current < known {
        let version = current + 1;
        let migrate_error = |source| StateError::Migrate {
            path: path.to_path_buf(),
            version,
            previous: current,
            source,
        };
        // IMMEDIATE takes the write lock before reading the version, so two
        // processes opening the same file cannot both apply one migration.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(migrate_error)?;
        let locked = checked_version(user_version(&tx).map_err(migrate_error)?, known, path)?;
        if locked >= version {
            // Someone else upgraded while we waited for the lock.
            current = locked;
            continue;
        }
        tx.execute_batch(migrations[current as usize])
            .map_err(migrate_error)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(migrate_error)?;
        tx.commit().map_err(migrate_error)?;
        tracing::info!(path = %path.display(), version, "state database schema upgraded");
        current = version;
    }
    Ok(current)
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

fn checked_version(found: i64, known: u32, path: &Path) -> Result<u32, StateError> {
    match u32::try_from(found) {
        Ok(version) if version <= known => Ok(version),
        _ => Err(StateError::NewerSchema {
            path: path.to_path_buf(),
            found,
            known,
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    fn tables(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .unwrap();
        stmt.query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn fresh_database_reaches_current_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        let version = migrate(&mut conn, Path::new(":memory:")).unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(user_version(&conn).unwrap(), i64::from(SCHEMA_VERSION));
        assert_eq!(
            tables(&conn),
            [
                "apps",
                "deploys",
                "flag_audit",
                "flag_revision",
                "flag_segments",
                "flags",
                "pauses",
                "processes",
                "releases",
                "rollups",
                "services",
                // SQLite's own, for the AUTOINCREMENT of deploys and flag_audit.
                "sqlite_sequence",
                "targets",
                "versions",
            ]
        );
        // A second run is a no-op, not a "table already exists" error.
        assert_eq!(
            migrate(&mut conn, Path::new(":memory:")).unwrap(),
            SCHEMA_VERSION
        );
    }

    #[test]
    fn newer_version_is_refused_untouched() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        let err = migrate(&mut conn, Path::new("/x/state.db")).unwrap_err();
        assert!(
            matches!(err, StateError::NewerSchema { found: 99, .. }),
            "{err:?}"
        );
        assert!(tables(&conn).is_empty());
    }

    #[test]
    fn failed_migration_leaves_previous_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        let steps = [
            "CREATE TABLE a (x INTEGER)",
            "CREATE TABLE b (x INTEGER); nonsense",
        ];
        let err = apply(&mut conn, Path::new(":memory:"), &steps).unwrap_err();
        assert!(
            matches!(
                err,
                StateError::Migrate {
                    version: 2,
                    previous: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(user_version(&conn).unwrap(), 1);
        assert_eq!(tables(&conn), ["a"]);
    }

    #[test]
    fn migrations_apply_in_order_from_where_the_file_is() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(
            &mut conn,
            Path::new(":memory:"),
            &["CREATE TABLE a (x INTEGER)"],
        )
        .unwrap();
        let steps = [
            "CREATE TABLE a (x INTEGER)",
            "ALTER TABLE a ADD COLUMN y INTEGER",
        ];
        assert_eq!(apply(&mut conn, Path::new(":memory:"), &steps).unwrap(), 2);
        conn.execute("INSERT INTO a (x, y) VALUES (1, 2)", [])
            .unwrap();
    }
}
