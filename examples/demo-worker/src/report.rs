//! `demo-worker report`: what became of the jobs, as JSON.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::queue::Queue;

/// Counts over the whole queue, read in one snapshot. Fields serialize in
/// this order: `{"total":…,"queued":…,"running":…,"done":…,
/// "done_more_than_once":…,"by_worker":{"v1:123":…}}`. Counts are `i64`
/// because that is SQLite's integer.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Report {
    pub total: i64,
    pub queued: i64,
    pub running: i64,
    pub done: i64,
    /// Jobs run to the end more than once: each is a duplicated job.
    pub done_more_than_once: i64,
    /// Finished jobs per worker (`VERSION:pid`), by who finished them last.
    pub by_worker: BTreeMap<String, i64>,
}

impl Report {
    pub fn read(queue: &mut Queue) -> anyhow::Result<Self> {
        // One read transaction, so the counts agree with each other even
        // while workers are busy.
        let tx = queue.connection_mut().transaction()?;
        let mut report = tx.query_row(
            "SELECT COUNT(*),
                    COALESCE(SUM(state = 'queued'), 0),
                    COALESCE(SUM(state = 'running'), 0),
                    COALESCE(SUM(state = 'done'), 0),
                    COALESCE(SUM(done_count > 1), 0)
             FROM jobs",
            [],
            |row| {
                Ok(Self {
                    total: row.get(0)?,
                    queued: row.get(1)?,
                    running: row.get(2)?,
                    done: row.get(3)?,
                    done_more_than_once: row.get(4)?,
                    by_worker: BTreeMap::new(),
                })
            },
        )?;
        {
            let mut by_worker = tx.prepare(
                "SELECT done_by, COUNT(*) FROM jobs WHERE done_by IS NOT NULL GROUP BY done_by",
            )?;
            let rows = by_worker.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            for row in rows {
                let (worker, jobs) = row?;
                report.by_worker.insert(worker, jobs);
            }
        }
        tx.commit()?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_states_duplicates_and_workers() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let mut queue = Queue::open(&dir.path().join("q.db"))?;
        let empty = Report::read(&mut queue)?;
        assert_eq!(
            serde_json::to_string(&empty)?,
            r#"{"total":0,"queued":0,"running":0,"done":0,"done_more_than_once":0,"by_worker":{}}"#
        );

        queue.enqueue(&[1, 1, 1, 1])?;
        for worker in ["a:1", "b:2", "a:1"] {
            if let Some(job) = queue.claim(worker)? {
                queue.finish(job, worker)?;
            }
        }
        // Job 1 runs a second time, finished by b.
        queue.connection_mut().execute(
            "UPDATE jobs SET done_count = 2, done_by = 'b:2' WHERE id = 1",
            [],
        )?;
        queue.claim("c:3")?;

        let report = Report::read(&mut queue)?;
        assert_eq!(
            serde_json::to_string(&report)?,
            r#"{"total":4,"queued":0,"running":1,"done":3,"done_more_than_once":1,"by_worker":{"a:1":1,"b:2":2}}"#
        );
        Ok(())
    }
}
