//! Applying migrations to a PostgreSQL database: the only part of this
//! crate that connects to one. What to run and what to retry is decided by
//! the pure functions of [`crate::applied`] and [`crate::lock_retry`];
//! this module does the talking.

use std::time::Duration;

use tokio::time::Instant;
use tokio_postgres::error::ErrorPosition;
use tokio_postgres::{Client, NoTls};

use crate::applied::{AppliedMigration, MigrationStatus, pending, statuses};
use crate::database_url::redacted;
use crate::migration_file::{IndexBuild, MigrationFile, MigrationStatement};
use crate::phase::Phase;
use crate::progress::Progress;
use crate::run_error::RunError;
use crate::run_report::{AppliedNow, RunReport};
use crate::run_settings::RunSettings;

/// The session-level advisory lock every baton runner takes on a database
/// before it reads or writes `baton_migrations`: one fixed key (the ASCII
/// of "baton_mg"), so two runners, from two deploys or a deploy and a
/// person, never apply the same migration twice.
pub const LOCK_KEY: i64 = 0x6261_746f_6e5f_6d67;

/// The table that records applied migrations.
const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS baton_migrations (
    name text PRIMARY KEY,
    checksum text NOT NULL,
    phase text NOT NULL CHECK (phase IN ('expand', 'contract')),
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    duration_ms bigint NOT NULL
)";

/// Where a listener sends each [`Progress`] line.
pub type ProgressSink<'a> = &'a (dyn Fn(&Progress) + Send + Sync);

/// A connection to the database to migrate.
pub struct Runner {
    client: Client,
    connection: tokio::task::JoinHandle<()>,
    settings: RunSettings,
}

impl Drop for Runner {
    /// The session, and with it the advisory lock, ends with the runner.
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Runner {
    /// Connects to `url` (a `postgres://` URL or a key=value string).
    /// Connections are unencrypted: `sslmode=require` is refused.
    pub async fn connect(url: &str, settings: RunSettings) -> Result<Runner, RunError> {
        let connect_error = |message: String| RunError::Connect {
            target: redacted(url),
            message,
        };
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|error: tokio_postgres::Error| connect_error(error.to_string()))?;
        // So that pg_stat_activity says who holds the locks it waits for.
        if config.get_application_name().is_none() {
            config.application_name("baton migrate");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let (client, connection) = config
            .connect(NoTls)
            .await
            .map_err(|error| connect_error(describe(&error)))?;
        let connection = tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "the migration connection ended");
            }
        });
        Ok(Runner {
            client,
            connection,
            settings,
        })
    }

    /// Where each of `files` stands, and what was applied from files that
    /// are gone. Reads only; takes no lock.
    pub async fn status(&self, files: &[MigrationFile]) -> Result<Vec<MigrationStatus>, RunError> {
        Ok(statuses(files, &self.applied().await?))
    }

    /// Applies the pending migrations of `phase` among `files` (in name
    /// order), reporting each step to `progress`. Waits for any other
    /// runner on the same database to finish first.
    pub async fn run(
        &self,
        files: &[MigrationFile],
        phase: Phase,
        progress: ProgressSink<'_>,
    ) -> Result<RunReport, RunError> {
        self.lock(progress).await?;
        let result = self.run_locked(files, phase, progress).await;
        // Ending the session would release it too; a runner reused for
        // `status` should not keep others waiting.
        let _ = self
            .client
            .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
            .await;
        result
    }

    async fn run_locked(
        &self,
        files: &[MigrationFile],
        phase: Phase,
        progress: ProgressSink<'_>,
    ) -> Result<RunReport, RunError> {
        self.client
            .batch_execute(CREATE_TABLE)
            .await
            .map_err(database("create the table baton_migrations"))?;
        let applied = self.applied().await?;
        let todo = pending(files, &applied, phase)?;
        for file in files {
            let waiting = file.phase != phase && !applied.iter().any(|row| row.name == file.name);
            if waiting {
                progress(&Progress::Deferred {
                    file: file.name.clone(),
                    phase: file.phase,
                });
            }
        }
        if todo.is_empty() {
            progress(&Progress::NothingToDo { phase });
        }
        let mut report = RunReport {
            phase,
            applied: Vec::new(),
        };
        for file in todo {
            progress(&Progress::Started {
                file: file.name.clone(),
                one_by_one: !file.in_transaction,
            });
            let applied = if file.in_transaction {
                self.apply_in_transaction(file, progress).await?
            } else {
                self.apply_one_by_one(file, progress).await?
            };
            progress(&Progress::Applied {
                file: applied.file.clone(),
                duration: applied.duration,
                retries: applied.retries,
            });
            report.applied.push(applied);
        }
        Ok(report)
    }

    /// Takes the advisory lock, waiting (and saying so) while another
    /// runner holds it.
    async fn lock(&self, progress: ProgressSink<'_>) -> Result<(), RunError> {
        // A role's default lock_timeout must not end the wait for another
        // runner; each migration sets its own limits.
        self.client
            .batch_execute("SET lock_timeout = 0; SET statement_timeout = 0")
            .await
            .map_err(database("prepare the migration session"))?;
        let free: bool = self
            .client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK_KEY])
            .await
            .map_err(database("take the migration lock"))?
            .get(0);
        if free {
            return Ok(());
        }
        let holder: Option<i32> = self
            .client
            .query_opt(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted \
                 AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1",
                &[&(LOCK_KEY >> 32), &(LOCK_KEY & 0xffff_ffff)],
            )
            .await
            .ok()
            .flatten()
            .and_then(|row| row.get(0));
        progress(&Progress::Waiting { holder });
        let started = Instant::now();
        self.client
            .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
            .await
            .map_err(database("wait for the migration lock"))?;
        progress(&Progress::Locked {
            waited: started.elapsed(),
        });
        Ok(())
    }

    /// The rows of `baton_migrations`, none if it does not exist yet.
    async fn applied(&self) -> Result<Vec<AppliedMigration>, RunError> {
        let read = database("read baton_migrations");
        let exists: bool = self
            .client
            .query_one("SELECT to_regclass('baton_migrations') IS NOT NULL", &[])
            .await
            .map_err(&read)?
            .get(0);
        if !exists {
            return Ok(Vec::new());
        }
        let rows = self
            .client
            .query(
                "SELECT name, checksum, phase, \
                 (extract(epoch FROM applied_at) * 1000)::bigint, duration_ms \
                 FROM baton_migrations ORDER BY name",
                &[],
            )
            .await
            .map_err(&read)?;
        Ok(rows
            .iter()
            .map(|row| AppliedMigration {
                name: row.get(0),
                checksum: row.get(1),
                phase: row.get(2),
                applied_at_ms: row.get(3),
                duration_ms: row.get(4),
            })
            .collect())
    }

    /// The whole file in one transaction, tried again from the top after
    /// a lock timeout or a deadlock (each rolled back everything).
    async fn apply_in_transaction(
        &self,
        file: &MigrationFile,
        progress: ProgressSink<'_>,
    ) -> Result<AppliedNow, RunError> {
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            let outcome = self.try_transaction(file, started).await;
            let Err((statement, error)) = outcome else {
                return Ok(AppliedNow {
                    file: file.name.clone(),
                    duration: started.elapsed(),
                    retries: attempt - 1,
                });
            };
            let line = error_line(file, statement, &error);
            if self.retry(file, line, attempt, &error, progress).await {
                attempt += 1;
                continue;
            }
            return Err(self.failure(
                file,
                line,
                attempt,
                &error,
                "; it was rolled back, so none of it is applied".to_owned(),
            ));
        }
    }

    /// One try of a whole file: `Err` carries the failing statement, if
    /// a statement of the file failed.
    async fn try_transaction<'f>(
        &self,
        file: &'f MigrationFile,
        started: Instant,
    ) -> Result<(), (Option<&'f MigrationStatement>, tokio_postgres::Error)> {
        // A SET in an earlier file must not leak into this one.
        let begin = format!("RESET ALL; BEGIN; {}", self.limits("SET LOCAL"));
        self.client
            .batch_execute(&begin)
            .await
            .map_err(|error| (None, error))?;
        let work = async {
            for statement in &file.statements {
                self.client
                    .batch_execute(&statement.sql)
                    .await
                    .map_err(|error| (Some(statement), error))?;
            }
            self.record(file, started.elapsed())
                .await
                .map_err(|error| (None, error))?;
            self.client
                .batch_execute("COMMIT")
                .await
                .map_err(|error| (None, error))
        };
        let result = work.await;
        if result.is_err() {
            // After a failed COMMIT there is nothing left to roll back; the
            // server only warns.
            let _ = self.client.batch_execute("ROLLBACK").await;
        }
        result
    }

    /// A file with CONCURRENTLY: statement by statement outside a
    /// transaction, each tried again on its own after a lock timeout or a
    /// deadlock. A failed `CREATE INDEX CONCURRENTLY` leaves an INVALID
    /// index, which is dropped before the next try or the error.
    async fn apply_one_by_one(
        &self,
        file: &MigrationFile,
        progress: ProgressSink<'_>,
    ) -> Result<AppliedNow, RunError> {
        let started = Instant::now();
        let session = format!("RESET ALL; {}", self.limits("SET"));
        self.client
            .batch_execute(&session)
            .await
            .map_err(database("set the migration's timeouts"))?;
        let mut retries = 0;
        for (index, statement) in file.statements.iter().enumerate() {
            let mut attempt = 1;
            loop {
                let before = match &statement.builds_index {
                    Some(build) => {
                        self.prepare_index_build(file, statement, build, progress)
                            .await?
                    }
                    None => Vec::new(),
                };
                let Err(error) = self.client.batch_execute(&statement.sql).await else {
                    break;
                };
                let mut detail = String::new();
                if let Some(build) = &statement.builds_index {
                    detail = self
                        .drop_new_invalid_indexes(file, build, &before, &error, progress)
                        .await;
                }
                let line = error_line(file, Some(statement), &error);
                if self.retry(file, line, attempt, &error, progress).await {
                    attempt += 1;
                    retries += 1;
                    continue;
                }
                if index > 0 {
                    detail.push_str(&format!(
                        "; the statements before line {} were applied and stay applied, but the \
                         migration is not recorded, so the next run starts it from the top again: \
                         make them safe to repeat (IF NOT EXISTS) first",
                        statement.line
                    ));
                }
                return Err(self.failure(file, line, attempt, &error, detail));
            }
        }
        self.record(file, started.elapsed())
            .await
            .map_err(database(&format!(
                "record {} in baton_migrations",
                file.name
            )))?;
        self.client
            .batch_execute("RESET ALL")
            .await
            .map_err(database("reset the session"))?;
        Ok(AppliedNow {
            file: file.name.clone(),
            duration: started.elapsed(),
            retries,
        })
    }

    /// Before a `CREATE INDEX CONCURRENTLY`: drops an INVALID index of the
    /// same name that an earlier, interrupted run left (`IF NOT EXISTS`
    /// would keep it, invalid, for good), and returns the invalid indexes
    /// already on the table, which a failure of this build did not make.
    async fn prepare_index_build(
        &self,
        file: &MigrationFile,
        statement: &MigrationStatement,
        build: &IndexBuild,
        progress: ProgressSink<'_>,
    ) -> Result<Vec<String>, RunError> {
        let invalid = self.invalid_indexes(&build.table).await?;
        if let Some(index) = &build.index {
            let leftover: Option<bool> = self
                .client
                .query_one(
                    "SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)",
                    &[index],
                )
                .await
                .ok()
                .and_then(|row| row.get(0));
            if leftover == Some(true) {
                self.drop_index(index)
                    .await
                    .map_err(|error| RunError::Failed {
                        file: file.name.clone(),
                        line: statement.line,
                        message: describe(&error),
                        detail: format!(
                            "; an earlier run left the INVALID index {index}, which could not be \
                             dropped: drop it with DROP INDEX CONCURRENTLY {index}, then run again"
                        ),
                    })?;
                progress(&Progress::DroppedInvalidIndex {
                    file: file.name.clone(),
                    index: index.clone(),
                    reason: "in an earlier run".to_owned(),
                });
                return self.invalid_indexes(&build.table).await;
            }
        }
        Ok(invalid)
    }

    /// After a failed `CREATE INDEX CONCURRENTLY`: drops the INVALID
    /// indexes on the table that were not there before it. Returns what to
    /// add to the error if one could not be dropped.
    async fn drop_new_invalid_indexes(
        &self,
        file: &MigrationFile,
        build: &IndexBuild,
        before: &[String],
        error: &tokio_postgres::Error,
        progress: ProgressSink<'_>,
    ) -> String {
        let invalid = match self.invalid_indexes(&build.table).await {
            Ok(invalid) => invalid,
            Err(problem) => {
                return format!(
                    "; could not look for the INVALID index it may have left: {problem}"
                );
            }
        };
        let mut dropped = Vec::new();
        let mut problems = String::new();
        for index in invalid.iter().filter(|index| !before.contains(index)) {
            match self.drop_index(index).await {
                Ok(()) => {
                    progress(&Progress::DroppedInvalidIndex {
                        file: file.name.clone(),
                        index: index.clone(),
                        reason: describe(error),
                    });
                    dropped.push(index.as_str());
                }
                Err(drop_error) => problems.push_str(&format!(
                    "; it left the INVALID index {index}, which could not be dropped ({}): drop it \
                     with DROP INDEX CONCURRENTLY {index}",
                    describe(&drop_error)
                )),
            }
        }
        if problems.is_empty() && !dropped.is_empty() {
            return format!(
                "; the INVALID index it left ({}) was dropped",
                dropped.join(", ")
            );
        }
        problems
    }

    /// The INVALID indexes on `table` (a quoted name), schema-qualified.
    async fn invalid_indexes(&self, table: &str) -> Result<Vec<String>, RunError> {
        let rows = self
            .client
            .query(
                "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_index i \
                 JOIN pg_class c ON c.oid = i.indexrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE i.indrelid = to_regclass($1) AND NOT i.indisvalid ORDER BY 1",
                &[&table],
            )
            .await
            .map_err(database(&format!("list the invalid indexes on {table}")))?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// `DROP INDEX CONCURRENTLY IF EXISTS`, tried again like a migration
    /// after lock timeouts (it too waits for the table's lock).
    async fn drop_index(&self, index: &str) -> Result<(), tokio_postgres::Error> {
        let statement = format!("DROP INDEX CONCURRENTLY IF EXISTS {index}");
        let mut attempt = 1;
        loop {
            match self.client.batch_execute(&statement).await {
                Err(error) if self.settings.retry.retries(attempt, sqlstate(&error)) => {
                    tokio::time::sleep(self.settings.retry.delay(attempt, fastrand::f64())).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// Whether to try again after `error` on try `attempt`; if so, says
    /// so and waits first.
    async fn retry(
        &self,
        file: &MigrationFile,
        line: usize,
        attempt: u32,
        error: &tokio_postgres::Error,
        progress: ProgressSink<'_>,
    ) -> bool {
        let policy = self.settings.retry;
        if !policy.retries(attempt, sqlstate(error)) {
            return false;
        }
        let delay = policy.delay(attempt, fastrand::f64());
        progress(&Progress::Retrying {
            file: file.name.clone(),
            line,
            attempt,
            tries: policy.tries,
            delay,
            reason: describe(error),
        });
        tokio::time::sleep(delay).await;
        true
    }

    /// The error for a migration that failed for good.
    fn failure(
        &self,
        file: &MigrationFile,
        line: usize,
        attempt: u32,
        error: &tokio_postgres::Error,
        detail: String,
    ) -> RunError {
        if sqlstate(error).is_some_and(crate::lock_retry::is_retryable) {
            return RunError::LockTimeouts {
                file: file.name.clone(),
                line,
                tries: attempt,
                lock_timeout: self.settings.lock_timeout,
                detail,
            };
        }
        RunError::Failed {
            file: file.name.clone(),
            line,
            message: describe(error),
            detail,
        }
    }

    /// Records `file` as applied.
    async fn record(
        &self,
        file: &MigrationFile,
        duration: Duration,
    ) -> Result<(), tokio_postgres::Error> {
        let millis = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
        self.client
            .execute(
                "INSERT INTO baton_migrations (name, checksum, phase, applied_at, duration_ms) \
                 VALUES ($1, $2, $3, clock_timestamp(), $4)",
                &[&file.name, &file.checksum, &file.phase.name(), &millis],
            )
            .await
            .map(drop)
    }

    /// `SET lock_timeout = …; SET statement_timeout = …`, with `set`
    /// being `SET` or `SET LOCAL`.
    fn limits(&self, set: &str) -> String {
        format!(
            "{set} lock_timeout = {}; {set} statement_timeout = {}",
            self.settings.lock_timeout.as_millis().max(1),
            self.settings.statement_timeout.as_millis().max(1)
        )
    }
}

/// The SQLSTATE of a server error; `None` for a lost connection and the
/// like.
fn sqlstate(error: &tokio_postgres::Error) -> Option<&str> {
    error.code().map(tokio_postgres::error::SqlState::code)
}

/// The server's message with its detail and hint, on one line.
fn describe(error: &tokio_postgres::Error) -> String {
    let Some(db) = error.as_db_error() else {
        return error.to_string();
    };
    let mut text = db.message().to_owned();
    if let Some(detail) = db.detail() {
        text.push_str(&format!(" ({})", detail.trim_end_matches('.')));
    }
    if let Some(hint) = db.hint() {
        text.push_str(&format!("; hint: {hint}"));
    }
    if db.code().code() == "57014" && db.message().contains("statement timeout") {
        text.push_str("; raise [migrate] statement_timeout if it needs longer");
    }
    text.replace('\n', " ")
}

/// The line of `file` an error points at: its position within the
/// failing statement when the server gives one, else the statement's first
/// line, else the file's.
fn error_line(
    file: &MigrationFile,
    statement: Option<&MigrationStatement>,
    error: &tokio_postgres::Error,
) -> usize {
    let Some(statement) = statement else {
        return 1;
    };
    let position = match error.as_db_error().and_then(|db| db.position()) {
        Some(ErrorPosition::Original(position)) => *position,
        _ => return statement.line,
    };
    // The server counts characters from 1.
    let within = statement
        .sql
        .char_indices()
        .nth(position.saturating_sub(1) as usize)
        .map_or(statement.sql.len(), |(at, _)| at);
    file.line_of(statement.offset + within)
}

/// Maps a bookkeeping query's failure to [`RunError::Database`].
fn database(action: &str) -> impl Fn(tokio_postgres::Error) -> RunError + '_ {
    move |error| RunError::Database {
        action: action.to_owned(),
        message: describe(&error),
    }
}
