//! Unit tests of the HTML page and the sequence diagram builder: pure functions on
//! hand-made records.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use super::html::escape;
use super::sequence::{self, Arrow, Kind, Segment, Step, WireRecord};
use crate::world::timeline::stamp;

const ENDPOINT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
const DOH: Ipv4Addr = Ipv4Addr::new(8, 8, 8, 8);
const LDNS: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 53);
const POP: Ipv4Addr = Ipv4Addr::new(8, 36, 116, 35);
const END: Duration = Duration::from_secs(60);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn tcp(
    at: u64,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    flags: &str,
    payload: &[u8],
) -> WireRecord {
    WireRecord {
        at: ms(at),
        src: SocketAddrV4::new(src.0, src.1),
        dst: SocketAddrV4::new(dst.0, dst.1),
        segment: Segment::Tcp {
            syn: flags.contains('S'),
            ack: flags.contains('A'),
            fin: flags.contains('F'),
            rst: flags.contains('R'),
        },
        payload: payload.to_vec(),
    }
}

fn udp(at: u64, src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16), payload: &[u8]) -> WireRecord {
    WireRecord {
        at: ms(at),
        src: SocketAddrV4::new(src.0, src.1),
        dst: SocketAddrV4::new(dst.0, dst.1),
        segment: Segment::Udp,
        payload: payload.to_vec(),
    }
}

fn shape(arrows: &[Arrow]) -> Vec<String> {
    arrows
        .iter()
        .map(|a| {
            format!(
                "{} {}>{} {:?} {}",
                stamp(a.at),
                a.from,
                a.to,
                a.kind,
                a.label
            )
        })
        .collect()
}

/// A minimal TLS 1.2-framed ClientHello carrying `sni`.
fn client_hello(sni: &str) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut ext = Vec::new();
    ext.extend_from_slice(&0u16.to_be_bytes()); // server_name
    let list_len = 3 + name.len();
    ext.extend_from_slice(&((list_len + 2) as u16).to_be_bytes());
    ext.extend_from_slice(&(list_len as u16).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    ext.extend_from_slice(name);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(0); // session id
    body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one suite
    body.extend_from_slice(&[1, 0]); // null compression
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![22, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

fn dns_message(answer: Option<Ipv4Addr>, id: u16) -> Vec<u8> {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RData, Record, RecordType, rdata::A};
    let name = Name::from_ascii("gateway-acme.goskope.com.").unwrap();
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.add_query(Query::query(name.clone(), RecordType::A));
    if let Some(ip) = answer {
        msg.metadata.message_type = MessageType::Response;
        msg.add_answer(Record::from_rdata(name, 60, RData::A(A(ip))));
    }
    msg.to_vec().unwrap()
}

#[test]
fn escape_covers_markup_quotes_and_controls() {
    assert_eq!(
        escape(r#"<a href="x">Tom & 'Jerry'</a>"#),
        "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
    );
    assert_eq!(escape("tab\tline\nbell\u{7}"), "tab\tline\nbell\u{fffd}");
    assert_eq!(
        escape("&amp;"),
        "&amp;amp;",
        "already-escaped text is escaped again"
    );
    assert_eq!(escape("plain ünïcode"), "plain ünïcode");
}

#[test]
fn a_tls_connection_is_a_connect_a_burst_each_way_and_a_close() {
    let c = (ENDPOINT, 49152);
    let s = (DOH, 443);
    let hello = client_hello("dns.google");
    let records = [
        tcp(10, c, s, "S", b""),
        tcp(10, s, c, "SA", b""),
        tcp(10, c, s, "A", b""),
        tcp(11, c, s, "AP", &hello),
        tcp(
            21,
            s,
            c,
            "AP",
            &[22, 3, 3, 0, 10, 2, 0, 0, 6, 0, 0, 0, 0, 0, 0],
        ),
        tcp(21, s, c, "AP", &[23, 3, 3, 0, 1, 0]),
        tcp(31, c, s, "AP", &[23, 3, 3, 0, 1, 0]),
        tcp(40, c, s, "FA", b""),
    ];
    let arrows = sequence::arrows(&records, ENDPOINT, END);
    assert_eq!(
        shape(&arrows),
        [
            "+0.010s 10.0.0.10>8.8.8.8 Request TCP connect :443 (handshake)".to_string(),
            format!(
                "+0.011s 10.0.0.10>8.8.8.8 Request TLS ClientHello SNI dns.google \u{b7} 2 segments, {} B",
                hello.len() + 6
            ),
            "+0.021s 8.8.8.8>10.0.0.10 Reply TLS ServerHello \u{b7} 2 segments, 21 B".to_string(),
            "+0.040s 10.0.0.10>8.8.8.8 Close close (FIN)".to_string(),
        ]
    );
}

#[test]
fn sockets_dropped_at_teardown_close_at_the_end_of_the_run() {
    let c = (ENDPOINT, 49152);
    let s = (POP, 443);
    let records = [
        tcp(100, c, s, "S", b""),
        tcp(100, s, c, "SA", b""),
        tcp(30_000, c, s, "AP", &[23, 3, 3, 0, 1, 0]),
        // The recorder stamps what happens after the simulation stopped with zero.
        tcp(0, c, s, "FA", b""),
    ];
    let arrows = sequence::arrows(&records, ENDPOINT, END);
    assert_eq!(
        shape(&arrows),
        [
            "+0.100s 10.0.0.10>8.36.116.35 Request TCP connect :443 (handshake)",
            "+30.000s 10.0.0.10>8.36.116.35 Request TLS data \u{b7} 1 segment, 6 B",
            "+60.000s 10.0.0.10>8.36.116.35 Close close (FIN) at the end of the run",
        ]
    );
}

#[test]
fn dropped_and_refused_connects_show_as_lost_and_reset() {
    let records = [
        tcp(5, (ENDPOINT, 40000), (DOH, 443), "S", b""),
        tcp(7, (ENDPOINT, 40001), (POP, 443), "S", b""),
        tcp(7, (POP, 443), (ENDPOINT, 40001), "RA", b""),
    ];
    let arrows = sequence::arrows(&records, ENDPOINT, END);
    assert_eq!(
        shape(&arrows),
        [
            "+0.005s 10.0.0.10>8.8.8.8 Lost TCP SYN :443, no answer",
            "+0.007s 10.0.0.10>8.36.116.35 Request TCP SYN :443",
            "+0.007s 8.36.116.35>10.0.0.10 Failure RST: connection refused",
        ]
    );
}

#[test]
fn dns_queries_pair_with_their_answers_and_unanswered_ones_are_lost() {
    let c = (ENDPOINT, 50000);
    let r = (LDNS, 53);
    let records = [
        udp(100, c, r, &dns_message(None, 7)),
        udp(110, r, c, &dns_message(Some(POP), 7)),
        udp(200, c, r, &dns_message(None, 8)),
    ];
    let arrows = sequence::arrows(&records, ENDPOINT, END);
    assert_eq!(
        shape(&arrows),
        [
            "+0.100s 10.0.0.10>10.0.0.53 Request DNS A? gateway-acme.goskope.com",
            "+0.110s 10.0.0.53>10.0.0.10 Reply DNS answer: A 8.36.116.35",
            "+0.200s 10.0.0.10>10.0.0.53 Lost DNS A? gateway-acme.goskope.com, no answer",
        ]
    );
}

#[test]
fn dns_over_tcp_is_decoded_across_reads() {
    let c = (ENDPOINT, 49300);
    let r = (LDNS, 53);
    let framed = |body: Vec<u8>| {
        let mut out = (body.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(&body);
        out
    };
    let query = framed(dns_message(None, 9));
    let answer = framed(dns_message(Some(POP), 9));
    let records = [
        tcp(300, c, r, "S", b""),
        tcp(300, r, c, "SA", b""),
        tcp(301, c, r, "AP", &query),
        // The resolver's answer read as its length, then its body.
        tcp(311, r, c, "AP", &answer[..2]),
        tcp(312, r, c, "AP", &answer[2..]),
        tcp(320, c, r, "FA", b""),
    ];
    let arrows = sequence::arrows(&records, ENDPOINT, END);
    assert_eq!(
        shape(&arrows),
        [
            "+0.300s 10.0.0.10>10.0.0.53 Request TCP connect :53 (handshake)",
            "+0.301s 10.0.0.10>10.0.0.53 Request DNS A? gateway-acme.goskope.com",
            "+0.311s 10.0.0.53>10.0.0.10 Reply DNS answer: A 8.36.116.35",
            "+0.320s 10.0.0.10>10.0.0.53 Close close (FIN)",
        ]
    );
}

#[test]
fn udp_bursts_split_on_silence_name_dtls_and_mark_silence_lost() {
    let c = (ENDPOINT, 50001);
    let s = (POP, 443);
    let mut dtls_hello = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 40, 1];
    dtls_hello.extend_from_slice(&[0; 40]);
    let data = [23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 9, 0, 4, 1, 2, 3, 4];
    let records = [
        udp(0, c, s, &dtls_hello),
        udp(40, s, c, &data),
        udp(500, c, s, &data),
        udp(5_000, c, s, &data),
    ];
    let arrows = sequence::arrows(&records, ENDPOINT, END);
    assert_eq!(
        shape(&arrows),
        [
            format!(
                "+0.000s 10.0.0.10>8.36.116.35 Request DTLS ClientHello \u{b7} 2 datagrams, {} B",
                dtls_hello.len() + data.len()
            ),
            "+0.040s 8.36.116.35>10.0.0.10 Reply DTLS data \u{b7} 1 datagram, 17 B".to_string(),
            "+5.000s 10.0.0.10>8.36.116.35 Lost DTLS data \u{b7} 1 datagram, 17 B, no answer"
                .to_string(),
        ]
    );
}

#[test]
fn payloads_are_named_by_their_first_bytes() {
    let hello = client_hello("gateway-acme.goskope.com");
    assert_eq!(
        sequence::describe(&hello, false),
        "TLS ClientHello SNI gateway-acme.goskope.com"
    );
    // The same ClientHello cut short still says what it is.
    assert_eq!(sequence::describe(&hello[..40], false), "TLS ClientHello");
    assert_eq!(sequence::describe(&[23, 3, 3, 0, 5], false), "TLS data");
    assert_eq!(
        sequence::describe(&[21, 3, 3, 0, 2, 2, 40], false),
        "TLS alert"
    );
    assert_eq!(
        sequence::describe(&[0x2f, 0x42, 0x2b, 0], true),
        "DTLS encrypted"
    );
    assert_eq!(
        sequence::describe(&[22, 0xfe, 0xfd], true),
        "DTLS handshake"
    );
    assert_eq!(
        sequence::describe(b"GET / HTTP/1.1\r\nHost: x\r\n", false),
        "GET / HTTP/1.1"
    );
    assert_eq!(sequence::describe(b"\x00\x01binary", false), "data");
    assert_eq!(sequence::describe(b"", true), "data");
}

#[test]
fn http_lines_name_plain_bursts() {
    let c = (ENDPOINT, 49200);
    let p = (Ipv4Addr::new(10, 10, 10, 11), 8080);
    let connect = b"CONNECT www.box.com:443 HTTP/1.1\r\nHost: www.box.com\r\n\r\n";
    let mut records = vec![
        tcp(0, c, p, "S", b""),
        tcp(0, p, c, "SA", b""),
        tcp(1, c, p, "AP", connect),
    ];
    // The app reads the answer a byte at a time: the burst is still named by its line.
    for byte in b"HTTP/1.1 200 Connection established\r\n\r\n" {
        records.push(tcp(2, p, c, "AP", &[*byte]));
    }
    let labels: Vec<String> = sequence::arrows(&records, ENDPOINT, END)
        .into_iter()
        .map(|a| a.label)
        .collect();
    assert_eq!(
        labels[1],
        "CONNECT www.box.com:443 HTTP/1.1 \u{b7} 1 segment, 55 B"
    );
    assert_eq!(
        labels[2],
        "HTTP/1.1 200 Connection established \u{b7} 39 segments, 39 B"
    );
}

#[test]
fn timeline_lines_come_before_the_traffic_of_their_millisecond() {
    let arrows = sequence::arrows(
        &[tcp(10, (ENDPOINT, 40000), (DOH, 443), "S", b"")],
        ENDPOINT,
        END,
    );
    let timeline = [
        "+0.000s start agent".to_string(),
        "+0.010s partition doh".to_string(),
        "no stamp <here>".to_string(),
    ];
    let steps = sequence::steps(arrows, &timeline);
    let kinds: Vec<String> = steps
        .iter()
        .map(|s| match s {
            Step::World { at, text } => format!("{} world {text}", stamp(*at)),
            Step::Arrow(a) => format!("{} arrow {}", stamp(a.at), a.label),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "+0.000s world start agent",
            "+0.010s world partition doh",
            "+0.010s world no stamp <here>",
            "+0.010s arrow TCP SYN :443, no answer",
        ]
    );
}

#[test]
fn the_svg_escapes_labels_and_names_every_lifeline() {
    let mut hosts = crate::world::registry::Registry::default();
    let entry = |role, label: &str| crate::world::registry::HostEntry {
        role,
        label: label.to_string(),
        dns_names: vec![],
    };
    use crate::world::registry::Role;
    hosts
        .add(ENDPOINT, entry(Role::Endpoint, "endpoint"))
        .unwrap();
    hosts
        .add(POP, entry(Role::Pop("nyc1".into()), "nyc1"))
        .unwrap();
    let steps = vec![
        Step::World {
            at: ms(0),
            text: "rule host `block tcp/443 to <evil> & \"co\"`".to_string(),
        },
        Step::Arrow(Arrow {
            at: ms(3),
            seq: 0,
            from: ENDPOINT,
            to: DOH,
            label: "x<y".to_string(),
            kind: Kind::Lost,
        }),
        Step::Arrow(Arrow {
            at: ms(4),
            seq: 1,
            from: ENDPOINT,
            to: POP,
            label: "TCP connect".to_string(),
            kind: Kind::Request,
        }),
    ];
    let lifelines = sequence::lifelines(&steps, ENDPOINT, &hosts);
    let names: Vec<&str> = lifelines.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        ["endpoint", "PoP nyc1", "8.8.8.8"],
        "by role, unknown last"
    );
    let svg = sequence::svg(&lifelines, &steps);
    assert!(svg.starts_with("<svg class=\"sequence\""));
    assert!(svg.contains("&lt;evil&gt; &amp; &quot;co&quot;"));
    assert!(svg.contains(">x&lt;y</text>"));
    assert!(svg.contains("marker-end=\"url(#cross)\""));
    assert!(!svg.contains("<evil>"));
    assert_eq!(svg, sequence::svg(&lifelines, &steps), "deterministic");
}

#[test]
fn the_page_escapes_every_section_and_leaves_wall_time_out() {
    use super::html::{Page, render};
    use super::{FlowRecord, Outcome, RunReport};
    use crate::scenario::{TunnelState, Verdict};
    let mut hosts = crate::world::registry::Registry::default();
    hosts
        .add(
            ENDPOINT,
            crate::world::registry::HostEntry {
                role: crate::world::registry::Role::Endpoint,
                label: "endpoint".to_string(),
                dns_names: vec![],
            },
        )
        .unwrap();
    let report = RunReport {
        name: "a <b> & \"c\"".to_string(),
        path: "scenarios/x.toml".into(),
        seed: 3,
        simulated: Duration::from_secs(30),
        wall: Duration::from_millis(1234),
        log: vec!["2019/10/14 11:40:49.000 stAgentSvc p1 t1 2 x <script>&".to_string()],
        timeline: vec!["+1.000s rule host `block tcp/443 to <h>`".to_string()],
        outcome: Outcome {
            resolved_by: None,
            gateway: None,
            tunnel: TunnelState::Down,
        },
        flows: vec![FlowRecord {
            process: "a&b.exe".to_string(),
            host: "<h>".to_string(),
            addr: "1.2.3.4:443".to_string(),
            verdict: Verdict::Blocked,
            reason: "fail close 'down'".to_string(),
            outcome: "reset".to_string(),
        }],
        hosts,
    };
    let misses = vec!["tunnel: expected \"TLS\", got <down>".to_string()];
    let page = render(&Page {
        report: &report,
        records: &[],
        description: "x < y",
        check: Some((false, &misses)),
    });
    for raw in ["<b>", "<script>", "<h>", "<down>", "x < y"] {
        assert!(!page.contains(raw), "{raw} is not escaped");
    }
    for escaped in [
        "<h1>a &lt;b&gt; &amp; &quot;c&quot;</h1>",
        "x &lt;script&gt;&amp;\n",
        "block tcp/443 to &lt;h&gt;",
        "<td>a&amp;b.exe</td><td>&lt;h&gt;</td>",
        "fail close &#39;down&#39;",
        "got &lt;down&gt;",
        "<p class=\"status fail\">FAIL</p>",
    ] {
        assert!(page.contains(escaped), "missing {escaped}");
    }
    assert_eq!(page.matches("<tr class=\"flow blocked\">").count(), 1);
    assert!(
        !page.contains("1.234") && !page.contains("1234"),
        "no wall time"
    );
    assert_eq!(
        page,
        render(&Page {
            report: &report,
            records: &[],
            description: "x < y",
            check: Some((false, &misses))
        })
    );
}

#[test]
fn long_runs_stop_drawing_at_the_row_limit_and_say_so() {
    let steps: Vec<Step> = (0..sequence::MAX_ROWS + 100)
        .map(|i| Step::World {
            at: ms(i as u64),
            text: format!("event {i}"),
        })
        .collect();
    let svg = sequence::svg(&[], &steps);
    assert!(svg.contains(">100 more rows not drawn;"));
    assert!(svg.contains("event 1499<") && !svg.contains("event 1500<"));
}
