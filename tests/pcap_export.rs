//! `steerlab run --pcap`: the endpoint's traffic as a capture, read back with the replay
//! reader: headers and timing are the same for the same seed, and replaying the capture
//! gives the run's own verdicts for the flows it shows.

use std::path::Path;

use steerlab::pcap::export::Recorder;
use steerlab::pcap::{Transport, read_capture};
use steerlab::{scenario, world};

fn capture(file: &str, name: &str) -> (steerlab::report::RunReport, std::path::PathBuf) {
    let s = scenario::load_file(Path::new(file)).unwrap();
    let rec = Recorder::new(s.client.ip);
    let report = world::run_with(&s, None, Some(rec.clone())).unwrap();
    let dir = std::env::temp_dir().join(format!("steerlab-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let epoch = std::time::Duration::from_millis(s.clock_unix_ms as u64);
    std::fs::write(&path, rec.to_pcap(epoch)).unwrap();
    (report, path)
}

#[test]
fn the_capture_shows_doh_and_the_dtls_tunnel_and_is_deterministic() {
    let file = "scenarios/tunnel/dtls-default.toml";
    let (_, a) = capture(file, "a.pcap");
    let (_, b) = capture(file, "b.pcap");
    let (pa, skipped) = read_capture(&a).unwrap();
    assert_eq!(skipped.undecodable, 0);
    assert!(pa.iter().any(|p| p.dst.to_string() == "8.8.8.8:443"
        && p.transport
            == Transport::Tcp {
                syn: true,
                ack: false
            }));
    assert!(
        pa.iter()
            .any(|p| p.dst.to_string() == "8.36.116.35:443" && p.transport == Transport::Udp)
    );
    let shape = |ps: &[steerlab::pcap::Packet]| -> Vec<String> {
        ps.iter()
            .map(|p| {
                format!(
                    "{:?} {} {} {:?} {}",
                    p.time,
                    p.src,
                    p.dst,
                    p.transport,
                    p.payload.len()
                )
            })
            .collect()
    };
    let (pb, _) = read_capture(&b).unwrap();
    assert_eq!(shape(&pa), shape(&pb), "same seed, same packets and timing");
    // The pcapng form says the same, timestamps included.
    let s = scenario::load_file(Path::new(file)).unwrap();
    let rec = Recorder::new(s.client.ip);
    world::run_with(&s, None, Some(rec.clone())).unwrap();
    let ng = a.with_extension("pcapng");
    std::fs::write(
        &ng,
        rec.to_pcapng(std::time::Duration::from_millis(s.clock_unix_ms as u64)),
    )
    .unwrap();
    let (pn, _) = read_capture(&ng).unwrap();
    assert_eq!(shape(&pa), shape(&pn));
}

#[test]
fn replaying_the_export_agrees_with_the_run() {
    let file = "scenarios/steering/web-exceptions-and-private.toml";
    let (report, path) = capture(file, "web.pcap");
    let s = scenario::load_file(Path::new(file)).unwrap();
    let replayed = steerlab::pcap::replay(&path, Some(&s), world::agent_steering(&s)).unwrap();
    // Tunneled flows never reach the wire: the capture shows the others.
    let on_wire: Vec<_> = report
        .flows
        .iter()
        .filter(|f| f.verdict.as_str() != "tunneled" && f.verdict.as_str() != "blocked")
        // A capture has no process names, so bypass apps cannot be recognised.
        .filter(|f| !f.reason.starts_with("bypass app"))
        .map(|f| (f.addr.clone(), f.verdict.as_str().to_string()))
        .collect();
    let seen: Vec<_> = replayed
        .flows
        .iter()
        .map(|f| (f.addr.clone(), f.verdict.clone()))
        .collect();
    for flow in &on_wire {
        assert!(
            seen.contains(flow),
            "{flow:?} missing from the replay {seen:?}"
        );
    }
}

/// tshark reads every export (pcap and pcapng) with no malformed packet, no bad checksum
/// and no expert warning or error. Skips, saying why, when tshark is not installed
/// (`.ci/run` installs it).
#[test]
fn tshark_reads_the_exports_without_a_warning() {
    use std::process::Command;
    if Command::new("tshark").arg("--version").output().is_err() {
        eprintln!("skipped: tshark is not installed (apt-get install tshark)");
        return;
    }
    let mut paths = Vec::new();
    for file in [
        "scenarios/tunnel/dtls-default.toml",
        "scenarios/steering/web-exceptions-and-private.toml",
        "scenarios/steering/cloud-apps-managed-tunneled.toml",
        "scenarios/tunnel/udp-blocked-tls.toml",
        "scenarios/tunnel/small-mtu-tls.toml",
    ] {
        let s = scenario::load_file(Path::new(file)).unwrap();
        let rec = Recorder::new(s.client.ip);
        let tap = steerlab::world::tap::HostTap::new();
        let captures = world::Captures {
            endpoint: Some(rec.clone()),
            hosts: Some(tap.clone()),
        };
        world::run_capturing(&s, None, captures).unwrap();
        let epoch = std::time::Duration::from_millis(s.clock_unix_ms as u64);
        let dir = std::env::temp_dir().join(format!("steerlab-tshark-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let stem = file.replace('/', "_");
        // The endpoint's capture in both formats, and every host's (--pcap-hosts).
        let mut exports = vec![
            ("pcap".to_string(), rec.to_pcap(epoch)),
            ("pcapng".to_string(), rec.to_pcapng(epoch)),
        ];
        for (host, bytes) in tap.to_pcapng(epoch) {
            exports.push((format!("{host}.pcapng"), bytes));
        }
        for (ext, bytes) in exports {
            let path = dir.join(format!("{stem}.{ext}"));
            std::fs::write(&path, bytes).unwrap();
            paths.push(path);
        }
    }
    // Each tshark start loads every dissector (most of a check's time): the files are
    // checked in two halves, one per core.
    std::thread::scope(|scope| {
        for half in paths.chunks(paths.len().div_ceil(2).max(1)) {
            scope.spawn(|| half.iter().for_each(|path| tshark_finds_nothing(path)));
        }
    });
}

/// Reads `path` with tshark, checksums checked: it must read it whole, with no error
/// or warning of its expert system.
fn tshark_finds_nothing(path: &Path) {
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(["-q", "-z", "expert,warn"])
        .args(["-o", "ip.check_checksum:TRUE"])
        .args(["-o", "tcp.check_checksum:TRUE"])
        .args(["-o", "udp.check_checksum:TRUE"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{}: tshark failed: {stderr}",
        path.display()
    );
    let findings = expert_findings(&stdout);
    assert!(
        findings.is_empty(),
        "{}: tshark reports {findings:?}:\n{stdout}",
        path.display()
    );
    for bad in ["cut short", "damaged", "corrupt"] {
        assert!(!stderr.contains(bad), "{}: {stderr}", path.display());
    }
}

/// The error and warning lines of `tshark -z expert` output, less the one warning a
/// faithful capture has: the RST of a connect the scenario refuses (`reset` rules).
fn expert_findings(expert: &str) -> Vec<String> {
    let mut serious = false;
    let mut out = Vec::new();
    for line in expert.lines() {
        if line.starts_with("Errors (") || line.starts_with("Warns (") {
            serious = true;
        } else if line.starts_with("Notes (") || line.starts_with("Chats (") {
            serious = false;
        } else if serious
            && line.trim_start().starts_with(|c: char| c.is_ascii_digit())
            && !line.contains("Connection reset (RST)")
        {
            out.push(line.trim().to_string());
        }
    }
    if expert.contains("Malformed") {
        out.push("a malformed packet".to_string());
    }
    out
}

#[test]
fn expert_findings_keep_errors_and_warnings() {
    let sample = "\nErrors (1)\n=============\n   Frequency      Group           Protocol  Summary\n           1   Checksum                UDP  Bad checksum [should be 0xeb76]\n\nWarns (2)\n=============\n   Frequency      Group           Protocol  Summary\n           1   Sequence                TCP  Connection reset (RST)\n           3   Sequence                TCP  Previous segment not captured\n\nNotes (6)\n=============\n           6   Sequence                TCP  This frame initiates the connection closing\n";
    assert_eq!(
        expert_findings(sample),
        [
            "1   Checksum                UDP  Bad checksum [should be 0xeb76]",
            "3   Sequence                TCP  Previous segment not captured"
        ]
    );
}

/// The agent's own connections in an export, replayed: how each DoH attempt and tunnel
/// ended, as the scenario made it end.
#[test]
fn replay_tells_how_doh_and_the_tunnel_ended() {
    for (file, expected) in [
        (
            "scenarios/pop-selection/doh-happy-path.toml",
            &["DNS over HTTPS to 8.8.8.8:443 (packet 1): answered ("][..],
        ),
        (
            "scenarios/pop-selection/doh-reset.toml",
            &[
                "DNS over HTTPS to 8.8.8.8:443 (packet 1): refused (RST from the server)",
                "local DNS query for gateway-acme.goskope.com to 10.0.0.53:53",
                "local DNS answer: gateway-acme.goskope.com is 8.36.116.35",
                "tunnel TLS to gateway 8.36.116.35:443 (packet 5): handshake done, data both ways",
            ],
        ),
        (
            "scenarios/pop-selection/doh-untrusted-cert.toml",
            &["DNS over HTTPS to 8.8.8.8:443 (packet 1): the client abandoned the TLS handshake"],
        ),
        (
            "scenarios/pop-selection/doh-partitioned-ldns-far-pop.toml",
            &["DNS over HTTPS to 8.8.8.8:443 (packet 1): unanswered SYN"],
        ),
        (
            "scenarios/failover/primary-blocked-backup.toml",
            &[
                "tunnel TLS to gateway 8.36.116.35:443 (packet 14): unanswered SYN",
                "tunnel TLS to gateway 8.36.118.35:443 (the backup) (packet 28): handshake done",
            ],
        ),
        (
            "scenarios/tunnel/udp-blocked-tls.toml",
            &[
                "tunnel DTLS to gateway 8.36.116.35:443 (packet 14): unanswered (4 datagram(s) sent, none back)",
                "tunnel TLS to gateway 8.36.116.35:443 (packet 18): handshake done",
            ],
        ),
    ] {
        let (_, path) = capture(file, &format!("{}.pcap", file.replace('/', "_")));
        let s = scenario::load_file(Path::new(file)).unwrap();
        let replayed = steerlab::pcap::replay(&path, Some(&s), world::agent_steering(&s)).unwrap();
        let control = replayed.control.join("\n");
        for line in expected {
            assert!(
                control.contains(line),
                "{file}: {line:?} missing from\n{control}"
            );
        }
    }
}

/// The run's capture, as pcapng bytes, with `seed` (the scenario's when `None`).
fn pcapng_bytes(file: &str, seed: Option<u64>) -> Vec<u8> {
    let s = scenario::load_file(Path::new(file)).unwrap();
    let rec = Recorder::new(s.client.ip);
    world::run_with(&s, seed, Some(rec.clone())).unwrap();
    rec.to_pcapng(std::time::Duration::from_millis(s.clock_unix_ms as u64))
}

/// Same scenario and seed: the same file, byte for byte, TLS and DTLS records included
/// (the world's TLS draws its randomness and keys from the seed; certificates are
/// Ed25519 or RFC 6979 ECDSA). Another seed changes the encrypted bytes.
#[test]
fn same_seed_gives_a_byte_identical_capture() {
    for file in [
        "scenarios/tunnel/dtls-default.toml",
        "scenarios/tunnel/udp-blocked-tls.toml",
        "scenarios/gslb/happy-path.toml",
        "scenarios/firewall/inspect-breaks-pinned-tls.toml",
        "scenarios/steering/udp-all-traffic.toml",
    ] {
        if !Path::new(file).exists() {
            panic!("{file} is gone: pick another scenario for this test");
        }
        let a = pcapng_bytes(file, None);
        let b = pcapng_bytes(file, None);
        assert!(a.len() > 1_000, "{file}: a real capture");
        assert!(a == b, "{file}: two runs with the same seed differ");
        let other = pcapng_bytes(file, Some(0xD1FF));
        assert!(a != other, "{file}: another seed gives other TLS bytes");
    }
}

/// Every pcapng packet has a comment naming the host at the far end and whose traffic
/// it is, with the agent's verdict for app flows.
#[test]
fn pcapng_comments_name_the_host_and_the_decision() {
    use pcap_file::pcapng::blocks::Block;
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
    let bytes = pcapng_bytes("scenarios/steering/udp-all-traffic.toml", None);
    let mut reader = pcap_file::pcapng::PcapNgReader::new(&bytes[..]).unwrap();
    let mut comments = Vec::new();
    while let Some(block) = reader.next_block() {
        if let Block::EnhancedPacket(p) = block.unwrap() {
            let comment = p.options.iter().find_map(|o| match o {
                EnhancedPacketOption::Comment(c) => Some(c.to_string()),
                _ => None,
            });
            comments.push(comment.expect("every packet has a comment"));
        }
    }
    assert!(!comments.is_empty());
    let has = |text: &str| comments.iter().any(|c| c == text);
    assert!(has(
        "DoH server dns.google: the agent's own traffic (never steered)"
    ));
    assert!(has("PoP nyc1: the agent's own traffic (never steered)"));
    assert!(has(
        "zoom.us: app zoom.exe zoom.us:8801: bypassed (domain exception zoom.us)"
    ));
    assert!(
        comments
            .iter()
            .any(|c| c.starts_with("resolver ldns: app ") && c.contains(" looks up ")),
        "{comments:?}"
    );
}

/// `--pcap-hosts`: every host's capture, read off turmoil's links. The PoP's file shows
/// the tunnel and the gateway's own connection to the origin of a tunneled flow; the
/// origin's shows that connection coming from the PoP, never from the endpoint. Same
/// seed, same files.
#[test]
fn every_host_gets_its_capture_from_the_network() {
    use steerlab::world::tap::HostTap;
    let file = "scenarios/steering/cloud-apps-managed-tunneled.toml";
    let s = scenario::load_file(Path::new(file)).unwrap();
    let epoch = std::time::Duration::from_millis(s.clock_unix_ms as u64);
    let run = || {
        let tap = HostTap::new();
        let captures = world::Captures {
            endpoint: None,
            hosts: Some(tap.clone()),
        };
        world::run_capturing(&s, None, captures).unwrap();
        tap.to_pcapng(epoch)
    };
    let files = run();
    assert_eq!(files, run(), "same seed, same host captures");
    let dir = std::env::temp_dir().join(format!("steerlab-hosts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut read = std::collections::BTreeMap::new();
    for (label, bytes) in &files {
        let path = dir.join(format!("{label}.pcapng"));
        std::fs::write(&path, bytes).unwrap();
        read.insert(label.clone(), read_capture(&path).unwrap().0);
    }
    let pop = &read["nyc1"];
    let origin = &read["www.box.com"];
    let box_ip = "107.152.27.197:443";
    assert!(
        pop.iter()
            .any(|p| p.src.ip().to_string() == s.client.ip.to_string())
    );
    assert!(
        pop.iter().any(|p| p.dst.to_string() == box_ip),
        "the gateway dials the origin"
    );
    assert!(!origin.is_empty());
    assert!(
        origin
            .iter()
            .all(|p| p.src.ip().to_string() == "8.36.116.35"
                || p.dst.ip().to_string() == "8.36.116.35"),
        "the tunneled flow reaches the origin from the PoP only"
    );
    // The endpoint's network view holds its DNS and DoH, like its own capture.
    let endpoint = &read["endpoint"];
    assert!(endpoint.iter().any(|p| p.dst.to_string() == "8.8.8.8:443"));
    assert!(endpoint.iter().any(|p| p.dst.port() == 53));
}

/// Frames are in time order: a connection the simulation's end drops closes at the last
/// moment recorded, not at time zero.
#[test]
fn exported_frames_never_go_back_in_time() {
    let (_, path) = capture(
        "scenarios/steering/cloud-apps-managed-tunneled.toml",
        "order.pcap",
    );
    let (packets, _) = read_capture(&path).unwrap();
    assert!(packets.len() > 10);
    for pair in packets.windows(2) {
        assert!(
            pair[1].time >= pair[0].time,
            "{:?} comes after {:?}",
            pair[1].time,
            pair[0].time
        );
    }
}
