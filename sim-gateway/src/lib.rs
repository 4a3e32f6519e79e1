//! sim-gateway: the tunnel gateway of a PoP (and of gateway-backup).
//!
//! - [`Gateway::handle_connection`] terminates TLS 1.3 with the tenant's certificate and
//!   then speaks the agent's tunnel framing ([`agent::wire`]): it answers keepalives,
//!   opens flows to origins through a [`Dialer`], and relays their bytes.
//! - [`Gateway::serve_dtls`] terminates DTLS on a UDP socket (see [`Gateway::with_dtls`])
//!   and serves the same framing over it.
//! - IO-agnostic: the world hands it accepted streams and sockets (simulated or real) and
//!   a dialer.
//!
//! Log lines go to `tracing` under the target [`LOG_TARGET`].

mod dtls;
pub mod policy;
mod relay;

pub use policy::Policy;

pub use dtls::{DEFAULT_MTU as DTLS_MTU, Udp};

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;

use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;

/// The `tracing` target of gateway log lines.
pub const LOG_TARGET: &str = "gateway";

/// Opens connections from the gateway to origins.
pub trait Dialer: Clone + 'static {
    /// A connected stream to an origin.
    type Stream: AsyncRead + AsyncWrite + Unpin + 'static;
    /// Connects to `host:port`.
    fn dial(&self, host: &str, port: u16) -> impl Future<Output = io::Result<Self::Stream>>;
    /// Sends `datagram` to `host:port` over UDP and returns the first answer (the caller
    /// bounds the wait). Without UDP to origins, every UDP flow is refused.
    fn exchange_udp(
        &self,
        host: &str,
        port: u16,
        datagram: &[u8],
    ) -> impl Future<Output = io::Result<Vec<u8>>> {
        let _ = (host, port, datagram);
        std::future::ready(Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this gateway relays no UDP",
        )))
    }
}

/// Why a gateway could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The certificate or key was rejected by rustls.
    #[error("bad gateway certificate or key: {0}")]
    Tls(#[from] rustls::Error),
    /// The DTLS certificate or key was rejected by dimpl (ECDSA P-256/P-384 only).
    #[error("bad gateway DTLS certificate or key: {0}")]
    Dtls(String),
}

/// One gateway: a PoP or the backup.
pub struct Gateway<D: Dialer> {
    name: String,
    acceptor: TlsAcceptor,
    dialer: D,
    sessions: Arc<AtomicU32>,
    dtls: Option<Arc<dtls::Server>>,
    policy: Arc<Policy>,
}

impl<D: Dialer> Clone for Gateway<D> {
    fn clone(&self) -> Self {
        Gateway {
            name: self.name.clone(),
            acceptor: self.acceptor.clone(),
            dialer: self.dialer.clone(),
            sessions: self.sessions.clone(),
            dtls: self.dtls.clone(),
            policy: self.policy.clone(),
        }
    }
}

impl<D: Dialer> Gateway<D> {
    /// A gateway named `name` presenting `chain` (leaf first), checking nothing against
    /// the clock but TLS session tickets, which use `clock`.
    pub fn new(
        name: &str,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        clock: impl Fn() -> SystemTime + Send + Sync + 'static,
        dialer: D,
    ) -> Result<Gateway<D>, GatewayError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Gateway::with_provider(name, chain, key, clock, dialer, provider)
    }

    /// Like [`Gateway::new`], its TLS cryptography (randomness, key exchange) from
    /// `provider`: a seeded one makes the simulated handshakes reproducible.
    pub fn with_provider(
        name: &str,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        clock: impl Fn() -> SystemTime + Send + Sync + 'static,
        dialer: D,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Gateway<D>, GatewayError> {
        let config = ServerConfig::builder_with_details(provider, Arc::new(Clock(Box::new(clock))))
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        Ok(Gateway {
            name: name.to_string(),
            acceptor: TlsAcceptor::from(Arc::new(config)),
            dialer,
            sessions: Arc::new(AtomicU32::new(0)),
            dtls: None,
            policy: Arc::default(),
        })
    }

    /// Logs the TLS session secrets of every tunnel to `key_log` (SSLKEYLOGFILE lines),
    /// so that a capture of the tunnel can be decrypted; `None` logs nothing.
    pub fn with_key_log(mut self, key_log: Option<Arc<dyn rustls::KeyLog>>) -> Gateway<D> {
        let Some(key_log) = key_log else {
            return self;
        };
        let mut config = ServerConfig::clone(self.acceptor.config());
        config.key_log = key_log;
        self.acceptor = TlsAcceptor::from(Arc::new(config));
        self
    }

    /// Enforces `policy` on every flow opened through this gateway.
    pub fn with_policy(mut self, policy: Policy) -> Gateway<D> {
        self.policy = Arc::new(policy);
        self
    }

    /// Adds DTLS with `certificate` (an ECDSA P-256 or P-384 leaf; dimpl takes no RSA or
    /// Ed25519) and its `key`. With `seed`, every handshake's randomness (hello randoms,
    /// retransmission jitter, ephemeral keys) derives from it: for simulations only.
    pub fn with_dtls(
        mut self,
        certificate: &CertificateDer<'_>,
        key: &PrivateKeyDer<'_>,
        seed: Option<u64>,
    ) -> Result<Gateway<D>, GatewayError> {
        let server = dtls::Server::new(certificate.to_vec(), key.secret_der().to_vec(), seed)
            .map_err(GatewayError::Dtls)?;
        self.dtls = Some(Arc::new(server));
        Ok(self)
    }

    /// Serves DTLS on `socket` (UDP 443) until receiving fails: one session per peer
    /// address, each relayed like a TLS connection. Call inside a `LocalSet`.
    pub async fn serve_dtls<U: Udp>(&self, socket: U) -> io::Result<()> {
        let Some(server) = self.dtls.clone() else {
            return Err(io::Error::other(
                "DTLS is not configured (Gateway::with_dtls)",
            ));
        };
        dtls::serve(self.clone(), server, socket).await
    }

    /// The gateway's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Serves one accepted TCP connection until it closes.
    pub async fn handle_connection<S>(&self, stream: S, peer: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin + 'static,
    {
        let name = &self.name;
        let tls = match self.acceptor.accept(stream).await {
            Ok(tls) => tls,
            Err(e) => {
                tracing::info!(target: LOG_TARGET, gateway = %name, "TLS handshake from {peer} failed: {e}");
                return;
            }
        };
        let session = self.sessions.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(target: LOG_TARGET, gateway = %name, "session {session} up from {peer}");
        let end = relay::Session::new(
            self.dialer.clone(),
            name.clone(),
            session,
            self.policy.clone(),
        )
        .run(tls)
        .await;
        tracing::info!(target: LOG_TARGET, gateway = %name, "session {session} from {peer} ended: {end}");
    }
}

struct Clock(Box<dyn Fn() -> SystemTime + Send + Sync>);

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

impl rustls::time_provider::TimeProvider for Clock {
    fn current_time(&self) -> Option<UnixTime> {
        let since = (self.0)().duration_since(std::time::UNIX_EPOCH).ok()?;
        Some(UnixTime::since_unix_epoch(since))
    }
}
