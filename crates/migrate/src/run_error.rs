//! Why the runner stopped.

use std::path::PathBuf;
use std::time::Duration;

/// The runner could not read, plan or apply the migrations. Each says what
/// happened, to which file or database, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The migrations directory does not exist.
    #[error("no migrations directory at {}; create it, or point [migrate] dir (or --dir) at yours", dir.display())]
    NoDirectory {
        /// The directory looked for.
        dir: PathBuf,
    },
    /// A migration or its directory could not be read.
    #[error("cannot read {}: {message}", path.display())]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A migration does not parse.
    #[error(
        "{file}:{line}:{column}: {message}; PostgreSQL would refuse this migration, so nothing ran (`baton migrate lint` shows the line)"
    )]
    Parse {
        /// The file name.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A malformed or misplaced `-- baton:phase`.
    #[error("{file}: {message}; nothing ran")]
    Directive {
        /// The file name.
        file: String,
        /// What is wrong with it.
        message: String,
    },
    /// `BEGIN`, `COMMIT` and the like in a migration.
    #[error(
        "{file}:{line}: transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT) in a migration; baton runs each migration in a transaction of its own (statement by statement when it uses CONCURRENTLY), so remove it"
    )]
    TransactionControl {
        /// The file name.
        file: String,
        /// 1-based line of the statement.
        line: usize,
    },
    /// No `--database-url`, no variable, nothing in the env file.
    #[error("{}", no_database_url(variable, env_file.as_deref()))]
    NoDatabaseUrl {
        /// The variable looked up (`[migrate] database_url_env`).
        variable: String,
        /// The app's env file, looked in last, when there is an app.
        env_file: Option<PathBuf>,
    },
    /// The database could not be reached.
    #[error(
        "cannot connect to the database {target}: {message}; check the URL and that the server is up"
    )]
    Connect {
        /// The URL without its password.
        target: String,
        /// Why.
        message: String,
    },
    /// An applied migration's file was edited since.
    #[error(
        "{file} was changed after it was applied (checksum {applied} then, {now} now); baton never runs an applied migration again: restore the file as it was and put the change in a new migration"
    )]
    ChecksumChanged {
        /// The file name.
        file: String,
        /// The first 12 hex digits of the checksum recorded when it ran.
        applied: String,
        /// The first 12 hex digits of the file's checksum now.
        now: String,
    },
    /// A contract migration would run before an expand one it follows.
    #[error(
        "the contract migration {contract} comes after {expand}, an expand migration that has not run yet; run `baton migrate run --phase expand` first"
    )]
    ContractBeforeExpand {
        /// The contract migration.
        contract: String,
        /// The pending expand migration before it.
        expand: String,
    },
    /// A statement of a migration failed and will not be retried.
    #[error("{file} failed at line {line}: {message}{detail}")]
    Failed {
        /// The file name.
        file: String,
        /// 1-based line of the failing statement (or of the error's position).
        line: usize,
        /// The server's message.
        message: String,
        /// What was undone or kept, and what to do (starts with a
        /// separator when not empty).
        detail: String,
    },
    /// Every try ended in a lock timeout.
    #[error("{file} could not take its locks within lock_timeout ({}) in {tries} tries, at line {line}: a long transaction or query holds a lock on the table; find it in pg_stat_activity, or raise [migrate] retries or lock_timeout{detail}", humantime::format_duration(*lock_timeout))]
    LockTimeouts {
        /// The file name.
        file: String,
        /// 1-based line of the statement that waited.
        line: usize,
        /// How many tries were made.
        tries: u32,
        /// The lock timeout each try had.
        lock_timeout: Duration,
        /// As in [`RunError::Failed`].
        detail: String,
    },
    /// The runner's own bookkeeping query failed.
    #[error("cannot {action}: {message}")]
    Database {
        /// What the runner was doing (`read baton_migrations`).
        action: String,
        /// The server's message.
        message: String,
    },
}

fn no_database_url(variable: &str, env_file: Option<&std::path::Path>) -> String {
    match env_file {
        Some(path) => format!(
            "no database URL: pass --database-url, set {variable} in the environment, or put {variable}=postgres://… in {}",
            path.display()
        ),
        None => {
            format!("no database URL: pass --database-url or set {variable} in the environment")
        }
    }
}
