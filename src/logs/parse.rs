//! Reading nsdebuglog files (the customer's, or a simulated run's) into entries, and
//! entries into the events that matter for steering, so a customer's log and a
//! simulated run can be compared on meaning.
//!
//! A line is `DATE TIME PROCESS pPID tTID LEVEL [FILE:LINE] COMPONENT MESSAGE`, e.g.
//! `2019/10/14 11:40:49.871 stAgentSvc p1244 t2980 2 nsDnsResolver.cpp:204 dnsResolver
//! Failed to resolve gateway-acme.goskope.com by EDNS`. Times may carry 3 or 6 decimals.
//! A line that does not start with a date continues the previous entry (clients wrap
//! long messages). Components this module does not know are kept as they are.

use serde::Serialize;

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// 1-based line number of its first line.
    pub line: usize,
    /// `YYYY/MM/DD HH:MM:SS.fff` as written.
    pub time: String,
    /// Milliseconds since the first entry of the file.
    pub offset_ms: i64,
    /// Its time in Unix milliseconds (UTC).
    pub unix_ms: i64,
    /// Level 1 (critical) .. 5 (debug).
    pub level: u8,
    /// `dnsResolver`, `nsTunnel`...
    pub component: String,
    /// The message, continuation lines joined with a space.
    pub message: String,
}

/// Why a file is not an nsdebuglog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "no nsdebuglog lines found ({lines} line(s) read); expected lines like `2019/10/14 11:40:49.871 stAgentSvc p1244 t2980 4 dnsResolver Hostname ... resolved by EDNS`"
)]
pub struct NotALog {
    /// Lines read.
    pub lines: usize,
}

/// Every entry of a log text.
pub fn parse_log(text: &str) -> Result<Vec<Entry>, NotALog> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut first_ms = None;
    let mut lines = 0;
    for (i, raw) in text.lines().enumerate() {
        lines += 1;
        let raw = raw.trim_end();
        if raw.is_empty() {
            continue;
        }
        // A copied log may hold several entries on one line (pasted from a document).
        for line in split_entries(raw) {
            match parse_line(line) {
                Some((ms, mut entry)) => {
                    let first = *first_ms.get_or_insert(ms);
                    entry.line = i + 1;
                    entry.offset_ms = ms - first;
                    entry.unix_ms = ms;
                    entries.push(entry);
                }
                None => {
                    if let Some(last) = entries.last_mut() {
                        last.message.push(' ');
                        last.message.push_str(line.trim());
                    }
                }
            }
        }
    }
    if entries.is_empty() {
        return Err(NotALog { lines });
    }
    Ok(entries)
}

/// `line` cut before every further `YYYY/MM/DD HH:MM:SS` that starts an entry of its own
/// (a date, a time and a `pNNN tNNN` pair after the process name).
fn split_entries(line: &str) -> Vec<&str> {
    let bytes = line.as_bytes();
    let mut cuts = vec![0];
    let mut i = 1;
    while i + 19 <= bytes.len() {
        if bytes[i - 1] == b' ' && is_stamp(&bytes[i..]) && parse_line(&line[i..]).is_some() {
            cuts.push(i);
            i += 19;
        } else {
            i += 1;
        }
    }
    cuts.push(line.len());
    cuts.windows(2)
        .map(|w| line[w[0]..w[1]].trim_end())
        .collect()
}

/// `YYYY/MM/DD HH:MM:SS` at the start of `b`.
fn is_stamp(b: &[u8]) -> bool {
    let digit = |k: usize| b.get(k).is_some_and(u8::is_ascii_digit);
    [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
        .iter()
        .all(|&k| digit(k))
        && b[4] == b'/'
        && b[7] == b'/'
        && b[10] == b' '
        && b[13] == b':'
        && b[16] == b':'
}

/// One line, with its time in milliseconds since the start of its day's epoch.
fn parse_line(line: &str) -> Option<(i64, Entry)> {
    let mut words = line.split_whitespace();
    let date = words.next()?;
    let time = words.next()?;
    let ms = timestamp_ms(date, time)?;
    let _process = words.next()?;
    let pid = words.next()?;
    let tid = words.next()?;
    if !pid.starts_with('p') || !tid.starts_with('t') {
        return None;
    }
    let level: u8 = words.next()?.parse().ok()?;
    let mut component = words.next()?;
    // An optional `file.cpp:123` before the component.
    if component.contains(".cpp:") || component.contains(".c:") || component.contains(".mm:") {
        component = words.next()?;
    }
    let message = words.collect::<Vec<_>>().join(" ");
    Some((
        ms,
        Entry {
            line: 0,
            time: format!("{date} {time}"),
            offset_ms: 0,
            unix_ms: 0,
            level,
            component: component.to_string(),
            message,
        },
    ))
}

/// `YYYY/MM/DD` and `HH:MM:SS.fff[fff]` to milliseconds since 1970 (UTC), with the
/// scenario clock's RFC 3339 parser.
fn timestamp_ms(date: &str, time: &str) -> Option<i64> {
    if date.len() != 10
        || date.as_bytes().get(4) != Some(&b'/')
        || date.as_bytes().get(7) != Some(&b'/')
    {
        return None;
    }
    crate::scenario::parse_clock(&format!("{}T{time}Z", date.replace('/', "-"))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_seed_shapes_with_and_without_source_lines() {
        let text = "\
2019/10/14 11:40:49.864 stAgentSvc p1244 t2980 2 nsHTTPClient.cpp:372 downloader curl_easy_perform failed, code 28, error Timeout was reached
2019/10/14 11:40:49.874 stAgentSvc p1244 t2980 4 nsDnsResolver.cpp:47 dnsResolver Hostname gateway-acme.goskope.com resolved by LDNS
2019/10/18 20:28:21.148 stAgentSvc pfbc t296c 4 tunnel.cpp:618 nsTunnel TLS [sessId 1] Tunneling flow from addr:
10.173.13.40:53256, process: chrome.exe to host: www.box.com, addr: 107.152.27.197:443
2018/10/10 13:17:58.272225 stAgentSvc pf280 t4807 4 bypassAppMgr.cpp:371 BypassAppMgr bypassing flow to
exception host: zoom.us, process: zoom.us
2019/10/14 11:40:49.874 stAgentSvc p1 t1 4 dnsResolver Hostname x resolved by EDNS";
        let entries = parse_log(text).unwrap();
        assert_eq!(entries.len(), 5);
        assert_eq!(entries[0].component, "downloader");
        assert_eq!(entries[1].offset_ms, 10);
        assert!(entries[2].message.ends_with("addr: 107.152.27.197:443"));
        assert_eq!(entries[3].component, "BypassAppMgr");
        assert!(entries[3].message.contains("exception host: zoom.us"));
        assert_eq!(entries[4].component, "dnsResolver");
    }

    #[test]
    fn entries_pasted_on_one_line_are_cut_apart() {
        let text = "2019/10/17 09:47:59.527 stAgentSvc p1334 t4c4c 4 tunnel.cpp:694 nsTunnel TLS Connecting to gateway-.goskope.com:443 2019/10/17 09:47:59.676 stAgentSvc p1334 t4c4c 4 restapi.cpp:80 restapi SSL resolve EDNS downloaded successfully";
        let entries = parse_log(text).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[0].message,
            "TLS Connecting to gateway-.goskope.com:443"
        );
        assert_eq!(entries[1].component, "restapi");
        assert_eq!(entries[1].offset_ms, 149);
        assert_eq!(entries[1].line, 1);
    }

    #[test]
    fn garbage_is_not_a_log() {
        assert!(parse_log("hello\nworld\n").is_err());
        assert!(parse_log("").is_err());
        assert!(parse_log("2019/13/14 11:40:49.871 stAgentSvc p1 t1 4 x y").is_err());
    }

    #[test]
    fn dates_convert_like_the_formatter() {
        let ms = timestamp_ms("2019/10/14", "11:40:49.871").unwrap();
        assert_eq!(
            super::super::format::format_timestamp(ms),
            "2019/10/14 11:40:49.871"
        );
    }
}

#[cfg(test)]
mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text is parsed or rejected, never a panic; every entry's line exists.
        #[test]
        fn never_panics(text in "(20[0-9]{2}/[0-1][0-9]/[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9]\\.[0-9]{1,6} stAgentSvc p[0-9a-f]{1,4} t[0-9a-f]{1,4} [0-9] [a-zA-Z.:0-9]{0,12} [ -~]{0,40}\n|[ -~]{0,30}\n){0,8}") {
            if let Ok(entries) = parse_log(&text) {
                let lines = text.lines().count();
                prop_assert!(entries.iter().all(|e| e.line >= 1 && e.line <= lines));
            }
        }
    }
}
