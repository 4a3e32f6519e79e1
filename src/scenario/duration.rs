//! Duration strings: `"250ms"`, `"10s"`, `"1.5s"`, `"2m"`, `"1h"`.
//!
//! Arithmetic is exact, in nanoseconds (no floats), so `format_duration` and
//! `parse_duration` round-trip every `Duration`.

use std::time::Duration;

/// Units, largest first, with their length in nanoseconds.
const UNITS: [(&str, u128); 4] = [
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
];
const NANOS_PER_SEC: u128 = 1_000_000_000;
/// More fraction digits than this cannot matter at nanosecond precision (and would
/// overflow the arithmetic).
const MAX_FRACTION_DIGITS: usize = 20;
const HINT: &str = "write a number and a unit: ms, s, m or h (e.g. \"250ms\", \"1.5s\", \"2m\")";

/// Parses a non-negative integer or decimal number followed by `ms`, `s`, `m` or `h`.
///
/// The value must be a whole number of nanoseconds and fit a `Duration`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if text.is_empty() {
        return Err(format!("empty duration; {HINT}"));
    }
    if text.starts_with('-') {
        return Err(format!(
            "negative duration `{text}`; durations count forward from t = 0"
        ));
    }
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(format!("`{text}` has no number; {HINT}"));
    }
    let Some(&(_, unit_ns)) = UNITS.iter().find(|(u, _)| *u == unit) else {
        return Err(if unit.is_empty() {
            format!("`{text}` has no unit; write e.g. \"{text}s\" or \"{text}ms\"")
        } else {
            format!("unknown unit `{unit}` in `{text}`; {HINT}")
        });
    };
    let nanos = to_nanos(number, unit_ns).map_err(|why| format!("`{text}` {why}; {HINT}"))?;
    let secs = u64::try_from(nanos / NANOS_PER_SEC)
        .map_err(|_| format!("`{text}` is too long a duration"))?;
    // The remainder is below 10^9, so it fits a u32.
    Ok(Duration::new(secs, (nanos % NANOS_PER_SEC) as u32))
}

/// The shortest text that [`parse_duration`] reads back as `d` (`"250ms"`, `"10s"`,
/// `"1.5s"`, `"2m"`). On a tie an integer beats a decimal, then s, ms, m, h.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    let mut best: Option<String> = None;
    for unit in ["s", "ms", "m", "h"] {
        let unit_ns = UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .map_or(1, |(_, n)| *n);
        let Some(text) = in_unit(nanos, unit, unit_ns) else {
            continue;
        };
        let better = match &best {
            None => true,
            Some(b) => (text.len(), text.contains('.')) < (b.len(), b.contains('.')),
        };
        if better {
            best = Some(text);
        }
    }
    // Milliseconds with six fraction digits are exact to the nanosecond, so this
    // fallback never runs; it keeps the function total.
    best.unwrap_or_else(|| format!("{}ms", d.as_millis()))
}

/// `nanos` written in one unit, if that is exact with at most 20 fraction digits.
fn in_unit(nanos: u128, unit: &str, unit_ns: u128) -> Option<String> {
    let whole = nanos / unit_ns;
    let mut rest = nanos % unit_ns;
    if rest == 0 {
        return Some(format!("{whole}{unit}"));
    }
    let mut digits = String::new();
    while rest != 0 {
        if digits.len() == MAX_FRACTION_DIGITS {
            return None;
        }
        rest *= 10;
        digits.push(char::from(b'0' + (rest / unit_ns) as u8));
        rest %= unit_ns;
    }
    Some(format!("{whole}.{digits}{unit}"))
}

/// `number` (digits with at most one `.`) times `unit_ns`, exactly.
fn to_nanos(number: &str, unit_ns: u128) -> Result<u128, &'static str> {
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f.trim_end_matches('0')),
        None => (number, ""),
    };
    let bad_dot = number.ends_with('.') || number.starts_with('.') || fraction.contains('.');
    if bad_dot {
        return Err("is not a number");
    }
    if fraction.len() > MAX_FRACTION_DIGITS {
        return Err("is more precise than a nanosecond");
    }
    let mut total: u128 = 0;
    for c in whole.bytes() {
        total = total
            .checked_mul(10)
            .and_then(|t| t.checked_add(u128::from(c - b'0')))
            .ok_or("is too large")?;
    }
    total = total.checked_mul(unit_ns).ok_or("is too large")?;
    if fraction.is_empty() {
        return Ok(total);
    }
    let digits: u128 = fraction.parse().map_err(|_| "is not a number")?;
    let scale = 10u128.pow(fraction.len() as u32);
    let scaled = digits * unit_ns;
    if !scaled.is_multiple_of(scale) {
        return Err("is more precise than a nanosecond");
    }
    total.checked_add(scaled / scale).ok_or("is too large")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        assert_eq!(parse_duration("2.50s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("0.000001ms"), Ok(Duration::from_nanos(1)));
        assert_eq!(format_duration(Duration::from_secs(60)), "1m");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_secs(5400)), "90m");
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        let bad = "|10|-1s|s|1.s|.5s|1..5s|5 s| 5s|5sec|5S|1.0000000001ms|99999999999999999999999h";
        for text in bad.split('|') {
            assert!(parse_duration(text).is_err(), "{text}");
        }
        assert!(parse_duration("18446744073709551616s").is_err());
    }
}
