//! The scenario in the terms of the world's parts: the agent's configuration and
//! steering, the servers' behaviours, certificates and names. What the world is built
//! from; [`super::engine`] builds and runs it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use agent::core::Region as AgentRegion;

use super::pki::{Authority, Pki, PkiError};
use super::plan::path_latency;
use super::registry::{AddressClash, Registry, Role};
use super::serve;
use super::serve::WorldClock;
use crate::scenario::{CertKind, PinnedAction, Region, Scenario, ServerBehaviour, SteeringMode};

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
pub(super) const DNS_PORT: u16 = 53;

/// The GSLB API's name.
pub const GSLB_NAME: &str = "gateway.gslb.goskope.com";

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

/// The PoP in `location`, else the one with the lowest latency from the endpoint.
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

/// Pinned apps: `bypass_apps` (bypass), then `pinned_apps` and the bypass file (which
/// win for the same process).
pub(super) fn pinned_apps(s: &Scenario) -> BTreeMap<String, agent::core::steer::PinnedAction> {
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

/// A TLS client config trusting the public and tenant CAs, on the world's clock: how the
/// inspection proxy re-originates.
pub(super) fn agent_tls_roots(
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
pub(super) fn origin_addresses(s: &Scenario) -> BTreeMap<String, Ipv4Addr> {
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
pub(super) fn capture_names(registry: &Registry) -> BTreeMap<Ipv4Addr, String> {
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

/// The gateways' policy: the scenario's block and allow rules, the origins' categories
/// and the directory's groups; with a control plane, also the lost-device group's
/// block-all rule (seed 004). The world's gateways and real mode's use it alike.
pub(crate) fn gateway_policy(s: &Scenario) -> sim_gateway::Policy {
    let categories = s
        .origins
        .iter()
        .filter_map(|o| Some((o.host.clone(), o.category.clone()?)))
        .collect();
    let mut block = s.policy.block.clone();
    if let Some(cp) = &s.control_plane {
        block.push(format!("any for group:{}", cp.lost_group));
    }
    sim_gateway::Policy::new(&block, categories)
        .with_allow(&s.policy.allow)
        .with_directory(&s.policy.groups)
}

/// The origins by address, each with the sites it serves: several sites may share one
/// address (a CDN edge).
pub(crate) fn origin_sites(s: &Scenario) -> BTreeMap<Ipv4Addr, Vec<String>> {
    let mut sites: BTreeMap<Ipv4Addr, Vec<String>> = BTreeMap::new();
    for origin in &s.origins {
        sites
            .entry(origin.ip)
            .or_default()
            .push(origin.host.clone());
    }
    sites
}
