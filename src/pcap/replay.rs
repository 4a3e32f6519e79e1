//! Replaying a capture through the agent's steering logic: the same domain map and
//! verdict code the simulated agent runs (`agent::core::steer`), fed with the capture's
//! DNS answers and flows in order, streaming (memory does not grow with the packets).
//!
//! - DNS answers over UDP, and over TCP (reassembled, length-prefixed), teach the map.
//! - A TCP flow starts at the endpoint's SYN. Its client stream is reassembled
//!   ([`super::tcp`]) until its first words are read ([`super::sniff`]): a TLS
//!   ClientHello's SNI, an HTTP request's Host, an HTTP CONNECT's `host:port`. It is then
//!   decided as the agent's `handle_app_flow` would: a CONNECT by its host alone, a TLS
//!   flow by its SNI when the scenario's `sni_check` is on, any other by the names the
//!   domain map held for its address at the SYN.
//! - A UDP flow is the first datagram of a 5-tuple from the endpoint (again after
//!   [`UDP_IDLE`] of silence), not to port 53, not multicast or broadcast; the agent
//!   steers UDP only in mode all (`Steering::decide_proto`).
//! - Flow state is bounded: a flow's reading ends once decided; flows leave the table at
//!   FIN or RST, after [`TCP_IDLE`] of silence, or oldest first past [`MAX_FLOWS`].
//!
//! The tunnel counts as up from the first packet the endpoint sends to a gateway on
//! port 443 (TCP: TLS, UDP: DTLS). Gateways are the scenario's PoPs and backup, the
//! vendor's published ranges, and any address a `gateway-*` name resolved to.
//! Processes are not in a capture: flows show process `unknown`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use agent::core::steer::{DnsMap, FlowInfo, FlowProto, NetSet, Steering, parse_net};
use hickory_proto::op::Message;
use serde::Serialize;

use super::control::{Control, ControlKind, Side, UdpControl};
use super::decode::{Decoded, Proto, Segment, decode};
use super::read::{CaptureError, CaptureReader, Skipped};
use super::sniff::{MAX_PREFIX, Sniffed, needed, sniff};
use super::tcp::Stream;
use super::warn::Warnings;
use crate::scenario::Scenario;

/// The vendor's published gateway ranges (domain.md).
pub const GATEWAY_RANGES: [&str; 6] = [
    "163.116.128.0/17",
    "8.36.116.0/24",
    "8.39.144.0/24",
    "31.186.239.0/24",
    "74.217.93.0/24",
    "103.219.79.0/24",
];

/// Public DoH resolvers the client uses.
const DOH_SERVERS: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)),
    IpAddr::V4(Ipv4Addr::new(8, 8, 4, 4)),
];

/// A TCP flow silent this long leaves the table (an undecided one is decided first).
pub const TCP_IDLE: Duration = Duration::from_secs(120);
/// A UDP 5-tuple silent this long is a new flow when it speaks again.
pub const UDP_IDLE: Duration = Duration::from_secs(60);
/// Flows tracked at most, TCP and UDP each; past it the least recently active leave.
pub const MAX_FLOWS: usize = 65_536;
/// How often (capture time) idle flows are swept out.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// One app flow of the capture and its verdict.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReplayFlow {
    /// Packet number of the SYN (TCP) or first datagram (UDP).
    pub packet: usize,
    /// Milliseconds since the capture's first packet.
    pub time_ms: u64,
    /// `tcp` or `udp`.
    pub proto: &'static str,
    /// Always `unknown`: captures carry no process names.
    pub process: String,
    /// The name the decision used (the address when no name was known).
    pub host: String,
    /// `ip:port`.
    pub addr: String,
    /// The verdict word.
    pub verdict: String,
    /// Why.
    pub reason: String,
    /// The server name of the flow's TLS ClientHello (inside the tunnel for a CONNECT).
    pub sni: Option<String>,
    /// The Host of the flow's HTTP request.
    pub http_host: Option<String>,
    /// The `host:port` of the flow's HTTP CONNECT.
    pub connect: Option<String>,
}

/// What the capture showed.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    /// The file.
    pub capture: String,
    /// TCP/UDP packets decoded.
    pub packets: usize,
    /// Frames skipped: not TCP/UDP over IP.
    pub skipped_other: usize,
    /// Frames skipped: undecodable, IP fragments, unknown link types.
    pub skipped_undecodable: usize,
    /// The endpoint's address (from the scenario, else the most frequent SYN source).
    pub client: Option<String>,
    /// Every app flow, in packet order.
    pub flows: Vec<ReplayFlow>,
    /// The agent's own traffic, one line per observation.
    pub control: Vec<String>,
    /// Names the capture's DNS answers resolved, with their first address.
    pub names: BTreeMap<String, IpAddr>,
    /// DNS answers read (UDP and TCP).
    pub dns_answers: usize,
    /// What was wrong with the capture, each line naming a packet.
    pub warnings: Vec<String>,
    /// Gateway addresses the endpoint tunneled to.
    #[serde(skip)]
    pub gateways: Vec<SocketAddr>,
}

/// Replays `path` under `scenario`'s steering configuration (the defaults without one).
/// The file is read twice: once to find the endpoint, once to replay.
pub fn replay(
    path: &Path,
    scenario: Option<&Scenario>,
    steering: Steering,
) -> Result<ReplayReport, CaptureError> {
    let client = pick_client(path, scenario)?;
    let mut reader = CaptureReader::open(path)?;
    let mut replayer = Replayer::new(path.display().to_string(), client, scenario, steering);
    loop {
        match reader.next_frame() {
            Ok(Some(frame)) => replayer.frame(
                frame.number,
                frame.time,
                frame.link,
                frame.data,
                frame.original_len,
            ),
            Ok(None) => break,
            Err(damage) => {
                replayer.warnings.damage(damage.to_string());
                break;
            }
        }
    }
    Ok(replayer.finish())
}

/// The scenario's client when the capture has SYNs from it, else the most frequent SYN
/// source (ties: the lowest address).
fn pick_client(path: &Path, scenario: Option<&Scenario>) -> Result<Option<IpAddr>, CaptureError> {
    let mut reader = CaptureReader::open(path)?;
    let mut counts: BTreeMap<IpAddr, usize> = BTreeMap::new();
    while let Ok(Some(frame)) = reader.next_frame() {
        if let Decoded::Segment(Segment {
            src,
            proto: Proto::Tcp { flags, .. },
            ..
        }) = decode(frame.link, frame.data)
            && flags.syn()
            && !flags.ack()
        {
            *counts.entry(src.ip()).or_default() += 1;
        }
    }
    if let Some(ip) = scenario
        .map(|s| IpAddr::V4(s.client.ip))
        .filter(|ip| counts.contains_key(ip))
    {
        return Ok(Some(ip));
    }
    Ok(counts
        .into_iter()
        .max_by_key(|(ip, n)| (*n, std::cmp::Reverse(*ip)))
        .map(|(ip, _)| ip))
}

/// The replay's state: feed it frames in file order with [`Replayer::frame`] (or decoded
/// segments with [`Replayer::segment`]), then [`Replayer::finish`].
pub struct Replayer {
    ctx: Ctx,
    tcp: BTreeMap<(SocketAddr, SocketAddr), TcpFlow>,
    udp: BTreeMap<(SocketAddr, SocketAddr), Duration>,
    /// The agent's own UDP exchanges (DTLS to gateways), by (client, server).
    udp_control: BTreeMap<(SocketAddr, SocketAddr), UdpControl>,
    skipped: Skipped,
    /// Warnings so far.
    pub warnings: Warnings,
    last_sweep: Duration,
}

/// What every flow's handling shares.
struct Ctx {
    steering: Steering,
    client: Option<IpAddr>,
    gateways: NetSet,
    map: DnsMap,
    epoch: Instant,
    start: Option<Duration>,
    /// The current packet's time since the start.
    at: Duration,
    number: usize,
    tunnel_up: bool,
    /// The scenario's backup gateway.
    backup: Option<IpAddr>,
    /// Control lines with the packet they start at, sorted at the end.
    control: Vec<(usize, String)>,
    report: ReplayReport,
}

struct TcpFlow {
    kind: Kind,
    /// Client to server.
    up: Stream,
    /// Server to client.
    down: Stream,
    isn: u32,
    last: Duration,
    fin_up: bool,
    fin_down: bool,
}

enum Kind {
    App(Box<AppFlow>),
    Control(Box<Control>),
    Dns {
        up: Vec<u8>,
        down: Vec<u8>,
        server: SocketAddr,
    },
}

struct AppFlow {
    packet: usize,
    at: Duration,
    dst: SocketAddr,
    /// The domain map's names for `dst` at the SYN.
    names: Vec<String>,
    tunnel_at_syn: bool,
    prefix: Vec<u8>,
    /// Do not read the prefix again before it is this long (see [`super::sniff::needed`]).
    next_read: usize,
    state: AppState,
    sni: Option<String>,
    http_host: Option<String>,
    connect: Option<(String, u16)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AppState {
    /// Reading the client's first words.
    Sniffing,
    /// Decided (record `record`) after a CONNECT; reading the ClientHello in the tunnel,
    /// which starts at `skip` in the prefix.
    InConnect { record: usize, skip: usize },
    /// Decided; nothing more to read.
    Done,
}

impl Replayer {
    /// A replay of the capture named `capture`, with the endpoint at `client`.
    pub fn new(
        capture: String,
        client: Option<IpAddr>,
        scenario: Option<&Scenario>,
        steering: Steering,
    ) -> Replayer {
        let mut gateways = NetSet::default();
        for range in GATEWAY_RANGES {
            if let Some((net, len)) = parse_net(range) {
                gateways.insert(net, len);
            }
        }
        if let Some(s) = scenario {
            for pop in &s.pops {
                gateways.insert(IpAddr::V4(pop.ip), 32);
            }
            if let Some(ip) = s.backup.ip {
                gateways.insert(IpAddr::V4(ip), 32);
            }
        }
        Replayer {
            ctx: Ctx {
                steering,
                client,
                gateways,
                map: DnsMap::default(),
                epoch: <Instant as NowOrEpoch>::now_or_epoch(),
                start: None,
                at: Duration::ZERO,
                number: 0,
                tunnel_up: false,
                backup: scenario.and_then(|s| s.backup.ip).map(IpAddr::V4),
                control: Vec::new(),
                report: ReplayReport {
                    capture,
                    packets: 0,
                    skipped_other: 0,
                    skipped_undecodable: 0,
                    client: client.map(|c| c.to_string()),
                    flows: Vec::new(),
                    control: Vec::new(),
                    names: BTreeMap::new(),
                    dns_answers: 0,
                    warnings: Vec::new(),
                    gateways: Vec::new(),
                },
            },
            tcp: BTreeMap::new(),
            udp: BTreeMap::new(),
            udp_control: BTreeMap::new(),
            skipped: Skipped::default(),
            warnings: Warnings::default(),
            last_sweep: Duration::ZERO,
        }
    }

    /// One captured frame.
    pub fn frame(
        &mut self,
        number: usize,
        time: Duration,
        link: u32,
        data: &[u8],
        original_len: u32,
    ) {
        match decode(link, data) {
            Decoded::Segment(segment) => {
                if segment.cut || (data.len() as u64) < u64::from(original_len) {
                    let (got, len) = (data.len(), original_len);
                    self.warnings.add("snaplen", number, || {
                        format!(
                            "cut by the capture's snaplen ({got} of {len} bytes captured): its payload is read as far as it goes"
                        )
                    });
                }
                self.segment(number, time, &segment);
            }
            other => self.skipped.count(&other, number, &mut self.warnings),
        }
    }

    /// One TCP or UDP segment, packet `number` of the capture, captured at `time`.
    pub fn segment(&mut self, number: usize, time: Duration, p: &Segment<'_>) {
        let ctx = &mut self.ctx;
        let start = *ctx.start.get_or_insert(time);
        ctx.at = time.saturating_sub(start);
        ctx.number = number;
        ctx.report.packets += 1;
        if ctx.at.saturating_sub(self.last_sweep) >= SWEEP_EVERY
            || self.tcp.len() > MAX_FLOWS
            || self.udp.len() > MAX_FLOWS
        {
            self.sweep();
        }
        let ctx = &mut self.ctx;
        match p.proto {
            Proto::Udp => {
                if p.src.port() == 53 {
                    ctx.dns_answer(p.payload);
                    return;
                }
                if p.dst.port() == 53 {
                    ctx.dns_query(p.payload, p.dst);
                    return;
                }
                if let Some(c) = self.udp_control.get_mut(&(p.dst, p.src)) {
                    c.datagram(false);
                    return;
                }
                if !ctx.is_client(p.src.ip()) {
                    return;
                }
                if let Some(kind) = ctx.control(p) {
                    let (number, at) = (ctx.number, ctx.at);
                    let label = match kind {
                        ControlKind::Doh => format!("DNS over HTTPS (HTTP/3) to {}", p.dst),
                        ControlKind::Gateway { backup } => format!(
                            "tunnel DTLS to gateway {}{}",
                            p.dst,
                            if backup { " (the backup)" } else { "" }
                        ),
                    };
                    self.udp_control
                        .entry((p.src, p.dst))
                        .or_insert_with(|| UdpControl::new(label, number, at))
                        .datagram(true);
                    return;
                }
                if !is_unicast(p.dst.ip()) {
                    return;
                }
                let key = (p.src, p.dst);
                let at = ctx.at;
                let fresh = self
                    .udp
                    .insert(key, at)
                    .is_none_or(|last| at.saturating_sub(last) >= UDP_IDLE);
                if fresh {
                    let names = ctx.names(p.dst.ip());
                    let tunnel = ctx.tunnel_up;
                    ctx.record(
                        number,
                        at,
                        FlowProto::Udp,
                        p.dst,
                        names,
                        tunnel,
                        None,
                        None,
                        None,
                    );
                }
            }
            Proto::Tcp { seq, flags } => {
                let key_up = (p.src, p.dst);
                let key_down = (p.dst, p.src);
                if flags.syn() && !flags.ack() {
                    if let Some(flow) = self.tcp.get(&key_up) {
                        if flow.isn == seq {
                            return; // a retransmitted SYN
                        }
                        // The port pair reused for a new connection.
                        if let Some(old) = self.tcp.remove(&key_up) {
                            ctx.close(old);
                        }
                    }
                    let control = match ctx.is_client(p.src.ip()) {
                        true => ctx.control(p),
                        false => None,
                    };
                    let kind = if let Some(kind) = control {
                        Kind::Control(Box::new(Control::new(
                            kind,
                            number,
                            ctx.at,
                            p.dst.to_string(),
                            true,
                        )))
                    } else if p.dst.port() == 53 {
                        Kind::Dns {
                            up: Vec::new(),
                            down: Vec::new(),
                            server: p.dst,
                        }
                    } else if ctx.is_client(p.src.ip()) {
                        Kind::App(Box::new(AppFlow {
                            packet: number,
                            at: ctx.at,
                            dst: p.dst,
                            names: ctx.names(p.dst.ip()),
                            tunnel_at_syn: ctx.tunnel_up,
                            prefix: Vec::new(),
                            next_read: 0,
                            state: AppState::Sniffing,
                            sni: None,
                            http_host: None,
                            connect: None,
                        }))
                    } else {
                        return;
                    };
                    let mut flow = TcpFlow {
                        kind,
                        up: Stream::default(),
                        down: Stream::default(),
                        isn: seq,
                        last: ctx.at,
                        fin_up: false,
                        fin_down: false,
                    };
                    flow.up.syn(seq);
                    // Data on a SYN (TCP Fast Open) is the stream's first bytes.
                    flow.data(ctx, true, seq.wrapping_add(1), p.payload);
                    self.tcp.insert(key_up, flow);
                    return;
                }
                let (key, up) = if self.tcp.contains_key(&key_up) {
                    (key_up, true)
                } else if self.tcp.contains_key(&key_down) {
                    (key_down, false)
                } else if let Some(kind) =
                    ctx.is_client(p.src.ip()).then(|| ctx.control(p)).flatten()
                {
                    // The agent's connection, open before the capture started.
                    self.tcp.insert(
                        key_up,
                        TcpFlow {
                            kind: Kind::Control(Box::new(Control::new(
                                kind,
                                number,
                                ctx.at,
                                p.dst.to_string(),
                                false,
                            ))),
                            up: Stream::default(),
                            down: Stream::default(),
                            isn: 0,
                            last: ctx.at,
                            fin_up: false,
                            fin_down: false,
                        },
                    );
                    (key_up, true)
                } else if !p.payload.is_empty() && (p.src.port() == 53 || p.dst.port() == 53) {
                    // DNS over TCP whose SYN the capture missed: read from here.
                    let key = if p.dst.port() == 53 { key_up } else { key_down };
                    self.tcp.insert(
                        key,
                        TcpFlow {
                            kind: Kind::Dns {
                                up: Vec::new(),
                                down: Vec::new(),
                                server: if p.dst.port() == 53 { p.dst } else { p.src },
                            },
                            up: Stream::default(),
                            down: Stream::default(),
                            isn: 0,
                            last: ctx.at,
                            fin_up: false,
                            fin_down: false,
                        },
                    );
                    (key, key == key_up)
                } else {
                    return;
                };
                let Some(flow) = self.tcp.get_mut(&key) else {
                    return;
                };
                flow.last = ctx.at;
                if flags.rst() {
                    if let Some(mut flow) = self.tcp.remove(&key) {
                        if let Kind::Control(c) = &mut flow.kind {
                            c.reset(if up { Side::Client } else { Side::Server });
                        }
                        ctx.close(flow);
                    }
                    return;
                }
                if flags.syn() && !up {
                    flow.down.syn(seq);
                    if let Kind::Control(c) = &mut flow.kind {
                        c.syn_ack();
                    }
                }
                let data_seq = if flags.syn() {
                    seq.wrapping_add(1)
                } else {
                    seq
                };
                flow.data(ctx, up, data_seq, p.payload);
                if flags.fin() {
                    if up {
                        flow.fin_up = true;
                    } else {
                        flow.fin_down = true;
                    }
                    // The flow is over for reading: decide it with what it said.
                    flow.settle(ctx);
                    if flow.fin_up
                        && flow.fin_down
                        && let Some(flow) = self.tcp.remove(&key)
                    {
                        ctx.close(flow);
                    }
                }
            }
        }
    }

    /// Decides what is still open and returns the report, flows in packet order.
    pub fn finish(mut self) -> ReplayReport {
        let flows = std::mem::take(&mut self.tcp);
        for (_, flow) in flows {
            self.ctx.close(flow);
        }
        for c in self.udp_control.values() {
            self.ctx.control.push((c.packet, c.line()));
        }
        let mut control = std::mem::take(&mut self.ctx.control);
        control.sort_by_key(|(packet, _)| *packet);
        let mut report = self.ctx.report;
        report.control = control.into_iter().map(|(_, line)| line).collect();
        report.flows.sort_by_key(|f| f.packet);
        report.skipped_other = self.skipped.other;
        report.skipped_undecodable = self.skipped.undecodable;
        report.warnings = self.warnings.lines();
        if report.gateways.is_empty() {
            report
                .control
                .push("no tunnel traffic to a gateway in the capture".to_string());
        }
        report
    }

    /// Idle flows out, and the oldest past the cap; expired DNS entries out.
    fn sweep(&mut self) {
        let at = self.ctx.at;
        self.last_sweep = at;
        let now = self.ctx.now();
        self.ctx.map.expire(now);
        let idle: Vec<_> = self
            .tcp
            .iter()
            .filter(|(_, f)| at.saturating_sub(f.last) >= TCP_IDLE)
            .map(|(k, _)| *k)
            .collect();
        for key in idle {
            if let Some(flow) = self.tcp.remove(&key) {
                self.ctx.close(flow);
            }
        }
        if self.tcp.len() > MAX_FLOWS {
            let mut by_age: Vec<_> = self.tcp.iter().map(|(k, f)| (f.last, *k)).collect();
            by_age.sort();
            let excess = self.tcp.len() - MAX_FLOWS * 3 / 4;
            for (_, key) in by_age.into_iter().take(excess) {
                if let Some(flow) = self.tcp.remove(&key) {
                    self.ctx.close(flow);
                }
            }
        }
        self.udp
            .retain(|_, last| at.saturating_sub(*last) < UDP_IDLE);
        if self.udp.len() > MAX_FLOWS {
            let mut by_age: Vec<_> = self.udp.iter().map(|(k, t)| (*t, *k)).collect();
            by_age.sort();
            let excess = self.udp.len() - MAX_FLOWS * 3 / 4;
            for (_, key) in by_age.into_iter().take(excess) {
                self.udp.remove(&key);
            }
        }
    }
}

impl TcpFlow {
    /// Payload at `seq`, client to server when `up`.
    fn data(&mut self, ctx: &mut Ctx, up: bool, seq: u32, payload: &[u8]) {
        if payload.is_empty() {
            return;
        }
        match &mut self.kind {
            Kind::Dns {
                up: up_buf,
                down,
                server,
            } => {
                let server = *server;
                let (stream, buf) = if up {
                    (&mut self.up, up_buf)
                } else {
                    (&mut self.down, down)
                };
                stream.segment(seq, payload, &mut |bytes: &[u8]| {
                    buf.extend_from_slice(bytes);
                    let mut at = 0;
                    while let Some(len) = buf
                        .get(at..at + 2)
                        .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
                    {
                        let Some(message) = buf.get(at + 2..at + 2 + len) else {
                            break;
                        };
                        if up {
                            ctx.dns_query(message, server);
                        } else {
                            ctx.dns_answer(message);
                        }
                        at += 2 + len;
                    }
                    buf.drain(..at);
                    true
                });
            }
            Kind::Control(c) => {
                let (stream, side) = if up {
                    (&mut self.up, Side::Client)
                } else {
                    (&mut self.down, Side::Server)
                };
                stream.segment(seq, payload, &mut |bytes: &[u8]| {
                    c.bytes(side, bytes);
                    !c.settled()
                });
            }
            Kind::App(app) => {
                if !up {
                    // The server spoke first: the client's first words are not a
                    // ClientHello or a request.
                    if app.state == AppState::Sniffing && self.up.delivered() == 0 {
                        app.settle(ctx);
                    }
                    return;
                }
                self.up.segment(seq, payload, &mut |bytes: &[u8]| {
                    let room = MAX_PREFIX.saturating_sub(app.prefix.len());
                    app.prefix
                        .extend_from_slice(&bytes[..bytes.len().min(room)]);
                    app.read(ctx, app.prefix.len() >= MAX_PREFIX)
                });
            }
        }
    }

    /// Decides the flow if it is not yet.
    fn settle(&mut self, ctx: &mut Ctx) {
        if let Kind::App(app) = &mut self.kind {
            app.settle(ctx);
        }
        self.up.close();
    }
}

impl AppFlow {
    /// Reads the prefix so far; `false` once there is nothing more to learn.
    fn read(&mut self, ctx: &mut Ctx, complete: bool) -> bool {
        if !complete && self.prefix.len() < self.next_read {
            return self.state != AppState::Done;
        }
        match self.state {
            AppState::Done => false,
            AppState::Sniffing => match sniff(&self.prefix, complete) {
                Sniffed::NeedMore => {
                    self.next_read = needed(&self.prefix);
                    true
                }
                Sniffed::ClientHello { sni } => {
                    self.sni = sni;
                    self.decide(ctx);
                    false
                }
                Sniffed::Http(req) => {
                    self.http_host = req.host;
                    self.connect = req.connect;
                    let record = self.decide(ctx);
                    if self.connect.is_some() {
                        self.state = AppState::InConnect {
                            record,
                            skip: req.head_len,
                        };
                        return self.read(ctx, complete);
                    }
                    false
                }
                Sniffed::Unknown => {
                    self.decide(ctx);
                    false
                }
            },
            AppState::InConnect { record, skip } => {
                let inner = self.prefix.get(skip..).unwrap_or_default();
                match sniff(inner, complete) {
                    Sniffed::NeedMore => {
                        self.next_read = skip + needed(inner);
                        true
                    }
                    Sniffed::ClientHello { sni } => {
                        if let Some(flow) = ctx.report.flows.get_mut(record) {
                            flow.sni = sni;
                        }
                        self.state = AppState::Done;
                        false
                    }
                    Sniffed::Http(_) | Sniffed::Unknown => {
                        self.state = AppState::Done;
                        false
                    }
                }
            }
        }
    }

    /// No more bytes will come: decide with what was read.
    fn settle(&mut self, ctx: &mut Ctx) {
        if self.state != AppState::Done {
            self.read(ctx, true);
        }
        self.state = AppState::Done;
        self.prefix = Vec::new();
    }

    /// The agent's verdict (`handle_app_flow`); returns the record's index.
    fn decide(&mut self, ctx: &mut Ctx) -> usize {
        self.state = AppState::Done;
        let (names, judged, tunnel) = match (&self.connect, &self.sni) {
            (Some((host, port)), _) => (
                vec![host.clone()],
                SocketAddr::from((Ipv4Addr::UNSPECIFIED, *port)),
                ctx.tunnel_up,
            ),
            (None, Some(sni)) if ctx.steering.sni_check => {
                (vec![sni.clone()], self.dst, ctx.tunnel_up)
            }
            _ => (self.names.clone(), self.dst, self.tunnel_at_syn),
        };
        let connect = self.connect.as_ref().map(|(h, p)| match h.contains(':') {
            true => format!("[{h}]:{p}"),
            false => format!("{h}:{p}"),
        });
        ctx.record_decided(
            self.packet,
            self.at,
            FlowProto::Tcp,
            self.dst,
            FlowInfo {
                process: "unknown".into(),
                names,
                dst: judged,
            },
            tunnel,
            self.sni.clone(),
            self.http_host.clone(),
            connect,
        )
    }
}

impl Ctx {
    fn now(&self) -> Instant {
        self.epoch + self.at
    }

    fn stamp(&self) -> String {
        format!("+{}.{:03}s", self.at.as_secs(), self.at.subsec_millis())
    }

    fn is_client(&self, ip: IpAddr) -> bool {
        self.client.is_none_or(|c| c == ip)
    }

    fn names(&self, ip: IpAddr) -> Vec<String> {
        self.map
            .names(ip, self.now())
            .into_iter()
            .map(String::from)
            .collect()
    }

    /// Whether a packet from the endpoint is the agent's own (the tunnel to a gateway,
    /// DoH); the tunnel counts as up from the first packet to a gateway.
    fn control(&mut self, p: &Segment<'_>) -> Option<ControlKind> {
        if p.dst.port() != 443 {
            return None;
        }
        if self.gateways.find(p.dst.ip()).is_some() {
            if !self.report.gateways.contains(&p.dst) {
                self.report.gateways.push(p.dst);
            }
            self.tunnel_up = true;
            return Some(ControlKind::Gateway {
                backup: self.backup == Some(p.dst.ip()),
            });
        }
        DOH_SERVERS
            .contains(&p.dst.ip())
            .then_some(ControlKind::Doh)
    }

    /// A DNS answer (wire format) teaches the domain map.
    fn dns_answer(&mut self, body: &[u8]) {
        if body.is_empty() {
            return;
        }
        let now = self.now();
        if self.map.learn(body, now).is_err() {
            return;
        }
        let Ok(msg) = Message::from_vec(body) else {
            return;
        };
        self.report.dns_answers += 1;
        let Some(q) = msg.queries.first() else { return };
        let name = q
            .name()
            .to_ascii()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        for record in &msg.answers {
            let ip = match &record.data {
                hickory_proto::rr::RData::A(a) => IpAddr::V4(a.0),
                hickory_proto::rr::RData::AAAA(a) => IpAddr::V6(a.0),
                _ => continue,
            };
            if name.starts_with("gateway-") && name.contains("goskope.com") {
                self.gateways
                    .insert(ip, if ip.is_ipv4() { 32 } else { 128 });
                let line = format!(
                    "{} local DNS answer: {name} is {ip} (packet {})",
                    self.stamp(),
                    self.number
                );
                self.control.push((self.number, line));
            }
            if !self.report.names.contains_key(&name) {
                self.report.names.insert(name.clone(), ip);
            }
        }
    }

    /// A DNS query over UDP to `dst`: the agent's own for a gateway name is noted.
    fn dns_query(&mut self, body: &[u8], dst: SocketAddr) {
        // Most queries are the apps': skip the parse unless the vendor's domain is there.
        if !body.windows(7).any(|w| w.eq_ignore_ascii_case(b"goskope")) {
            return;
        }
        let Ok(msg) = Message::from_vec(body) else {
            return;
        };
        for q in &msg.queries {
            let name = q.name().to_ascii();
            if name.starts_with("gateway") && name.contains("goskope.com") {
                let line = format!(
                    "{} local DNS query for {} to {} (packet {})",
                    self.stamp(),
                    name.trim_end_matches('.'),
                    dst,
                    self.number
                );
                self.control.push((self.number, line));
            }
        }
    }

    /// A flow leaves the table: decided first if it was not.
    fn close(&mut self, mut flow: TcpFlow) {
        flow.settle(self);
        if let Kind::Control(c) = &flow.kind {
            self.control.push((c.packet, c.line()));
        }
    }

    #[allow(clippy::too_many_arguments, reason = "one record's fields")]
    fn record(
        &mut self,
        packet: usize,
        at: Duration,
        proto: FlowProto,
        dst: SocketAddr,
        names: Vec<String>,
        tunnel: bool,
        sni: Option<String>,
        http_host: Option<String>,
        connect: Option<String>,
    ) -> usize {
        let info = FlowInfo {
            process: "unknown".into(),
            names,
            dst,
        };
        self.record_decided(
            packet, at, proto, dst, info, tunnel, sni, http_host, connect,
        )
    }

    #[allow(clippy::too_many_arguments, reason = "one record's fields")]
    fn record_decided(
        &mut self,
        packet: usize,
        at: Duration,
        proto: FlowProto,
        dst: SocketAddr,
        info: FlowInfo,
        tunnel: bool,
        sni: Option<String>,
        http_host: Option<String>,
        connect: Option<String>,
    ) -> usize {
        let d = self
            .steering
            .decide_proto(self.steering.mode, &info, proto, tunnel);
        self.report.flows.push(ReplayFlow {
            packet,
            time_ms: at.as_millis() as u64,
            proto: match proto {
                FlowProto::Tcp => "tcp",
                FlowProto::Udp => "udp",
            },
            process: "unknown".into(),
            host: d.host,
            addr: dst.to_string(),
            verdict: d.verdict.as_str().to_string(),
            reason: d.reason.to_string(),
            sni,
            http_host,
            connect,
        });
        self.report.flows.len() - 1
    }
}

/// Not multicast, broadcast or unspecified: a flow the agent could steer.
fn is_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_multicast() || v4.is_broadcast() || v4.is_unspecified()),
        IpAddr::V6(v6) => !(v6.is_multicast() || v6.is_unspecified()),
    }
}

/// A monotonic origin for the domain map's TTLs: only differences matter.
trait NowOrEpoch {
    fn now_or_epoch() -> Self;
}

impl NowOrEpoch for Instant {
    #[allow(
        clippy::disallowed_methods,
        reason = "an arbitrary base instant; only offsets from it are used"
    )]
    fn now_or_epoch() -> Self {
        Instant::now()
    }
}

#[cfg(test)]
mod tests;
