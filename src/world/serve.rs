//! Serving the world's servers on turmoil hosts: HTTPS routers (DoH, origins), the local
//! resolver on UDP and TCP 53, and gateways on TCP 443.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;
use turmoil::net::{TcpListener, UdpSocket};

use super::pki::Leaf;

const ANY: Ipv4Addr = Ipv4Addr::UNSPECIFIED;

/// A TLS 1.2/1.3 server config for `leaf`, on the given clock (the world's, or the
/// system's in real mode). With `tls_seed` (the world's), its randomness and key exchange
/// come from the seed, so the same run gives the same bytes; real mode passes `None`.
/// Its session secrets go to the leaf's key log, if it has one.
pub fn server_config(
    leaf: &Leaf,
    clock: Arc<dyn rustls::time_provider::TimeProvider>,
    tls_seed: Option<u64>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = Arc::new(tls_provider(tls_seed));
    let mut config = ServerConfig::builder_with_details(provider, clock)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(leaf.chain.clone(), leaf.key.clone_key())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if let Some(key_log) = &leaf.key_log {
        config.key_log = key_log.clone();
    }
    Ok(Arc::new(config))
}

/// rustls's ring provider: seeded (see [`agent::shell::seeded_tls_provider`]) or with the
/// operating system's randomness.
pub fn tls_provider(tls_seed: Option<u64>) -> rustls::crypto::CryptoProvider {
    match tls_seed {
        Some(seed) => agent::shell::seeded_tls_provider(seed),
        None => rustls::crypto::ring::default_provider(),
    }
}

/// A TLS seed for one server of the world: the world's seed mixed with the server's
/// label, so that every server draws its own bytes.
pub fn tls_seed(world_seed: u64, label: &str) -> Option<u64> {
    // FNV-1a: a stable hash of the label (std's hasher is not stable across releases).
    let hash = label.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    Some(agent::shell::seed::mix(world_seed, hash))
}

/// A listening TCP socket: turmoil's in the simulation, tokio's in real mode.
pub trait Accept: 'static {
    /// An accepted connection.
    type Stream: AsyncRead + AsyncWrite + Unpin + 'static;
    /// Waits for the next connection.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>>;
}

impl Accept for TcpListener {
    type Stream = turmoil::net::TcpStream;
    async fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)> {
        TcpListener::accept(self).await
    }
}

impl Accept for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept(&self) -> io::Result<(Self::Stream, SocketAddr)> {
        tokio::net::TcpListener::accept(self).await
    }
}

/// Serves `router` over HTTPS on `port` of a turmoil host (plain HTTP when `tls` is
/// `None`). Answers carry a `Date` from the simulated clock, not the machine's.
pub async fn https(router: Router, tls: Option<Arc<ServerConfig>>, port: u16) -> turmoil::Result {
    let listener = TcpListener::bind((ANY, port)).await?;
    let router = router.layer(axum::middleware::map_response(simulated_date));
    serve_router(listener, router, tls, Date::Caller).await?;
    Ok(())
}

/// Sets the `Date` header of an answer to the simulation's time.
async fn simulated_date(mut response: axum::response::Response) -> axum::response::Response {
    let now = std::time::UNIX_EPOCH + turmoil::since_epoch().unwrap_or_default();
    if let Ok(value) = axum::http::HeaderValue::from_str(&httpdate::fmt_http_date(now)) {
        response
            .headers_mut()
            .insert(axum::http::header::DATE, value);
    }
    response
}

/// Who dates the answers [`serve_router`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Date {
    /// hyper, from the machine's clock (real mode).
    System,
    /// The router itself (the simulation, from its clock): hyper adds none.
    Caller,
}

/// Echoes every datagram that arrives on UDP `port` (origins answering UDP apps, and the
/// gateway's UDP flow probe).
pub async fn udp_echo(port: u16) -> turmoil::Result {
    let socket = turmoil::net::UdpSocket::bind((ANY, port)).await?;
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, from) = socket.recv_from(&mut buf).await?;
        socket.send_to(&buf[..n], from).await?;
    }
}

/// Serves `router` on every connection `listener` accepts (TLS first when `tls` is set).
/// The peer address reaches handlers as `ConnectInfo<SocketAddr>`.
pub async fn serve_router<L: Accept>(
    listener: L,
    router: Router,
    tls: Option<Arc<ServerConfig>>,
    date: Date,
) -> io::Result<()> {
    loop {
        let (tcp, peer) = listener.accept().await?;
        let router = router.clone().layer(axum::Extension(ConnectInfo(peer)));
        let tls = tls.clone();
        tokio::task::spawn_local(async move {
            let service = TowerToHyperService::new(router);
            let mut http = hyper::server::conn::http1::Builder::new();
            http.auto_date_header(date == Date::System);
            match tls {
                Some(config) => {
                    if let Ok(stream) = TlsAcceptor::from(config).accept(tcp).await {
                        let _ = http.serve_connection(TokioIo::new(stream), service).await;
                    }
                }
                None => {
                    let _ = http.serve_connection(TokioIo::new(tcp), service).await;
                }
            }
        });
    }
}

/// Serves the local resolver on UDP and TCP 53 of a turmoil host.
pub async fn ldns(resolver: sim_doh::Ldns) -> turmoil::Result {
    let tcp = TcpListener::bind((ANY, 53)).await?;
    let tcp_resolver = resolver.clone();
    tokio::task::spawn_local(async move {
        while let Ok((stream, peer)) = tcp.accept().await {
            let r = tcp_resolver.clone();
            tokio::task::spawn_local(async move {
                let _ = r.handle_tcp(stream, peer).await;
            });
        }
    });
    let udp = UdpSocket::bind((ANY, 53)).await?;
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = udp.recv_from(&mut buf).await?;
        if let Some(reply) = resolver.handle_udp(&buf[..n], peer).await {
            udp.send_to(&reply, peer).await?;
        }
    }
}

/// Serves a gateway on TCP 443 of a turmoil host.
pub async fn gateway<D: sim_gateway::Dialer>(gw: sim_gateway::Gateway<D>) -> turmoil::Result {
    let listener = TcpListener::bind((ANY, 443)).await?;
    serve_gateway(listener, gw).await?;
    Ok(())
}

/// Serves a gateway on every connection `listener` accepts.
pub async fn serve_gateway<L: Accept, D: sim_gateway::Dialer>(
    listener: L,
    gw: sim_gateway::Gateway<D>,
) -> io::Result<()> {
    loop {
        let (tcp, peer) = listener.accept().await?;
        let gw = gw.clone();
        tokio::task::spawn_local(async move { gw.handle_connection(tcp, peer).await });
    }
}

/// How servers in the world reach origins: names from the world's address book, then
/// turmoil TCP (servers sit on the internet, behind no firewall).
#[derive(Clone)]
pub struct WorldDialer {
    names: Arc<std::collections::BTreeMap<String, Ipv4Addr>>,
}

impl WorldDialer {
    /// A dialer that knows these names.
    pub fn new(names: std::collections::BTreeMap<String, Ipv4Addr>) -> WorldDialer {
        WorldDialer {
            names: Arc::new(names),
        }
    }
}

impl sim_gateway::Dialer for WorldDialer {
    type Stream = turmoil::net::TcpStream;

    async fn dial(&self, host: &str, port: u16) -> std::io::Result<Self::Stream> {
        let ip = match host.parse::<Ipv4Addr>() {
            Ok(ip) => ip,
            Err(_) => *self.names.get(&host.to_ascii_lowercase()).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("no such host {host}"))
            })?,
        };
        turmoil::net::TcpStream::connect(SocketAddr::from((ip, port))).await
    }

    async fn exchange_udp(
        &self,
        host: &str,
        port: u16,
        datagram: &[u8],
    ) -> std::io::Result<Vec<u8>> {
        let ip = match host.parse::<Ipv4Addr>() {
            Ok(ip) => ip,
            Err(_) => *self.names.get(&host.to_ascii_lowercase()).ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("no such host {host}"))
            })?,
        };
        let to = SocketAddr::from((ip, port));
        let socket = turmoil::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await?;
        socket.send_to(datagram, to).await?;
        let mut buf = vec![0u8; 2048];
        loop {
            let (n, from) = socket.recv_from(&mut buf).await?;
            if from == to {
                buf.truncate(n);
                return Ok(buf);
            }
        }
    }
}

/// How real-mode servers reach origins: fixed addresses on loopback, through tokio.
#[derive(Clone, Default)]
pub struct RealDialer {
    names: Arc<std::collections::BTreeMap<String, SocketAddr>>,
}

impl RealDialer {
    /// A dialer that knows these names.
    pub fn new(names: std::collections::BTreeMap<String, SocketAddr>) -> RealDialer {
        RealDialer {
            names: Arc::new(names),
        }
    }
}

impl sim_gateway::Dialer for RealDialer {
    type Stream = tokio::net::TcpStream;

    async fn dial(&self, host: &str, _port: u16) -> io::Result<Self::Stream> {
        let addr = self.names.get(&host.to_ascii_lowercase()).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("no such host {host}"))
        })?;
        tokio::net::TcpStream::connect(addr).await
    }
}

/// The simulated wall clock for rustls: the scenario's clock plus simulated time.
#[derive(Debug, Clone, Copy)]
pub struct WorldClock {
    /// The clock at t = 0, in Unix milliseconds.
    pub epoch_unix_ms: i64,
}

impl WorldClock {
    /// Unix milliseconds now.
    pub fn now_unix_ms(&self) -> i64 {
        let elapsed = turmoil::sim_elapsed().unwrap_or_default();
        self.epoch_unix_ms + i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
    }

    /// The same as a `SystemTime`.
    pub fn now(&self) -> std::time::SystemTime {
        let ms = self.now_unix_ms();
        if ms >= 0 {
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64)
        } else {
            std::time::UNIX_EPOCH
        }
    }
}

impl rustls::time_provider::TimeProvider for WorldClock {
    fn current_time(&self) -> Option<rustls::pki_types::UnixTime> {
        let ms = u64::try_from(self.now_unix_ms()).ok()?;
        Some(rustls::pki_types::UnixTime::since_unix_epoch(
            std::time::Duration::from_millis(ms),
        ))
    }
}
