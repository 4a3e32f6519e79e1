//! The meaning of log entries: the steps of PoP selection, the tunnel's life and flow
//! decisions, recognised from the real client's line shapes (which the simulated agent
//! also writes). Anything else is kept as [`Event::Other`] and ignored by comparisons.

use serde::Serialize;

use super::parse::Entry;

/// What one entry means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// `nsTunnel TLS Connecting to gateway-acme.goskope.com:443`.
    Connecting { proto: String, host: String },
    /// `downloader curl_easy_perform failed, code 28, ...`.
    DownloadFailed { code: String },
    /// `dnsResolver Failed to resolve H by EDNS`.
    ResolveFailed { method: String, host: String },
    /// `dnsResolver Hostname H resolved by LDNS`.
    Resolved { method: String, host: String },
    /// `nsssl TLS remote host H resolved to IP, port 443`.
    RemoteHost {
        proto: String,
        host: String,
        ip: String,
    },
    /// `nsTunnel TLS SSL connected to the server: H:443 successfully` (or the gslbgw form).
    Connected { proto: String, host: String },
    /// `nsssl TLS handshake with H failed: REASON`.
    HandshakeFailed { proto: String, reason: String },
    /// `nsssl DTLS failed to connect to H:443, err: ...`.
    ConnectFailed { proto: String },
    /// `Failing over to backup gateway H`.
    Failover { host: String },
    /// `DTLS to H failed, falling back to TLS`.
    FallbackToTls,
    /// `Tunnel disconnected: ...`.
    Disconnected,
    /// `Tunneling flow from addr: ..., process: P to host: H, addr: ...`.
    FlowTunneled { process: String, host: String },
    /// `BypassAppMgr bypassing flow to exception host: H, process: P` and the other
    /// bypass shapes.
    FlowBypassed { process: String, host: String },
    /// `Dropping ...` flow lines.
    FlowDropped { process: String, host: String },
    /// Anything else.
    Other,
}

impl Event {
    /// A short text of what happened, without times or addresses: what comparisons match.
    pub fn meaning(&self) -> Option<String> {
        Some(match self {
            Event::Connecting { proto, .. } => format!("connecting over {proto}"),
            Event::DownloadFailed { code } => format!("DoH download failed (curl {code})"),
            Event::ResolveFailed { method, .. } => format!("failed to resolve by {method}"),
            Event::Resolved { method, .. } => format!("resolved by {method}"),
            Event::RemoteHost { proto, .. } => format!("{proto} remote host resolved"),
            Event::Connected { proto, .. } => format!("{proto} tunnel connected"),
            Event::HandshakeFailed { proto, .. } => format!("{proto} handshake failed"),
            Event::ConnectFailed { proto } => format!("{proto} connect failed"),
            Event::Failover { .. } => "failover to backup".to_string(),
            Event::FallbackToTls => "DTLS falls back to TLS".to_string(),
            Event::Disconnected => "tunnel disconnected".to_string(),
            Event::FlowTunneled { host, .. } => format!("flow to {host} tunneled"),
            Event::FlowBypassed { host, .. } => format!("flow to {host} bypassed"),
            Event::FlowDropped { host, .. } => format!("flow to {host} dropped"),
            Event::Other => return None,
        })
    }
}

/// What `entry` means.
pub fn classify(entry: &Entry) -> Event {
    let m = entry.message.as_str();
    let proto = || m.split_whitespace().next().unwrap_or("").to_string();
    match entry.component.as_str() {
        "nsTunnel" if m.contains(" Connecting to ") => Event::Connecting {
            proto: proto(),
            host: between(m, "Connecting to ", ":").unwrap_or_default(),
        },
        "nsTunnel" if m.contains("SSL connected to the") => Event::Connected {
            proto: proto(),
            host: after(m, "server: ")
                .map(|h| h.split([':', '(']).next().unwrap_or("").to_string())
                .unwrap_or_default(),
        },
        "nsTunnel" if m.contains("Failing over to backup") => Event::Failover {
            host: m.rsplit(' ').next().unwrap_or("").to_string(),
        },
        "nsTunnel" if m.contains("falling back to TLS") => Event::FallbackToTls,
        "nsTunnel" if m.contains("Tunnel disconnected") => Event::Disconnected,
        "nsTunnel" if m.contains("Tunneling flow") => Event::FlowTunneled {
            process: between(m, "process: ", " to host").unwrap_or_default(),
            host: between(m, "to host: ", ",").unwrap_or_default(),
        },
        "nsTunnel" | "BypassAppMgr" if m.contains("Dropping") => Event::FlowDropped {
            process: between(m, "process: ", ",")
                .or_else(|| between(m, "process: ", " to"))
                .unwrap_or_default(),
            host: between(m, "host: ", ",")
                .or_else(|| after(m, "host: ").map(str::to_string))
                .unwrap_or_default(),
        },
        "BypassAppMgr" => Event::FlowBypassed {
            process: between(m, "process: ", ",")
                .or_else(|| after(m, "process: ").map(str::to_string))
                .unwrap_or_default(),
            host: between(m, "host: ", ",")
                .or_else(|| after(m, "host: ").map(str::to_string))
                .unwrap_or_default(),
        },
        "downloader" if m.contains("curl_easy_perform failed") => Event::DownloadFailed {
            code: between(m, "code ", ",").unwrap_or_default(),
        },
        "dnsResolver" if m.starts_with("Failed to resolve") => Event::ResolveFailed {
            method: m.rsplit(' ').next().unwrap_or("").to_string(),
            host: between(m, "resolve ", " by").unwrap_or_default(),
        },
        "dnsResolver" if m.contains(" resolved by ") => Event::Resolved {
            method: m.rsplit(' ').next().unwrap_or("").to_string(),
            host: between(m, "Hostname ", " resolved").unwrap_or_default(),
        },
        "nsssl" if m.contains("remote host") => Event::RemoteHost {
            proto: proto(),
            host: between(m, "remote host ", " resolved").unwrap_or_default(),
            ip: between(m, "resolved to ", ",").unwrap_or_default(),
        },
        "nsssl" if m.contains("handshake with") => Event::HandshakeFailed {
            proto: proto(),
            reason: after(m, "failed: ").unwrap_or("").to_string(),
        },
        "nsssl" if m.contains("failed to connect") => Event::ConnectFailed { proto: proto() },
        _ => Event::Other,
    }
}

fn after<'a>(text: &'a str, start: &str) -> Option<&'a str> {
    text.find(start).map(|i| &text[i + start.len()..])
}

fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let rest = after(text, start)?;
    Some(rest.split(end).next().unwrap_or(rest).trim().to_string())
}

/// The first place two event sequences differ in meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// Index in the meaningful events.
    pub index: usize,
    /// The left side (line number and meaning), `None` past its end.
    pub left: Option<(usize, String)>,
    /// The right side.
    pub right: Option<(usize, String)>,
}

/// Compares two logs on meaning; `None` when they tell the same story.
pub fn first_divergence(left: &[Entry], right: &[Entry]) -> Option<Divergence> {
    let story = |entries: &[Entry]| -> Vec<(usize, String)> {
        entries
            .iter()
            .filter_map(|e| classify(e).meaning().map(|m| (e.line, m)))
            .collect()
    };
    let (l, r) = (story(left), story(right));
    (0..l.len().max(r.len()))
        .find(|&i| l.get(i).map(|x| &x.1) != r.get(i).map(|x| &x.1))
        .map(|index| Divergence {
            index,
            left: l.get(index).cloned(),
            right: r.get(index).cloned(),
        })
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse_log;
    use super::*;

    #[test]
    fn seed_lines_mean_what_they_say() {
        let log = "\
2019/10/14 11:40:49.864 stAgentSvc p1244 t2980 2 nsHTTPClient.cpp:372 downloader curl_easy_perform failed, code 28, error Timeout was reached
2019/10/14 11:40:49.871 stAgentSvc p1244 t2980 2 nsDnsResolver.cpp:204 dnsResolver Failed to resolve gateway-acme.goskope.com by EDNS
2019/10/14 11:40:49.874 stAgentSvc p1244 t2980 4 nsDnsResolver.cpp:47 dnsResolver Hostname gateway-acme.goskope.com resolved by LDNS
2019/10/14 11:40:49.875 stAgentSvc p1244 t2980 4 nsssl.cpp:1217 nsssl DTLS remote host gateway-acme.goskope.com resolved to 8.36.116.35, port 443
2018/10/10 13:17:58.272225 stAgentSvc pf280 t4807 4 bypassAppMgr.cpp:371 BypassAppMgr bypassing flow to exception host: zoom.us, process: zoom.us";
        let events: Vec<Event> = parse_log(log).unwrap().iter().map(classify).collect();
        assert_eq!(events[0], Event::DownloadFailed { code: "28".into() });
        assert_eq!(
            events[2],
            Event::Resolved {
                method: "LDNS".into(),
                host: "gateway-acme.goskope.com".into()
            }
        );
        assert_eq!(
            events[3],
            Event::RemoteHost {
                proto: "DTLS".into(),
                host: "gateway-acme.goskope.com".into(),
                ip: "8.36.116.35".into()
            }
        );
        assert_eq!(
            events[4],
            Event::FlowBypassed {
                process: "zoom.us".into(),
                host: "zoom.us".into()
            }
        );
    }

    #[test]
    fn divergence_ignores_times_and_addresses() {
        let a = parse_log("2019/10/14 11:40:49.874 stAgentSvc p1 t1 4 dnsResolver Hostname g resolved by LDNS\n2019/10/14 11:40:50.000 stAgentSvc p1 t1 4 nsssl TLS remote host g resolved to 1.2.3.4, port 443").unwrap();
        let b = parse_log("2020/01/01 00:00:00.000 stAgentSvc p9 t9 4 dnsResolver Hostname g resolved by LDNS\n2020/01/01 00:00:01.000 stAgentSvc p9 t9 4 nsssl TLS remote host g resolved to 5.6.7.8, port 443").unwrap();
        assert_eq!(first_divergence(&a, &b), None);
        let c = parse_log(
            "2020/01/01 00:00:00.000 stAgentSvc p9 t9 4 dnsResolver Hostname g resolved by EDNS",
        )
        .unwrap();
        let d = first_divergence(&a, &c).unwrap();
        assert_eq!(d.index, 0);
        assert_eq!(d.right.unwrap().1, "resolved by EDNS");
    }
}
