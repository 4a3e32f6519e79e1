//! A scenario's hosts on loopback: every server gets its own 127.0.0.0/8 address, and the
//! zone is the world's (see `world::build`'s plan) with those addresses in the answers.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::scenario::{EventAction, Scenario};
use crate::world::build::{GSLB_NAME, domain, nearest_pop};

/// What a host serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// DNS over HTTPS (HTTPS 443).
    Doh,
    /// The local resolver (UDP and TCP 53).
    Ldns,
    /// The GSLB REST API (HTTPS 443).
    Gslb,
    /// A PoP's gateway (TLS on TCP 443, DTLS on UDP 443), with the PoP's name.
    Gateway(String),
    /// gateway-backup.
    Backup,
    /// Origins sharing one address (HTTP 80, HTTPS 443).
    Origin,
    /// The site's CONNECT proxy.
    Proxy,
    /// The PAC server (HTTP 80).
    Pac,
    /// The captive-portal check host (HTTP 80).
    PortalCheck,
    /// The tenant's control plane (`[control_plane]`; HTTPS 443 for every name).
    Tenant,
}

impl Kind {
    /// A one-word name for tables.
    pub fn word(&self) -> &'static str {
        match self {
            Kind::Doh => "doh",
            Kind::Ldns => "ldns",
            Kind::Gslb => "gslb",
            Kind::Gateway(_) => "gateway",
            Kind::Backup => "backup",
            Kind::Origin => "origin",
            Kind::Proxy => "proxy",
            Kind::Pac => "pac",
            Kind::PortalCheck => "portal-check",
            Kind::Tenant => "tenant",
        }
    }
}

/// One server on loopback.
#[derive(Debug, Clone)]
pub struct Host {
    /// The scenario's name for it (`doh`, `nyc1`, `backup`, an origin's host).
    pub label: String,
    /// What it serves.
    pub kind: Kind,
    /// Its address in the simulated world, when the scenario gives one.
    pub sim_ip: Option<Ipv4Addr>,
    /// Its loopback address.
    pub ip: Ipv4Addr,
    /// DNS names that lead to it.
    pub names: Vec<String>,
    /// Partitioned at t = 0 by the scenario: it takes connections and datagrams but never
    /// answers, as a silently dropping path would.
    pub silent: bool,
}

/// Why a topology could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// `--base` is outside 127.0.0.0/8.
    #[error("base address {0} is not a loopback address: pick one in 127.0.0.0/8, e.g. 127.0.0.10")]
    NotLoopback(Ipv4Addr),
    /// The hosts do not fit between `--base` and 127.255.255.254.
    #[error("no loopback addresses left after {0}: pick a lower --base")]
    OutOfAddresses(Ipv4Addr),
}

/// Every host of a scenario on loopback, and the zone that names them.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Hosts, in the order they were given addresses.
    pub hosts: Vec<Host>,
    /// The zone DoH and the local resolver answer from.
    pub zone: Arc<sim_doh::Zone>,
    /// `gateway-<tenant>.<domain>`.
    pub gateway_name: String,
    /// `gateway-backup-<tenant>.<domain>`.
    pub backup_name: String,
    /// Scenario addresses to loopback ones.
    pub translate: BTreeMap<Ipv4Addr, Ipv4Addr>,
    /// Every name the world knows, to its loopback address; the gateway name as the site
    /// resolves it (the PoP nearest the client).
    pub names: BTreeMap<String, Ipv4Addr>,
    /// What real mode leaves out of this scenario, one sentence each.
    pub not_applied: Vec<String>,
}

impl Topology {
    /// Places the hosts of `s` from `base` upwards (skipping 127.0.0.1 and 127.0.0.53,
    /// the usual homes of other resolvers).
    pub fn new(s: &Scenario, base: Ipv4Addr) -> Result<Topology, TopologyError> {
        if !base.is_loopback() {
            return Err(TopologyError::NotLoopback(base));
        }
        let domain = domain(s.tenant.region);
        let gateway_name = format!("gateway-{}.{domain}", s.tenant.name);
        let backup_name = format!("gateway-backup-{}.{domain}", s.tenant.name);
        let mut next = Addresses {
            next: u32::from(base),
        };
        let mut hosts = Vec::new();
        let mut add = |label: &str, kind, sim_ip, names: Vec<String>| -> Result<(), _> {
            hosts.push(Host {
                label: label.to_string(),
                kind,
                sim_ip,
                ip: next.take()?,
                names,
                silent: false,
            });
            Ok(())
        };
        let doh_sim = s
            .dns
            .doh
            .eq_ignore_ascii_case("dns.google")
            .then_some(Ipv4Addr::new(8, 8, 8, 8));
        add("doh", Kind::Doh, doh_sim, vec![s.dns.doh.clone()])?;
        add("ldns", Kind::Ldns, Some(s.dns.ldns), vec![])?;
        add("gslb", Kind::Gslb, None, vec![GSLB_NAME.to_string()])?;
        for pop in &s.pops {
            let names = vec![
                gateway_name.clone(),
                format!("gateway-{}.{domain}", pop.name),
            ];
            add(
                &pop.name,
                Kind::Gateway(pop.name.clone()),
                Some(pop.ip),
                names,
            )?;
        }
        add(
            "backup",
            Kind::Backup,
            s.backup.ip,
            vec![backup_name.clone()],
        )?;
        let sites = crate::world::build::origin_sites(s);
        for (ip, names) in sites {
            add(&names.join(", "), Kind::Origin, Some(ip), names)?;
        }
        if let Some(proxy) = &s.network.proxy {
            add("proxy", Kind::Proxy, Some(*proxy.address.ip()), vec![])?;
        }
        if crate::world::pac::discovery(s).is_some() {
            let names = crate::world::pac::server_names(s);
            add("pac", Kind::Pac, None, names)?;
        }
        if s.control_plane.is_some() {
            let names = crate::world::tenant::names(&s.tenant.name, domain)
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            add("tenant", Kind::Tenant, None, names)?;
        }
        let check = crate::world::portal::CHECK_HOST.to_string();
        add("portal-check", Kind::PortalCheck, None, vec![check])?;

        let translate: BTreeMap<Ipv4Addr, Ipv4Addr> = hosts
            .iter()
            .filter_map(|h| Some((h.sim_ip?, h.ip)))
            .collect();
        let at = |sim: Ipv4Addr| translate.get(&sim).copied().unwrap_or(sim);
        let silent = silent_at_start(s);
        for host in &mut hosts {
            let by_origin_name = host.kind == Kind::Origin
                && host.names.iter().any(|n| silent.iter().any(|l| l == n));
            host.silent = by_origin_name || silent.contains(&host.label);
        }
        let by_kind = |kind: Kind| hosts.iter().find(|h| h.kind == kind).map(|h| h.ip);

        // The zone, as the world's plan makes it, with loopback addresses.
        let mut zone = sim_doh::Zone::new(60);
        let by_location = crate::world::build::gateway_by_location(s, at);
        zone.insert_located(&gateway_name, by_location, at(s.pops[0].ip));
        let mut names: BTreeMap<String, Ipv4Addr> = BTreeMap::new();
        for host in &hosts {
            for name in &host.names {
                names.entry(name.to_ascii_lowercase()).or_insert(host.ip);
            }
            match &host.kind {
                // The gateway name is located; the PoPs' own names are static.
                Kind::Gateway(_) => host
                    .names
                    .iter()
                    .skip(1)
                    .for_each(|n| zone.insert(n, host.ip)),
                _ => host.names.iter().for_each(|n| zone.insert(n, host.ip)),
            }
        }
        for origin in &s.origins {
            for alias in &origin.aliases {
                zone.insert_alias(alias, &origin.host);
                names.insert(alias.to_ascii_lowercase(), at(origin.ip));
            }
        }
        let seen_at = s
            .network
            .vpn
            .as_ref()
            .map_or(&s.client.location, |v| &v.egress);
        if let Ok(net) = ipnet::Ipv4Net::new(s.client.ip, 24) {
            zone.locate(net.trunc(), seen_at);
        }
        // Real clients on this machine ask from 127.0.0.1: they stand where the client does.
        if let Ok(net) = ipnet::Ipv4Net::new(Ipv4Addr::LOCALHOST, 32) {
            zone.locate(net, seen_at);
        }
        for ldns in [Some(s.dns.ldns), by_kind(Kind::Ldns)]
            .into_iter()
            .flatten()
        {
            if let Ok(net) = ipnet::Ipv4Net::new(ldns, 32) {
                zone.locate(net, &s.dns.ldns_location);
            }
        }
        names.insert(
            gateway_name.to_ascii_lowercase(),
            at(nearest_pop(s, &s.client.location)),
        );
        Ok(Topology {
            hosts,
            zone: Arc::new(zone),
            gateway_name,
            backup_name,
            translate,
            names,
            not_applied: not_applied(s),
        })
    }

    /// The first host of this kind.
    pub fn host(&self, kind: &Kind) -> Option<&Host> {
        self.hosts.iter().find(|h| &h.kind == kind)
    }

    /// GSLB's answer, with the PoPs' loopback addresses.
    pub fn gslb_state(&self, s: &Scenario) -> sim_gslb::GslbState {
        let mut state = crate::world::build::gslb_state(s);
        let pops = state
            .pops
            .iter()
            .map(|p| sim_gslb::PopEntry {
                name: p.name.clone(),
                ip: p
                    .ip
                    .parse::<Ipv4Addr>()
                    .map(|ip| self.translate.get(&ip).copied().unwrap_or(ip).to_string())
                    .unwrap_or_else(|_| p.ip.clone()),
            })
            .collect();
        state.pops = Arc::new(pops);
        state
    }

    /// The PAC script with the scenario's addresses replaced by loopback ones (and the
    /// proxy's port by the port it really listens on).
    pub fn pac_script(&self, s: &Scenario, proxy_port: Option<u16>) -> String {
        let mut script = crate::world::pac::script(s);
        if let (Some(proxy), Some(port)) = (&s.network.proxy, proxy_port) {
            let from = proxy.address.to_string();
            let to = format!("{}:{port}", self.translate_ip(*proxy.address.ip()));
            script = script.replace(&from, &to);
        }
        // Longest first, so that 10.0.0.5 does not rewrite part of 10.0.0.53.
        let mut pairs: Vec<(String, String)> = self
            .translate
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        pairs.sort_by_key(|(a, _)| std::cmp::Reverse(a.len()));
        for (from, to) in pairs {
            script = replace_address(&script, &from, &to);
        }
        script
    }

    /// The loopback address of a scenario address (itself when it is not one).
    pub fn translate_ip(&self, ip: Ipv4Addr) -> Ipv4Addr {
        self.translate.get(&ip).copied().unwrap_or(ip)
    }
}

/// Replaces `from` where it stands as a whole address (no digit or dot right before or
/// after it).
fn replace_address(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(from) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + from.len()..].chars().next();
        let part_of_more = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit() || c == '.');
        out.push_str(&rest[..i]);
        if part_of_more(before) || part_of_more(after) {
            out.push_str(from);
        } else {
            out.push_str(to);
        }
        rest = &rest[i + from.len()..];
    }
    out.push_str(rest);
    out
}

/// Hands out loopback addresses in order.
struct Addresses {
    next: u32,
}

impl Addresses {
    fn take(&mut self) -> Result<Ipv4Addr, TopologyError> {
        let last = u32::from(Ipv4Addr::new(127, 255, 255, 254));
        while self.next <= last {
            let ip = Ipv4Addr::from(self.next);
            self.next += 1;
            let [_, _, _, d] = ip.octets();
            let taken = ip == Ipv4Addr::LOCALHOST || ip == Ipv4Addr::new(127, 0, 0, 53);
            if d != 0 && d != 255 && !taken {
                return Ok(ip);
            }
        }
        Err(TopologyError::OutOfAddresses(Ipv4Addr::from(last)))
    }
}

/// Labels of hosts partitioned once the events at t = 0 are applied.
fn silent_at_start(s: &Scenario) -> Vec<String> {
    let mut silent: Vec<String> = Vec::new();
    for event in s.events.iter().filter(|e| e.at.is_zero()) {
        match &event.action {
            EventAction::Partition { host } => silent.push(host.clone()),
            EventAction::Repair { host } => silent.retain(|h| h != host),
            _ => {}
        }
    }
    silent
}

/// What real mode leaves out: timed events, firewalls, the network's shape.
fn not_applied(s: &Scenario) -> Vec<String> {
    let mut out = Vec::new();
    for event in &s.events {
        let at_start = event.at.is_zero();
        let what = match &event.action {
            EventAction::Start => continue,
            EventAction::Partition { .. } | EventAction::Repair { .. } if at_start => continue,
            EventAction::Partition { host } => format!("partition {host}"),
            EventAction::Repair { host } => format!("repair {host}"),
            EventAction::Stop => "stop agent".to_string(),
            EventAction::Rule { rule, .. } => format!("rule `{rule}`"),
            EventAction::Login => "portal login".to_string(),
            EventAction::Move { location } => format!("move to {location}"),
            EventAction::Connect {
                process,
                host,
                port,
                ..
            } => format!("connect {process} {host}:{port}"),
            // Events added since (admin actions of the control plane...).
            #[allow(unreachable_patterns, reason = "kept for variants added later")]
            other => format!("{other:?}"),
        };
        out.push(format!(
            "event at {}: {what} (real mode applies only start and partitions at 0s)",
            crate::scenario::format_duration(event.at)
        ));
    }
    let rules = s.network.host_firewall.len() + s.network.perimeter_firewall.len();
    if rules > 0 {
        out.push(format!(
            "{rules} firewall rule(s): loopback has no firewall in between"
        ));
    }
    if s.network.vpn.is_some() {
        out.push("the full-tunnel VPN".to_string());
    }
    if s.network.path_mtu.is_some() || s.network.udp_loss > 0.0 {
        out.push("the path MTU and UDP loss".to_string());
    }
    if !s.network.direct_egress {
        out.push("direct_egress = false: loopback is always reachable directly".to_string());
    }
    out.push("latencies: everything is one loopback hop away".to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_skip_the_usual_resolvers() {
        let mut a = Addresses {
            next: u32::from(Ipv4Addr::new(127, 0, 0, 52)),
        };
        assert_eq!(a.take().unwrap(), Ipv4Addr::new(127, 0, 0, 52));
        assert_eq!(a.take().unwrap(), Ipv4Addr::new(127, 0, 0, 54));
        let mut b = Addresses {
            next: u32::from(Ipv4Addr::new(127, 0, 0, 254)),
        };
        assert_eq!(b.take().unwrap(), Ipv4Addr::new(127, 0, 0, 254));
        assert_eq!(b.take().unwrap(), Ipv4Addr::new(127, 0, 1, 1));
    }

    #[test]
    fn whole_addresses_only() {
        let text = "PROXY 10.0.0.5:8080; PROXY 10.0.0.53:80; 110.0.0.5";
        assert_eq!(
            replace_address(text, "10.0.0.5", "127.0.0.9"),
            "PROXY 127.0.0.9:8080; PROXY 10.0.0.53:80; 110.0.0.5"
        );
    }

    #[test]
    fn the_first_scenario_on_loopback() {
        let s = crate::scenario::load_file(std::path::Path::new(
            "scenarios/pop-selection/doh-partitioned-ldns-far-pop.toml",
        ))
        .unwrap();
        let t = Topology::new(&s, Ipv4Addr::new(127, 0, 0, 10)).unwrap();
        assert!(t.hosts.iter().all(|h| h.ip.is_loopback()));
        let doh = t.host(&Kind::Doh).unwrap();
        assert!(doh.silent);
        assert!(t.hosts.iter().filter(|h| h.silent).count() == 1);
        let fra1 = t.host(&Kind::Gateway("fra1".into())).unwrap();
        assert_eq!(t.translate[&Ipv4Addr::new(8, 36, 117, 35)], fra1.ip);
        // The site resolves the gateway name to the PoP nearest the client.
        let nyc1 = t.host(&Kind::Gateway("nyc1".into())).unwrap();
        assert_eq!(t.names["gateway-acme.goskope.com"], nyc1.ip);
        assert!(t.names.values().all(|ip| ip.is_loopback()));
    }
}
