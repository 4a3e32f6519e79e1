//! Starting a scenario's servers on loopback: DoH, the local resolver, GSLB, every
//! gateway, origins, the proxy, the PAC server and the portal check, with the same
//! routers, zone and PKI as the simulation; then the CA certificates and `serve.json`.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::net::UdpSocket;

use super::bind::{self, BindError, Tcp};
use super::dial::LoopbackDialer;
use super::info::{CaFiles, FILE, HostInfo, Identity, Listening, ServeInfo, Service};
use super::topology::{Host, Kind, Topology, TopologyError};
use crate::scenario::{CertKind, Scenario};
use crate::world::build::{GSLB_NAME, authority, behaviour};
use crate::world::pki::{Authority, Leaf, Pki, PkiError};
use crate::world::serve as world_serve;

/// Where to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The folder for the CA certificates and `serve.json` (made if missing).
    pub dir: PathBuf,
    /// The first loopback address to use.
    pub base: Ipv4Addr,
    /// Where every server logs its TLS session secrets (`--keylog`), if anywhere.
    pub key_log: Option<Arc<dyn rustls::KeyLog>>,
}

/// Why serving could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The addresses could not be placed.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// A service could not listen.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// Certificates could not be made (a bug).
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// rustls rejected a certificate made here (a bug).
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
    /// A gateway could not be built (a bug).
    #[error("gateway setup failed: {0}")]
    Gateway(#[from] sim_gateway::GatewayError),
    /// The scenario's control plane could not be built.
    #[error("tenant control plane: {0}")]
    Tenant(String),
    /// A broken invariant of this module: please file a bug.
    #[error("internal error: {0} (please file a bug)")]
    Unreachable(&'static str),
    /// The output folder could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Servers running on loopback (in the current `LocalSet`), and what was written.
pub struct Served {
    /// What runs where (also in `serve.json`).
    pub info: ServeInfo,
    /// The path of `serve.json`.
    pub info_path: PathBuf,
    /// Silent sockets, kept open for as long as this lives.
    _silent: Vec<Silent>,
}

/// A socket held open and never read: a silent service.
type Silent = Box<dyn std::any::Any>;

/// Starts every service of `s` (call inside a `LocalSet`; the services run as its local
/// tasks) and writes the CA certificates and `serve.json` into `options.dir`.
pub async fn start(s: &Scenario, options: &ServeOptions) -> Result<Served, ServeError> {
    let topology = Topology::new(s, options.base)?;
    #[allow(
        clippy::disallowed_methods,
        reason = "real mode: certificates are valid around the real date"
    )]
    let now_ms = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let mut pki = Pki::new(s.seed, now_ms)?;
    if let Some(key_log) = &options.key_log {
        pki.log_keys_to(key_log.clone());
    }
    let clock: Arc<dyn rustls::time_provider::TimeProvider> =
        Arc::new(rustls::time_provider::DefaultTimeProvider);
    let mut silent: Vec<Silent> = Vec::new();
    let mut ports: BTreeMap<(Ipv4Addr, u16), u16> = BTreeMap::new();
    let mut listening: BTreeMap<Ipv4Addr, Vec<Listening>> = BTreeMap::new();
    let mut note = |ip: Ipv4Addr, what: &str, proto: &str, wanted: u16, port: u16| {
        if wanted != port {
            ports.insert((ip, wanted), port);
        }
        listening.entry(ip).or_default().push(Listening {
            what: what.to_string(),
            proto: proto.to_string(),
            port,
        });
    };

    // Bind everything first: the dialer needs every real port.
    let host_of = |kind: Kind| topology.host(&kind).cloned();
    let (Some(doh), Some(gslb), Some(ldns), Some(check)) = (
        host_of(Kind::Doh),
        host_of(Kind::Gslb),
        host_of(Kind::Ldns),
        host_of(Kind::PortalCheck),
    ) else {
        return Err(ServeError::Unreachable(
            "the topology lacks DoH, GSLB, the resolver or the portal check",
        ));
    };
    let doh_tcp = bind::tcp(doh.ip, 443, doh.silent, "DNS over HTTPS").await?;
    note(doh.ip, "https", "tcp", 443, doh_tcp.port);
    let gslb_tcp = bind::tcp(gslb.ip, 443, gslb.silent, "GSLB").await?;
    note(gslb.ip, "https", "tcp", 443, gslb_tcp.port);
    let (mut dns, dns_port) = bind::tcp_udp(&[(ldns.ip, ldns.silent)], 53, "DNS").await?;
    note(ldns.ip, "dns", "udp", 53, dns_port);
    note(ldns.ip, "dns", "tcp", 53, dns_port);
    let gateways: Vec<Host> = topology
        .hosts
        .iter()
        .filter(|h| matches!(h.kind, Kind::Gateway(_) | Kind::Backup))
        .cloned()
        .collect();
    let gw_ips: Vec<(Ipv4Addr, bool)> = gateways.iter().map(|h| (h.ip, h.silent)).collect();
    let (gw_sockets, gateway_port) = bind::tcp_udp(&gw_ips, 443, "gateway").await?;
    for h in &gateways {
        note(h.ip, "tls", "tcp", 443, gateway_port);
        note(h.ip, "dtls", "udp", 443, gateway_port);
    }
    let mut origins = Vec::new();
    for h in topology.hosts.iter().filter(|h| h.kind == Kind::Origin) {
        let plain = bind::tcp(h.ip, 80, h.silent, "origin http").await?;
        note(h.ip, "http", "tcp", 80, plain.port);
        let tls = bind::tcp(h.ip, 443, h.silent, "origin https").await?;
        note(h.ip, "https", "tcp", 443, tls.port);
        origins.push((h.clone(), plain, tls));
    }
    let mut proxy = None;
    if let (Some(h), Some(p)) = (topology.host(&Kind::Proxy), &s.network.proxy) {
        let wanted = p.address.port();
        let tcp = bind::tcp(h.ip, wanted, h.silent, "proxy").await?;
        note(h.ip, "connect", "tcp", wanted, tcp.port);
        proxy = Some((h.clone(), tcp));
    }
    let mut pac = None;
    if let Some(h) = topology.host(&Kind::Pac) {
        let tcp = bind::tcp(h.ip, 80, h.silent, "PAC server").await?;
        note(h.ip, "http", "tcp", 80, tcp.port);
        pac = Some((h.clone(), tcp));
    }
    let mut tenant = None;
    if let Some(h) = topology.host(&Kind::Tenant) {
        let tcp = bind::tcp(h.ip, 443, h.silent, "tenant control plane").await?;
        note(h.ip, "https", "tcp", 443, tcp.port);
        tenant = Some((h.clone(), tcp));
    }
    let check_tcp = bind::tcp(check.ip, 80, check.silent, "portal check").await?;
    note(check.ip, "http", "tcp", 80, check_tcp.port);
    let dialer = LoopbackDialer::new(
        topology.names.clone(),
        topology.translate.clone(),
        ports.clone(),
    );

    // DNS over HTTPS.
    let doh_addr = SocketAddr::from((doh.ip, doh_tcp.port));
    let doh_service = Service {
        name: s.dns.doh.clone(),
        addr: doh_addr,
        silent: doh.silent,
    };
    if doh_tcp.is_silent() {
        silent.push(Box::new(doh_tcp));
    } else {
        let (by, expired) = authority(s.dns.doh_cert, Authority::Public);
        let leaf = pki.leaf(&[s.dns.doh.clone(), doh.ip.to_string()], by, expired)?;
        let tls = world_serve::server_config(&leaf, clock.clone(), None)?;
        let router = sim_doh::router(sim_doh::DohState {
            zone: topology.zone.clone(),
            behaviour: behaviour(&s.dns.doh_behaviour),
        });
        spawn_router(doh_tcp, router, Some(tls));
    }

    // GSLB.
    let gslb_addr = SocketAddr::from((gslb.ip, gslb_tcp.port));
    let gslb_service = Service {
        name: GSLB_NAME.to_string(),
        addr: gslb_addr,
        silent: gslb.silent,
    };
    if gslb_tcp.is_silent() {
        silent.push(Box::new(gslb_tcp));
    } else {
        let leaf = pki.leaf(
            &[GSLB_NAME.to_string(), gslb.ip.to_string()],
            Authority::Public,
            false,
        )?;
        let tls = world_serve::server_config(&leaf, clock.clone(), None)?;
        spawn_router(
            gslb_tcp,
            sim_gslb::router(topology.gslb_state(s)),
            Some(tls),
        );
    }

    // The local resolver.
    let ldns_addr = SocketAddr::from((ldns.ip, dns_port));
    if let Some((tcp, udp)) = dns.pop() {
        if ldns.silent {
            silent.push(Box::new(tcp));
            silent.push(Box::new(udp));
        } else {
            let resolver = sim_doh::Ldns::new(
                topology.zone.clone(),
                s.dns.ldns_location.clone(),
                behaviour(&s.dns.ldns_behaviour),
            );
            tokio::task::spawn_local(serve_dns(tcp, udp, resolver));
        }
    }

    // Gateways: TLS and DTLS on one port.
    // The same policy as the world's gateways.
    let policy = crate::world::build::gateway_policy(s);
    for (host, (tcp, udp)) in gateways.iter().zip(gw_sockets) {
        if host.silent {
            silent.push(Box::new(tcp));
            silent.push(Box::new(udp));
            continue;
        }
        let cert = match &host.kind {
            Kind::Gateway(name) => s.pops.iter().find(|p| &p.name == name).map(|p| p.cert),
            _ => Some(s.backup.cert),
        };
        let (by, expired) = authority(cert.unwrap_or(CertKind::Trusted), Authority::Tenant);
        let leaf = pki.leaf(&host.names, by, expired)?;
        let dtls_leaf = pki.ecdsa_leaf(&host.names, by, expired)?;
        #[allow(
            clippy::disallowed_methods,
            reason = "real mode runs on the real clock"
        )]
        let gw = sim_gateway::Gateway::new(
            &host.label,
            leaf.chain,
            leaf.key,
            SystemTime::now,
            dialer.clone(),
        )?
        .with_dtls(&dtls_leaf.chain[0], &dtls_leaf.key, None)?
        .with_policy(policy.clone())
        .with_key_log(pki.key_log());
        let dtls_gw = gw.clone();
        tokio::task::spawn_local(async move { dtls_gw.serve_dtls(udp).await });
        tokio::task::spawn_local(world_serve::serve_gateway(tcp.listener, gw));
    }

    // Origins: HTTP and HTTPS with a public certificate.
    for (host, plain, tls) in origins {
        if host.silent {
            silent.push(Box::new(plain));
            silent.push(Box::new(tls));
            continue;
        }
        let leaf = pki.leaf(&host.names, Authority::Public, false)?;
        let config = world_serve::server_config(&leaf, clock.clone(), None)?;
        let router = crate::origin::router(&host.names.join(", "));
        spawn_router(plain, router.clone(), None);
        spawn_router(tls, router, Some(config));
    }

    // The proxy, the PAC server, the portal check.
    let mut proxy_addr = None;
    let mut proxy_port = None;
    if let Some((host, tcp)) = proxy {
        proxy_addr = Some(SocketAddr::from((host.ip, tcp.port)));
        proxy_port = Some(tcp.port);
        if tcp.is_silent() {
            silent.push(Box::new(tcp));
        } else {
            tokio::task::spawn_local(super::proxy::serve(tcp.listener, dialer.clone()));
        }
    }
    let mut pac_url = None;
    if let Some((_, tcp)) = pac {
        let port_part = super::clients::port_suffix(tcp.port, 80);
        pac_url = Some(match crate::world::pac::discovery(s) {
            Some(agent::core::ProxyDiscovery::Wpad { domain }) => {
                format!("http://wpad.{domain}{port_part}/wpad.dat")
            }
            _ => format!("http://pac.{}{port_part}/proxy.pac", s.dns.search_domain),
        });
        if tcp.is_silent() {
            silent.push(Box::new(tcp));
        } else {
            let script = topology.pac_script(s, proxy_port);
            spawn_router(tcp, crate::world::pac::router(script), None);
        }
    }
    let portal_check_url = format!(
        "http://{}{}/generate_204",
        crate::world::portal::CHECK_HOST,
        super::clients::port_suffix(check_tcp.port, 80)
    );
    if check_tcp.is_silent() {
        silent.push(Box::new(check_tcp));
    } else {
        spawn_router(check_tcp, crate::world::portal::check_router(), None);
    }

    // The tenant's control plane: one host, each name served by its own router.
    let mut control_plane = None;
    if let (Some((host, tcp)), Some(cp)) = (tenant, &s.control_plane) {
        let domain = crate::world::build::domain(s.tenant.region);
        control_plane = Some(Service {
            name: format!("addon-{}.{domain}", s.tenant.name),
            addr: SocketAddr::from((host.ip, tcp.port)),
            silent: host.silent,
        });
        if tcp.is_silent() {
            silent.push(Box::new(tcp));
        } else {
            let spec = crate::world::tenant::spec(s, cp);
            let state = sim_tenant::TenantState::new(spec, Arc::new(unix_s))
                .map_err(|e| ServeError::Tenant(e.to_string()))?;
            let names = crate::world::tenant::names(&s.tenant.name, domain);
            let mut cert_names = host.names.clone();
            cert_names.push(host.ip.to_string());
            let leaf = pki.leaf(&cert_names, Authority::Public, false)?;
            let tls = world_serve::server_config(&leaf, clock.clone(), None)?;
            let router = crate::world::tenant::router(state, &names);
            spawn_router(tcp, router, Some(tls));
        }
    }

    // Files.
    let dir = absolute(&options.dir)?;
    std::fs::create_dir_all(&dir).map_err(|source| ServeError::Write {
        path: dir.clone(),
        source,
    })?;
    let public = dir.join("public-ca.pem");
    let tenant = dir.join("tenant-ca.pem");
    write(
        &public,
        &super::pem::encode("CERTIFICATE", &pki.public_root()),
    )?;
    write(
        &tenant,
        &super::pem::encode("CERTIFICATE", &pki.tenant_root()),
    )?;
    let identity = pki.ecdsa_leaf(
        &[format!("endpoint.{}", s.tenant.name)],
        Authority::Tenant,
        false,
    )?;
    let endpoint = Identity {
        cert: dir.join("endpoint.pem"),
        key: dir.join("endpoint-key.pem"),
    };
    write(
        &endpoint.cert,
        &super::pem::encode("CERTIFICATE", &identity.chain[0]),
    )?;
    write(&endpoint.key, &key_pem(&identity))?;

    let hosts: Vec<HostInfo> = topology
        .hosts
        .iter()
        .map(|h| HostInfo {
            label: h.label.clone(),
            kind: h.kind.word().to_string(),
            ip: h.ip,
            sim_ip: h.sim_ip,
            names: h.names.clone(),
            services: listening.remove(&h.ip).unwrap_or_default(),
            silent: h.silent,
        })
        .collect();
    let scenario = absolute(&s.path)?;
    let mut info = ServeInfo {
        scenario,
        name: s.name.clone(),
        seed: s.seed,
        tenant: s.tenant.name.clone(),
        gateway_name: topology.gateway_name.clone(),
        backup_name: topology.backup_name.clone(),
        client_ip: s.client.ip,
        doh: doh_service,
        gslb: gslb_service,
        ldns: ldns_addr,
        gateway_port,
        proxy: proxy_addr,
        pac_url,
        portal_check_url,
        control_plane,
        ca: CaFiles { public, tenant },
        endpoint,
        hosts,
        ephemeral_ports: !ports.is_empty(),
        not_applied: topology.not_applied.clone(),
        clients: Vec::new(),
    };
    let gateway = topology.names.get(&info.gateway_name).copied();
    info.clients = super::clients::lines(&info, gateway);
    let info_path = dir.join(FILE);
    let json = serde_json::to_string_pretty(&info).unwrap_or_default();
    // Written whole under another name, then renamed: a reader never sees half of it.
    let partial = dir.join(format!("{FILE}.partial"));
    write(&partial, &(json + "\n"))?;
    std::fs::rename(&partial, &info_path).map_err(|source| ServeError::Write {
        path: info_path.clone(),
        source,
    })?;
    Ok(Served {
        info,
        info_path,
        _silent: silent,
    })
}

impl Served {
    /// Removes `serve.json` (the servers stop with the `LocalSet`).
    pub fn stop(self) {
        let _ = std::fs::remove_file(&self.info_path);
    }
}

/// Serves `router` on `tcp`: plain HTTP/1.1, or over TLS offering HTTP/2 and HTTP/1.1 by
/// ALPN (RFC 8484 recommends HTTP/2 for DoH, and kdig speaks nothing else; the agent asks
/// for HTTP/1.1 as in the simulation).
fn spawn_router(tcp: Tcp, router: axum::Router, tls: Option<Arc<rustls::ServerConfig>>) {
    match tls {
        None => {
            tokio::task::spawn_local(world_serve::serve_router(
                tcp.listener,
                router,
                None,
                world_serve::Date::System,
            ));
        }
        Some(config) => {
            let mut config = (*config).clone();
            config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            tokio::task::spawn_local(serve_https(tcp.listener, router, Arc::new(config)));
        }
    }
}

async fn serve_https(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    tls: Arc<rustls::ServerConfig>,
) -> std::io::Result<()> {
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;
    loop {
        let (tcp, peer) = listener.accept().await?;
        let router = router
            .clone()
            .layer(tower::util::MapRequestLayer::new(host_from_authority))
            .layer(axum::Extension(axum::extract::ConnectInfo(peer)));
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.clone());
        tokio::task::spawn_local(async move {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
            let service = TowerToHyperService::new(router);
            let io = TokioIo::new(stream);
            if h2 {
                let http = hyper::server::conn::http2::Builder::new(LocalExec);
                let _ = http.serve_connection(io, service).await;
            } else {
                let http = hyper::server::conn::http1::Builder::new();
                let _ = http.serve_connection(io, service).await;
            }
        });
    }
}

/// HTTP/2 carries the host in `:authority`, which hyper puts in the URI: give routers
/// that choose by `Host` (the tenant's) the header they would get over HTTP/1.1.
fn host_from_authority(mut request: axum::extract::Request) -> axum::extract::Request {
    use axum::http::{HeaderValue, header::HOST};
    if !request.headers().contains_key(HOST) {
        let authority = request.uri().authority().map(|a| a.as_str().to_string());
        if let Some(value) = authority.and_then(|a| HeaderValue::from_str(&a).ok()) {
            request.headers_mut().insert(HOST, value);
        }
    }
    request
}

/// Runs HTTP/2's stream tasks on the `LocalSet`.
#[derive(Debug, Clone, Copy)]
struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, future: F) {
        tokio::task::spawn_local(future);
    }
}

/// The local resolver on a tokio TCP listener and UDP socket.
async fn serve_dns(tcp: Tcp, udp: UdpSocket, resolver: sim_doh::Ldns) -> std::io::Result<()> {
    let tcp_resolver = resolver.clone();
    let listener = tcp.listener;
    tokio::task::spawn_local(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let r = tcp_resolver.clone();
            tokio::task::spawn_local(async move {
                let _ = r.handle_tcp(stream, peer).await;
            });
        }
    });
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = udp.recv_from(&mut buf).await?;
        if let Some(reply) = resolver.handle_udp(&buf[..n], peer).await {
            udp.send_to(&reply, peer).await?;
        }
    }
}

/// The system clock in Unix seconds (the control plane's clock).
fn unix_s() -> i64 {
    agent::shell::WallClock::system().unix_ms().div_euclid(1000)
}

fn key_pem(leaf: &Leaf) -> String {
    super::pem::encode("PRIVATE KEY", leaf.key.secret_der())
}

fn write(path: &Path, text: &str) -> Result<(), ServeError> {
    std::fs::write(path, text).map_err(|source| ServeError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn absolute(path: &Path) -> Result<PathBuf, ServeError> {
    std::path::absolute(path).map_err(|source| ServeError::Write {
        path: path.to_path_buf(),
        source,
    })
}
