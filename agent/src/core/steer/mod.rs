//! Steering: for every app flow, tunneled, bypassed, direct or blocked, and why.
//!
//! - [`domains`]: exact and wildcard domain lists.
//! - [`dnsmap`]: addresses to the names apps resolved them from.
//! - [`Steering::decide`]: the verdict for one flow.
//!
//! The order of the decision (docs/steering.md):
//! 1. Scope of the mode: cloud-apps steers managed domains on the steered ports; web
//!    steers the steered ports; all steers everything. Out of scope: **direct**.
//! 2. In scope but sent direct on purpose: a bypass app (by process name), a domain or
//!    IP exception, or (unless `private_apps`) an RFC 1918 destination: **bypassed**.
//! 3. The tunnel: up, **tunneled**; down with fail close, **blocked**; down with fail
//!    open, **direct** (logged as such).

pub mod dnsmap;
pub mod domains;
pub mod nets;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

pub use dnsmap::DnsMap;
pub use domains::DomainSet;
pub use nets::NetSet;

/// The steering mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Only managed cloud apps.
    CloudApps,
    /// Web traffic: the steered ports.
    Web,
    /// All traffic.
    All,
}

/// The verdict for a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Sent through the tunnel.
    Tunneled,
    /// In scope but sent direct on purpose.
    Bypassed,
    /// Not in the mode's scope.
    Direct,
    /// Dropped.
    Blocked,
}

impl Verdict {
    /// The contract's word.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Tunneled => "tunneled",
            Verdict::Bypassed => "bypassed",
            Verdict::Direct => "direct",
            Verdict::Blocked => "blocked",
        }
    }
}

/// What the agent does with a certificate-pinned app's flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinnedAction {
    /// Send them direct (bypassed).
    Bypass,
    /// Send them through the tunnel, exempt from inspection.
    Tunnel,
    /// Drop them.
    Block,
}

/// Why a flow got its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Steered through the tunnel.
    Steered,
    /// cloud-apps mode and no name of the address is managed.
    NotManaged,
    /// The port is not a steered port.
    PortNotSteered(u16),
    /// The process is a certificate-pinned app sent direct.
    BypassApp(String),
    /// The process is a certificate-pinned app tunneled without inspection.
    PinnedTunnel(String),
    /// The process is a certificate-pinned app whose flows are dropped.
    PinnedBlock(String),
    /// A domain exception matched.
    DomainException(String),
    /// An IP or CIDR exception matched.
    IpException(String),
    /// An RFC 1918 destination.
    PrivateAddress,
    /// The tunnel is down and fail close is on.
    FailClose,
    /// The tunnel is down and fail close is off.
    FailOpen,
    /// DNS is not steered (`steer_dns` off).
    DnsNotSteered,
    /// A UDP flow outside mode `all` (cloud-apps and web steer TCP only).
    UdpNotSteered,
}

/// The transport of an app flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlowProto {
    /// A TCP connection (decided at its SYN, or its CONNECT).
    #[default]
    Tcp,
    /// A UDP flow (decided at its first datagram).
    Udp,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Steered => f.write_str("steered through the tunnel"),
            Reason::NotManaged => f.write_str("not a managed domain"),
            Reason::PortNotSteered(p) => write!(f, "port {p} is not steered"),
            Reason::BypassApp(a) => write!(f, "bypass app {a}"),
            Reason::PinnedTunnel(a) => write!(f, "pinned app {a}, tunneled without inspection"),
            Reason::PinnedBlock(a) => write!(f, "pinned app {a}, blocked"),
            Reason::DomainException(d) => write!(f, "domain exception {d}"),
            Reason::IpException(n) => write!(f, "IP exception {n}"),
            Reason::PrivateAddress => f.write_str("private address (RFC 1918)"),
            Reason::FailClose => f.write_str("tunnel down, fail close"),
            Reason::FailOpen => f.write_str("tunnel down, fail open"),
            Reason::DnsNotSteered => f.write_str("DNS is not steered"),
            Reason::UdpNotSteered => f.write_str("UDP is steered only in mode all"),
        }
    }
}

/// The steering configuration.
#[derive(Debug, Clone)]
pub struct Steering {
    /// The mode.
    pub mode: Mode,
    /// Steered ports (modes cloud-apps and web).
    pub ports: Vec<u16>,
    /// Managed domains (mode cloud-apps).
    pub managed: DomainSet,
    /// Domain exceptions.
    pub exception_domains: DomainSet,
    /// IP and CIDR exceptions.
    pub exception_nets: NetSet,
    /// Certificate-pinned apps by lower-case process name, with their action.
    pub pinned_apps: BTreeMap<String, PinnedAction>,
    /// Mode all: DNS goes through the tunnel too.
    pub steer_dns: bool,
    /// RFC 1918 destinations are steered.
    pub private_apps: bool,
    /// Decide TLS flows by their ClientHello's SNI instead of the DNS map.
    pub sni_check: bool,
    /// Block steered flows while the tunnel is down.
    pub fail_close: bool,
}

/// One flow as the driver sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowInfo {
    /// The app's process name.
    pub process: String,
    /// The names of the destination, most recent first (empty: no DNS answer seen).
    pub names: Vec<String>,
    /// The destination.
    pub dst: SocketAddr,
}

/// A verdict with its reason and the host it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The verdict.
    pub verdict: Verdict,
    /// Why.
    pub reason: Reason,
    /// The host name the decision used (the destination IP when no name is known).
    pub host: String,
}

impl Default for Steering {
    /// The client's defaults: cloud-apps mode on ports 80 and 443, nothing managed, no
    /// exceptions, fail open.
    fn default() -> Steering {
        Steering {
            mode: Mode::CloudApps,
            ports: vec![80, 443],
            managed: DomainSet::default(),
            exception_domains: DomainSet::default(),
            exception_nets: NetSet::default(),
            pinned_apps: BTreeMap::new(),
            steer_dns: false,
            private_apps: false,
            sni_check: false,
            fail_close: false,
        }
    }
}

impl Steering {
    /// Parses exception entries: domains, `*.domains`, IPs and CIDRs.
    pub fn add_exception(&mut self, entry: &str) {
        if let Some(net) = parse_net(entry) {
            self.exception_nets.insert(net.0, net.1);
        } else {
            self.exception_domains.insert(entry);
        }
    }

    /// The verdict for `flow` with the tunnel up or down.
    pub fn decide(&self, flow: &FlowInfo, tunnel_up: bool) -> Decision {
        self.decide_in(self.mode, flow, tunnel_up)
    }

    /// The verdict for `flow` as if the mode were `mode` (dynamic steering: the on-prem
    /// mode replaces the configured one while the client is on-prem).
    pub fn decide_in(&self, mode: Mode, flow: &FlowInfo, tunnel_up: bool) -> Decision {
        self.decide_proto(mode, flow, FlowProto::Tcp, tunnel_up)
    }

    /// The verdict for a TCP or UDP `flow` in `mode`. Modes cloud-apps and web steer
    /// TCP only; mode `all` steers UDP like TCP (DNS only with `steer_dns`).
    pub fn decide_proto(
        &self,
        mode: Mode,
        flow: &FlowInfo,
        proto: FlowProto,
        tunnel_up: bool,
    ) -> Decision {
        let ip = flow.dst.ip();
        let port = flow.dst.port();
        let managed_name = flow.names.iter().find(|n| self.managed.matches(n));
        let host = managed_name
            .or(flow.names.first())
            .cloned()
            .unwrap_or_else(|| ip.to_string());
        let decision = |verdict, reason| Decision {
            verdict,
            reason,
            host: host.clone(),
        };
        let port_steered = self.ports.contains(&port);
        if proto == FlowProto::Udp && mode != Mode::All {
            return decision(Verdict::Direct, Reason::UdpNotSteered);
        }
        match mode {
            Mode::CloudApps if managed_name.is_none() => {
                return decision(Verdict::Direct, Reason::NotManaged);
            }
            Mode::CloudApps | Mode::Web if !port_steered => {
                return decision(Verdict::Direct, Reason::PortNotSteered(port));
            }
            Mode::All if port == 53 && !self.steer_dns => {
                return decision(Verdict::Direct, Reason::DnsNotSteered);
            }
            _ => {}
        }
        let process = flow.process.to_ascii_lowercase();
        match self.pinned_apps.get(&process) {
            Some(PinnedAction::Bypass) => {
                return decision(Verdict::Bypassed, Reason::BypassApp(flow.process.clone()));
            }
            Some(PinnedAction::Block) => {
                return decision(Verdict::Blocked, Reason::PinnedBlock(flow.process.clone()));
            }
            Some(PinnedAction::Tunnel) if tunnel_up => {
                return decision(
                    Verdict::Tunneled,
                    Reason::PinnedTunnel(flow.process.clone()),
                );
            }
            // Down: like any steered flow, below.
            Some(PinnedAction::Tunnel) | None => {}
        }
        if let Some(pattern) = flow
            .names
            .iter()
            .find_map(|n| self.exception_domains.find(n))
        {
            return decision(Verdict::Bypassed, Reason::DomainException(pattern));
        }
        if let Some((net, len)) = self.exception_nets.find(ip) {
            return decision(
                Verdict::Bypassed,
                Reason::IpException(format!("{net}/{len}")),
            );
        }
        if !self.private_apps && is_private(ip) {
            return decision(Verdict::Bypassed, Reason::PrivateAddress);
        }
        match (tunnel_up, self.fail_close) {
            (true, _) => decision(Verdict::Tunneled, Reason::Steered),
            (false, true) => decision(Verdict::Blocked, Reason::FailClose),
            (false, false) => decision(Verdict::Direct, Reason::FailOpen),
        }
    }
}

/// RFC 1918 (IPv4) and unique local (IPv6) addresses.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_private(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// `a.b.c.d`, `a.b.c.d/n` and IPv6 forms.
pub fn parse_net(entry: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match entry.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u8>().ok()?)),
        None => (entry, None),
    };
    let ip: IpAddr = addr.trim().parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = len.unwrap_or(max);
    (len <= max).then_some((ip, len))
}

#[cfg(test)]
mod tests;
