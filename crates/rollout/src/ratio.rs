//! A rate limit such as an error rate's maximum.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::percent::{PercentError, PercentProblem, format_percent, parse_percent};

/// A fraction of a whole from 0% to 100%, exact to a millionth (0.0001%).
///
/// Guardrail limits are ratios. They are kept as integers so that a rate of
/// exactly the limit (10 errors in 1,000 requests against "1%") holds on
/// every platform, instead of depending on floating-point rounding.
/// Written, read and stored as a percentage (`"1%"`, `"0.5%"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ratio(u32);

impl Ratio {
    /// Parts per million in 100%.
    pub const MILLION: u32 = 1_000_000;

    /// The ratio of `parts_per_million`; `None` above a million.
    pub const fn from_parts_per_million(parts_per_million: u32) -> Option<Ratio> {
        if parts_per_million <= Self::MILLION {
            Some(Ratio(parts_per_million))
        } else {
            None
        }
    }

    /// The ratio in parts per million (1% = 10,000).
    pub const fn parts_per_million(self) -> u32 {
        self.0
    }

    /// The ratio as a fraction (1% = 0.01), for display and arithmetic
    /// where exactness does not matter.
    pub fn as_fraction(self) -> f64 {
        f64::from(self.0) / f64::from(Self::MILLION)
    }
}

impl FromStr for Ratio {
    type Err = PercentError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let units = parse_percent(text, 4, "rate")?;
        u32::try_from(units)
            .ok()
            .and_then(Ratio::from_parts_per_million)
            .ok_or_else(|| PercentError {
                text: text.to_string(),
                what: "rate",
                problem: PercentProblem::OverHundred,
            })
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_percent(u64::from(self.0), 4))
    }
}

impl Serialize for Ratio {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        let cases: &[(&str, u32, &str)] = &[
            ("1%", 10_000, "1%"),
            ("0.5%", 5_000, "0.5%"),
            ("0.0001%", 1, "0.0001%"),
            ("100%", 1_000_000, "100%"),
        ];
        for &(text, ppm, shown) in cases {
            let ratio: Ratio = text.parse().unwrap();
            assert_eq!(ratio.parts_per_million(), ppm, "{text}");
            assert_eq!(ratio.to_string(), shown, "{text}");
        }
        assert_eq!(
            "0.00001%".parse::<Ratio>().unwrap_err().to_string(),
            "\"0.00001%\" is not a valid rate: it has more than 4 decimal places \
             (the finest step is 0.0001%)"
        );
    }
}
