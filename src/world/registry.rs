//! Who is where in the world: every host's address, the names that resolve to it, and
//! the names a scenario uses for it (`nyc1`, `backup`, `doh`...).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// What a host is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// The endpoint running the agent and the apps.
    Endpoint,
    /// A gateway PoP, with its scenario name.
    Pop(String),
    /// gateway-backup.
    Backup,
    /// The DNS-over-HTTPS server.
    Doh,
    /// The local resolver.
    Ldns,
    /// The GSLB API.
    Gslb,
    /// The perimeter's TLS inspection proxy.
    Inspector,
    /// A captive portal.
    Portal,
    /// The site's explicit HTTP proxy.
    Proxy,
    /// The site's PAC server (`pac.<domain>`, `wpad.<domain>`).
    PacServer,
    /// The tenant's control plane (`addon-`, `download-`, `achecker-`, `sfchecker-`
    /// `<tenant>` and the REST API).
    Tenant,
    /// An origin server.
    Origin(String),
}

/// One host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    /// Its role.
    pub role: Role,
    /// The scenario's name for it (`nyc1`, `backup`, `doh`, `ldns`, an origin host).
    pub label: String,
    /// DNS names that lead to it (used by firewall rules that name hosts).
    pub dns_names: Vec<String>,
}

/// The world's address book.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Registry {
    hosts: BTreeMap<Ipv4Addr, HostEntry>,
}

/// Two hosts claim one address.
#[derive(Debug, thiserror::Error)]
#[error("address {ip} is used by both `{first}` and `{second}`: give one of them another `ip`")]
pub struct AddressClash {
    /// The address.
    pub ip: Ipv4Addr,
    /// The host that had it.
    pub first: String,
    /// The host that wanted it.
    pub second: String,
}

impl Registry {
    /// Adds a host.
    pub fn add(&mut self, ip: Ipv4Addr, entry: HostEntry) -> Result<(), AddressClash> {
        if let Some(existing) = self.hosts.get(&ip) {
            return Err(AddressClash {
                ip,
                first: existing.label.clone(),
                second: entry.label,
            });
        }
        self.hosts.insert(ip, entry);
        Ok(())
    }

    /// Adds a name to the host at `ip`, when it is an origin (several sites on one
    /// address). Returns whether it did.
    pub fn add_origin_name(&mut self, ip: Ipv4Addr, name: &str) -> bool {
        match self.hosts.get_mut(&ip) {
            Some(h) if matches!(h.role, Role::Origin(_)) => {
                h.dns_names.push(name.to_string());
                true
            }
            _ => false,
        }
    }

    /// The host at `ip`.
    pub fn at(&self, ip: Ipv4Addr) -> Option<&HostEntry> {
        self.hosts.get(&ip)
    }

    /// The address of the host the scenario calls `label`.
    pub fn by_label(&self, label: &str) -> Option<Ipv4Addr> {
        self.hosts
            .iter()
            .find(|(_, h)| h.label == label)
            .map(|(ip, _)| *ip)
    }

    /// Every host, by address.
    pub fn iter(&self) -> impl Iterator<Item = (&Ipv4Addr, &HostEntry)> {
        self.hosts.iter()
    }

    /// An on-site address (10.10.10.20 and up) that no host has yet, for servers of the
    /// customer's own network.
    pub fn free_private_address(&self) -> Ipv4Addr {
        (20u32..250)
            .map(|i| Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 10, 10, 0)) + i))
            .find(|ip| !self.hosts.contains_key(ip))
            .unwrap_or(Ipv4Addr::new(10, 10, 11, 250))
    }

    /// An address from the world's own pool (198.18.0.0/15, reserved for benchmarks)
    /// that no host has yet.
    pub fn free_address(&self) -> Ipv4Addr {
        (1u32..)
            .map(|i| Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + i))
            .find(|ip| !self.hosts.contains_key(ip))
            .unwrap_or(Ipv4Addr::new(198, 19, 255, 254))
    }
}
