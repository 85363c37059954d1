//! Percentages written as text (`"1%"`, `"0.5%"`, `"100%"`), read into
//! exact fixed-point integers so that limits compare without rounding.

use std::fmt;

/// Why a percentage could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a valid {what}: {problem}")]
pub struct PercentError {
    /// What was written.
    pub text: String,
    /// What was expected ("weight", "rate").
    pub what: &'static str,
    /// What is wrong with it and how to write it instead.
    pub problem: PercentProblem,
}

/// What is wrong with a percentage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PercentProblem {
    /// Not of the form `<digits>[.<digits>]%`.
    NotAPercentage,
    /// Below zero.
    Negative,
    /// Above 100%.
    OverHundred,
    /// More decimal places than the type keeps.
    TooPrecise {
        /// The decimal places the type keeps.
        decimals: u32,
    },
}

impl fmt::Display for PercentProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PercentProblem::NotAPercentage => {
                f.write_str("write a percentage such as \"1%\", \"0.5%\" or \"100%\"")
            }
            PercentProblem::Negative => f.write_str("a percentage cannot be negative"),
            PercentProblem::OverHundred => f.write_str("it is more than 100%"),
            PercentProblem::TooPrecise { decimals } => write!(
                f,
                "it has more than {decimals} decimal places (the finest step is {})",
                finest(*decimals)
            ),
        }
    }
}

fn finest(decimals: u32) -> String {
    match decimals {
        0 => "1%".to_string(),
        d => format!("0.{}1%", "0".repeat(d as usize - 1)),
    }
}

/// Reads `text` as a percentage with at most `decimals` decimal places, in
/// units of `10^-decimals` percent (so 100% is `100 * 10^decimals`).
pub(crate) fn parse_percent(
    text: &str,
    decimals: u32,
    what: &'static str,
) -> Result<u64, PercentError> {
    let fail = |problem| PercentError {
        text: text.to_string(),
        what,
        problem,
    };
    let number = text
        .trim()
        .strip_suffix('%')
        .ok_or_else(|| fail(PercentProblem::NotAPercentage))?
        .trim_end();
    if number.starts_with('-') {
        return Err(fail(PercentProblem::Negative));
    }
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || number.ends_with('.') {
        return Err(fail(PercentProblem::NotAPercentage));
    }
    // Trailing zeros carry no precision: "1.000%" is a fine weight.
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > decimals as usize {
        return Err(fail(PercentProblem::TooPrecise { decimals }));
    }
    let scale = 10u64.pow(decimals);
    let full = 100 * scale;
    // Anything longer than this is over 100% whatever its digits; checking
    // first keeps the arithmetic below from overflowing.
    let whole = whole.trim_start_matches('0');
    if whole.len() > 3 {
        return Err(fail(PercentProblem::OverHundred));
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole
            .parse()
            .map_err(|_| fail(PercentProblem::NotAPercentage))?
    };
    let mut units = 0u64;
    for (place, digit) in fraction.bytes().enumerate() {
        units += u64::from(digit - b'0') * 10u64.pow(decimals - 1 - place as u32);
    }
    let value = whole * scale + units;
    if value > full {
        return Err(fail(PercentProblem::OverHundred));
    }
    Ok(value)
}

/// Writes `units` (in `10^-decimals` percent) as the shortest exact text.
pub(crate) fn format_percent(units: u64, decimals: u32) -> String {
    let scale = 10u64.pow(decimals);
    let whole = units / scale;
    let fraction = units % scale;
    if fraction == 0 {
        return format!("{whole}%");
    }
    let digits = format!("{fraction:0width$}", width = decimals as usize);
    format!("{whole}.{}%", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_exactly() {
        let cases: &[(&str, u32, u64, &str)] = &[
            ("1%", 2, 100, "1%"),
            ("0.5%", 2, 50, "0.5%"),
            ("100%", 2, 10_000, "100%"),
            ("0.01%", 2, 1, "0.01%"),
            (" 12.30 %", 2, 1230, "12.3%"),
            ("007%", 2, 700, "7%"),
            ("0%", 2, 0, "0%"),
            ("0.0001%", 4, 1, "0.0001%"),
            ("1%", 4, 10_000, "1%"),
        ];
        for &(text, decimals, units, written) in cases {
            assert_eq!(parse_percent(text, decimals, "weight"), Ok(units), "{text}");
            assert_eq!(format_percent(units, decimals), written, "{text}");
        }
    }

    #[test]
    fn refuses_with_the_problem_named() {
        let cases: &[(&str, PercentProblem)] = &[
            ("1", PercentProblem::NotAPercentage),
            ("", PercentProblem::NotAPercentage),
            ("%", PercentProblem::NotAPercentage),
            ("one%", PercentProblem::NotAPercentage),
            ("1.%", PercentProblem::NotAPercentage),
            (".5%", PercentProblem::NotAPercentage),
            ("1e2%", PercentProblem::NotAPercentage),
            ("-1%", PercentProblem::Negative),
            ("100.01%", PercentProblem::OverHundred),
            ("12345678901234567890123%", PercentProblem::OverHundred),
            ("0.001%", PercentProblem::TooPrecise { decimals: 2 }),
        ];
        for (text, problem) in cases {
            let error = parse_percent(text, 2, "weight").unwrap_err();
            assert_eq!(&error.problem, problem, "{text}");
        }
    }
}
