//! When a failed delivery is tried again: exponential, capped, jittered.

use std::time::Duration;

/// Delays between the tries of one delivery. The `n`th retry waits
/// `first × 2^(n-1)`, at most `cap`, of which the upper half is random:
/// receivers that failed together (a restart) are not hit together again,
/// and the wait never falls below half the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the first retry (before jitter).
    pub first: Duration,
    /// The longest wait (before jitter).
    pub cap: Duration,
}

impl Default for Backoff {
    /// 1 s, 2 s, 4 s, … up to 30 s: a receiver that restarts is reached
    /// within seconds, one that is down costs its queue a bounded wait.
    fn default() -> Self {
        Backoff {
            first: Duration::from_secs(1),
            cap: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The wait before retry `retry` (1 is the first retry; 0 is the first
    /// try, which does not wait). `jitter` is a random number in [0, 1);
    /// values outside are clamped.
    pub fn delay(&self, retry: u32, jitter: f64) -> Duration {
        if retry == 0 {
            return Duration::ZERO;
        }
        let doublings = (retry - 1).min(31);
        let full = self
            .first
            .checked_mul(1 << doublings)
            .unwrap_or(self.cap)
            .min(self.cap);
        let half = full / 2;
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        half + half.mul_f64(jitter)
    }

    /// The longest all of `retries` retries can wait in total, for
    /// documentation and for bounding a queue's delay.
    pub fn longest_total(&self, retries: u32) -> Duration {
        (1..=retries).map(|retry| self.delay(retry, 1.0)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn the_first_try_does_not_wait() {
        assert_eq!(Backoff::default().delay(0, 0.7), Duration::ZERO);
    }

    #[test]
    fn doubles_from_the_first_wait_up_to_the_cap() {
        let backoff = Backoff::default();
        let highest: Vec<Duration> = (1..=7).map(|n| backoff.delay(n, 1.0)).collect();
        assert_eq!(
            highest,
            [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0].map(secs).to_vec()
        );
        let lowest: Vec<Duration> = (1..=7).map(|n| backoff.delay(n, 0.0)).collect();
        assert_eq!(
            lowest,
            [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0].map(secs).to_vec()
        );
    }

    #[test]
    fn jitter_spreads_the_upper_half() {
        let backoff = Backoff::default();
        assert_eq!(backoff.delay(3, 0.5), secs(3.0));
        assert_eq!(backoff.delay(3, 7.0), secs(4.0), "clamped to 1");
        assert_eq!(backoff.delay(3, -1.0), secs(2.0), "clamped to 0");
        assert_eq!(backoff.delay(3, f64::NAN), secs(2.0));
    }

    #[test]
    fn huge_retry_numbers_stay_at_the_cap() {
        let backoff = Backoff::default();
        assert_eq!(backoff.delay(u32::MAX, 1.0), secs(30.0));
        let slow = Backoff {
            first: Duration::from_secs(u64::MAX / 4),
            cap: Duration::from_secs(60),
        };
        assert_eq!(slow.delay(40, 1.0), secs(60.0));
    }

    #[test]
    fn the_default_five_retries_wait_at_most_31_seconds() {
        assert_eq!(Backoff::default().longest_total(5), secs(31.0));
        assert_eq!(Backoff::default().longest_total(0), Duration::ZERO);
    }
}
