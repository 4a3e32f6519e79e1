//! The scenario wall clock: RFC 3339 date-times (`YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`)
//! to Unix milliseconds, by hand. Days-from-civil after Howard Hinnant's
//! `chrono`-compatible algorithm (proleptic Gregorian calendar).

/// Parses an RFC 3339 date-time with an offset into milliseconds since the Unix epoch.
///
/// `T`/`t` (or a space) separate date and time; `Z`/`z` means UTC. Fractions of a
/// second beyond milliseconds are truncated. Leap seconds (`:60`) are rejected.
pub fn parse_clock(text: &str) -> Result<i64, String> {
    parse(text.as_bytes()).map_err(|why| {
        format!("`{text}` is not a date-time: {why}; write e.g. \"2019-10-14T11:40:40Z\" or \"2019-10-14T13:40:40+02:00\"")
    })
}

/// Formats Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.fffZ` (the fraction only when
/// non-zero). The inverse of [`parse_clock`] for UTC times in years 0000-9999.
pub fn format_clock(unix_ms: i64) -> String {
    let days = unix_ms.div_euclid(86_400_000);
    let ms_of_day = unix_ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, ms) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000,
    );
    let fraction = if ms == 0 {
        String::new()
    } else {
        format!(".{ms:03}")
    };
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{s:02}{fraction}Z")
}

fn parse(b: &[u8]) -> Result<i64, &'static str> {
    if b.len() < 19 {
        return Err("too short");
    }
    let year = number(b, 0, 4)?;
    let month = number(b, 5, 2)?;
    let day = number(b, 8, 2)?;
    let hour = number(b, 11, 2)?;
    let minute = number(b, 14, 2)?;
    let second = number(b, 17, 2)?;
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err("separators must be `-`, `T` and `:`");
    }
    if !(1..=12).contains(&month) {
        return Err("month must be 01-12");
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err("no such day in that month");
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err("time must be 00:00:00-23:59:59");
    }
    let mut rest = &b[19..];
    let mut millis = 0;
    if let [b'.', tail @ ..] = rest {
        let digits = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err("a `.` must be followed by digits");
        }
        for (i, c) in tail[..digits.min(3)].iter().enumerate() {
            millis += i64::from(c - b'0') * [100, 10, 1][i];
        }
        rest = &tail[digits..];
    }
    let offset_minutes = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = number(&[*h1, *h2], 0, 2)?;
            let minutes = number(&[*m1, *m2], 0, 2)?;
            if hours > 23 || minutes > 59 {
                return Err("offset must be at most 23:59");
            }
            let total = hours * 60 + minutes;
            if *sign == b'-' { -total } else { total }
        }
        [] => return Err("missing offset (add `Z` for UTC)"),
        _ => return Err("offset must be `Z` or `+HH:MM`/`-HH:MM`"),
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Ok(seconds * 1000 + millis)
}

/// The decimal number in `b[at..at + len]`, all ASCII digits.
fn number(b: &[u8], at: usize, len: usize) -> Result<i64, &'static str> {
    let digits = b.get(at..at + len).ok_or("too short")?;
    digits.iter().try_fold(0i64, |n, c| {
        if c.is_ascii_digit() {
            Ok(n * 10 + i64::from(c - b'0'))
        } else {
            Err("expected a digit")
        }
    })
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text = unix ms`.
    const GOOD: &str = "
1970-01-01T00:00:00Z = 0
1969-12-31T23:59:59.999Z = -1
2019-10-14T11:40:40Z = 1571053240000
2019-10-14T13:40:40+02:00 = 1571053240000
2019-10-14T06:10:40-05:30 = 1571053240000
2019-10-14t11:40:40.5z = 1571053240500
2019-10-14 11:40:40.123456789Z = 1571053240123
2000-02-29T00:00:00Z = 951782400000
2000-03-01T00:00:00Z = 951868800000
2024-02-29T12:00:00Z = 1709208000000
9999-12-31T23:59:59.999Z = 253402300799999
";
    const BAD: &str = "1900-02-29T00:00:00Z|2023-02-29T00:00:00Z|2019-04-31T00:00:00Z|\
        2019-13-01T00:00:00Z|2019-10-14T24:00:00Z|2019-10-14T11:40:60Z|2019-10-14T11:40:40|\
        2019-10-14T11:40:40+2:00|2019-10-14|2019-10-14T11:40:40.Z|2019-10-14T11:40:40+24:00|\
        ２019-10-14T11:40:40Z|2019-10-14T11:40:40Zjunk|";

    #[test]
    fn leap_years_epoch_and_offsets() {
        for case in GOOD.trim().lines() {
            let (text, unix_ms) = case.split_once(" = ").unwrap_or_default();
            let unix_ms: i64 = unix_ms.parse().unwrap_or(i64::MIN);
            assert_eq!(parse_clock(text), Ok(unix_ms), "{text}");
            assert_eq!(parse_clock(&format_clock(unix_ms)), Ok(unix_ms), "{text}");
        }
        assert_eq!(format_clock(1_571_053_240_000), "2019-10-14T11:40:40Z");
    }

    #[test]
    fn rejects_impossible_dates() {
        for text in BAD.split('|') {
            assert!(parse_clock(text).is_err(), "{text}");
        }
    }
}
