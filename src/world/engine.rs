//! One world you can step: the turmoil simulation built from a scenario and a seed, its
//! endpoints, and the cursor into its events.
//!
//! [`World::new`] builds every host at t = 0; [`World::advance_to`] moves simulated time
//! forward, applying each event when its time comes; [`World::schedule`] adds events
//! later; [`World::report`] reads the run so far. `steerlab run` advances once to the
//! scenario's end ([`run`]); the shell keeps one world and steps it in place, so a step
//! costs what the step simulates, not what came before it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent::core::{Method, Role as AgentRole, TunnelProto as AgentProto, TunnelStatus};
use agent::shell::Command;
use tracing_subscriber::layer::SubscriberExt;

use super::apps::AppRequest;
use super::build::{WorldError, capture_names};
use super::endpoint::{self, Endpoint, EndpointPlace, EndpointShared};
use super::path::Path;
use super::pki::{Authority, Pki};
use super::plan::{Plan, proxy_names};
use super::registry::Role;
use super::serve::WorldClock;
use super::servers::{self, Servers};
use super::sleep::Sleeper;
use super::tap::HostTap;
use super::timeline::{Timeline, stamped};
use super::{DEFAULT_LINK_LATENCY, TICK};
use crate::logs::{Capture, CaptureLayer};
use crate::pcap::export::Recorder;
use crate::report::{FlowRecord, Outcome, RunReport};
use crate::scenario::{
    AppDns, AppProto, Event, EventAction, FirewallPlace, ResolvedBy, Scenario, TunnelState,
};

/// Runs `scenario` with `seed` (the scenario's own unless overridden) and reports.
pub fn run(scenario: &Scenario, seed: Option<u64>) -> Result<RunReport, WorldError> {
    run_capturing(scenario, seed, Captures::default())
}

/// Like [`run`], recording the endpoint's traffic into `capture` when given (see
/// [`crate::pcap::export`]).
pub fn run_with(
    scenario: &Scenario,
    seed: Option<u64>,
    capture_into: Option<Recorder>,
) -> Result<RunReport, WorldError> {
    let captures = Captures {
        endpoint: capture_into,
        hosts: None,
    };
    run_capturing(scenario, seed, captures)
}

/// The captures a run can record.
#[derive(Debug, Clone, Default)]
pub struct Captures {
    /// The endpoint's traffic, from its sockets (see [`crate::pcap::export`]).
    pub endpoint: Option<Recorder>,
    /// Every host's traffic, from turmoil's links (see [`super::tap`]).
    pub hosts: Option<HostTap>,
}

/// Like [`run`], recording into `captures`.
pub fn run_capturing(
    scenario: &Scenario,
    seed: Option<u64>,
    captures: Captures,
) -> Result<RunReport, WorldError> {
    let mut world = World::new(scenario, seed, captures)?;
    world.advance_to(scenario.duration)?;
    Ok(world.report())
}

/// What a report would show, counted: see [`World::progress`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    log: usize,
    timeline: usize,
    flows: usize,
    status: Option<agent::core::Status>,
}

/// A world built from one scenario, at some simulated time.
pub struct World {
    scenario: Scenario,
    plan: Plan,
    seed: u64,
    clock: WorldClock,
    sim: turmoil::Sim<'static>,
    /// The hosts' capture, read off the links after every step.
    tap: Option<HostTap>,
    endpoints: Vec<Endpoint>,
    timeline: Timeline,
    flows: Arc<Mutex<BTreeMap<usize, FlowRecord>>>,
    servers: Servers,
    /// The scenario's events, and any scheduled since, in time order.
    events: Vec<Event>,
    /// How many of `events` have been applied.
    applied: usize,
    /// `connect` events applied so far (each endpoint's flows are numbered by them).
    connects: usize,
    /// The agents' log, as the tracing layer writes it.
    capture: Capture,
    dispatch: tracing::Dispatch,
    /// Idle server hosts' sleeping and waking.
    sleeper: Sleeper,
    /// The time of the last [`World::advance_to`]: what the report says was simulated.
    reached: Duration,
    /// Wall time spent building and advancing.
    wall: Duration,
}

impl World {
    /// Builds every host of `scenario`'s world at t = 0, with `seed` (the scenario's own
    /// unless overridden). Simulated time may reach the scenario's `duration` (and, for
    /// a world stepped past it, [`crate::scenario::MAX_DURATION`]: see
    /// [`World::with_horizon`]).
    pub fn new(
        scenario: &Scenario,
        seed: Option<u64>,
        captures: Captures,
    ) -> Result<World, WorldError> {
        World::with_horizon(scenario, seed, captures, scenario.duration)
    }

    /// Like [`World::new`], for a world that may be advanced up to `horizon`.
    pub fn with_horizon(
        scenario: &Scenario,
        seed: Option<u64>,
        captures: Captures,
        horizon: Duration,
    ) -> Result<World, WorldError> {
        #[allow(
            clippy::disallowed_methods,
            reason = "wall time is reported, never simulated"
        )]
        let started = Instant::now();
        let seed = seed.unwrap_or(scenario.seed);
        let plan = Plan::new(scenario)?;
        let clock = WorldClock {
            epoch_unix_ms: scenario.clock_unix_ms,
        };
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry()
            .with(CaptureLayer::new(capture.clone(), move || {
                clock.now_unix_ms()
            }));
        let dispatch = tracing::Dispatch::new(subscriber);
        let log = Log { capture, dispatch };
        let mut world = tracing::dispatcher::with_default(&log.dispatch.clone(), || {
            build(scenario, plan, seed, clock, captures, horizon, log)
        })?;
        world.wall = started.elapsed();
        Ok(world)
    }

    /// Simulated time.
    pub fn now(&self) -> Duration {
        self.sim.elapsed()
    }

    /// The scenario the world was built from.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Moves simulated time to `to`, one tick at a time, applying every event whose time
    /// has come (those at `to` too). A `to` in the past applies what is due and stays.
    pub fn advance_to(&mut self, to: Duration) -> Result<(), WorldError> {
        #[allow(
            clippy::disallowed_methods,
            reason = "wall time is reported, never simulated"
        )]
        let started = Instant::now();
        let dispatch = self.dispatch.clone();
        let result = tracing::dispatcher::with_default(&dispatch, || self.drive(to));
        self.reached = self.reached.max(to);
        self.wall += started.elapsed();
        result
    }

    fn drive(&mut self, to: Duration) -> Result<(), WorldError> {
        loop {
            let now = self.sim.elapsed();
            while let Some(event) = self.events.get(self.applied).filter(|e| e.at <= now) {
                let action = event.action.clone();
                self.applied += 1;
                let line = self.apply(&action, now)?;
                self.timeline.push_at(now, line);
            }
            if now >= to {
                return Ok(());
            }
            self.sim
                .step()
                .map_err(|e| WorldError::Simulation(e.to_string()))?;
            if let Some(tap) = &self.tap {
                tap.observe(&self.sim, self.sim.elapsed());
            }
            let at = self.sim.elapsed();
            self.sleeper.observe(&mut self.sim, at);
        }
    }

    /// Keeps every host awake from now on, as turmoil alone would: the baseline the
    /// benchmarks measure sleeping against (the log is the same either way).
    pub fn keep_awake(&mut self) {
        let asleep = self.sleeper.asleep();
        for ip in asleep {
            self.sim.bounce(IpAddr::V4(ip));
        }
        self.sleeper = Sleeper::never();
    }

    /// The addresses of the world's turmoil hosts, the endpoints' first: the planned
    /// hosts but those nothing can reach (GSLB when nobody asks it).
    pub fn sim_hosts(&self) -> Vec<Ipv4Addr> {
        let planned = self.plan.registry.iter().map(|(ip, _)| *ip);
        let started = planned.filter(|ip| self.plan.started(*ip));
        let (mut endpoints, servers): (Vec<_>, Vec<_>) =
            started.partition(|ip| self.plan.endpoint_hosts.contains(ip));
        endpoints.extend(servers);
        endpoints
    }

    /// How many times a server host went to sleep so far.
    pub fn naps(&self) -> u64 {
        self.sleeper.naps()
    }

    /// Adds `events` (each at or after now) to those still to come, in time order; an
    /// event at the same time as one already scheduled comes after it. An event in the
    /// past is refused: it cannot be applied any more. The world's hosts stay as built:
    /// an app that names the GSLB API in a world built without it (a client before 96.1,
    /// `plan::asks_gslb`) has its connection refused; build a new world from the
    /// scenario with the event in it instead (as [`World::reschedule`] tells the shell).
    pub fn schedule(&mut self, events: impl IntoIterator<Item = Event>) -> Result<(), Event> {
        let now = self.now();
        for event in events {
            if event.at < now {
                return Err(event);
            }
            let at = self.events[self.applied..]
                .iter()
                .position(|e| e.at > event.at)
                .map_or(self.events.len(), |i| self.applied + i);
            self.events.insert(at, event);
        }
        Ok(())
    }

    /// The events applied so far, in the order they were.
    pub fn applied(&self) -> &[Event] {
        &self.events[..self.applied]
    }

    /// A cheap fingerprint of what a report would show: agent log lines, timeline lines,
    /// flows, and the first endpoint's tunnel. It changes whenever the report would.
    pub fn progress(&self) -> Progress {
        Progress {
            log: self.capture.len(),
            timeline: self.timeline.len(),
            flows: self.flows.lock().map(|f| f.len()).unwrap_or_default(),
            status: self.endpoints.first().map(|e| e.status.borrow().clone()),
        }
    }

    /// Takes the events still to come from `scenario` (this world's scenario with events
    /// added): possible when its first events are those applied so far, the rest are
    /// not in the past, and its world has the same hosts and servers (an `inspect` rule
    /// where there was none needs an inspection proxy, a UDP app a port the origins do
    /// not echo on). Says whether it could.
    pub fn reschedule(&mut self, scenario: &Scenario) -> bool {
        let now = self.now();
        let events = &scenario.events;
        let Some((done, rest)) = events.split_at_checked(self.applied) else {
            return false;
        };
        if done != self.applied() || rest.iter().any(|e| e.at < now) {
            return false;
        }
        if !Plan::new(scenario).is_ok_and(|plan| {
            plan.registry == self.plan.registry && plan.gslb_host == self.plan.gslb_host
        }) || !servers::udp_ports(scenario).is_subset(&servers::udp_ports(&self.scenario))
        {
            return false;
        }
        self.events = events.to_vec();
        true
    }

    /// What the run shows so far: the log, the timeline with its closing lines (as of
    /// the last [`World::advance_to`]), the flows and the outcome.
    pub fn report(&self) -> RunReport {
        let mut timeline = self.timeline.lines();
        if let Some(state) = &self.servers.tenant {
            for line in super::tenant::device_lines(state) {
                timeline.push(stamped(self.reached, &line));
            }
        }
        if self.endpoints.len() > 1 {
            let up = self
                .endpoints
                .iter()
                .filter(|e| e.status.borrow().tunnel == TunnelStatus::Connected)
                .count();
            let line = format!("endpoints: {}, tunnels up: {up}", self.endpoints.len());
            timeline.push(stamped(self.reached, &line));
        }
        let outcome = self.outcome();
        let end = format!(
            "end: tunnel {}{}",
            outcome.tunnel.as_str(),
            match (&outcome.gateway, outcome.resolved_by) {
                (Some(g), Some(r)) => format!(" to {g}, resolved by {}", r.as_str()),
                _ => String::new(),
            }
        );
        timeline.push(stamped(self.sim.elapsed(), &end));
        let flows = self
            .flows
            .lock()
            .map(|f| f.values().cloned().collect())
            .unwrap_or_default();
        RunReport {
            name: self.scenario.name.clone(),
            path: self.scenario.path.clone(),
            seed: self.seed,
            simulated: self.reached,
            wall: self.wall,
            log: self.capture.lines(),
            timeline,
            outcome,
            flows,
            hosts: self.plan.registry.clone(),
        }
    }

    /// The first endpoint's agent, in the report's terms.
    fn outcome(&self) -> Outcome {
        let s = &self.scenario;
        let plan = &self.plan;
        let Some(first) = self.endpoints.first() else {
            return Outcome {
                resolved_by: None,
                gateway: None,
                tunnel: TunnelState::Down,
            };
        };
        let status = first.status.borrow().clone();
        Outcome {
            resolved_by: status.resolved_by.map(|m| match m {
                Method::Gslb => ResolvedBy::Gslb,
                Method::Edns => ResolvedBy::Edns,
                Method::Ldns => ResolvedBy::Ldns,
            }),
            gateway: status.gateway.map(|(_, addr, role)| match (role, addr) {
                (AgentRole::Backup, _) => "backup".to_string(),
                (AgentRole::Primary, SocketAddr::V4(v4)) => {
                    // Through a proxy, the tunnel lands where the proxy resolved the name.
                    let landed = status
                        .via_proxy
                        .as_ref()
                        .and_then(|(name, _)| {
                            proxy_names(s, plan)
                                .get(&name.to_ascii_lowercase())
                                .copied()
                        })
                        .unwrap_or(*v4.ip());
                    match plan.registry.at(landed).map(|h| &h.role) {
                        Some(Role::Pop(name)) => name.clone(),
                        Some(Role::Backup) => "backup".to_string(),
                        _ => landed.to_string(),
                    }
                }
                (AgentRole::Primary, SocketAddr::V6(v6)) => v6.ip().to_string(),
            }),
            tunnel: match (status.tunnel, status.gateway) {
                (TunnelStatus::Connected, Some((AgentProto::Dtls, _, _))) => TunnelState::Dtls,
                (TunnelStatus::Connected, Some((AgentProto::Tls, _, _))) => TunnelState::Tls,
                _ => TunnelState::Down,
            },
        }
    }

    /// Applies one event's action now, and says what happened (the timeline's line).
    fn apply(&mut self, action: &EventAction, now: Duration) -> Result<String, WorldError> {
        let s = &self.scenario;
        let plan = &self.plan;
        let endpoints = &self.endpoints;
        Ok(match action {
            EventAction::Start => {
                for e in endpoints {
                    let _ = e.commands.send(Command::Start);
                }
                "start agent".to_string()
            }
            EventAction::Stop => {
                for e in endpoints {
                    let _ = e.commands.send(Command::Stop);
                }
                "stop agent".to_string()
            }
            EventAction::Rule { place, rule } => {
                for e in endpoints {
                    lock(&e.path)?.add_rule(*place, rule.clone());
                }
                format!("rule {} `{rule}`", place_word(*place))
            }
            EventAction::Partition { host } | EventAction::Repair { host } => {
                let cut = matches!(action, EventAction::Partition { .. });
                let ip = plan
                    .registry
                    .by_label(host)
                    .ok_or_else(|| WorldError::Unsupported {
                        what: format!("partitioning `{host}`"),
                        hint: "this host does not exist in this world",
                    })?;
                for e in endpoints {
                    lock(&e.path)?.set_partitioned(ip, cut);
                }
                // A host that is planned but not started (GSLB nobody asks) has no link.
                let started = plan.started(ip);
                for host in plan.endpoint_hosts.iter().filter(|_| started) {
                    let (a, b) = (IpAddr::V4(*host), IpAddr::V4(ip));
                    if cut {
                        self.sim.partition(a, b);
                    } else {
                        self.sim.repair(a, b);
                    }
                }
                format!("{} {host}", if cut { "partition" } else { "repair" })
            }
            EventAction::Admin(action) => match &self.servers.tenant {
                Some(state) => super::tenant::admin(state, &self.servers.directory, action),
                None => "admin: no control plane".to_string(),
            },
            EventAction::Login => {
                for e in endpoints {
                    lock(&e.path)?.log_in();
                }
                "user logs in at the captive portal: redirect rules no longer apply".to_string()
            }
            EventAction::Move { location } => {
                for e in endpoints {
                    lock(&e.path)?.leave_perimeter();
                    if let Ok(net) = ipnet::Ipv4Net::new(e.ip, 24) {
                        plan.zone.relocate(net.trunc(), location);
                    }
                    let _ = e.commands.send(Command::NetworkChanged);
                }
                format!("move endpoint to a network in {location}")
            }
            EventAction::Connect {
                process,
                host,
                port,
                dns,
                via_proxy,
                proto,
            } => {
                let (via_proxy, why) =
                    endpoint::app_proxy(s, plan, *via_proxy, host, *port, &self.clock);
                if let Some(why) = why {
                    self.timeline
                        .push_at(now, format!("app {process} {host}:{port}: {why}"));
                }
                // Every endpoint's app connects; flows are reported event by event,
                // endpoint by endpoint.
                for (k, e) in endpoints.iter().enumerate() {
                    let _ = e.app_requests.send(AppRequest {
                        index: self.connects * endpoints.len() + k,
                        process: process.clone(),
                        host: host.clone(),
                        port: *port,
                        own_doh: *dns == AppDns::AppDoh,
                        via_proxy,
                        udp: *proto == AppProto::Udp,
                    });
                }
                self.connects += 1;
                format!("connect {process} {host}:{port}")
            }
        })
    }
}

/// The agents' log: what the tracing layer writes into, and the dispatcher every step
/// runs under.
struct Log {
    capture: Capture,
    dispatch: tracing::Dispatch,
}

/// Builds the simulation with every host, the links' latencies and the first timeline
/// lines, logging into `log`.
fn build(
    s: &Scenario,
    plan: Plan,
    seed: u64,
    clock: WorldClock,
    captures: Captures,
    horizon: Duration,
    log: Log,
) -> Result<World, WorldError> {
    let Captures {
        endpoint: recorder,
        hosts: tap,
    } = captures;
    let epoch =
        std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(s.clock_unix_ms).unwrap_or(0));
    let mut sim = turmoil::Builder::new()
        .epoch(epoch)
        .simulation_duration(horizon + Duration::from_secs(1))
        .tick_duration(TICK)
        .min_message_latency(DEFAULT_LINK_LATENCY)
        .max_message_latency(DEFAULT_LINK_LATENCY)
        .rng_seed(seed)
        // Listen and receive queues grow with the endpoints that share the servers.
        .tcp_capacity(64 * plan.endpoints.len())
        .udp_capacity(64 * plan.endpoints.len())
        .build();
    let mut pki = Pki::new(seed, s.clock_unix_ms)?;
    if let Some(recorder) = &recorder {
        pki.log_keys_to(recorder.key_log());
    }
    if let Some(tap) = &tap {
        pki.log_keys_to(tap.key_log());
    }
    let mut servers = servers::start(&mut sim, s, &plan, &mut pki, seed, clock)?;

    // The endpoints' network path.
    let mut path = Path::new(
        s.network.host_firewall.clone(),
        s.network.perimeter_firewall.clone(),
    )
    .with_udp_limits(s.network.path_mtu, s.network.udp_loss, seed);
    if let Some(proxy) = &s.network.proxy
        && !s.network.direct_egress
    {
        path = path.with_proxy_only(*proxy.address.ip());
    }

    // The endpoints and their agents.
    let timeline = Timeline::default();
    let flows = Arc::new(Mutex::new(BTreeMap::new()));
    let identity = pki.ecdsa_leaf(
        &[format!("endpoint.{}", s.tenant.name)],
        Authority::Tenant,
        false,
    )?;
    let registry = Arc::new(plan.registry.clone());
    let mut endpoints = Vec::new();
    let mut software = Vec::new();
    let mut recorder = recorder;
    if let Some(recorder) = &recorder {
        recorder.name_hosts(capture_names(&plan.registry));
    }
    if let Some(tap) = &tap {
        let hosts: Vec<(Ipv4Addr, String)> = plan
            .registry
            .iter()
            .map(|(ip, h)| (*ip, h.label.clone()))
            .collect();
        tap.name_hosts(&hosts, &capture_names(&plan.registry));
    }
    for (index, ip) in plan.endpoints.iter().enumerate() {
        let place = EndpointPlace {
            index,
            ip: *ip,
            path: path.clone(),
            recorder: recorder.take(),
        };
        let shared = EndpointShared {
            pki: &pki,
            identity: &identity,
            registry: &registry,
            timeline: &timeline,
            flows: &flows,
        };
        let (endpoint, run) = endpoint::build(s, &plan, clock, seed, place, shared)?;
        software.push((endpoint.ip, run));
        endpoints.push(endpoint);
    }
    endpoint::start_hosts(&mut sim, software);
    if endpoints.is_empty() {
        return Err(WorldError::Simulation("no endpoint".to_string()));
    }

    // Links exist once both ends are registered. Through a VPN, every internet host is
    // farther away.
    if let Some(vpn) = &s.network.vpn {
        let gslb = plan.gslb_host.then_some(plan.gslb);
        let internet = std::iter::once(plan.doh)
            .chain(gslb)
            .chain(s.origins.iter().map(|o| o.ip))
            .filter(|ip| !ip.is_private());
        for ip in internet {
            servers
                .latencies
                .push((ip, vpn.latency + DEFAULT_LINK_LATENCY));
        }
    }
    for (ip, latency) in &servers.latencies {
        for host in &plan.endpoint_hosts {
            sim.set_link_latency(IpAddr::V4(*host), IpAddr::V4(*ip), *latency);
        }
    }

    if let Some(vpn) = &s.network.vpn {
        timeline.push_at(
            Duration::ZERO,
            format!(
                "full-tunnel VPN: internet traffic leaves in {} ({} one way to its egress)",
                vpn.egress,
                crate::scenario::format_duration(vpn.latency)
            ),
        );
    }

    let sleeper = sleeper(s, &plan, &servers);
    Ok(World {
        sleeper,
        events: s.events.clone(),
        scenario: s.clone(),
        plan,
        seed,
        clock,
        sim,
        tap,
        endpoints,
        timeline,
        flows,
        servers,
        applied: 0,
        connects: 0,
        capture: log.capture,
        dispatch: log.dispatch,
        reached: Duration::ZERO,
        wall: Duration::ZERO,
    })
}

/// Which hosts may sleep: every server host whose links are all at least two ticks long
/// (a message to a sleeping host must not be due on the tick that wakes it). Gateways
/// keep datagram state (DTLS sessions); a resolver may take its slow answer's time to
/// answer a datagram.
fn sleeper(s: &Scenario, plan: &Plan, servers: &Servers) -> Sleeper {
    let short: std::collections::BTreeSet<Ipv4Addr> = servers
        .latencies
        .iter()
        .filter(|(_, latency)| *latency < 2 * TICK)
        .map(|(ip, _)| *ip)
        .collect();
    let hosts: Vec<(Ipv4Addr, bool)> = plan
        .registry
        .iter()
        .filter(|(ip, _)| !plan.endpoint_hosts.contains(ip) && !short.contains(ip))
        .filter(|(ip, _)| plan.started(**ip))
        .map(|(ip, h)| (*ip, matches!(h.role, Role::Pop(_) | Role::Backup)))
        .collect();
    // Every link not set otherwise (server to server, say) has the default latency.
    let shortest = servers
        .latencies
        .iter()
        .filter(|(ip, _)| hosts.iter().any(|(h, _)| h == ip))
        .map(|(_, latency)| *latency)
        .fold(DEFAULT_LINK_LATENCY, Duration::min);
    let ticks = (shortest.as_nanos() / TICK.as_nanos())
        .try_into()
        .unwrap_or(u32::MAX);
    let slow = match s.dns.ldns_behaviour {
        crate::scenario::ServerBehaviour::SlowAnswer(d) => d,
        _ => Duration::ZERO,
    };
    Sleeper::new(hosts, DATAGRAM_LINGER + slow, ticks)
}

/// How long a server host stays awake after a datagram, beyond any slow answer.
const DATAGRAM_LINGER: Duration = Duration::from_secs(10);

fn lock(path: &Mutex<Path>) -> Result<std::sync::MutexGuard<'_, Path>, WorldError> {
    path.lock()
        .map_err(|_| WorldError::Simulation("network path lock poisoned".to_string()))
}

fn place_word(place: FirewallPlace) -> &'static str {
    match place {
        FirewallPlace::Host => "host",
        FirewallPlace::Perimeter => "perimeter",
    }
}
