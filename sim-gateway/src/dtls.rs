//! DTLS termination on one UDP socket: datagrams are sorted by peer address, each peer
//! gets its own dimpl server session (DTLS 1.3, or 1.2 if that is all the client offers),
//! and once its handshake is done the session's records are bridged to an in-memory byte
//! stream served by the same [`relay::Session`] as a TLS connection.
//!
//! dimpl is sans-IO, so its retransmission timers run on tokio's clock (turmoil's in the
//! simulation). Each outgoing tunnel frame goes in a record of its own (cut when longer
//! than a record), since DTLS does not resend lost records. The client's certificate is
//! required by dimpl and checked for its handshake signature only, not against a CA.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use dimpl::crypto::CryptoProvider;
use dimpl::{Config, Dtls, DtlsCertificate, Output};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::mpsc;

use crate::{Dialer, Gateway, LOG_TARGET, relay};

/// The largest datagram the gateway sends.
pub const DEFAULT_MTU: usize = 1200;
/// Bytes a record adds around its plaintext, with margin.
const RECORD_OVERHEAD: usize = 64;
const PIPE_BYTES: usize = 64 * 1024;
const MAX_DATAGRAM: usize = 64 * 1024;
/// A DTLS record header's first byte for a handshake message: only these start sessions.
const HANDSHAKE: u8 = 22;
/// How long a peer may take to finish its handshake.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(60);

/// A UDP socket: turmoil's in the simulation, tokio's in real mode.
pub trait Udp: 'static {
    /// Sends one datagram.
    fn send_to(&self, buf: &[u8], addr: SocketAddr) -> impl Future<Output = io::Result<usize>>;
    /// Receives one datagram.
    fn recv_from(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<(usize, SocketAddr)>>;
}

impl Udp for tokio::net::UdpSocket {
    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> io::Result<usize> {
        tokio::net::UdpSocket::send_to(self, buf, addr).await
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        tokio::net::UdpSocket::recv_from(self, buf).await
    }
}

/// The gateway's DTLS identity and options.
pub(crate) struct Server {
    certificate: DtlsCertificate,
    mtu: usize,
    seed: Option<u64>,
    crypto: CryptoProvider,
    handshakes: AtomicU64,
}

impl Server {
    /// Checks that dimpl can use `certificate` and `key` (ECDSA P-256/P-384).
    pub(crate) fn new(
        certificate: Vec<u8>,
        key: Vec<u8>,
        seed: Option<u64>,
    ) -> Result<Server, String> {
        let crypto = match seed {
            Some(seed) => agent::shell::dtls::seeded_provider(seed),
            None => dimpl::crypto::rust_crypto::default_provider(),
        };
        dimpl::crypto::cert_named_group(&certificate).map_err(|e| e.to_string())?;
        crypto
            .key_provider
            .load_private_key(&key)
            .map_err(|e| e.to_string())?;
        Ok(Server {
            certificate: DtlsCertificate {
                certificate,
                private_key: key,
            },
            mtu: DEFAULT_MTU,
            seed,
            crypto,
            handshakes: AtomicU64::new(0),
        })
    }

    fn config(&self) -> Result<Arc<Config>, dimpl::Error> {
        let mut builder = Config::builder()
            .mtu(self.mtu)
            .with_crypto_provider(self.crypto.clone());
        if let Some(seed) = self.seed {
            let n = self.handshakes.fetch_add(1, Ordering::Relaxed);
            builder =
                builder.dangerously_set_rng_seed(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        }
        builder.build().map(Arc::new)
    }
}

/// Serves DTLS on `socket` until receiving fails.
pub(crate) async fn serve<U: Udp, D: Dialer>(
    gw: Gateway<D>,
    server: Arc<Server>,
    socket: U,
) -> io::Result<()> {
    let socket = Rc::new(socket);
    let mut peers: BTreeMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>> = BTreeMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(got) => got,
            // An ICMP error for an earlier send: not this socket's end.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => continue,
            Err(e) => return Err(e),
        };
        let packet = buf.get(..n).unwrap_or_default().to_vec();
        let packet = match peers.get(&peer) {
            Some(tx) => match tx.send(packet) {
                Ok(()) => continue,
                Err(mpsc::error::SendError(packet)) => packet,
            },
            None => packet,
        };
        // Forget peers whose sessions ended (this one's included).
        peers.retain(|_, tx| !tx.is_closed());
        if packet.first() != Some(&HANDSHAKE) {
            continue;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(packet);
        peers.insert(peer, tx);
        let link = Link {
            socket: socket.clone(),
            peer,
            packets: rx,
            out: vec![0; 2048],
            deadline: None,
            received: BytesMut::new(),
            connected: false,
            close_notify: false,
        };
        tokio::task::spawn_local(session(gw.clone(), server.clone(), link));
    }
}

/// One peer: handshake, then the relay session over the bridged stream.
async fn session<U: Udp, D: Dialer>(gw: Gateway<D>, server: Arc<Server>, mut link: Link<U>) {
    let name = gw.name.clone();
    let peer = link.peer;
    let config = match server.config() {
        Ok(config) => config,
        Err(e) => {
            tracing::warn!(target: LOG_TARGET, gateway = %name, "DTLS setup failed: {e}");
            return;
        }
    };
    let mut dtls = Dtls::new_auto(config, server.certificate.clone(), now());
    let handshake = async {
        // dimpl panics on a packet before its first timeout call.
        dtls.handle_timeout(now())?;
        while !link.connected {
            link.flush(&mut dtls).await?;
            if link.connected || !link.wake(&mut dtls, None).await? {
                break;
            }
        }
        Ok::<bool, dimpl::Error>(link.connected)
    };
    // dimpl gives up 40 s after a valid ClientHello; this also ends sessions that only
    // ever got junk.
    let Ok(handshake) = tokio::time::timeout(HANDSHAKE_LIMIT, handshake).await else {
        tracing::info!(target: LOG_TARGET, gateway = %name, "DTLS handshake from {peer} timed out");
        return;
    };
    match handshake {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::info!(target: LOG_TARGET, gateway = %name, "DTLS handshake from {peer} failed: {e}");
            return;
        }
    }
    let id = gw.sessions.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::info!(target: LOG_TARGET, gateway = %name, "session {id} up from {peer} over DTLS");
    let (tunnel, pipe) = tokio::io::duplex(PIPE_BYTES);
    let relay = relay::Session::new(gw.dialer.clone(), name.clone(), id, gw.policy.clone());
    tokio::task::spawn_local(async move {
        let end = relay.run(tunnel).await;
        tracing::info!(target: LOG_TARGET, gateway = %name, "session {id} from {peer} ended: {end}");
    });
    let record = server.mtu.saturating_sub(RECORD_OVERHEAD).max(1);
    let _ = link.pump(&mut dtls, pipe, record).await;
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// One peer's datagrams (from the demultiplexer) and the shared socket.
struct Link<U> {
    socket: Rc<U>,
    peer: SocketAddr,
    packets: mpsc::UnboundedReceiver<Vec<u8>>,
    out: Vec<u8>,
    deadline: Option<Instant>,
    received: BytesMut,
    connected: bool,
    close_notify: bool,
}

/// The relay's side of a session.
struct App<'a> {
    rd: &'a mut ReadHalf<DuplexStream>,
    wr: &'a mut WriteHalf<DuplexStream>,
    outgoing: &'a mut BytesMut,
}

/// What woke a session up.
enum Wake {
    Packet(Option<Vec<u8>>),
    Timer,
    Wrote(io::Result<usize>),
    Read(io::Result<usize>),
}

impl<U: Udp> Link<U> {
    /// Drains dimpl's output up to its next timeout and sends its datagrams. A failed
    /// send is a lost datagram: dimpl retransmits.
    async fn flush(&mut self, dtls: &mut Dtls) -> Result<(), dimpl::Error> {
        let mut packets = Vec::new();
        loop {
            let have = self.out.len();
            match dtls.poll_output(&mut self.out) {
                Output::Packet(p) => packets.push(p.to_vec()),
                Output::BufferTooSmall { needed } if needed > have => self.out.resize(needed, 0),
                Output::BufferTooSmall { .. } => return Err(dimpl::Error::TransmitQueueFull),
                Output::Timeout(at) => {
                    self.deadline = Some(at);
                    break;
                }
                Output::Connected => self.connected = true,
                Output::ApplicationData(data) => self.received.extend_from_slice(data),
                Output::CloseNotify => self.close_notify = true,
                _ => {} // The client's certificate; DTLS-SRTP keys.
            }
        }
        for packet in packets {
            let _ = self.socket.send_to(&packet, self.peer).await;
        }
        Ok(())
    }

    /// Waits for the next event and feeds dimpl; `false` when the demultiplexer is gone.
    async fn wake(&mut self, dtls: &mut Dtls, app: Option<App<'_>>) -> Result<bool, dimpl::Error> {
        let deadline = self.deadline;
        let timer = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let (rd, wr, outgoing) = match app {
            Some(App { rd, wr, outgoing }) => (Some(rd), Some(wr), Some(outgoing)),
            None => (None, None, None),
        };
        let (reading, writing) = (rd.is_some(), wr.is_some() && !self.received.is_empty());
        let listening = self.received.len() < 4 * PIPE_BYTES;
        let wake = tokio::select! {
            biased;
            packet = self.packets.recv(), if listening => Wake::Packet(packet),
            () = timer => Wake::Timer,
            wrote = async {
                match wr {
                    Some(wr) => wr.write_buf(&mut self.received).await,
                    None => std::future::pending().await,
                }
            }, if writing => Wake::Wrote(wrote),
            read = async {
                match (rd, outgoing) {
                    (Some(rd), Some(outgoing)) => rd.read_buf(outgoing).await,
                    _ => std::future::pending().await,
                }
            }, if reading => Wake::Read(read),
        };
        match wake {
            Wake::Packet(None) => return Ok(false),
            Wake::Packet(Some(packet)) => {
                dtls.handle_timeout(now())?;
                dtls.handle_packet(&packet)?;
            }
            Wake::Timer => dtls.handle_timeout(now())?,
            Wake::Wrote(Ok(n)) if n > 0 => {}
            Wake::Wrote(_) => return Ok(false),
            Wake::Read(Ok(n)) if n > 0 => {}
            Wake::Read(_) => {
                dtls.close()?;
                self.flush(dtls).await?;
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Carries bytes between the relay's stream and the peer until either side ends.
    async fn pump(
        &mut self,
        dtls: &mut Dtls,
        pipe: DuplexStream,
        record: usize,
    ) -> Result<(), dimpl::Error> {
        let (mut rd, mut wr) = tokio::io::split(pipe);
        let mut outgoing = BytesMut::new();
        loop {
            while let Some(frame) = next_frame(&mut outgoing) {
                for chunk in frame.chunks(record) {
                    dtls.send_application_data(chunk)?;
                    self.flush(dtls).await?;
                }
            }
            self.flush(dtls).await?;
            if self.close_notify && self.received.is_empty() {
                let _ = wr.shutdown().await;
                return Ok(());
            }
            let app = App {
                rd: &mut rd,
                wr: &mut wr,
                outgoing: &mut outgoing,
            };
            if !self.wake(dtls, Some(app)).await? {
                return Ok(());
            }
        }
    }
}

/// Cuts the next whole tunnel frame (its length at header bytes 5..7) off `buf`.
fn next_frame(buf: &mut BytesMut) -> Option<BytesMut> {
    let header = buf.get(..agent::wire::HEADER_LEN)?;
    let len = agent::wire::HEADER_LEN + usize::from(u16::from_be_bytes([header[5], header[6]]));
    (buf.len() >= len).then(|| buf.split_to(len))
}
