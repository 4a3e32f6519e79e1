//! The endpoint's traffic as exchanges: what the capture recorder
//! ([`crate::pcap::export::Recorder`]) saw, read back from its capture and collapsed to
//! one arrow per exchange so that a run stays readable:
//!
//! - a TCP connect: the SYN and its answer (a handshake, a reset, or nothing at all);
//! - a DNS query and its answer, decoded (UDP, or TCP with its length prefix);
//! - a burst of data on a connection or a UDP flow (packets less than [`BURST_GAP`]
//!   apart): one arrow each way, named by what its first bytes show (a TLS or DTLS
//!   ClientHello and its SNI, an HTTP request or status line) with the packet and byte
//!   counts; a UDP burst that got nothing back is lost;
//! - a close (FIN) or a reset on an open connection.
//!
//! Pure functions of the records, ordered by simulated time and then capture order.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::RData;
use pcap_file::pcap::PcapReader;

/// Packets of one connection or flow closer together than this are one exchange.
pub const BURST_GAP: Duration = Duration::from_millis(1000);

/// One packet the endpoint sent or received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireRecord {
    /// Simulated time since the start of the run.
    pub at: Duration,
    /// Source.
    pub src: SocketAddrV4,
    /// Destination.
    pub dst: SocketAddrV4,
    /// TCP with its flags, or UDP.
    pub segment: Segment,
    /// The transport payload.
    pub payload: Vec<u8>,
}

/// The transport of a [`WireRecord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// TCP.
    Tcp {
        /// SYN set.
        syn: bool,
        /// ACK set.
        ack: bool,
        /// FIN set.
        fin: bool,
        /// RST set.
        rst: bool,
    },
    /// UDP.
    Udp,
}

/// How an arrow is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The endpoint (or a peer) starts something: solid.
    Request,
    /// An answer: dashed.
    Reply,
    /// A reset or a refusal: red.
    Failure,
    /// Nothing came back: red, ending in a cross.
    Lost,
    /// A close: grey.
    Close,
}

/// One arrow of the diagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrow {
    /// When it started.
    pub at: Duration,
    /// The capture position of its first packet (orders arrows at the same time).
    pub seq: usize,
    /// The sender.
    pub from: Ipv4Addr,
    /// The receiver.
    pub to: Ipv4Addr,
    /// What it carried.
    pub label: String,
    /// How it is drawn.
    pub kind: Kind,
}

/// Decodes a capture written by [`crate::pcap::export::Recorder::to_pcap`] with a zero
/// epoch (timestamps are then offsets from the start of the run). Frames that are not
/// TCP or UDP over IPv4 are skipped; a broken capture yields what was read before.
pub fn records_from_pcap(bytes: &[u8]) -> Vec<WireRecord> {
    let mut out = Vec::new();
    let Ok(mut reader) = PcapReader::new(bytes) else {
        return out;
    };
    while let Some(Ok(packet)) = reader.next_packet() {
        let Ok(sliced) = SlicedPacket::from_ethernet(&packet.data) else {
            continue;
        };
        let Some(NetSlice::Ipv4(ip)) = &sliced.net else {
            continue;
        };
        let (src, dst) = (ip.header().source_addr(), ip.header().destination_addr());
        let (segment, sport, dport, payload) = match &sliced.transport {
            Some(TransportSlice::Tcp(t)) => (
                Segment::Tcp {
                    syn: t.syn(),
                    ack: t.ack(),
                    fin: t.fin(),
                    rst: t.rst(),
                },
                t.source_port(),
                t.destination_port(),
                t.payload(),
            ),
            Some(TransportSlice::Udp(u)) => (
                Segment::Udp,
                u.source_port(),
                u.destination_port(),
                u.payload(),
            ),
            _ => continue,
        };
        out.push(WireRecord {
            at: packet.timestamp,
            src: SocketAddrV4::new(src, sport),
            dst: SocketAddrV4::new(dst, dport),
            segment,
            payload: payload.to_vec(),
        });
    }
    out
}

/// The endpoint's traffic as arrows, one per exchange, in time order. `end` is when the
/// run ended.
pub fn arrows(records: &[WireRecord], endpoint: Ipv4Addr, end: Duration) -> Vec<Arrow> {
    let mut b = Builder::default();
    let mut latest = Duration::ZERO;
    for (seq, r) in records.iter().enumerate() {
        // Sockets dropped when the simulation is torn down have no simulated time (the
        // recorder stamps them zero): they belong at the end.
        let teardown = r.at < latest;
        latest = if teardown { latest.max(end) } else { r.at };
        let r = &WireRecord {
            at: latest,
            ..r.clone()
        };
        b.teardown = teardown;
        let outbound = *r.src.ip() == endpoint;
        // (the endpoint's side, the peer's side)
        let key = if outbound {
            (r.src, r.dst)
        } else {
            (r.dst, r.src)
        };
        match r.segment {
            Segment::Tcp { syn, ack, fin, rst } => {
                b.tcp(seq, r, key, outbound, (syn, ack, fin, rst));
            }
            Segment::Udp => b.udp(seq, r, key, outbound),
        }
    }
    b.finish()
}

type Key = (SocketAddrV4, SocketAddrV4);

/// Collapses packets into arrows.
#[derive(Default)]
struct Builder {
    arrows: Vec<Arrow>,
    /// TCP connections: the SYN's arrow (while unanswered) and the current burst.
    conns: BTreeMap<Key, Conn>,
    /// UDP flows other than DNS: the current burst.
    flows: BTreeMap<Key, Burst>,
    /// DNS queries waiting for their answer: (flow, id) to the query's arrow.
    queries: BTreeMap<(Key, u16), usize>,
    /// The current packet was recorded when the simulation was torn down.
    teardown: bool,
}

#[derive(Default)]
struct Conn {
    /// The SYN's arrow while no answer came.
    syn: Option<usize>,
    burst: Option<Burst>,
    /// DNS over TCP: the bytes of the next length-prefixed message each way, and when
    /// its first byte came.
    dns_out: Stream,
    dns_back: Stream,
}

#[derive(Default)]
struct Stream {
    bytes: Vec<u8>,
    first: Option<(Duration, usize)>,
}

impl Stream {
    /// The complete messages so far, each with the time and position of its first byte.
    fn push(&mut self, at: Duration, seq: usize, data: &[u8]) -> Vec<(Duration, usize, Vec<u8>)> {
        if self.first.is_none() {
            self.first = Some((at, seq));
        }
        self.bytes.extend_from_slice(data);
        let mut out = Vec::new();
        while let Some(len) = self
            .bytes
            .get(..2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        {
            if self.bytes.len() < 2 + len {
                break;
            }
            let message = self.bytes[2..2 + len].to_vec();
            self.bytes.drain(..2 + len);
            let (first_at, first_seq) = self.first.unwrap_or((at, seq));
            out.push((first_at, first_seq, message));
            self.first = (!self.bytes.is_empty()).then_some((at, seq));
        }
        out
    }
}

/// Data one way and the other on one connection or flow, close together.
struct Burst {
    last: Duration,
    out: Side,
    back: Side,
}

#[derive(Default)]
struct Side {
    /// When the first packet came and its capture position.
    first: Option<(Duration, usize)>,
    /// The first [`HEAD`] bytes: what names the burst (apps may read a byte at a time).
    head: Vec<u8>,
    packets: usize,
    bytes: usize,
}

/// How many leading bytes of a burst are kept to name it.
const HEAD: usize = 512;

impl Builder {
    fn push(&mut self, at: Duration, seq: usize, from: Ipv4Addr, to: Ipv4Addr) -> usize {
        self.arrows.push(Arrow {
            at,
            seq,
            from,
            to,
            label: String::new(),
            kind: Kind::Request,
        });
        self.arrows.len() - 1
    }

    fn arrow(&mut self, at: Duration, seq: usize, r: &WireRecord, label: String, kind: Kind) {
        let i = self.push(at, seq, *r.src.ip(), *r.dst.ip());
        self.arrows[i].label = label;
        self.arrows[i].kind = kind;
    }

    fn tcp(
        &mut self,
        seq: usize,
        r: &WireRecord,
        key: Key,
        outbound: bool,
        (syn, ack, fin, rst): (bool, bool, bool, bool),
    ) {
        let port = key.1.port();
        if syn && !ack {
            // A new connection (a reused address pair ends the old one).
            if let Some(old) = self.conns.remove(&key) {
                self.end_conn(key, old);
            }
            let i = self.push(r.at, seq, *r.src.ip(), *r.dst.ip());
            self.arrows[i].label = format!("TCP SYN :{port}");
            self.conns.insert(
                key,
                Conn {
                    syn: Some(i),
                    ..Conn::default()
                },
            );
            return;
        }
        if syn && ack {
            if let Some(i) = self.conns.get_mut(&key).and_then(|c| c.syn.take()) {
                self.arrows[i].label = format!("TCP connect :{port} (handshake)");
            }
            return;
        }
        if rst {
            let mut conn = self.conns.remove(&key).unwrap_or_default();
            // A reset answering the SYN: the SYN was heard, the connection refused.
            let refused = conn.syn.take().is_some();
            self.end_conn(key, conn);
            let label = if refused {
                "RST: connection refused"
            } else {
                "RST: connection reset"
            };
            self.arrow(r.at, seq, r, label.to_string(), Kind::Failure);
            return;
        }
        if !r.payload.is_empty() {
            let conn = self.conns.entry(key).or_default();
            // Data means the connect worked, whatever the capture showed of it.
            let syn = conn.syn.take();
            if let Some(i) = syn {
                self.arrows[i].label = format!("TCP connect :{port} (handshake)");
            }
            if port == 53 {
                let stream = if outbound {
                    &mut conn.dns_out
                } else {
                    &mut conn.dns_back
                };
                for (at, first, body) in stream.push(r.at, seq, &r.payload) {
                    let ends = (*r.src.ip(), *r.dst.ip());
                    if !self.dns(at, first, ends, key, outbound, &body) {
                        let label = "DNS over TCP: not a DNS message".to_string();
                        self.arrow(at, first, r, label, Kind::Failure);
                    }
                }
            } else if let Some(done) = add(&mut conn.burst, r, seq, outbound) {
                self.flush(key, done, false);
            }
        }
        if fin {
            let conn = self.conns.remove(&key).unwrap_or_default();
            self.end_conn(key, conn);
            let label = if self.teardown {
                "close (FIN) at the end of the run"
            } else {
                "close (FIN)"
            };
            self.arrow(r.at, seq, r, label.to_string(), Kind::Close);
        }
    }

    fn udp(&mut self, seq: usize, r: &WireRecord, key: Key, outbound: bool) {
        let ends = (*r.src.ip(), *r.dst.ip());
        if key.1.port() == 53 && self.dns(r.at, seq, ends, key, outbound, &r.payload) {
            return;
        }
        let mut burst = self.flows.remove(&key);
        let done = add(&mut burst, r, seq, outbound);
        if let Some(burst) = burst {
            self.flows.insert(key, burst);
        }
        if let Some(done) = done {
            self.flush(key, done, true);
        }
    }

    /// A DNS message from `ends.0` to `ends.1` on the flow `key`; false when `body` is
    /// not one.
    fn dns(
        &mut self,
        at: Duration,
        seq: usize,
        (from, to): (Ipv4Addr, Ipv4Addr),
        key: Key,
        outbound: bool,
        body: &[u8],
    ) -> bool {
        let Ok(msg) = Message::from_vec(body) else {
            return false;
        };
        let id = msg.metadata.id;
        let i = self.push(at, seq, from, to);
        if outbound && msg.metadata.message_type == MessageType::Query {
            self.arrows[i].label = dns_query(&msg);
            self.queries.insert((key, id), i);
        } else {
            self.queries.remove(&(key, id));
            self.arrows[i].label = dns_answer(&msg);
            self.arrows[i].kind = Kind::Reply;
        }
        true
    }

    /// Ends a connection: its burst is drawn; a SYN that got nothing is lost.
    fn end_conn(&mut self, key: Key, conn: Conn) {
        if let Some(i) = conn.syn {
            self.lost(i, ", no answer");
        }
        if let Some(burst) = conn.burst {
            self.flush(key, burst, false);
        }
    }

    fn lost(&mut self, i: usize, note: &str) {
        self.arrows[i].kind = Kind::Lost;
        self.arrows[i].label.push_str(note);
    }

    /// Draws a burst: one arrow for what the endpoint sent, one for what came back.
    /// A UDP burst that got nothing back is drawn as lost.
    fn flush(&mut self, (local, peer): Key, burst: Burst, udp: bool) {
        let unit = if udp { "datagram" } else { "segment" };
        let unanswered = udp && burst.back.first.is_none();
        for (side, from, to, kind) in [
            (burst.out, *local.ip(), *peer.ip(), Kind::Request),
            (burst.back, *peer.ip(), *local.ip(), Kind::Reply),
        ] {
            let Some((at, seq)) = side.first else {
                continue;
            };
            let i = self.push(at, seq, from, to);
            self.arrows[i].kind = kind;
            self.arrows[i].label = format!(
                "{} \u{b7} {} {unit}{}, {}",
                describe(&side.head, udp),
                side.packets,
                if side.packets == 1 { "" } else { "s" },
                bytes(side.bytes)
            );
            if unanswered && kind == Kind::Request {
                self.lost(i, ", no answer");
            }
        }
    }

    fn finish(mut self) -> Vec<Arrow> {
        for (key, conn) in std::mem::take(&mut self.conns) {
            self.end_conn(key, conn);
        }
        for (key, burst) in std::mem::take(&mut self.flows) {
            self.flush(key, burst, true);
        }
        for (_, i) in std::mem::take(&mut self.queries) {
            self.lost(i, ", no answer");
        }
        let mut arrows = self.arrows;
        arrows.sort_by_key(|a| (a.at, a.seq));
        arrows
    }
}

/// Adds a packet to the burst in `slot`; returns the previous burst when this packet
/// starts a new one.
fn add(slot: &mut Option<Burst>, r: &WireRecord, seq: usize, outbound: bool) -> Option<Burst> {
    let done = match slot {
        Some(b) if r.at.saturating_sub(b.last) > BURST_GAP => slot.take(),
        _ => None,
    };
    let burst = slot.get_or_insert_with(|| Burst {
        last: r.at,
        out: Side::default(),
        back: Side::default(),
    });
    burst.last = r.at;
    let side = if outbound {
        &mut burst.out
    } else {
        &mut burst.back
    };
    if side.first.is_none() {
        side.first = Some((r.at, seq));
    }
    let room = HEAD.saturating_sub(side.head.len());
    side.head
        .extend_from_slice(&r.payload[..room.min(r.payload.len())]);
    side.packets += 1;
    side.bytes += r.payload.len();
    done
}

fn bytes(n: usize) -> String {
    if n < 1000 {
        format!("{n} B")
    } else {
        format!("{}.{} kB", n / 1000, (n % 1000) / 100)
    }
}

/// `DNS A? name`.
fn dns_query(msg: &Message) -> String {
    match msg.queries.first() {
        Some(q) => format!(
            "DNS {}? {}",
            q.query_type(),
            q.name().to_ascii().trim_end_matches('.')
        ),
        None => "DNS query".to_string(),
    }
}

/// The answer's records, its error code, or that it was truncated.
fn dns_answer(msg: &Message) -> String {
    let code = msg.metadata.response_code;
    if code != ResponseCode::NoError {
        let name = match code {
            ResponseCode::ServFail => "SERVFAIL".to_string(),
            ResponseCode::NXDomain => "NXDOMAIN".to_string(),
            ResponseCode::Refused => "REFUSED".to_string(),
            ResponseCode::FormErr => "FORMERR".to_string(),
            other => other.to_string(),
        };
        return format!("DNS answer: {name}");
    }
    if msg.metadata.truncation {
        return "DNS answer: truncated (TC), retry over TCP".to_string();
    }
    let records: Vec<String> = msg
        .answers
        .iter()
        .map(|r| match &r.data {
            RData::A(a) => format!("A {}", a.0),
            RData::AAAA(a) => format!("AAAA {}", a.0),
            RData::CNAME(c) => format!("CNAME {}", c.0.to_ascii().trim_end_matches('.')),
            other => other.record_type().to_string(),
        })
        .collect();
    if records.is_empty() {
        "DNS answer: no records".to_string()
    } else {
        format!("DNS answer: {}", records.join(", "))
    }
}

/// What the first payload of a burst shows.
pub fn describe(payload: &[u8], udp: bool) -> String {
    let found = if udp {
        dtls(payload)
    } else {
        tls(payload).or_else(|| http(payload))
    };
    found.unwrap_or_else(|| "data".to_string())
}

fn tls(p: &[u8]) -> Option<String> {
    if p.get(1) != Some(&3) {
        return None;
    }
    record("TLS", *p.first()?, p.get(5).copied(), || {
        sni(p.get(9..)?, false)
    })
}

fn dtls(p: &[u8]) -> Option<String> {
    // DTLS 1.3 ciphertext has the unified header: 0b001CSLEE (RFC 9147, section 4).
    if p.first().is_some_and(|b| b & 0xe0 == 0x20) {
        return Some("DTLS encrypted".to_string());
    }
    if p.get(1) != Some(&0xfe) {
        return None;
    }
    record("DTLS", *p.first()?, p.get(13).copied(), || {
        sni(p.get(25..)?, true)
    })
}

/// A (D)TLS record by its content type, and for a handshake its message.
fn record(
    proto: &str,
    content: u8,
    handshake: Option<u8>,
    sni: impl FnOnce() -> Option<String>,
) -> Option<String> {
    Some(match (content, handshake) {
        (22, Some(1)) => match sni() {
            Some(name) => format!("{proto} ClientHello SNI {name}"),
            None => format!("{proto} ClientHello"),
        },
        (22, Some(2)) => format!("{proto} ServerHello"),
        (22, _) => format!("{proto} handshake"),
        (23, _) => format!("{proto} data"),
        (21, _) => format!("{proto} alert"),
        (20, _) => format!("{proto} ChangeCipherSpec"),
        _ => return None,
    })
}

/// The server name of a ClientHello `body` (after the handshake header).
fn sni(body: &[u8], dtls: bool) -> Option<String> {
    crate::pcap::sniff::hello_server_name(body, dtls)
}

/// An HTTP request or status line.
fn http(p: &[u8]) -> Option<String> {
    const STARTS: [&[u8]; 9] = [
        b"GET ",
        b"POST ",
        b"PUT ",
        b"HEAD ",
        b"DELETE ",
        b"OPTIONS ",
        b"PATCH ",
        b"CONNECT ",
        b"HTTP/1.",
    ];
    if !STARTS.iter().any(|s| p.starts_with(s)) {
        return None;
    }
    let end = p
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(p.len())
        .min(120);
    Some(String::from_utf8_lossy(&p[..end]).into_owned())
}
