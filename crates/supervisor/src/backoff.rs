//! How long to wait before restarting a process that keeps failing.

use std::time::Duration;

/// When to restart a process that exited without being asked to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Delay before the first restart.
    pub initial: Duration,
    /// The delay never grows past this.
    pub max: Duration,
    /// An incarnation that lived this long was healthy: its exit starts the
    /// count of consecutive failures afresh.
    pub reset_after: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            reset_after: Duration::from_secs(60),
        }
    }
}

/// The delay before the next restart after `consecutive_failures` failures
/// in a row: `initial * 2^(n-1)`, capped at `max`. Zero failures need no
/// delay.
pub fn backoff(policy: &RestartPolicy, consecutive_failures: u32) -> Duration {
    let Some(doublings) = consecutive_failures.checked_sub(1) else {
        return Duration::ZERO;
    };
    // Overflow only happens far beyond any sane `max`, so it means `max`.
    2u32.checked_pow(doublings)
        .and_then(|factor| policy.initial.checked_mul(factor))
        .map_or(policy.max, |delay| delay.min(policy.max))
}

/// The count of consecutive failures once an incarnation that lived `lived`
/// has exited, given the count before it.
pub fn failures_after_exit(previous: u32, lived: Duration, policy: &RestartPolicy) -> u32 {
    if lived >= policy.reset_after {
        1
    } else {
        previous.saturating_add(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn doubles_from_initial_and_stops_at_max() {
        let policy = RestartPolicy::default();
        let delays: Vec<Duration> = (1..=11).map(|n| backoff(&policy, n)).collect();
        assert_eq!(
            delays,
            [
                ms(100),
                ms(200),
                ms(400),
                ms(800),
                ms(1_600),
                ms(3_200),
                ms(6_400),
                ms(12_800),
                ms(25_600),
                ms(30_000),
                ms(30_000),
            ]
        );
    }

    #[test]
    fn no_failure_means_no_delay() {
        assert_eq!(backoff(&RestartPolicy::default(), 0), Duration::ZERO);
    }

    #[test]
    fn huge_counts_saturate_at_max() {
        let policy = RestartPolicy::default();
        for n in [31, 32, 33, 64, 1_000, u32::MAX] {
            assert_eq!(backoff(&policy, n), policy.max, "n = {n}");
        }
    }

    #[test]
    fn initial_above_max_is_capped() {
        let policy = RestartPolicy {
            initial: ms(500),
            max: ms(200),
            reset_after: ms(1_000),
        };
        assert_eq!(backoff(&policy, 1), ms(200));
    }

    #[test]
    fn a_long_life_resets_the_count() {
        let policy = RestartPolicy::default();
        assert_eq!(failures_after_exit(0, ms(10), &policy), 1);
        assert_eq!(failures_after_exit(4, ms(10), &policy), 5);
        assert_eq!(failures_after_exit(4, policy.reset_after, &policy), 1);
        assert_eq!(failures_after_exit(4, ms(3_600_000), &policy), 1);
        assert_eq!(failures_after_exit(u32::MAX, ms(10), &policy), u32::MAX);
    }
}
