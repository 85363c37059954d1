//! A plain histogram of durations in seconds over bounds the caller picks,
//! for things that happen rarely enough to count one by one (deploys).

/// Durations counted into buckets with inclusive upper bounds (Prometheus
/// `le`), plus an overflow bucket, with their sum.
#[derive(Clone, Debug, PartialEq)]
pub struct SecondsHistogram {
    bounds: &'static [f64],
    /// One per bound, then the overflow bucket; not cumulative.
    counts: Vec<u64>,
    sum: f64,
}

impl SecondsHistogram {
    /// An empty histogram over `bounds`, which must rise.
    pub fn new(bounds: &'static [f64]) -> Self {
        SecondsHistogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    /// Counts one duration of `seconds`.
    pub fn observe(&mut self, seconds: f64) {
        let index = self.bounds.partition_point(|bound| *bound < seconds);
        if let Some(count) = self.counts.get_mut(index) {
            *count = count.saturating_add(1);
        }
        self.sum += seconds;
    }

    /// Durations counted.
    pub fn count(&self) -> u64 {
        self.counts
            .iter()
            .fold(0u64, |total, count| total.saturating_add(*count))
    }

    /// The sum of every duration counted, in seconds.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// `(upper bound, durations in that bucket alone)`, the overflow bucket
    /// last with an infinite bound.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        self.bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.counts.iter().copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_land_in_their_bucket() {
        let mut histogram = SecondsHistogram::new(&[1.0, 10.0]);
        for seconds in [0.5, 1.0, 3.0, 10.0, 99.0] {
            histogram.observe(seconds);
        }
        assert_eq!(
            histogram.buckets(),
            [(1.0, 2), (10.0, 2), (f64::INFINITY, 1)]
        );
        assert_eq!(histogram.count(), 5);
        assert_eq!(histogram.sum(), 113.5);
    }
}
