//! Rendering nsdebuglog lines.

use time::OffsetDateTime;

/// The process name every agent line carries.
pub const PROCESS: &str = "stAgentSvc";

/// `YYYY/MM/DD HH:MM:SS.mmm` for a Unix time in milliseconds (UTC).
pub fn format_timestamp(unix_ms: i64) -> String {
    let nanos = i128::from(unix_ms) * 1_000_000;
    let t = OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02}.{:03}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// One full line: timestamp, process, pid, thread, level, component, message.
///
/// `pid` tells the agents of a multi-endpoint world apart (`p1` for the first endpoint,
/// `p2` for the second...); a lone agent is `p1`.
pub fn format_line(unix_ms: i64, pid: u32, level: u8, component: &str, text: &str) -> String {
    format!(
        "{} {PROCESS} p{pid} t1 {level} {component} {text}",
        format_timestamp(unix_ms)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_seed_shape() {
        // 2019-10-14T11:40:49.871Z
        let ms = 1_571_053_249_871;
        assert_eq!(
            format_line(
                ms,
                1,
                2,
                "dnsResolver",
                "Failed to resolve gateway-acme.goskope.com by EDNS"
            ),
            "2019/10/14 11:40:49.871 stAgentSvc p1 t1 2 dnsResolver Failed to resolve gateway-acme.goskope.com by EDNS"
        );
    }
}
