//! Proxy auto-configuration in the world: which PAC script is in force, the PAC server
//! that serves it (`http://pac.<domain>/proxy.pac`, and `http://wpad.<domain>/wpad.dat`
//! when WPAD is on), and the apps' own use of it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use agent::core::ProxyDiscovery as AgentDiscovery;
use agent::pac::{self, PacEnv, ProxyChoice};
use axum::Router;
use axum::http::header;
use axum::routing::get;

use crate::scenario::{ProxyDiscovery, Scenario};

/// The media type of PAC files.
pub const PAC_MEDIA_TYPE: &str = "application/x-ns-proxy-autoconfig";

/// How the agent finds its proxy, when by auto-configuration: `proxy.discovery` of
/// `"pac"` or `"wpad"`, or a `pac` script with no proxy table.
pub fn discovery(s: &Scenario) -> Option<AgentDiscovery> {
    let domain = s.dns.search_domain.clone();
    match s.network.proxy.as_ref().map(|p| p.discovery) {
        Some(ProxyDiscovery::Manual) => None,
        Some(ProxyDiscovery::Wpad) => Some(AgentDiscovery::Wpad { domain }),
        Some(ProxyDiscovery::Pac) => Some(AgentDiscovery::Pac {
            url: pac_url(&domain),
        }),
        None => s.network.pac.as_ref().map(|_| AgentDiscovery::Pac {
            url: pac_url(&domain),
        }),
    }
}

/// The PAC URL the endpoint is configured with.
pub fn pac_url(domain: &str) -> String {
    format!("http://pac.{domain}/proxy.pac")
}

/// The script the PAC server serves: the scenario's `pac`, or one that sends everything
/// to the proxy.
pub fn script(s: &Scenario) -> String {
    match (&s.network.pac, &s.network.proxy) {
        (Some(script), _) => script.clone(),
        (None, Some(proxy)) => format!(
            "function FindProxyForURL(url, host) {{ return \"PROXY {}\"; }}\n",
            proxy.address
        ),
        (None, None) => "function FindProxyForURL(url, host) { return \"DIRECT\"; }\n".to_string(),
    }
}

/// The DNS names of the PAC server.
pub fn server_names(s: &Scenario) -> Vec<String> {
    let domain = &s.dns.search_domain;
    let mut names = vec![format!("pac.{domain}")];
    if matches!(discovery(s), Some(AgentDiscovery::Wpad { .. })) {
        names.push(format!("wpad.{domain}"));
    }
    names
}

/// The PAC server's routes: the script at `/proxy.pac` and `/wpad.dat`, 404 elsewhere.
pub fn router(script: String) -> Router {
    let serve = move || {
        let script = script.clone();
        async move { ([(header::CONTENT_TYPE, PAC_MEDIA_TYPE)], script) }
    };
    Router::new()
        .route("/proxy.pac", get(serve.clone()))
        .route("/wpad.dat", get(serve))
}

/// Where an app that follows the system proxy settings sends a connection to
/// `host:port`, and a timeline line saying why. `None` means direct.
pub fn app_route(
    script: &str,
    host: &str,
    port: u16,
    env: &PacEnv,
) -> (Option<SocketAddr>, String) {
    let scheme = if port == 80 { "http" } else { "https" };
    let url = format!("{scheme}://{host}/");
    match pac::find_proxy(script, &url, host, env) {
        Ok(answer) => {
            for choice in &answer.choices {
                match choice {
                    ProxyChoice::Direct => {
                        return (None, format!("PAC says {:?}: direct", answer.returned));
                    }
                    ProxyChoice::Http { host: p, port } => {
                        if let Some(ip) = env.resolve(p) {
                            let proxy = SocketAddr::new(ip, *port);
                            return (
                                Some(proxy),
                                format!("PAC says {:?}: through {proxy}", answer.returned),
                            );
                        }
                    }
                    ProxyChoice::Other { .. } => {}
                }
            }
            (
                None,
                format!("PAC says {:?}: nothing usable, direct", answer.returned),
            )
        }
        // Browsers go direct when the PAC script fails.
        Err(err) => (None, format!("PAC failed ({err}): direct")),
    }
}

/// The PAC environment of an app on the endpoint: every name in the world.
pub fn app_env(
    names: &BTreeMap<String, Ipv4Addr>,
    client_ip: Ipv4Addr,
    now_unix_ms: i64,
) -> PacEnv {
    PacEnv {
        my_ip: IpAddr::V4(client_ip),
        now_unix_ms,
        names: names
            .iter()
            .map(|(n, ip)| (n.clone(), IpAddr::V4(*ip)))
            .collect(),
    }
}
