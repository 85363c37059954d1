//! The store: one SQLite connection behind a mutex, one transaction per change.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;

use crate::error::StateError;
use crate::records::{PauseRecord, ServiceRecord, VersionRecord};
use crate::schema;

/// How long a statement waits for another process's lock before failing.
/// Only the daemon writes, so contention means a CLI reading the file or a
/// second daemon starting up; both hold locks for milliseconds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Name used in messages for a database that has no file.
const IN_MEMORY: &str = ":memory:";

/// The state of the daemon, persisted in `state.db`.
///
/// Every method is one SQLite transaction: it either happens completely or
/// not at all, whatever kills the process. Calls are synchronous and quick
/// (local SQLite, small rows); async callers may call them directly or via
/// `spawn_blocking`. The store is `Send + Sync`; calls are serialised by an
/// internal mutex.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
}

/// Internal failure: SQLite errors get their context (file, action) added
/// once, at the public method, instead of at every statement.
pub(crate) enum Fail {
    Sql(rusqlite::Error),
    State(StateError),
}

impl From<rusqlite::Error> for Fail {
    fn from(error: rusqlite::Error) -> Self {
        Fail::Sql(error)
    }
}

impl From<StateError> for Fail {
    fn from(error: StateError) -> Self {
        Fail::State(error)
    }
}

/// A `services` row before its version, targets and pause are attached.
struct ServiceRow {
    name: String,
    hosts: String,
    path_prefix: String,
    options: String,
}

impl Store {
    /// Opens (creating if missing) the state database at `path`, and brings
    /// its schema up to date.
    ///
    /// A missing parent directory is created with mode 0700 and a missing
    /// file with mode 0600 (SQLite gives its `-wal` and `-shm` files the
    /// same mode). A file written by a newer baton is refused with
    /// [`StateError::NewerSchema`] and left untouched.
    pub fn open(path: &Path) -> Result<Store, StateError> {
        create_private(path)?;
        let conn = Connection::open(path).map_err(|source| StateError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Store::init(conn, path.to_path_buf(), true)
    }

    /// Opens a fresh database that lives only as long as the store; for tests.
    pub fn open_in_memory() -> Result<Store, StateError> {
        let path = PathBuf::from(IN_MEMORY);
        let conn = Connection::open_in_memory().map_err(|source| StateError::Open {
            path: path.clone(),
            source,
        })?;
        Store::init(conn, path, false)
    }

    fn init(mut conn: Connection, path: PathBuf, on_disk: bool) -> Result<Store, StateError> {
        configure(&conn, &path, on_disk).map_err(|source| StateError::Open {
            path: path.clone(),
            source,
        })?;
        schema::migrate(&mut conn, &path)?;
        Ok(Store {
            conn: Mutex::new(conn),
            path,
        })
    }

    /// The database file (`:memory:` for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every service, sorted by name.
    pub fn services(&self) -> Result<Vec<ServiceRecord>, StateError> {
        let mut conn = self.lock();
        let result = read_all(&mut conn, &self.path);
        self.finish(result, || "reading services".to_owned())
    }

    /// The service called `name`, if there is one.
    pub fn service(&self, name: &str) -> Result<Option<ServiceRecord>, StateError> {
        let mut conn = self.lock();
        let result = read_one(&mut conn, &self.path, name);
        self.finish(result, || format!("reading service {name:?}"))
    }

    /// Creates or replaces the service `record.name`: its hosts, prefix and
    /// options, its stable version and targets, and its pause, all in one
    /// transaction. `created_at_ms` of an existing service is kept.
    ///
    /// Only the stable version is managed here; a candidate version stored
    /// by a rollout is left as it is.
    pub fn put_service(&self, record: &ServiceRecord) -> Result<(), StateError> {
        let mut conn = self.lock();
        let result = write_service(&mut conn, record);
        if result.is_ok() {
            tracing::debug!(service = %record.name, "service saved");
        }
        self.finish(result, || format!("saving service {:?}", record.name))
    }

    /// Removes the service `name` with its versions, targets and pause.
    /// Returns whether there was such a service.
    pub fn remove_service(&self, name: &str) -> Result<bool, StateError> {
        let conn = self.lock();
        // One statement is one transaction; the cascades run inside it.
        let result = conn
            .execute("DELETE FROM services WHERE name = ?1", [name])
            .map(|deleted| deleted > 0)
            .map_err(Fail::from);
        if let Ok(true) = result {
            tracing::debug!(service = %name, "service removed");
        }
        self.finish(result, || format!("removing service {name:?}"))
    }

    /// Pauses (`Some`) or resumes (`None`) the service `name`.
    /// Fails with [`StateError::UnknownService`] if there is no such service.
    pub fn set_pause(&self, name: &str, pause: Option<&PauseRecord>) -> Result<(), StateError> {
        let mut conn = self.lock();
        let result = write_pause(&mut conn, &self.path, name, pause);
        self.finish(result, || format!("saving the pause of service {name:?}"))
    }

    /// Runs `body` in one read transaction, so that all it reads is one
    /// snapshot even if another process writes meanwhile. `action` names
    /// what is being read, for the error message.
    pub(crate) fn read<T>(
        &self,
        action: impl FnOnce() -> String,
        body: impl FnOnce(&Transaction<'_>) -> Result<T, Fail>,
    ) -> Result<T, StateError> {
        let mut conn = self.lock();
        let result = conn.transaction().map_err(Fail::from).and_then(|tx| {
            let value = body(&tx)?;
            tx.finish()?;
            Ok(value)
        });
        self.finish(result, action)
    }

    /// Runs `body` in one write transaction, committed only if `body`
    /// succeeds: on any error nothing it did remains. `action` names what
    /// is being written, for the error message.
    pub(crate) fn write<T>(
        &self,
        action: impl FnOnce() -> String,
        body: impl FnOnce(&Transaction<'_>) -> Result<T, Fail>,
    ) -> Result<T, StateError> {
        let mut conn = self.lock();
        // IMMEDIATE for the reason given in write_service.
        let result = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Fail::from)
            .and_then(|tx| {
                // Returning early drops `tx`, which rolls it back.
                let value = body(&tx)?;
                tx.commit()?;
                Ok(value)
            });
        self.finish(result, action)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held happened inside a transaction, and
        // dropping a rusqlite Transaction rolls it back: the connection is
        // sound, so poisoning carries no information here.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn finish<T>(
        &self,
        result: Result<T, Fail>,
        action: impl FnOnce() -> String,
    ) -> Result<T, StateError> {
        result.map_err(|fail| match fail {
            Fail::State(error) => error,
            Fail::Sql(source) => StateError::Database {
                path: self.path.clone(),
                action: action(),
                source,
            },
        })
    }
}

/// Creates the parent directory (0700) and an empty file (0600) if missing.
/// An empty file is a valid empty SQLite database; creating it ourselves is
/// the only way to choose its mode, since SQLite uses 0644 less umask.
fn create_private(path: &Path) -> Result<(), StateError> {
    let create_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StateError::Create { path, source }
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(parent).map_err(create_error(parent))?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(create_error(path))?;
    Ok(())
}

fn configure(conn: &Connection, path: &Path, on_disk: bool) -> rusqlite::Result<()> {
    // First, so that setting the journal mode below also waits for locks.
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if on_disk {
        // WAL: readers (a CLI inspecting state) never block the daemon's
        // writes, and a commit is one append to the log.
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Still crash-safe with a rollback journal, only slower to read
            // concurrently; not worth refusing to start over.
            tracing::warn!(path = %path.display(), %mode, "state database could not use WAL");
        }
    }
    // FULL rather than WAL's usual NORMAL: NORMAL already survives kill -9,
    // but on power loss may forget the last commits. Writes here are rare
    // (deploys, pauses), and a deploy reported as done must still be the
    // route after a reboot, so the extra fsync per commit is worth it.
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Off by default in SQLite; the cascades of the schema rely on it.
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

fn read_all(conn: &mut Connection, path: &Path) -> Result<Vec<ServiceRecord>, Fail> {
    // One read transaction, so the list is one snapshot even if another
    // process writes between rows.
    let tx = conn.transaction()?;
    let rows = {
        let mut stmt = tx.prepare_cached(
            "SELECT name, hosts, path_prefix, options FROM services ORDER BY name",
        )?;
        stmt.query_map([], service_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?
    };
    let records = rows
        .into_iter()
        .map(|row| complete(&tx, path, row))
        .collect::<Result<Vec<_>, _>>()?;
    tx.finish()?;
    Ok(records)
}

fn read_one(conn: &mut Connection, path: &Path, name: &str) -> Result<Option<ServiceRecord>, Fail> {
    let tx = conn.transaction()?;
    let row = tx
        .prepare_cached("SELECT name, hosts, path_prefix, options FROM services WHERE name = ?1")?
        .query_row([name], service_row)
        .optional()?;
    let record = row.map(|row| complete(&tx, path, row)).transpose()?;
    tx.finish()?;
    Ok(record)
}

fn service_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ServiceRow> {
    Ok(ServiceRow {
        name: row.get(0)?,
        hosts: row.get(1)?,
        path_prefix: row.get(2)?,
        options: row.get(3)?,
    })
}

/// Attaches the stable version, its targets and the pause to a service row.
fn complete(tx: &Transaction<'_>, path: &Path, row: ServiceRow) -> Result<ServiceRecord, Fail> {
    let name = row.name;
    let corrupt = |field, detail: String| StateError::Corrupt {
        path: path.to_path_buf(),
        service: name.clone(),
        field,
        detail,
    };
    let hosts = serde_json::from_str(&row.hosts).map_err(|e| corrupt("hosts", e.to_string()))?;
    let options =
        serde_json::from_str(&row.options).map_err(|e| corrupt("options", e.to_string()))?;

    let version = tx
        .prepare_cached(
            "SELECT label, activated_at_ms FROM versions WHERE service = ?1 AND role = 'stable'",
        )?
        .query_row([&name], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })
        .optional()?;
    let active = match version {
        None => None,
        Some((label, activated_at_ms)) => {
            let targets = tx
                .prepare_cached(
                    "SELECT address FROM targets WHERE service = ?1 AND role = 'stable' \
                     ORDER BY position",
                )?
                .query_map([&name], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            Some(VersionRecord {
                label,
                targets,
                activated_at_ms: from_int(activated_at_ms)
                    .map_err(|d| corrupt("activated_at_ms", d))?,
            })
        }
    };

    let pause = tx
        .prepare_cached("SELECT max_ms, since_ms FROM pauses WHERE service = ?1")?
        .query_row([&name], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
        .optional()?
        .map(|(max_ms, since_ms)| -> Result<PauseRecord, StateError> {
            Ok(PauseRecord {
                max_ms: from_int(max_ms).map_err(|d| corrupt("pause max_ms", d))?,
                since_ms: from_int(since_ms).map_err(|d| corrupt("pause since_ms", d))?,
            })
        })
        .transpose()?;

    Ok(ServiceRecord {
        name,
        hosts,
        path_prefix: row.path_prefix,
        options,
        active,
        pause,
    })
}

fn write_service(conn: &mut Connection, record: &ServiceRecord) -> Result<(), Fail> {
    let name = record.name.as_str();
    let hosts = encode(name, &record.hosts)?;
    let options = encode(name, &record.options)?;
    let active = match &record.active {
        None => None,
        Some(version) => Some((
            version,
            to_int(name, "activated_at_ms", version.activated_at_ms)?,
        )),
    };
    let pause = match record.pause {
        None => None,
        Some(pause) => Some((
            to_int(name, "pause max_ms", pause.max_ms)?,
            to_int(name, "pause since_ms", pause.since_ms)?,
        )),
    };
    let now = now_ms();

    // IMMEDIATE: take the write lock up front. A deferred transaction that
    // reads first and then writes can fail with SQLITE_BUSY without waiting
    // for busy_timeout if another connection wrote in between.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // An upsert, not INSERT OR REPLACE: replacing would delete the row,
    // cascade away a candidate version and reset created_at_ms.
    tx.prepare_cached(
        "INSERT INTO services (name, hosts, path_prefix, options, created_at_ms, updated_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?5) \
         ON CONFLICT (name) DO UPDATE SET hosts = excluded.hosts, \
           path_prefix = excluded.path_prefix, options = excluded.options, \
           updated_at_ms = excluded.updated_at_ms",
    )?
    .execute(params![name, hosts, record.path_prefix, options, now])?;

    tx.prepare_cached("DELETE FROM versions WHERE service = ?1 AND role = 'stable'")?
        .execute([name])?;
    if let Some((version, activated_at_ms)) = active {
        tx.prepare_cached(
            "INSERT INTO versions (service, role, label, activated_at_ms) \
             VALUES (?1, 'stable', ?2, ?3)",
        )?
        .execute(params![name, version.label, activated_at_ms])?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO targets (service, role, position, address) VALUES (?1, 'stable', ?2, ?3)",
        )?;
        for (position, address) in version.targets.iter().enumerate() {
            insert.execute(params![name, position as i64, address])?;
        }
    }

    replace_pause(&tx, name, pause)?;
    tx.commit()?;
    Ok(())
}

fn write_pause(
    conn: &mut Connection,
    path: &Path,
    name: &str,
    pause: Option<&PauseRecord>,
) -> Result<(), Fail> {
    let pause = match pause {
        None => None,
        Some(pause) => Some((
            to_int(name, "pause max_ms", pause.max_ms)?,
            to_int(name, "pause since_ms", pause.since_ms)?,
        )),
    };
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let touched = tx
        .prepare_cached("UPDATE services SET updated_at_ms = ?2 WHERE name = ?1")?
        .execute(params![name, now_ms()])?;
    if touched == 0 {
        // Returning drops `tx`, which rolls it back.
        return Err(StateError::UnknownService {
            path: path.to_path_buf(),
            name: name.to_owned(),
        }
        .into());
    }
    replace_pause(&tx, name, pause)?;
    tx.commit()?;
    Ok(())
}

fn replace_pause(tx: &Transaction<'_>, name: &str, pause: Option<(i64, i64)>) -> Result<(), Fail> {
    tx.prepare_cached("DELETE FROM pauses WHERE service = ?1")?
        .execute([name])?;
    if let Some((max_ms, since_ms)) = pause {
        tx.prepare_cached("INSERT INTO pauses (service, max_ms, since_ms) VALUES (?1, ?2, ?3)")?
            .execute(params![name, max_ms, since_ms])?;
    }
    Ok(())
}

fn encode(service: &str, value: &impl Serialize) -> Result<String, StateError> {
    serde_json::to_string(value).map_err(|source| StateError::Encode {
        service: service.to_owned(),
        source,
    })
}

/// SQLite integers are signed 64-bit; refuse rather than wrap.
fn to_int(service: &str, field: &'static str, value: u64) -> Result<i64, StateError> {
    i64::try_from(value).map_err(|_| StateError::OutOfRange {
        service: service.to_owned(),
        field,
        value,
    })
}

fn from_int(value: i64) -> Result<u64, String> {
    u64::try_from(value).map_err(|_| format!("negative value {value}"))
}

/// Wall-clock time for the bookkeeping columns only; nothing is decided on it.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use crate::records::{Balance, FlagInjection, ServiceOptions};

    fn full_record(name: &str) -> ServiceRecord {
        ServiceRecord {
            name: name.to_owned(),
            hosts: vec!["a.example.com".to_owned(), "*.example.org".to_owned()],
            path_prefix: "/api".to_owned(),
            options: ServiceOptions {
                health_path: "/healthz".to_owned(),
                health_interval_ms: 250,
                healthy_after: 3,
                health_timeout_ms: 900,
                drain_timeout_ms: 12_000,
                balance: Balance::LeastInFlight,
                max_request_body: Some(10 << 20),
                flags: Some(FlagInjection {
                    targeting_key: Some("cookie:user_id".to_owned()),
                }),
            },
            active: Some(VersionRecord {
                label: "v42".to_owned(),
                targets: vec![
                    "127.0.0.1:37044".to_owned(),
                    "10.0.0.2:80".to_owned(),
                    "[::1]:8080".to_owned(),
                ],
                activated_at_ms: 1_700_000_000_123,
            }),
            pause: Some(PauseRecord {
                max_ms: 30_000,
                since_ms: 1_700_000_000_999,
            }),
        }
    }

    fn count(store: &Store, table: &str) -> i64 {
        store
            .lock()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn store_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Store>();
    }

    #[test]
    fn full_record_round_trips() {
        let store = Store::open_in_memory().unwrap();
        let record = full_record("web");
        store.put_service(&record).unwrap();
        assert_eq!(store.service("web").unwrap(), Some(record.clone()));
        assert_eq!(store.services().unwrap(), vec![record]);
    }

    #[test]
    fn minimal_record_round_trips() {
        let store = Store::open_in_memory().unwrap();
        let record = ServiceRecord::new("bare");
        store.put_service(&record).unwrap();
        assert_eq!(store.service("bare").unwrap(), Some(record));
        assert_eq!(store.service("other").unwrap(), None);
    }

    #[test]
    fn version_without_targets_round_trips() {
        let store = Store::open_in_memory().unwrap();
        let mut record = ServiceRecord::new("web");
        record.active = Some(VersionRecord {
            label: "empty".to_owned(),
            targets: Vec::new(),
            activated_at_ms: 1,
        });
        store.put_service(&record).unwrap();
        assert_eq!(store.service("web").unwrap(), Some(record));
    }

    #[test]
    fn services_are_sorted_by_name() {
        let store = Store::open_in_memory().unwrap();
        for name in ["web", "api", "Zed", "admin"] {
            store.put_service(&ServiceRecord::new(name)).unwrap();
        }
        let names: Vec<_> = store
            .services()
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["Zed", "admin", "api", "web"]);
    }

    #[test]
    fn upsert_replaces_targets_version_and_pause() {
        let store = Store::open_in_memory().unwrap();
        let mut record = full_record("web");
        store.put_service(&record).unwrap();
        let created: i64 = store
            .lock()
            .query_row("SELECT created_at_ms FROM services", [], |r| r.get(0))
            .unwrap();

        record.hosts = vec!["b.example.com".to_owned()];
        record.options.balance = Balance::RoundRobin;
        record.active = Some(VersionRecord {
            label: "v43".to_owned(),
            targets: vec!["127.0.0.1:4000".to_owned()],
            activated_at_ms: 5,
        });
        record.pause = None;
        store.put_service(&record).unwrap();
        assert_eq!(store.service("web").unwrap(), Some(record.clone()));
        assert_eq!(count(&store, "services"), 1);
        assert_eq!(count(&store, "targets"), 1);
        assert_eq!(count(&store, "pauses"), 0);
        let created_after: i64 = store
            .lock()
            .query_row("SELECT created_at_ms FROM services", [], |r| r.get(0))
            .unwrap();
        assert_eq!(created, created_after, "upsert must keep created_at_ms");

        record.active = None;
        store.put_service(&record).unwrap();
        assert_eq!(store.service("web").unwrap(), Some(record));
        assert_eq!(count(&store, "versions"), 0);
        assert_eq!(count(&store, "targets"), 0);
    }

    #[test]
    fn put_service_leaves_candidate_alone() {
        let store = Store::open_in_memory().unwrap();
        store.put_service(&full_record("web")).unwrap();
        store
            .lock()
            .execute_batch(
                "INSERT INTO versions VALUES ('web', 'candidate', 'v43', 7); \
                 INSERT INTO targets VALUES ('web', 'candidate', 0, '127.0.0.1:9');",
            )
            .unwrap();
        store.put_service(&ServiceRecord::new("web")).unwrap();
        assert_eq!(count(&store, "versions"), 1);
        assert_eq!(count(&store, "targets"), 1);
    }

    #[test]
    fn remove_cascades() {
        let store = Store::open_in_memory().unwrap();
        store.put_service(&full_record("web")).unwrap();
        store.put_service(&full_record("api")).unwrap();
        assert!(store.remove_service("web").unwrap());
        assert!(!store.remove_service("web").unwrap());
        assert_eq!(store.service("web").unwrap(), None);
        assert_eq!(count(&store, "services"), 1);
        assert_eq!(count(&store, "versions"), 1);
        assert_eq!(count(&store, "targets"), 3);
        assert_eq!(count(&store, "pauses"), 1);
        assert!(store.remove_service("api").unwrap());
        for table in ["services", "versions", "targets", "pauses"] {
            assert_eq!(count(&store, table), 0, "{table}");
        }
    }

    #[test]
    fn pause_set_and_clear() {
        let store = Store::open_in_memory().unwrap();
        let mut record = full_record("web");
        record.pause = None;
        store.put_service(&record).unwrap();

        let pause = PauseRecord {
            max_ms: 10_000,
            since_ms: 42,
        };
        store.set_pause("web", Some(&pause)).unwrap();
        record.pause = Some(pause);
        assert_eq!(store.service("web").unwrap(), Some(record.clone()));

        store.set_pause("web", None).unwrap();
        record.pause = None;
        assert_eq!(store.service("web").unwrap(), Some(record));
        assert_eq!(count(&store, "pauses"), 0);
    }

    #[test]
    fn pause_of_unknown_service_is_an_error() {
        let store = Store::open_in_memory().unwrap();
        let pause = PauseRecord {
            max_ms: 1,
            since_ms: 1,
        };
        let err = store.set_pause("ghost", Some(&pause)).unwrap_err();
        assert!(
            matches!(&err, StateError::UnknownService { name, .. } if name == "ghost"),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("baton route deploy ghost"),
            "{err}"
        );
        assert_eq!(count(&store, "pauses"), 0);
        assert!(store.set_pause("ghost", None).is_err());
    }

    #[test]
    fn too_large_number_is_refused_and_nothing_changes() {
        let store = Store::open_in_memory().unwrap();
        let mut record = full_record("web");
        if let Some(pause) = record.pause.as_mut() {
            pause.max_ms = u64::MAX;
        }
        let err = store.put_service(&record).unwrap_err();
        assert!(
            matches!(
                err,
                StateError::OutOfRange {
                    field: "pause max_ms",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(count(&store, "services"), 0);
    }

    #[test]
    fn unreadable_column_is_reported_as_corrupt() {
        let store = Store::open_in_memory().unwrap();
        store.put_service(&full_record("web")).unwrap();
        store
            .lock()
            .execute("UPDATE services SET options = '{not json'", [])
            .unwrap();
        let err = store.services().unwrap_err();
        assert!(
            matches!(&err, StateError::Corrupt { service, field: "options", .. } if service == "web"),
            "{err:?}"
        );
    }

    #[test]
    fn reopening_a_file_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/state/state.db");
        let record = full_record("web");
        {
            let store = Store::open(&path).unwrap();
            store.put_service(&record).unwrap();
            store.put_service(&ServiceRecord::new("api")).unwrap();
            assert!(store.remove_service("api").unwrap());
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.path(), path);
        assert_eq!(store.services().unwrap(), vec![record]);
        let mode: String = store
            .lock()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[cfg(unix)]
    #[test]
    fn created_directory_and_file_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().join("state");
        let path = state_dir.join("state.db");
        Store::open(&path).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state_dir), 0o700);
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn newer_schema_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        Store::open(&path)
            .unwrap()
            .put_service(&full_record("web"))
            .unwrap();
        let future = schema::SCHEMA_VERSION + 5;
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", future)
            .unwrap();

        let err = Store::open(&path).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(&format!(
                "state.db was written by a newer baton (schema {future}); \
                 upgrade baton or restore a backup"
            )),
            "{message}"
        );
        assert!(message.contains(&path.display().to_string()), "{message}");

        // Refusing must not have touched the file.
        let version: u32 = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, future);
    }

    #[test]
    fn not_a_database_is_an_open_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        fs::write(&path, vec![b'x'; 4096]).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StateError::Open { .. }), "{err:?}");
    }

    #[test]
    fn usable_from_many_threads() {
        let store = std::sync::Arc::new(Store::open_in_memory().unwrap());
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for j in 0..25 {
                        store
                            .put_service(&full_record(&format!("svc-{i}-{j}")))
                            .unwrap();
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        assert_eq!(store.services().unwrap().len(), 100);
    }
}
