//! The driver's view of the endpoint's apps: DNS answers learnt into the domain map, and
//! a steering decision (with its log line) for every new flow.

use std::net::SocketAddr;
use std::time::Instant;

use super::*;

/// A new app flow as the driver sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowSeen {
    /// The shell's flow id.
    pub flow: u32,
    /// The app's process name.
    pub process: String,
    /// The app's address.
    pub src: SocketAddr,
    /// Where its SYN goes (the proxy, for a CONNECT).
    pub dst: SocketAddr,
    /// The server name of its TLS ClientHello, if any.
    pub sni: Option<String>,
    /// The host and port of its HTTP CONNECT, when it goes through an on-prem proxy.
    pub connect: Option<(String, u16)>,
    /// TCP (a SYN) or UDP (a first datagram).
    pub proto: steer::FlowProto,
}

impl Agent {
    /// The driver saw a DNS answer going to an app: learn its names.
    pub fn handle_app_dns(&mut self, answer: &[u8], now: Instant) {
        self.dns_map.expire(now);
        if let Err(e) = self.dns_map.learn(answer, now) {
            self.log(
                Level::Warning,
                "nsDnsCache",
                format!("ignored a DNS answer: {e}"),
            );
        }
    }
    /// The driver saw an app open a flow (its SYN, or its HTTP CONNECT to an on-prem
    /// proxy): decide. A CONNECT is decided by its host alone; a TLS flow by its SNI when
    /// the SNI-check option is on (the flow is held until the ClientHello); any other by
    /// the names the domain map holds for the destination.
    pub fn handle_app_flow(&mut self, seen: FlowSeen, now: Instant) {
        let FlowSeen {
            flow,
            process,
            src,
            dst,
            sni,
            connect,
            proto,
        } = seen;
        let process = process.as_str();
        if let Some((host, port)) = &connect {
            return self.decide_flow(
                flow,
                process,
                (src, dst),
                vec![host.to_ascii_lowercase()],
                Some((host.clone(), *port)),
                steer::FlowProto::Tcp,
            );
        }
        let names = match sni.as_deref().filter(|_| self.config.steering.sni_check) {
            Some(sni) => {
                self.log(
                    Level::Debug,
                    "nsTunnel",
                    format!("SNI check: held flow from process: {process} to {dst} until its ClientHello, SNI {sni}"),
                );
                vec![sni.to_ascii_lowercase()]
            }
            None => self
                .dns_map
                .names(dst.ip(), now)
                .into_iter()
                .map(String::from)
                .collect(),
        };
        self.decide_flow(flow, process, (src, dst), names, None, proto);
    }

    /// Decides one flow, logs it, and opens it through the tunnel when tunneled.
    /// `connect` is the host and port of an HTTP CONNECT seen going to `dst`, a proxy.
    fn decide_flow(
        &mut self,
        flow: u32,
        process: &str,
        (src, dst): (SocketAddr, SocketAddr),
        names: Vec<String>,
        connect: Option<(String, u16)>,
        proto: steer::FlowProto,
    ) {
        // A CONNECT is judged by its host: the proxy's own address says nothing of it.
        let judged = match &connect {
            Some((_, port)) => SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, *port)),
            None => dst,
        };
        let info = steer::FlowInfo {
            process: process.to_string(),
            names,
            dst: judged,
        };
        let tunnel = match self.phase {
            Phase::Connected { op, .. } => Some(op),
            _ => None,
        };
        let decision =
            self.config
                .steering
                .decide_proto(self.mode_now(), &info, proto, tunnel.is_some());
        let (host, ip, port) = (decision.host.clone(), dst.ip(), dst.port());
        use steer::{Reason, Verdict};
        let line = match (&decision.verdict, &decision.reason) {
            (Verdict::Tunneled, _) => (
                Level::Info,
                "nsTunnel",
                format!(
                    "{} [sessId {}] Tunneling flow from addr: {src}, process: {process} to host: {host}, addr: {dst}",
                    self.proto.as_str(),
                    self.session
                ),
            ),
            (_, Reason::BypassApp(_)) => (
                Level::Info,
                "BypassAppMgr",
                format!("Bypassing connection from process: {process}, host: {host}"),
            ),
            (_, Reason::PinnedBlock(_)) => (
                Level::Info,
                "BypassAppMgr",
                format!("Dropping connection from process: {process}, host: {host}"),
            ),
            (_, Reason::DomainException(_)) => (
                Level::Info,
                "BypassAppMgr",
                format!(
                    "bypassing flow to exception host: {host}, process: {process}, Dest IP: {ip}, Dest Port: {port}"
                ),
            ),
            (_, Reason::IpException(_)) => (
                Level::Info,
                "ExceptiontMgr",
                format!("IP {ip} is found in IP address range Exception List"),
            ),
            (_, Reason::PrivateAddress) => (
                Level::Info,
                "BypassAppMgr",
                format!(
                    "Bypassing flow from process: {process} to private ip: {ip}, Port: {port}, host: {host}"
                ),
            ),
            (Verdict::Blocked, reason) => (
                Level::Warning,
                "nsTunnel",
                format!(
                    "Dropping flow from process: {process} to host: {host}, addr: {dst}: {reason}"
                ),
            ),
            (_, reason) => (
                Level::Info,
                "nsTunnel",
                format!(
                    "Not tunneling flow from process: {process} to host: {host}, addr: {dst}: {reason}"
                ),
            ),
        };
        self.log(line.0, line.1, line.2);
        let tunneled = decision.verdict == Verdict::Tunneled;
        self.push(Action::Steer { flow, decision });
        if let (true, Some(op)) = (tunneled, tunnel) {
            self.pending_flows.insert(flow);
            // The gateway opens a UDP flow for a `udp/host:port` target.
            let target = match (&connect, proto) {
                (Some((host, port)), _) => format!("{host}:{port}"),
                (None, steer::FlowProto::Tcp) => format!("{host}:{port}"),
                (None, steer::FlowProto::Udp) => format!("udp/{host}:{port}"),
            };
            self.push(Action::OpenFlow {
                op,
                flow,
                target,
                process: process.to_string(),
            });
        }
    }
}
