//! Replaying a capture through the agent's steering logic: the same domain map and
//! verdict code the simulated agent runs (`agent::core::steer`), fed with the capture's
//! DNS answers and TCP SYNs in order.
//!
//! The tunnel counts as up from the first packet the endpoint sends to a gateway on
//! port 443 (TCP: TLS, UDP: DTLS). Gateways are the scenario's PoPs and backup, the
//! vendor's published ranges, and any address a `gateway-*` name resolved to.
//! Processes are not in a capture: flows show process `unknown`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use agent::core::steer::{DnsMap, FlowInfo, NetSet, Steering, parse_net};
use hickory_proto::op::Message;
use serde::Serialize;

use super::read::{CaptureError, Packet, Skipped, Transport, read_capture};
use crate::scenario::Scenario;

/// The vendor's published gateway ranges (domain.md).
pub const GATEWAY_RANGES: [&str; 6] = [
    "163.116.128.0/17",
    "8.36.116.0/24",
    "8.39.144.0/24",
    "31.186.239.0/24",
    "74.217.93.0/24",
    "103.219.79.0/24",
];

/// Public DoH resolvers the client uses.
const DOH_SERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// One app flow of the capture and its verdict.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReplayFlow {
    /// Packet number of the SYN.
    pub packet: usize,
    /// Milliseconds since the capture's first packet.
    pub time_ms: u64,
    /// Always `unknown`: captures carry no process names.
    pub process: String,
    /// The name the decision used (the address when no DNS answer named it).
    pub host: String,
    /// `ip:port`.
    pub addr: String,
    /// The verdict word.
    pub verdict: String,
    /// Why.
    pub reason: String,
}

/// What the capture showed.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    /// The file.
    pub capture: String,
    /// TCP/UDP packets decoded.
    pub packets: usize,
    /// Frames skipped: not TCP/UDP over IP, or undecodable.
    pub skipped_other: usize,
    /// See `skipped_other`.
    pub skipped_undecodable: usize,
    /// The endpoint's address (from the scenario, else the most frequent SYN source).
    pub client: Option<String>,
    /// Every app flow, in order.
    pub flows: Vec<ReplayFlow>,
    /// The agent's own traffic, one line per observation.
    pub control: Vec<String>,
    /// Names the capture resolved, with their addresses (for `--emit-scenario`).
    #[serde(skip)]
    pub names: BTreeMap<String, IpAddr>,
    /// Gateway addresses the endpoint tunneled to.
    #[serde(skip)]
    pub gateways: Vec<SocketAddr>,
}

/// Replays `path` under `scenario`'s steering configuration (the defaults without one).
pub fn replay(
    path: &Path,
    scenario: Option<&Scenario>,
    steering: Steering,
) -> Result<ReplayReport, CaptureError> {
    let (packets, skipped) = read_capture(path)?;
    Ok(run(path, &packets, &skipped, scenario, &steering))
}

fn run(
    path: &Path,
    packets: &[Packet],
    skipped: &Skipped,
    scenario: Option<&Scenario>,
    steering: &Steering,
) -> ReplayReport {
    let start = packets.first().map(|p| p.time).unwrap_or_default();
    let client = pick_client(packets, scenario);
    let mut gateways = NetSet::default();
    for range in GATEWAY_RANGES {
        if let Some((net, len)) = parse_net(range) {
            gateways.insert(net, len);
        }
    }
    if let Some(s) = scenario {
        for pop in &s.pops {
            gateways.insert(IpAddr::V4(pop.ip), 32);
        }
        if let Some(ip) = s.backup.ip {
            gateways.insert(IpAddr::V4(ip), 32);
        }
    }
    let mut map = DnsMap::default();
    let mut report = ReplayReport {
        capture: path.display().to_string(),
        packets: packets.len(),
        skipped_other: skipped.other,
        skipped_undecodable: skipped.undecodable,
        client: client.map(|c| c.to_string()),
        flows: Vec::new(),
        control: Vec::new(),
        names: BTreeMap::new(),
        gateways: Vec::new(),
    };
    let mut tunnel_up = false;
    let mut doh_seen = false;
    let epoch = std::time::Instant::now_or_epoch();
    for p in packets {
        let at = p.time.saturating_sub(start);
        let now = epoch + at;
        let stamp = format!("+{}.{:03}s", at.as_secs(), at.subsec_millis());
        // DNS answers (UDP, or TCP with its length prefix) teach the domain map.
        if p.src.port() == 53 && !p.payload.is_empty() {
            let body = match p.transport {
                Transport::Udp => &p.payload[..],
                Transport::Tcp { .. } => p.payload.get(2..).unwrap_or_default(),
            };
            if map.learn(body, now).is_ok() {
                learn_names(body, &mut report, &mut gateways);
            }
            continue;
        }
        if p.dst.port() == 53 {
            note_gateway_query(p, &stamp, &mut report);
            continue;
        }
        let from_client = client.is_none_or(|c| c == p.src.ip());
        if !from_client {
            continue;
        }
        // The agent's own traffic.
        if p.dst.port() == 443 && gateways.find(p.dst.ip()).is_some() {
            if !report.gateways.contains(&p.dst) {
                let proto = if p.transport == Transport::Udp {
                    "DTLS"
                } else {
                    "TLS"
                };
                report.control.push(format!(
                    "{stamp} tunnel {proto} to gateway {} (packet {})",
                    p.dst, p.number
                ));
                report.gateways.push(p.dst);
            }
            tunnel_up = true;
            continue;
        }
        if p.dst.port() == 443 && DOH_SERVERS.contains(&p.dst.ip().to_string().as_str()) {
            if !doh_seen {
                report.control.push(format!(
                    "{stamp} DNS over HTTPS to {} (packet {})",
                    p.dst, p.number
                ));
                doh_seen = true;
            }
            continue;
        }
        // A new app flow: its SYN.
        if p.transport
            == (Transport::Tcp {
                syn: true,
                ack: false,
            })
        {
            let names = map
                .names(p.dst.ip(), now)
                .into_iter()
                .map(String::from)
                .collect();
            let info = FlowInfo {
                process: "unknown".into(),
                names,
                dst: p.dst,
            };
            let d = steering.decide(&info, tunnel_up);
            report.flows.push(ReplayFlow {
                packet: p.number,
                time_ms: at.as_millis() as u64,
                process: "unknown".into(),
                host: d.host,
                addr: p.dst.to_string(),
                verdict: d.verdict.as_str().to_string(),
                reason: d.reason.to_string(),
            });
        }
    }
    if report.gateways.is_empty() {
        report
            .control
            .push("no tunnel traffic to a gateway in the capture".to_string());
    }
    report
}

/// The scenario's client when the capture has SYNs from it, else the most frequent SYN
/// source.
fn pick_client(packets: &[Packet], scenario: Option<&Scenario>) -> Option<IpAddr> {
    let mut counts: BTreeMap<IpAddr, usize> = BTreeMap::new();
    for p in packets {
        if p.transport
            == (Transport::Tcp {
                syn: true,
                ack: false,
            })
        {
            *counts.entry(p.src.ip()).or_default() += 1;
        }
    }
    if let Some(ip) = scenario
        .map(|s| IpAddr::V4(s.client.ip))
        .filter(|ip| counts.contains_key(ip))
    {
        return Some(ip);
    }
    counts
        .into_iter()
        .max_by_key(|(ip, n)| (*n, std::cmp::Reverse(*ip)))
        .map(|(ip, _)| ip)
}

fn learn_names(body: &[u8], report: &mut ReplayReport, gateways: &mut NetSet) {
    let Ok(msg) = Message::from_vec(body) else {
        return;
    };
    let Some(q) = msg.queries.first() else { return };
    let name = q
        .name()
        .to_ascii()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    for record in &msg.answers {
        let ip = match &record.data {
            hickory_proto::rr::RData::A(a) => IpAddr::V4(a.0),
            hickory_proto::rr::RData::AAAA(a) => IpAddr::V6(a.0),
            _ => continue,
        };
        if name.starts_with("gateway-") && name.contains("goskope.com") {
            gateways.insert(ip, if ip.is_ipv4() { 32 } else { 128 });
        }
        report.names.entry(name.clone()).or_insert(ip);
    }
}

fn note_gateway_query(p: &Packet, stamp: &str, report: &mut ReplayReport) {
    let body = match p.transport {
        Transport::Udp => &p.payload[..],
        Transport::Tcp { .. } => p.payload.get(2..).unwrap_or_default(),
    };
    let Ok(msg) = Message::from_vec(body) else {
        return;
    };
    for q in &msg.queries {
        let name = q.name().to_ascii();
        if name.starts_with("gateway") && name.contains("goskope.com") {
            report.control.push(format!(
                "{stamp} local DNS query for {} to {} (packet {})",
                name.trim_end_matches('.'),
                p.dst,
                p.number
            ));
        }
    }
}

/// A monotonic origin for the domain map's TTLs: only differences matter.
trait NowOrEpoch {
    fn now_or_epoch() -> Self;
}

impl NowOrEpoch for std::time::Instant {
    #[allow(
        clippy::disallowed_methods,
        reason = "an arbitrary base instant; only offsets from it are used"
    )]
    fn now_or_epoch() -> Self {
        std::time::Instant::now()
    }
}
