//! `steerlab replay`: captures generated here (pcap with Ethernet, pcapng with raw IP and
//! nanosecond timestamps) replayed under a scenario's steering configuration.

use std::borrow::Cow;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use etherparse::PacketBuilder;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use pcap_file::DataLink;
use pcap_file::pcap::{PcapPacket, PcapWriter};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};

const CLIENT: [u8; 4] = [10, 173, 13, 40];

fn dns_answer(name: &str, ip: Ipv4Addr) -> Vec<u8> {
    let mut m = Message::new(1, MessageType::Response, OpCode::Query);
    let owner = Name::from_ascii(format!("{name}.")).unwrap();
    m.add_query(Query::query(owner.clone(), RecordType::A));
    m.add_answer(Record::from_rdata(owner, 300, RData::A(A(ip))));
    m.to_vec().unwrap()
}

/// (time, IP packet) pairs: a DNS answer, DTLS to a gateway, two SYNs.
fn ip_packets() -> Vec<(Duration, Vec<u8>)> {
    let mut out = Vec::new();
    let mut push =
        |ms: u64, builder: etherparse::PacketBuilderStep<etherparse::UdpHeader>, payload: &[u8]| {
            let mut v = Vec::new();
            builder.write(&mut v, payload).unwrap();
            out.push((Duration::from_millis(1_571_053_240_000 + ms), v));
        };
    let answer = dns_answer("www.box.com", Ipv4Addr::new(107, 152, 27, 197));
    push(
        0,
        PacketBuilder::ipv4([10, 0, 0, 53], CLIENT, 64).udp(53, 53_000),
        &answer,
    );
    push(
        100,
        PacketBuilder::ipv4(CLIENT, [8, 36, 116, 35], 64).udp(50_999, 443),
        b"dtls",
    );
    let tcp = |ms: u64, dst: [u8; 4], sport: u16| {
        let mut v = Vec::new();
        PacketBuilder::ipv4(CLIENT, dst, 64)
            .tcp(sport, 443, 1, 64_000)
            .syn()
            .write(&mut v, &[])
            .unwrap();
        (Duration::from_millis(1_571_053_240_000 + ms), v)
    };
    let syn1 = tcp(200, [107, 152, 27, 197], 50_000);
    let syn2 = tcp(300, [93, 184, 216, 34], 50_001);
    out.push(syn1);
    out.push(syn2);
    out
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("steerlab-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn write_pcap(path: &Path) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = PcapWriter::new(file).unwrap();
    for (t, ip) in ip_packets() {
        let mut frame = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
        frame.extend_from_slice(&ip);
        w.write_packet(&PcapPacket::new(t, frame.len() as u32, &frame))
            .unwrap();
    }
}

fn write_pcapng(path: &Path) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = PcapNgWriter::new(file).unwrap();
    w.write_pcapng_block(InterfaceDescriptionBlock {
        linktype: DataLink::RAW,
        snaplen: 0,
        options: vec![InterfaceDescriptionOption::IfTsResol(9)],
    })
    .unwrap();
    for (t, ip) in ip_packets() {
        w.write_pcapng_block(EnhancedPacketBlock {
            interface_id: 0,
            timestamp: t,
            original_len: ip.len() as u32,
            data: Cow::Owned(ip),
            options: vec![],
        })
        .unwrap();
    }
}

fn replay(capture: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_steerlab"))
        .arg("replay")
        .arg(capture)
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const SCENARIO: &str = "scenarios/steering/cloud-apps-managed-tunneled.toml";

#[test]
fn pcap_and_pcapng_give_the_same_verdicts() {
    for (file, write) in [
        ("c.pcap", write_pcap as fn(&Path)),
        ("c.pcapng", write_pcapng),
    ] {
        let path = temp(file);
        write(&path);
        let (code, stdout, stderr) = replay(&path, &["--scenario", SCENARIO, "--json"]);
        assert_eq!(code, Some(0), "{stderr}");
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["client"], "10.173.13.40");
        let flows = v["flows"].as_array().unwrap();
        assert_eq!(flows.len(), 2, "{stdout}");
        assert_eq!(flows[0]["host"], "www.box.com");
        assert_eq!(flows[0]["verdict"], "tunneled");
        assert_eq!(
            flows[0]["time_ms"], 200,
            "timestamps honour the capture's resolution"
        );
        assert_eq!(flows[1]["verdict"], "direct");
        assert_eq!(flows[1]["reason"], "not a managed domain");
        let control = v["control"].to_string();
        assert!(
            control.contains("tunnel DTLS to gateway 8.36.116.35:443"),
            "{control}"
        );
    }
}

#[test]
fn emitted_scenario_runs_and_agrees() {
    let path = temp("e.pcap");
    write_pcap(&path);
    let out = temp("emitted.toml");
    let (code, _, stderr) = replay(
        &path,
        &[
            "--scenario",
            SCENARIO,
            "--emit-scenario",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{stderr}");
    let run = Command::new(env!("CARGO_BIN_EXE_steerlab"))
        .args(["run", out.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn not_a_capture_is_bad_input_and_a_truncated_one_is_replayed_with_a_warning() {
    let path = temp("notes.txt");
    std::fs::write(&path, "hello, this is not a capture").unwrap();
    let (code, _, stderr) = replay(&path, &[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("not a pcap or pcapng capture"), "{stderr}");
    let truncated = temp("t.pcap");
    write_pcap(&truncated);
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() - 7]).unwrap();
    let (code, stdout, stderr) = replay(&truncated, &["--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "warning: packet 4: the file ends inside it (47 of 54 bytes): the capture was cut short; the rest of the file was not read"
        ),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        v["flows"].as_array().unwrap().len(),
        1,
        "the three packets before it"
    );
    let empty = temp("empty.pcap");
    std::fs::write(&empty, []).unwrap();
    let (code, _, stderr) = replay(&empty, &[]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("not a pcap or pcapng capture (the file is empty)"),
        "{stderr}"
    );
}

#[test]
fn fragments_snaplen_and_garbage_frames_are_warnings_naming_packets() {
    let path = temp("w.pcap");
    let file = std::fs::File::create(&path).unwrap();
    let mut w = PcapWriter::new(file).unwrap();
    let t = Duration::from_secs(1_571_053_240);
    let eth = |ip: &[u8]| {
        let mut frame = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
        frame.extend_from_slice(ip);
        frame
    };
    let packets = ip_packets();
    // 1: a fragment (more-fragments bit set).
    let mut frag = packets[0].1.clone();
    frag[6] |= 0x20;
    // 2: a SYN cut by the snaplen: 30 of its bytes.
    let syn = eth(&packets[2].1);
    // 3: garbage after the Ethernet header.
    let garbage = eth(&[0x47, 1, 2, 3, 4, 5]);
    for (i, (frame, orig)) in [
        (eth(&frag), None),
        (syn[..14 + 30].to_vec(), Some(syn.len())),
        (garbage, None),
        (eth(&packets[3].1), None),
        // 5: a DNS answer cut by the snaplen inside its payload: read as far as it goes.
        (
            eth(&packets[0].1)[..14 + 28 + 10].to_vec(),
            Some(14 + packets[0].1.len()),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let orig = orig.unwrap_or(frame.len()) as u32;
        w.write_packet(&PcapPacket::new(
            t + Duration::from_millis(i as u64),
            orig,
            &frame,
        ))
        .unwrap();
    }
    drop(w);
    let (code, stdout, stderr) = replay(&path, &[]);
    assert_eq!(code, Some(0), "{stderr}");
    for line in [
        "warning: packet 1: IP fragment (offset 0): fragments are not reassembled, skipped",
        "warning: packet 2: undecodable frame: TCP header cut short, skipped",
        "warning: packet 3: undecodable frame: IPv4 header cut short, skipped",
        "warning: packet 5: cut by the capture's snaplen (52 of",
    ] {
        assert!(stderr.contains(line), "{line}\n{stderr}");
    }
    assert!(
        stdout.contains("warnings:\n  packet 1: IP fragment"),
        "{stdout}"
    );
    assert!(stdout.contains("flows (1):"), "{stdout}");
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    /// A rich valid capture: the synthetic mix (DNS, split ClientHellos, HTTP, UDP).
    fn synthetic() -> Vec<u8> {
        let mut out = Vec::new();
        steerlab::pcap::synth::write_synthetic(&mut out, 80, 3).unwrap();
        out
    }

    fn read_and_replay(bytes: &[u8], name: &str) {
        #[allow(clippy::disallowed_methods, reason = "the time bound is wall time")]
        let started = std::time::Instant::now();
        let path = temp(name);
        std::fs::write(&path, bytes).unwrap();
        let _ = steerlab::pcap::read_capture(&path);
        let _ = steerlab::pcap::replay(&path, None, Default::default());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// A valid capture with random bytes spliced in is read or rejected, never a panic.
        #[test]
        fn damaged_captures(cut in 0usize..400, junk in proptest::collection::vec(any::<u8>(), 0..200), ng in any::<bool>()) {
            let path = temp(&format!("p-{cut}-{}-{ng}.cap", junk.len()));
            if ng { write_pcapng(&path) } else { write_pcap(&path) }
            let mut bytes = std::fs::read(&path).unwrap();
            let at = cut.min(bytes.len());
            bytes.splice(at..at, junk);
            read_and_replay(&bytes, &format!("d-{cut}-{ng}.cap"));
        }

        /// Arbitrary bytes, alone or behind each format's magic.
        #[test]
        fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2000), magic in 0usize..4) {
            let prefix: &[u8] = match magic {
                0 => &[],
                1 => &[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0],
                2 => &[0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 28, 0, 0, 0],
                _ => &[0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 101],
            };
            let mut all = prefix.to_vec();
            all.extend_from_slice(&bytes);
            read_and_replay(&all, &format!("a-{magic}.cap"));
        }

        /// The synthetic capture with bytes flipped and cut: every layer sees damage.
        #[test]
        fn mutated_synthetic_capture(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..40), cut in any::<usize>()) {
            let mut bytes = synthetic();
            let len = bytes.len();
            for (at, x) in flips {
                // Past the file header, so most mutations reach the packets.
                let at = 24 + at % (len - 24);
                bytes[at] ^= x | 1;
            }
            if cut % 3 == 0 {
                bytes.truncate(cut % len);
            }
            read_and_replay(&bytes, "m.cap");
        }
    }
}

/// Captures made by `tests/fixtures/make-captures.sh` with tcpdump on loopback while dig,
/// openssl s_client and curl ran, replayed under a scenario with box.com managed and the
/// SNI check on.
mod real_tools {
    use super::*;

    const SNI_SCENARIO: &str = "scenarios/steering/browser-doh-sni-check.toml";

    fn replay_json(file: &str) -> serde_json::Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/real")
            .join(file);
        let (code, stdout, stderr) = replay(&path, &["--scenario", SNI_SCENARIO, "--json"]);
        assert_eq!(code, Some(0), "{stderr}");
        assert!(stderr.is_empty(), "no warnings expected: {stderr}");
        serde_json::from_str(&stdout).unwrap()
    }

    #[test]
    fn dig_over_udp_and_tcp_teaches_the_names() {
        let v = replay_json("dns.pcap");
        assert_eq!(v["dns_answers"], 4, "two over UDP, two over TCP");
        let names = &v["names"];
        assert_eq!(names["www.box.com"], "107.152.27.197");
        assert_eq!(
            names["files.box.com"], "107.152.27.197",
            "the CNAME chain, over TCP"
        );
        assert_eq!(names["example.com"], "93.184.216.34", "over TCP");
        assert_eq!(names["gateway-acme.goskope.com"], "8.36.116.35");
        let control = v["control"].to_string();
        assert!(
            control.contains(
                "local DNS query for gateway-acme.goskope.com to 127.0.0.1:53 (packet 13)"
            ),
            "{control}"
        );
        assert_eq!(
            v["flows"].as_array().unwrap().len(),
            0,
            "DNS is not an app flow"
        );
    }

    #[test]
    fn openssl_client_hello_over_three_segments_gives_its_sni() {
        let v = replay_json("tls-split.pcapng");
        let flows = v["flows"].as_array().unwrap();
        assert_eq!(flows.len(), 1, "{v}");
        let f = &flows[0];
        assert_eq!(f["packet"], 1);
        assert_eq!(f["proto"], "tcp");
        assert_eq!(f["addr"], "127.0.0.1:443");
        assert_eq!(f["sni"], "www.box.com");
        // The SNI check decides by the name: managed, and the tunnel is not up.
        assert_eq!(f["host"], "www.box.com");
        assert_eq!(f["reason"], "tunnel down, fail open");
        assert_eq!(f["verdict"], "direct");
    }

    #[test]
    fn curl_through_a_connect_proxy_and_plain_http() {
        let v = replay_json("http-connect.pcap");
        let flows = v["flows"].as_array().unwrap();
        assert_eq!(flows.len(), 2, "{v}");
        let connect = &flows[0];
        assert_eq!(connect["addr"], "127.0.0.1:8888", "the proxy's address");
        assert_eq!(connect["connect"], "www.box.com:443");
        assert_eq!(
            connect["sni"], "www.box.com",
            "the ClientHello inside the tunnel"
        );
        assert_eq!(connect["host"], "www.box.com", "judged by the CONNECT host");
        assert_eq!(connect["reason"], "tunnel down, fail open");
        let http = &flows[1];
        assert_eq!(http["addr"], "127.0.0.1:80");
        assert_eq!(http["http_host"], "www.box.com");
        assert_eq!(http["sni"], serde_json::Value::Null);
        // No DNS answer named 127.0.0.1: unmanaged in cloud-apps mode.
        assert_eq!(http["reason"], "not a managed domain");
    }

    #[test]
    fn fixtures_are_small() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real");
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let len = entry.metadata().unwrap().len();
            assert!(len < 100_000, "{:?} is {len} bytes", entry.path());
        }
    }
}
