//! The plan of a world: every host's address, label and DNS names, decided from the
//! scenario before anything runs, and the latencies and names that follow from it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use super::DEFAULT_LINK_LATENCY;
use super::build::{GSLB_NAME, WorldError, domain, gateway_by_location, nearest_pop};
use super::registry::{HostEntry, Registry, Role};
use crate::scenario::{EventAction, OnPremTest, RuleAction, Scenario};

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
pub(super) struct Plan {
    pub(super) registry: Registry,
    /// Every endpoint's address, the scenario's `client.ip` first; endpoints that share
    /// a host (`client.endpoints_per_host`) share its address.
    pub(super) endpoints: Vec<Ipv4Addr>,
    /// The endpoints' hosts, each address once, in order.
    pub(super) endpoint_hosts: Vec<Ipv4Addr>,
    pub(super) doh: Ipv4Addr,
    pub(super) backup: Ipv4Addr,
    pub(super) gslb: Ipv4Addr,
    /// Whether the GSLB API runs on a host: only when something in the world can ask
    /// it ([`asks_gslb`]). Its address and name are planned either way.
    pub(super) gslb_host: bool,
    pub(super) inspector: Option<Ipv4Addr>,
    pub(super) portal: Option<Ipv4Addr>,
    /// The PAC server, when the endpoint's proxy comes from auto-configuration.
    pub(super) pac_server: Option<Ipv4Addr>,
    /// The site's resolver that answers intercepted DNS (`intercept dns` rules).
    pub(super) site_dns: Option<Ipv4Addr>,
    /// The captive-portal check host.
    pub(super) portal_check: Ipv4Addr,
    /// The tenant's control plane, with `[control_plane]`.
    pub(super) tenant: Option<Ipv4Addr>,
    pub(super) gateway_name: String,
    pub(super) backup_name: String,
    pub(super) zone: Arc<sim_doh::Zone>,
}

impl Plan {
    /// Whether the planned host at `ip` runs on turmoil (all do but GSLB nobody asks).
    pub(super) fn started(&self, ip: Ipv4Addr) -> bool {
        ip != self.gslb || self.gslb_host
    }

    pub(super) fn new(s: &Scenario) -> Result<Plan, WorldError> {
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
            gslb_host: asks_gslb(s),
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
    pub(super) fn every_name(&self) -> Vec<String> {
        self.registry
            .iter()
            .flat_map(|(_, h)| h.dns_names.clone())
            .collect()
    }
}

/// The one-way latency from the endpoint to a host at `location` that the scenario puts
/// `latency` away. Through a full-tunnel VPN: to the VPN's egress, then on from there
/// (hosts in the egress location are one default link away; the rest keep theirs).
pub(super) fn path_latency(s: &Scenario, location: Option<&str>, latency: Duration) -> Duration {
    match &s.network.vpn {
        None => latency,
        Some(vpn) if location == Some(vpn.egress.as_str()) => vpn.latency + DEFAULT_LINK_LATENCY,
        Some(vpn) => vpn.latency + latency,
    }
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
pub(super) fn proxy_names(s: &Scenario, plan: &Plan) -> BTreeMap<String, Ipv4Addr> {
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

/// Whether anything in `s` can ask the GSLB API: the agent when its resolution chain
/// has GSLB (clients 96.1 and later), an app or the on-prem HTTP test naming the API's
/// host. A
/// world where nothing can keeps the API off turmoil: every host adds a link to every
/// other, and turmoil ticks each link on every step, used or not.
pub(super) fn asks_gslb(s: &Scenario) -> bool {
    let names_it = |text: &str| text.to_ascii_lowercase().contains(GSLB_NAME);
    agent::core::resolution_chain(&s.client.version.text).contains(&agent::core::Method::Gslb)
        || s.events.iter().any(|e| match &e.action {
            EventAction::Connect { host, .. } => names_it(host),
            _ => false,
        })
        || s.steering.on_prem.as_ref().is_some_and(|o| match &o.test {
            OnPremTest::Http { url } => names_it(url),
            OnPremTest::Dns { .. } => false,
        })
}
