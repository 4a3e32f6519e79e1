//! Building and running the world for one scenario.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent::core::{
    Config, Method, Region as AgentRegion, Role as AgentRole, TunnelProto as AgentProto,
    TunnelStatus,
};
use agent::shell::{Command, DtlsIdentity, DtlsSettings, Shell, ShellConfig, WallClock};
use tokio::sync::mpsc;
use tracing_subscriber::layer::SubscriberExt;

use super::apps::{AppRequest, Apps};
use super::inspect::Inspector;
use super::net::SimNet;
use super::path::Path;
use super::pki::{Authority, Pki, PkiError};
use super::registry::{AddressClash, HostEntry, Registry, Role};
use super::serve::{self, WorldClock, WorldDialer};
use super::timeline::Timeline;
use super::{DEFAULT_LINK_LATENCY, TICK};
use crate::logs::{Capture, CaptureLayer};
use crate::pcap::export::Recorder;
use crate::report::{FlowRecord, Outcome, RunReport};
use crate::scenario::{
    AppDns, CertKind, EventAction, PinnedAction, Region, ResolvedBy, RuleAction, Scenario,
    ServerBehaviour, SteeringMode, TunnelProto, TunnelState,
};

/// Why a world could not be built or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorldError {
    /// Two hosts share an address.
    #[error(transparent)]
    AddressClash(#[from] AddressClash),
    /// Certificates could not be made.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// rustls rejected a certificate the world made (a bug).
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
    /// The scenario uses something this version of the world does not model yet.
    #[error("{what} is not modelled yet: {hint}")]
    Unsupported {
        /// The feature.
        what: String,
        /// What to do instead.
        hint: &'static str,
    },
    /// The simulation itself failed (a host's server stopped with an error).
    #[error("simulation failed: {0}")]
    Simulation(String),
}

/// The port of the local resolver.
const DNS_PORT: u16 = 53;

/// The GSLB API's name.
pub const GSLB_NAME: &str = "gateway.gslb.goskope.com";

/// Runs `scenario` with `seed` (the scenario's own unless overridden) and reports.
pub fn run(scenario: &Scenario, seed: Option<u64>) -> Result<RunReport, WorldError> {
    run_with(scenario, seed, None)
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
    pub hosts: Option<super::tap::HostTap>,
}

/// Like [`run`], recording into `captures`.
pub fn run_capturing(
    scenario: &Scenario,
    seed: Option<u64>,
    captures: Captures,
) -> Result<RunReport, WorldError> {
    let seed = seed.unwrap_or(scenario.seed);
    #[allow(
        clippy::disallowed_methods,
        reason = "wall time is reported, never simulated"
    )]
    let started = Instant::now();
    let plan = Plan::new(scenario)?;
    let clock = WorldClock {
        epoch_unix_ms: scenario.clock_unix_ms,
    };
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry()
        .with(CaptureLayer::new(capture.clone(), move || {
            clock.now_unix_ms()
        }));
    let (outcome, timeline, flows) = tracing::subscriber::with_default(subscriber, || {
        drive(scenario, &plan, seed, clock, captures)
    })?;
    Ok(RunReport {
        name: scenario.name.clone(),
        path: scenario.path.clone(),
        seed,
        simulated: scenario.duration,
        wall: started.elapsed(),
        log: capture.lines(),
        timeline,
        outcome,
        flows,
        hosts: plan.registry.clone(),
    })
}

/// Every firewall rule of the scenario: both lists and the rules added by events.
fn all_rules(scenario: &Scenario) -> impl Iterator<Item = &crate::scenario::Rule> {
    scenario
        .network
        .host_firewall
        .iter()
        .chain(&scenario.network.perimeter_firewall)
        .chain(scenario.events.iter().filter_map(|e| match &e.action {
            EventAction::Rule { rule, .. } => Some(rule),
            _ => None,
        }))
}

/// Addresses, names and certificates of every host, decided before the simulation.
struct Plan {
    registry: Registry,
    /// Every endpoint's address, the scenario's `client.ip` first; endpoints that share
    /// a host (`client.endpoints_per_host`) share its address.
    endpoints: Vec<Ipv4Addr>,
    /// The endpoints' hosts, each address once, in order.
    endpoint_hosts: Vec<Ipv4Addr>,
    doh: Ipv4Addr,
    backup: Ipv4Addr,
    gslb: Ipv4Addr,
    inspector: Option<Ipv4Addr>,
    portal: Option<Ipv4Addr>,
    /// The PAC server, when the endpoint's proxy comes from auto-configuration.
    pac_server: Option<Ipv4Addr>,
    /// The site's resolver that answers intercepted DNS (`intercept dns` rules).
    site_dns: Option<Ipv4Addr>,
    /// The captive-portal check host.
    portal_check: Ipv4Addr,
    /// The tenant's control plane, with `[control_plane]`.
    tenant: Option<Ipv4Addr>,
    gateway_name: String,
    backup_name: String,
    zone: Arc<sim_doh::Zone>,
}

impl Plan {
    fn new(s: &Scenario) -> Result<Plan, WorldError> {
        let domain = domain(s.tenant.region);
        let gateway_name = format!("gateway-{}.{domain}", s.tenant.name);
        let backup_name = format!("gateway-backup-{}.{domain}", s.tenant.name);
        let mut registry = Registry::default();
        let entry = |role, label: &str, names: Vec<String>| HostEntry {
            role,
            label: label.to_string(),
            dns_names: names,
        };
        let per_host = s.client.endpoints_per_host.max(1);
        let mut endpoints = Vec::new();
        let mut endpoint_hosts = Vec::new();
        for k in 0..s.client.endpoints {
            let host = k / per_host;
            let ip = Ipv4Addr::from(u32::from(s.client.ip).wrapping_add(host));
            if k % per_host == 0 {
                let label = match host {
                    0 => "endpoint".to_string(),
                    _ => format!("endpoint-{host}"),
                };
                registry.add(ip, entry(Role::Endpoint, &label, vec![]))?;
                endpoint_hosts.push(ip);
            }
            endpoints.push(ip);
        }
        registry.add(s.dns.ldns, entry(Role::Ldns, "ldns", vec![]))?;
        let doh = if s.dns.doh.eq_ignore_ascii_case("dns.google") {
            Ipv4Addr::new(8, 8, 8, 8)
        } else {
            registry.free_address()
        };
        registry.add(doh, entry(Role::Doh, "doh", vec![s.dns.doh.clone()]))?;
        for pop in &s.pops {
            let names = vec![
                gateway_name.clone(),
                format!("gateway-{}.{domain}", pop.name),
            ];
            registry.add(pop.ip, entry(Role::Pop(pop.name.clone()), &pop.name, names))?;
        }
        let inspector = all_rules(s)
            .any(|r| r.action == RuleAction::Inspect)
            .then(|| registry.free_address());
        if let Some(ip) = inspector {
            registry.add(ip, entry(Role::Inspector, "inspector", vec![]))?;
        }
        if let Some(proxy) = &s.network.proxy {
            registry.add(*proxy.address.ip(), entry(Role::Proxy, "proxy", vec![]))?;
        }
        let portal = all_rules(s)
            .any(|r| r.action == RuleAction::Redirect)
            .then(|| registry.free_address());
        if let Some(ip) = portal {
            registry.add(ip, entry(Role::Portal, "portal", vec![]))?;
        }
        let site_dns = all_rules(s)
            .any(|r| r.action == RuleAction::Intercept)
            .then(|| registry.free_private_address());
        if let Some(ip) = site_dns {
            registry.add(ip, entry(Role::Ldns, "site-dns", vec![]))?;
        }
        let pac_server = super::pac::discovery(s).map(|_| registry.free_private_address());
        if let Some(ip) = pac_server {
            let names = super::pac::server_names(s);
            registry.add(ip, entry(Role::PacServer, "pac", names))?;
        }
        let gslb = registry.free_address();
        registry.add(gslb, entry(Role::Gslb, "gslb", vec![GSLB_NAME.to_string()]))?;
        let backup = s.backup.ip.unwrap_or_else(|| registry.free_address());
        registry.add(
            backup,
            entry(Role::Backup, "backup", vec![backup_name.clone()]),
        )?;
        for origin in &s.origins {
            if registry.add_origin_name(origin.ip, &origin.host) {
                continue;
            }
            let role = Role::Origin(origin.host.clone());
            registry.add(
                origin.ip,
                entry(role, &origin.host, vec![origin.host.clone()]),
            )?;
        }

        // Last, so that adding it moved no other host's address.
        let tenant = match &s.control_plane {
            Some(_) => {
                let ip = registry.free_address();
                let names = super::tenant::names(&s.tenant.name, domain)
                    .into_iter()
                    .map(|(n, _)| n)
                    .collect();
                registry.add(ip, entry(Role::Tenant, "tenant", names))?;
                Some(ip)
            }
            None => None,
        };
        let portal_check = registry.free_address();
        let check_host = super::portal::CHECK_HOST.to_string();
        let role = Role::Origin(check_host.clone());
        registry.add(
            portal_check,
            entry(role, &check_host, vec![check_host.clone()]),
        )?;

        let mut zone = sim_doh::Zone::new(60);
        zone.insert_located(&gateway_name, gateway_by_location(s, |ip| ip), s.pops[0].ip);
        zone.insert(&backup_name, backup);
        for pop in &s.pops {
            zone.insert(&format!("gateway-{}.{domain}", pop.name), pop.ip);
        }
        for origin in &s.origins {
            zone.insert(&origin.host, origin.ip);
            for alias in &origin.aliases {
                zone.insert_alias(alias, &origin.host);
            }
        }
        zone.insert(&s.dns.doh, doh);
        zone.insert(GSLB_NAME, gslb);
        zone.insert(super::portal::CHECK_HOST, portal_check);
        if let Some(ip) = tenant {
            for (name, _) in super::tenant::names(&s.tenant.name, domain) {
                zone.insert(&name, ip);
            }
        }
        if let Some(ip) = pac_server {
            for name in super::pac::server_names(s) {
                zone.insert(&name, ip);
            }
        }
        let client_net = ipnet::Ipv4Net::new(s.client.ip, 24).map(|n| n.trunc());
        if let Ok(net) = client_net {
            // Through a full-tunnel VPN, resolvers see the VPN's egress, not the site.
            let seen_at = s
                .network
                .vpn
                .as_ref()
                .map_or(&s.client.location, |v| &v.egress);
            zone.locate(net, seen_at);
        }
        if let Ok(net) = ipnet::Ipv4Net::new(s.dns.ldns, 32) {
            zone.locate(net, &s.dns.ldns_location);
        }
        Ok(Plan {
            registry,
            endpoints,
            endpoint_hosts,
            doh,
            backup,
            gslb,
            inspector,
            portal,
            pac_server,
            site_dns,
            portal_check,
            tenant,
            gateway_name,
            backup_name,
            zone: Arc::new(zone),
        })
    }
}

impl Plan {
    /// Every DNS name in the world: what a middlebox's own certificate claims.
    fn every_name(&self) -> Vec<String> {
        self.registry
            .iter()
            .flat_map(|(_, h)| h.dns_names.clone())
            .collect()
    }
}

/// The PoP in `location`, else the one with the lowest latency from the endpoint.
/// The one-way latency from the endpoint to a host at `location` that the scenario puts
/// `latency` away. Through a full-tunnel VPN: to the VPN's egress, then on from there
/// (hosts in the egress location are one default link away; the rest keep theirs).
fn path_latency(s: &Scenario, location: Option<&str>, latency: Duration) -> Duration {
    match &s.network.vpn {
        None => latency,
        Some(vpn) if location == Some(vpn.egress.as_str()) => vpn.latency + DEFAULT_LINK_LATENCY,
        Some(vpn) => vpn.latency + latency,
    }
}

/// The gateway's answer in every location a client can be in (its own, its resolver's,
/// the VPN's egress, the PoPs' where the endpoint may move to): the nearest PoP, its
/// address through `at` (the world's own, or real mode's loopback one).
pub(crate) fn gateway_by_location(
    s: &Scenario,
    at: impl Fn(Ipv4Addr) -> Ipv4Addr,
) -> BTreeMap<String, Ipv4Addr> {
    let pop_locations = s.pops.iter().map(|p| &p.location);
    let egress = s.network.vpn.as_ref().map(|v| &v.egress);
    [&s.client.location, &s.dns.ldns_location]
        .into_iter()
        .chain(egress)
        .chain(pop_locations)
        .map(|location| (location.clone(), at(nearest_pop(s, location))))
        .collect()
}

/// The agent's on-prem check from `steering.on_prem`, the expected DNS address through
/// `at` (the world's own, or real mode's loopback one).
pub(crate) fn on_prem_check(
    s: &Scenario,
    at: impl Fn(Ipv4Addr) -> Ipv4Addr,
) -> Option<agent::core::onprem::OnPremCheck> {
    use agent::core::onprem::{OnPremCheck, OnPremTest as Test};
    s.steering.on_prem.as_ref().map(|o| OnPremCheck {
        test: match &o.test {
            crate::scenario::OnPremTest::Dns { host, ip } => Test::Dns {
                host: host.clone(),
                expect: at(*ip),
            },
            crate::scenario::OnPremTest::Http { url } => Test::Http { url: url.clone() },
        },
        mode: agent_mode(o.mode),
    })
}

pub(crate) fn nearest_pop(s: &Scenario, location: &str) -> Ipv4Addr {
    s.pops
        .iter()
        .find(|p| p.location == location)
        .or_else(|| s.pops.iter().min_by_key(|p| p.latency))
        .map(|p| p.ip)
        .unwrap_or(Ipv4Addr::UNSPECIFIED)
}

/// The agent's word for the tenant's region (the world and real mode both configure it).
pub(crate) fn agent_region(region: Region) -> AgentRegion {
    match region {
        Region::Global => AgentRegion::Global,
        Region::Eu => AgentRegion::Eu,
        Region::De => AgentRegion::De,
        Region::Au => AgentRegion::Au,
    }
}

pub(crate) fn domain(region: Region) -> &'static str {
    match region {
        Region::Global => "goskope.com",
        Region::Eu => "eu.goskope.com",
        Region::De => "de.goskope.com",
        Region::Au => "au.goskope.com",
    }
}

pub(crate) fn authority(kind: CertKind, trusted: Authority) -> (Authority, bool) {
    match kind {
        CertKind::Trusted => (trusted, false),
        CertKind::Untrusted => (Authority::Rogue, false),
        CertKind::Expired => (trusted, true),
    }
}

pub(crate) fn behaviour(b: &ServerBehaviour) -> sim_doh::Behaviour {
    match b {
        ServerBehaviour::Answer => sim_doh::Behaviour::Answer,
        ServerBehaviour::ServFail => sim_doh::Behaviour::ServFail,
        ServerBehaviour::Empty => sim_doh::Behaviour::Empty,
        ServerBehaviour::HttpError(code) => sim_doh::Behaviour::HttpError(*code),
        ServerBehaviour::SlowAnswer(d) => sim_doh::Behaviour::SlowAnswer(*d),
        ServerBehaviour::Malformed => sim_doh::Behaviour::Malformed,
    }
}

/// GSLB's answer: the scenario's `gslb_order`, else PoPs by the world's latency from
/// the client (file order between equals).
pub(crate) fn gslb_state(s: &Scenario) -> sim_gslb::GslbState {
    let mut pops: Vec<&crate::scenario::Pop> = s.pops.iter().collect();
    if s.tenant.gslb_order.is_empty() {
        pops.sort_by_key(|p| path_latency(s, Some(&p.location), p.latency));
    } else {
        pops.sort_by_key(|p| {
            s.tenant
                .gslb_order
                .iter()
                .position(|n| *n == p.name)
                .unwrap_or(usize::MAX)
        });
    }
    let behaviour = match &s.tenant.gslb_behaviour {
        ServerBehaviour::Answer => sim_gslb::Behaviour::Answer,
        ServerBehaviour::ServFail | ServerBehaviour::HttpError(_) => {
            let code = match s.tenant.gslb_behaviour {
                ServerBehaviour::HttpError(c) => c,
                _ => 500,
            };
            sim_gslb::Behaviour::HttpError(code)
        }
        ServerBehaviour::Empty => sim_gslb::Behaviour::Empty,
        ServerBehaviour::Malformed => sim_gslb::Behaviour::Malformed,
        ServerBehaviour::SlowAnswer(d) => sim_gslb::Behaviour::SlowAnswer(*d),
    };
    sim_gslb::GslbState {
        tenant: s.tenant.name.clone(),
        enabled: s.tenant.gslb,
        pops: Arc::new(
            pops.iter()
                .map(|p| sim_gslb::PopEntry {
                    name: p.name.clone(),
                    ip: p.ip.to_string(),
                })
                .collect(),
        ),
        behaviour,
    }
}

/// Builds the simulation, runs it to the scenario's end, and reads the outcome.
type Drive = (Outcome, Vec<String>, Vec<FlowRecord>);

fn drive(
    s: &Scenario,
    plan: &Plan,
    seed: u64,
    clock: WorldClock,
    captures: Captures,
) -> Result<Drive, WorldError> {
    let Captures {
        endpoint: recorder,
        hosts: tap,
    } = captures;
    let epoch =
        std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(s.clock_unix_ms).unwrap_or(0));
    let mut sim = turmoil::Builder::new()
        .epoch(epoch)
        .simulation_duration(s.duration + Duration::from_secs(1))
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

    // DNS over HTTPS.
    let (by, expired) = authority(s.dns.doh_cert, Authority::Public);
    let doh_leaf = pki.leaf(std::slice::from_ref(&s.dns.doh), by, expired)?;
    let doh_tls = serve::server_config(&doh_leaf, Arc::new(clock), serve::tls_seed(seed, "doh"))?;
    let doh_state = sim_doh::DohState {
        zone: plan.zone.clone(),
        behaviour: behaviour(&s.dns.doh_behaviour),
    };
    sim.host(IpAddr::V4(plan.doh), move || {
        serve::https(
            sim_doh::router(doh_state.clone()),
            Some(doh_tls.clone()),
            443,
        )
    });

    // The GSLB API.
    let gslb_leaf = pki.leaf(&[GSLB_NAME.to_string()], Authority::Public, false)?;
    let gslb_tls =
        serve::server_config(&gslb_leaf, Arc::new(clock), serve::tls_seed(seed, "gslb"))?;
    let gslb = gslb_state(s);
    sim.host(IpAddr::V4(plan.gslb), move || {
        serve::https(sim_gslb::router(gslb.clone()), Some(gslb_tls.clone()), 443)
    });

    // The local resolver.
    let ldns = sim_doh::Ldns::new(
        plan.zone.clone(),
        s.dns.ldns_location.clone(),
        behaviour(&s.dns.ldns_behaviour),
    );
    sim.host(IpAddr::V4(s.dns.ldns), move || serve::ldns(ldns.clone()));
    // The site's own resolver, answering what the firewall intercepts: it resolves
    // from where the site is.
    if let Some(ip) = plan.site_dns {
        let site = sim_doh::Ldns::new(
            plan.zone.clone(),
            s.client.location.clone(),
            sim_doh::Behaviour::Answer,
        );
        sim.host(IpAddr::V4(ip), move || serve::ldns(site.clone()));
    }

    // Gateways.
    let dialer = WorldDialer::new(origin_addresses(s));
    let domain = domain(s.tenant.region);
    let categories = s
        .origins
        .iter()
        .filter_map(|o| Some((o.host.clone(), o.category.clone()?)))
        .collect();
    // With a control plane, the lost-device group's block-all policy (seed 004).
    let mut block = s.policy.block.clone();
    if let Some(cp) = &s.control_plane {
        block.push(format!("any for group:{}", cp.lost_group));
    }
    let policy = sim_gateway::Policy::new(&block, categories)
        .with_allow(&s.policy.allow)
        .with_directory(&s.policy.groups);
    let directory = policy.directory();
    let tenant_state = match (&s.control_plane, plan.tenant) {
        (Some(cp), Some(ip)) => {
            let clock_s = move || clock.now_unix_ms().div_euclid(1000);
            let state = sim_tenant::TenantState::new(super::tenant::spec(s, cp), Arc::new(clock_s))
                .map_err(|e| WorldError::Simulation(format!("tenant control plane: {e}")))?;
            let names = super::tenant::names(&s.tenant.name, domain);
            let dns_names: Vec<String> = names.iter().map(|(n, _)| n.clone()).collect();
            let leaf = pki.leaf(&dns_names, Authority::Public, false)?;
            let tls =
                serve::server_config(&leaf, Arc::new(clock), serve::tls_seed(seed, "tenant"))?;
            let router = super::tenant::router(state.clone(), &names);
            sim.host(IpAddr::V4(ip), move || {
                serve::https(router.clone(), Some(tls.clone()), 443)
            });
            Some(state)
        }
        _ => None,
    };
    let mut gateways = Vec::new();
    let mut latencies = Vec::new();
    for pop in &s.pops {
        let names = vec![
            plan.gateway_name.clone(),
            format!("gateway-{}.{domain}", pop.name),
        ];
        let latency = path_latency(s, Some(&pop.location), pop.latency);
        gateways.push((pop.name.clone(), pop.ip, names, pop.cert, latency));
    }
    gateways.push((
        "backup".to_string(),
        plan.backup,
        vec![plan.backup_name.clone()],
        s.backup.cert,
        path_latency(s, s.backup.location.as_deref(), s.backup.latency),
    ));
    for (name, ip, names, cert, latency) in gateways {
        let (by, expired) = authority(cert, Authority::Tenant);
        let leaf = pki.leaf(&names, by, expired)?;
        let dtls_leaf = pki.ecdsa_leaf(&names, by, expired)?;
        let provider = serve::tls_provider(serve::tls_seed(seed, &format!("gateway {name}")));
        let gw = sim_gateway::Gateway::with_provider(
            &name,
            leaf.chain,
            leaf.key,
            move || clock.now(),
            dialer.clone(),
            Arc::new(provider),
        )
        .and_then(|gw| gw.with_dtls(&dtls_leaf.chain[0], &dtls_leaf.key, Some(seed)))
        .map(|gw| gw.with_policy(policy.clone()).with_key_log(pki.key_log()))
        .map_err(|e| WorldError::Simulation(e.to_string()))?;
        // TLS on TCP 443 and DTLS on UDP 443.
        sim.host(IpAddr::V4(ip), move || {
            let gw = gw.clone();
            async move {
                let dtls = tokio::task::spawn_local(super::udp::gateway_dtls(gw.clone(), 443));
                let tls = serve::gateway(gw).await;
                dtls.abort();
                tls
            }
        });
        latencies.push((ip, latency));
    }

    // Origins: plain HTTP on 80, HTTPS on 443 with a public certificate.
    // One host per address: several sites may share one (a CDN edge).
    let mut sites: BTreeMap<Ipv4Addr, Vec<String>> = BTreeMap::new();
    for origin in &s.origins {
        sites
            .entry(origin.ip)
            .or_default()
            .push(origin.host.clone());
    }
    // UDP apps' ports: every origin echoes datagrams on them.
    let udp_ports: BTreeSet<u16> = s
        .events
        .iter()
        .filter_map(|e| match &e.action {
            EventAction::Connect {
                port,
                proto: crate::scenario::AppProto::Udp,
                ..
            } => Some(*port),
            _ => None,
        })
        .collect();
    for (ip, hosts) in sites {
        let leaf = pki.leaf(&hosts, Authority::Public, false)?;
        let tls_seed = serve::tls_seed(seed, &format!("origin {ip}"));
        let tls = serve::server_config(&leaf, Arc::new(clock), tls_seed)?;
        let router = crate::origin::router(&hosts.join(", "));
        let udp_ports = udp_ports.clone();
        sim.host(IpAddr::V4(ip), move || {
            let (router, tls, udp_ports) = (router.clone(), tls.clone(), udp_ports.clone());
            async move {
                let plain = tokio::task::spawn_local(serve::https(router.clone(), None, 80));
                let echoes: Vec<_> = udp_ports
                    .into_iter()
                    .map(|p| tokio::task::spawn_local(serve::udp_echo(p)))
                    .collect();
                serve::https(router, Some(tls), 443).await?;
                plain.abort();
                echoes.iter().for_each(|e| e.abort());
                Ok(())
            }
        });
    }

    // The endpoint and its agent.
    let mut path = Path::new(
        s.network.host_firewall.clone(),
        s.network.perimeter_firewall.clone(),
    )
    .with_udp_limits(s.network.path_mtu, s.network.udp_loss, seed);
    if let Some(proxy) = &s.network.proxy {
        if !s.network.direct_egress {
            path = path.with_proxy_only(*proxy.address.ip());
        }
        let proxy_host = super::proxy::Proxy {
            names: Arc::new(proxy_names(s, plan)),
        };
        let port = proxy.address.port();
        sim.host(IpAddr::V4(*proxy.address.ip()), move || {
            proxy_host.clone().serve(port)
        });
    }
    let check = super::portal::check_router();
    sim.host(IpAddr::V4(plan.portal_check), move || {
        serve::https(check.clone(), None, 80)
    });
    if let Some(ip) = plan.pac_server {
        let router = super::pac::router(super::pac::script(s));
        sim.host(IpAddr::V4(ip), move || {
            serve::https(router.clone(), None, 80)
        });
    }
    if let Some(ip) = plan.portal {
        let leaf = pki.leaf(&plan.every_name(), Authority::Rogue, false)?;
        let tls = serve::server_config(&leaf, Arc::new(clock), serve::tls_seed(seed, "portal"))?;
        sim.host(IpAddr::V4(ip), move || {
            let tls = tls.clone();
            async move {
                let plain =
                    tokio::task::spawn_local(serve::https(super::portal::router(), None, 80));
                serve::https(super::portal::router(), Some(tls), 443).await?;
                plain.abort();
                Ok(())
            }
        });
    }
    if let Some(ip) = plan.inspector {
        let leaf = pki.leaf(&plan.every_name(), Authority::Rogue, false)?;
        let upstream = agent_tls_roots(&pki, clock, serve::tls_seed(seed, "inspector upstream"))?;
        let world_names = plan
            .registry
            .iter()
            .flat_map(|(ip, h)| {
                h.dns_names
                    .iter()
                    .map(move |n| (n.to_ascii_lowercase(), *ip))
            })
            .collect();
        let inspector = Inspector {
            server: serve::server_config(
                &leaf,
                Arc::new(clock),
                serve::tls_seed(seed, "inspector"),
            )?,
            upstream,
            names: Arc::new(world_names),
        };
        sim.host(IpAddr::V4(ip), move || inspector.clone().serve());
    }
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
        let (endpoint, run) = build_endpoint(s, plan, clock, seed, place, shared)?;
        software.push((endpoint.ip, run));
        endpoints.push(endpoint);
    }
    start_hosts(&mut sim, software);

    // Links exist once both ends are registered. Through a VPN, every internet host is
    // farther away.
    if let Some(vpn) = &s.network.vpn {
        let internet = [plan.doh, plan.gslb]
            .into_iter()
            .chain(s.origins.iter().map(|o| o.ip))
            .filter(|ip| !ip.is_private());
        for ip in internet {
            latencies.push((ip, vpn.latency + DEFAULT_LINK_LATENCY));
        }
    }
    for (ip, latency) in latencies {
        for host in &plan.endpoint_hosts {
            sim.set_link_latency(IpAddr::V4(*host), IpAddr::V4(ip), latency);
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

    // The driver.
    let mut events = s.events.iter().peekable();
    let mut connects = 0;
    loop {
        let now = sim.elapsed();
        while let Some(event) = events.next_if(|e| e.at <= now) {
            let line = match &event.action {
                EventAction::Start => {
                    for e in &endpoints {
                        let _ = e.commands.send(Command::Start);
                    }
                    "start agent".to_string()
                }
                EventAction::Stop => {
                    for e in &endpoints {
                        let _ = e.commands.send(Command::Stop);
                    }
                    "stop agent".to_string()
                }
                EventAction::Rule { place, rule } => {
                    for e in &endpoints {
                        lock(&e.path)?.add_rule(*place, rule.clone());
                    }
                    format!("rule {} `{rule}`", place_word(*place))
                }
                EventAction::Partition { host } | EventAction::Repair { host } => {
                    let cut = matches!(event.action, EventAction::Partition { .. });
                    let ip =
                        plan.registry
                            .by_label(host)
                            .ok_or_else(|| WorldError::Unsupported {
                                what: format!("partitioning `{host}`"),
                                hint: "this host does not exist in this world",
                            })?;
                    for e in &endpoints {
                        lock(&e.path)?.set_partitioned(ip, cut);
                    }
                    for host in &plan.endpoint_hosts {
                        let (a, b) = (IpAddr::V4(*host), IpAddr::V4(ip));
                        if cut {
                            sim.partition(a, b);
                        } else {
                            sim.repair(a, b);
                        }
                    }
                    format!("{} {host}", if cut { "partition" } else { "repair" })
                }
                EventAction::Admin(action) => match &tenant_state {
                    Some(state) => super::tenant::admin(state, &directory, action),
                    None => "admin: no control plane".to_string(),
                },
                EventAction::Login => {
                    for e in &endpoints {
                        lock(&e.path)?.log_in();
                    }
                    "user logs in at the captive portal: redirect rules no longer apply".to_string()
                }
                EventAction::Move { location } => {
                    for e in &endpoints {
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
                    let (via_proxy, why) = app_proxy(s, plan, *via_proxy, host, *port, &clock);
                    if let Some(why) = why {
                        timeline.push_at(now, format!("app {process} {host}:{port}: {why}"));
                    }
                    // Every endpoint's app connects; flows are reported event by event,
                    // endpoint by endpoint.
                    for (k, e) in endpoints.iter().enumerate() {
                        let _ = e.app_requests.send(AppRequest {
                            index: connects * endpoints.len() + k,
                            process: process.clone(),
                            host: host.clone(),
                            port: *port,
                            own_doh: *dns == AppDns::AppDoh,
                            via_proxy,
                            udp: *proto == crate::scenario::AppProto::Udp,
                        });
                    }
                    connects += 1;
                    format!("connect {process} {host}:{port}")
                }
            };
            timeline.push_at(now, line);
        }
        if now >= s.duration {
            break;
        }
        sim.step()
            .map_err(|e| WorldError::Simulation(e.to_string()))?;
        if let Some(tap) = &tap {
            tap.observe(&sim, sim.elapsed());
        }
    }
    if let Some(state) = &tenant_state {
        for line in super::tenant::device_lines(state) {
            timeline.push_at(s.duration, line);
        }
    }
    if endpoints.len() > 1 {
        let up = endpoints
            .iter()
            .filter(|e| e.status.borrow().tunnel == agent::core::TunnelStatus::Connected)
            .count();
        timeline.push_at(
            s.duration,
            format!("endpoints: {}, tunnels up: {up}", endpoints.len()),
        );
    }
    let status = endpoints
        .first()
        .map(|e| e.status.borrow().clone())
        .ok_or_else(|| WorldError::Simulation("no endpoint".to_string()))?;
    let outcome = Outcome {
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
    };
    timeline.push_at(
        sim.elapsed(),
        format!(
            "end: tunnel {}{}",
            outcome.tunnel.as_str(),
            match (&outcome.gateway, outcome.resolved_by) {
                (Some(g), Some(r)) => format!(" to {g}, resolved by {}", r.as_str()),
                _ => String::new(),
            }
        ),
    );
    let flows = flows
        .lock()
        .map(|f| f.values().cloned().collect())
        .unwrap_or_default();
    Ok((outcome, timeline.lines(), flows))
}

/// Pinned apps: `bypass_apps` (bypass), then `pinned_apps` and the bypass file (which
/// win for the same process).
fn pinned_apps(s: &Scenario) -> BTreeMap<String, agent::core::steer::PinnedAction> {
    use agent::core::steer::PinnedAction as A;
    let mut apps: BTreeMap<String, A> = s
        .steering
        .bypass_apps
        .iter()
        .map(|a| (a.to_ascii_lowercase(), A::Bypass))
        .collect();
    for app in &s.steering.pinned_apps {
        let action = match app.action {
            PinnedAction::Bypass => A::Bypass,
            PinnedAction::Tunnel => A::Tunnel,
            PinnedAction::Block => A::Block,
        };
        apps.insert(app.process.to_ascii_lowercase(), action);
    }
    apps
}

/// The agent's steering configuration from the scenario's `[steering]` table.
pub fn steering(s: &Scenario) -> agent::core::steer::Steering {
    use agent::core::steer::{DomainSet, Steering};
    let mut out = Steering {
        mode: agent_mode(s.steering.mode),
        ports: s.steering.ports.clone(),
        managed: DomainSet::new(s.steering.managed.iter().map(String::as_str)),
        pinned_apps: pinned_apps(s),
        steer_dns: s.steering.steer_dns,
        private_apps: s.steering.private_apps,
        sni_check: s.steering.sni_check,
        fail_close: s.client.fail_close,
        ..Steering::default()
    };
    for entry in &s.steering.exceptions {
        out.add_exception(entry);
    }
    out
}

fn lock(path: &Mutex<Path>) -> Result<std::sync::MutexGuard<'_, Path>, WorldError> {
    path.lock()
        .map_err(|_| WorldError::Simulation("network path lock poisoned".to_string()))
}

fn place_word(place: crate::scenario::FirewallPlace) -> &'static str {
    match place {
        crate::scenario::FirewallPlace::Host => "host",
        crate::scenario::FirewallPlace::Perimeter => "perimeter",
    }
}

/// A TLS client config trusting the public and tenant CAs, on the world's clock: how the
/// inspection proxy re-originates.
fn agent_tls_roots(
    pki: &Pki,
    clock: WorldClock,
    tls_seed: Option<u64>,
) -> Result<Arc<rustls::ClientConfig>, WorldError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.public_root())?;
    roots.add(pki.tenant_root())?;
    let provider = Arc::new(serve::tls_provider(tls_seed));
    let mut config = rustls::ClientConfig::builder_with_details(provider, Arc::new(clock))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.key_log = pki.key_log().unwrap_or(config.key_log);
    Ok(Arc::new(config))
}

/// Origin names to addresses: what an app's own DNS over HTTPS finds.
fn origin_addresses(s: &Scenario) -> BTreeMap<String, Ipv4Addr> {
    s.origins
        .iter()
        .flat_map(|o| {
            std::iter::once(&o.host)
                .chain(&o.aliases)
                .map(|n| (n.to_ascii_lowercase(), o.ip))
        })
        .collect()
}

pub(crate) fn agent_mode(mode: SteeringMode) -> agent::core::steer::Mode {
    use agent::core::steer::Mode;
    match mode {
        SteeringMode::CloudApps => Mode::CloudApps,
        SteeringMode::Web => Mode::Web,
        SteeringMode::All => Mode::All,
    }
}

/// What the capture's comments call each host: its role and its scenario name.
fn capture_names(registry: &Registry) -> BTreeMap<Ipv4Addr, String> {
    registry
        .iter()
        .map(|(ip, host)| {
            let name = match &host.role {
                Role::Endpoint => host.label.clone(),
                Role::Pop(name) => format!("PoP {name}"),
                Role::Backup => "gateway-backup".to_string(),
                Role::Doh => format!("DoH server {}", host.dns_names.join(", ")),
                Role::Ldns => format!("resolver {}", host.label),
                Role::Gslb => "GSLB API".to_string(),
                Role::Inspector => "TLS inspection proxy".to_string(),
                Role::Portal => "captive portal".to_string(),
                Role::Proxy => "site proxy".to_string(),
                Role::PacServer => "PAC server".to_string(),
                Role::Tenant => "tenant control plane".to_string(),
                Role::Origin(host) => host.clone(),
            };
            (*ip, name)
        })
        .collect()
}

/// Where one endpoint sits: its place among the scenario's endpoints, its address, its
/// own copy of the network path, and the capture (the first endpoint's only).
struct EndpointPlace {
    index: usize,
    ip: Ipv4Addr,
    path: Path,
    recorder: Option<Recorder>,
}

/// What every endpoint shares.
struct EndpointShared<'a> {
    pki: &'a Pki,
    identity: &'a super::pki::Leaf,
    registry: &'a Arc<Registry>,
    timeline: &'a Timeline,
    flows: &'a Arc<Mutex<BTreeMap<usize, FlowRecord>>>,
}

/// One running endpoint, as the driver reaches it.
struct Endpoint {
    ip: Ipv4Addr,
    path: Arc<Mutex<Path>>,
    commands: mpsc::UnboundedSender<Command>,
    app_requests: mpsc::UnboundedSender<AppRequest>,
    status: tokio::sync::watch::Receiver<agent::core::Status>,
}

/// Builds one endpoint: its path, its agent (through the shell) and its apps, to run on
/// its host (see [`start_hosts`]).
fn build_endpoint(
    s: &Scenario,
    plan: &Plan,
    clock: WorldClock,
    seed: u64,
    place: EndpointPlace,
    shared: EndpointShared<'_>,
) -> Result<(Endpoint, EndpointSoftware), WorldError> {
    // Every endpoint draws its own jitter; the first keeps the scenario's seed.
    let agent_seed = seed.wrapping_add(place.index as u64);
    let domain = domain(s.tenant.region);
    let path = Arc::new(Mutex::new(place.path));
    let mut net = SimNet::new(path.clone(), shared.registry.clone());
    if let Some(recorder) = place.recorder {
        net = net.with_recorder(recorder);
    }
    if let Some(ip) = plan.site_dns {
        net = net.with_dns_interceptor(ip);
    }
    if let Some(ip) = plan.portal {
        net = net.with_portal(ip);
    }
    if let Some(ip) = plan.inspector {
        net = net.with_inspector(ip);
    }
    let app_net = net.clone();
    let config = Config {
        tenant: s.tenant.name.clone(),
        region: agent_region(s.tenant.region),
        version: s.client.version.text.clone(),
        client_ip: place.ip,
        doh_name: s.dns.doh.clone(),
        doh_addr: SocketAddr::from((plan.doh, 443)),
        gslb_name: GSLB_NAME.to_string(),
        gslb_addr: SocketAddr::from((plan.gslb, 443)),
        ldns: SocketAddr::from((s.dns.ldns, DNS_PORT)),
        gateway_port: 443,
        tunnel: match s.client.tunnel {
            TunnelProto::Dtls => AgentProto::Dtls,
            TunnelProto::Tls => AgentProto::Tls,
        },
        dtls_available: true,
        // With a control plane the configuration comes from the tenant: the client
        // starts on its built-in defaults until the first download.
        steering: if s.control_plane.is_some() {
            agent::core::steer::Steering::default()
        } else {
            steering(s)
        },
        proxy: s
            .network
            .proxy
            .as_ref()
            .filter(|p| p.discovery == crate::scenario::ProxyDiscovery::Manual)
            .map(|p| SocketAddr::V4(p.address)),
        proxy_discovery: super::pac::discovery(s),
        portal_check_url: Some(super::portal::CHECK_URL.to_string()),
        user: s.client.user.clone(),
        control: s.control_plane.as_ref().zip(plan.tenant).map(|(cp, ip)| {
            agent::core::control::ControlPlane {
                server_name: format!("addon-{}.{}", s.tenant.name, domain),
                addr: SocketAddr::from((ip, 443)),
                device: cp.device.clone(),
                hostname: cp.hostname.clone(),
                invite: cp.invite.clone(),
            }
        }),
        on_prem: on_prem_check(s, |ip| ip),
        seed: agent_seed,
    };
    let shell_config = ShellConfig {
        public_roots: vec![shared.pki.public_root()],
        tenant_roots: vec![shared.pki.tenant_root()],
        clock: WallClock::new(move || clock.now()),
        tls_seed: Some(agent::shell::seed::mix(agent_seed, 0x7215)),
        key_log: shared.pki.key_log(),
    };
    let shell =
        Shell::new(net, config, shell_config).map_err(|e| WorldError::Simulation(e.to_string()))?;
    let dtls = DtlsSettings::new(
        &[shared.pki.tenant_root()],
        WallClock::new(move || clock.now()),
        DtlsIdentity::new(&shared.identity.chain[0], &shared.identity.key),
    )?
    .with_seed(agent_seed);
    // Each endpoint's agent is its own process in the log: p1, p2...
    let pid = u32::try_from(place.index + 1).unwrap_or(u32::MAX);
    let shell = shell.with_dtls(dtls).with_log_pid(pid);
    let status = shell.status();
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (app_requests, app_rx) = mpsc::unbounded_channel();
    let apps = Apps {
        net: app_net,
        agent: commands.clone(),
        resolver: SocketAddr::from((s.dns.ldns, DNS_PORT)),
        client_ip: IpAddr::V4(place.ip),
        flows: shared.flows.clone(),
        timeline: shared.timeline.clone(),
        names: Arc::new(origin_addresses(s)),
    };
    let software = Box::pin(async move {
        tokio::task::spawn_local(shell.run(command_rx));
        apps.serve(app_rx).await;
    });
    let endpoint = Endpoint {
        ip: place.ip,
        path,
        commands,
        app_requests,
        status,
    };
    Ok((endpoint, software))
}

/// What one endpoint runs on its host: its agent and its apps, until the apps are done.
type EndpointSoftware = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

/// Starts every endpoint's software, each host running its endpoints side by side.
fn start_hosts(sim: &mut turmoil::Sim<'_>, software: Vec<(Ipv4Addr, EndpointSoftware)>) {
    let mut by_host: BTreeMap<Ipv4Addr, Vec<EndpointSoftware>> = BTreeMap::new();
    for (ip, run) in software {
        by_host.entry(ip).or_default().push(run);
    }
    for (ip, runs) in by_host {
        sim.client(IpAddr::V4(ip), async move {
            let mut running = tokio::task::JoinSet::new();
            for run in runs {
                running.spawn_local(run);
            }
            while let Some(done) = running.join_next().await {
                done?;
            }
            Ok(())
        });
    }
}

/// Where an app that uses the system proxy (`via_proxy = true`) sends its connection:
/// the manual proxy, or what the PAC script says for its URL (with why, for the timeline).
fn app_proxy(
    s: &Scenario,
    plan: &Plan,
    via_proxy: bool,
    host: &str,
    port: u16,
    clock: &WorldClock,
) -> (Option<SocketAddr>, Option<String>) {
    if !via_proxy {
        return (None, None);
    }
    if super::pac::discovery(s).is_none() {
        let manual = s.network.proxy.as_ref().map(|p| SocketAddr::V4(p.address));
        return (manual, None);
    }
    let env = super::pac::app_env(&proxy_names(s, plan), s.client.ip, clock.now_unix_ms());
    let (proxy, why) = super::pac::app_route(&super::pac::script(s), host, port, &env);
    (proxy, Some(why))
}

/// Where the site's proxy sends a CONNECT to each name of the world `s` builds (see
/// `proxy_names`): the gateway name goes to the PoP nearest the site, whatever the agent
/// resolved. For checks outside the world (the swarm's).
pub fn proxy_resolution(s: &Scenario) -> BTreeMap<String, Ipv4Addr> {
    Plan::new(s)
        .map(|plan| proxy_names(s, &plan))
        .unwrap_or_default()
}

/// What the site's proxy can resolve: every world name, with the gateway name answered
/// as the proxy's resolver would (the PoP nearest the site, i.e. the client).
fn proxy_names(s: &Scenario, plan: &Plan) -> BTreeMap<String, Ipv4Addr> {
    let mut names: BTreeMap<String, Ipv4Addr> = BTreeMap::new();
    for (ip, host) in plan.registry.iter() {
        for name in &host.dns_names {
            names.entry(name.to_ascii_lowercase()).or_insert(*ip);
        }
    }
    names.insert(
        plan.gateway_name.clone(),
        nearest_pop(s, &s.client.location),
    );
    names
}
