//! The facts of the evidence: one pass over the log's events (and the captures'
//! packets) that says how the client resolved its gateway, which tunnel it ended on,
//! whether it failed over, which proxy it met, every app flow with its verdict, and the
//! failures on the way, each with the log line that shows it.

use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use super::evidence::Evidence;
use crate::logs::events::{Event, classify};

/// One app flow of the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flow {
    /// The process name.
    pub process: String,
    /// The destination host (a name, or an address).
    pub host: String,
    /// The destination `ip:port` the client logged (a proxy's, for an intercepted
    /// CONNECT).
    pub addr: String,
    /// `tunneled` | `bypassed` | `direct` | `blocked`.
    pub verdict: String,
    /// Why, as the log says (`not a managed domain`, `tunnel down, fail close`...).
    #[serde(skip)]
    pub reason: String,
    /// The kind of bypass or block (`exception`, `pinned`, `private`, `policy`...).
    #[serde(skip)]
    pub why: String,
    /// Milliseconds from the evidence's first entry.
    #[serde(skip)]
    pub offset_ms: i64,
    /// Index of its entry.
    #[serde(skip)]
    pub entry: usize,
}

/// A failure seen on the way, with the entry that shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// Index of the entry (or of the first packet, for a capture: `usize::MAX`).
    pub entry: usize,
    /// What it says.
    pub text: String,
}

/// What the evidence shows.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The client's version, when a line names it.
    pub version: Option<String>,
    /// The tenant, from the gateway's name or the start line.
    pub tenant: Option<String>,
    /// `eu` | `de` | `au` from a regional gateway name.
    pub region: Option<String>,
    /// The protocol of the first tunnel attempt (`DTLS` | `TLS`).
    pub first_proto: Option<String>,
    /// GSLB lines appear (the client is GSLB-capable and asked).
    pub gslb_asked: bool,
    /// Why GSLB failed, each time.
    pub gslb_failures: Vec<Seen>,
    /// The PoPs GSLB listed, in its order.
    pub gslb_pops: Vec<String>,
    /// RTT probes: (pop, ip, rtt ms).
    pub rtt_probes: Vec<(String, String, u32)>,
    /// DoH failures: (curl code, error).
    pub doh_failures: Vec<(Seen, String)>,
    /// DoH (EDNS) succeeded at some point.
    pub doh_worked: bool,
    /// LDNS failures (timeouts and failed resolutions).
    pub ldns_failures: Vec<Seen>,
    /// LDNS answered at some point.
    pub ldns_worked: bool,
    /// How the gateway the tunnel ended on was resolved (or the last resolution).
    pub resolved_by: Option<String>,
    /// The primary gateway's host name.
    pub primary_host: Option<String>,
    /// The primary's address the client resolved.
    pub gateway_ip: Option<String>,
    /// The backup's address the client resolved.
    pub backup_ip: Option<String>,
    /// `DTLS` | `TLS` | `down` at the end of the evidence.
    pub tunnel: String,
    /// The host the tunnel ended on.
    pub connected_host: Option<String>,
    /// The address of the gslbgw server connected to.
    pub connected_ip: Option<String>,
    /// The client failed over to the backup gateway.
    pub failover: bool,
    /// A proxy the evidence shows (`ip:port`).
    pub proxy: Option<String>,
    /// The tunnel went through the proxy.
    pub tunnel_via_proxy: bool,
    /// PAC or WPAD named: `pac` | `wpad`.
    pub proxy_discovery: Option<String>,
    /// The host of the PAC server a line names.
    pub pac_host: Option<String>,
    /// Entries where the PAC file could not be downloaded.
    pub pac_failures: Vec<usize>,
    /// Every primary gateway address the client resolved, each once, in order.
    pub primary_ips: Vec<String>,
    /// Entries where the client downloaded its configuration.
    pub config_downloads: Vec<usize>,
    /// Pulled configurations that changed the steering mode: (entry, from, to).
    pub mode_changes: Vec<(usize, String, String)>,
    /// Entries where the client saw its network change (a move: roaming).
    pub network_changes: Vec<usize>,
    /// DTLS connect failures: (host, reason).
    pub dtls_failures: Vec<(Seen, String)>,
    /// TLS connect failures (TCP): (host, reason).
    pub tls_failures: Vec<(Seen, String)>,
    /// Certificate failures of a gateway handshake: (host, reason).
    pub cert_failures: Vec<(Seen, String)>,
    /// DoH failed its certificate check (curl 60) or another TLS looked inspected.
    pub doh_cert_failed: bool,
    /// A captive portal was detected.
    pub captive_portal: Option<usize>,
    /// The client's configuration download failed.
    pub config_failures: Vec<Seen>,
    /// The tunnel dropped after being up (keepalive).
    pub disconnects: Vec<Seen>,
    /// Every app flow, in order.
    pub flows: Vec<Flow>,
    /// Something said MTU or fragmentation.
    pub mtu_hint: bool,
    /// Index of the first entry where the tunnel came up.
    pub first_connected: Option<usize>,
    /// Facts taken from captures, in words (shown with the diagnosis).
    pub capture_notes: Vec<String>,
    /// Successful resolutions: (method, entry).
    pub successes: Vec<(String, usize)>,
    /// Entries where the tunnel came up.
    pub connects: Vec<usize>,
    /// The host (empty when the line does not say) and protocol each of `connects` came
    /// up to.
    pub connected_to: Vec<(String, String)>,
    /// How the DoH server answered when it answered but not with an address: a
    /// `dns.doh_behaviour` (`servfail`, `empty`, `http_NNN`, `malformed`).
    pub doh_answer: Option<String>,
    /// The client held a flow to a shared address for its SNI (`SNI check: held flow`).
    pub sni_check: bool,
    /// Each entry's time, in ms from the first entry.
    pub offsets_ms: Vec<i64>,
}

/// Reads the facts of `ev`.
pub fn gather(ev: &Evidence) -> Facts {
    let mut f = Facts {
        tunnel: "down".to_string(),
        ..Facts::default()
    };
    let mut last_resolved: Option<String> = None;
    let mut after_failover = false;
    for (i, entry) in ev.entries.iter().enumerate() {
        let seen = |text: &str| Seen {
            entry: i,
            text: text.to_string(),
        };
        f.offsets_ms.push(entry.offset_ms);
        if entry.message.contains("SNI check: held flow") {
            f.sni_check = true;
        }
        if f.doh_answer.is_none() {
            f.doh_answer = doh_answer(&entry.message);
        }
        let lower = entry.message.to_ascii_lowercase();
        if lower.contains("mtu") || lower.contains("fragment") || lower.contains("message too long")
        {
            f.mtu_hint = true;
        }
        match classify(entry) {
            Event::Start { version, tenant } => {
                f.version.get_or_insert(version);
                if !tenant.is_empty() {
                    f.tenant.get_or_insert(tenant);
                }
            }
            Event::Connecting { proto, host, proxy } => {
                f.first_proto.get_or_insert(proto);
                note_gateway(&mut f, &host);
                if let Some(p) = proxy {
                    f.proxy = Some(p);
                    f.tunnel_via_proxy = true;
                }
            }
            Event::DownloadFailed { code, error } if about_gslb(&ev.entries[i + 1..]) => {
                f.gslb_asked = true;
                f.gslb_failures
                    .push(seen(&format!("curl code {code}: {error}")));
            }
            Event::DownloadFailed { code, error } => {
                if code == "60" || error.contains("certificate") {
                    f.doh_cert_failed = true;
                }
                f.doh_failures.push((seen(&error), code));
            }
            Event::GslbFailed { reason } => {
                f.gslb_asked = true;
                f.gslb_failures.push(seen(&reason));
            }
            Event::GslbAnswered { pops } => {
                f.gslb_asked = true;
                f.gslb_pops = pops;
            }
            Event::RttProbe { pop, ip, rtt_ms } => {
                f.gslb_asked = true;
                if !f.rtt_probes.iter().any(|(p, _, _)| *p == pop) {
                    f.rtt_probes.push((pop, ip, rtt_ms));
                }
            }
            Event::ResolveFailed { method, host } => {
                note_gateway(&mut f, &host);
                match method.as_str() {
                    "LDNS" => f.ldns_failures.push(seen("failed to resolve by LDNS")),
                    "GSLB" => f.gslb_asked = true,
                    _ => {}
                }
            }
            Event::LdnsTimeout { .. } => f.ldns_failures.push(seen("LDNS query timed out")),
            Event::Resolved { method, host } => {
                note_gateway(&mut f, &host);
                match method.as_str() {
                    "EDNS" => f.doh_worked = true,
                    "LDNS" => f.ldns_worked = true,
                    "GSLB" => f.gslb_asked = true,
                    _ => {}
                }
                f.successes.push((method.clone(), i));
                last_resolved = Some(method);
            }
            Event::RemoteHost { proto, host, ip } => {
                f.first_proto.get_or_insert(proto);
                note_gateway(&mut f, &host);
                if is_backup(&host) {
                    f.backup_ip = Some(ip);
                } else if !ip.is_empty() {
                    if !f.primary_ips.contains(&ip) {
                        f.primary_ips.push(ip.clone());
                    }
                    f.gateway_ip = Some(ip);
                }
            }
            Event::Connected { proto, host, ip } => {
                f.tunnel = proto;
                if is_backup(&host) || after_failover && host.is_empty() {
                    f.failover = true;
                }
                f.connected_host = Some(host);
                f.connected_ip = ip.clone();
                if f.gateway_ip.is_none() {
                    f.gateway_ip = ip;
                }
                f.first_connected.get_or_insert(i);
                f.connects.push(i);
                f.connected_to.push((
                    f.connected_host.clone().unwrap_or_default(),
                    f.tunnel.clone(),
                ));
                f.resolved_by = last_resolved.clone();
            }
            Event::HandshakeFailed {
                proto,
                host,
                reason,
            } => {
                let _ = proto;
                f.cert_failures.push((seen(&reason), host));
            }
            Event::ConnectFailed {
                proto,
                host,
                reason,
            } => {
                if proto == "DTLS" {
                    f.dtls_failures.push((seen(&reason), host));
                } else {
                    f.tls_failures.push((seen(&reason), host));
                }
            }
            Event::Failover { .. } => {
                f.failover = true;
                after_failover = true;
            }
            Event::GaveUp => f.tunnel = "down".to_string(),
            Event::Disconnected { reason } => {
                f.tunnel = "down".to_string();
                f.disconnects.push(seen(&reason));
            }
            Event::ProxyDetected { proxy, pac } => {
                if let Some(p) = proxy {
                    f.proxy = Some(p);
                }
                if let Some(host) = pac {
                    if host.starts_with("wpad") {
                        f.proxy_discovery = Some("wpad".into());
                    } else {
                        f.proxy_discovery.get_or_insert("pac".into());
                    }
                    f.pac_host = Some(host);
                }
            }
            Event::CaptivePortal => {
                f.captive_portal.get_or_insert(i);
            }
            Event::ConfigFailed { reason } => f.config_failures.push(seen(&reason)),
            Event::FlowTunneled {
                process,
                host,
                addr,
            } => push_flow(&mut f, entry, i, process, host, addr, "tunneled", "", ""),
            Event::FlowBypassed {
                process,
                host,
                addr,
                why,
            } => push_flow(&mut f, entry, i, process, host, addr, "bypassed", "", &why),
            Event::FlowDirect {
                process,
                host,
                addr,
                reason,
            } => push_flow(&mut f, entry, i, process, host, addr, "direct", &reason, ""),
            Event::FlowDropped {
                process,
                host,
                addr,
                reason,
            } => {
                let why = if reason.contains("pinned") {
                    "pinned"
                } else {
                    ""
                };
                push_flow(
                    &mut f, entry, i, process, host, addr, "blocked", &reason, why,
                );
            }
            Event::FlowRefused { reason } => {
                if let Some(flow) = f.flows.iter_mut().rev().find(|x| x.verdict == "tunneled") {
                    flow.verdict = "blocked".to_string();
                    flow.why = "policy".to_string();
                    flow.reason = reason;
                }
            }
            Event::PacFailed { .. } => f.pac_failures.push(i),
            Event::ConfigDownloaded => f.config_downloads.push(i),
            Event::ModeChanged { from, to } => {
                f.mode_changes.push((i, from.clone(), to.clone()));
            }
            Event::NetworkChanged => f.network_changes.push(i),
            Event::NextPop { .. } | Event::FallbackToTls | Event::Other | Event::Unknown => {}
        }
        if entry.message.contains("PAC") && entry.message.contains("WPAD") {
            f.proxy_discovery = Some("wpad".into());
        }
    }
    if f.resolved_by.is_none() {
        f.resolved_by = last_resolved;
    }
    // A CONNECT taken into the tunnel names the proxy as its address.
    if f.proxy.is_none() {
        f.proxy = f
            .flows
            .iter()
            .find(|x| connect_through_proxy(x))
            .map(|x| x.addr.clone());
    }
    if f.version.is_none() && f.gslb_asked {
        f.version = Some("96.1".to_string());
    }
    for (name, packets) in &ev.captures {
        super::capture::add_facts(&mut f, name, packets);
    }
    f
}

/// The `dns.doh_behaviour` a DoH answer line shows: the DoH server answered, but not
/// with the gateway's address (`EDNS answer for H: rcode Server Failure`, `... no
/// address in the answer`, `SSL resolve EDNS request returned HTTP status 403`, `EDNS
/// answer unusable: ...`).
fn doh_answer(message: &str) -> Option<String> {
    if let Some(rest) = message
        .split("SSL resolve EDNS request returned HTTP status ")
        .nth(1)
    {
        let code: String = rest.chars().take_while(char::is_ascii_digit).collect();
        return (code.len() == 3).then(|| format!("http_{code}"));
    }
    if message.starts_with("EDNS answer unusable") {
        return Some("malformed".into());
    }
    let answer = message.strip_prefix("EDNS answer for ")?;
    let (_, what) = answer.split_once(": ")?;
    let what = what.to_ascii_lowercase();
    if what.contains("no address") {
        Some("empty".into())
    } else if what.contains("server failure") || what.contains("servfail") {
        Some("servfail".into())
    } else {
        None
    }
}

/// A flow whose address is a private `ip:port` on a port other than 80 and 443 while its
/// host is a name: an app's CONNECT to an on-prem proxy.
pub fn connect_through_proxy(flow: &Flow) -> bool {
    let Ok(addr) = flow.addr.parse::<SocketAddr>() else {
        return false;
    };
    let private = match addr.ip() {
        IpAddr::V4(v4) => v4.is_private(),
        IpAddr::V6(_) => false,
    };
    private
        && !matches!(addr.port(), 80 | 443)
        && flow.host.parse::<IpAddr>().is_err()
        && !flow.host.is_empty()
}

#[allow(clippy::too_many_arguments)]
fn push_flow(
    f: &mut Facts,
    entry: &crate::logs::parse::Entry,
    index: usize,
    process: String,
    host: String,
    addr: String,
    verdict: &str,
    reason: &str,
    why: &str,
) {
    f.flows.push(Flow {
        process,
        host,
        addr,
        verdict: verdict.to_string(),
        reason: reason.to_string(),
        why: why.to_string(),
        offset_ms: entry.offset_ms,
        entry: index,
    });
}

/// Whether the download failure before `next` was GSLB's request rather than DoH's: the
/// next lines that name what failed name GSLB.
fn about_gslb(next: &[crate::logs::parse::Entry]) -> bool {
    for e in next.iter().take(4) {
        let m = &e.message;
        if m.contains("EDNS") || m.contains("DoH") {
            return false;
        }
        if m.contains("GSLB") || m.contains("PoP list") {
            return true;
        }
    }
    false
}

/// `gateway-backup-...`.
pub fn is_backup(host: &str) -> bool {
    host.starts_with("gateway-backup")
}

/// Learns the tenant, region and primary name from a gateway host name.
fn note_gateway(f: &mut Facts, host: &str) {
    let Some(rest) = host.strip_prefix("gateway-") else {
        return;
    };
    if is_backup(host) || f.gslb_asked && !host.contains('.') {
        return;
    }
    let labels: Vec<&str> = rest.split('.').collect();
    // gateway-acme.goskope.com, gateway-acme.eu.goskope.com
    let tenant = labels.first().copied().unwrap_or("");
    if labels.len() >= 3 && matches!(labels[1], "eu" | "de" | "au") {
        f.region.get_or_insert(labels[1].to_string());
    }
    if f.primary_host.is_none() {
        f.primary_host = Some(host.to_string());
    }
    let gslb_pop = tenant.chars().any(|c| c.is_ascii_digit()) && f.gslb_asked;
    if !tenant.is_empty() && !gslb_pop {
        f.tenant.get_or_insert(tenant.to_string());
    }
}

impl Facts {
    /// Only the proxy reaches the internet: the tunnel went through it and no direct
    /// handshake met a certificate (a direct path that reaches an inspector is not
    /// blocked).
    pub fn proxy_only(&self) -> bool {
        self.tunnel_via_proxy && self.cert_failures.is_empty()
    }
}
