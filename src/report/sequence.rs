//! The sequence diagram of a run, built from what really happened: the endpoint's traffic
//! as the capture recorder saw it ([`crate::pcap::export::Recorder`]) and the world's
//! timeline, drawn as inline SVG.
//!
//! The traffic is collapsed to one arrow per exchange so that a run stays readable:
//!
//! - a TCP connect: the SYN and its answer (a handshake, a reset, or nothing at all);
//! - a DNS query and its answer, decoded (UDP, or TCP with its length prefix);
//! - a burst of data on a connection or a UDP flow (packets less than [`BURST_GAP`]
//!   apart): one arrow each way, named by what its first payload shows (a TLS or DTLS
//!   ClientHello and its SNI, an HTTP request or status line) with the packet and byte
//!   counts;
//! - a close (FIN) or a reset on an open connection.
//!
//! Everything here is a pure function of its input, ordered by simulated time and then
//! by capture order: the same run draws the same diagram, byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::RData;
use pcap_file::pcap::PcapReader;

use super::html::escape;
use crate::world::registry::{Registry, Role};

/// Packets of one connection or flow closer together than this are one exchange.
pub const BURST_GAP: Duration = Duration::from_millis(1000);

/// At most this many rows are drawn; a note says how many more there were.
pub const MAX_ROWS: usize = 1500;

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

impl Kind {
    fn class(self) -> &'static str {
        match self {
            Kind::Request => "request",
            Kind::Reply => "reply",
            Kind::Failure => "failure",
            Kind::Lost => "lost",
            Kind::Close => "close",
        }
    }

    fn marker(self) -> &'static str {
        match self {
            Kind::Request | Kind::Reply => "arrow",
            Kind::Failure => "arrow-failure",
            Kind::Lost => "cross",
            Kind::Close => "arrow-close",
        }
    }
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

/// One row of the diagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An exchange on the wire.
    Arrow(Arrow),
    /// A line of the world's timeline (a fault, a rule change, an app's connect).
    World {
        /// When.
        at: Duration,
        /// What happened.
        text: String,
    },
}

impl Step {
    fn at(&self) -> Duration {
        match self {
            Step::Arrow(a) => a.at,
            Step::World { at, .. } => *at,
        }
    }
}

/// A column of the diagram: one host that took part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifeline {
    /// Its address.
    pub ip: Ipv4Addr,
    /// What the scenario calls it: `endpoint`, `DoH`, `PoP nyc1`, an origin's name...
    pub name: String,
    /// Its address and role detail, under the name.
    pub detail: String,
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

/// The diagram's rows: `arrows` and the world's `timeline` lines (`+S.mmms text`)
/// merged in time order, a timeline line before the traffic of its millisecond (the
/// driver applies events before it steps the network).
pub fn steps(arrows: Vec<Arrow>, timeline: &[String]) -> Vec<Step> {
    let mut rows: Vec<(Duration, u8, usize, Step)> = Vec::new();
    let mut last = Duration::ZERO;
    for (i, line) in timeline.iter().enumerate() {
        let (at, text) = match parse_stamp(line) {
            Some((at, text)) => (at, text.to_string()),
            None => (last, line.clone()),
        };
        last = at;
        rows.push((at, 0, i, Step::World { at, text }));
    }
    for arrow in arrows {
        rows.push((arrow.at, 1, arrow.seq, Step::Arrow(arrow)));
    }
    rows.sort_by_key(|(at, rank, seq, _)| (*at, *rank, *seq));
    rows.into_iter().map(|(_, _, _, step)| step).collect()
}

/// The columns for `steps`: the endpoint first, then the other hosts that took part by
/// role (DoH, LDNS, GSLB, PoPs, backup, proxy, inspector, portal, origins, addresses
/// the world does not know), then by address.
pub fn lifelines(steps: &[Step], endpoint: Ipv4Addr, hosts: &Registry) -> Vec<Lifeline> {
    let mut seen = BTreeSet::new();
    for step in steps {
        if let Step::Arrow(a) = step {
            seen.insert(a.from);
            seen.insert(a.to);
        }
    }
    seen.remove(&endpoint);
    let mut peers: Vec<(u8, Ipv4Addr, Lifeline)> = seen
        .into_iter()
        .map(|ip| {
            let (rank, line) = lifeline(ip, hosts);
            (rank, ip, line)
        })
        .collect();
    peers.sort_by_key(|(rank, ip, _)| (*rank, *ip));
    let (_, first) = lifeline(endpoint, hosts);
    std::iter::once(first)
        .chain(peers.into_iter().map(|(_, _, l)| l))
        .collect()
}

/// Layout, in pixels.
const LEFT: usize = 64;
const COLUMN: usize = 168;
const HEAD_TOP: usize = 8;
const HEAD_HEIGHT: usize = 38;
const ROWS_TOP: usize = HEAD_TOP + HEAD_HEIGHT + 24;
const ROW: usize = 22;
/// Roughly how wide one character of an 11px label is.
const CHAR_WIDTH: usize = 6;

/// The diagram as an inline `<svg>` element (no namespace URL: it lives in HTML).
pub fn svg(lifelines: &[Lifeline], steps: &[Step]) -> String {
    let column: BTreeMap<Ipv4Addr, usize> = lifelines
        .iter()
        .enumerate()
        .map(|(i, l)| (l.ip, i))
        .collect();
    let drawn = steps.len().min(MAX_ROWS);
    let rows = drawn + usize::from(steps.len() > MAX_ROWS);
    let width = LEFT + lifelines.len().max(1) * COLUMN + 8;
    let height = ROWS_TOP + rows * ROW + 16;
    let x = |i: usize| LEFT + i * COLUMN + COLUMN / 2;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg class=\"sequence\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"sequence diagram\">"
    );
    out.push_str(DEFS);
    for (i, l) in lifelines.iter().enumerate() {
        let cx = x(i);
        let _ = writeln!(
            out,
            "<g class=\"lifeline\"><title>{}</title>\
             <line x1=\"{cx}\" y1=\"{}\" x2=\"{cx}\" y2=\"{}\"/>\
             <rect x=\"{}\" y=\"{HEAD_TOP}\" width=\"{}\" height=\"{HEAD_HEIGHT}\" rx=\"4\"/>\
             <text class=\"name\" x=\"{cx}\" y=\"{}\">{}</text>\
             <text class=\"detail\" x=\"{cx}\" y=\"{}\">{}</text></g>",
            escape(&format!("{} ({})", l.name, l.detail)),
            HEAD_TOP + HEAD_HEIGHT,
            height - 8,
            cx - (COLUMN - 12) / 2,
            COLUMN - 12,
            HEAD_TOP + 16,
            escape(&clip(&l.name, (COLUMN - 16) / 7)),
            HEAD_TOP + 31,
            escape(&clip(&l.detail, (COLUMN - 16) / CHAR_WIDTH)),
        );
    }
    let mut shown: Option<Duration> = None;
    for (row, step) in steps.iter().take(drawn).enumerate() {
        let y = ROWS_TOP + row * ROW;
        let at = step.at();
        if shown != Some(at) {
            let _ = writeln!(
                out,
                "<text class=\"time\" x=\"4\" y=\"{}\">{}</text>",
                y + 4,
                stamp(at)
            );
            shown = Some(at);
        }
        match step {
            Step::World { text, .. } => {
                let _ = writeln!(
                    out,
                    "<g class=\"world\"><title>{} {}</title>\
                     <rect x=\"{LEFT}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"3\"/>\
                     <text x=\"{}\" y=\"{}\">{}</text></g>",
                    stamp(at),
                    escape(text),
                    y - 12,
                    width - LEFT - 8,
                    ROW - 4,
                    LEFT + 8,
                    y + 2,
                    escape(&clip(text, (width - LEFT - 24) / CHAR_WIDTH)),
                );
            }
            Step::Arrow(a) => {
                let (Some(&from), Some(&to)) = (column.get(&a.from), column.get(&a.to)) else {
                    continue;
                };
                let (x1, x2) = (x(from), x(to));
                let (left, span) = (x1.min(x2), x1.abs_diff(x2));
                // Centred over the arrow when it fits; else from the arrow's left end
                // on, over the lifelines to its right.
                let chars = a.label.chars().count();
                let (class, text_x, room) = if chars * CHAR_WIDTH + 8 <= span {
                    ("", left + span / 2, chars)
                } else {
                    let room = width.saturating_sub(left + 12) / CHAR_WIDTH;
                    (" class=\"left\"", left + 6, room)
                };
                let name = |i: usize| {
                    lifelines
                        .get(i)
                        .map(|l| escape(&l.name))
                        .unwrap_or_default()
                };
                let _ = writeln!(
                    out,
                    "<g class=\"arrow {}\"><title>{} {} \u{2192} {}: {}</title>\
                     <line x1=\"{x1}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" marker-end=\"url(#{})\"/>\
                     <text{class} x=\"{text_x}\" y=\"{}\">{}</text></g>",
                    a.kind.class(),
                    stamp(at),
                    name(from),
                    name(to),
                    escape(&a.label),
                    a.kind.marker(),
                    y - 4,
                    escape(&clip(&a.label, room)),
                );
            }
        }
    }
    if steps.len() > MAX_ROWS {
        let y = ROWS_TOP + drawn * ROW;
        let _ = writeln!(
            out,
            "<text class=\"more\" x=\"{LEFT}\" y=\"{y}\">{} more rows not drawn; \
             the capture (--pcap) has them all</text>",
            steps.len() - MAX_ROWS
        );
    }
    out.push_str("</svg>\n");
    out
}

/// Arrowheads: dark, red and grey, and the cross of a packet that got no answer.
const DEFS: &str = "<defs>\
<marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#333\"/></marker>\
<marker id=\"arrow-failure\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#c0392b\"/></marker>\
<marker id=\"arrow-close\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#999\"/></marker>\
<marker id=\"cross\" viewBox=\"0 0 10 10\" refX=\"5\" refY=\"5\" markerWidth=\"9\" markerHeight=\"9\" orient=\"auto\"><path d=\"M1,1 L9,9 M9,1 L1,9\" stroke=\"#c0392b\" stroke-width=\"2\"/></marker>\
</defs>\n";

/// `+S.mmms`, the timeline's stamp.
pub fn stamp(at: Duration) -> String {
    format!("+{}.{:03}s", at.as_secs(), at.subsec_millis())
}

/// A timeline line's time and text.
fn parse_stamp(line: &str) -> Option<(Duration, &str)> {
    let rest = line.strip_prefix('+')?;
    let (time, text) = match rest.split_once("s ") {
        Some(split) => split,
        None => (rest.strip_suffix('s')?, ""),
    };
    let (secs, millis) = time.split_once('.')?;
    let secs: u64 = secs.parse().ok()?;
    let millis: u64 = millis.parse().ok()?;
    if millis >= 1000 {
        return None;
    }
    Some((Duration::from_millis(secs * 1000 + millis), text))
}

/// `text` cut to `max` characters, with an ellipsis when cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('\u{2026}');
    out
}

/// The column of the host at `ip`, and where it sorts.
fn lifeline(ip: Ipv4Addr, hosts: &Registry) -> (u8, Lifeline) {
    let Some(host) = hosts.at(ip) else {
        let name = ip.to_string();
        let detail = "not in the world".to_string();
        return (u8::MAX, Lifeline { ip, name, detail });
    };
    let (name, detail) = match &host.role {
        Role::Pop(name) => (format!("PoP {name}"), ip.to_string()),
        Role::Origin(name) => (name.clone(), format!("origin {ip}")),
        Role::Doh => {
            let server = host.dns_names.first().map(String::as_str).unwrap_or("");
            ("DoH".to_string(), format!("{server} {ip}"))
        }
        // The scenario's own word for the others (`ldns`, `backup`, `proxy`...).
        _ => (display_label(&host.label), ip.to_string()),
    };
    (rank(&host.role), Lifeline { ip, name, detail })
}

/// Where a host's column sorts: the endpoint, the agent's resolution chain, gateways,
/// the site's middleboxes, origins.
fn rank(role: &Role) -> u8 {
    let order = [
        matches!(role, Role::Endpoint),
        matches!(role, Role::Doh),
        matches!(role, Role::Ldns),
        matches!(role, Role::Gslb),
        matches!(role, Role::Pop(_)),
        matches!(role, Role::Backup),
        matches!(role, Role::Proxy),
        matches!(role, Role::Inspector),
        matches!(role, Role::Portal),
    ];
    let last = u8::try_from(order.len()).unwrap_or(u8::MAX);
    match order.iter().position(|hit| *hit) {
        Some(i) => u8::try_from(i).unwrap_or(last),
        None if matches!(role, Role::Origin(_)) => last + 1,
        None => last,
    }
}

/// How a scenario's host label reads as a column title.
fn display_label(label: &str) -> String {
    match label {
        "ldns" => "LDNS",
        "gslb" => "GSLB",
        "inspector" => "inspection proxy",
        "portal" => "captive portal",
        "pac" => "PAC server",
        other => other,
    }
    .to_string()
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
    let mut c = Cursor(body);
    c.skip(2 + 32)?; // version, random
    let session = c.u8()?;
    c.skip(usize::from(session))?;
    if dtls {
        let cookie = c.u8()?;
        c.skip(usize::from(cookie))?;
    }
    let suites = c.u16()?;
    c.skip(usize::from(suites))?;
    let compression = c.u8()?;
    c.skip(usize::from(compression))?;
    let total = usize::from(c.u16()?);
    let mut ext = Cursor(c.take(total)?);
    while let (Some(kind), Some(len)) = (ext.u16(), ext.u16()) {
        let data = ext.take(usize::from(len))?;
        if kind != 0 {
            continue;
        }
        // server_name_list: length, then (type 0: host_name, length, name).
        let mut list = Cursor(data);
        list.skip(2)?;
        if list.u8()? != 0 {
            return None;
        }
        let n = list.u16()?;
        let name = list.take(usize::from(n))?;
        return std::str::from_utf8(name).ok().map(str::to_string);
    }
    None
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
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
