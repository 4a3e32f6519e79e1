//! Crafted segment orders through the replay: reassembly, SNI, Host, CONNECT, DNS over
//! TCP, UDP flows, and bounded state.

use std::net::Ipv4Addr;

use agent::core::steer::{DomainSet, Mode};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::*;
use crate::pcap::synth::client_hello;

const CLIENT: [u8; 4] = [10, 173, 13, 40];
const BOX: [u8; 4] = [107, 152, 27, 197];
const OTHER: [u8; 4] = [93, 184, 216, 34];

struct Feed {
    r: Replayer,
    n: usize,
}

impl Feed {
    fn new(steering: Steering) -> Feed {
        Feed {
            r: Replayer::new(
                "test".into(),
                Some(IpAddr::V4(Ipv4Addr::from(CLIENT))),
                None,
                steering,
            ),
            n: 0,
        }
    }
    fn frame(
        &mut self,
        build: etherparse::PacketBuilderStep<etherparse::TcpHeader>,
        payload: &[u8],
    ) {
        let mut v = Vec::new();
        build.write(&mut v, payload).unwrap();
        self.push(&v);
    }
    fn push(&mut self, v: &[u8]) {
        self.n += 1;
        let t = Duration::from_millis(1_000_000 + 10 * self.n as u64);
        self.r.frame(self.n, t, 101, v, v.len() as u32);
    }
    fn udp(&mut self, src: ([u8; 4], u16), dst: ([u8; 4], u16), payload: &[u8]) {
        let mut v = Vec::new();
        etherparse::PacketBuilder::ipv4(src.0, dst.0, 64)
            .udp(src.1, dst.1)
            .write(&mut v, payload)
            .unwrap();
        self.push(&v);
    }
    /// A client segment to `dst:port` from `sport`.
    fn up(&mut self, dst: [u8; 4], port: u16, sport: u16, seq: u32, flags: &str, payload: &[u8]) {
        let b = tcp(CLIENT, dst, sport, port, seq, flags);
        self.frame(b, payload);
    }
    fn down(&mut self, src: [u8; 4], port: u16, dport: u16, seq: u32, flags: &str, payload: &[u8]) {
        let b = tcp(src, CLIENT, port, dport, seq, flags);
        self.frame(b, payload);
    }
    fn finish(self) -> ReplayReport {
        self.r.finish()
    }
}

fn tcp(
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    flags: &str,
) -> etherparse::PacketBuilderStep<etherparse::TcpHeader> {
    let mut b = etherparse::PacketBuilder::ipv4(src, dst, 64).tcp(sport, dport, seq, 64_000);
    for f in flags.chars() {
        b = match f {
            'S' => b.syn(),
            'F' => b.fin(),
            'R' => b.rst(),
            'A' => b.ack(1),
            _ => b,
        };
    }
    b
}

fn answer(name: &str, ip: [u8; 4]) -> Vec<u8> {
    let mut m = Message::new(7, MessageType::Response, OpCode::Query);
    let owner = Name::from_ascii(format!("{name}.")).unwrap();
    m.add_query(Query::query(owner.clone(), RecordType::A));
    m.add_answer(Record::from_rdata(
        owner,
        300,
        RData::A(A(Ipv4Addr::from(ip))),
    ));
    m.to_vec().unwrap()
}

fn managed(sni_check: bool) -> Steering {
    let mut managed = DomainSet::default();
    managed.insert("*.box.com");
    Steering {
        managed,
        sni_check,
        ..Steering::default()
    }
}

/// A ClientHello in three segments delivered in `order`, with a retransmission.
fn split_hello(f: &mut Feed, dst: [u8; 4], sport: u16, order: &[usize]) {
    let hello = client_hello("www.box.com");
    let isn = 1000u32;
    f.up(dst, 443, sport, isn, "S", &[]);
    f.down(dst, 443, sport, 9000, "SA", &[]);
    let cuts = [0, 7, 50, hello.len()];
    for &i in order {
        let (a, b) = (cuts[i], cuts[i + 1]);
        f.up(dst, 443, sport, isn + 1 + a as u32, "A", &hello[a..b]);
    }
}

#[test]
fn sni_from_a_client_hello_in_any_segment_order() {
    for order in [
        &[0, 1, 2][..],
        &[2, 1, 0],
        &[1, 0, 0, 2],
        &[0, 2, 2, 1],
        &[2, 0, 1, 1],
    ] {
        let mut f = Feed::new(managed(true));
        split_hello(&mut f, OTHER, 50_000, order);
        let r = f.finish();
        assert_eq!(r.flows.len(), 1, "{order:?}");
        let flow = &r.flows[0];
        assert_eq!(flow.sni.as_deref(), Some("www.box.com"), "{order:?}");
        assert_eq!(flow.packet, 1);
        assert_eq!(flow.proto, "tcp");
        // sni_check on: the SNI decides (tunnel down, fail open).
        assert_eq!(flow.host, "www.box.com");
        assert_eq!(flow.reason, "tunnel down, fail open");
    }
}

#[test]
fn without_sni_check_the_dns_map_decides_and_the_sni_is_reported() {
    let mut f = Feed::new(managed(false));
    f.udp((BOX, 53), (CLIENT, 53_000), &answer("www.box.com", BOX));
    // The tunnel comes up: a DTLS datagram to a gateway.
    f.udp((CLIENT, 50_999), ([8, 36, 116, 35], 443), b"dtls");
    split_hello(&mut f, BOX, 50_001, &[0, 1, 2]);
    split_hello(&mut f, OTHER, 50_002, &[0, 1, 2]);
    let r = f.finish();
    assert_eq!(r.flows.len(), 2);
    assert_eq!(r.flows[0].verdict, "tunneled");
    assert_eq!(r.flows[0].host, "www.box.com");
    assert_eq!(r.flows[1].verdict, "direct");
    assert_eq!(r.flows[1].reason, "not a managed domain");
    assert_eq!(r.flows[1].host, "93.184.216.34");
    assert_eq!(r.flows[1].sni.as_deref(), Some("www.box.com"));
    assert_eq!(r.dns_answers, 1);
    assert_eq!(r.names.get("www.box.com"), Some(&IpAddr::V4(BOX.into())));
}

#[test]
fn connect_is_decided_by_its_host_and_the_tunneled_sni_is_read() {
    let proxy = [10, 10, 10, 11];
    let mut f = Feed::new(managed(false));
    f.udp((CLIENT, 50_999), ([8, 36, 116, 35], 443), b"dtls");
    f.up(proxy, 8080, 50_003, 100, "S", &[]);
    let req = b"CONNECT www.box.com:443 HTTP/1.1\r\nHost: www.box.com:443\r\n\r\n";
    f.up(proxy, 8080, 50_003, 101, "A", &req[..20]);
    f.up(proxy, 8080, 50_003, 121, "A", &req[20..]);
    f.down(
        proxy,
        8080,
        50_003,
        5000,
        "A",
        b"HTTP/1.1 200 Connection established\r\n\r\n",
    );
    let hello = client_hello("www.box.com");
    f.up(proxy, 8080, 50_003, 101 + req.len() as u32, "A", &hello);
    let r = f.finish();
    assert_eq!(r.flows.len(), 1);
    let flow = &r.flows[0];
    assert_eq!(flow.connect.as_deref(), Some("www.box.com:443"));
    assert_eq!(flow.addr, "10.10.10.11:8080");
    assert_eq!(flow.host, "www.box.com");
    assert_eq!(flow.verdict, "tunneled", "{flow:?}");
    assert_eq!(flow.sni.as_deref(), Some("www.box.com"));
}

#[test]
fn http_host_and_a_flow_that_says_nothing() {
    let mut f = Feed::new(Steering::default());
    f.up(OTHER, 80, 50_004, 1, "S", &[]);
    f.up(
        OTHER,
        80,
        50_004,
        2,
        "A",
        b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
    );
    f.up(OTHER, 22, 50_005, 1, "S", &[]);
    f.down(OTHER, 22, 50_005, 1, "SA", &[]);
    f.down(OTHER, 22, 50_005, 2, "A", b"SSH-2.0-OpenSSH\r\n");
    // A lone SYN, never answered: decided at the end.
    f.up(OTHER, 443, 50_006, 1, "S", &[]);
    let r = f.finish();
    assert_eq!(r.flows.len(), 3);
    assert_eq!(r.flows[0].http_host.as_deref(), Some("example.com"));
    assert_eq!(r.flows[1].addr, "93.184.216.34:22");
    assert_eq!(r.flows[1].http_host, None);
    assert_eq!(r.flows[2].packet, 6);
}

#[test]
fn retransmitted_syn_is_one_flow_and_port_reuse_is_two() {
    let mut f = Feed::new(Steering::default());
    f.up(OTHER, 443, 50_007, 1, "S", &[]);
    f.up(OTHER, 443, 50_007, 1, "S", &[]);
    f.up(OTHER, 443, 50_007, 1, "S", &[]);
    f.up(OTHER, 443, 50_007, 77, "S", &[]);
    let r = f.finish();
    assert_eq!(r.flows.iter().map(|f| f.packet).collect::<Vec<_>>(), [1, 4]);
}

#[test]
fn dns_over_tcp_out_of_order_two_answers_in_one_stream() {
    let mut f = Feed::new(managed(false));
    let mut stream = Vec::new();
    for (name, ip) in [("www.box.com", BOX), ("other.example", OTHER)] {
        let a = answer(name, ip);
        stream.extend_from_slice(&(a.len() as u16).to_be_bytes());
        stream.extend_from_slice(&a);
    }
    let resolver = [10, 0, 0, 53];
    f.up(resolver, 53, 50_008, 10, "S", &[]);
    f.down(resolver, 53, 50_008, 500, "SA", &[]);
    let (a, b) = stream.split_at(13);
    f.down(resolver, 53, 50_008, 501 + 13, "A", b);
    f.down(resolver, 53, 50_008, 501, "A", a);
    f.down(resolver, 53, 50_008, 501, "A", a);
    f.down(resolver, 53, 50_008, 501 + stream.len() as u32, "FA", &[]);
    let r = f.finish();
    assert_eq!(r.dns_answers, 2);
    assert!(r.names.contains_key("other.example"));
    assert!(r.flows.is_empty(), "DNS is not an app flow");
}

#[test]
fn udp_flows_first_datagram_of_each_five_tuple() {
    let mut f = Feed::new(Steering {
        mode: Mode::All,
        ..Steering::default()
    });
    f.udp((BOX, 53), (CLIENT, 53_000), &answer("www.box.com", BOX));
    f.udp((CLIENT, 53_000), ([10, 0, 0, 53], 53), b"query");
    f.udp((CLIENT, 51_000), (BOX, 443), b"quic");
    f.udp((CLIENT, 51_000), (BOX, 443), b"quic");
    f.udp((BOX, 443), (CLIENT, 51_000), b"quic");
    f.udp((CLIENT, 51_001), (BOX, 443), b"quic");
    f.udp((CLIENT, 5353), ([224, 0, 0, 251], 5353), b"mdns");
    let r = f.finish();
    let got: Vec<_> = r
        .flows
        .iter()
        .map(|f| (f.packet, f.proto, f.host.as_str()))
        .collect();
    assert_eq!(got, [(3, "udp", "www.box.com"), (6, "udp", "www.box.com")]);
    assert_eq!(r.flows[0].reason, "tunnel down, fail open");
}

#[test]
fn rst_ends_a_flow_and_state_stays_bounded() {
    let mut f = Feed::new(Steering::default());
    f.up(OTHER, 443, 50_009, 1, "S", &[]);
    f.down(OTHER, 443, 50_009, 1, "RA", &[]);
    assert!(f.r.tcp.is_empty());
    // Many flows that never finish: the table stays under its cap.
    for i in 0..(MAX_FLOWS as u32 + 5_000) {
        let port = 1024 + (i % 60_000) as u16;
        let dst = [100, 64, (i >> 16) as u8, (i >> 8) as u8];
        f.up(dst, 443, port, i, "S", &[]);
        f.up(
            dst,
            443,
            port,
            i + 1,
            "A",
            &[0x16, 0x03, 0x01, 0x40, 0x00, 0x01],
        );
    }
    assert!(f.r.tcp.len() <= MAX_FLOWS + 1, "{}", f.r.tcp.len());
    let r = f.finish();
    assert_eq!(r.flows.len(), MAX_FLOWS + 5_001);
}

#[test]
fn udp_outside_mode_all_goes_direct() {
    let mut f = Feed::new(managed(false));
    f.udp((BOX, 53), (CLIENT, 53_000), &answer("www.box.com", BOX));
    f.udp((CLIENT, 50_999), ([8, 36, 116, 35], 443), b"dtls");
    f.udp((CLIENT, 51_000), (BOX, 443), b"quic");
    let r = f.finish();
    assert_eq!(r.flows.len(), 1);
    assert_eq!(r.flows[0].verdict, "direct");
    assert_eq!(r.flows[0].reason, "UDP is steered only in mode all");
}

#[test]
fn a_byte_at_a_time_is_read_and_stays_fast() {
    let mut f = Feed::new(managed(true));
    let hello = client_hello("www.box.com");
    f.up(OTHER, 443, 50_010, 0, "S", &[]);
    for (i, b) in hello.iter().enumerate() {
        f.up(
            OTHER,
            443,
            50_010,
            1 + i as u32,
            "A",
            std::slice::from_ref(b),
        );
    }
    // HTTP with a 20 KB header, one byte per segment: read a bounded number of times.
    let mut req = b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Pad: ".to_vec();
    req.extend(std::iter::repeat_n(b'a', 20_000));
    req.extend_from_slice(b"\r\n\r\n");
    f.up(OTHER, 80, 50_011, 0, "S", &[]);
    for (i, b) in req.iter().enumerate() {
        f.up(
            OTHER,
            80,
            50_011,
            1 + i as u32,
            "A",
            std::slice::from_ref(b),
        );
    }
    let r = f.finish();
    assert_eq!(r.flows.len(), 2);
    assert_eq!(r.flows[0].sni.as_deref(), Some("www.box.com"));
    assert_eq!(r.flows[0].host, "www.box.com");
    assert_eq!(r.flows[1].http_host.as_deref(), Some("example.com"));
}

#[test]
fn a_tunnel_open_before_the_capture_started() {
    let gateway = [8, 36, 116, 35];
    let mut f = Feed::new(Steering::default());
    // No SYN: the capture starts mid-connection, both ways.
    let record = [0x17, 0x03, 0x03, 0x00, 0x03, 1, 2, 3];
    f.up(gateway, 443, 50_020, 700, "A", &record);
    f.down(gateway, 443, 50_020, 900, "A", &record);
    f.up(OTHER, 443, 50_021, 1, "S", &[]);
    let r = f.finish();
    assert_eq!(
        r.control,
        [
            "+0.000s tunnel TLS to gateway 8.36.116.35:443 (packet 1): handshake done, data both ways (3 bytes of encrypted data from the server)"
        ]
    );
    assert_eq!(r.flows[0].reason, "not a managed domain");
    assert_eq!(r.gateways.len(), 1, "the tunnel counts as up");
}
