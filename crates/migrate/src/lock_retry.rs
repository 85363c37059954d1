//! Which failures the runner tries again, and how long it waits between
//! tries.
//!
//! A migration's DDL waits for its lock for at most `lock_timeout`, and
//! every query of the app that arrives meanwhile queues behind it; giving
//! up quickly and trying again later keeps the app's waits that short. The
//! waits grow exponentially (a long transaction is not over in a moment)
//! and carry random jitter, so that two runners, or a runner and a
//! periodic job, that collided once do not collide again in lockstep.

use std::time::Duration;

/// SQLSTATE `lock_not_available`: the statement waited `lock_timeout`
/// for a lock and gave up. Nothing was changed; trying again is safe.
pub const LOCK_NOT_AVAILABLE: &str = "55P03";
/// SQLSTATE `deadlock_detected`: the server chose the migration as the
/// victim and rolled it back. Nothing was changed; trying again is safe.
pub const DEADLOCK_DETECTED: &str = "40P01";

/// How many times a migration is tried, and the waits between tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (at least 1).
    pub tries: u32,
    /// The base wait after the first failed try; it doubles after each
    /// further one.
    pub first_delay: Duration,
    /// The base wait never grows beyond this.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 10 tries, waiting about 0.2 s, 0.4 s, … up to 10 s between them:
    /// with a 2 s `lock_timeout`, about a minute in all before giving up.
    fn default() -> Self {
        RetryPolicy {
            tries: 10,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Whether a statement that failed with `sqlstate` on try `attempt`
    /// (1-based) is tried again. Only failures that changed nothing and
    /// may pass later are: a lock timeout and a deadlock. A statement
    /// timeout is not (the statement is too slow, not unlucky), nor is
    /// any error in the SQL or the data.
    pub fn retries(&self, attempt: u32, sqlstate: Option<&str>) -> bool {
        attempt < self.tries && sqlstate.is_some_and(is_retryable)
    }

    /// The wait after try `attempt` (1-based) failed, given `random` in
    /// [0, 1): half of the base wait is fixed and half is random ("equal
    /// jitter"), so a wait is never near zero and two runners spread apart.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        let base = self
            .first_delay
            .saturating_mul(1 << doublings)
            .min(self.max_delay);
        let random = if random.is_finite() {
            random.clamp(0.0, 1.0)
        } else {
            0.0
        };
        base / 2 + base.mul_f64(random / 2.0)
    }
}

/// Whether a failure with `sqlstate` changed nothing and may pass later.
pub fn is_retryable(sqlstate: &str) -> bool {
    sqlstate == LOCK_NOT_AVAILABLE || sqlstate == DEADLOCK_DETECTED
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(duration: Duration) -> u128 {
        duration.as_millis()
    }

    #[test]
    fn waits_double_from_the_first_delay_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let lowest: Vec<u128> = (1..=9).map(|n| ms(policy.delay(n, 0.0))).collect();
        assert_eq!(lowest, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        let highest: Vec<u128> = (1..=9).map(|n| ms(policy.delay(n, 0.999_999))).collect();
        assert_eq!(highest, [199, 399, 799, 1599, 3199, 6399, 9999, 9999, 9999]);
    }

    #[test]
    fn the_jitter_is_half_the_wait_and_never_out_of_range() {
        let policy = RetryPolicy::default();
        assert_eq!(ms(policy.delay(2, 0.5)), 300);
        assert_eq!(ms(policy.delay(2, -3.0)), 200);
        assert_eq!(ms(policy.delay(2, 7.0)), 400);
        assert_eq!(ms(policy.delay(2, f64::NAN)), 200);
        assert_eq!(ms(policy.delay(u32::MAX, 0.0)), 5000);
    }

    #[test]
    fn only_lock_timeouts_and_deadlocks_are_tried_again_while_tries_last() {
        let policy = RetryPolicy::default();
        assert!(policy.retries(1, Some("55P03")));
        assert!(policy.retries(9, Some("40P01")));
        assert!(
            !policy.retries(10, Some("55P03")),
            "the tenth try was the last"
        );
        for other in ["57014", "23505", "42P01", "42601"] {
            assert!(!policy.retries(1, Some(other)), "{other}");
        }
        assert!(!policy.retries(1, None), "a lost connection is not retried");
        let once = RetryPolicy {
            tries: 1,
            ..RetryPolicy::default()
        };
        assert!(!once.retries(1, Some("55P03")));
    }
}
