//! The share of live traffic the candidate gets.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::percent::{PercentError, PercentProblem, format_percent, parse_percent};

/// A share of live traffic in basis points: 0 (none) to 10,000 (all).
///
/// Written and read as a percentage with at most two decimals (`"1%"`,
/// `"0.5%"`, `"100%"`); that is also its JSON form, so stored decisions
/// read like the config that produced them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Weight(u16);

impl Weight {
    /// No traffic.
    pub const ZERO: Weight = Weight(0);
    /// All traffic.
    pub const FULL: Weight = Weight(10_000);

    /// The weight of `basis_points` (1 = 0.01%); `None` above 10,000.
    pub const fn from_basis_points(basis_points: u16) -> Option<Weight> {
        if basis_points <= Self::FULL.0 {
            Some(Weight(basis_points))
        } else {
            None
        }
    }

    /// The weight of `percent` whole percent; `None` above 100.
    pub const fn from_percent(percent: u16) -> Option<Weight> {
        if percent <= 100 {
            Some(Weight(percent * 100))
        } else {
            None
        }
    }

    /// The weight in basis points (1 = 0.01%).
    pub const fn basis_points(self) -> u16 {
        self.0
    }

    /// Whether this is all traffic.
    pub const fn is_full(self) -> bool {
        self.0 == Self::FULL.0
    }

    /// Whether this is no traffic.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl FromStr for Weight {
    type Err = PercentError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let units = parse_percent(text, 2, "weight")?;
        u16::try_from(units)
            .ok()
            .and_then(Weight::from_basis_points)
            .ok_or_else(|| PercentError {
                text: text.to_string(),
                what: "weight",
                problem: PercentProblem::OverHundred,
            })
    }
}

impl fmt::Display for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_percent(u64::from(self.0), 2))
    }
}

impl Serialize for Weight {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Weight {
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
        let cases: &[(&str, u16, &str)] = &[
            ("1%", 100, "1%"),
            ("0.5%", 50, "0.5%"),
            ("100%", 10_000, "100%"),
            ("0%", 0, "0%"),
            ("0.01%", 1, "0.01%"),
            ("33.33%", 3333, "33.33%"),
            ("50.0%", 5000, "50%"),
        ];
        for &(text, basis_points, shown) in cases {
            let weight: Weight = text.parse().unwrap();
            assert_eq!(weight.basis_points(), basis_points, "{text}");
            assert_eq!(weight.to_string(), shown, "{text}");
        }
    }

    #[test]
    fn refuses_with_clear_errors() {
        let cases: &[(&str, &str)] = &[
            (
                "10",
                "\"10\" is not a valid weight: write a percentage such as \"1%\", \"0.5%\" or \"100%\"",
            ),
            (
                "150%",
                "\"150%\" is not a valid weight: it is more than 100%",
            ),
            (
                "-5%",
                "\"-5%\" is not a valid weight: a percentage cannot be negative",
            ),
            (
                "0.005%",
                "\"0.005%\" is not a valid weight: it has more than 2 decimal places (the finest step is 0.01%)",
            ),
        ];
        for &(text, message) in cases {
            let error = text.parse::<Weight>().unwrap_err();
            assert_eq!(error.to_string(), message);
        }
    }

    #[test]
    fn constructors_refuse_more_than_everything() {
        assert_eq!(Weight::from_percent(10), Some(Weight(1000)));
        assert_eq!(Weight::from_percent(101), None);
        assert_eq!(Weight::from_basis_points(10_001), None);
        assert!(Weight::FULL.is_full() && Weight::ZERO.is_zero());
    }
}
