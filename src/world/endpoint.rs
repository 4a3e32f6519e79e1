//! One endpoint of the world: its network path, the real agent (through its shell) and
//! the apps that ask it for flows, all on the endpoint's host.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use agent::core::{Config, TunnelProto as AgentProto};
use agent::shell::{Command, DtlsIdentity, DtlsSettings, Shell, ShellConfig, WallClock};
use tokio::sync::mpsc;

use super::apps::{AppRequest, Apps};
use super::build::{
    DNS_PORT, GSLB_NAME, WorldError, agent_region, domain, on_prem_check, origin_addresses,
    steering,
};
use super::net::SimNet;
use super::path::Path;
use super::pki::Pki;
use super::plan::{Plan, proxy_names};
use super::registry::Registry;
use super::serve::WorldClock;
use super::timeline::Timeline;
use crate::pcap::export::Recorder;
use crate::report::FlowRecord;
use crate::scenario::{Scenario, TunnelProto};

/// Where one endpoint sits: its place among the scenario's endpoints, its address, its
/// own copy of the network path, and the capture (the first endpoint's only).
pub(super) struct EndpointPlace {
    pub(super) index: usize,
    pub(super) ip: Ipv4Addr,
    pub(super) path: Path,
    pub(super) recorder: Option<Recorder>,
}

/// What every endpoint shares.
pub(super) struct EndpointShared<'a> {
    pub(super) pki: &'a Pki,
    pub(super) identity: &'a super::pki::Leaf,
    pub(super) registry: &'a Arc<Registry>,
    pub(super) timeline: &'a Timeline,
    pub(super) flows: &'a Arc<Mutex<BTreeMap<usize, FlowRecord>>>,
}

/// One running endpoint, as the driver reaches it.
pub(super) struct Endpoint {
    pub(super) ip: Ipv4Addr,
    pub(super) path: Arc<Mutex<Path>>,
    pub(super) commands: mpsc::UnboundedSender<Command>,
    pub(super) app_requests: mpsc::UnboundedSender<AppRequest>,
    pub(super) status: tokio::sync::watch::Receiver<agent::core::Status>,
}

/// Builds one endpoint: its path, its agent (through the shell) and its apps, to run on
/// its host (see [`start_hosts`]).
pub(super) fn build(
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
pub(super) type EndpointSoftware = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

/// Starts every endpoint's software, each host running its endpoints side by side.
pub(super) fn start_hosts(sim: &mut turmoil::Sim<'_>, software: Vec<(Ipv4Addr, EndpointSoftware)>) {
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
pub(super) fn app_proxy(
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
