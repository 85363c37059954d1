//! Time arithmetic: which slice an instant falls in, and which slices a
//! window overlaps. Slices are numbered from the stats' creation ("epochs"),
//! so the numbering never repeats even though the slots holding them do.

use std::time::{Duration, Instant};

const SLICE_SECS: u64 = 5;
const RETENTION_SECS: u64 = 600;

/// The granularity of every window: a window is rounded out to whole slices
/// of this length, so its edges are accurate to within one slice.
pub const SLICE: Duration = Duration::from_secs(SLICE_SECS);

/// The longest window a snapshot can cover; longer requests are clamped.
pub const RETENTION: Duration = Duration::from_secs(RETENTION_SECS);

// Windows are whole slices; a retention that was not would silently be
// rounded down and undercut "at least 10 minutes".
const _: () = assert!(RETENTION_SECS / SLICE_SECS * SLICE_SECS == RETENTION_SECS);

/// Slices a window of [`RETENTION`] can overlap: rounding its start down to a
/// slice boundary adds the partial slice it starts in.
const WINDOW_SLICES: u64 = RETENTION_SECS / SLICE_SECS + 1;

/// One slot more than a window needs, so that a recorder whose instant is a
/// slice ahead of a reader's `now` (threads read the clock at different
/// times) recycles a slot the reader does not want, not the oldest one it is
/// about to merge.
pub(crate) const RING_LEN: usize = WINDOW_SLICES as usize + 1;

/// The slice `at` falls in. Instants before creation fall in slice 0: a
/// caller that read its clock just before the stats were created should
/// still be counted.
pub(crate) fn epoch_of(created: Instant, at: Instant) -> u64 {
    let offset = at.saturating_duration_since(created);
    u64::try_from(offset.as_nanos() / SLICE.as_nanos()).unwrap_or(u64::MAX)
}

/// The ring slot that holds `epoch`.
pub(crate) fn slot_of(epoch: u64) -> usize {
    // The remainder is below RING_LEN, a usize, so the cast cannot truncate.
    (epoch % RING_LEN as u64) as usize
}

/// Whether a slot last written in `epoch` saw no request in its next turn
/// (`epoch + RING_LEN`), which has fully passed by `current`. Such a slot is
/// out of every window, and traffic there is sparse enough that giving its
/// memory back will not turn into an allocation per slice.
pub(crate) fn missed_its_turn(epoch: u64, current: u64) -> bool {
    current.saturating_sub(epoch) > RING_LEN as u64
}

/// The slices a snapshot merges, and how much time they cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    /// Oldest slice overlapping the window.
    pub(crate) first: u64,
    /// The slice `now` falls in.
    pub(crate) last: u64,
    /// From the start of `first` (or creation, if later) to `now`: the span
    /// the merged counts really stand for, which rates must divide by.
    pub(crate) covered: Duration,
}

impl Window {
    pub(crate) fn new(created: Instant, now: Instant, requested: Duration) -> Window {
        let now_offset = now.saturating_duration_since(created);
        let start_offset = now_offset.saturating_sub(requested.min(RETENTION));
        let first = epoch_of(created, created + start_offset);
        let last = epoch_of(created, now);
        let first_start = SLICE.saturating_mul(u32::try_from(first).unwrap_or(u32::MAX));
        Window {
            first,
            last,
            covered: now_offset.saturating_sub(first_start),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn instants_map_to_slices_from_creation() {
        let t0 = Instant::now();
        assert_eq!(epoch_of(t0, t0), 0);
        assert_eq!(epoch_of(t0, t0 + Duration::from_millis(4_999)), 0);
        assert_eq!(epoch_of(t0, t0 + secs(5)), 1);
        assert_eq!(epoch_of(t0, t0 + secs(3600)), 720);
    }

    #[test]
    fn instants_before_creation_fall_in_the_first_slice() {
        let t0 = Instant::now() + secs(60);
        assert_eq!(epoch_of(t0, t0 - secs(30)), 0);
    }

    #[test]
    fn window_rounds_out_to_whole_slices() {
        let t0 = Instant::now();
        // now = 1002s is in slice 200; 1002 - 120 = 882s is in slice 176,
        // which starts at 880s.
        let w = Window::new(t0, t0 + secs(1002), secs(120));
        assert_eq!(w.first, 176);
        assert_eq!(w.last, 200);
        assert_eq!(w.covered, secs(122));
    }

    #[test]
    fn window_on_a_boundary_covers_exactly_what_was_asked() {
        let t0 = Instant::now();
        let w = Window::new(t0, t0 + secs(1000), secs(120));
        assert_eq!((w.first, w.last), (176, 200));
        assert_eq!(w.covered, secs(120));
    }

    #[test]
    fn window_is_cut_at_creation() {
        let t0 = Instant::now();
        let w = Window::new(t0, t0 + secs(42), secs(300));
        assert_eq!((w.first, w.last), (0, 8));
        assert_eq!(w.covered, secs(42));
    }

    #[test]
    fn window_is_clamped_to_retention_and_fits_the_ring() {
        let t0 = Instant::now();
        for now in [secs(3_601), secs(3_600), Duration::from_millis(3_604_999)] {
            let w = Window::new(t0, t0 + now, secs(86_400));
            assert!(w.covered >= RETENTION);
            assert!(w.covered < RETENTION + SLICE);
            let slices = w.last - w.first + 1;
            assert!(slices <= WINDOW_SLICES);
            assert!(slices < RING_LEN as u64);
        }
    }

    #[test]
    fn zero_window_is_the_current_slice() {
        let t0 = Instant::now();
        let w = Window::new(t0, t0 + secs(12), Duration::ZERO);
        assert_eq!((w.first, w.last), (2, 2));
        assert_eq!(w.covered, secs(2));
    }

    #[test]
    fn a_slot_that_missed_its_turn_is_out_of_every_window() {
        let t0 = Instant::now();
        let w = Window::new(t0, t0 + secs(10_000), RETENTION);
        let oldest_missed = w.last - RING_LEN as u64 - 1;
        assert!(missed_its_turn(oldest_missed, w.last));
        assert!(oldest_missed < w.first);
        // Its turn is the current slice, which may still get traffic.
        assert!(!missed_its_turn(w.last - RING_LEN as u64, w.last));
    }

    #[test]
    fn slots_repeat_every_ring_length() {
        assert_eq!(slot_of(3), slot_of(3 + RING_LEN as u64));
        assert_ne!(slot_of(3), slot_of(4));
    }
}
