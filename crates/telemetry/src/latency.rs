//! The latency histogram's configuration, in one place so that every slice
//! and every merge agree on it (hdrhistogram merges histograms of equal
//! layout by adding arrays, anything else value by value).

use std::time::Duration;

use hdrhistogram::Histogram;

/// Counts are `u32`: one 5-second slice cannot put four billion requests in
/// one bucket, and the narrower counter halves the memory of every slice.
/// Merges saturate rather than wrap, so a 10-minute merge stays safe too.
pub(crate) type LatencyHistogram = Histogram<u32>;

/// Microseconds: the finest a proxied request is worth measuring.
const LOWEST_MICROS: u64 = 1;
/// One hour; anything slower is recorded as one hour.
const HIGHEST_MICROS: u64 = 3_600_000_000;
/// Two significant figures: quantiles within 1%, at a quarter of the memory
/// three would take.
const SIGNIFICANT_FIGURES: u8 = 2;

/// Boxed so that a slice that never saw traffic costs one pointer, not the
/// histogram's header.
///
/// `None` only if hdrhistogram rejected the constant bounds above, which the
/// tests rule out; callers then keep counting requests without latencies
/// rather than take the proxy down.
pub(crate) fn new_histogram() -> Option<Box<LatencyHistogram>> {
    LatencyHistogram::new_with_bounds(LOWEST_MICROS, HIGHEST_MICROS, SIGNIFICANT_FIGURES)
        .ok()
        .map(Box::new)
}

pub(crate) fn as_micros(latency: Duration) -> u64 {
    u64::try_from(latency.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_bounds_are_accepted() {
        assert!(new_histogram().is_some());
    }

    #[test]
    fn values_beyond_an_hour_saturate() {
        let Some(mut h) = new_histogram() else {
            panic!("histogram bounds rejected");
        };
        h.saturating_record(as_micros(Duration::from_secs(10 * 3600)));
        assert_eq!(h.len(), 1);
        assert!(h.max() >= HIGHEST_MICROS);
        assert!(h.max() < HIGHEST_MICROS + HIGHEST_MICROS / 100);
    }

    #[test]
    fn micros_conversion_saturates() {
        assert_eq!(as_micros(Duration::from_millis(3)), 3_000);
        assert_eq!(as_micros(Duration::MAX), u64::MAX);
    }
}
