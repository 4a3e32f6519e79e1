//! A synthetic endpoint capture of any size, the same for the same seed: DNS lookups
//! answered over UDP, then TLS flows (ClientHello split over two segments, sometimes out
//! of order), plain HTTP requests and UDP (QUIC-like) exchanges, each a full TCP story.
//! The replay benchmark (`benches/replay.rs`) and `steerlab replay --write-synthetic`
//! (for `scripts/bench-replay-vs-tshark.sh`) write it. Ethernet, IPv4, checksums
//! computed by etherparse, microsecond pcap.

use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::time::Duration;

use etherparse::PacketBuilder;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// The endpoint of the synthetic capture.
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 1, 2, 3);
/// Its resolver.
pub const RESOLVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 53);
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0x5e, 0, 0, 0x01];
const ROUTER_MAC: [u8; 6] = [0x02, 0, 0x5e, 0, 0, 0xfe];
/// Distinct names looked up.
const NAMES: usize = 512;
/// The capture's first timestamp (2019-10-14, as the simulated runs).
const START: Duration = Duration::from_secs(1_571_053_240);

/// Writes a pcap of exactly `packets` packets to `out`.
pub fn write_synthetic(out: impl Write, packets: usize, seed: u64) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 20, out);
    // pcap header: microseconds, Ethernet.
    out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
    out.write_all(&2u16.to_le_bytes())?;
    out.write_all(&4u16.to_le_bytes())?;
    out.write_all(&[0; 8])?;
    out.write_all(&65_535u32.to_le_bytes())?;
    out.write_all(&1u32.to_le_bytes())?;
    let mut g = Gen {
        rng: fastrand::Rng::with_seed(seed),
        written: 0,
        limit: packets,
        time: START,
        frame: Vec::with_capacity(2048),
        answers: (0..NAMES)
            .map(|i| dns_answer(i as u16, &name(i), ip(i)))
            .collect(),
        queries: (0..NAMES).map(|i| dns_query(i as u16, &name(i))).collect(),
        hellos: (0..NAMES).map(|i| client_hello(&name(i))).collect(),
        port: 40_000,
    };
    while g.written < g.limit {
        let i = g.rng.usize(..NAMES);
        match g.rng.u8(..10) {
            0..=4 => g.tls(&mut out, i)?,
            5..=7 => g.http(&mut out, i)?,
            _ => g.udp(&mut out, i)?,
        }
    }
    out.flush()
}

/// A minimal TLS 1.2-framed ClientHello naming `sni`, as browsers send it (one record).
pub fn client_hello(sni: &str) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut sni_ext = Vec::new();
    sni_ext.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
    sni_ext.push(0);
    sni_ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sni_ext.extend_from_slice(name);
    let mut exts = Vec::new();
    // A padding-like extension first, so the name is not at a fixed place.
    exts.extend_from_slice(&[0x00, 0x17, 0x00, 0x00]);
    exts.extend_from_slice(&[0x00, 0x00]);
    exts.extend_from_slice(&(sni_ext.len() as u16).to_be_bytes());
    exts.extend_from_slice(&sni_ext);
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[0x42; 32]);
    body.push(32);
    body.extend_from_slice(&[0x07; 32]);
    body.extend_from_slice(&[0x00, 0x04, 0x13, 0x01, 0x13, 0x02]);
    body.extend_from_slice(&[0x01, 0x00]);
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut hs = vec![0x01];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

fn name(i: usize) -> String {
    format!("host{i}.example{}.com", i % 7)
}

fn ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(104, 16, (i / 256) as u8, (i % 256) as u8)
}

fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    if let Ok(owner) = Name::from_ascii(format!("{name}.")) {
        m.add_query(Query::query(owner, RecordType::A));
    }
    m.to_vec().unwrap_or_default()
}

fn dns_answer(id: u16, name: &str, ip: Ipv4Addr) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Response, OpCode::Query);
    if let Ok(owner) = Name::from_ascii(format!("{name}.")) {
        m.add_query(Query::query(owner.clone(), RecordType::A));
        m.add_answer(Record::from_rdata(owner, 300, RData::A(A(ip))));
    }
    m.to_vec().unwrap_or_default()
}

struct Gen {
    rng: fastrand::Rng,
    written: usize,
    limit: usize,
    time: Duration,
    frame: Vec<u8>,
    answers: Vec<Vec<u8>>,
    queries: Vec<Vec<u8>>,
    hellos: Vec<Vec<u8>>,
    port: u16,
}

/// Who sends a segment.
#[derive(Clone, Copy)]
enum Dir {
    Up,
    Down,
}

impl Gen {
    fn next_port(&mut self) -> u16 {
        self.port = if self.port >= 60_000 {
            40_000
        } else {
            self.port + 1
        };
        self.port
    }

    fn emit(&mut self, out: &mut impl Write) -> io::Result<()> {
        if self.written >= self.limit {
            return Ok(());
        }
        self.written += 1;
        self.time += Duration::from_micros(200 + self.rng.u64(..800));
        let len = self.frame.len() as u32;
        out.write_all(&(self.time.as_secs() as u32).to_le_bytes())?;
        out.write_all(&self.time.subsec_micros().to_le_bytes())?;
        out.write_all(&len.to_le_bytes())?;
        out.write_all(&len.to_le_bytes())?;
        out.write_all(&self.frame)
    }

    fn udp_packet(
        &mut self,
        out: &mut impl Write,
        src: (Ipv4Addr, u16),
        dst: (Ipv4Addr, u16),
        payload: &[u8],
    ) -> io::Result<()> {
        let (smac, dmac) = if src.0 == CLIENT {
            (CLIENT_MAC, ROUTER_MAC)
        } else {
            (ROUTER_MAC, CLIENT_MAC)
        };
        self.frame.clear();
        PacketBuilder::ethernet2(smac, dmac)
            .ipv4(src.0.octets(), dst.0.octets(), 64)
            .udp(src.1, dst.1)
            .write(&mut self.frame, payload)
            .map_err(io::Error::other)?;
        self.emit(out)
    }

    #[allow(clippy::too_many_arguments, reason = "one segment's fields")]
    fn tcp_packet(
        &mut self,
        out: &mut impl Write,
        dir: Dir,
        (server, sport, cport): (Ipv4Addr, u16, u16),
        seq: u32,
        ack: Option<u32>,
        flags: &str,
        payload: &[u8],
    ) -> io::Result<()> {
        let (src, dst, smac, dmac, s, d) = match dir {
            Dir::Up => (CLIENT, server, CLIENT_MAC, ROUTER_MAC, cport, sport),
            Dir::Down => (server, CLIENT, ROUTER_MAC, CLIENT_MAC, sport, cport),
        };
        let mut b = PacketBuilder::ethernet2(smac, dmac)
            .ipv4(src.octets(), dst.octets(), 64)
            .tcp(s, d, seq, 64_240);
        for f in flags.chars() {
            b = match f {
                'S' => b.syn(),
                'F' => b.fin(),
                'P' => b.psh(),
                _ => b,
            };
        }
        if let Some(a) = ack {
            b = b.ack(a);
        }
        self.frame.clear();
        b.write(&mut self.frame, payload)
            .map_err(io::Error::other)?;
        self.emit(out)
    }

    fn lookup(&mut self, out: &mut impl Write, i: usize) -> io::Result<()> {
        let port = self.next_port();
        let q = std::mem::take(&mut self.queries[i]);
        self.udp_packet(out, (CLIENT, port), (RESOLVER, 53), &q)?;
        self.queries[i] = q;
        let a = std::mem::take(&mut self.answers[i]);
        self.udp_packet(out, (RESOLVER, 53), (CLIENT, port), &a)?;
        self.answers[i] = a;
        Ok(())
    }

    /// Handshake, `request` from the client (in two segments, the second sometimes
    /// first), `response` from the server, FIN both ways.
    fn tcp_flow(
        &mut self,
        out: &mut impl Write,
        i: usize,
        port: u16,
        request: &[u8],
        response: &[u8],
    ) -> io::Result<()> {
        let conn = (ip(i), port, self.next_port());
        let (c, s) = (self.rng.u32(..), self.rng.u32(..));
        self.tcp_packet(out, Dir::Up, conn, c, None, "S", &[])?;
        self.tcp_packet(out, Dir::Down, conn, s, Some(c.wrapping_add(1)), "S", &[])?;
        let (c, s) = (c.wrapping_add(1), s.wrapping_add(1));
        self.tcp_packet(out, Dir::Up, conn, c, Some(s), "", &[])?;
        let cut = request.len().min(40);
        let (a, b) = request.split_at(cut);
        let second = c.wrapping_add(cut as u32);
        if self.rng.u8(..8) == 0 {
            self.tcp_packet(out, Dir::Up, conn, second, Some(s), "P", b)?;
            self.tcp_packet(out, Dir::Up, conn, c, Some(s), "", a)?;
        } else {
            self.tcp_packet(out, Dir::Up, conn, c, Some(s), "", a)?;
            self.tcp_packet(out, Dir::Up, conn, second, Some(s), "P", b)?;
        }
        let c = c.wrapping_add(request.len() as u32);
        self.tcp_packet(out, Dir::Down, conn, s, Some(c), "P", response)?;
        let s = s.wrapping_add(response.len() as u32);
        self.tcp_packet(out, Dir::Up, conn, c, Some(s), "F", &[])?;
        self.tcp_packet(out, Dir::Down, conn, s, Some(c.wrapping_add(1)), "F", &[])?;
        self.tcp_packet(
            out,
            Dir::Up,
            conn,
            c.wrapping_add(1),
            Some(s.wrapping_add(1)),
            "",
            &[],
        )
    }

    fn tls(&mut self, out: &mut impl Write, i: usize) -> io::Result<()> {
        self.lookup(out, i)?;
        let hello = std::mem::take(&mut self.hellos[i]);
        let result = self.tcp_flow(out, i, 443, &hello, &[0x16; 1200]);
        self.hellos[i] = hello;
        result
    }

    fn http(&mut self, out: &mut impl Write, i: usize) -> io::Result<()> {
        self.lookup(out, i)?;
        let request = format!(
            "GET /index.html HTTP/1.1\r\nHost: {}\r\nUser-Agent: synth\r\nAccept: */*\r\n\r\n",
            name(i)
        );
        self.tcp_flow(
            out,
            i,
            80,
            request.as_bytes(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        )
    }

    fn udp(&mut self, out: &mut impl Write, i: usize) -> io::Result<()> {
        self.lookup(out, i)?;
        let port = self.next_port();
        for _ in 0..3 {
            self.udp_packet(out, (CLIENT, port), (ip(i), 443), &[0xc3; 1200])?;
            self.udp_packet(out, (ip(i), 443), (CLIENT, port), &[0x40; 300])?;
        }
        Ok(())
    }
}
