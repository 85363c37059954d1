//! One time slice of the ring: counts and latencies of the requests that
//! finished in it.

use crate::counts::Counts;
use crate::latency::{LatencyHistogram, new_histogram};
use crate::outcome::Class;

/// A slot in the ring. Its `epoch` says which slice its data belongs to, so a
/// slot left over from an earlier lap of the ring is recognised as stale
/// without any sweeping.
#[derive(Debug, Default)]
pub(crate) struct Slice {
    epoch: u64,
    counts: Counts,
    /// Kept beside the histogram because the histogram rounds values up to
    /// its bucket and saturates at an hour; the real maximum is cheap.
    max_micros: u64,
    /// Allocated on the first request of the slot's first slice, then reset
    /// and reused on every later lap: idle slots cost nothing, busy ones do
    /// not allocate per slice.
    latencies: Option<Box<LatencyHistogram>>,
}

impl Slice {
    /// Records into the slice `epoch`, recycling the slot if it still holds
    /// an older slice. Returns `false`, recording nothing, if the slot has
    /// already moved on to a newer slice: the request is then older than
    /// anything a window can reach (or its clock reading raced a whole ring
    /// behind), and lifetime totals still count it.
    pub(crate) fn record(&mut self, epoch: u64, class: Option<Class>, micros: u64) -> bool {
        if epoch < self.epoch {
            return false;
        }
        if epoch > self.epoch {
            self.recycle(epoch);
        }
        self.counts.add(class);
        self.max_micros = self.max_micros.max(micros);
        if self.latencies.is_none() {
            self.latencies = new_histogram();
        }
        if let Some(latencies) = &mut self.latencies {
            latencies.saturating_record(micros);
        }
        true
    }

    fn recycle(&mut self, epoch: u64) {
        self.epoch = epoch;
        self.counts = Counts::default();
        self.max_micros = 0;
        if let Some(latencies) = &mut self.latencies {
            latencies.reset();
        }
    }

    /// Returns the slot to its never-used state, giving its histogram's
    /// memory back.
    pub(crate) fn release(&mut self) {
        *self = Slice::default();
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    pub(crate) fn counts(&self) -> &Counts {
        &self.counts
    }

    pub(crate) fn max_micros(&self) -> u64 {
        self.max_micros
    }

    pub(crate) fn latencies(&self) -> Option<&LatencyHistogram> {
        self.latencies.as_deref()
    }

    pub(crate) fn has_histogram(&self) -> bool {
        self.latencies.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_slice_has_no_histogram() {
        let slice = Slice::default();
        assert!(!slice.has_histogram());
        assert_eq!(slice.counts().requests, 0);
    }

    #[test]
    fn recording_allocates_the_histogram_once() {
        let mut slice = Slice::default();
        assert!(slice.record(0, Some(Class::Status2xx), 1_000));
        assert!(slice.has_histogram());
        let before = slice.latencies().map(|h| h as *const LatencyHistogram);
        assert!(slice.record(0, Some(Class::Status2xx), 2_000));
        assert_eq!(slice.counts().requests, 2);
        assert_eq!(slice.max_micros(), 2_000);
        assert_eq!(slice.latencies().map(LatencyHistogram::len), Some(2));
        let after = slice.latencies().map(|h| h as *const LatencyHistogram);
        assert_eq!(before, after);
    }

    #[test]
    fn a_newer_epoch_recycles_without_reallocating() {
        let mut slice = Slice::default();
        slice.record(3, Some(Class::Status5xx), 9_000);
        let before = slice.latencies().map(|h| h as *const LatencyHistogram);
        assert!(slice.record(3 + 122, Some(Class::Status2xx), 1_000));
        assert_eq!(slice.epoch(), 125);
        assert_eq!(slice.counts().requests, 1);
        assert_eq!(slice.counts().get(Class::Status5xx), 0);
        assert_eq!(slice.max_micros(), 1_000);
        assert_eq!(slice.latencies().map(LatencyHistogram::len), Some(1));
        let after = slice.latencies().map(|h| h as *const LatencyHistogram);
        assert_eq!(before, after);
    }

    #[test]
    fn an_older_epoch_is_refused() {
        let mut slice = Slice::default();
        slice.record(10, Some(Class::Status2xx), 1_000);
        assert!(!slice.record(9, Some(Class::Status2xx), 1_000));
        assert_eq!(slice.epoch(), 10);
        assert_eq!(slice.counts().requests, 1);
    }

    #[test]
    fn release_frees_the_histogram() {
        let mut slice = Slice::default();
        slice.record(1, None, 5);
        slice.release();
        assert!(!slice.has_histogram());
        assert_eq!(slice.counts().requests, 0);
        assert_eq!(slice.epoch(), 0);
    }
}
