//! The job queue: one SQLite table that outlives every worker process.
//!
//! Any number of workers (and `enqueue`/`report` runs) share the file. WAL
//! lets readers go on while a worker writes, and the 5 s busy timeout makes
//! a writer wait for the lock instead of failing.

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, bail};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS jobs (
        id          INTEGER PRIMARY KEY,
        ms          INTEGER NOT NULL,
        state       TEXT    NOT NULL DEFAULT 'queued', -- queued, running, done
        worker      TEXT,                              -- who claimed it last
        done_count  INTEGER NOT NULL DEFAULT 0,        -- above 1 means run twice
        done_by     TEXT,                              -- who finished it last
        started_at  INTEGER,                           -- unix ms
        finished_at INTEGER                            -- unix ms
    );
    CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, id);
";

/// One claimed job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Job {
    pub id: i64,
    /// How long the job takes.
    pub ms: u32,
}

/// An open connection to the queue file.
pub struct Queue {
    conn: Connection,
    path: PathBuf,
}

impl Queue {
    /// Opens (creating if needed) the queue at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open queue {}", path.display()))?;
        Self::prepare(conn, path).with_context(|| format!("cannot set up queue {}", path.display()))
    }

    fn prepare(conn: Connection, path: &Path) -> anyhow::Result<Self> {
        // Set before anything else so that even switching to WAL waits for
        // a worker that holds the lock.
        conn.busy_timeout(Duration::from_secs(5))?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            bail!("journal_mode is {mode}, not wal");
        }
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one queued job per duration; answers the first and last ids.
    pub fn enqueue(&mut self, durations: &[u32]) -> anyhow::Result<Option<(i64, i64)>> {
        let tx = self.conn.transaction()?;
        let mut ids = None;
        {
            let mut insert = tx.prepare("INSERT INTO jobs (ms) VALUES (?1)")?;
            for &ms in durations {
                insert.execute([ms])?;
                let id = tx.last_insert_rowid();
                ids = Some(ids.map_or((id, id), |(first, _)| (first, id)));
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Takes the oldest queued job for `worker`, if there is one.
    ///
    /// `BEGIN IMMEDIATE` takes the write lock before the `SELECT`, so two
    /// workers can never both see the same job as queued.
    pub fn claim(&mut self, worker: &str) -> anyhow::Result<Option<Job>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let job = tx
            .query_row(
                "SELECT id, ms FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1",
                [],
                |row| {
                    Ok(Job {
                        id: row.get(0)?,
                        ms: row.get(1)?,
                    })
                },
            )
            .optional()?;
        if let Some(job) = job {
            tx.execute(
                "UPDATE jobs SET state = 'running', worker = ?1, started_at = ?2 WHERE id = ?3",
                params![worker, unix_ms(), job.id],
            )?;
        }
        tx.commit()?;
        Ok(job)
    }

    /// Records that `worker` finished `job`.
    pub fn finish(&self, job: Job, worker: &str) -> anyhow::Result<()> {
        self.conn.execute(
            "UPDATE jobs
             SET state = 'done', done_count = done_count + 1, done_by = ?1, finished_at = ?2
             WHERE id = ?3",
            params![worker, unix_ms(), job.id],
        )?;
        Ok(())
    }

    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

/// Now as unix milliseconds; a clock before 1970 reads as 0.
fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(queue: &Queue, id: i64) -> rusqlite::Result<(String, i64, Option<String>)> {
        queue.conn.query_row(
            "SELECT state, done_count, done_by FROM jobs WHERE id = ?1",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
    }

    #[test]
    fn claims_oldest_first_and_finishes() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut queue = Queue::open(&dir.path().join("q.db"))?;
        assert_eq!(queue.enqueue(&[30, 10])?, Some((1, 2)));
        assert_eq!(queue.enqueue(&[])?, None);

        let first = queue.claim("v1:1")?;
        assert_eq!(first, Some(Job { id: 1, ms: 30 }));
        assert_eq!(state(&queue, 1)?, ("running".into(), 0, None));

        let second = queue.claim("v1:1")?;
        assert_eq!(second, Some(Job { id: 2, ms: 10 }));
        assert_eq!(queue.claim("v1:1")?, None);

        queue.finish(Job { id: 1, ms: 30 }, "v1:1")?;
        assert_eq!(state(&queue, 1)?, ("done".into(), 1, Some("v1:1".into())));
        Ok(())
    }

    #[test]
    fn reopening_keeps_jobs_and_uses_wal() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("q.db");
        Queue::open(&path)?.enqueue(&[5, 6, 7])?;
        let mut queue = Queue::open(&path)?;
        let mode: String = queue
            .conn
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
        assert_eq!(mode, "wal");
        assert_eq!(queue.claim("v2:2")?, Some(Job { id: 1, ms: 5 }));
        Ok(())
    }
}
