//! Exporting a simulated run as a capture: what a capture on the customer's laptop would
//! show. The endpoint's network layer records every connect, segment and datagram here;
//! [`Recorder::to_pcap`] renders them as Ethernet/IPv4 frames with correct checksums and
//! simulated timestamps.
//!
//! TCP is synthesized from what the sockets saw: a handshake at connect (a lone SYN for a
//! dropped connect, SYN then RST for a refused one), one or more segments per write and
//! per read (at most [`MSS`] bytes each), a FIN when the stream is dropped. Sequence
//! numbers start at a fixed value per connection, and the world's TLS draws its randomness
//! from the seed, so the same seed gives the same file byte for byte.
//!
//! A pcapng export also carries the TLS session secrets of the run (every TLS end of the
//! world logs them into the recorder's [`Recorder::key_log`]), those of the sessions whose
//! ClientHello it shows, in a Decryption Secrets Block before the first packet, so Wireshark decrypts the tunnel, DoH and the rest
//! with no setup. The secrets come from the seeded TLS randomness: same seed, same
//! secrets.
//!
//! In pcapng, every packet carries a comment naming the simulated host at the far end and
//! whose traffic it is: the agent's own (never steered), or an app flow with the agent's
//! verdict and reason (`www.box.com: app chrome.exe www.box.com:443 direct (...)`).

use std::collections::BTreeMap;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent::shell::KeyLogLines;
use etherparse::PacketBuilder;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};

/// The largest TCP payload per synthesized segment.
pub const MSS: usize = 1460;

const CLIENT_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x01];
const GATEWAY_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0xfe];

/// TCP flags of a synthesized segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flags {
    Syn,
    SynAck,
    Ack,
    Psh,
    Fin,
    Rst,
}

#[derive(Debug, Clone)]
enum Frame {
    Tcp {
        src: SocketAddrV4,
        dst: SocketAddrV4,
        seq: u32,
        ack: u32,
        flags: Flags,
        payload: Vec<u8>,
    },
    Udp {
        src: SocketAddrV4,
        dst: SocketAddrV4,
        payload: Vec<u8>,
    },
}

/// Sequence numbers of one connection, by (client, server).
#[derive(Debug, Clone, Copy)]
struct Seqs {
    client: u32,
    server: u32,
}

/// Collects frames; shared by every socket of the endpoint.
#[derive(Debug, Clone)]
pub struct Recorder(Arc<Mutex<Inner>>);

/// Whose traffic a frame is, for its pcapng comment: `None` is the agent's own.
type Note = Option<Arc<str>>;

/// One recorded frame: when, what, whose.
type Recorded = (Duration, Frame, Note);

#[derive(Debug)]
struct Inner {
    client: std::net::Ipv4Addr,
    frames: Vec<Recorded>,
    conns: BTreeMap<(SocketAddrV4, SocketAddrV4), (Seqs, Note)>,
    /// Names of the simulated hosts, by address, for the comments.
    hosts: BTreeMap<std::net::Ipv4Addr, String>,
    /// The run's TLS session secrets.
    keys: Arc<KeyLogLines>,
    /// The time of the latest frame: none is recorded earlier (a stream dropped after the
    /// simulation ended reads a zero clock).
    last: Duration,
}

/// What the comment says of traffic with no note.
const AGENT_NOTE: &str = "the agent's own traffic (never steered)";

const CLIENT_ISN: u32 = 1_000;
const SERVER_ISN: u32 = 5_000;

impl Recorder {
    /// A recorder for the endpoint at `client`.
    pub fn new(client: std::net::Ipv4Addr) -> Recorder {
        Recorder(Arc::new(Mutex::new(Inner {
            client,
            frames: Vec::new(),
            conns: BTreeMap::new(),
            hosts: BTreeMap::new(),
            keys: Arc::new(KeyLogLines::new()),
            last: Duration::ZERO,
        })))
    }

    /// Where the run's TLS ends log their session secrets, for the pcapng export.
    pub fn key_log(&self) -> Arc<dyn rustls::KeyLog> {
        match self.0.lock() {
            Ok(i) => i.keys.clone(),
            // A poisoned recorder records nothing more; its secrets would be of no use.
            Err(_) => Arc::new(KeyLogLines::new()),
        }
    }

    /// This recorder with `keys` as its key log, shared with others (the hosts' captures
    /// share one).
    pub fn with_key_log(self, keys: Arc<KeyLogLines>) -> Recorder {
        self.with(|i| i.keys = keys);
        self
    }

    /// The TLS session secrets logged so far, as SSLKEYLOGFILE text.
    pub fn key_log_text(&self) -> String {
        self.0.lock().map(|i| i.keys.text()).unwrap_or_default()
    }

    /// Whether `other` is this recorder (a clone shares it).
    pub fn same_as(&self, other: &Recorder) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Names the simulated hosts (by address) for the pcapng comments.
    pub fn name_hosts(&self, hosts: BTreeMap<std::net::Ipv4Addr, String>) {
        self.with(|i| i.hosts = hosts);
    }

    fn with(&self, f: impl FnOnce(&mut Inner)) {
        if let Ok(mut inner) = self.0.lock() {
            f(&mut inner);
        }
    }

    /// A connect that completed: the three-way handshake. `note` says whose connection
    /// it is (`None`: the agent's); every later frame of it carries the same.
    pub fn connected(&self, at: Duration, client: SocketAddr, server: SocketAddr, note: Note) {
        let (Some(c), Some(s)) = (v4(client), v4(server)) else {
            return;
        };
        self.with(|i| {
            let seqs = Seqs {
                client: CLIENT_ISN + 1,
                server: SERVER_ISN + 1,
            };
            i.conns.insert((c, s), (seqs, note.clone()));
            let n = &note;
            i.tcp(at, c, s, CLIENT_ISN, 0, Flags::Syn, Vec::new(), n);
            let (syn_ack, ack) = (Flags::SynAck, Flags::Ack);
            i.tcp(at, s, c, SERVER_ISN, CLIENT_ISN + 1, syn_ack, Vec::new(), n);
            i.tcp(at, c, s, CLIENT_ISN + 1, SERVER_ISN + 1, ack, Vec::new(), n);
        });
    }

    /// A connect that got no answer (its SYN was dropped) or a reset.
    pub fn attempt(
        &self,
        at: Duration,
        client: SocketAddr,
        server: SocketAddr,
        reset: bool,
        note: Note,
    ) {
        let (Some(c), Some(s)) = (v4(client), v4(server)) else {
            return;
        };
        self.with(|i| {
            i.tcp(at, c, s, CLIENT_ISN, 0, Flags::Syn, Vec::new(), &note);
            if reset {
                i.tcp(at, s, c, 0, CLIENT_ISN + 1, Flags::Rst, Vec::new(), &note);
            }
        });
    }

    /// Bytes on an established connection, `outbound` from the client.
    pub fn data(
        &self,
        at: Duration,
        client: SocketAddr,
        server: SocketAddr,
        outbound: bool,
        bytes: &[u8],
    ) {
        let (Some(c), Some(s)) = (v4(client), v4(server)) else {
            return;
        };
        self.with(|i| {
            let Some((mut seqs, note)) = i.conns.get(&(c, s)).cloned() else {
                return;
            };
            for chunk in bytes.chunks(MSS) {
                let n = chunk.len() as u32;
                let payload = chunk.to_vec();
                if outbound {
                    let (seq, ack) = (seqs.client, seqs.server);
                    i.tcp(at, c, s, seq, ack, Flags::Psh, payload, &note);
                    seqs.client = seqs.client.wrapping_add(n);
                } else {
                    let (seq, ack) = (seqs.server, seqs.client);
                    i.tcp(at, s, c, seq, ack, Flags::Psh, payload, &note);
                    seqs.server = seqs.server.wrapping_add(n);
                }
            }
            i.conns.insert((c, s), (seqs, note));
        });
    }

    /// The client closed the connection.
    pub fn closed(&self, at: Duration, client: SocketAddr, server: SocketAddr) {
        let (Some(c), Some(s)) = (v4(client), v4(server)) else {
            return;
        };
        self.with(|i| {
            if let Some((seqs, note)) = i.conns.remove(&(c, s)) {
                let (seq, ack) = (seqs.client, seqs.server);
                i.tcp(at, c, s, seq, ack, Flags::Fin, Vec::new(), &note);
            }
        });
    }

    /// A UDP datagram; `note` as for [`Recorder::connected`].
    pub fn datagram(
        &self,
        at: Duration,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
        note: Note,
    ) {
        let (Some(src), Some(dst)) = (v4(src), v4(dst)) else {
            return;
        };
        self.with(|i| {
            let payload = payload.to_vec();
            let at = i.in_order(at);
            i.frames.push((at, Frame::Udp { src, dst, payload }, note));
        });
    }

    /// The endpoint's address and every frame so far.
    fn snapshot(&self) -> Option<(std::net::Ipv4Addr, Vec<Recorded>)> {
        self.0.lock().ok().map(|i| (i.client, i.frames.clone()))
    }

    /// The names of the hosts, for the comments.
    fn hosts(&self) -> BTreeMap<std::net::Ipv4Addr, String> {
        self.0.lock().map(|i| i.hosts.clone()).unwrap_or_default()
    }

    /// How many frames so far.
    pub fn len(&self) -> usize {
        self.0.lock().map(|i| i.frames.len()).unwrap_or(0)
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The capture as a pcapng file (one Ethernet interface, nanosecond timestamps
    /// declared with `if_tsresol`, the TLS secrets before the first packet), timestamps
    /// `epoch` + offset.
    pub fn to_pcapng(&self, epoch: Duration) -> Vec<u8> {
        use pcap_file::pcapng::PcapNgWriter;
        use pcap_file::pcapng::blocks::enhanced_packet::{
            EnhancedPacketBlock, EnhancedPacketOption,
        };
        use pcap_file::pcapng::blocks::interface_description::{
            InterfaceDescriptionBlock, InterfaceDescriptionOption,
        };
        let Some((client, frames)) = self.snapshot() else {
            return Vec::new();
        };
        let hosts = self.hosts();
        let Ok(mut writer) = PcapNgWriter::new(Vec::new()) else {
            return Vec::new();
        };
        let interface = InterfaceDescriptionBlock {
            linktype: pcap_file::DataLink::ETHERNET,
            snaplen: 65_535,
            // pcap-file writes nanoseconds: say so, or readers are off by 1000.
            options: vec![InterfaceDescriptionOption::IfTsResol(9)],
        };
        if writer.write_pcapng_block(interface).is_err() {
            return Vec::new();
        }
        let keys = super::secrets::lines_for(&self.key_log_text(), &client_randoms(&frames));
        if !keys.is_empty() {
            let block = super::secrets::tls_key_log_block(&keys, writer.section().endianness);
            if writer.write_pcapng_block(block).is_err() {
                return Vec::new();
            }
        }
        for (at, frame, note) in frames {
            let bytes = build(&frame, client);
            let comment = comment(&frame, client, &note, &hosts);
            let block = EnhancedPacketBlock {
                interface_id: 0,
                timestamp: epoch + at,
                original_len: bytes.len() as u32,
                data: std::borrow::Cow::Owned(bytes),
                options: vec![EnhancedPacketOption::Comment(comment.into())],
            };
            if writer.write_pcapng_block(block).is_err() {
                break;
            }
        }
        writer.into_inner()
    }

    /// The capture as a pcap file (Ethernet, microseconds), timestamps `epoch` + offset.
    pub fn to_pcap(&self, epoch: Duration) -> Vec<u8> {
        let Some((client, frames)) = self.snapshot() else {
            return Vec::new();
        };
        let header = PcapHeader {
            snaplen: 65_535,
            ..PcapHeader::default()
        };
        let Ok(mut writer) = PcapWriter::with_header(Vec::new(), header) else {
            return Vec::new();
        };
        for (at, frame, _) in frames {
            let bytes = build(&frame, client);
            let packet = PcapPacket::new(epoch + at, bytes.len() as u32, &bytes);
            if writer.write_packet(&packet).is_err() {
                break;
            }
        }
        writer.into_writer()
    }
}

impl Inner {
    #[allow(clippy::too_many_arguments, reason = "one segment's header fields")]
    fn tcp(
        &mut self,
        at: Duration,
        src: SocketAddrV4,
        dst: SocketAddrV4,
        seq: u32,
        ack: u32,
        flags: Flags,
        payload: Vec<u8>,
        note: &Note,
    ) {
        let frame = Frame::Tcp {
            src,
            dst,
            seq,
            ack,
            flags,
            payload,
        };
        let at = self.in_order(at);
        self.frames.push((at, frame, note.clone()));
    }

    /// `at`, or the latest frame's time when `at` is earlier: the capture stays in time
    /// order.
    fn in_order(&mut self, at: Duration) -> Duration {
        self.last = self.last.max(at);
        self.last
    }
}

/// The client randoms of the TLS sessions the capture shows (their ClientHellos).
fn client_randoms(frames: &[Recorded]) -> std::collections::BTreeSet<String> {
    frames
        .iter()
        .filter_map(|(_, frame, _)| match frame {
            Frame::Tcp { payload, .. } => super::secrets::client_random(payload),
            Frame::Udp { .. } => None,
        })
        .collect()
}

/// The pcapng comment of `frame`: the far end's name and whose traffic it is.
fn comment(
    frame: &Frame,
    client: std::net::Ipv4Addr,
    note: &Note,
    hosts: &BTreeMap<std::net::Ipv4Addr, String>,
) -> String {
    let (src, dst) = match frame {
        Frame::Tcp { src, dst, .. } | Frame::Udp { src, dst, .. } => (src, dst),
    };
    let far = if *src.ip() == client { dst } else { src };
    let note = note.as_deref().unwrap_or(AGENT_NOTE);
    match hosts.get(far.ip()) {
        Some(name) => format!("{name}: {note}"),
        None => format!("{}: {note}", far.ip()),
    }
}

fn v4(addr: SocketAddr) -> Option<SocketAddrV4> {
    match addr {
        SocketAddr::V4(v4) => Some(v4),
        SocketAddr::V6(_) => None,
    }
}

/// An Ethernet frame for `frame`; the endpoint's MAC on its side.
fn build(frame: &Frame, client: std::net::Ipv4Addr) -> Vec<u8> {
    let mut out = Vec::new();
    match frame {
        Frame::Udp { src, dst, payload } => {
            let (smac, dmac) = macs(*src.ip() == client);
            let b = PacketBuilder::ethernet2(smac, dmac)
                .ipv4(src.ip().octets(), dst.ip().octets(), 64)
                .udp(src.port(), dst.port());
            let _ = b.write(&mut out, payload);
        }
        Frame::Tcp {
            src,
            dst,
            seq,
            ack,
            flags,
            payload,
        } => {
            let (smac, dmac) = macs(*src.ip() == client);
            let b = PacketBuilder::ethernet2(smac, dmac)
                .ipv4(src.ip().octets(), dst.ip().octets(), 64)
                .tcp(src.port(), dst.port(), *seq, 64_240);
            let b = match flags {
                Flags::Syn => b.syn(),
                Flags::SynAck => b.syn().ack(*ack),
                Flags::Ack => b.ack(*ack),
                Flags::Psh => b.psh().ack(*ack),
                Flags::Fin => b.fin().ack(*ack),
                Flags::Rst => b.rst().ack(*ack),
            };
            let _ = b.write(&mut out, payload);
        }
    }
    out
}

/// The endpoint's MAC as source when the endpoint sent the frame.
fn macs(from_endpoint: bool) -> ([u8; 6], [u8; 6]) {
    if from_endpoint {
        (CLIENT_MAC, GATEWAY_MAC)
    } else {
        (GATEWAY_MAC, CLIENT_MAC)
    }
}
