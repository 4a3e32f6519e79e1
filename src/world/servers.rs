//! The world's servers, each on its own turmoil host, started in a fixed order (the
//! order hosts tick in): DoH, GSLB (only when something can ask it: `plan::asks_gslb`),
//! the resolvers, the tenant's control plane, every PoP's gateway and gateway-backup,
//! the origins, then the site's own hosts (proxy, captive-portal check, PAC server,
//! captive portal, inspector).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use super::build::{
    GSLB_NAME, WorldError, agent_tls_roots, authority, behaviour, domain, gateway_policy,
    gslb_state, origin_addresses, origin_sites,
};
use super::inspect::Inspector;
use super::pki::{Authority, Pki};
use super::plan::{Plan, path_latency, proxy_names};
use super::serve::{self, WorldClock, WorldDialer};
use crate::scenario::{EventAction, Scenario};

/// What the driver keeps of the servers once they run.
pub(super) struct Servers {
    /// Each gateway's one-way latency from the endpoints' hosts.
    pub latencies: Vec<(Ipv4Addr, Duration)>,
    /// The tenant's control plane, with `[control_plane]`.
    pub tenant: Option<sim_tenant::TenantState>,
    /// Users and their groups, as the gateways' policy sees them (admin events move
    /// users between groups).
    pub directory: sim_gateway::policy::Directory,
}

/// Starts every server host of the world `plan` lays out for `s`.
pub(super) fn start(
    sim: &mut turmoil::Sim<'static>,
    s: &Scenario,
    plan: &Plan,
    pki: &mut Pki,
    seed: u64,
    clock: WorldClock,
) -> Result<Servers, WorldError> {
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
    // Its certificate is made either way: the PKI draws every leaf in the same order.
    if plan.gslb_host {
        sim.host(IpAddr::V4(plan.gslb), move || {
            serve::https(sim_gslb::router(gslb.clone()), Some(gslb_tls.clone()), 443)
        });
    }

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
    let policy = gateway_policy(s);
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
    let sites = origin_sites(s);
    let udp_ports = udp_ports(s);
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

    if let Some(proxy) = &s.network.proxy {
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
        let upstream = agent_tls_roots(pki, clock, serve::tls_seed(seed, "inspector upstream"))?;
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
    Ok(Servers {
        latencies,
        tenant: tenant_state,
        directory,
    })
}

/// UDP apps' ports: every origin echoes datagrams on them.
pub(super) fn udp_ports(s: &Scenario) -> BTreeSet<u16> {
    s.events
        .iter()
        .filter_map(|e| match &e.action {
            EventAction::Connect {
                port,
                proto: crate::scenario::AppProto::Udp,
                ..
            } => Some(*port),
            _ => None,
        })
        .collect()
}
