//! Waiting for things only /proc can tell: processes that are not our
//! children, and what a process left behind in its group.

use std::time::Duration;

use tokio::time::{Instant, sleep_until};

use crate::proc_info::{group_members, is_alive};

/// Checks `done` every `interval` until it holds (true) or `deadline`, if
/// any, passes (false, after a last check at the deadline).
pub(crate) async fn poll_until(
    interval: Duration,
    deadline: Option<Instant>,
    mut done: impl FnMut() -> bool,
) -> bool {
    loop {
        if done() {
            return true;
        }
        let next = Instant::now() + interval;
        match deadline {
            Some(deadline) if next >= deadline => {
                sleep_until(deadline).await;
                return done();
            }
            _ => sleep_until(next).await,
        }
    }
}

/// Waits until no live process is left in group `pgid`, or the deadline.
pub(crate) async fn group_emptied(pgid: u32, interval: Duration, deadline: Instant) -> bool {
    // Watching the members found is cheap; a scan of all /proc is not, so
    // it is repeated only when they are all gone, to catch late forks.
    let mut members = group_members(pgid);
    poll_until(interval, Some(deadline), || {
        members.retain(|(pid, start_time)| is_alive(*pid, *start_time));
        if members.is_empty() {
            members = group_members(pgid);
        }
        members.is_empty()
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn gives_up_at_the_deadline_after_a_last_look() {
        let begun = Instant::now();
        let checks = Cell::new(0);
        let done = poll_until(
            Duration::from_millis(200),
            Some(begun + Duration::from_millis(500)),
            || {
                checks.set(checks.get() + 1);
                false
            },
        )
        .await;
        assert!(!done);
        assert_eq!(begun.elapsed(), Duration::from_millis(500));
        // At 0, 200, 400 and the deadline.
        assert_eq!(checks.get(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn returns_at_the_first_check_that_holds() {
        let begun = Instant::now();
        let checks = Cell::new(0);
        let done = poll_until(Duration::from_millis(200), None, || {
            checks.set(checks.get() + 1);
            checks.get() == 3
        })
        .await;
        assert!(done);
        assert_eq!(begun.elapsed(), Duration::from_millis(400));
    }

    #[tokio::test(start_paused = true)]
    async fn a_condition_already_true_costs_no_wait() {
        let begun = Instant::now();
        assert!(poll_until(Duration::from_secs(1), Some(begun), || true).await);
        assert_eq!(begun.elapsed(), Duration::ZERO);
    }

    #[tokio::test]
    async fn an_empty_group_is_empty_at_once() {
        // No group has a pid above pid_max as id.
        let deadline = Instant::now() + Duration::from_secs(10);
        assert!(group_emptied(u32::MAX - 1, Duration::from_millis(10), deadline).await);
    }
}
