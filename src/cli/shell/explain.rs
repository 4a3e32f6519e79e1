//! `explain HOST[:PORT] [PROCESS]`: the agent's steering decision for a flow to HOST now,
//! step by step in the order the agent takes them (docs/steering.md), which list and
//! entry decided, and what the endpoint's firewalls would do with the flow sent direct.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use agent::core::steer::{FlowInfo, Mode, PinnedAction, Reason, Verdict, is_private};

use super::session::Session;
use crate::scenario::{FirewallPlace, SteeringMode, TunnelState};
use crate::world::path::{Path as NetPath, Transport, Verdict as PathVerdict};
use crate::world::registry::{HostEntry, Registry, Role};
use crate::world::timeline::stamp;

/// The explanation, or what to write instead.
pub fn explain(
    session: &Session,
    host: &str,
    port: u16,
    process: Option<&str>,
) -> Result<String, String> {
    let s = session.scenario();
    let report = session.report();
    let (ip, names) = destination(session, host)?;
    let process = process
        .map(str::to_string)
        .unwrap_or_else(|| last_process(session, host).unwrap_or_else(|| "chrome.exe".to_string()));
    let steering = crate::world::agent_steering(s);
    let tunnel = report.outcome.tunnel;
    let tunnel_up = tunnel != TunnelState::Down;
    let flow = FlowInfo {
        process: process.clone(),
        names: names.clone(),
        dst: SocketAddr::new(IpAddr::V4(ip), port),
    };
    let decision = steering.decide(&flow, tunnel_up);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "explain {process} -> {host}:{port} at {} (address {ip}{})",
        stamp(session.now()),
        if names.len() > 1 {
            format!(", names {}", names.join(", "))
        } else {
            String::new()
        }
    );
    let mode = s.steering.mode;
    let step = |out: &mut String, n: usize, what: &str, text: String| {
        let _ = writeln!(out, "  {n}. {what:<10} {text}");
    };

    // 1. Scope of the mode.
    let scope = match mode {
        SteeringMode::CloudApps => {
            let hit = names
                .iter()
                .find_map(|n| steering.managed.find(n).map(|p| (n, p)));
            let ports = ports_text(&steering.ports);
            match hit {
                Some((name, pattern)) => format!(
                    "mode cloud-apps: `{pattern}` in steering.managed matches {name}; port {port} {} steered ({ports})",
                    if steering.ports.contains(&port) {
                        "is"
                    } else {
                        "is not"
                    }
                ),
                None if s.steering.managed.is_empty() => {
                    "mode cloud-apps: steering.managed is empty, nothing is in scope".to_string()
                }
                None => format!(
                    "mode cloud-apps: no entry of steering.managed ({}) matches {}",
                    s.steering.managed.join(", "),
                    names.join(" or ")
                ),
            }
        }
        SteeringMode::Web => format!(
            "mode web: port {port} {} in steering.ports ({})",
            if steering.ports.contains(&port) {
                "is"
            } else {
                "is not"
            },
            ports_text(&steering.ports)
        ),
        SteeringMode::All if port == 53 => format!(
            "mode all: DNS is {}steered (steer_dns = {})",
            if steering.steer_dns { "" } else { "not " },
            steering.steer_dns
        ),
        SteeringMode::All => "mode all: every destination and port is in scope".to_string(),
    };
    step(&mut out, 1, "scope", scope);
    let out_of_scope = matches!(
        decision.reason,
        Reason::NotManaged | Reason::PortNotSteered(_) | Reason::DnsNotSteered
    );
    if !out_of_scope {
        let lower = process.to_ascii_lowercase();
        let pinned = match steering.pinned_apps.get(&lower) {
            None => format!("{process} is not a pinned app"),
            Some(action) => {
                let list = if s
                    .steering
                    .bypass_apps
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(&process))
                    && !s
                        .steering
                        .pinned_apps
                        .iter()
                        .any(|a| a.process.eq_ignore_ascii_case(&process))
                {
                    "steering.bypass_apps"
                } else {
                    "steering.pinned_apps (or bypass_file)"
                };
                let what = match action {
                    PinnedAction::Bypass => "bypass: sent direct",
                    PinnedAction::Tunnel => "tunnel: tunneled without inspection while up",
                    PinnedAction::Block => "block: dropped",
                };
                format!("{process} is in {list}, action {what}")
            }
        };
        step(&mut out, 2, "pinned app", pinned);
    }
    let by_app = matches!(
        decision.reason,
        Reason::BypassApp(_) | Reason::PinnedBlock(_) | Reason::PinnedTunnel(_)
    );
    if !out_of_scope && !by_app {
        let exception = match &decision.reason {
            Reason::DomainException(p) => {
                format!("`{p}` in steering.exceptions (or exceptions_file) matches")
            }
            Reason::IpException(n) => {
                format!("{n} in steering.exceptions (or exceptions_file) contains {ip}")
            }
            _ => "no domain, IP or CIDR exception matches".to_string(),
        };
        step(&mut out, 3, "exception", exception);
    }
    let by_exception = matches!(
        decision.reason,
        Reason::DomainException(_) | Reason::IpException(_)
    );
    if !out_of_scope && !by_app && !by_exception {
        let private = if is_private(IpAddr::V4(ip)) {
            if steering.private_apps {
                format!("{ip} is private (RFC 1918), steered because private_apps = true")
            } else {
                format!("{ip} is private (RFC 1918) and private_apps = false: sent direct")
            }
        } else {
            format!("{ip} is a public address")
        };
        step(&mut out, 4, "private", private);
    }
    if matches!(
        decision.reason,
        Reason::Steered | Reason::FailClose | Reason::FailOpen
    ) {
        let state = match (tunnel, &report.outcome.gateway) {
            (TunnelState::Down, _) => format!(
                "down; fail_close = {}: {}",
                steering.fail_close,
                if steering.fail_close {
                    "steered flows are blocked"
                } else {
                    "steered flows go direct"
                }
            ),
            (t, Some(g)) => format!("up ({} to {g})", t.as_str()),
            (t, None) => format!("up ({})", t.as_str()),
        };
        step(&mut out, 5, "tunnel", state);
    }
    let _ = writeln!(
        out,
        "  verdict       {}: {}",
        verdict_word(decision.verdict),
        decision.reason
    );
    if let Some(on_prem) = &s.steering.on_prem {
        let other = steering.decide_in(agent_mode(on_prem.mode), &flow, tunnel_up);
        let _ = writeln!(
            out,
            "  on-prem       while on-prem ({}) the mode is {}: {} ({})",
            on_prem.test,
            on_prem.mode.as_str(),
            verdict_word(other.verdict),
            other.reason
        );
    }
    if s.steering.sni_check && port == 443 {
        let _ = writeln!(
            out,
            "  sni_check     on: a TLS flow is decided by its ClientHello's name ({host})"
        );
    }
    let _ = writeln!(
        out,
        "  firewall      {}",
        firewall(session, ip, port, decision.verdict)
    );
    let seen: Vec<String> = report
        .flows
        .iter()
        .filter(|f| names.iter().any(|n| f.host.eq_ignore_ascii_case(n)))
        .map(|f| {
            format!(
                "{} {} {} ({}; {})",
                f.process,
                f.addr,
                f.verdict.as_str(),
                f.reason,
                f.outcome
            )
        })
        .collect();
    if seen.is_empty() {
        let _ = writeln!(out, "  seen          no flow to {host} so far");
    } else {
        for (i, line) in seen.iter().enumerate() {
            let label = if i == 0 { "seen" } else { "" };
            let _ = writeln!(out, "  {label:<13} {line}");
        }
    }
    Ok(out)
}

/// The address of `host` (an origin, one of its aliases, or an IPv4 address) and the
/// names an app's DNS answer gives the agent for it.
fn destination(session: &Session, host: &str) -> Result<(Ipv4Addr, Vec<String>), String> {
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok((ip, Vec::new()));
    }
    let s = session.scenario();
    for origin in &s.origins {
        let alias = origin.aliases.iter().find(|a| a.eq_ignore_ascii_case(host));
        if origin.host.eq_ignore_ascii_case(host) {
            return Ok((origin.ip, vec![origin.host.to_ascii_lowercase()]));
        }
        if let Some(alias) = alias {
            return Ok((
                origin.ip,
                vec![alias.to_ascii_lowercase(), origin.host.to_ascii_lowercase()],
            ));
        }
    }
    let known: Vec<&str> = s.origins.iter().map(|o| o.host.as_str()).collect();
    Err(if known.is_empty() {
        format!(
            "`{host}` has no address in this world (it has no [[origins]]); name an IPv4 address"
        )
    } else {
        format!(
            "`{host}` has no address in this world; name one of {} or an IPv4 address",
            known.join(", ")
        )
    })
}

/// The process of the latest connect to `host`, if any.
fn last_process(session: &Session, host: &str) -> Option<String> {
    session
        .scenario()
        .events
        .iter()
        .filter(|e| e.at <= session.now())
        .filter_map(|e| match &e.action {
            crate::scenario::EventAction::Connect {
                process, host: h, ..
            } if h.eq_ignore_ascii_case(host) => Some(process.clone()),
            _ => None,
        })
        .next_back()
}

/// What the endpoint's firewalls and partitions do with TCP to `ip:port` sent direct.
fn firewall(session: &Session, ip: Ipv4Addr, port: u16, verdict: Verdict) -> String {
    let s = session.scenario();
    let mut registry = Registry::default();
    for origin in &s.origins {
        if !registry.add_origin_name(origin.ip, &origin.host) {
            let entry = HostEntry {
                role: Role::Origin(origin.host.clone()),
                label: origin.host.clone(),
                dns_names: vec![origin.host.clone()],
            };
            // Several origins may share an address: the first adds it, the rest add names.
            let _ = registry.add(origin.ip, entry);
        }
        for alias in &origin.aliases {
            registry.add_origin_name(origin.ip, alias);
        }
    }
    let mut path = NetPath::new(
        session.rules(FirewallPlace::Host),
        session.rules(FirewallPlace::Perimeter),
    );
    for cut in session.partitioned() {
        if let Some(origin) = s.origins.iter().find(|o| o.host.eq_ignore_ascii_case(&cut)) {
            path.set_partitioned(origin.ip, true);
        }
    }
    if let Some(proxy) = s
        .network
        .proxy
        .as_ref()
        .filter(|_| !s.network.direct_egress)
    {
        path = path.with_proxy_only(*proxy.address.ip());
    }
    let direct = match path.check(&registry, Transport::Tcp, ip, port) {
        PathVerdict::Pass => "passes".to_string(),
        PathVerdict::Drop { why } => format!("is dropped ({why}): the connect hangs"),
        PathVerdict::Refuse { why } => format!("is reset ({why})"),
        PathVerdict::Redirect { why } => format!("is redirected to a captive portal ({why})"),
        PathVerdict::Inspect { why } => {
            format!("is inspected ({why}): re-signed by the firewall's CA")
        }
        PathVerdict::InterceptDns { why } => {
            format!("is answered by the site's resolver ({why})")
        }
    };
    match verdict {
        Verdict::Tunneled => {
            format!("the flow rides the tunnel; sent direct, TCP to {ip}:{port} {direct}")
        }
        Verdict::Blocked => format!("the agent drops it; sent direct, TCP to {ip}:{port} {direct}"),
        Verdict::Bypassed | Verdict::Direct => format!("TCP to {ip}:{port} {direct}"),
    }
}

fn ports_text(ports: &[u16]) -> String {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    format!("steering.ports = [{}]", ports.join(", "))
}

fn verdict_word(v: Verdict) -> &'static str {
    v.as_str()
}

fn agent_mode(mode: SteeringMode) -> Mode {
    match mode {
        SteeringMode::CloudApps => Mode::CloudApps,
        SteeringMode::Web => Mode::Web,
        SteeringMode::All => Mode::All,
    }
}
