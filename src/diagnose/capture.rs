//! Facts from a laptop capture: DoH connects that get no answer, the local resolver's
//! answer for the gateway, DTLS datagrams that get none then a TLS connection, and an
//! HTTP CONNECT to a proxy. They fill in what a log does not show (or stand alone).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use hickory_proto::op::Message;
use hickory_proto::rr::RData;

use super::facts::{Facts, Seen};
use crate::pcap::{Packet, Transport};

/// The DoH servers' addresses (dns.google).
const DOH_ADDRS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// Adds what `packets` show to `f`.
pub fn add_facts(f: &mut Facts, name: &str, packets: &[Packet]) {
    let from_log = f.tunnel != "down" || !f.doh_failures.is_empty() || f.resolved_by.is_some();
    let seen = |text: String| Seen {
        entry: usize::MAX,
        text,
    };
    // TCP: SYNs sent and SYN-ACKs received, by (client, server).
    let mut syn: BTreeSet<(SocketAddr, SocketAddr)> = BTreeSet::new();
    let mut syn_ack: BTreeSet<(SocketAddr, SocketAddr)> = BTreeSet::new();
    let mut udp_out: BTreeSet<SocketAddr> = BTreeSet::new();
    let mut udp_back: BTreeSet<SocketAddr> = BTreeSet::new();
    let mut gateway: Option<IpAddr> = None;
    let mut ldns_answered = false;
    let mut proxy: Option<(SocketAddr, String)> = None;
    for p in packets {
        match p.transport {
            Transport::Tcp {
                syn: true,
                ack: false,
            } => {
                syn.insert((p.src, p.dst));
            }
            Transport::Tcp {
                syn: true,
                ack: true,
            } => {
                syn_ack.insert((p.dst, p.src));
            }
            Transport::Tcp { .. } => {
                if let Some(target) = connect_target(&p.payload)
                    && proxy.is_none()
                {
                    proxy = Some((p.dst, target));
                }
            }
            Transport::Udp => {
                if p.src.port() == 53 {
                    if let Some(ip) = gateway_answer(&p.payload) {
                        gateway.get_or_insert(ip);
                        ldns_answered = true;
                    }
                } else if p.dst.port() == 443 {
                    udp_out.insert(p.dst);
                } else if p.src.port() == 443 {
                    udp_back.insert(p.src);
                }
            }
        }
    }
    let doh_tried: Vec<_> = syn
        .iter()
        .filter(|(_, s)| s.port() == 443 && DOH_ADDRS.contains(&s.ip().to_string().as_str()))
        .collect();
    let doh_answered = doh_tried.iter().any(|k| syn_ack.contains(k));
    if !from_log {
        if !doh_tried.is_empty() && !doh_answered {
            f.doh_failures.push((
                seen(format!("{name}: DoH SYN to {} unanswered", doh_tried[0].1)),
                "28".into(),
            ));
            f.capture_notes.push(format!(
                "{name}: TCP SYN to DoH {} got no answer",
                doh_tried[0].1
            ));
        }
        if ldns_answered {
            f.ldns_worked = true;
            f.resolved_by.get_or_insert("LDNS".into());
            if doh_answered {
                f.resolved_by = Some("EDNS".into());
            }
        } else if doh_answered {
            f.resolved_by.get_or_insert("EDNS".into());
        }
    }
    if let Some(gw) = gateway {
        f.gateway_ip.get_or_insert(gw.to_string());
        f.capture_notes.push(format!(
            "{name}: the local resolver answered the gateway with {gw}"
        ));
        let dtls = SocketAddr::new(gw, 443);
        let dtls_tried = udp_out.contains(&dtls);
        let dtls_answered = udp_back.contains(&dtls);
        let tls_up = syn_ack.iter().any(|(_, s)| *s == dtls);
        if !from_log {
            if dtls_tried {
                f.first_proto.get_or_insert("DTLS".into());
            } else {
                f.first_proto.get_or_insert("TLS".into());
            }
            if dtls_tried && !dtls_answered {
                f.dtls_failures.push((
                    seen(format!("{name}: DTLS datagrams to {dtls} unanswered")),
                    String::new(),
                ));
                f.capture_notes
                    .push(format!("{name}: UDP 443 datagrams to {dtls} got no answer"));
            }
            f.tunnel = if dtls_answered {
                "DTLS".into()
            } else if tls_up {
                "TLS".into()
            } else {
                "down".into()
            };
        }
    }
    if let Some((addr, target)) = proxy {
        f.proxy.get_or_insert(addr.to_string());
        f.capture_notes.push(format!(
            "{name}: HTTP CONNECT {target} sent to the proxy {addr}"
        ));
        if target.starts_with("gateway-") && !from_log {
            f.tunnel_via_proxy = true;
        }
    }
}

/// `host:port` of an HTTP CONNECT request at the start of a payload.
fn connect_target(payload: &[u8]) -> Option<String> {
    let rest = payload.strip_prefix(b"CONNECT ")?;
    let end = rest.iter().position(|&b| b == b' ')?;
    let target = std::str::from_utf8(&rest[..end]).ok()?;
    Some(target.to_string())
}

/// The address a DNS answer gives a `gateway-*` name.
fn gateway_answer(payload: &[u8]) -> Option<IpAddr> {
    let msg = Message::from_vec(payload).ok()?;
    let asks_gateway = msg
        .queries
        .iter()
        .any(|q| q.name().to_ascii().starts_with("gateway-"));
    if !asks_gateway {
        return None;
    }
    msg.answers.iter().find_map(|r| match &r.data {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        _ => None,
    })
}
