//! Error-budget arithmetic over plain counts: what an availability objective
//! allows, how much of it is left, and how fast it burns. No clock and no
//! store here: the caller adds up the minute rollups (and the live minute)
//! it read, these functions only judge them.

/// Requests and failed requests over some span.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Requests answered.
    pub requests: u64,
    /// Of those, failed (5xx or upstream failure).
    pub errors: u64,
}

impl Tally {
    /// Adds `other`'s counts.
    pub fn add(&mut self, other: Tally) {
        self.requests = self.requests.saturating_add(other.requests);
        self.errors = self.errors.saturating_add(other.errors);
    }

    /// The minutes of `minutes` (minute start in Unix ms, counts) that began
    /// at or after `from_ms`, added up.
    pub fn since(minutes: &[(u64, Tally)], from_ms: u64) -> Tally {
        let mut sum = Tally::default();
        for (minute_ms, tally) in minutes {
            if *minute_ms >= from_ms {
                sum.add(*tally);
            }
        }
        sum
    }

    /// errors / requests; 0 with no request.
    pub fn error_rate(self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

/// The errors an objective of `availability` (a fraction, 0.999 for 99.9%)
/// allows over `tally`'s requests: (1 - availability) x requests.
pub fn allowed_errors(availability: f64, tally: Tally) -> f64 {
    (1.0 - availability) * tally.requests as f64
}

/// The share of the budget left: 1 - errors / allowed errors. 1 with no
/// request (nothing spent); 0 or less once spent, negative when overspent.
/// With too few requests for one error to be allowed, any error overspends.
pub fn budget_left(availability: f64, tally: Tally) -> f64 {
    let allowed = allowed_errors(availability, tally);
    if tally.errors == 0 {
        1.0
    } else if allowed <= 0.0 {
        f64::NEG_INFINITY
    } else {
        1.0 - tally.errors as f64 / allowed
    }
}

/// How many times faster than the objective allows `tally` spends the
/// budget: the observed error rate over (1 - availability). 1 spends the
/// whole budget in exactly one window; 0 with no request.
pub fn burn_rate(availability: f64, tally: Tally) -> f64 {
    let allowed_rate = 1.0 - availability;
    if allowed_rate <= 0.0 {
        return if tally.errors == 0 {
            0.0
        } else {
            f64::INFINITY
        };
    }
    tally.error_rate() / allowed_rate
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(requests: u64, errors: u64) -> Tally {
        Tally { requests, errors }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn the_budget_is_what_the_objective_allows_less_what_failed() {
        // 99.9% of 100,000 requests allows 100 errors.
        assert!(close(allowed_errors(0.999, tally(100_000, 0)), 100.0));
        assert!(close(budget_left(0.999, tally(100_000, 0)), 1.0));
        assert!(close(budget_left(0.999, tally(100_000, 25)), 0.75));
        assert!(close(budget_left(0.999, tally(100_000, 100)), 0.0));
        assert!(close(budget_left(0.999, tally(100_000, 150)), -0.5));
        // Nothing served, nothing spent; an error with none allowed spends it all.
        assert!(close(budget_left(0.999, tally(0, 0)), 1.0));
        assert!(budget_left(0.999, tally(0, 1)) <= 0.0);
    }

    #[test]
    fn the_burn_rate_is_the_error_rate_over_the_allowed_rate() {
        assert!(close(burn_rate(0.999, tally(10_000, 10)), 1.0));
        assert!(close(burn_rate(0.999, tally(10_000, 144)), 14.4));
        assert!(close(burn_rate(0.99, tally(1_000, 5)), 0.5));
        assert!(close(burn_rate(0.999, tally(0, 0)), 0.0));
    }

    #[test]
    fn minutes_before_the_span_are_left_out() {
        let minutes = [
            (0, tally(10, 1)),
            (60_000, tally(20, 2)),
            (120_000, tally(30, 3)),
        ];
        assert_eq!(Tally::since(&minutes, 0), tally(60, 6));
        assert_eq!(Tally::since(&minutes, 60_000), tally(50, 5));
        assert_eq!(Tally::since(&minutes, 180_000), tally(0, 0));
        let mut live = Tally::since(&minutes, 120_000);
        live.add(tally(5, 5));
        assert!(close(live.error_rate(), 8.0 / 35.0));
    }
}
