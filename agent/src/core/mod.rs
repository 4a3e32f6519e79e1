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
//! # What it models
//!
//! Resolve the gateway: GSLB with RTT probes for clients 96.1+ (`gslb`), DNS over HTTPS
//! with ECS (EDNS), then the local resolver (LDNS) (`resolve`); open a pinned tunnel,
//! DTLS first with a sticky fallback to TLS, then the next-best PoP, then the backup;
//! when everything failed or an established tunnel dies, wait a capped exponential
//! backoff with jitter and start over from the primary (`tunnel`). Decide every app
//! flow (`flows`, `steer`), with on-prem detection switching the mode (`onprem`).

mod config;
pub mod control;
pub mod dns;
mod flows;
mod gslb;
mod io;
mod log;
pub mod onprem;
mod portal;
mod proxy;
mod resolve;
pub mod steer;
mod timer;
mod tunnel;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

pub use config::{Config, Names, ProxyDiscovery, Region, TunnelProto, version_at_least};
pub use flows::FlowSeen;
pub use io::{
    Action, DnsTransport, HttpOutcome, LdnsOutcome, NetError, OpId, PacFetched, TunnelEvent,
};
pub use log::{Level, LogLine};
pub use timer::*;

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
    /// While connected through an HTTP proxy: the name the agent asked the proxy to
    /// CONNECT to, and the proxy. The proxy resolves that name itself, so the PoP it
    /// reaches may not be the address in `gateway` (which is the agent's own answer).
    pub via_proxy: Option<(String, SocketAddr)>,
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
    /// The proxies found for this round of connection attempts (`None`: not looked
    /// for yet).
    proxies: Option<Vec<SocketAddr>>,
    /// The captive-portal check in flight.
    portal_check: Option<OpId>,
    /// What the last captive-portal check found.
    portal: portal::Portal,
    /// The configuration downloads from the control plane.
    config_state: control::ConfigState,
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
    /// Direct connects to `target` failed; fetching the PAC file to find a proxy.
    FindingProxy {
        target: Target,
        op: OpId,
        rest: Vec<Target>,
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
    /// Reach it through this HTTP proxy with CONNECT.
    proxy: Option<SocketAddr>,
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

/// The ways a client of `version` resolves its gateway, in the order it tries them:
/// GSLB first from 96.1, then DNS over HTTPS with ECS, then the local resolver.
pub fn resolution_chain(version: &str) -> Vec<Method> {
    if config::version_at_least(version, 96, 1) {
        vec![Method::Gslb, Method::Edns, Method::Ldns]
    } else {
        vec![Method::Edns, Method::Ldns]
    }
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
            methods: resolution_chain(&config.version),
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
            proxies: None,
            portal_check: None,
            portal: portal::Portal::Unknown,
            config_state: control::ConfigState::default(),
        }
    }
    /// The configuration the agent runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// The gateway names this agent uses.
    pub fn names(&self) -> &Names {
        &self.names
    }
    /// What the agent reports about itself.
    pub fn status(&self) -> Status {
        let (gateway, via_proxy) = match &self.phase {
            Phase::Connected { target, .. } => (
                Some((self.proto, target.addr, target.role)),
                target.proxy.map(|proxy| (target.name.clone(), proxy)),
            ),
            _ => (None, None),
        };
        Status {
            tunnel: self.status,
            gateway,
            resolved_by: self.resolved_by,
            via_proxy,
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
        self.pull_config(now);
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
            Phase::Connecting { op, .. } | Phase::FindingProxy { op, .. } => {
                self.push(Action::Cancel { op })
            }
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
    /// The answer to an [`Action::HttpGet`] (the on-prem probe, the portal check).
    pub fn handle_http_get(&mut self, op: OpId, outcome: HttpOutcome, _now: Instant) {
        if !self.onprem_http_answer(op, &outcome) {
            self.portal_answer(op, &outcome);
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
            Timer::PacFetch => self.pac_timed_out(now),
            Timer::PortalCheck => self.portal_timed_out(),
            Timer::ConfigPull => self.pull_config(now),
            Timer::ConfigTimeout => self.config_timed_out(now),
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
            Phase::Connecting { target, .. }
            | Phase::Connected { target, .. }
            | Phase::FindingProxy { target, .. } => &target.name,
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
