//! The tunnel over DTLS (1.2 or 1.3, whichever the gateway picks) on UDP, with dimpl.
//!
//! dimpl is sans-IO: this module feeds it datagrams and timeouts and sends what it
//! produces, so its retransmission timers run on tokio's clock (turmoil's, simulated).
//! dimpl does not validate the gateway's certificate: it hands over the leaf, which is
//! checked here with rustls's webpki verifier against the tenant CA on the caller's
//! [`WallClock`], before any further datagram of ours leaves.
//!
//! After the handshake a local task pumps between the socket and one end of an in-memory
//! pipe; [`DtlsStream`] is the other end. Outgoing bytes go out one tunnel frame per record
//! (frames longer than a record are cut), because DTLS does not resend lost records: a lost
//! keepalive is then just a missing keepalive. The task ends when the stream is dropped
//! (sending `close_notify`), when the gateway closes, or on any DTLS error (the stream then
//! reads end-of-file).

mod link;
mod seeded;

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use dimpl::crypto::CryptoProvider;
use dimpl::{Config, Dtls, DtlsCertificate};
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

pub use seeded::seeded_provider;

use link::{Link, failed, now};

use super::net::{Net, WallClock};
use super::tls::classify;
use crate::core::NetError;

/// The largest datagram dimpl produces unless told otherwise: under the 1280 bytes every
/// IPv6 path carries, with room for tunnels on the way.
pub const DEFAULT_MTU: usize = 1200;

/// Bytes a record adds around its plaintext (DTLS 1.2: 13 header, 8 nonce, 16 tag; 1.3
/// is smaller), with margin.
const RECORD_OVERHEAD: usize = 64;
/// The pipe between [`DtlsStream`] and the pump task.
const PIPE_BYTES: usize = 64 * 1024;

/// The agent's own certificate and key for DTLS: dimpl needs one on both sides (ECDSA
/// P-256 or P-384 only).
#[derive(Clone)]
pub struct DtlsIdentity {
    certificate: Vec<u8>,
    key: Vec<u8>,
}

impl DtlsIdentity {
    /// The leaf `certificate` and its `key` (PKCS#8 or SEC1).
    pub fn new(certificate: &CertificateDer<'_>, key: &PrivateKeyDer<'_>) -> DtlsIdentity {
        DtlsIdentity {
            certificate: certificate.to_vec(),
            key: key.secret_der().to_vec(),
        }
    }

    fn for_dimpl(&self) -> DtlsCertificate {
        DtlsCertificate {
            certificate: self.certificate.clone(),
            private_key: self.key.clone(),
        }
    }
}

impl std::fmt::Debug for DtlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let len = self.certificate.len();
        write!(f, "DtlsIdentity {{ certificate: {len} bytes }}")
    }
}

/// What a DTLS tunnel needs: the tenant CA, the clock certificates are checked against,
/// the agent's identity, the path MTU, and optionally a seed that makes every handshake
/// reproducible.
#[derive(Clone)]
pub struct DtlsSettings {
    verifier: Arc<WebPkiServerVerifier>,
    clock: WallClock,
    identity: DtlsIdentity,
    mtu: usize,
    seed: Option<u64>,
    crypto: CryptoProvider,
    handshakes: Arc<AtomicU64>,
}

impl DtlsSettings {
    /// Settings trusting exactly `tenant_roots`, with [`DEFAULT_MTU`] and operating-system
    /// randomness. Fails if a root is unusable or `identity` is not an ECDSA P-256/P-384
    /// certificate with a key dimpl can load.
    pub fn new(
        tenant_roots: &[CertificateDer<'static>],
        clock: WallClock,
        identity: DtlsIdentity,
    ) -> Result<DtlsSettings, rustls::Error> {
        let mut store = RootCertStore::empty();
        for root in tenant_roots {
            store.add(root.clone())?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        let crypto = dimpl::crypto::rust_crypto::default_provider();
        let bad = |what: String| rustls::Error::General(format!("bad DTLS identity: {what}"));
        dimpl::crypto::cert_named_group(&identity.certificate).map_err(|e| bad(e.to_string()))?;
        crypto
            .key_provider
            .load_private_key(&identity.key)
            .map_err(|e| bad(e.to_string()))?;
        Ok(DtlsSettings {
            verifier,
            clock,
            identity,
            mtu: DEFAULT_MTU,
            seed: None,
            crypto,
            handshakes: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The largest datagram to send (at least 64; dimpl refuses less at connect time).
    pub fn with_mtu(mut self, mtu: usize) -> DtlsSettings {
        self.mtu = mtu;
        self
    }

    /// Derives all of dimpl's randomness (hello randoms, retransmission jitter, ephemeral
    /// keys) from `seed`: for simulations, where the same inputs must give the same bytes.
    /// Predictable keys: never in production.
    pub fn with_seed(mut self, seed: u64) -> DtlsSettings {
        self.seed = Some(seed);
        self.crypto = seeded_provider(seed);
        self
    }

    /// The path MTU in use.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    fn dimpl_config(&self) -> Result<Arc<Config>, NetError> {
        let mut builder = Config::builder()
            .mtu(self.mtu)
            .with_crypto_provider(self.crypto.clone());
        if let Some(seed) = self.seed {
            let n = self.handshakes.fetch_add(1, Ordering::Relaxed);
            builder = builder.dangerously_set_rng_seed(super::seed::mix(seed, n));
        }
        builder
            .build()
            .map(Arc::new)
            .map_err(|e| NetError::Other(format!("DTLS setup: {e}")))
    }

    /// Checks the gateway's leaf against the tenant CA for `name`, on the caller's clock.
    fn verify(&self, leaf: &[u8], name: &ServerName<'_>) -> Result<(), NetError> {
        let since = self
            .clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let leaf = CertificateDer::from(leaf);
        self.verifier
            .verify_server_cert(&leaf, &[], name, &[], UnixTime::since_unix_epoch(since))
            .map(|_| ())
            .map_err(|e| NetError::Tls(e.to_string()))
    }
}

impl std::fmt::Debug for DtlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DtlsSettings")
            .field("identity", &self.identity)
            .field("mtu", &self.mtu)
            .field("seeded", &self.seed.is_some())
            .finish_non_exhaustive()
    }
}

/// An established DTLS tunnel as a byte stream.
#[derive(Debug)]
pub struct DtlsStream {
    pipe: DuplexStream,
}

impl AsyncRead for DtlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.pipe).poll_read(cx, buf)
    }
}

impl AsyncWrite for DtlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.pipe).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.pipe).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.pipe).poll_shutdown(cx)
    }
}

/// Opens a DTLS 1.2-or-1.3 session to `addr` over `net`'s UDP, verifies the gateway leaf
/// for `server_name` against the tenant roots on the settings' clock, and returns a byte
/// stream carrying the tunnel. Call inside a `LocalSet`. A silent network never completes
/// (dimpl retransmits on its schedule): the caller's own timer decides when to give up.
pub async fn connect<N: Net>(
    net: &N,
    settings: &DtlsSettings,
    server_name: &str,
    addr: SocketAddr,
) -> Result<DtlsStream, NetError> {
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|e| NetError::Other(format!("bad server name {server_name}: {e}")))?;
    let config = settings.dimpl_config()?;
    let socket = net.bind_udp().await.map_err(|e| classify(&e))?;
    let mut dtls = Dtls::new_auto(config, settings.identity.for_dimpl(), now());
    dtls.set_active(true);
    // dimpl panics on a packet before its first timeout call.
    dtls.handle_timeout(now()).map_err(failed)?;
    let mut link = Link::new(dtls, socket, addr);
    let mut verified = false;
    loop {
        let packets = link.drain()?;
        if let Some(leaf) = link.peer_cert.take() {
            settings.verify(&leaf, &name)?;
            verified = true;
        }
        link.send(packets).await?;
        if link.close_notify {
            return Err(NetError::Closed);
        }
        if link.connected {
            if !verified {
                return Err(NetError::Tls("the gateway sent no certificate".into()));
            }
            break;
        }
        link.wait().await?;
    }
    let (stream, pipe) = tokio::io::duplex(PIPE_BYTES);
    let record = settings.mtu.saturating_sub(RECORD_OVERHEAD).max(1);
    tokio::task::spawn_local(link.pump(pipe, record));
    Ok(DtlsStream { pipe: stream })
}
