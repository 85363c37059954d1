//! What can go wrong with the state database, phrased for the operator.

use std::io;
use std::path::PathBuf;

/// An error from the state store. Each message names the file or service
/// concerned and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state directory or the database file could not be created.
    #[error(
        "could not create {path}: {source}; check that its parent directory exists and is \
         writable by this user, or point BATON_STATE_DIR somewhere that is"
    )]
    Create {
        /// The directory or file being created.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },

    /// SQLite could not open or configure the database.
    #[error(
        "could not open state database {path}: {source}; check that it is a baton state.db \
         readable and writable by this user, or restore a backup"
    )]
    Open {
        /// The database file.
        path: PathBuf,
        /// The underlying SQLite error.
        #[source]
        source: rusqlite::Error,
    },

    /// The database was written by a newer baton whose schema this one does
    /// not know; reading it could misinterpret or destroy data.
    #[error(
        "{path}: state.db was written by a newer baton (schema {found}); upgrade baton or \
         restore a backup (this baton knows schemas up to {known})"
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// The schema version found in the file.
        found: i64,
        /// The newest schema version this build knows.
        known: u32,
    },

    /// A schema migration failed; its transaction was rolled back, so the
    /// file is still at the previous schema.
    #[error(
        "could not upgrade state database {path} to schema {version}: {source}; the file was \
         left at schema {previous}, so the previous baton still reads it; check free disk \
         space and permissions, then retry"
    )]
    Migrate {
        /// The database file.
        path: PathBuf,
        /// The schema version that could not be applied.
        version: u32,
        /// The schema version the file is still at.
        previous: u32,
        /// The underlying SQLite error.
        #[source]
        source: rusqlite::Error,
    },

    /// A read or write failed; a failed write changed nothing.
    #[error(
        "state database {path}: {action} failed: {source}; nothing was changed; check free \
         disk space and permissions, and that no other process holds the database locked"
    )]
    Database {
        /// The database file.
        path: PathBuf,
        /// What the store was doing, e.g. `saving service "web"`.
        action: String,
        /// The underlying SQLite error.
        #[source]
        source: rusqlite::Error,
    },

    /// A stored value could not be decoded.
    #[error(
        "state database {path}: service {service:?} has an unreadable {field}: {detail}; \
         restore a backup, or remove the service and deploy it again"
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// The service whose row is unreadable.
        service: String,
        /// The column or field that is unreadable.
        field: &'static str,
        /// Why it could not be decoded.
        detail: String,
    },

    /// A record could not be encoded for storage.
    #[error(
        "could not encode service {service:?} for the state database: {source}; this is a bug \
         in baton, please report it"
    )]
    Encode {
        /// The service being saved.
        service: String,
        /// The underlying serde error.
        #[source]
        source: serde_json::Error,
    },

    /// A number is larger than SQLite's signed 64-bit integers can hold.
    #[error(
        "service {service:?}: {field} = {value} is too large to store (at most {max}); use a \
         smaller value",
        max = i64::MAX
    )]
    OutOfRange {
        /// The service being saved.
        service: String,
        /// The field holding the value.
        field: &'static str,
        /// The value that does not fit.
        value: u64,
    },

    /// The operation names a service the store does not have.
    #[error(
        "no service named {name:?} in state database {path}; deploy it first with \
         `baton route deploy {name} --target host:port`"
    )]
    UnknownService {
        /// The database file.
        path: PathBuf,
        /// The name that was asked for.
        name: String,
    },

    /// A stored app, release, deploy or process could not be decoded.
    #[error(
        "state database {path}: {record} has an unreadable {field}: {detail}; restore a backup \
         of the state directory"
    )]
    CorruptRecord {
        /// The database file.
        path: PathBuf,
        /// The record, e.g. `release "r1" of app "web"`.
        record: String,
        /// The column that is unreadable.
        field: &'static str,
        /// Why it could not be decoded.
        detail: String,
    },

    /// A number in an app, release, deploy or process is larger than
    /// SQLite's signed 64-bit integers can hold. These are timestamps the
    /// daemon computes, so no operator input leads here.
    #[error(
        "{record}: {field} = {value} is too large to store (at most {max}); this is a bug in \
         baton, please report it",
        max = i64::MAX
    )]
    RecordOutOfRange {
        /// The record being saved, e.g. `process "m-1" of app "web"`.
        record: String,
        /// The field holding the value.
        field: &'static str,
        /// The value that does not fit.
        value: u64,
    },

    /// The operation names an app the store does not have.
    #[error("no app named {name:?} in state database {path}; deploy it first with `baton deploy`")]
    UnknownApp {
        /// The database file.
        path: PathBuf,
        /// The name that was asked for.
        name: String,
    },

    /// An update names a deploy the history does not have. Ids come from
    /// [`Store::start_deploy`](crate::Store::start_deploy), so this means the
    /// history was replaced (by restoring a backup, say) while it ran.
    #[error(
        "no deploy with id {id} in state database {path}; was the state directory restored \
         from a backup while it ran? if not, this is a bug in baton, please report it"
    )]
    UnknownDeploy {
        /// The database file.
        path: PathBuf,
        /// The id that was asked for.
        id: i64,
    },

    /// A flag change was made against a revision the flags have since
    /// moved on from; nothing was saved.
    #[error(
        "the feature flags in {path} changed while this change was being made (revision \
         {expected} became {found}); nothing was saved: look at the flags again, then retry"
    )]
    FlagRevisionMoved {
        /// The database file.
        path: PathBuf,
        /// The revision the change was made against.
        expected: u64,
        /// The revision the flags are at.
        found: u64,
    },
}
