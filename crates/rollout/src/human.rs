//! Numbers as people read them in reasons and verdicts: "2m 30s", "1200ms",
//! "2,340", "5.1%".

use std::time::Duration;

/// A span of time such as a window or a step: "2m", "1m 30s", "250ms".
pub(crate) fn span(duration: Duration) -> String {
    let total = duration.as_secs();
    if total == 0 {
        return format!("{}ms", duration.as_millis());
    }
    let (hours, minutes, seconds) = (total / 3600, total / 60 % 60, total % 60);
    let parts: Vec<String> = [(hours, "h"), (minutes, "m"), (seconds, "s")]
        .into_iter()
        .filter(|(value, _)| *value > 0)
        .map(|(value, unit)| format!("{value}{unit}"))
        .collect();
    parts.join(" ")
}

/// A latency, in the milliseconds people configure it in: "1200ms",
/// "0.4ms".
pub(crate) fn latency(duration: Duration) -> String {
    let micros = duration.as_micros();
    if micros >= 1000 {
        format!("{}ms", (micros + 500) / 1000)
    } else {
        format!("{}ms", trim(&format!("{:.3}", micros as f64 / 1000.0)))
    }
}

/// A count with thousands separators: "2,340".
pub(crate) fn count(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A fraction as a percentage: 0.051 is "5.1%". Small non-zero rates keep
/// enough digits not to read as zero.
pub(crate) fn percent(fraction: f64) -> String {
    format!("{}%", percent_number(fraction))
}

/// A fraction as percentage points: 0.019 is "1.9 points".
pub(crate) fn points(fraction: f64) -> String {
    let number = percent_number(fraction.abs());
    let one = number == "1";
    let sign = if fraction < 0.0 { "-" } else { "" };
    format!("{sign}{number} point{}", if one { "" } else { "s" })
}

/// A plain number with at most four decimals, "0.9731", "12", or for a
/// small one four significant digits, "0.00001234": a business metric can
/// be a tiny rate, and "0" next to a limit of "0.0001" would explain nothing.
pub(crate) fn number(value: f64) -> String {
    let magnitude = value.abs();
    let decimals = if magnitude > 0.0 && magnitude < 0.001 {
        // The first significant digit is `leading` places after the point;
        // three more make four. Clamped so a denormal cannot ask for hundreds.
        let leading = (-magnitude.log10().floor()) as usize;
        (leading + 3).min(16)
    } else {
        4
    };
    trim(&format!("{value:.decimals$}"))
}

fn percent_number(fraction: f64) -> String {
    let value = fraction * 100.0;
    let decimals = if value != 0.0 && value.abs() < 0.01 {
        4
    } else {
        2
    };
    trim(&format!("{value:.decimals$}"))
}

fn trim(text: &str) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_a_person_wrote_it() {
        assert_eq!(span(Duration::from_secs(120)), "2m");
        assert_eq!(span(Duration::from_secs(90)), "1m 30s");
        assert_eq!(span(Duration::from_secs(3661)), "1h 1m 1s");
        assert_eq!(span(Duration::from_millis(250)), "250ms");
        assert_eq!(span(Duration::ZERO), "0ms");
        assert_eq!(latency(Duration::from_millis(1200)), "1200ms");
        assert_eq!(latency(Duration::from_micros(400)), "0.4ms");
        assert_eq!(count(2340), "2,340");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000_000), "1,000,000");
        assert_eq!(percent(0.051), "5.1%");
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(0.00004), "0.004%");
        assert_eq!(points(0.019), "1.9 points");
        assert_eq!(points(-0.01), "-1 point");
        assert_eq!(number(0.97), "0.97");
        assert_eq!(number(12.0), "12");
        assert_eq!(number(0.0), "0");
        assert_eq!(number(0.00001234), "0.00001234");
        assert_eq!(number(-0.0005), "-0.0005");
    }
}
