//! Runs the built `demo-worker` binary against queue files in a temporary
//! directory and checks the queue with SQLite directly.

use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};
use rusqlite::Connection;

type TestResult = Result<(), Box<dyn std::error::Error>>;
type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

/// Long enough for a loaded machine; the happy path takes well under a second.
const DEADLINE: Duration = Duration::from_secs(20);

/// A `demo-worker` process; killed on drop, whatever path the test took.
struct Process {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    /// The threads reading stdout and stderr; they end when the process does.
    readers: Vec<JoinHandle<()>>,
}

impl Process {
    fn start(db: &Path, args: &[&str], env: &[(&str, &str)]) -> Fallible<Self> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_demo-worker"));
        command
            .args(args)
            .env("QUEUE_DB", db)
            .env_remove("VERSION")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn()?;
        let (stdout, out_reader) = collect(child.stdout.take());
        let (stderr, err_reader) = collect(child.stderr.take());
        Ok(Self {
            child,
            stdout,
            stderr,
            readers: out_reader.into_iter().chain(err_reader).collect(),
        })
    }

    /// Runs a command that ends by itself (`enqueue`, `report`).
    fn run(db: &Path, args: &[&str]) -> Fallible<(ExitStatus, Vec<String>, Vec<String>)> {
        let mut process = Self::start(db, args, &[])?;
        let status = process.wait_exit()?;
        Ok((status, process.stdout()?, process.stderr()?))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, signal: Signal) -> TestResult {
        let pid = i32::try_from(self.child.id())?;
        nix::sys::signal::kill(Pid::from_raw(pid), signal)?;
        Ok(())
    }

    fn wait_exit(&mut self) -> Fallible<ExitStatus> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait()? {
                // The pipes are closed now, so the readers end after the last line.
                for reader in self.readers.drain(..) {
                    reader.join().map_err(|_| "output reader panicked")?;
                }
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err("demo-worker did not exit within deadline".into());
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn stdout(&self) -> Fallible<Vec<String>> {
        Ok(self.stdout.lock().map_err(|_| "poisoned")?.clone())
    }

    fn stderr(&self) -> Fallible<Vec<String>> {
        Ok(self.stderr.lock().map_err(|_| "poisoned")?.clone())
    }

    /// Waits until stdout has a line starting with `prefix`.
    fn wait_for_line(&self, prefix: &str) -> TestResult {
        wait_until(&format!("a line starting {prefix:?}"), || {
            Ok(self.stdout()?.iter().any(|line| line.starts_with(prefix)))
        })
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if !thread::panicking() {
            return;
        }
        if let (Ok(out), Ok(err)) = (self.stdout.lock(), self.stderr.lock()) {
            eprintln!("--- demo-worker stdout ---\n{}", out.join("\n"));
            eprintln!("--- demo-worker stderr ---\n{}", err.join("\n"));
        }
    }
}

/// Reads `pipe` line by line on a thread, into the returned list.
fn collect(
    pipe: Option<impl std::io::Read + Send + 'static>,
) -> (Arc<Mutex<Vec<String>>>, Option<JoinHandle<()>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let reader = pipe.map(|pipe| {
        let sink = Arc::clone(&lines);
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Ok(mut lines) = sink.lock() {
                    lines.push(line);
                }
            }
        })
    });
    (lines, reader)
}

fn wait_until(what: &str, mut done: impl FnMut() -> Fallible<bool>) -> TestResult {
    let deadline = Instant::now() + DEADLINE;
    while !done()? {
        if Instant::now() > deadline {
            return Err(format!("gave up waiting for {what}").into());
        }
        thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn enqueue(db: &Path, count: u32, min_ms: u32, max_ms: u32) -> TestResult {
    let (status, stdout, stderr) = Process::run(
        db,
        &[
            "enqueue",
            "--count",
            &count.to_string(),
            "--min-ms",
            &min_ms.to_string(),
            "--max-ms",
            &max_ms.to_string(),
        ],
    )?;
    assert!(status.success(), "enqueue failed: {status} {stderr:?}");
    assert_eq!(stdout.len(), 1, "{stdout:?}");
    assert!(stdout[0].starts_with(&format!("enqueued {count} jobs")));
    Ok(())
}

fn report(db: &Path) -> Fallible<serde_json::Value> {
    let (status, stdout, stderr) = Process::run(db, &["report"])?;
    assert!(status.success(), "report failed: {status} {stderr:?}");
    assert_eq!(stdout.len(), 1, "{stdout:?}");
    Ok(serde_json::from_str(&stdout[0])?)
}

/// `(state, done_count, worker, done_by, finished_at - started_at)` of a job.
type Row = (String, i64, Option<String>, Option<String>, Option<i64>);

fn job(db: &Path, id: i64) -> Fallible<Row> {
    let conn = Connection::open(db)?;
    Ok(conn.query_row(
        "SELECT state, done_count, worker, done_by, finished_at - started_at FROM jobs WHERE id = ?1",
        [id],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)),
    )?)
}

fn queue_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("queue.db")
}

#[test]
fn two_workers_finish_every_job_exactly_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = queue_in(&dir);
    enqueue(&db, 30, 10, 40)?;

    let mut one = Process::start(&db, &[], &[("VERSION", "v1")])?;
    let mut two = Process::start(&db, &[], &[("VERSION", "v2")])?;
    wait_until("every job done", || Ok(report(&db)?["done"] == 30))?;
    one.signal(Signal::SIGTERM)?;
    two.signal(Signal::SIGTERM)?;
    assert_eq!(one.wait_exit()?.code(), Some(0));
    assert_eq!(two.wait_exit()?.code(), Some(0));

    let report = report(&db)?;
    assert_eq!(report["total"], 30);
    assert_eq!(report["queued"], 0);
    assert_eq!(report["running"], 0);
    assert_eq!(report["done"], 30);
    assert_eq!(report["done_more_than_once"], 0);
    let by_worker = report["by_worker"].as_object().ok_or("no by_worker")?;
    let names: BTreeSet<String> = by_worker.keys().cloned().collect();
    let expected: BTreeSet<String> = [format!("v1:{}", one.pid()), format!("v2:{}", two.pid())]
        .into_iter()
        .collect();
    assert_eq!(names, expected, "both workers took jobs");
    let total: u64 = by_worker
        .values()
        .filter_map(serde_json::Value::as_u64)
        .sum();
    assert_eq!(total, 30);

    // Each job printed once, by whichever worker ran it.
    let mut printed = Vec::new();
    for process in [&one, &two] {
        let lines = process.stdout()?;
        assert!(lines[0].starts_with("worker v"), "{lines:?}");
        assert!(
            lines
                .last()
                .is_some_and(|line| line.contains(" stopped on SIGTERM after ")),
            "{lines:?}"
        );
        for line in &lines {
            if let Some(rest) = line.strip_prefix("job ") {
                let id: i64 = rest.split(' ').next().ok_or("no id")?.parse()?;
                printed.push(id);
            }
        }
    }
    printed.sort_unstable();
    assert_eq!(printed, (1..=30).collect::<Vec<i64>>());
    Ok(())
}

/// Signals `signal` while job 1 (of two 600 ms jobs) runs, and checks that
/// job 1 finishes once, job 2 stays queued, and the worker exits 0.
fn stop_during_job(db: &Path, signal: Signal) -> TestResult {
    enqueue(db, 2, 600, 600)?;

    let mut worker = Process::start(db, &[], &[("VERSION", "v3")])?;
    let name = format!("v3:{}", worker.pid());
    wait_until("job 1 running", || Ok(job(db, 1)?.0 == "running"))?;
    worker.signal(signal)?;
    let status = worker.wait_exit()?;
    assert_eq!(status.code(), Some(0), "{signal}: exit status {status}");

    let (state, done_count, claimed_by, done_by, took) = job(db, 1)?;
    assert_eq!(state, "done", "{signal}");
    assert_eq!(done_count, 1, "{signal}");
    assert_eq!(claimed_by.as_deref(), Some(name.as_str()));
    assert_eq!(done_by.as_deref(), Some(name.as_str()));
    assert!(took.is_some_and(|ms| ms >= 600), "{signal}: took {took:?}");
    assert_eq!(
        job(db, 2)?,
        ("queued".into(), 0, None, None, None),
        "{signal}"
    );

    let lines = worker.stdout()?;
    assert_eq!(lines.len(), 3, "{signal}: {lines:?}");
    assert_eq!(
        lines[0],
        format!("worker {name} started on queue {}", db.display())
    );
    assert!(lines[1].starts_with("job 1 done in "), "{lines:?}");
    assert!(lines[1].ends_with(&format!(" ms by {name}")), "{lines:?}");
    assert_eq!(
        lines[2],
        format!("worker {name} stopped on {} after 1 jobs", signal.as_str())
    );
    Ok(())
}

#[test]
fn sigterm_during_a_job_lets_it_finish_and_the_queue_survives() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = queue_in(&dir);
    stop_during_job(&db, Signal::SIGTERM)?;

    // The next worker picks up where the stopped one left off.
    let mut next = Process::start(&db, &[], &[("VERSION", "v4")])?;
    wait_until("job 2 done", || Ok(job(&db, 2)?.0 == "done"))?;
    next.signal(Signal::SIGTERM)?;
    assert_eq!(next.wait_exit()?.code(), Some(0));
    let report = report(&db)?;
    assert_eq!(report["done"], 2);
    assert_eq!(report["done_more_than_once"], 0);
    assert_eq!(report["by_worker"].as_object().map(|w| w.len()), Some(2));
    Ok(())
}

#[test]
fn sigint_sigquit_and_sigusr1_also_let_the_job_finish() -> TestResult {
    for signal in [Signal::SIGINT, Signal::SIGQUIT, Signal::SIGUSR1] {
        let dir = tempfile::tempdir()?;
        stop_during_job(&queue_in(&dir), signal)?;
    }
    Ok(())
}

#[test]
fn idle_worker_stops_promptly() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = queue_in(&dir);
    let mut worker = Process::start(&db, &[], &[])?;
    worker.wait_for_line("worker dev:")?;
    let signalled = Instant::now();
    worker.signal(Signal::SIGTERM)?;
    assert_eq!(worker.wait_exit()?.code(), Some(0));
    assert!(signalled.elapsed() < Duration::from_secs(5));
    let lines = worker.stdout()?;
    assert_eq!(
        lines.last().map(String::as_str),
        Some(
            format!(
                "worker dev:{} stopped on SIGTERM after 0 jobs",
                worker.pid()
            )
            .as_str()
        )
    );
    // The worker created the queue it was pointed at.
    assert_eq!(report(&db)?["total"], 0);
    Ok(())
}

#[test]
fn report_prints_one_line_of_json() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = queue_in(&dir);
    enqueue(&db, 3, 100, 500)?;

    // `--db` wins over `QUEUE_DB`.
    let elsewhere = dir.path().join("unused.db");
    let db_arg = db.to_str().ok_or("path is not UTF-8")?;
    let (status, stdout, _) = Process::run(&elsewhere, &["report", "--db", db_arg])?;
    assert!(status.success());
    assert_eq!(
        stdout,
        [r#"{"total":3,"queued":3,"running":0,"done":0,"done_more_than_once":0,"by_worker":{}}"#]
    );

    let conn = Connection::open(&db)?;
    conn.execute_batch(
        "UPDATE jobs SET state = 'done', done_count = 1, done_by = 'v1:10' WHERE id = 1;
         UPDATE jobs SET state = 'done', done_count = 2, done_by = 'v2:20' WHERE id = 2;
         UPDATE jobs SET state = 'running', worker = 'v2:20' WHERE id = 3;",
    )?;
    let (status, stdout, _) = Process::run(&db, &["report"])?;
    assert!(status.success());
    assert_eq!(
        stdout,
        [
            r#"{"total":3,"queued":0,"running":1,"done":2,"done_more_than_once":1,"by_worker":{"v1:10":1,"v2:20":1}}"#
        ]
    );
    Ok(())
}

#[test]
fn enqueue_spreads_durations_and_rejects_bad_ranges() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = queue_in(&dir);
    enqueue(&db, 20, 100, 500)?;
    let conn = Connection::open(&db)?;
    let (low, high, distinct): (i64, i64, i64) = conn.query_row(
        "SELECT MIN(ms), MAX(ms), COUNT(DISTINCT ms) FROM jobs WHERE state = 'queued'",
        [],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )?;
    assert!(low >= 100 && high <= 500, "{low}..{high}");
    assert!(high - low >= 300, "spread only over {low}..{high}");
    assert!(distinct > 10);

    let (status, _, stderr) = Process::run(
        &db,
        &[
            "enqueue", "--count", "1", "--min-ms", "500", "--max-ms", "100",
        ],
    )?;
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr
            .join("\n")
            .contains("--min-ms 500 is above --max-ms 100")
    );

    let (status, _, stderr) = Process::run(&db, &["enqueue"])?;
    assert_eq!(status.code(), Some(2), "clap usage error");
    assert!(stderr.join("\n").contains("--count"));
    assert_eq!(report(&db)?["total"], 20);
    Ok(())
}
