//! The meaning of log entries: the steps of PoP selection, the tunnel's life and flow
//! decisions, recognised from the real client's line shapes (which the simulated agent
//! also writes). A line with a known shape but no step of the story is [`Event::Other`];
//! a line of no known shape is [`Event::Unknown`], counted and shown by the readers.
//!
//! Two logs tell the same story when their steps ([`Event::meaning`]) line up in order
//! ([`first_divergence`]): a step the simulated agent writes but a real client may leave
//! out of its log at that verbosity (the `Connecting` line, the curl error before
//! `Failed to resolve`, the address line, the DTLS-to-TLS switch) may be skipped on the
//! simulated side; every other step must be there, in the same order.

use serde::Serialize;

use super::parse::Entry;

/// What one entry means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// `CTunnelMgr Starting client version 95.1.0 for tenant acme` (and other lines that
    /// name the client's version).
    Start { version: String, tenant: String },
    /// `nsTunnel TLS Connecting to gateway-acme.goskope.com:443`, optionally `through
    /// proxy IP:PORT`.
    Connecting {
        proto: String,
        host: String,
        proxy: Option<String>,
    },
    /// `downloader curl_easy_perform failed, code 28, ...`.
    DownloadFailed { code: String, error: String },
    /// `restapi Failed to get the PoP list from GSLB, Error: ...`.
    GslbFailed { reason: String },
    /// `restapi GSLB returned 3 PoP(s): nyc1, ord2, fra1`.
    GslbAnswered { pops: Vec<String> },
    /// `restapi post client rtt pop:ord2 ip:163.116.249.35 rtt:21`.
    RttProbe {
        pop: String,
        ip: String,
        rtt_ms: u32,
    },
    /// `dnsResolver Failed to resolve H by EDNS`.
    ResolveFailed { method: String, host: String },
    /// `dnsResolver Hostname H resolved by LDNS`.
    Resolved { method: String, host: String },
    /// `dnsResolver LDNS query for H to 10.0.0.53:53 timed out (try 1 of 3)`.
    LdnsTimeout { host: String },
    /// `nsssl TLS remote host H resolved to IP, port 443`.
    RemoteHost {
        proto: String,
        host: String,
        ip: String,
    },
    /// `nsTunnel TLS SSL connected to the server: H:443 successfully` (or the gslbgw form,
    /// which names the address too).
    Connected {
        proto: String,
        host: String,
        ip: Option<String>,
    },
    /// `nsssl TLS handshake with H failed: REASON`, `certificate verify failed, issuer: ...`.
    HandshakeFailed {
        proto: String,
        host: String,
        reason: String,
    },
    /// `nsssl DTLS failed to connect to H:443, err: ...`, `DTLS handshake timed out with H`.
    ConnectFailed {
        proto: String,
        host: String,
        reason: String,
    },
    /// `nsTunnel TLS Trying the next PoP: H`.
    NextPop { host: String },
    /// `Failing over to backup gateway H`.
    Failover { host: String },
    /// `DTLS to H failed, falling back to TLS`.
    FallbackToTls,
    /// `Unable to connect to PRIMARY or BACKUP`.
    GaveUp,
    /// `Tunnel disconnected: ...`.
    Disconnected { reason: String },
    /// `Config System proxy configuration Detected , ..., Proxy IP:PORT` (or Not Detected).
    ProxyDetected {
        proxy: Option<String>,
        pac: Option<String>,
    },
    /// `CTunnelMgr Captive Portal Detected: ...`.
    CaptivePortal,
    /// `Config Failed to download client configuration from H: ...`.
    ConfigFailed { reason: String },
    /// `Tunneling flow from addr: ..., process: P to host: H, addr: A`.
    FlowTunneled {
        process: String,
        host: String,
        addr: String,
    },
    /// `BypassAppMgr bypassing flow to exception host: H, process: P` and the other
    /// bypass shapes (pinned app, private address, IP exception).
    FlowBypassed {
        process: String,
        host: String,
        addr: String,
        why: String,
    },
    /// `Not tunneling flow from process: P to host: H, addr: A: REASON`.
    FlowDirect {
        process: String,
        host: String,
        addr: String,
        reason: String,
    },
    /// `Dropping flow from process: P to host: H, addr: A: REASON` and the pinned-app
    /// block.
    FlowDropped {
        process: String,
        host: String,
        addr: String,
        reason: String,
    },
    /// `nsTunnel TLS [sessId 1] Gateway refused flow 3: blocked by policy: ...`.
    FlowRefused { reason: String },
    /// `Config Failed to download PAC file URL: REASON`.
    PacFailed { reason: String },
    /// `Config Downloaded client configuration "NAME" version N`.
    ConfigDownloaded,
    /// `Config Applied configuration version N: steering mode FROM -> TO, ...`: a pulled
    /// configuration changed the steering mode.
    ModeChanged { from: String, to: String },
    /// `CTunnelMgr Network change detected, reconnecting`.
    NetworkChanged,
    /// A known line that is no step of the story (status lines, configuration, details).
    Other,
    /// A line of no known shape.
    Unknown,
}

impl Event {
    /// A short text of what happened, without times or addresses: what comparisons match.
    pub fn meaning(&self) -> Option<String> {
        Some(match self {
            Event::Connecting { proto, proxy, .. } => match proxy {
                Some(_) => format!("connecting over {proto} through a proxy"),
                None => format!("connecting over {proto}"),
            },
            Event::DownloadFailed { code, .. } => format!("DoH download failed (curl {code})"),
            Event::GslbFailed { .. } => "GSLB request failed".to_string(),
            Event::ResolveFailed { method, .. } => format!("failed to resolve by {method}"),
            Event::Resolved { method, .. } => format!("resolved by {method}"),
            Event::RemoteHost { proto, .. } => format!("{proto} remote host resolved"),
            Event::Connected { proto, .. } => format!("{proto} tunnel connected"),
            Event::HandshakeFailed { proto, .. } => format!("{proto} handshake failed"),
            Event::ConnectFailed { proto, .. } => format!("{proto} connect failed"),
            Event::NextPop { .. } => "trying the next PoP".to_string(),
            Event::Failover { .. } => "failover to backup".to_string(),
            Event::FallbackToTls => "DTLS falls back to TLS".to_string(),
            Event::GaveUp => "both gateways unreachable".to_string(),
            Event::Disconnected { .. } => "tunnel disconnected".to_string(),
            Event::CaptivePortal => "captive portal detected".to_string(),
            Event::ConfigFailed { .. } => "configuration download failed".to_string(),
            Event::FlowTunneled { host, .. } => format!("flow to {host} tunneled"),
            Event::FlowBypassed { host, .. } => format!("flow to {host} bypassed"),
            Event::FlowDirect { host, .. } => format!("flow to {host} direct"),
            Event::FlowDropped { host, .. } => format!("flow to {host} blocked"),
            Event::FlowRefused { .. } => "gateway refused a flow".to_string(),
            Event::Start { .. }
            | Event::GslbAnswered { .. }
            | Event::RttProbe { .. }
            | Event::LdnsTimeout { .. }
            | Event::ProxyDetected { .. }
            | Event::PacFailed { .. }
            | Event::ConfigDownloaded
            | Event::ModeChanged { .. }
            | Event::NetworkChanged
            | Event::Other
            | Event::Unknown => return None,
        })
    }

    /// A step the simulated agent writes that a real client's log may not show at every
    /// verbosity: a comparison may pass over it on the simulated side.
    pub fn skippable(&self) -> bool {
        self.optional()
            || matches!(
                self,
                Event::Resolved { .. }
                    | Event::ConnectFailed { .. }
                    | Event::HandshakeFailed { .. }
            )
    }

    /// A detail step a customer's log may show that the simulated agent need not write
    /// (the curl error before a failed resolution, the address line...): a comparison
    /// passes over it, unexplained, when the run does not show it. A resolution, a
    /// failure to connect or a handshake failure the customer's log shows must be there.
    pub fn optional(&self) -> bool {
        matches!(
            self,
            Event::Connecting { proxy: None, .. }
                | Event::RemoteHost { .. }
                | Event::DownloadFailed { .. }
                | Event::GslbFailed { .. }
                | Event::ResolveFailed { .. }
                | Event::FallbackToTls
                | Event::NextPop { .. }
                | Event::GaveUp
        )
    }

    /// A flow decision (its verdict word), if this is one.
    pub fn verdict(&self) -> Option<&'static str> {
        Some(match self {
            Event::FlowTunneled { .. } => "tunneled",
            Event::FlowBypassed { .. } => "bypassed",
            Event::FlowDirect { .. } => "direct",
            Event::FlowDropped { .. } => "blocked",
            _ => return None,
        })
    }
}

/// What `entry` means.
pub fn classify(entry: &Entry) -> Event {
    classify_message(&entry.component, &entry.message)
}

/// What a message of `component` means.
pub fn classify_message(component: &str, m: &str) -> Event {
    let proto = || proto_of(m);
    match component {
        "nsTunnel" => tunnel_line(m, proto()),
        "nsssl" => ssl_line(m, proto()),
        "BypassAppMgr" => bypass_line(m),
        "ExceptiontMgr" | "ExceptionMgr" if m.contains("Exception List") => Event::FlowBypassed {
            process: String::new(),
            host: between(m, "IP ", " is").unwrap_or_default(),
            addr: between(m, "IP ", " is").unwrap_or_default(),
            why: "ip-exception".to_string(),
        },
        "downloader" if m.contains("curl_easy_perform failed") => Event::DownloadFailed {
            code: between(m, "code ", ",").unwrap_or_default(),
            error: after(m, "error ").unwrap_or("").trim().to_string(),
        },
        "restapi" => restapi_line(m),
        "dnsResolver" | "nsDnsResolver" => resolver_line(m),
        "Config" | "config" => config_line(m),
        "CTunnelMgr" | "nsClient" | "stAgentSvc" | "nsAgent" => manager_line(m),
        "nsDnsCache" | "tunnel_up" | "keylog" | "nsProxy" | "onPremDetection" => Event::Other,
        _ => Event::Unknown,
    }
}

fn proto_of(m: &str) -> String {
    match m.split_whitespace().next().unwrap_or("") {
        "DTLS" => "DTLS".to_string(),
        "TLS" => "TLS".to_string(),
        _ if m.contains("DTLS") => "DTLS".to_string(),
        _ => "TLS".to_string(),
    }
}

fn tunnel_line(m: &str, proto: String) -> Event {
    if m.contains("Tunneling flow") {
        return Event::FlowTunneled {
            process: field(m, "process: ", &[" to host", ","]),
            host: field(m, "to host: ", &[",", " "]),
            addr: last_addr(m),
        };
    }
    if m.contains("Not tunneling flow") {
        return Event::FlowDirect {
            process: field(m, "process: ", &[" to host", ","]),
            host: field(m, "to host: ", &[",", " "]),
            addr: field(m, "addr: ", &[": ", " "]),
            reason: after(m, "addr: ")
                .and_then(|rest| rest.split_once(": ").map(|(_, r)| r.trim().to_string()))
                .unwrap_or_default(),
        };
    }
    if m.contains("Dropping flow") || m.contains("Dropping connection") {
        return dropped(m);
    }
    if m.contains("Gateway refused flow") {
        return Event::FlowRefused {
            reason: after(m, "refused flow ")
                .and_then(|r| r.split_once(": ").map(|(_, r)| r.to_string()))
                .unwrap_or_default(),
        };
    }
    if let Some(rest) = after(m, "Connecting to ") {
        return Event::Connecting {
            proto,
            host: rest.split([':', ' ']).next().unwrap_or("").to_string(),
            proxy: after(m, "through proxy ").map(|p| word(p).to_string()),
        };
    }
    if m.contains("SSL connected to the") {
        let server = after(m, "server: ").unwrap_or("");
        return Event::Connected {
            proto,
            host: server
                .split([':', '(', ' '])
                .next()
                .unwrap_or("")
                .to_string(),
            ip: between(server, "(", ")"),
        };
    }
    if m.contains("Failing over to backup") {
        return Event::Failover {
            host: word(m.rsplit(' ').next().unwrap_or("")).to_string(),
        };
    }
    if m.contains("falling back to TLS") || m.contains("fallback to TLS") {
        return Event::FallbackToTls;
    }
    if m.contains("nsssl_connect failed") {
        return Event::ConnectFailed {
            proto,
            host: String::new(),
            reason: after(m, "err: ").unwrap_or("").trim().to_string(),
        };
    }
    if m.contains("handshake timed out") || m.contains("Handshake timed out") {
        return Event::ConnectFailed {
            proto,
            host: after(m, " with ").map(host_of).unwrap_or_default(),
            reason: "handshake timed out".to_string(),
        };
    }
    if m.contains("certificate verify failed") {
        return Event::HandshakeFailed {
            proto,
            host: String::new(),
            reason: m.to_string(),
        };
    }
    if m.contains("Tunnel disconnected") {
        return Event::Disconnected {
            reason: after(m, "disconnected: ").unwrap_or("").to_string(),
        };
    }
    if m.contains("Trying the next PoP") {
        return Event::NextPop {
            host: after(m, "PoP: ")
                .map(|h| word(h).to_string())
                .unwrap_or_default(),
        };
    }
    if m.contains("Unable to connect to") {
        return Event::GaveUp;
    }
    if m.contains("Tunnel status")
        || m.contains("Reconnecting in")
        || m.contains("SNI check")
        || m.contains("DTLS is not available")
        || m.contains("Client stopped")
    {
        return Event::Other;
    }
    Event::Unknown
}

fn ssl_line(m: &str, proto: String) -> Event {
    if m.contains("remote host") {
        return Event::RemoteHost {
            proto,
            host: between(m, "remote host ", " resolved").unwrap_or_default(),
            ip: field(m, "resolved to ", &[",", " "]),
        };
    }
    if m.contains("handshake with") && m.contains("failed") {
        return Event::HandshakeFailed {
            proto,
            host: after(m, "handshake with ").map(host_of).unwrap_or_default(),
            reason: after(m, "failed: ").unwrap_or("").to_string(),
        };
    }
    if m.contains("certificate verify failed") || m.contains("self signed certificate") {
        return Event::HandshakeFailed {
            proto,
            host: after(m, " with ").map(host_of).unwrap_or_default(),
            reason: m.to_string(),
        };
    }
    if m.contains("handshake timed out") || m.contains("Handshake timed out") {
        return Event::ConnectFailed {
            proto,
            host: after(m, " with ").map(host_of).unwrap_or_default(),
            reason: "handshake timed out".to_string(),
        };
    }
    if m.contains("failed to connect") || m.contains("Failed to connect") {
        return Event::ConnectFailed {
            proto,
            host: after(m, "connect to ").map(host_of).unwrap_or_default(),
            reason: after(m, "err: ").unwrap_or("").trim().to_string(),
        };
    }
    Event::Unknown
}

fn bypass_line(m: &str) -> Event {
    if m.contains("Dropping") {
        return dropped(m);
    }
    if m.contains("private ip") {
        let ip = field(m, "private ip: ", &[",", " "]);
        let port = field(m, "Port: ", &[",", " "]);
        let host = after(m, "host: ")
            .map(|h| word(h).to_string())
            .unwrap_or_else(|| ip.clone());
        return Event::FlowBypassed {
            process: field(m, "process: ", &[" to ", ","]),
            host,
            addr: format!("{ip}:{port}"),
            why: "private".to_string(),
        };
    }
    if m.contains("exception host") {
        return Event::FlowBypassed {
            process: field(m, "process: ", &[",", " "]),
            host: field(m, "exception host: ", &[",", " "]),
            addr: dest_addr(m),
            why: "exception".to_string(),
        };
    }
    if m.contains("Bypassing connection") || m.to_lowercase().contains("bypassing") {
        return Event::FlowBypassed {
            process: field(m, "process: ", &[",", " to "]),
            host: field(m, "host: ", &[",", " "]),
            addr: dest_addr(m),
            why: "pinned".to_string(),
        };
    }
    Event::Unknown
}

fn dropped(m: &str) -> Event {
    let pinned = m.contains("Dropping connection");
    Event::FlowDropped {
        process: field(m, "process: ", &[" to host", ",", " to "]),
        host: field(m, "host: ", &[",", " "]),
        addr: if pinned {
            dest_addr(m)
        } else {
            field(m, "addr: ", &[": ", " "])
        },
        reason: if pinned {
            "pinned app blocked".to_string()
        } else {
            after(m, "addr: ")
                .and_then(|rest| rest.split_once(": ").map(|(_, r)| r.trim().to_string()))
                .unwrap_or_default()
        },
    }
}

fn restapi_line(m: &str) -> Event {
    if m.contains("Failed to get the PoP list") || m.contains("GSLB") && m.contains("Failed") {
        return Event::GslbFailed {
            reason: after(m, "Error: ").unwrap_or("").to_string(),
        };
    }
    if let Some(rest) = after(m, "PoP(s): ") {
        return Event::GslbAnswered {
            pops: rest
                .split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect(),
        };
    }
    if m.contains("post client rtt") {
        return Event::RttProbe {
            pop: field(m, "pop:", &[" "]),
            ip: field(m, "ip:", &[" "]),
            rtt_ms: field(m, "rtt:", &[" ", "m"]).parse().unwrap_or(0),
        };
    }
    if m.contains("SSL resolve EDNS") || m.contains("Requesting the PoP list") {
        return Event::Other;
    }
    Event::Unknown
}

fn resolver_line(m: &str) -> Event {
    if m.starts_with("Failed to resolve") {
        return Event::ResolveFailed {
            method: word(m.rsplit(' ').next().unwrap_or("")).to_string(),
            host: between(m, "resolve ", " by").unwrap_or_default(),
        };
    }
    if m.contains(" resolved by ") {
        return Event::Resolved {
            method: word(m.rsplit(' ').next().unwrap_or("")).to_string(),
            host: between(m, "Hostname ", " resolved").unwrap_or_default(),
        };
    }
    if m.starts_with("LDNS query for") && m.contains("timed out") {
        return Event::LdnsTimeout {
            host: between(m, "query for ", " to").unwrap_or_default(),
        };
    }
    if m.starts_with("EDNS answer")
        || m.starts_with("LDNS answer")
        || m.starts_with("ignored a DNS answer")
    {
        return Event::Other;
    }
    Event::Unknown
}

fn config_line(m: &str) -> Event {
    if m.contains("System proxy configuration") {
        let detected = !m.contains("Not Detected");
        return Event::ProxyDetected {
            proxy: if detected {
                after(m, "Proxy ").map(|p| word(p).to_string())
            } else {
                None
            },
            pac: after(m, "Pac Server Host ")
                .map(|p| word(p).to_string())
                .filter(|p| p != "N/A"),
        };
    }
    if m.contains("Failed to download client configuration") {
        return Event::ConfigFailed {
            reason: after(m, ": ").unwrap_or("").to_string(),
        };
    }
    if m.starts_with("Failed to download PAC file") {
        return Event::PacFailed {
            reason: after(m, ": ").unwrap_or("").to_string(),
        };
    }
    if m.starts_with("Downloaded client configuration") {
        return Event::ConfigDownloaded;
    }
    if let Some(change) = mode_change(m) {
        return change;
    }
    if m.contains("PAC")
        || m.contains("configuration")
        || m.contains("Device classification")
        || m.contains("Applied")
    {
        return Event::Other;
    }
    Event::Unknown
}

/// `Applied configuration version N: steering mode FROM -> TO, ...` as a mode change.
fn mode_change(m: &str) -> Option<Event> {
    if !m.starts_with("Applied configuration") {
        return None;
    }
    let (from, rest) = after(m, "steering mode ")?.split_once(" -> ")?;
    let (from, to) = (word(from), word(rest));
    (!from.is_empty() && !to.is_empty() && from != to).then(|| Event::ModeChanged {
        from: from.to_string(),
        to: to.to_string(),
    })
}

fn manager_line(m: &str) -> Event {
    if m.contains("Captive Portal Detected") {
        return Event::CaptivePortal;
    }
    if let Some(version) = client_version(m) {
        return Event::Start {
            version,
            tenant: after(m, "tenant ")
                .map(|t| word(t).to_string())
                .unwrap_or_default(),
        };
    }
    if m.contains("Network change detected") {
        return Event::NetworkChanged;
    }
    if m.contains("Captive portal cleared")
        || m.contains("Client location")
        || m.contains("Network change")
        || m.contains("Client stopped")
    {
        return Event::Other;
    }
    Event::Unknown
}

/// The client's version a line names (`Starting client version 95.1.0`, `Client version:
/// 123.0.0`), if it names one.
pub fn client_version(m: &str) -> Option<String> {
    let lower = m.to_ascii_lowercase();
    let at = lower.find("version")?;
    if !lower[..at].contains("client") || lower.contains("configuration") {
        return None;
    }
    let rest = m[at + "version".len()..].trim_start_matches([':', ' ', '=']);
    let v = word(rest);
    let ok = v.split('.').count() >= 2 && v.split('.').all(|p| p.parse::<u32>().is_ok());
    ok.then(|| v.to_string())
}

/// `host` from `host:443`, `host(1.2.3.4:443)` or `host, ...`.
fn host_of(text: &str) -> String {
    text.split([':', '(', ',', ' '])
        .next()
        .unwrap_or("")
        .to_string()
}

/// The word at the start of `text`, without trailing punctuation.
fn word(text: &str) -> &str {
    text.split_whitespace()
        .next()
        .unwrap_or("")
        .trim_end_matches([',', ';', '.'])
}

/// The text after `start` up to the first of `ends` (trimmed).
fn field(m: &str, start: &str, ends: &[&str]) -> String {
    let Some(rest) = after(m, start) else {
        return String::new();
    };
    let rest = rest.trim_start();
    let cut = ends
        .iter()
        .filter_map(|e| rest.find(e))
        .min()
        .unwrap_or(rest.len());
    rest[..cut].trim().to_string()
}

/// The last `addr: IP:PORT` of a flow line (the destination).
fn last_addr(m: &str) -> String {
    match m.rfind("addr:") {
        Some(i) => word(m[i + "addr:".len()..].trim_start()).to_string(),
        None => String::new(),
    }
}

/// `Dest IP: I, Dest Port: N` as `I:N`, or empty.
fn dest_addr(m: &str) -> String {
    let ip = field(m, "Dest IP: ", &[",", " "]);
    let port = field(m, "Dest Port: ", &[",", " "]);
    match (ip.is_empty(), port.is_empty()) {
        (false, false) => format!("{ip}:{port}"),
        (false, true) => ip,
        _ => String::new(),
    }
}

fn after<'a>(text: &'a str, start: &str) -> Option<&'a str> {
    text.find(start).map(|i| &text[i + start.len()..])
}

fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let rest = after(text, start)?;
    Some(rest.split(end).next().unwrap_or(rest).trim().to_string())
}

/// One step of a story: the entry's line number, its meaning, whether the simulated side
/// may pass over it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Index of the entry in the log's entries.
    pub index: usize,
    /// 1-based line of the entry.
    pub line: usize,
    /// [`Event::meaning`].
    pub meaning: String,
    /// [`Event::skippable`]: the simulated side may pass over it.
    pub skippable: bool,
    /// [`Event::optional`]: the customer's side may pass over it.
    pub optional: bool,
    /// A PoP-selection step (the story's opening).
    pub opening: bool,
}

/// The steps of a log, consecutive repeats folded into one (a client that logs a failure
/// twice tells the same story as one that logs it once).
pub fn story(entries: &[Entry]) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let event = classify(entry);
        let Some(meaning) = event.meaning() else {
            continue;
        };
        if steps.last().is_some_and(|s| s.meaning == meaning) {
            continue;
        }
        steps.push(Step {
            index,
            line: entry.line,
            meaning,
            skippable: event.skippable(),
            optional: event.optional(),
            opening: matches!(
                event,
                Event::Connecting { .. }
                    | Event::DownloadFailed { .. }
                    | Event::GslbFailed { .. }
                    | Event::ResolveFailed { .. }
                    | Event::Resolved { .. }
                    | Event::RemoteHost { .. }
            ),
        });
    }
    steps
}

/// The first place two stories differ in meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// Index in the left (customer's) steps.
    pub index: usize,
    /// The left side (line number and meaning), `None` past its end.
    pub left: Option<(usize, String)>,
    /// The right side.
    pub right: Option<(usize, String)>,
}

/// How the customer's steps line up with the simulated ones: for each customer step, the
/// index of the simulated step it matched, until the first divergence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alignment {
    /// `(customer step, simulated step)` pairs, in order.
    pub matched: Vec<(usize, usize)>,
    /// Where they part, if they do.
    pub divergence: Option<Divergence>,
}

/// Aligns `left` (the customer's story) with `right` (a simulated run's): each left step
/// must appear on the right in order, with only skippable right steps between (a
/// skippable left step the right does not show is passed over, unexplained); after the
/// left ends, only skippable right steps may follow. A left story that opens mid-session
/// (its first step is no PoP-selection step, as in a rotated file) may start anywhere.
pub fn align(left: &[Step], right: &[Step]) -> Alignment {
    let mut matched = Vec::new();
    let mut j = 0;
    let mid_session = left.first().is_some_and(|s| !s.opening);
    for (i, step) in left.iter().enumerate() {
        let free = i == 0 && mid_session;
        let mut k = j;
        let found = loop {
            match right.get(k) {
                Some(r) if r.meaning == step.meaning => break Some(k),
                Some(r) if r.skippable || free => k += 1,
                _ => break None,
            }
        };
        match found {
            Some(k) => {
                matched.push((i, k));
                j = k + 1;
            }
            // A detail step of the customer's that the run does not write (its client
            // logs more at this verbosity) is passed over, unexplained.
            None if step.optional => {}
            None => {
                // Show the run's step of the same kind (its resolution for a
                // resolution...), else the one that stopped the search.
                let kind = |m: &str| m.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
                let rest = right.get(j..).unwrap_or_default();
                let stop = rest.iter().position(|r| !r.skippable).unwrap_or(rest.len());
                let shown = rest
                    .iter()
                    .take(stop + 1)
                    .find(|r| kind(&r.meaning) == kind(&step.meaning))
                    .or(rest.get(stop))
                    .or(rest.first());
                return Alignment {
                    matched,
                    divergence: Some(Divergence {
                        index: i,
                        left: Some((step.line, step.meaning.clone())),
                        right: shown.map(|r| (r.line, r.meaning.clone())),
                    }),
                };
            }
        }
    }
    let divergence = right[j..]
        .iter()
        .find(|r| !r.skippable)
        .map(|r| Divergence {
            index: left.len(),
            left: None,
            right: Some((r.line, r.meaning.clone())),
        });
    Alignment {
        matched,
        divergence,
    }
}

/// Compares two logs on meaning; `None` when they tell the same story (see [`align`]).
pub fn first_divergence(left: &[Entry], right: &[Entry]) -> Option<Divergence> {
    align(&story(left), &story(right)).divergence
}

/// How many of `left`'s steps a run's steps reproduce in order (the longest common
/// subsequence of meanings): a score that keeps counting past a divergence.
pub fn explained(left: &[Step], right: &[Step]) -> usize {
    let m = right.len();
    let mut prev = vec![0usize; m + 1];
    let mut cur = vec![0usize; m + 1];
    for l in left {
        for (k, r) in right.iter().enumerate() {
            cur[k + 1] = if l.meaning == r.meaning {
                prev[k] + 1
            } else {
                prev[k + 1].max(cur[k])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[m]
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse_log;
    use super::*;

    #[test]
    fn an_applied_configuration_tells_a_mode_change_only_when_there_is_one() {
        let log = "\
2019/10/14 11:40:40.025 stAgentSvc p1 t1 4 Config Applied configuration version 1: 2 managed domain(s), 0 exception(s), 0 bypass app(s)
2019/10/14 11:41:40.050 stAgentSvc p1 t1 4 Config Applied configuration version 3: steering mode cloud-apps -> all, 2 managed domain(s), 0 exception(s), 0 bypass app(s)
2019/10/14 11:41:40.050 stAgentSvc p1 t1 4 Config Applied configuration version 4: steering mode web -> web, 2 managed domain(s)
2019/10/14 11:41:40.050 stAgentSvc p1 t1 4 Config Applied configuration version 5: steering mode -> ";
        let events: Vec<Event> = parse_log(log).unwrap().iter().map(classify).collect();
        assert_eq!(events[0], Event::Other);
        assert_eq!(
            events[1],
            Event::ModeChanged {
                from: "cloud-apps".into(),
                to: "all".into()
            }
        );
        assert_eq!(events[2], Event::Other);
        assert_eq!(events[3], Event::Other);
    }

    #[test]
    fn seed_lines_mean_what_they_say() {
        let log = "\
2019/10/14 11:40:49.864 stAgentSvc p1244 t2980 2 nsHTTPClient.cpp:372 downloader curl_easy_perform failed, code 28, error Timeout was reached
2019/10/14 11:40:49.871 stAgentSvc p1244 t2980 2 nsDnsResolver.cpp:204 dnsResolver Failed to resolve gateway-acme.goskope.com by EDNS
2019/10/14 11:40:49.874 stAgentSvc p1244 t2980 4 nsDnsResolver.cpp:47 dnsResolver Hostname gateway-acme.goskope.com resolved by LDNS
2019/10/14 11:40:49.875 stAgentSvc p1244 t2980 4 nsssl.cpp:1217 nsssl DTLS remote host gateway-acme.goskope.com resolved to 8.36.116.35, port 443
2018/10/10 13:17:58.272225 stAgentSvc pf280 t4807 4 bypassAppMgr.cpp:371 BypassAppMgr bypassing flow to exception host: zoom.us, process: zoom.us";
        let events: Vec<Event> = parse_log(log).unwrap().iter().map(classify).collect();
        assert_eq!(
            events[0],
            Event::DownloadFailed {
                code: "28".into(),
                error: "Timeout was reached".into()
            }
        );
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
                host: "zoom.us".into(),
                addr: String::new(),
                why: "exception".into()
            }
        );
    }

    #[test]
    fn flow_lines_name_the_process_alone() {
        let e = classify_message(
            "nsTunnel",
            "Dropping flow from process: chrome.exe to host: www.box.com, addr: 107.152.27.197:443: tunnel down, fail close",
        );
        assert_eq!(
            e,
            Event::FlowDropped {
                process: "chrome.exe".into(),
                host: "www.box.com".into(),
                addr: "107.152.27.197:443".into(),
                reason: "tunnel down, fail close".into()
            }
        );
        let e = classify_message(
            "BypassAppMgr",
            "Bypassing flow from process: chrome.exe to private ip: 10.1.2.3, Port: 443, host: 10.1.2.3",
        );
        assert_eq!(e.verdict(), Some("bypassed"));
        assert!(
            matches!(e, Event::FlowBypassed { ref process, ref addr, .. } if process == "chrome.exe" && addr == "10.1.2.3:443")
        );
        let e = classify_message(
            "nsTunnel",
            "TLS [sessId 1] Tunneling flow from addr: 192.168.13.40:49614, process: chrome.exe to host: www.box.com,addr: 10.10.10.11:8080",
        );
        assert!(
            matches!(e, Event::FlowTunneled { ref process, ref host, ref addr } if process == "chrome.exe" && host == "www.box.com" && addr == "10.10.10.11:8080")
        );
        let e = classify_message(
            "nsssl",
            "DTLS handshake timed out with gateway-acme.goskope.com",
        );
        assert_eq!(e.meaning().as_deref(), Some("DTLS connect failed"));
        assert_eq!(
            client_version("Starting client version 123.0.0 for tenant acme").as_deref(),
            Some("123.0.0")
        );
        assert_eq!(classify_message("nsTunnel", "gibberish"), Event::Unknown);
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

    #[test]
    fn the_simulated_side_may_pass_over_detail_steps_only() {
        let customer = parse_log("\
2019/10/14 11:40:49.874 stAgentSvc p1 t1 4 dnsResolver Hostname g resolved by LDNS
2019/10/14 11:40:50.000 stAgentSvc p1 t1 4 nsTunnel TLS SSL connected to the server: g:443 successfully").unwrap();
        let sim = parse_log("\
2019/10/14 11:40:49.000 stAgentSvc p1 t1 4 nsTunnel TLS Connecting to g:443
2019/10/14 11:40:49.874 stAgentSvc p1 t1 4 dnsResolver Hostname g resolved by LDNS
2019/10/14 11:40:49.875 stAgentSvc p1 t1 4 nsssl TLS remote host g resolved to 1.2.3.4, port 443
2019/10/14 11:40:50.000 stAgentSvc p1 t1 4 nsTunnel TLS SSL connected to the server: g:443 successfully").unwrap();
        assert_eq!(first_divergence(&customer, &sim), None);
        // A failover is a step of its own: it cannot be passed over.
        let failover = parse_log("\
2019/10/14 11:40:49.874 stAgentSvc p1 t1 4 dnsResolver Hostname g resolved by LDNS
2019/10/14 11:40:49.900 stAgentSvc p1 t1 3 nsTunnel TLS Failing over to backup gateway b
2019/10/14 11:40:50.000 stAgentSvc p1 t1 4 nsTunnel TLS SSL connected to the server: b:443 successfully").unwrap();
        let d = first_divergence(&customer, &failover).unwrap();
        assert_eq!(d.index, 1);
        assert_eq!(d.right.unwrap().1, "failover to backup");
        let (l, r) = (story(&customer), story(&failover));
        assert_eq!(explained(&l, &r), 2);
    }
}
