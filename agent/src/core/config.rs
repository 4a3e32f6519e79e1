//! The agent's configuration: what a real client reads from its config files and the
//! machine it runs on.

use std::net::{Ipv4Addr, SocketAddr};

use super::steer::Steering;

/// The tunnel protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TunnelProto {
    /// DTLS over UDP 443.
    Dtls,
    /// TLS over TCP 443.
    Tls,
}

impl TunnelProto {
    /// The word the client's log uses: `DTLS` or `TLS`.
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelProto::Dtls => "DTLS",
            TunnelProto::Tls => "TLS",
        }
    }
}

/// Where the tenant lives: decides the gateway domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Region {
    /// `goskope.com`.
    #[default]
    Global,
    /// `eu.goskope.com`.
    Eu,
    /// `de.goskope.com`.
    De,
    /// `au.goskope.com`.
    Au,
}

/// Everything the agent needs to know to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Tenant name, as in `gateway-<tenant>.goskope.com`.
    pub tenant: String,
    /// Tenant region.
    pub region: Region,
    /// Client version text, e.g. `95.1.0`.
    pub version: String,
    /// The endpoint's own address (its subnet goes into the ECS option).
    pub client_ip: Ipv4Addr,
    /// The DNS-over-HTTPS server's name (TLS server name).
    pub doh_name: String,
    /// The DNS-over-HTTPS server's address (the client has it built in).
    pub doh_addr: SocketAddr,
    /// The GSLB API's name (`gateway.gslb.goskope.com`), asked by clients 96.1 and later.
    pub gslb_name: String,
    /// The GSLB API's address.
    pub gslb_addr: SocketAddr,
    /// The local resolver (the OS's configured DNS server).
    pub ldns: SocketAddr,
    /// The gateways' port (443 in the field; real-mode tests use ephemeral ports).
    pub gateway_port: u16,
    /// Preferred tunnel protocol.
    pub tunnel: TunnelProto,
    /// Whether the shell can run DTLS at all.
    pub dtls_available: bool,
    /// The steering configuration (its `fail_close` blocks steered flows while no
    /// tunnel is up).
    pub steering: Steering,
    /// The system's explicit proxy (manual setting), tried when the gateway cannot be
    /// reached directly.
    pub proxy: Option<SocketAddr>,
    /// Proxy auto-configuration (a PAC URL, or WPAD), consulted when the gateway cannot
    /// be reached directly and no manual proxy is set.
    pub proxy_discovery: Option<ProxyDiscovery>,
    /// The captive-portal check URL (answers 204 on an open network), GET after a whole
    /// round of connection attempts failed; `None`: no check.
    pub portal_check_url: Option<String>,
    /// The tenant's control plane to download the client configuration from; `None`:
    /// the configuration given here is all there is.
    pub control: Option<super::control::ControlPlane>,
    /// The enrolled user (`bob@acme.com`), told to the gateway when a tunnel comes up so
    /// that user-group policy applies; `None`: the gateway knows no user.
    pub user: Option<String>,
    /// On-prem detection (dynamic steering), if configured.
    pub on_prem: Option<super::onprem::OnPremCheck>,
    /// Seed of the agent's own RNG (backoff jitter, DNS query ids).
    pub seed: u64,
}

/// Where the system's proxy auto-configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyDiscovery {
    /// A configured PAC URL (`http://host[:port]/path`).
    Pac {
        /// The URL.
        url: String,
    },
    /// Web Proxy Auto-Discovery through DNS: `http://wpad.<domain>/wpad.dat`.
    Wpad {
        /// The DNS search domain of the endpoint.
        domain: String,
    },
}

impl ProxyDiscovery {
    /// The URL of the PAC file.
    pub fn url(&self) -> String {
        match self {
            ProxyDiscovery::Pac { url } => url.clone(),
            ProxyDiscovery::Wpad { domain } => format!("http://wpad.{domain}/wpad.dat"),
        }
    }
}

/// The gateway names a tenant's client uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// `gateway-<tenant>.<domain>`.
    pub gateway: String,
    /// `gateway-backup-<tenant>.<domain>`.
    pub backup: String,
    /// The domain: `goskope.com` or a regional form.
    pub domain: String,
}

impl Names {
    /// Names for a tenant in a region.
    pub fn new(tenant: &str, region: Region) -> Names {
        let domain = match region {
            Region::Global => "goskope.com",
            Region::Eu => "eu.goskope.com",
            Region::De => "de.goskope.com",
            Region::Au => "au.goskope.com",
        };
        Names {
            gateway: format!("gateway-{tenant}.{domain}"),
            backup: format!("gateway-backup-{tenant}.{domain}"),
            domain: domain.to_string(),
        }
    }
}

/// Whether a client version (`95.1.0`, `95.1.0.870`, `96.1`) is at least `major.minor`.
/// Unreadable parts count as 0.
pub fn version_at_least(version: &str, major: u32, minor: u32) -> bool {
    let mut parts = version
        .trim()
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let have = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    have >= (major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_major_then_minor() {
        assert!(!version_at_least("95.1.0.870", 96, 1));
        assert!(version_at_least("96.1", 96, 1));
        assert!(version_at_least("96.1.0.1", 96, 1));
        assert!(version_at_least("100.0", 96, 1));
        assert!(!version_at_least("96.0.9", 96, 1));
        assert!(!version_at_least("garbage", 96, 1));
    }
}
