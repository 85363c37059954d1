//! `ERROR_RATE`: which requests to `/` answer 500.
//!
//! The choice is deterministic rather than random: with rate `r`, request
//! `n` (counting from 1) fails when `floor(n·r)` steps up, so failures are
//! spread evenly and every run fails the same requests. `0.05` fails
//! requests 20, 40, 60, …; `0.25` fails 4, 8, 12, …; `1` fails all of them.
//! Tests and demos can then count on exact numbers instead of a tolerance.

/// Parts per million, so the arithmetic is exact integers.
const SCALE: u64 = 1_000_000;

/// A share of requests to fail, between 0 and 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ErrorRate {
    per_million: u64,
}

impl ErrorRate {
    /// Reads a decimal between 0 and 1, such as `0.05`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let rate: f64 = raw
            .trim()
            .parse()
            .map_err(|err| format!("ERROR_RATE={raw:?} is not a number: {err}"))?;
        if !(0.0..=1.0).contains(&rate) {
            return Err(format!(
                "ERROR_RATE={raw:?}: expected a share between 0 and 1"
            ));
        }
        // Between 0 and 1, so the product fits and the cast loses nothing.
        let per_million = (rate * SCALE as f64).round() as u64;
        Ok(Self { per_million })
    }

    /// Whether the `n`-th request (counting from 1) should fail.
    pub fn fails(self, n: u64) -> bool {
        if n == 0 || self.per_million == 0 {
            return false;
        }
        let n = u128::from(n);
        let rate = u128::from(self.per_million);
        let scale = u128::from(SCALE);
        n * rate / scale > (n - 1) * rate / scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failing(rate: &str, requests: u64) -> Result<Vec<u64>, String> {
        let rate = ErrorRate::parse(rate)?;
        Ok((1..=requests).filter(|&n| rate.fails(n)).collect())
    }

    #[test]
    fn fails_an_exact_evenly_spread_share() -> Result<(), String> {
        assert_eq!(failing("0.05", 100)?, [20, 40, 60, 80, 100]);
        assert_eq!(failing("0.25", 12)?, [4, 8, 12]);
        assert_eq!(failing("0.5", 6)?, [2, 4, 6]);
        assert_eq!(failing("1", 3)?, [1, 2, 3]);
        assert_eq!(failing("0", 1000)?, Vec::<u64>::new());
        // Rates above one half still come out exact.
        assert_eq!(failing("0.75", 1000)?.len(), 750);
        assert_eq!(failing("0.001", 1000)?, [1000]);
        Ok(())
    }

    #[test]
    fn rejects_shares_outside_zero_to_one() {
        assert!(ErrorRate::parse("1.5").is_err());
        assert!(ErrorRate::parse("-0.1").is_err());
        assert!(ErrorRate::parse("NaN").is_err());
        assert!(ErrorRate::parse("5%").is_err());
    }
}
