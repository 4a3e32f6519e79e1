//! Drafting a scenario from a customer's log: the PoP the client reached (from its
//! `remote host ... resolved to` lines), how it resolved it, the tunnel it ended on, the
//! DoH timeout if the log shows one, and the flows it tunneled or bypassed (with their
//! addresses) as `connect` events, their hosts managed (and excepted when bypassed). A draft to edit, not a verdict: locations, latencies
//! and firewall rules are the engineer's to add.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::events::{Event, classify};
use super::parse::Entry;

/// A scenario TOML reproducing what `entries` show, named after `source`.
pub fn draft_scenario(entries: &[Entry], source: &str) -> String {
    let mut pops: Vec<String> = Vec::new();
    let mut resolved_by = None;
    let mut tunnel = "down".to_string();
    let mut gateway_ip = None;
    let mut last_ip = None;
    let mut doh_timeout = false;
    let mut first_proto = None;
    let mut flows: Vec<(i64, String, String, String, String)> = Vec::new();
    let mut origins: BTreeMap<String, String> = BTreeMap::new();
    for entry in entries {
        match classify(entry) {
            Event::Connecting { proto, .. } => {
                first_proto.get_or_insert(proto);
            }
            Event::DownloadFailed { code } if code == "28" => doh_timeout = true,
            Event::Resolved { method, .. } => resolved_by = Some(method),
            Event::RemoteHost { ip, .. } => {
                if !pops.contains(&ip) {
                    pops.push(ip.clone());
                }
                last_ip = Some(ip);
            }
            Event::Connected { proto, .. } => {
                tunnel = proto;
                gateway_ip = last_ip.clone();
            }
            Event::Disconnected => tunnel = "down".to_string(),
            Event::FlowTunneled { process, host } => {
                flow(entry, process, host, "tunneled", &mut flows, &mut origins);
            }
            Event::FlowBypassed { process, host } => {
                flow(entry, process, host, "bypassed", &mut flows, &mut origins);
            }
            _ => {}
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "name = \"Draft from {}\"", source.replace('"', "'"));
    let _ = writeln!(
        out,
        "description = \"Drafted by steerlab log parse: add locations, latencies and the customer's firewall rules.\""
    );
    let last = flows.last().map_or(0, |f| f.0 / 1000);
    let _ = writeln!(out, "duration = \"{}s\"\n", last + 30);
    if let Some(proto) = &first_proto {
        let _ = writeln!(
            out,
            "[client]\ntunnel = \"{}\"\n",
            proto.to_ascii_lowercase()
        );
    }
    // Tunneled hosts were managed; bypassed ones were managed and excepted (a bypass is
    // in scope by definition).
    if !flows.is_empty() {
        let quoted = |v: Vec<&String>| {
            v.iter()
                .map(|h| format!("\"{h}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let managed: Vec<&String> = flows.iter().map(|f| &f.2).collect();
        let excepted: Vec<&String> = flows
            .iter()
            .filter(|f| f.4 == "bypassed")
            .map(|f| &f.2)
            .collect();
        let _ = writeln!(
            out,
            "[steering]\nmode = \"cloud-apps\"\nmanaged = [{}]\nexceptions = [{}]\n",
            quoted(managed),
            quoted(excepted)
        );
    }
    if pops.is_empty() {
        pops.push("8.36.116.35".to_string());
    }
    for (i, ip) in pops.iter().enumerate() {
        let _ = writeln!(
            out,
            "[[pops]]\nname = \"pop{}\"\nlocation = \"us-east\"\nip = \"{ip}\"\n",
            i + 1
        );
    }
    for (host, ip) in &origins {
        let _ = writeln!(out, "[[origins]]\nhost = \"{host}\"\nip = \"{ip}\"\n");
    }
    if doh_timeout {
        let _ = writeln!(
            out,
            "# The log shows DoH timing out (curl code 28).\n[[events]]\nat = \"0s\"\ndo = \"partition\"\nhost = \"doh\"\n"
        );
    }
    let _ = writeln!(out, "[[events]]\nat = \"0s\"\ndo = \"start\"\n");
    for (ms, process, host, port, _) in &flows {
        let _ = writeln!(
            out,
            "[[events]]\nat = \"{}ms\"\ndo = \"connect\"\nprocess = \"{process}\"\ntarget = \"{host}:{port}\"\n",
            (*ms).max(1000)
        );
    }
    let _ = writeln!(out, "[expect]");
    if let Some(method) = resolved_by.filter(|_| tunnel != "down") {
        let _ = writeln!(out, "resolved_by = \"{method}\"");
    }
    if let Some(n) = gateway_ip
        .and_then(|ip| pops.iter().position(|p| *p == ip))
        .filter(|_| tunnel != "down")
    {
        let _ = writeln!(out, "gateway = \"pop{}\"", n + 1);
    }
    let _ = writeln!(out, "tunnel = \"{tunnel}\"");
    for (_, process, host, _, verdict) in &flows {
        let _ = writeln!(
            out,
            "[[expect.flows]]\nprocess = \"{process}\"\nhost = \"{host}\"\nverdict = \"{verdict}\""
        );
    }
    out
}

/// Records a flow whose line names its destination address (`addr: IP:PORT` or `Dest IP:
/// IP, Dest Port: N`).
fn flow(
    entry: &Entry,
    process: String,
    host: String,
    verdict: &str,
    flows: &mut Vec<(i64, String, String, String, String)>,
    origins: &mut BTreeMap<String, String>,
) {
    let m = &entry.message;
    let addr = m
        .rsplit("addr: ")
        .next()
        .filter(|_| m.contains("addr: "))
        .map(str::trim);
    let (ip, port) = match addr.and_then(|a| a.rsplit_once(':')) {
        Some((ip, port)) => (ip.to_string(), port.to_string()),
        None => match (after(m, "Dest IP: "), after(m, "Dest Port: ")) {
            (Some(ip), Some(port)) => (ip, port),
            _ => return,
        },
    };
    if host.is_empty() || ip.parse::<std::net::Ipv4Addr>().is_err() || port.parse::<u16>().is_err()
    {
        return;
    }
    origins.entry(host.clone()).or_insert(ip);
    flows.push((entry.offset_ms, process, host, port, verdict.to_string()));
}

fn after(m: &str, key: &str) -> Option<String> {
    let rest = &m[m.find(key)? + key.len()..];
    Some(rest.split(',').next().unwrap_or(rest).trim().to_string())
}
