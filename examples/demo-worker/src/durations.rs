//! How long each enqueued job takes.

/// 2^32 divided by the golden ratio: stepping by it modulo 2^32 visits the
/// range evenly without ever repeating a pattern.
const GOLDEN_STEP: u64 = 2_654_435_769;

/// `count` durations between `min_ms` and `max_ms` inclusive (the caller
/// ensures `min_ms <= max_ms`).
///
/// Job `i` takes `min + frac(i / φ) · (max − min + 1)` ms: deterministic, so
/// runs can be compared, yet spread over the whole range with neighbours
/// far apart, so concurrent workers finish in a shuffled order.
pub fn spread(count: u32, min_ms: u32, max_ms: u32) -> Vec<u32> {
    let width = u64::from(max_ms.saturating_sub(min_ms)) + 1;
    (0..u64::from(count))
        .map(|i| {
            let fraction = (i * GOLDEN_STEP) & 0xFFFF_FFFF;
            let offset = (fraction * width) >> 32;
            // `offset < width`, so the sum stays within `max_ms`.
            min_ms + u32::try_from(offset).unwrap_or(0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_in_range_and_covers_it() {
        let durations = spread(100, 100, 500);
        assert_eq!(durations.len(), 100);
        assert!(durations.iter().all(|ms| (100..=500).contains(ms)));
        assert_eq!(durations[0], 100);
        // Every fifth of the range gets some jobs.
        for fifth in 0..5 {
            let low = 100 + fifth * 80;
            assert!(
                durations.iter().any(|ms| (low..low + 80).contains(ms)),
                "nothing in {low}..{}",
                low + 80
            );
        }
        // Neighbours differ.
        assert!(durations.windows(2).all(|pair| pair[0] != pair[1]));
    }

    #[test]
    fn is_deterministic() {
        assert_eq!(spread(10, 20, 80), spread(10, 20, 80));
    }

    #[test]
    fn handles_edge_ranges() {
        assert_eq!(spread(3, 250, 250), [250, 250, 250]);
        assert!(spread(0, 1, 2).is_empty());
        // The widest range must not overflow (debug builds would panic).
        assert_eq!(spread(50, 0, u32::MAX).len(), 50);
    }
}
