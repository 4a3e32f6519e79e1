//! The driver's view of the endpoint's apps: DNS answers learnt into the domain map, and
//! a steering decision (with its log line) for every new flow.

use std::net::SocketAddr;
use std::time::Instant;

use super::*;

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
    /// The driver saw an app open a flow (its SYN) from `src` to `dst`: decide. `sni` is
    /// the server name of the flow's TLS ClientHello, when it has one: with the SNI-check
    /// option on, the flow is held until then and decided by that name alone.
    pub fn handle_app_flow(
        &mut self,
        flow: u32,
        process: &str,
        src: SocketAddr,
        dst: SocketAddr,
        sni: Option<&str>,
        now: Instant,
    ) {
        let names = match sni.filter(|_| self.config.steering.sni_check) {
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
        let info = steer::FlowInfo {
            process: process.to_string(),
            names,
            dst,
        };
        let tunnel = match self.phase {
            Phase::Connected { op, .. } => Some(op),
            _ => None,
        };
        let decision = self
            .config
            .steering
            .decide_in(self.mode_now(), &info, tunnel.is_some());
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
            self.push(Action::OpenFlow {
                op,
                flow,
                target: format!("{host}:{port}"),
                process: process.to_string(),
            });
        }
    }
}
