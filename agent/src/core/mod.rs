//! The sans-IO agent core.
//!
//! # Call order
//!
//! Create an [`Agent`], call [`Agent::handle_start`], then loop: drain
//! [`Agent::poll_action`] until it returns `None` and carry each action out; wait until
//! [`Agent::poll_timeout`]'s deadline or an IO result, whichever comes first; feed the
//! result with the matching `handle_*` (or [`Agent::handle_timeout`] when the deadline
//! passes). Every `handle_*` takes the current time; the core never reads a clock.
//!
//! # What it models (clients before 96.1)
//!
//! Resolve the gateway name by DNS over HTTPS with ECS (EDNS), fall back to the local
//! resolver (LDNS); open a pinned tunnel to the answer; on failure do the same for the
//! backup gateway; when everything failed or an established tunnel dies, wait a capped
//! exponential backoff with jitter and start over from the primary.

mod config;
pub mod dns;
mod gslb;
mod io;
mod log;
pub mod onprem;
pub mod steer;
mod timer;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

pub use config::{Config, Names, Region, TunnelProto, version_at_least};
pub use io::{Action, DnsTransport, HttpOutcome, LdnsOutcome, NetError, OpId, TunnelEvent};
pub use log::{Level, LogLine};
pub use timer::*;

use dns::Answer;

/// How the gateway name was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Method {
    /// The GSLB REST API (clients 96.1 and later).
    Gslb,
    /// DNS over HTTPS with ECS.
    Edns,
    /// The local resolver.
    Ldns,
}

impl Method {
    /// The word the client's log uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Gslb => "GSLB",
            Method::Edns => "EDNS",
            Method::Ldns => "LDNS",
        }
    }
}

/// Which gateway the agent is trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `gateway-<tenant>`.
    Primary,
    /// `gateway-backup-<tenant>`.
    Backup,
}

/// The tunnel status the client reports (`nsdiag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelStatus {
    /// Not started, or stopped.
    Disconnected,
    /// Resolving or connecting.
    Connecting,
    /// A tunnel is up.
    Connected,
}

impl TunnelStatus {
    /// The status string the client uses.
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelStatus::Disconnected => "NSTUNNEL_DISCONNECTED",
            TunnelStatus::Connecting => "NSTUNNEL_CONNECTING",
            TunnelStatus::Connected => "NSTUNNEL_CONNECTED",
        }
    }
}

/// What the agent reports about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Tunnel status.
    pub tunnel: TunnelStatus,
    /// The tunnel's protocol, address and role while connected.
    pub gateway: Option<(TunnelProto, SocketAddr, Role)>,
    /// How the gateway of the current (or last) tunnel was resolved.
    pub resolved_by: Option<Method>,
}

/// The agent's state machine.
#[derive(Debug)]
pub struct Agent {
    config: Config,
    names: Names,
    proto: TunnelProto,
    methods: Vec<Method>,
    rng: fastrand::Rng,
    phase: Phase,
    status: TunnelStatus,
    resolved_by: Option<Method>,
    actions: VecDeque<Action>,
    timers: BTreeMap<Timer, Instant>,
    next_op: u64,
    failures: u32,
    session: u32,
    keepalive_seq: u64,
    dns_map: steer::DnsMap,
    pending_flows: std::collections::BTreeSet<u32>,
    location: onprem::Location,
    onprem: Option<onprem::Pending>,
}

#[derive(Debug)]
enum Phase {
    Idle,
    Resolving(Resolving),
    Probing(gslb::Probing),
    Connecting {
        target: Target,
        op: OpId,
        /// Next-best targets (GSLB's other PoPs) to try before the backup.
        rest: Vec<Target>,
    },
    Connected {
        target: Target,
        op: OpId,
    },
    WaitingToReconnect,
    Stopped,
}

/// A gateway to connect to: its name (the TLS server name), address, and how it was
/// found.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    role: Role,
    method: Method,
    name: String,
    addr: SocketAddr,
}

#[derive(Debug)]
struct Resolving {
    role: Role,
    method_index: usize,
    op: OpId,
    query_id: u16,
    tries: u32,
    transport: DnsTransport,
}

impl Agent {
    /// A new agent that has not started yet.
    pub fn new(config: Config) -> Agent {
        let names = Names::new(&config.tenant, config.region);
        let proto = preferred_proto(&config);
        Agent {
            rng: fastrand::Rng::with_seed(config.seed),
            names,
            proto,
            methods: if config::version_at_least(&config.version, 96, 1) {
                vec![Method::Gslb, Method::Edns, Method::Ldns]
            } else {
                vec![Method::Edns, Method::Ldns]
            },
            config,
            phase: Phase::Idle,
            status: TunnelStatus::Disconnected,
            resolved_by: None,
            actions: VecDeque::new(),
            timers: BTreeMap::new(),
            next_op: 0,
            failures: 0,
            session: 0,
            keepalive_seq: 0,
            dns_map: steer::DnsMap::default(),
            pending_flows: std::collections::BTreeSet::new(),
            location: onprem::Location::Unknown,
            onprem: None,
        }
    }

    /// The gateway names this agent uses.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// What the agent reports about itself.
    pub fn status(&self) -> Status {
        let gateway = match &self.phase {
            Phase::Connected { target, .. } => Some((self.proto, target.addr, target.role)),
            _ => None,
        };
        Status {
            tunnel: self.status,
            gateway,
            resolved_by: self.resolved_by,
        }
    }

    /// Start the agent.
    pub fn handle_start(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Idle | Phase::Stopped) {
            return;
        }
        self.log(
            Level::Info,
            "CTunnelMgr",
            format!(
                "Starting client version {} for tenant {}",
                self.config.version, self.config.tenant
            ),
        );
        if self.config.tunnel == TunnelProto::Dtls && !self.config.dtls_available {
            self.log(
                Level::Warning,
                "nsTunnel",
                "DTLS is not available on this endpoint, using TLS".to_string(),
            );
        }
        self.failures = 0;
        self.proto = self.preferred_proto();
        self.start_onprem_check(now);
        self.begin_attempt(Role::Primary, now);
    }

    /// Stop the agent: close the tunnel and cancel everything in flight.
    pub fn handle_stop(&mut self, _now: Instant) {
        self.abandon(Phase::Stopped);
        self.log(
            Level::Info,
            "CTunnelMgr",
            "Client stopped by user".to_string(),
        );
        self.set_status(TunnelStatus::Disconnected);
    }

    /// The endpoint moved to another network: drop the tunnel and everything in flight,
    /// go back to the preferred protocol (DTLS after a fallback to TLS), and connect again
    /// at once, re-resolving the gateway.
    pub fn handle_network_change(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Idle | Phase::Stopped) {
            return;
        }
        self.abandon(Phase::Idle);
        self.log(
            Level::Info,
            "CTunnelMgr",
            "Network change detected, reconnecting".to_string(),
        );
        self.set_status(TunnelStatus::Disconnected);
        self.failures = 0;
        self.proto = self.preferred_proto();
        self.location = onprem::Location::Unknown;
        self.start_onprem_check(now);
        self.begin_attempt(Role::Primary, now);
    }

    /// Cancels whatever is in flight, closes the tunnel, and moves to `next`.
    fn abandon(&mut self, next: Phase) {
        match std::mem::replace(&mut self.phase, next) {
            Phase::Resolving(r) => self.push(Action::Cancel { op: r.op }),
            Phase::Probing(p) => {
                for op in p.pending_ops() {
                    self.push(Action::Cancel { op });
                }
            }
            Phase::Connecting { op, .. } => self.push(Action::Cancel { op }),
            Phase::Connected { op, .. } => {
                self.push(Action::CloseTunnel { op });
                for flow in std::mem::take(&mut self.pending_flows) {
                    self.push(Action::FlowResult {
                        flow,
                        result: Err("tunnel closed".to_string()),
                    });
                }
            }
            Phase::Idle | Phase::WaitingToReconnect | Phase::Stopped => {}
        }
        self.timers.clear();
    }

    /// A DNS-over-HTTPS exchange finished.
    pub fn handle_doh(&mut self, op: OpId, outcome: HttpOutcome, now: Instant) {
        let Phase::Resolving(r) = &self.phase else {
            return;
        };
        if r.op != op || self.methods[r.method_index] != Method::Edns {
            return;
        }
        let query_id = r.query_id;
        self.timers.remove(&Timer::DohTimeout);
        match outcome {
            HttpOutcome::Failed(err) => {
                let (code, text) = curl_error(&err);
                self.log(
                    Level::Error,
                    "downloader",
                    format!("curl_easy_perform failed, code {code}, error {text}"),
                );
                self.edns_failed(now);
            }
            HttpOutcome::Response { status, .. } if status != 200 => {
                self.log(
                    Level::Error,
                    "downloader",
                    format!("SSL resolve EDNS request returned HTTP status {status}"),
                );
                self.edns_failed(now);
            }
            HttpOutcome::Response { body, .. } => match dns::read_answer(query_id, &body) {
                Ok(Answer::Addresses(ips)) => {
                    self.log(
                        Level::Info,
                        "restapi",
                        "SSL resolve EDNS downloaded successfully".to_string(),
                    );
                    self.resolved(Method::Edns, ips[0], now);
                }
                Ok(other) => {
                    let name = self.target_name().to_string();
                    self.log(
                        Level::Error,
                        "dnsResolver",
                        format!("EDNS answer for {name}: {}", describe_answer(&other)),
                    );
                    self.edns_failed(now);
                }
                Err(e) => {
                    self.log(
                        Level::Error,
                        "dnsResolver",
                        format!("EDNS answer unusable: {e}"),
                    );
                    self.edns_failed(now);
                }
            },
        }
    }

    /// A local resolver query finished.
    pub fn handle_ldns(&mut self, op: OpId, outcome: LdnsOutcome, now: Instant) {
        if self.onprem_answer(op, &outcome) {
            return;
        }
        let Phase::Resolving(r) = &self.phase else {
            return;
        };
        if r.op != op || self.methods[r.method_index] != Method::Ldns {
            return;
        }
        let query_id = r.query_id;
        let transport = r.transport;
        self.timers.remove(&Timer::LdnsTry);
        let name = self.target_name().to_string();
        match outcome {
            LdnsOutcome::Failed(err) => {
                self.log(
                    Level::Error,
                    "dnsResolver",
                    format!(
                        "LDNS query for {name} to {} failed: {err}",
                        self.config.ldns
                    ),
                );
                self.ldns_try_failed(now);
            }
            LdnsOutcome::Response(bytes) => match dns::read_answer(query_id, &bytes) {
                Ok(Answer::Addresses(ips)) => self.resolved(Method::Ldns, ips[0], now),
                Ok(Answer::Truncated) if transport == DnsTransport::Udp => {
                    self.log(
                        Level::Info,
                        "dnsResolver",
                        format!("LDNS answer for {name} truncated, retrying over TCP"),
                    );
                    self.send_ldns(DnsTransport::Tcp, now);
                }
                Ok(other) => {
                    self.log(
                        Level::Error,
                        "dnsResolver",
                        format!("LDNS answer for {name}: {}", describe_answer(&other)),
                    );
                    self.method_failed(now);
                }
                Err(e) => {
                    self.log(
                        Level::Error,
                        "dnsResolver",
                        format!("LDNS answer unusable: {e}"),
                    );
                    self.ldns_try_failed(now);
                }
            },
        }
    }

    /// Something happened to a tunnel.
    pub fn handle_tunnel(&mut self, op: OpId, event: TunnelEvent, now: Instant) {
        match (&self.phase, event) {
            (Phase::Connecting { op: cur, .. }, TunnelEvent::Connected) if *cur == op => {
                self.tunnel_up(now)
            }
            (Phase::Connecting { op: cur, .. }, TunnelEvent::Failed(err)) if *cur == op => {
                self.timers.remove(&Timer::TunnelConnect);
                self.connect_failed(&err, now);
            }
            (Phase::Connected { op: cur, .. }, TunnelEvent::KeepaliveAck { .. }) if *cur == op => {
                self.timers
                    .insert(Timer::KeepaliveDeadline, now + KEEPALIVE_TIMEOUT);
            }
            (Phase::Connected { op: cur, .. }, TunnelEvent::Closed(err)) if *cur == op => {
                self.tunnel_down(&err.to_string(), now);
            }
            (Phase::Connected { op: cur, .. }, TunnelEvent::FlowOpened { flow })
                if *cur == op && self.pending_flows.contains(&flow) =>
            {
                self.pending_flows.remove(&flow);
                self.push(Action::FlowResult {
                    flow,
                    result: Ok(()),
                });
            }
            (Phase::Connected { op: cur, .. }, TunnelEvent::FlowRefused { flow, reason })
                if *cur == op && self.pending_flows.contains(&flow) =>
            {
                self.pending_flows.remove(&flow);
                self.log(
                    Level::Warning,
                    "nsTunnel",
                    format!(
                        "{} [sessId {}] Gateway refused flow {flow}: {reason}",
                        self.proto.as_str(),
                        self.session
                    ),
                );
                self.push(Action::FlowResult {
                    flow,
                    result: Err(reason),
                });
            }
            _ => {}
        }
    }

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

    /// Time has reached (or passed) the deadline from [`Agent::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((&timer, &at)) = self.timers.iter().min_by_key(|(t, at)| (**at, **t)) {
            if at > now {
                break;
            }
            self.timers.remove(&timer);
            self.fire(timer, now);
        }
    }

    /// The next action for the shell, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next deadline and why it is set.
    pub fn poll_timeout(&self) -> Option<(Instant, Timer)> {
        self.timers
            .iter()
            .map(|(t, at)| (*at, *t))
            .min_by_key(|(at, t)| (*at, *t))
    }

    fn fire(&mut self, timer: Timer, now: Instant) {
        match timer {
            Timer::DohTimeout => {
                if let Phase::Resolving(r) = &self.phase {
                    let op = r.op;
                    self.push(Action::Cancel { op });
                    self.log(
                        Level::Error,
                        "downloader",
                        "curl_easy_perform failed, code 28, error Timeout was reached".to_string(),
                    );
                    self.edns_failed(now);
                }
            }
            Timer::GslbTimeout => self.gslb_timed_out(now),
            Timer::OnPremCheck => self.onprem_timed_out(),
            Timer::ProbeDeadline => self.probes_done(now),
            Timer::LdnsTry => {
                if let Phase::Resolving(r) = &self.phase {
                    let (op, tries) = (r.op, r.tries);
                    self.push(Action::Cancel { op });
                    let name = self.target_name().to_string();
                    self.log(
                        Level::Warning,
                        "dnsResolver",
                        format!(
                            "LDNS query for {name} to {} timed out (try {tries} of {LDNS_TRIES})",
                            self.config.ldns
                        ),
                    );
                    self.ldns_try_failed(now);
                }
            }
            Timer::TunnelConnect => {
                if let Phase::Connecting { op, .. } = self.phase {
                    self.push(Action::Cancel { op });
                    let err = NetError::Other(format!(
                        "connect timed out after {}s",
                        TUNNEL_CONNECT_TIMEOUT.as_secs()
                    ));
                    self.connect_failed(&err, now);
                }
            }
            Timer::KeepaliveSend => {
                if let Phase::Connected { op, .. } = self.phase {
                    self.keepalive_seq += 1;
                    let seq = self.keepalive_seq;
                    self.push(Action::SendKeepalive { op, seq });
                    self.timers
                        .insert(Timer::KeepaliveSend, now + KEEPALIVE_INTERVAL);
                }
            }
            Timer::KeepaliveDeadline => {
                let why = format!(
                    "no answer to keepalive for {}s",
                    KEEPALIVE_TIMEOUT.as_secs()
                );
                self.tunnel_down(&why, now);
            }
            Timer::Reconnect => {
                if matches!(self.phase, Phase::WaitingToReconnect) {
                    self.begin_attempt(Role::Primary, now);
                }
            }
        }
    }

    fn begin_attempt(&mut self, role: Role, now: Instant) {
        self.set_status(TunnelStatus::Connecting);
        let name = self.name_for(role).to_string();
        self.log(
            Level::Info,
            "nsTunnel",
            format!(
                "{} Connecting to {name}:{}",
                self.proto.as_str(),
                self.config.gateway_port
            ),
        );
        self.start_method(role, 0, now);
    }

    fn start_method(&mut self, role: Role, method_index: usize, now: Instant) {
        let query_id = self.rng.u16(..);
        let op = self.new_op();
        self.phase = Phase::Resolving(Resolving {
            role,
            method_index,
            op,
            query_id,
            tries: 0,
            transport: DnsTransport::Udp,
        });
        match self.methods[method_index] {
            Method::Edns => {
                let name = self.name_for(role).to_string();
                let body = dns::build_query(query_id, &name, Some(self.config.client_ip));
                self.push(Action::QueryDoh {
                    op,
                    server_name: self.config.doh_name.clone(),
                    addr: self.config.doh_addr,
                    body,
                });
                self.timers.insert(Timer::DohTimeout, now + DOH_TIMEOUT);
            }
            Method::Ldns => self.send_ldns(DnsTransport::Udp, now),
            // GSLB picks PoPs for the primary gateway only; the backup has one name.
            Method::Gslb if role == Role::Backup => self.start_method(role, method_index + 1, now),
            Method::Gslb => self.start_gslb(op, now),
        }
    }

    /// Sends the next local resolver try of the current resolution.
    fn send_ldns(&mut self, transport: DnsTransport, now: Instant) {
        let op = self.new_op();
        let Phase::Resolving(r) = &mut self.phase else {
            return;
        };
        r.op = op;
        r.tries += 1;
        r.transport = transport;
        let (query_id, role) = (r.query_id, r.role);
        let name = self.name_for(role).to_string();
        let query = dns::build_query(query_id, &name, None);
        self.push(Action::QueryLdns {
            op,
            addr: self.config.ldns,
            transport,
            query,
        });
        self.timers.insert(Timer::LdnsTry, now + LDNS_TRY_TIMEOUT);
    }

    fn ldns_try_failed(&mut self, now: Instant) {
        let Phase::Resolving(r) = &self.phase else {
            return;
        };
        if r.tries < LDNS_TRIES {
            let transport = r.transport;
            self.send_ldns(transport, now);
        } else {
            self.method_failed(now);
        }
    }

    fn edns_failed(&mut self, now: Instant) {
        self.log(
            Level::Error,
            "restapi",
            "Failed to download SSL resolve EDNS, Error: -2".to_string(),
        );
        self.method_failed(now);
    }

    /// The current resolution method failed: log it and try the next one.
    fn method_failed(&mut self, now: Instant) {
        let Phase::Resolving(r) = &self.phase else {
            return;
        };
        let (role, index) = (r.role, r.method_index);
        self.timers.remove(&Timer::LdnsTry);
        self.timers.remove(&Timer::DohTimeout);
        self.timers.remove(&Timer::GslbTimeout);
        let name = self.name_for(role).to_string();
        let method = self.methods[index];
        self.log(
            Level::Error,
            "dnsResolver",
            format!("Failed to resolve {name} by {}", method.as_str()),
        );
        if index + 1 < self.methods.len() {
            self.start_method(role, index + 1, now);
        } else {
            self.role_failed(role, now);
        }
    }

    fn resolved(&mut self, method: Method, ip: Ipv4Addr, now: Instant) {
        let Phase::Resolving(r) = &self.phase else {
            return;
        };
        let role = r.role;
        self.timers.remove(&Timer::LdnsTry);
        self.timers.remove(&Timer::DohTimeout);
        let name = self.name_for(role).to_string();
        self.log(
            Level::Info,
            "dnsResolver",
            format!("Hostname {name} resolved by {}", method.as_str()),
        );
        let addr = SocketAddr::from((ip, self.config.gateway_port));
        let target = Target {
            role,
            method,
            name,
            addr,
        };
        self.connect(target, Vec::new(), now);
    }

    /// Opens the tunnel to `target`; `rest` are the next-best targets.
    fn connect(&mut self, target: Target, rest: Vec<Target>, now: Instant) {
        let proto = self.proto.as_str();
        self.log(
            Level::Info,
            "nsssl",
            format!(
                "{proto} remote host {} resolved to {}, port {}",
                target.name,
                target.addr.ip(),
                target.addr.port()
            ),
        );
        let op = self.new_op();
        self.push(Action::OpenTunnel {
            op,
            server_name: target.name.clone(),
            addr: target.addr,
            proto: self.proto,
        });
        self.phase = Phase::Connecting { target, op, rest };
        self.timers
            .insert(Timer::TunnelConnect, now + TUNNEL_CONNECT_TIMEOUT);
    }

    fn connect_failed(&mut self, err: &NetError, now: Instant) {
        let Phase::Connecting { target, rest, .. } =
            std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return;
        };
        let proto = self.proto.as_str();
        let (name, addr) = (&target.name, target.addr);
        let line = match err {
            NetError::Tls(reason) => {
                format!("{proto} handshake with {name}({addr}) failed: {reason}")
            }
            other => format!(
                "{proto} failed to connect to {name}:{}, err: {other}",
                addr.port()
            ),
        };
        self.log(Level::Error, "nsssl", line);
        if self.proto == TunnelProto::Dtls {
            // DTLS failed: the client moves to TLS and stays there until it restarts.
            self.log(
                Level::Error,
                "nsTunnel",
                "DTLS nsssl_connect failed, err: -1".to_string(),
            );
            self.log(
                Level::Warning,
                "nsTunnel",
                format!("DTLS to {name} failed, falling back to TLS"),
            );
            self.proto = TunnelProto::Tls;
            return self.connect(target, rest, now);
        }
        let mut rest = rest.into_iter();
        match rest.next() {
            Some(next) => {
                self.log(
                    Level::Warning,
                    "nsTunnel",
                    format!("{proto} Trying the next PoP: {}", next.name),
                );
                self.connect(next, rest.collect(), now);
            }
            None => self.role_failed(target.role, now),
        }
    }

    /// Every way to reach the gateway in `role` failed.
    fn role_failed(&mut self, role: Role, now: Instant) {
        match role {
            Role::Primary => {
                let backup = self.names.backup.clone();
                self.log(
                    Level::Warning,
                    "nsTunnel",
                    format!(
                        "{} Failing over to backup gateway {backup}",
                        self.proto.as_str()
                    ),
                );
                self.begin_attempt(Role::Backup, now);
            }
            Role::Backup => {
                self.log(
                    Level::Error,
                    "nsTunnel",
                    format!(
                        "{} Unable to connect to {} or {}",
                        self.proto.as_str(),
                        self.names.gateway,
                        self.names.backup
                    ),
                );
                self.schedule_reconnect(now);
            }
        }
    }

    fn tunnel_up(&mut self, now: Instant) {
        let Phase::Connecting { target, op, .. } = std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return;
        };
        self.timers.remove(&Timer::TunnelConnect);
        self.session += 1;
        self.failures = 0;
        self.resolved_by = Some(target.method);
        let line = if target.method == Method::Gslb {
            format!(
                "{} SSL connected to the gslbgw server: {}({}):{} successfully",
                self.proto.as_str(),
                target.name,
                target.addr.ip(),
                target.addr.port()
            )
        } else {
            format!(
                "{} [sessId {}] SSL connected to the server: {}:{} successfully",
                self.proto.as_str(),
                self.session,
                target.name,
                target.addr.port()
            )
        };
        self.phase = Phase::Connected { target, op };
        self.log(Level::Info, "nsTunnel", line);
        self.set_status(TunnelStatus::Connected);
        self.timers
            .insert(Timer::KeepaliveSend, now + KEEPALIVE_INTERVAL);
        self.timers
            .insert(Timer::KeepaliveDeadline, now + KEEPALIVE_TIMEOUT);
    }

    fn tunnel_down(&mut self, why: &str, now: Instant) {
        let Phase::Connected { op, .. } = self.phase else {
            return;
        };
        self.timers.remove(&Timer::KeepaliveSend);
        self.timers.remove(&Timer::KeepaliveDeadline);
        self.push(Action::CloseTunnel { op });
        for flow in std::mem::take(&mut self.pending_flows) {
            self.push(Action::FlowResult {
                flow,
                result: Err("tunnel closed".to_string()),
            });
        }
        self.log(
            Level::Error,
            "nsTunnel",
            format!(
                "{} [sessId {}] Tunnel disconnected: {why}",
                self.proto.as_str(),
                self.session
            ),
        );
        self.schedule_reconnect(now);
    }

    fn schedule_reconnect(&mut self, now: Instant) {
        self.failures += 1;
        let delay = backoff_delay(self.failures, self.rng.f64());
        self.phase = Phase::WaitingToReconnect;
        self.set_status(TunnelStatus::Disconnected);
        self.log(
            Level::Info,
            "nsTunnel",
            format!(
                "Reconnecting in {}.{:03}s (attempt {})",
                delay.as_secs(),
                delay.subsec_millis(),
                self.failures + 1
            ),
        );
        self.timers.insert(Timer::Reconnect, now + delay);
    }

    fn preferred_proto(&self) -> TunnelProto {
        preferred_proto(&self.config)
    }

    fn set_status(&mut self, status: TunnelStatus) {
        if self.status != status {
            self.status = status;
            self.log(
                Level::Info,
                "nsTunnel",
                format!("Tunnel status {}", status.as_str()),
            );
        }
    }

    fn target_name(&self) -> &str {
        match &self.phase {
            Phase::Resolving(r) => self.name_for(r.role),
            Phase::Connecting { target, .. } | Phase::Connected { target, .. } => &target.name,
            _ => &self.names.gateway,
        }
    }

    fn name_for(&self, role: Role) -> &str {
        match role {
            Role::Primary => &self.names.gateway,
            Role::Backup => &self.names.backup,
        }
    }

    fn new_op(&mut self) -> OpId {
        self.next_op += 1;
        OpId(self.next_op)
    }

    fn push(&mut self, action: Action) {
        self.actions.push_back(action);
    }

    fn log(&mut self, level: Level, component: &'static str, text: String) {
        self.push(Action::Log(LogLine {
            level,
            component,
            text,
        }));
    }
}

/// DTLS when configured and available, else TLS.
fn preferred_proto(config: &Config) -> TunnelProto {
    if config.tunnel == TunnelProto::Dtls && !config.dtls_available {
        TunnelProto::Tls
    } else {
        config.tunnel
    }
}

/// The curl error code and text the real client logs for a failed download.
fn curl_error(err: &NetError) -> (u32, String) {
    match err {
        NetError::Refused => (7, "Couldn't connect to server".to_string()),
        NetError::Reset => (56, "Failure when receiving data from the peer".to_string()),
        NetError::Closed => (
            52,
            "Server returned nothing (no headers, no data)".to_string(),
        ),
        NetError::Tls(reason) => (
            60,
            format!("SSL peer certificate or SSH remote key was not OK ({reason})"),
        ),
        NetError::Other(text) => (55, format!("Failed sending data to the peer ({text})")),
    }
}

fn describe_answer(answer: &Answer) -> String {
    match answer {
        Answer::Addresses(ips) => format!("{} address(es)", ips.len()),
        Answer::Truncated => "truncated".to_string(),
        Answer::Rcode(rcode) => format!("rcode {rcode}"),
        Answer::Empty => "no address in the answer".to_string(),
    }
}
