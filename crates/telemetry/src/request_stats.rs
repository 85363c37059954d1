//! The per (service, version) statistics the proxy records into.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::latency::as_micros;
use crate::latency_buckets::{AtomicLatencyBuckets, LatencyBuckets};
use crate::outcome::Outcome;
use crate::slice::Slice;
use crate::snapshot::{Merge, WindowSnapshot};
use crate::totals::{AtomicCounts, Totals};
use crate::window::{RING_LEN, SLICE, Window, epoch_of, missed_its_turn, slot_of};

/// Request statistics of one (service, version): a ring of time slices
/// holding at least [`RETENTION`](crate::RETENTION) of history, lifetime
/// totals and latency buckets, and the number of requests in flight.
///
/// Shared as `Arc<RequestStats>` between the proxy's connections (which
/// record) and the control plane (which reads). Each slice has its own lock,
/// so a recorder holds one lock for a few counter increments and a reader
/// merging a window never blocks recording for longer than one slice's
/// merge.
#[derive(Debug)]
pub struct RequestStats {
    created: Instant,
    slices: Box<[Mutex<Slice>]>,
    totals: AtomicCounts,
    /// Lifetime latencies in fixed buckets, for the Prometheus histogram and
    /// the minute rollups; the slices' histograms are reset as the ring turns.
    latencies: AtomicLatencyBuckets,
    in_flight: AtomicU64,
}

impl RequestStats {
    /// Empty statistics whose slices are counted from `created`.
    ///
    /// Allocates the ring's slots but no latency histogram: those come with
    /// the first request of each slot, so stats for a version that never sees
    /// traffic stay a few kilobytes.
    pub fn new(created: Instant) -> Self {
        RequestStats {
            created,
            slices: (0..RING_LEN).map(|_| Mutex::default()).collect(),
            totals: AtomicCounts::default(),
            latencies: AtomicLatencyBuckets::default(),
            in_flight: AtomicU64::new(0),
        }
    }

    /// Records one finished request: `at` is when it finished, `latency` how
    /// long it took.
    ///
    /// `at` may be slightly out of order between threads. A request older
    /// than the retention (or before creation, counted at creation) still
    /// counts in [`totals`](Self::totals) but no longer in any window.
    pub fn record(&self, at: Instant, outcome: Outcome, latency: Duration) {
        let class = outcome.class();
        let micros = as_micros(latency);
        self.totals.add(class);
        self.latencies.record(micros);
        let epoch = epoch_of(self.created, at);
        lock(&self.slices[slot_of(epoch)]).record(epoch, class, micros);
    }

    /// Notes that a request was handed to the upstream. Pair every call with
    /// one [`in_flight_finished`](Self::in_flight_finished).
    pub fn in_flight_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// Notes that a request in flight finished, whatever its outcome. An
    /// unpaired call leaves the gauge at 0 rather than wrapping to 2^64 - 1,
    /// which would read as a version that can never drain.
    pub fn in_flight_finished(&self) {
        let _ = self
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// Requests started and not yet finished.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts and latencies of the requests that finished in the `window`
    /// before `now`. The window is clamped to
    /// [`RETENTION`](crate::RETENTION) and rounded out to whole
    /// [`SLICE`](crate::SLICE)s; [`WindowSnapshot::window_ms`] says what it
    /// actually covers.
    pub fn snapshot(&self, now: Instant, window: Duration) -> WindowSnapshot {
        let window = Window::new(self.created, now, window);
        let mut merge = Merge::default();
        self.each_slice_in(&window, |slice| merge.add(slice));
        merge.finish(window.covered)
    }

    /// The latencies of the requests that finished in the `window` before
    /// `now` (clamped and rounded out as for [`snapshot`](Self::snapshot)),
    /// counted into fixed buckets, so that they can be merged with stored
    /// minute rollups. Each slice histogram's bucket is counted at its
    /// lowest value, within 1% of the real one, so that a latency on a
    /// bucket bound (say exactly 3 ms) stays in the bucket it belongs to.
    pub fn window_latency_buckets(&self, now: Instant, window: Duration) -> LatencyBuckets {
        let window = Window::new(self.created, now, window);
        let mut buckets = LatencyBuckets::default();
        self.each_slice_in(&window, |slice| {
            let Some(histogram) = slice.latencies() else {
                return;
            };
            for recorded in histogram.iter_recorded() {
                buckets.add(
                    histogram.lowest_equivalent(recorded.value_iterated_to()),
                    u64::from(recorded.count_at_value()),
                );
            }
        });
        buckets
    }

    /// The `window` before `now` (clamped as for [`snapshot`](Self::snapshot))
    /// slice by slice, oldest first: each slice's start as an offset from
    /// [`created`](Self::created), and its own snapshot. A slice without
    /// requests is there too, empty, so a chart drawn from them shows the
    /// quiet as zero rather than a line jumping over it. The last slice is
    /// the one `now` falls in, covering only up to `now`.
    pub fn slice_snapshots(
        &self,
        now: Instant,
        window: Duration,
    ) -> Vec<(Duration, WindowSnapshot)> {
        let window = Window::new(self.created, now, window);
        let now_offset = now.saturating_duration_since(self.created);
        (window.first..=window.last)
            .map(|epoch| {
                let start = SLICE.saturating_mul(u32::try_from(epoch).unwrap_or(u32::MAX));
                let mut merge = Merge::default();
                let slice = lock(&self.slices[slot_of(epoch)]);
                if slice.epoch() == epoch {
                    merge.add(&slice);
                }
                drop(slice);
                let covered = now_offset.saturating_sub(start).min(SLICE);
                (start, merge.finish(covered))
            })
            .collect()
    }

    /// Calls `visit` with each slice of `window` that holds its own epoch's
    /// data. A slot holding another epoch is either from an earlier lap (no
    /// traffic since) or already recycled by a recorder ahead of `now`;
    /// neither belongs in the window.
    fn each_slice_in(&self, window: &Window, mut visit: impl FnMut(&Slice)) {
        for epoch in window.first..=window.last {
            let slice = lock(&self.slices[slot_of(epoch)]);
            if slice.epoch() == epoch {
                visit(&slice);
            }
        }
    }

    /// Lifetime counters since creation.
    pub fn totals(&self) -> Totals {
        Totals::from(self.totals.load())
    }

    /// Lifetime latencies since creation, in fixed buckets: cumulative, so
    /// that a Prometheus histogram never goes backwards and two readings
    /// subtract into what happened between them.
    pub fn latency_buckets(&self) -> LatencyBuckets {
        self.latencies.load()
    }

    /// When these stats started counting.
    pub fn created(&self) -> Instant {
        self.created
    }

    /// Frees the latency histograms of slices that fell out of retention and
    /// whose slot then went a whole slice without a request, so a version
    /// that had a burst and went quiet gives its memory back. Traffic that
    /// reaches every slice reuses every slot, so calling this periodically
    /// (from an idle timer, say) frees nothing that is about to be reused.
    pub fn release_idle(&self, now: Instant) {
        let current = epoch_of(self.created, now);
        for slot in &self.slices {
            let mut slice = lock(slot);
            if slice.has_histogram() && missed_its_turn(slice.epoch(), current) {
                slice.release();
            }
        }
    }

    #[cfg(test)]
    fn allocated_histograms(&self) -> usize {
        self.slices
            .iter()
            .filter(|slot| lock(slot).has_histogram())
            .count()
    }
}

/// A panic while holding a slice lock cannot leave a slice half-updated in a
/// way that matters (at worst one request is partly counted), so a poisoned
/// lock is used as is rather than taking every later request down with it.
fn lock(slot: &Mutex<Slice>) -> MutexGuard<'_, Slice> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::thread;

    use super::*;
    use crate::window::{RETENTION, SLICE};

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn ms(m: u64) -> Duration {
        Duration::from_millis(m)
    }

    fn within(actual: f64, expected: f64, tolerance: f64) -> bool {
        (actual - expected).abs() <= expected * tolerance
    }

    #[test]
    fn is_send_and_sync() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<RequestStats>();
        shared::<Arc<RequestStats>>();
    }

    #[test]
    fn slice_snapshots_give_each_slice_on_its_own_quiet_ones_empty() {
        let t0 = Instant::now();
        let stats = RequestStats::new(t0);
        for _ in 0..4 {
            stats.record(t0 + secs(1), Outcome::Status(200), ms(10));
        }
        stats.record(t0 + secs(12), Outcome::Status(500), ms(30));
        let slices = stats.slice_snapshots(t0 + secs(13), secs(60));
        let starts: Vec<u64> = slices.iter().map(|(start, _)| start.as_secs()).collect();
        assert_eq!(starts, [0, 5, 10]);
        let counts: Vec<(u64, u64)> = slices
            .iter()
            .map(|(_, s)| (s.counts.requests, s.counts.errors()))
            .collect();
        assert_eq!(counts, [(4, 0), (0, 0), (1, 1)]);
        assert_eq!(slices[0].1.window_ms, 5_000);
        assert_eq!(
            slices[2].1.window_ms, 3_000,
            "the slice now is in is cut at now"
        );
        assert!(within(slices[2].1.p99_ms, 30.0, 0.01));
    }

    #[test]
    fn counts_each_outcome_in_its_class() {
        let t0 = Instant::now();
        let stats = RequestStats::new(t0);
        let at = t0 + secs(1);
        for outcome in [
            Outcome::Status(101),
            Outcome::Status(200),
            Outcome::Status(201),
            Outcome::Status(302),
            Outcome::Status(404),
            Outcome::Status(500),
            Outcome::Status(503),
            Outcome::Status(999),
            Outcome::ConnectFailure,
            Outcome::Timeout,
            Outcome::UpstreamError,
        ] {
            stats.record(at, outcome, ms(10));
        }
        let s = stats.snapshot(t0 + secs(2), secs(60));
        assert_eq!(s.counts.requests, 11);
        assert_eq!(
            [
                s.counts.status_1xx,
                s.counts.status_2xx,
                s.counts.status_3xx,
                s.counts.status_4xx,
                s.counts.status_5xx
            ],
            [1, 2, 1, 1, 2]
        );
        assert_eq!(
            [
                s.counts.connect_failures,
                s.counts.timeouts,
                s.counts.upstream_errors
            ],
            [1, 1, 1]
        );
        assert!(within(s.error_rate(), 5.0 / 11.0, 1e-12));
        assert_eq!(
            stats.totals(),
            Totals {
                requests: 11,
                status_1xx: 1,
                status_2xx: 2,
                status_3xx: 1,
                status_4xx: 1,
                status_5xx: 2,
                connect_failures: 1,
                timeouts: 1,
                upstream_errors: 1,
            }
        );
    }

    #[test]
    fn error_rate_over_a_window() {
        let t0 = Instant::now();
        let stats = RequestStats::new(t0);
        for i in 0..100 {
            let outcome = match i % 20 {
                0 => Outcome::Status(502),
                1 => Outcome::Timeout,
                2 => Outcome::Status(404),
                _ => Outcome::Status(200),
            };
            stats.record(t0 + ms(i * 100), outcome, ms(5));
        }
        let s = stats.snapshot(t0 + secs(10), secs(120));
        assert_eq!(s.counts.requests, 100);
        assert!(within(s.error_rate(), 0.10, 1e-12));
        assert_eq!(s.window_ms, 10_000);
        assert!(within(s.requests_per_second(), 10.0, 1e-12));
    }

    #[test]
    fn quantiles_are_roughly_right() {
        let t0 = Instant::now();
        let stats = RequestStats::new(t0);
        // Spread over several slices so the merge is exercised too.
        for i in 1..=1000u64 {
            stats.record(t0 + ms(i * 30), Outcome::Status(200), ms(i));
        }
        let s = stats.snapshot(t0 + secs(31), secs(60));
        assert_eq!(s.counts.requests, 1000);
        assert!(within(s.p50_ms, 500.0, 0.02), "p50 {}", s.p50_ms);
        assert!(within(s.p90_ms, 900.0, 0.02), "p90 {}", s.p90_ms);
        assert!(within(s.p99_ms, 990.0, 0.02), "p99 {}", s.p99_ms);
        assert_eq!(s.max_ms, 1000.0);
        assert!(s.p50_ms <= s.p90_ms && s.p90_ms <= s.p99_ms && s.p99_ms <= s.max_ms);
    }

    #[test]
    fn quantiles_never_exceed_the_real_maximum() {
        let t0 = Instant::now();
        let stats = RequestStats::new(t0);
        for _ in 0..10 {
            stats.record(t0, Outcome::Status(200), ms(1000));
        }
        let s = stats.snapshot(t0 + secs(1), secs(10));
        assert_eq!([s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms], [1000.0; 4]);
    }

    #[test]
    fn latencies_beyond_an_hour_saturate_but_max_is_real() {
        let t0 = Instant::now();
        let stats = RequestStats::new(t0);
        stats.record(t0, Outcome::Timeout, secs(2 * 3600));
        let s = stats.snapshot(t0 + secs(1), secs(10));
        assert!(within(s.p99_ms, 3_600_000.0, 0.01), "p99 {}", s.p99_ms);
        assert_eq!(s.max_ms, 7_200_000.0);
    }

    #[test]
    fn window_excludes_older_slices() {
        let t0 = Instant::now();
        let stats = RequestStats::new(t0);
        stats.record(t0 + secs(10), Outcome::Status(500), ms(900));
        stats.record(t0 + secs(200), Outcome::Status(200), ms(3));
        let recent = stats.snapshot(t0 + secs(210), secs(60));
        assert_eq!(recent.counts.requests, 1);
        assert_eq!(recent.counts.status_5xx, 0);
        assert_eq!(recent.max_ms, 3.0);
        assert_eq!(recent.window_ms, 60_000);
        let all = stats.snapshot(t0 + secs(210), secs(600));
        assert_eq!(all.counts.requests, 2);
        assert_eq!(all.max_ms, 900.0);
        assert_eq!(all.window_ms, 210_000);
    }

    #[test]
    fn window_ignores_requests_after_now() {
        let t0 = Instant::now();
        let stats = RequestStats::new(t0);
        stats.record(t0 + secs(100), Outcome::Status(200), ms(1));
        assert_eq!(stats.snapshot(t0 + secs(50), secs(60)).counts.requests, 0);
    }

    #[test]
    fn window_is_clamped_to_retention() {
        let t0 = Instant::now();
        let stats = RequestStats::new(t0);
        stats.record(t0 + secs(100), Outcome::Status(200), ms(1));
        stats.record(t0 + secs(1_000), Outcome::Status(200), ms(1));
        let s = stats.snapshot(t0 + secs(1_200), secs(86_400));
        assert_eq!(s.counts.requests, 1);
        assert_eq!(s.window_ms, RETENTION.as_millis() as u64);
    }

    #[test]
    fn retention_recycles_slots_without_reallocating() {
        let t0 = Instant::now();
        let stats = RequestStats::new(t0);
        // 30 minutes, one request per second: three laps of the ring.
        for s in 0..1_800 {
            stats.record(t0 + secs(s), Outcome::Status(200), ms(s % 50 + 1));
        }
        assert_eq!(stats.allocated_histograms(), RING_LEN);
        let before: Vec<*const u8> = stats.slices.iter().map(histogram_address).collect();
        for s in 1_800..2_400 {
            stats.record(t0 + secs(s), Outcome::Status(200), ms(1));
        }
        let after: Vec<*const u8> = stats.slices.iter().map(histogram_address).collect();
        assert_eq!(before, after);
        let now = t0 + secs(2_400);
        let s = stats.snapshot(now, RETENTION);
        assert_eq!(s.counts.requests, 600);
        assert_eq!(s.max_ms, 1.0);
        assert_eq!(stats.totals().requests, 2_400);
    }

    fn histogram_address(slot: &Mutex<Slice>) -> *const u8 {
        lock(slot)
            .latencies()
            .map_or(std::ptr::null(), |h| (h as *const _) as *const u8)
    }

    #[test]
    fn hours_without_traffic() {
        let t0 = Instant::now();
        let stats = RequestStats::new(t0);
        stats.record(t0 + secs(1), Outcome::Status(500), ms(100));
        let quiet = stats.snapshot(t0 + secs(3 * 3600), RETENTION);
        assert_eq!(
            quiet,
            WindowSnapshot {
                window_ms: 600_000,
                ..WindowSnapshot::default()
            }
        );
        let later = t0 + secs(5 * 3600 + 7);
        stats.record(later, Outcome::Status(200), ms(2));
        let s = stats.snapshot(later, RETENTION);
        assert_eq!(s.counts.requests, 1);
        assert_eq!(s.counts.status_2xx, 1);
        assert_eq!(s.error_rate(), 0.0);
        assert_eq!(stats.totals().requests, 2);
        assert_eq!(stats.totals().status_5xx, 1);
    }

    #[test]
    fn a_request_older_than_retention_counts_only_in_totals() {
        let t0 = Instant::now();
        let stats = RequestStats::new(t0);
        stats.record(t0 + secs(1_000), Outcome::Status(200), ms(1));
        // Same slot, one lap earlier.
        let lap = SLICE * RING_LEN as u32;
        stats.record(t0 + secs(1_000) - lap, Outcome::Status(500), ms(1));
        let s = stats.snapshot(t0 + secs(1_001), RETENTION);
        assert_eq!(s.counts.requests, 1);
        assert_eq!(s.counts.status_5xx, 0);
        assert_eq!(stats.totals().requests, 2);
    }

    #[test]
    fn instants_before_creation_count_at_creation() {
        let t0 = Instant::now() + secs(10);
        let stats = RequestStats::new(t0);
        stats.record(t0 - secs(1), Outcome::Status(200), ms(1));
        assert_eq!(stats.snapshot(t0 + secs(1), secs(60)).counts.requests, 1);
    }

    #[test]
    fn concurrent_recording_sums_correctly() {
        const THREADS: u64 = 8;
        const PER_THREAD: u64 = 5_000;
        let t0 = Instant::now();
        let stats = Arc::new(RequestStats::new(t0));
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let stats = Arc::clone(&stats);
                thread::spawn(move || {
                    for i in 0..PER_THREAD {
                        // Spread over 60 seconds so threads meet in the same
                        // slices and also cross slice boundaries.
                        let at = t0 + ms((i * 12 + t) % 60_000);
                        let outcome = if i % 10 == 0 {
                            Outcome::Status(503)
                        } else {
                            Outcome::Status(200)
                        };
                        stats.in_flight_started();
                        stats.record(at, outcome, ms(i % 100 + 1));
                        stats.in_flight_finished();
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        let total = THREADS * PER_THREAD;
        let s = stats.snapshot(t0 + secs(60), secs(120));
        assert_eq!(s.counts.requests, total);
        assert_eq!(s.counts.status_5xx, total / 10);
        assert_eq!(s.counts.status_2xx, total - total / 10);
        assert_eq!(s.max_ms, 100.0);
        assert_eq!(stats.totals().requests, total);
        assert_eq!(stats.in_flight(), 0);
    }

    #[test]
    fn lifetime_latency_buckets_outlive_the_ring() {
        let t0 = Instant::now();
        let stats = RequestStats::new(t0);
        assert_eq!(stats.created(), t0);
        for s in 0..2_000 {
            stats.record(t0 + secs(s), Outcome::Status(200), ms(s % 3 + 1));
        }
        let lifetime = stats.latency_buckets();
        assert_eq!(lifetime.count(), 2_000);
        assert_eq!(lifetime.count(), stats.totals().requests);
        let window = stats.window_latency_buckets(t0 + secs(2_000), secs(60));
        assert_eq!(window.count(), 60);
        let p99 = window.quantile(0.99).unwrap_or_default();
        assert!(p99 > ms(2) && p99 <= ms(3), "{p99:?}");
    }

    #[test]
    fn in_flight_gauge() {
        let stats = RequestStats::new(Instant::now());
        stats.in_flight_started();
        stats.in_flight_started();
        assert_eq!(stats.in_flight(), 2);
        stats.in_flight_finished();
        assert_eq!(stats.in_flight(), 1);
        stats.in_flight_finished();
        stats.in_flight_finished();
        assert_eq!(stats.in_flight(), 0);
    }

    #[test]
    fn no_traffic_allocates_no_histogram() {
        let t0 = Instant::now();
        let stats = RequestStats::new(t0);
        assert_eq!(stats.allocated_histograms(), 0);
        let s = stats.snapshot(t0 + secs(3600), RETENTION);
        assert_eq!(s.counts.requests, 0);
        stats.in_flight_started();
        stats.in_flight_finished();
        assert_eq!(stats.allocated_histograms(), 0);
        stats.record(t0, Outcome::Status(200), ms(1));
        stats.record(t0 + secs(1), Outcome::Status(200), ms(1));
        assert_eq!(stats.allocated_histograms(), 1);
    }

    #[test]
    fn release_idle_frees_only_slots_that_went_quiet() {
        let t0 = Instant::now();
        let stats = RequestStats::new(t0);
        // A burst over the first minute, then silence.
        for s in 0..60 {
            stats.record(t0 + secs(s), Outcome::Status(200), ms(1));
        }
        assert_eq!(stats.allocated_histograms(), 12);
        stats.release_idle(t0 + secs(300));
        assert_eq!(stats.allocated_histograms(), 12);
        stats.release_idle(t0 + secs(3600));
        assert_eq!(stats.allocated_histograms(), 0);
        assert_eq!(stats.totals().requests, 60);
        assert_eq!(
            stats.snapshot(t0 + secs(3600), RETENTION).counts.requests,
            0
        );
    }

    #[test]
    fn release_idle_keeps_slots_under_steady_traffic() {
        let t0 = Instant::now();
        let stats = RequestStats::new(t0);
        for s in 0..3_000 {
            let at = t0 + secs(s);
            stats.record(at, Outcome::Status(200), ms(1));
            if s % 7 == 0 {
                stats.release_idle(at);
                assert_eq!(
                    stats.allocated_histograms(),
                    RING_LEN.min(s as usize / 5 + 1)
                );
            }
        }
    }
}
