//! The standard PAC helper functions (Netscape's 1996 list, as browsers implement them),
//! in plain Rust so they are unit-tested and fuzzed apart from the JavaScript engine.
//!
//! Time helpers take the simulated wall clock as a [`Civil`] time; "GMT" as the last
//! argument selects UTC, which is also the simulated local time zone.

use std::net::{IpAddr, Ipv4Addr};

/// `isPlainHostName(host)`: no dot in the name.
pub fn is_plain_host_name(host: &str) -> bool {
    !host.contains('.')
}

/// `dnsDomainIs(host, domain)`: the host ends with the domain (a plain suffix test, as
/// browsers do: `dnsDomainIs("www.box.com", ".box.com")` is true).
pub fn dns_domain_is(host: &str, domain: &str) -> bool {
    host.len() >= domain.len()
        && host.as_bytes()[host.len() - domain.len()..].eq_ignore_ascii_case(domain.as_bytes())
}

/// `localHostOrDomainIs(host, hostdom)`: the exact name, or the plain host name that is
/// its first label.
pub fn local_host_or_domain_is(host: &str, hostdom: &str) -> bool {
    if host.eq_ignore_ascii_case(hostdom) {
        return true;
    }
    is_plain_host_name(host)
        && hostdom
            .split('.')
            .next()
            .is_some_and(|first| first.eq_ignore_ascii_case(host))
}

/// `dnsDomainLevels(host)`: the number of dots.
pub fn dns_domain_levels(host: &str) -> usize {
    host.bytes().filter(|&b| b == b'.').count()
}

/// `shExpMatch(str, pattern)`: shell glob with `*` (any run) and `?` (one character).
///
/// Iterative with one backtrack point, so it is linear-ish in practice and never
/// exponential (a recursive matcher is, on patterns like `*a*a*a*a*b`).
pub fn sh_exp_match(text: &str, pattern: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    let pattern: Vec<char> = pattern.chars().collect();
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                t += 1;
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// `isInNet(addr, pattern, mask)`: `addr` (an IPv4 address) masked equals `pattern`
/// masked. Returns `None` when an argument is not a dotted-quad address.
pub fn is_in_net(addr: IpAddr, pattern: &str, mask: &str) -> Option<bool> {
    let IpAddr::V4(addr) = addr else {
        return Some(false);
    };
    let pattern: Ipv4Addr = pattern.trim().parse().ok()?;
    let mask: Ipv4Addr = mask.trim().parse().ok()?;
    let m = u32::from(mask);
    Some(u32::from(addr) & m == u32::from(pattern) & m)
}

/// A moment on the simulated wall clock, broken down (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// The year, e.g. 2019.
    pub year: i32,
    /// 1..=12.
    pub month: u8,
    /// 1..=31.
    pub day: u8,
    /// 0 = Sunday .. 6 = Saturday.
    pub weekday: u8,
    /// 0..=23.
    pub hour: u8,
    /// 0..=59.
    pub minute: u8,
    /// 0..=59.
    pub second: u8,
}

impl Civil {
    /// The UTC civil time of `unix_ms` milliseconds since 1970 (clamped to years
    /// -9999..=9999).
    pub fn from_unix_ms(unix_ms: i64) -> Civil {
        let secs = unix_ms
            .div_euclid(1000)
            .clamp(-377_705_116_800, 253_402_300_799);
        let dt = time::OffsetDateTime::from_unix_timestamp(secs)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        Civil {
            year: dt.year(),
            month: u8::from(dt.month()),
            day: dt.day(),
            weekday: dt.weekday().number_days_from_sunday(),
            hour: dt.hour(),
            minute: dt.minute(),
            second: dt.second(),
        }
    }
}

const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// Drops a trailing "GMT" argument (the simulated clock is UTC either way).
fn strip_gmt(args: &[String]) -> &[String] {
    match args.split_last() {
        Some((last, rest)) if last.eq_ignore_ascii_case("GMT") => rest,
        _ => args,
    }
}

/// Whether `x` lies in the wrapping range `lo..=hi` (ranges like FRI..MON wrap).
fn in_wrapping<T: PartialOrd>(x: T, lo: T, hi: T) -> bool {
    if lo <= hi {
        lo <= x && x <= hi
    } else {
        x >= lo || x <= hi
    }
}

/// `weekdayRange(wd1 [, wd2] [, "GMT"])`. `None` when a day name is unknown.
pub fn weekday_range(now: Civil, args: &[String]) -> Option<bool> {
    let args = strip_gmt(args);
    let day = |s: &String| {
        WEEKDAYS
            .iter()
            .position(|d| d.eq_ignore_ascii_case(s))
            .and_then(|i| u8::try_from(i).ok())
    };
    match args {
        [one] => Some(now.weekday == day(one)?),
        [lo, hi] => Some(in_wrapping(now.weekday, day(lo)?, day(hi)?)),
        _ => None,
    }
}

/// One argument of `dateRange`: a day of month, a month name or a year.
#[derive(Debug, Clone, Copy, PartialEq)]
enum DatePart {
    Day(u8),
    Month(u8),
    Year(i32),
}

fn date_part(s: &str) -> Option<DatePart> {
    if let Some(i) = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(s)) {
        return u8::try_from(i).ok().map(|m| DatePart::Month(m + 1));
    }
    let n: i32 = s.trim().parse().ok()?;
    match n {
        1..=31 => u8::try_from(n).ok().map(DatePart::Day),
        1000..=9999 => Some(DatePart::Year(n)),
        _ => None,
    }
}

/// `dateRange(...)`: one to six arguments of days, months and years, as in the PAC
/// specification (`dateRange(1)`, `dateRange("JAN", "MAR")`, `dateRange(1, "JUN", 1995,
/// 15, "AUG", 1995)`). `None` when the arguments make no range.
pub fn date_range(now: Civil, args: &[String]) -> Option<bool> {
    let parts: Vec<DatePart> = strip_gmt(args)
        .iter()
        .map(|a| date_part(a))
        .collect::<Option<_>>()?;
    let key = |p: &[DatePart], now: Civil| -> Option<(i64, i64)> {
        // A comparable number for `p` and for `now` restricted to the same fields.
        let (mut k, mut n) = (0i64, 0i64);
        for part in p {
            match *part {
                DatePart::Year(y) => {
                    k = k * 10_000 + i64::from(y);
                    n = n * 10_000 + i64::from(now.year);
                }
                DatePart::Month(m) => {
                    k = k * 100 + i64::from(m);
                    n = n * 100 + i64::from(now.month);
                }
                DatePart::Day(d) => {
                    k = k * 100 + i64::from(d);
                    n = n * 100 + i64::from(now.day);
                }
            }
        }
        Some((k, n))
    };
    // Reorder each bound as year, month, day so the numbers compare in time order.
    let order = |p: &[DatePart]| -> Vec<DatePart> {
        let rank = |d: &DatePart| match d {
            DatePart::Year(_) => 0,
            DatePart::Month(_) => 1,
            DatePart::Day(_) => 2,
        };
        let mut v = p.to_vec();
        v.sort_by_key(rank);
        v
    };
    let same_kinds = |a: &[DatePart], b: &[DatePart]| {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| std::mem::discriminant(x) == std::mem::discriminant(y))
    };
    match parts.len() {
        1 => {
            let (k, n) = key(&parts, now)?;
            Some(k == n)
        }
        2 | 4 | 6 => {
            let (lo, hi) = parts.split_at(parts.len() / 2);
            let (lo, hi) = (order(lo), order(hi));
            if !same_kinds(&lo, &hi) {
                return None;
            }
            let (klo, n) = key(&lo, now)?;
            let (khi, _) = key(&hi, now)?;
            Some(in_wrapping(n, klo, khi))
        }
        _ => None,
    }
}

/// `timeRange(...)`: `(hour)`, `(h1, h2)`, `(h1, m1, h2, m2)` or `(h1, m1, s1, h2, m2,
/// s2)`. The end is exclusive for the hour forms, as browsers implement it.
pub fn time_range(now: Civil, args: &[String]) -> Option<bool> {
    let nums: Vec<u32> = strip_gmt(args)
        .iter()
        .map(|a| a.trim().parse().ok())
        .collect::<Option<_>>()?;
    let (h, m, s) = (
        u32::from(now.hour),
        u32::from(now.minute),
        u32::from(now.second),
    );
    let secs = h * 3600 + m * 60 + s;
    match nums.as_slice() {
        [h1] => Some(h == *h1),
        [h1, h2] => Some(if h1 <= h2 {
            *h1 <= h && h < *h2
        } else {
            h >= *h1 || h < *h2
        }),
        [h1, m1, h2, m2] => {
            let (lo, hi) = (h1 * 3600 + m1 * 60, h2 * 3600 + m2 * 60);
            Some(in_wrapping(secs, lo, hi))
        }
        [h1, m1, s1, h2, m2, s2] => {
            let (lo, hi) = (h1 * 3600 + m1 * 60 + s1, h2 * 3600 + m2 * 60 + s2);
            Some(in_wrapping(secs, lo, hi))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_string()).collect()
    }

    /// 2019-10-14 11:40:40 UTC, a Monday.
    const NOW: i64 = 1_571_053_240_000;

    #[test]
    fn civil_time_of_the_default_clock() {
        let c = Civil::from_unix_ms(NOW);
        assert_eq!(
            (
                c.year, c.month, c.day, c.weekday, c.hour, c.minute, c.second
            ),
            (2019, 10, 14, 1, 11, 40, 40)
        );
    }

    #[test]
    fn host_helpers() {
        assert!(is_plain_host_name("intranet"));
        assert!(!is_plain_host_name("www.box.com"));
        assert!(dns_domain_is("www.box.com", ".box.com"));
        assert!(!dns_domain_is("box.com", ".box.com"));
        assert!(dns_domain_is("WWW.Box.com", "box.com"));
        assert!(local_host_or_domain_is("www", "www.box.com"));
        assert!(local_host_or_domain_is("www.box.com", "www.box.com"));
        assert!(!local_host_or_domain_is("www.dropbox.com", "www.box.com"));
        assert!(!local_host_or_domain_is("mail", "www.box.com"));
        assert_eq!(dns_domain_levels("www.box.com"), 2);
        assert_eq!(dns_domain_levels("intranet"), 0);
    }

    #[test]
    fn globs() {
        assert!(sh_exp_match("www.box.com", "*.box.com"));
        assert!(!sh_exp_match("box.com", "*.box.com"));
        assert!(sh_exp_match("http://a/b", "http://*"));
        assert!(sh_exp_match("abc", "a?c"));
        assert!(!sh_exp_match("ac", "a?c"));
        assert!(sh_exp_match("", "*"));
        assert!(sh_exp_match(
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
            "*a*a*a*a*a*a*a*b"
        ));
        assert!(!sh_exp_match(
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "*a*a*a*a*a*a*a*b"
        ));
    }

    #[test]
    fn nets() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            is_in_net(ip("10.1.2.3"), "10.0.0.0", "255.0.0.0"),
            Some(true)
        );
        assert_eq!(
            is_in_net(ip("11.1.2.3"), "10.0.0.0", "255.0.0.0"),
            Some(false)
        );
        assert_eq!(is_in_net(ip("10.1.2.3"), "ten", "255.0.0.0"), None);
        assert_eq!(is_in_net(ip("::1"), "10.0.0.0", "255.0.0.0"), Some(false));
    }

    #[test]
    fn time_helpers_on_a_monday_morning() {
        let now = Civil::from_unix_ms(NOW);
        assert_eq!(weekday_range(now, &s(&["MON"])), Some(true));
        assert_eq!(weekday_range(now, &s(&["MON", "FRI"])), Some(true));
        assert_eq!(weekday_range(now, &s(&["SAT", "MON", "GMT"])), Some(true));
        assert_eq!(weekday_range(now, &s(&["TUE", "FRI"])), Some(false));
        assert_eq!(weekday_range(now, &s(&["FUNDAY"])), None);
        assert_eq!(time_range(now, &s(&["11"])), Some(true));
        assert_eq!(time_range(now, &s(&["9", "17"])), Some(true));
        assert_eq!(time_range(now, &s(&["12", "17"])), Some(false));
        assert_eq!(time_range(now, &s(&["22", "12"])), Some(true));
        assert_eq!(time_range(now, &s(&["11", "30", "11", "45"])), Some(true));
        assert_eq!(
            time_range(now, &s(&["11", "40", "41", "11", "59", "0"])),
            Some(false)
        );
        assert_eq!(date_range(now, &s(&["14"])), Some(true));
        assert_eq!(date_range(now, &s(&["OCT"])), Some(true));
        assert_eq!(date_range(now, &s(&["2019"])), Some(true));
        assert_eq!(date_range(now, &s(&["SEP", "NOV"])), Some(true));
        assert_eq!(date_range(now, &s(&["NOV", "FEB"])), Some(false));
        assert_eq!(
            date_range(now, &s(&["1", "OCT", "2019", "15", "OCT", "2019"])),
            Some(true)
        );
        assert_eq!(
            date_range(now, &s(&["15", "OCT", "2019", "1", "NOV", "2019"])),
            Some(false)
        );
        assert_eq!(date_range(now, &s(&["1", "OCT"])), None);
        assert_eq!(date_range(now, &s(&["SOMEDAY"])), None);
    }

    proptest! {
        #[test]
        fn glob_of_the_text_itself_matches(t in "[a-z.?]{0,40}") {
            let escaped: String = t.chars().map(|c| if c == '?' { '?' } else { c }).collect();
            prop_assert!(sh_exp_match(&t, &escaped));
            prop_assert!(sh_exp_match(&t, "*"));
        }

        #[test]
        fn helpers_never_panic(a in ".{0,30}", b in ".{0,30}", ms in any::<i64>()) {
            let _ = sh_exp_match(&a, &b);
            let _ = dns_domain_is(&a, &b);
            let _ = local_host_or_domain_is(&a, &b);
            let now = Civil::from_unix_ms(ms);
            let args = vec![a.clone(), b.clone()];
            let _ = weekday_range(now, &args);
            let _ = date_range(now, &args);
            let _ = time_range(now, &args);
            let _ = is_in_net(IpAddr::V4(Ipv4Addr::LOCALHOST), &a, &b);
        }
    }
}
