//! Latency counted in fixed buckets: cumulative since a version started (the
//! Prometheus histogram) and per minute (the persisted rollups).
//!
//! The slice histograms (hdrhistogram) give precise quantiles over a window
//! but are reset as the ring turns and are too large to store every minute;
//! fixed buckets can be added forever with one atomic increment, subtract
//! into a minute's share, and serialise into a few bytes. One layout serves
//! both uses, so a rollup and a scrape agree on what "under 50 ms" means.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets in microseconds, inclusive (Prometheus `le`).
/// Neighbours differ by at most 2x below a millisecond and 1.5x to 2x above,
/// so a quantile read from the buckets is within one bucket's width; a
/// request slower than the last bound lands in the overflow bucket.
///
/// Changing this list changes the meaning of stored rollups: add a new
/// [`ENCODING`] version with it rather than editing it.
pub const BOUNDS_MICROS: [u64; 30] = [
    250, 500, 1_000, 2_000, 3_000, 5_000, 7_500, 10_000, 15_000, 20_000, 30_000, 50_000, 75_000,
    100_000, 150_000, 200_000, 300_000, 500_000, 750_000, 1_000_000, 1_500_000, 2_000_000,
    3_000_000, 5_000_000, 7_500_000, 10_000_000, 15_000_000, 20_000_000, 30_000_000, 60_000_000,
];

/// Buckets in a [`LatencyBuckets`]: one per bound plus the overflow bucket.
pub const BUCKETS: usize = BOUNDS_MICROS.len() + 1;

/// The first byte of [`LatencyBuckets::encode`]'s output: which bucket
/// layout the counts refer to.
const ENCODING: u8 = 1;

/// Request latencies counted into the fixed buckets of [`BOUNDS_MICROS`]
/// (not cumulative: each request is in exactly one bucket), with their sum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LatencyBuckets {
    /// Requests per bucket; the last is the overflow bucket.
    pub counts: [u64; BUCKETS],
    /// The sum of every latency counted, in microseconds.
    pub sum_micros: u64,
}

/// Why stored bytes are not a [`LatencyBuckets`].
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BucketsDecodeError {
    /// Nothing to decode.
    #[error("the latency buckets are empty")]
    Empty,
    /// Written with a bucket layout this build does not know.
    #[error("the latency buckets use layout {0}, this build knows layout {ENCODING} only")]
    UnknownLayout(u8),
    /// Cut short, or a number longer than 64 bits.
    #[error("the latency buckets are truncated or malformed")]
    Malformed,
    /// A bucket beyond the layout's last.
    #[error("the latency buckets name bucket {0}, the layout has {BUCKETS}")]
    NoSuchBucket(usize),
}

impl Default for LatencyBuckets {
    fn default() -> Self {
        LatencyBuckets {
            counts: [0; BUCKETS],
            sum_micros: 0,
        }
    }
}

impl LatencyBuckets {
    /// Requests counted.
    pub fn count(&self) -> u64 {
        self.counts
            .iter()
            .fold(0u64, |total, count| total.saturating_add(*count))
    }

    /// Counts `n` requests of `micros` each.
    pub fn add(&mut self, micros: u64, n: u64) {
        let slot = &mut self.counts[bucket_of(micros)];
        *slot = slot.saturating_add(n);
        self.sum_micros = self.sum_micros.saturating_add(micros.saturating_mul(n));
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &LatencyBuckets) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine = mine.saturating_add(theirs);
        }
        self.sum_micros = self.sum_micros.saturating_add(other.sum_micros);
    }

    /// What was counted after `earlier`, a reading of the same counters
    /// taken before this one. Saturates at 0 so that a reading of some other
    /// (restarted) counters cannot produce a negative count.
    pub fn since(&self, earlier: &LatencyBuckets) -> LatencyBuckets {
        LatencyBuckets {
            counts: std::array::from_fn(|i| self.counts[i].saturating_sub(earlier.counts[i])),
            sum_micros: self.sum_micros.saturating_sub(earlier.sum_micros),
        }
    }

    /// The latency below which a share `q` (0..=1) of the requests fell,
    /// interpolated linearly inside its bucket as Prometheus's
    /// `histogram_quantile` does; `None` without requests. A quantile in the
    /// overflow bucket reads as the last bound: all the buckets know is
    /// "slower than that".
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0u64;
        for (index, count) in self.counts.iter().copied().enumerate() {
            let through = below.saturating_add(count);
            if count > 0 && through as f64 >= rank {
                let Some(upper) = BOUNDS_MICROS.get(index) else {
                    break;
                };
                let lower = index
                    .checked_sub(1)
                    .map_or(0, |previous| BOUNDS_MICROS[previous]);
                let share = ((rank - below as f64) / count as f64).clamp(0.0, 1.0);
                let micros = lower as f64 + (upper - lower) as f64 * share;
                return Some(Duration::from_secs_f64(micros / 1e6));
            }
            below = through;
        }
        Some(Duration::from_micros(
            BOUNDS_MICROS[BOUNDS_MICROS.len() - 1],
        ))
    }

    /// A compact serialisation for storage: a layout byte, the sum, then
    /// (gap to the previous non-empty bucket, count) pairs, every number an
    /// unsigned LEB128 varint. A typical minute takes 10 to 30 bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![ENCODING];
        put_varint(&mut bytes, self.sum_micros);
        let mut next = 0usize;
        for (index, count) in self.counts.iter().copied().enumerate() {
            if count == 0 {
                continue;
            }
            put_varint(&mut bytes, (index - next) as u64);
            put_varint(&mut bytes, count);
            next = index + 1;
        }
        bytes
    }

    /// Reads what [`encode`](Self::encode) wrote.
    pub fn decode(bytes: &[u8]) -> Result<LatencyBuckets, BucketsDecodeError> {
        let (&layout, mut rest) = bytes.split_first().ok_or(BucketsDecodeError::Empty)?;
        if layout != ENCODING {
            return Err(BucketsDecodeError::UnknownLayout(layout));
        }
        let mut buckets = LatencyBuckets {
            sum_micros: take_varint(&mut rest)?,
            ..LatencyBuckets::default()
        };
        let mut next = 0usize;
        while !rest.is_empty() {
            let gap = usize::try_from(take_varint(&mut rest)?)
                .map_err(|_| BucketsDecodeError::Malformed)?;
            let index = next.saturating_add(gap);
            let slot = buckets
                .counts
                .get_mut(index)
                .ok_or(BucketsDecodeError::NoSuchBucket(index))?;
            *slot = take_varint(&mut rest)?;
            next = index + 1;
        }
        Ok(buckets)
    }
}

/// The bucket a latency of `micros` falls in.
fn bucket_of(micros: u64) -> usize {
    BOUNDS_MICROS.partition_point(|bound| *bound < micros)
}

fn put_varint(bytes: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        bytes.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    bytes.push(value as u8);
}

fn take_varint(bytes: &mut &[u8]) -> Result<u64, BucketsDecodeError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first().ok_or(BucketsDecodeError::Malformed)?;
        *bytes = rest;
        let bits = u64::from(byte & 0x7f);
        if shift == 63 && bits > 1 {
            return Err(BucketsDecodeError::Malformed);
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(BucketsDecodeError::Malformed)
}

/// [`LatencyBuckets`] that the proxy's threads add to at once: recording is
/// a binary search over 30 bounds and two relaxed atomic increments.
#[derive(Debug)]
pub(crate) struct AtomicLatencyBuckets {
    counts: [AtomicU64; BUCKETS],
    sum_micros: AtomicU64,
}

impl Default for AtomicLatencyBuckets {
    fn default() -> Self {
        AtomicLatencyBuckets {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: AtomicU64::new(0),
        }
    }
}

impl AtomicLatencyBuckets {
    pub(crate) fn record(&self, micros: u64) {
        self.counts[bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub(crate) fn load(&self) -> LatencyBuckets {
        LatencyBuckets {
            counts: std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed)),
            sum_micros: self.sum_micros.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(m: u64) -> Duration {
        Duration::from_millis(m)
    }

    #[test]
    fn bounds_rise_and_buckets_are_inclusive() {
        assert!(BOUNDS_MICROS.windows(2).all(|pair| pair[0] < pair[1]));
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(250), 0);
        assert_eq!(bucket_of(251), 1);
        assert_eq!(bucket_of(1_000), 2);
        assert_eq!(bucket_of(60_000_000), BUCKETS - 2);
        assert_eq!(bucket_of(60_000_001), BUCKETS - 1);
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_fall_within_their_bucket() {
        let mut buckets = LatencyBuckets::default();
        for i in 1..=1000u64 {
            buckets.add(i * 1_000, 1);
        }
        assert_eq!(buckets.count(), 1000);
        let within = |q: f64, expected: Duration| {
            let got = buckets.quantile(q).unwrap_or_default();
            let index = bucket_of(u64::try_from(expected.as_micros()).unwrap_or(u64::MAX));
            let upper = BOUNDS_MICROS[index];
            let lower = index.checked_sub(1).map_or(0, |i| BOUNDS_MICROS[i]);
            let micros = u64::try_from(got.as_micros()).unwrap_or(u64::MAX);
            assert!(
                (lower..=upper).contains(&micros),
                "q{q}: {got:?} outside ({lower}, {upper}] µs"
            );
        };
        within(0.50, ms(500));
        within(0.95, ms(950));
        within(0.99, ms(990));
        // Interpolation puts the median right here: 500 requests of the
        // 300..500 ms bucket's 200 are at or below 500 ms.
        assert_eq!(buckets.quantile(0.5), Some(ms(500)));
    }

    #[test]
    fn empty_buckets_have_no_quantile() {
        assert_eq!(LatencyBuckets::default().quantile(0.99), None);
    }

    #[test]
    fn overflow_reads_as_the_last_bound() {
        let mut buckets = LatencyBuckets::default();
        buckets.add(3_600_000_000, 2);
        assert_eq!(buckets.quantile(0.5), Some(Duration::from_secs(60)));
        assert_eq!(buckets.sum_micros, 7_200_000_000);
    }

    #[test]
    fn merge_and_since_are_inverse() {
        let mut a = LatencyBuckets::default();
        a.add(800, 3);
        a.add(40_000, 1);
        let mut b = a.clone();
        let mut later = LatencyBuckets::default();
        later.add(800, 1);
        later.add(9_000_000, 5);
        b.merge(&later);
        assert_eq!(b.since(&a), later);
        assert_eq!(b.count(), 10);
        // Counters that restarted read as nothing new, never as negative.
        assert_eq!(a.since(&b), LatencyBuckets::default());
    }

    #[test]
    fn encoding_round_trips_and_stays_small() {
        let mut buckets = LatencyBuckets::default();
        buckets.add(100, 1);
        buckets.add(12_000, 250);
        buckets.add(90_000_000, 7);
        let bytes = buckets.encode();
        assert!(bytes.len() <= 16, "{} bytes", bytes.len());
        assert_eq!(LatencyBuckets::decode(&bytes), Ok(buckets));
        let empty = LatencyBuckets::default();
        assert_eq!(LatencyBuckets::decode(&empty.encode()), Ok(empty));
        let full = LatencyBuckets {
            counts: [u64::MAX; BUCKETS],
            sum_micros: u64::MAX,
        };
        assert_eq!(LatencyBuckets::decode(&full.encode()), Ok(full));
    }

    #[test]
    fn bad_bytes_are_refused() {
        assert_eq!(LatencyBuckets::decode(&[]), Err(BucketsDecodeError::Empty));
        assert_eq!(
            LatencyBuckets::decode(&[9, 0]),
            Err(BucketsDecodeError::UnknownLayout(9))
        );
        assert_eq!(
            LatencyBuckets::decode(&[ENCODING, 0x80]),
            Err(BucketsDecodeError::Malformed)
        );
        assert_eq!(
            LatencyBuckets::decode(&[ENCODING, 0, 31, 1]),
            Err(BucketsDecodeError::NoSuchBucket(31))
        );
        let too_long = [
            ENCODING, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ];
        assert_eq!(
            LatencyBuckets::decode(&too_long),
            Err(BucketsDecodeError::Malformed)
        );
    }

    #[test]
    fn atomic_buckets_load_what_was_recorded() {
        let atomic = AtomicLatencyBuckets::default();
        atomic.record(300);
        atomic.record(300);
        atomic.record(70_000_000);
        let mut expected = LatencyBuckets::default();
        expected.add(300, 2);
        expected.add(70_000_000, 1);
        assert_eq!(atomic.load(), expected);
    }
}
