//! The one task that persists minute rollups. Just after each minute turns
//! it reads the lifetime counters of every version that may carry traffic,
//! subtracts what it read a minute earlier, and appends the differences to
//! the state store in one transaction; once an hour it prunes rollups older
//! than [`KEEP_ROLLUPS`]. When the daemon stops it writes the minute so far.
//!
//! The proxy only bumps counters, as it does anyway: nothing here is on a
//! request's path, and the store is written off the async workers.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use baton_state::{RollupRecord, Store};
use baton_telemetry::RequestStats;
use baton_telemetry::rollup::{MINUTE_MS, MinuteRollup, Reading, minute_start};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::process_table::unix_ms;
use crate::route_manager::RouteManager;

/// How long rollups are kept: a 30-day error budget window, and a few days
/// more to compare a month with the one before.
pub const KEEP_ROLLUPS: Duration = Duration::from_secs(35 * 24 * 3600);

const HOUR_MS: u64 = 3_600_000;

/// Wall-clock time in Unix milliseconds, injected so that the writer runs
/// under tokio's paused clock in tests.
pub trait WallClock: Send + Sync + 'static {
    /// Now.
    fn unix_ms(&self) -> u64;
}

/// The system's clock.
pub struct SystemClock;

impl WallClock for SystemClock {
    fn unix_ms(&self) -> u64 {
        unix_ms(SystemTime::now())
    }
}

/// One version's stats as the writer reads them.
#[derive(Clone)]
pub struct LiveStats {
    /// The app (service) it serves.
    pub app: String,
    /// Its label.
    pub version: String,
    /// Its counters.
    pub stats: Arc<RequestStats>,
}

/// Starts the writer over `routes`' versions; it stops (after writing the
/// minute so far) when `stop` is cancelled.
pub fn spawn(
    store: Arc<Store>,
    routes: Arc<RouteManager>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    let live = move || {
        routes
            .every_version()
            .into_iter()
            .map(|(app, routed)| LiveStats {
                app,
                version: routed.version.label().to_string(),
                stats: Arc::clone(routed.version.stats()),
            })
            .collect()
    };
    tokio::spawn(run(store, SystemClock, live, stop))
}

/// Writes a rollup of every version in `live()` at every minute until
/// `stop`, then the minute so far.
pub async fn run(
    store: Arc<Store>,
    clock: impl WallClock,
    live: impl Fn() -> Vec<LiveStats> + Send + 'static,
    stop: CancellationToken,
) {
    let mut ledger = Ledger::new(clock.unix_ms());
    let mut pruned_in_hour = None;
    loop {
        let now = clock.unix_ms();
        let next = minute_start(now) + MINUTE_MS;
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(next - now)) => {}
            () = stop.cancelled() => {
                let rollups = ledger.take(clock.unix_ms(), live());
                save(&store, rollups, None).await;
                return;
            }
        }
        let now = clock.unix_ms();
        if now < next {
            // The wall clock went back while the timer ran.
            continue;
        }
        let prune_before = (pruned_in_hour != Some(now / HOUR_MS)).then(|| {
            pruned_in_hour = Some(now / HOUR_MS);
            now.saturating_sub(u64::try_from(KEEP_ROLLUPS.as_millis()).unwrap_or(u64::MAX))
        });
        let rollups = ledger.take(now, live());
        save(&store, rollups, prune_before).await;
    }
}

/// Appends `rollups` and prunes what is older than `prune_before`, off the
/// async workers (a commit waits for fsync). A failure loses those
/// minutes, not the daemon.
async fn save(store: &Arc<Store>, rollups: Vec<RollupRecord>, prune_before: Option<u64>) {
    let store = Arc::clone(store);
    let saved = tokio::task::spawn_blocking(move || {
        store.add_rollups(&rollups)?;
        if let Some(before) = prune_before {
            store.prune_rollups(before)?;
        }
        Ok::<_, baton_state::StateError>(())
    })
    .await;
    match saved {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::error!(%error, "Saving minute rollups failed"),
        Err(error) => tracing::error!(%error, "Saving minute rollups failed"),
    }
}

/// What the writer read last from each stats instance. Instances, not
/// labels: a version deployed again under the same label has new stats
/// that count from zero.
struct Ledger {
    last_ms: u64,
    tracked: Vec<(LiveStats, Reading)>,
}

impl Ledger {
    fn new(started_ms: u64) -> Self {
        Ledger {
            last_ms: started_ms,
            tracked: Vec::new(),
        }
    }

    /// The rollups since the last reading, read at `now_ms`, of the versions
    /// in `live` (new ones count from zero) and of those tracked that are no
    /// longer live (read one last time: they record nothing more).
    /// Minutes without requests give no rollup.
    fn take(&mut self, now_ms: u64, live: Vec<LiveStats>) -> Vec<RollupRecord> {
        let mut previous = std::mem::take(&mut self.tracked);
        let mut rollups = Vec::new();
        let mut read = |stats: &LiveStats, last: &Reading| {
            let reading = Reading::of(&stats.stats);
            let rollup = MinuteRollup::between(self.last_ms, now_ms, last, &reading);
            if !rollup.is_empty() {
                rollups.push(record(stats, &rollup));
            }
            reading
        };
        for stats in live {
            let last = previous
                .iter()
                .position(|(tracked, _)| Arc::ptr_eq(&tracked.stats, &stats.stats))
                .map(|index| previous.swap_remove(index).1)
                .unwrap_or_default();
            let reading = read(&stats, &last);
            self.tracked.push((stats, reading));
        }
        for (gone, last) in &previous {
            read(gone, last);
        }
        self.last_ms = now_ms;
        rollups
    }
}

fn record(stats: &LiveStats, rollup: &MinuteRollup) -> RollupRecord {
    RollupRecord {
        app: stats.app.clone(),
        version: stats.version.clone(),
        minute_ms: rollup.minute_ms,
        until_ms: rollup.until_ms,
        requests: rollup.requests,
        errors: rollup.errors,
        latency: rollup.latency.encode(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use baton_telemetry::{LatencyBuckets, Outcome};
    use tokio::time::Instant;

    use super::*;

    /// 2026-01-01T10:00:00Z.
    const T0: u64 = 1_767_261_600_000;

    /// Wall time that moves with tokio's (paused) clock.
    struct PausedClock {
        base_ms: u64,
        start: Instant,
    }

    impl WallClock for PausedClock {
        fn unix_ms(&self) -> u64 {
            self.base_ms + u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
        }
    }

    fn serve(stats: &RequestStats, outcome: Outcome, n: usize) {
        for _ in 0..n {
            stats.record(std::time::Instant::now(), outcome, Duration::from_millis(3));
        }
    }

    /// Waits (in paused time, a few milliseconds a step) until the store
    /// holds `count` rollups of `app`.
    async fn rollups(store: &Store, app: &str, count: usize) -> Vec<RollupRecord> {
        for _ in 0..1000 {
            let rows = store.rollups(app, 0, u64::MAX).expect("read");
            if rows.len() >= count {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("fewer than {count} rollups of {app} were written");
    }

    #[tokio::test(start_paused = true)]
    async fn each_finished_minute_is_written_once_then_the_minute_so_far() {
        let store = Arc::new(Store::open_in_memory().expect("store"));
        // Rollups from 36 days ago go at the first prune.
        let old = RollupRecord {
            app: "web".into(),
            version: "v0".into(),
            minute_ms: T0 - 36 * 24 * 3_600_000,
            until_ms: T0 - 36 * 24 * 3_600_000 + MINUTE_MS,
            requests: 1,
            errors: 0,
            latency: LatencyBuckets::default().encode(),
        };
        store.add_rollups(&[old]).expect("old rollup");

        let v1 = Arc::new(RequestStats::new(std::time::Instant::now()));
        let v2 = Arc::new(RequestStats::new(std::time::Instant::now()));
        let live = Arc::new(Mutex::new(vec![LiveStats {
            app: "web".into(),
            version: "v1".into(),
            stats: Arc::clone(&v1),
        }]));
        let stop = CancellationToken::new();
        let clock = PausedClock {
            base_ms: T0 + 45_000,
            start: Instant::now(),
        };
        let listed = Arc::clone(&live);
        let writer = tokio::spawn(run(
            Arc::clone(&store),
            clock,
            move || listed.lock().expect("live").clone(),
            stop.clone(),
        ));

        // 10:00:45 to 10:01:00: three requests, one of them failed.
        serve(&v1, Outcome::Status(200), 2);
        serve(&v1, Outcome::Status(502), 1);
        tokio::time::sleep(Duration::from_secs(20)).await;
        let rows = rollups(&store, "web", 1).await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            (
                rows[0].version.as_str(),
                rows[0].minute_ms,
                rows[0].until_ms
            ),
            ("v1", T0, T0 + MINUTE_MS)
        );
        assert_eq!((rows[0].requests, rows[0].errors), (3, 1));
        let latency = LatencyBuckets::decode(&rows[0].latency).expect("buckets");
        assert_eq!(latency.count(), 3);

        // 10:01: v2 joins as a candidate; v1 serves 5, v2 serves 2.
        live.lock().expect("live").push(LiveStats {
            app: "web".into(),
            version: "v2".into(),
            stats: Arc::clone(&v2),
        });
        serve(&v1, Outcome::Status(200), 5);
        serve(&v2, Outcome::Status(200), 2);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let rows = rollups(&store, "web", 3).await;
        let minute_1: Vec<(&str, u64)> = rows[1..]
            .iter()
            .map(|row| (row.version.as_str(), row.requests))
            .collect();
        assert_eq!(minute_1, [("v1", 5), ("v2", 2)]);
        assert!(rows[1..].iter().all(|row| row.minute_ms == T0 + MINUTE_MS));

        // 10:02: v1 leaves the route; a request it was still serving ends
        // after that. v2 serves nothing this minute: no rollup.
        live.lock()
            .expect("live")
            .retain(|stats| stats.version == "v2");
        serve(&v1, Outcome::Status(200), 1);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let rows = rollups(&store, "web", 4).await;
        assert_eq!(rows.len(), 4, "{rows:?}");
        assert_eq!(
            (
                rows[3].version.as_str(),
                rows[3].minute_ms,
                rows[3].requests
            ),
            ("v1", T0 + 2 * MINUTE_MS, 1)
        );

        // 10:03:10 the daemon stops: the ten seconds so far are written.
        tokio::time::sleep(Duration::from_secs(10)).await;
        serve(&v2, Outcome::Status(200), 4);
        stop.cancel();
        writer.await.expect("writer");
        let rows = store.rollups("web", 0, u64::MAX).expect("read");
        let last = rows.last().expect("a rollup");
        assert_eq!(
            (last.version.as_str(), last.minute_ms, last.requests),
            ("v2", T0 + 3 * MINUTE_MS, 4)
        );
        assert!(last.until_ms > T0 + 3 * MINUTE_MS && last.until_ms < T0 + 4 * MINUTE_MS);
        // The 36-day-old rollup was pruned; every request counted once.
        assert!(rows.iter().all(|row| row.version != "v0"));
        let total: u64 = rows.iter().map(|row| row.requests).sum();
        assert_eq!(total, v1.totals().requests + v2.totals().requests);
    }
}
