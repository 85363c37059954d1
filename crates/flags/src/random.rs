//! The random numbers Unleash's "random" asks for: `random` stickiness,
//! `gradualRolloutRandom`, `default` stickiness with neither a user nor a
//! session, and a variant pick with no stickiness value. The source is
//! injected so that tests can fix it.

/// Where an evaluation draws a random bucket.
///
/// Any `Fn(u32) -> u32` closure is one, which is how tests fix the draw:
/// `features.with_random(|_buckets| 1)`.
pub trait RandomSource: Send + Sync {
    /// A bucket from 1 to `buckets` inclusive, drawn uniformly.
    fn bucket(&self, buckets: u32) -> u32;
}

/// The default source: a fast generator per thread (`fastrand`), seeded from
/// the process's hash randomness, so evaluations on many threads never
/// contend for it.
///
/// Unlike Unleash's SDKs, which hash a random number like a stickiness value,
/// the bucket is drawn directly: a random 30% rollout then takes exactly 30%
/// on average, not 30% give or take the hash's unevenness over 100 inputs.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadRandom;

impl RandomSource for ThreadRandom {
    fn bucket(&self, buckets: u32) -> u32 {
        fastrand::u32(1..=buckets.max(1))
    }
}

impl<F: Fn(u32) -> u32 + Send + Sync> RandomSource for F {
    fn bucket(&self, buckets: u32) -> u32 {
        self(buckets)
    }
}

#[cfg(test)]
mod tests {
    use super::{RandomSource, ThreadRandom};

    #[test]
    fn thread_random_stays_in_range_and_covers_it() {
        let mut seen = [false; 4];
        for _ in 0..1_000 {
            let bucket = ThreadRandom.bucket(4);
            assert!((1..=4).contains(&bucket));
            seen[bucket as usize - 1] = true;
        }
        assert_eq!(seen, [true; 4]);
        assert_eq!(ThreadRandom.bucket(0), 1);
    }

    #[test]
    fn closures_are_sources() {
        let last = |buckets: u32| buckets;
        assert_eq!(last.bucket(100), 100);
    }
}
