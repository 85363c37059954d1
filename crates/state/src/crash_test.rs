//! Crash consistency: a child process (this test binary, re-executed) writes
//! services and process records in a tight loop and is SIGKILLed at random
//! moments. After every kill the file must open, every record must come
//! from one single write, and the whole state must be exactly the result of
//! the writes the child reported as done, plus at most the one it was in
//! the middle of.
//!
//! Every write is a pure function of a generation number `g`, so the parent
//! can recompute what each write stored and compare records whole.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use crate::{PauseRecord, ProcessRecord, ServiceOptions, ServiceRecord, Store, VersionRecord};

const DB_ENV: &str = "BATON_STATE_CRASH_CHILD_DB";
const BASE_ENV: &str = "BATON_STATE_CRASH_CHILD_BASE";
const SEED_ENV: &str = "BATON_STATE_CRASH_SEED";
const CHILD_TEST: &str = "crash_test::writer_child";
/// Marks the child's "write `g` committed" lines. Searched for anywhere in a
/// line: libtest prints `test crash_test::writer_child ... ` without a
/// newline before running the test, so the first ack shares its line.
const ACK: &str = "committed-generation ";
const SERVICES: u64 = 4;
const PROCESSES: u64 = 3;
const ROUNDS: u64 = 20;
/// Generations of round `r` start at `(r + 1) * ROUND_SPAN`, so no two
/// rounds write the same generation.
const ROUND_SPAN: u64 = 1 << 32;

/// What write number `g` does.
enum Op {
    Put(ServiceRecord),
    Remove(String),
    PutProcess(ProcessRecord),
    RemoveProcess(String),
}

fn op(g: u64) -> Op {
    let name = format!("svc-{}", g % SERVICES);
    match g % 14 {
        3 | 10 => Op::Remove(name),
        5 | 12 => Op::PutProcess(process(g)),
        6 => Op::RemoveProcess(format!("proc-{}", g % PROCESSES)),
        _ => Op::Put(record(name, g)),
    }
}

/// A record whose every part carries `g`, with a shape (target count,
/// version, pause) that varies between writes to the same service.
fn record(name: String, g: u64) -> ServiceRecord {
    let turn = g / SERVICES;
    let with_version = turn % 9 != 4;
    let paused = turn % 2 == 1;
    ServiceRecord {
        name,
        hosts: vec![format!("g{g}.example.com"), format!("*.g{g}.example.org")],
        path_prefix: format!("/g{g}"),
        options: ServiceOptions {
            health_interval_ms: g,
            ..ServiceOptions::default()
        },
        active: with_version.then(|| VersionRecord {
            label: format!("g{g}"),
            targets: (0..turn % 5)
                .map(|k| format!("g{g}-t{k}.internal:{}", 8000 + k))
                .collect(),
            activated_at_ms: g,
        }),
        pause: paused.then_some(PauseRecord {
            max_ms: g,
            since_ms: g,
        }),
    }
}

/// A process slot whose every part carries `g`, with optional fields
/// present or absent depending on the write.
fn process(g: u64) -> ProcessRecord {
    let turn = g / PROCESSES;
    let spawned = !turn.is_multiple_of(3);
    let web = turn.is_multiple_of(2);
    ProcessRecord {
        marker: format!("proc-{}", g % PROCESSES),
        app: format!("app-{}", turn % 2),
        release: format!("g{g}"),
        role: if web { "web" } else { "worker" }.to_owned(),
        index: u32::try_from(turn % 4).unwrap(),
        pid: spawned.then(|| u32::try_from(g % 4_000_000).unwrap()),
        start_time: spawned.then_some(g),
        port: web.then(|| u16::try_from(8000 + g % 1000).unwrap()),
        started_at_ms: g,
        restarts: u32::try_from(turn % 5).unwrap(),
        state: if spawned { "running" } else { "starting" }.to_owned(),
        stop_after_ms: (turn % 4 == 3).then_some(g),
        log_file: format!("/var/log/baton/g{g}.log"),
    }
}

/// Everything the workload writes, keyed as the store keys it.
#[derive(Debug, Clone, Default, PartialEq)]
struct Model {
    services: BTreeMap<String, ServiceRecord>,
    processes: BTreeMap<String, ProcessRecord>,
}

fn apply_to_store(store: &Store, g: u64) {
    match op(g) {
        Op::Put(record) => store.put_service(&record).unwrap(),
        Op::Remove(name) => {
            store.remove_service(&name).unwrap();
        }
        Op::PutProcess(record) => store.put_process(&record).unwrap(),
        Op::RemoveProcess(marker) => {
            store.remove_process(&marker).unwrap();
        }
    }
}

fn apply_to_model(model: &mut Model, g: u64) {
    match op(g) {
        Op::Put(record) => {
            model.services.insert(record.name.clone(), record);
        }
        Op::Remove(name) => {
            model.services.remove(&name);
        }
        Op::PutProcess(record) => {
            model.processes.insert(record.marker.clone(), record);
        }
        Op::RemoveProcess(marker) => {
            model.processes.remove(&marker);
        }
    }
}

/// Not a real test: the body the parent runs in a child process. Without
/// the environment variable it does nothing, so ordinary runs pass it.
#[test]
fn writer_child() {
    let (Some(db), Ok(base)) = (std::env::var_os(DB_ENV), std::env::var(BASE_ENV)) else {
        return;
    };
    let base: u64 = base.parse().unwrap();
    let store = Store::open(Path::new(&db)).unwrap();
    // Straight to fd 1: the test harness captures print!, not this.
    let mut out = std::io::stdout();
    // In case the parent dies without killing us.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut g = base;
    while Instant::now() < deadline {
        apply_to_store(&store, g);
        writeln!(out, "{ACK}{g}").unwrap();
        out.flush().unwrap();
        g += 1;
    }
}

/// Kills and reaps the child even when an assertion fails mid-round.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// xorshift64: enough randomness for kill timing, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn check_whole(record: &ServiceRecord) {
    let g: u64 = record
        .path_prefix
        .strip_prefix("/g")
        .and_then(|g| g.parse().ok())
        .unwrap_or_else(|| panic!("unexpected record {record:?}"));
    assert_eq!(record.name, format!("svc-{}", g % SERVICES));
    assert_eq!(
        record,
        &self::record(record.name.clone(), g),
        "record is not the product of one single write"
    );
}

fn check_whole_process(record: &ProcessRecord) {
    let g: u64 = record
        .release
        .strip_prefix("g")
        .and_then(|g| g.parse().ok())
        .unwrap_or_else(|| panic!("unexpected process {record:?}"));
    assert_eq!(
        record,
        &process(g),
        "process is not the product of one single write"
    );
}

fn check_file(db: &Path) {
    let conn = Connection::open(db).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let orphans = conn
        .prepare("PRAGMA foreign_key_check")
        .unwrap()
        .query_map([], |_| Ok(()))
        .unwrap()
        .count();
    assert_eq!(orphans, 0, "rows without their parent");
}

#[test]
fn kill_minus_nine_at_random_moments_leaves_a_whole_state() {
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    // Shown only if the test fails; rerun with BATON_STATE_CRASH_SEED=<seed>.
    eprintln!("seed {seed}");
    let mut rng = Rng(seed);

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state").join("state.db");
    let exe = std::env::current_exe().unwrap();
    let mut model = Model::default();
    let mut acknowledged = 0;
    let mut saw_processes = false;

    for round in 0..ROUNDS {
        let base = (round + 1) * ROUND_SPAN;
        let mut child = KillOnDrop(
            Command::new(&exe)
                .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
                .env(DB_ENV, &db)
                .env(BASE_ENV, base.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let stdout = child.0.stdout.take().unwrap();
        let acks = thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|line| line.split_once(ACK)?.1.trim().parse::<u64>().ok())
                .fold((None, 0u64), |(_, n), g| (Some(g), n + 1))
        });
        let mut stderr = child.0.stderr.take().unwrap();
        let errors = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });

        // Every fourth kill comes almost at once, to land while the child
        // creates the file, switches to WAL or migrates the schema.
        let delay = if round % 4 == 0 {
            rng.below(6)
        } else {
            rng.below(150)
        };
        thread::sleep(Duration::from_millis(delay));
        let _ = child.0.kill();
        let status = child.0.wait().unwrap();
        let (last, count) = acks.join().unwrap();
        let errors = errors.join().unwrap();
        assert_eq!(
            status.signal(),
            Some(9),
            "round {round}: the writer ended on its own ({status}):\n{errors}"
        );
        acknowledged += count;

        let store = Store::open(&db)
            .unwrap_or_else(|e| panic!("round {round}: reopening after kill -9 failed: {e}"));
        check_file(&db);
        let loaded = Model {
            services: store
                .services()
                .unwrap_or_else(|e| panic!("round {round}: loading after kill -9 failed: {e}"))
                .into_iter()
                .map(|r| (r.name.clone(), r))
                .collect(),
            processes: store
                .processes(None)
                .unwrap_or_else(|e| panic!("round {round}: loading after kill -9 failed: {e}"))
                .into_iter()
                .map(|r| (r.marker.clone(), r))
                .collect(),
        };
        for record in loaded.services.values() {
            check_whole(record);
        }
        for record in loaded.processes.values() {
            check_whole_process(record);
        }

        // Acknowledged writes must all be there; the one in flight may be.
        let next = last.map_or(base, |g| g + 1);
        let mut after_acked = model.clone();
        for g in base..next {
            apply_to_model(&mut after_acked, g);
        }
        let mut after_in_flight = after_acked.clone();
        apply_to_model(&mut after_in_flight, next);
        assert!(
            loaded == after_acked || loaded == after_in_flight,
            "round {round}: state after kill is neither the acknowledged writes \
             (up to {last:?}) nor those plus the next one:\n{loaded:#?}"
        );
        saw_processes |= !loaded.processes.is_empty();
        model = loaded;
    }
    assert!(
        acknowledged > 0,
        "the writer never completed a write; the kills tested nothing"
    );
    assert!(
        saw_processes,
        "no process record survived any round; the kills tested only services"
    );
}
