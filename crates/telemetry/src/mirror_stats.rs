//! How a candidate's answers to mirrored (shadow) requests compared with
//! the stable version's answers to the same requests, over rolling windows.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::window::{RING_LEN, Window, epoch_of, slot_of};

/// Compared shadow requests of one candidate version, in the same ring of
/// time slices as [`RequestStats`](crate::RequestStats), so a shadow
/// guardrail's window means what a traffic guardrail's does.
#[derive(Debug)]
pub struct MirrorStats {
    created: Instant,
    slices: Box<[Mutex<MirrorSlice>]>,
}

/// Mirrored requests whose two answers were compared, over one window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MirrorWindow {
    /// Requests answered by both versions.
    pub compared: u64,
    /// Of those, the ones the two versions answered differently.
    pub mismatched: u64,
}

#[derive(Debug, Default)]
struct MirrorSlice {
    epoch: u64,
    counts: MirrorWindow,
}

impl MirrorStats {
    /// Empty statistics whose slices are counted from `created`.
    pub fn new(created: Instant) -> Self {
        MirrorStats {
            created,
            slices: (0..RING_LEN).map(|_| Mutex::default()).collect(),
        }
    }

    /// Records one comparison that finished at `at`.
    pub fn record(&self, at: Instant, mismatched: bool) {
        let epoch = epoch_of(self.created, at);
        let mut slice = lock(&self.slices[slot_of(epoch)]);
        if epoch < slice.epoch {
            // Older than anything a window can still reach.
            return;
        }
        if epoch > slice.epoch {
            *slice = MirrorSlice {
                epoch,
                counts: MirrorWindow::default(),
            };
        }
        slice.counts.compared += 1;
        slice.counts.mismatched += u64::from(mismatched);
    }

    /// The comparisons that finished in the `window` before `now`, rounded
    /// out to whole slices like [`RequestStats::snapshot`].
    ///
    /// [`RequestStats::snapshot`]: crate::RequestStats::snapshot
    pub fn snapshot(&self, now: Instant, window: Duration) -> MirrorWindow {
        let window = Window::new(self.created, now, window);
        let mut total = MirrorWindow::default();
        for epoch in window.first..=window.last {
            let slice = lock(&self.slices[slot_of(epoch)]);
            if slice.epoch == epoch {
                total.compared += slice.counts.compared;
                total.mismatched += slice.counts.mismatched;
            }
        }
        total
    }
}

/// Two counter increments cannot be left half-done in a way that matters.
fn lock(slot: &Mutex<MirrorSlice>) -> MutexGuard<'_, MirrorSlice> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::{RETENTION, SLICE};

    #[test]
    fn counts_comparisons_and_mismatches_in_the_window() {
        let t0 = Instant::now();
        let stats = MirrorStats::new(t0);
        for second in 0..100u64 {
            stats.record(t0 + Duration::from_secs(second), second % 10 == 0);
        }
        let all = stats.snapshot(t0 + Duration::from_secs(100), RETENTION);
        assert_eq!(
            all,
            MirrorWindow {
                compared: 100,
                mismatched: 10
            }
        );
        // The last 20 s, rounded out to whole slices: seconds 80..=99.
        let recent = stats.snapshot(t0 + Duration::from_secs(99), Duration::from_secs(19));
        assert_eq!(recent.compared, 20);
        assert_eq!(recent.mismatched, 2);
    }

    #[test]
    fn a_slot_reused_a_lap_later_forgets_the_old_slice() {
        let t0 = Instant::now();
        let stats = MirrorStats::new(t0);
        stats.record(t0, true);
        let lap = SLICE * u32::try_from(RING_LEN).unwrap();
        stats.record(t0 + lap, false);
        // The stale record is out of the window and its slot was recycled.
        assert_eq!(
            stats.snapshot(t0 + lap, RETENTION),
            MirrorWindow {
                compared: 1,
                mismatched: 0
            }
        );
        // A record older than the slot's slice is dropped.
        stats.record(t0, true);
        assert_eq!(stats.snapshot(t0 + lap, RETENTION).mismatched, 0);
    }
}
