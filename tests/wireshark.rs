//! Wireshark on an exported run: the pcapng carries the run's TLS secrets (a Decryption
//! Secrets Block), so tshark with no options decrypts DNS over HTTPS, the GSLB API and
//! the TLS tunnel. Skips the tshark checks, saying why, when tshark is not installed
//! (`.ci/run` installs it).

use std::path::{Path, PathBuf};
use std::process::Command;

use pcap_file::pcapng::PcapNgReader;
use pcap_file::pcapng::blocks::Block;
use steerlab::pcap::export::Recorder;
use steerlab::pcap::secrets::{DECRYPTION_SECRETS_BLOCK, TLS_KEY_LOG};
use steerlab::{scenario, world};

/// The run's endpoint capture as pcapng, written to a temporary file.
fn export(file: &str) -> PathBuf {
    let s = scenario::load_file(Path::new(file)).unwrap();
    let rec = Recorder::new(s.client.ip);
    world::run_with(&s, None, Some(rec.clone())).unwrap();
    let dir = std::env::temp_dir().join(format!("steerlab-wireshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.pcapng", file.replace('/', "_")));
    let epoch = std::time::Duration::from_millis(s.clock_unix_ms as u64);
    std::fs::write(&path, rec.to_pcapng(epoch)).unwrap();
    path
}

fn have_tshark() -> bool {
    if Command::new("tshark").arg("--version").output().is_ok() {
        return true;
    }
    eprintln!("skipped: tshark is not installed (apt-get install tshark)");
    false
}

/// `tshark -r FILE ARGS...`'s standard output; fails the test when tshark does.
fn tshark(path: &Path, args: &[&str]) -> String {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{}: tshark failed: {stderr}",
        path.display()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_export_carries_the_secrets_before_the_first_packet() {
    let path = export("scenarios/steering/cloud-apps-managed-tunneled.toml");
    let bytes = std::fs::read(&path).unwrap();
    let mut reader = PcapNgReader::new(&bytes[..]).unwrap();
    let mut kinds = Vec::new();
    let mut secrets = None;
    while let Some(block) = reader.next_block() {
        match block.unwrap() {
            Block::InterfaceDescription(_) => kinds.push("interface"),
            Block::EnhancedPacket(_) => kinds.push("packet"),
            Block::Unknown(b) if b.type_ == DECRYPTION_SECRETS_BLOCK => {
                kinds.push("secrets");
                secrets = Some(b.value.into_owned());
            }
            other => panic!("unexpected block {other:?}"),
        }
    }
    assert_eq!(kinds[..2], ["interface", "secrets"], "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "secrets").count(), 1);
    let body = secrets.unwrap();
    let u32_at = |i: usize| {
        let b: [u8; 4] = body[i..i + 4].try_into().unwrap();
        // The section's byte order is the machine's (pcap-file's default).
        if cfg!(target_endian = "little") {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    assert_eq!(u32_at(0), TLS_KEY_LOG);
    let len = u32_at(4) as usize;
    let text = std::str::from_utf8(&body[8..8 + len]).unwrap();
    // TLS 1.3 (DoH, the tunnel): four secrets per session, logged once though both ends
    // log them.
    for label in [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(label)),
            "{label}: {text}"
        );
    }
    let lines: Vec<&str> = text.lines().collect();
    let unique: std::collections::BTreeSet<&&str> = lines.iter().collect();
    assert_eq!(lines.len(), unique.len(), "a line twice: {text}");
    assert!(lines.iter().all(|l| l.split(' ').count() == 3), "{text}");
    // Exactly the sessions the capture shows: one per ClientHello in it.
    let (packets, _) = steerlab::pcap::read_capture(&path).unwrap();
    let hellos: std::collections::BTreeSet<String> = packets
        .iter()
        .filter_map(|p| steerlab::pcap::secrets::client_random(&p.payload))
        .collect();
    let logged: std::collections::BTreeSet<String> = lines
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap().to_string())
        .collect();
    assert!(hellos.len() >= 2, "DoH and the tunnel: {hellos:?}");
    assert_eq!(logged, hellos);
}

/// In a world of several endpoints the capture (the first endpoint's) carries only its own
/// sessions' secrets, though every agent and server logs them all.
#[test]
fn the_secrets_are_those_of_the_captured_endpoint() {
    let file = "scenarios/steering/three-endpoints.toml";
    let s = scenario::load_file(Path::new(file)).unwrap();
    let rec = Recorder::new(s.client.ip);
    world::run_with(&s, None, Some(rec.clone())).unwrap();
    let all = rec.key_log_text();
    let epoch = std::time::Duration::from_millis(s.clock_unix_ms as u64);
    let bytes = rec.to_pcapng(epoch);
    let sessions = |text: &str| {
        text.lines()
            .filter_map(|l| l.split(' ').nth(1))
            .map(str::to_string)
            .collect::<std::collections::BTreeSet<_>>()
    };
    let every = sessions(&all);
    let in_file: Vec<String> = every
        .iter()
        .filter(|random| bytes.windows(random.len()).any(|w| w == random.as_bytes()))
        .cloned()
        .collect();
    assert!(!in_file.is_empty());
    assert!(
        in_file.len() < every.len(),
        "{} of {} sessions in the file: the other endpoints' should not be",
        in_file.len(),
        every.len()
    );
}

#[test]
fn tshark_with_no_options_decrypts_doh() {
    if !have_tshark() {
        return;
    }
    let path = export("scenarios/steering/cloud-apps-managed-tunneled.toml");
    // DNS inside TLS: only decryption shows it (the local resolver's DNS is plain UDP).
    let doh = tshark(
        &path,
        &[
            "-Y",
            "tls && dns",
            "-T",
            "fields",
            "-e",
            "dns.qry.name",
            "-e",
            "dns.a",
        ],
    );
    assert!(
        doh.lines()
            .any(|l| l.starts_with("gateway-acme.goskope.com\t")),
        "no DoH query decrypted:\n{doh}"
    );
    assert!(
        doh.lines()
            .any(|l| l == "gateway-acme.goskope.com\t8.36.116.35"),
        "no DoH answer decrypted:\n{doh}"
    );
}

#[test]
fn tshark_with_no_options_decrypts_the_gslb_api() {
    if !have_tshark() {
        return;
    }
    let path = export("scenarios/gslb/happy-path.toml");
    let http = tshark(
        &path,
        &[
            "-Y",
            "tls && http.request",
            "-T",
            "fields",
            "-e",
            "http.request.uri",
        ],
    );
    assert!(
        http.lines().any(|l| l.starts_with("/v1/pops?tenant=acme")),
        "no GSLB request decrypted:\n{http}"
    );
}

const DISSECTOR: &str = "contrib/wireshark/steerlab-tunnel.lua";

/// `tshark` with the project's dissector: one line per tunnel frame, its fields
/// tab-separated (`kind flow target process reason user`). A TCP segment holding
/// several frames gives comma-separated values.
fn tunnel_frames(path: &Path, extra: &[&str]) -> Vec<Vec<String>> {
    let script = format!("lua_script:{}", root().join(DISSECTOR).display());
    let mut args = vec!["-X", script.as_str()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-Y", "steerlab", "-T", "fields", "-E", "occurrence=a"]);
    for field in [
        "steerlab.kind",
        "steerlab.flow",
        "steerlab.target",
        "steerlab.process",
        "steerlab.reason",
        "steerlab.user",
        "steerlab.len",
    ] {
        args.extend_from_slice(&["-e", field]);
    }
    let out = tshark(path, &args);
    out.lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_dissector_shows_the_open_frames_naming_the_flows_hosts() {
    if !have_tshark() {
        return;
    }
    let file = "scenarios/steering/exception-files-and-pinned-actions.toml";
    let s = scenario::load_file(Path::new(file)).unwrap();
    let rec = Recorder::new(s.client.ip);
    let report = world::run_with(&s, None, Some(rec.clone())).unwrap();
    let path = std::env::temp_dir().join(format!("steerlab-dissect-{}.pcapng", std::process::id()));
    let epoch = std::time::Duration::from_millis(s.clock_unix_ms as u64);
    std::fs::write(&path, rec.to_pcapng(epoch)).unwrap();

    let frames = tunnel_frames(&path, &[]);
    let opens: Vec<(String, String)> = frames
        .iter()
        .filter(|f| f[0] == "1")
        .map(|f| (f[2].clone(), f[3].clone()))
        .collect();
    let tunneled: Vec<_> = report
        .flows
        .iter()
        .filter(|f| f.verdict == scenario::Verdict::Tunneled)
        .collect();
    assert!(!tunneled.is_empty(), "the scenario tunnels flows");
    assert_eq!(opens.len(), tunneled.len(), "{opens:?}");
    for flow in tunneled {
        let port = flow.addr.rsplit(':').next().unwrap();
        let target = format!("{}:{port}", flow.host);
        assert!(
            opens.contains(&(target.clone(), flow.process.clone())),
            "no Open frame for {target} ({}) in {opens:?}",
            flow.process
        );
    }
    // Every Open is answered, and keepalives run on flow 0.
    assert!(frames.iter().any(|f| f[0] == "2"), "{frames:?}");
    assert!(
        frames.iter().any(|f| f[0] == "6" && f[1] == "0"),
        "{frames:?}"
    );
    assert!(
        frames.iter().any(|f| f[0] == "7" && f[1] == "0"),
        "{frames:?}"
    );
    // Nothing the dissector calls malformed.
    let script = format!("lua_script:{}", root().join(DISSECTOR).display());
    let expert = tshark(&path, &["-X", &script, "-q", "-z", "expert,error"]);
    assert!(!expert.contains("steerlab"), "{expert}");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn the_dissector_shows_hello_and_a_refused_flow_with_its_reason() {
    if !have_tshark() {
        return;
    }
    // A user whose second flow the gateway's group policy blocks, over the TLS tunnel.
    let base = root().join("scenarios/tenant/group-move-gateway-policy.toml");
    let text = std::fs::read_to_string(&base)
        .unwrap()
        .replacen(
            "user = \"bob@acme.com\"\n",
            "user = \"bob@acme.com\"\ntunnel = \"tls\"\n",
            1,
        )
        .replace("tunnel = \"DTLS\"", "tunnel = \"TLS\"");
    let s = scenario::load_str(&text, &base).unwrap();
    let rec = Recorder::new(s.client.ip);
    let report = world::run_with(&s, None, Some(rec.clone())).unwrap();
    assert!(steerlab::expect::check(&s.expect, &report).is_empty());
    let path = std::env::temp_dir().join(format!("steerlab-hello-{}.pcapng", std::process::id()));
    let epoch = std::time::Duration::from_millis(s.clock_unix_ms as u64);
    std::fs::write(&path, rec.to_pcapng(epoch)).unwrap();

    let frames = tunnel_frames(&path, &[]);
    assert!(
        frames
            .iter()
            .any(|f| f[0] == "8" && f[1] == "0" && f[5] == "bob@acme.com"),
        "no Hello: {frames:?}"
    );
    let refused: Vec<_> = frames.iter().filter(|f| f[0] == "3").collect();
    assert_eq!(refused.len(), 1, "{frames:?}");
    assert!(refused[0][4].contains("blocked by policy"), "{refused:?}");
    assert_eq!(refused[0][1], "2", "the second flow is refused");
    std::fs::remove_file(&path).unwrap();
}

/// Data and Close, and frames split across TCP segments, on framing sent in clear
/// (tshark's "Decode As" on a TCP port): the dissector reassembles what a segment cuts.
#[test]
fn the_dissector_reassembles_frames_cut_across_segments() {
    use agent::wire::Frame;
    if !have_tshark() {
        return;
    }
    let mut stream = bytes::BytesMut::new();
    let frames = [
        Frame::Open {
            flow: 3,
            target: "www.box.com:443".into(),
            process: "chrome.exe".into(),
        },
        Frame::Data {
            flow: 3,
            bytes: bytes::Bytes::from(vec![0x16; 3000]),
        },
        Frame::Close { flow: 3 },
    ];
    for frame in &frames {
        frame.encode(&mut stream);
    }
    // Segments cut mid-header and mid-payload.
    let cuts = [0, 4, 40, 1500, stream.len()];
    let mut pcap = pcap_file::pcap::PcapWriter::new(Vec::new()).unwrap();
    let (client, server) = ([10, 0, 0, 10], [8, 36, 116, 35]);
    let mut seq = 1_000_u32;
    for (i, window) in cuts.windows(2).enumerate() {
        let payload = &stream[window[0]..window[1]];
        let mut frame = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(client, server, 64)
            .tcp(49_152, 4443, seq, 64_240)
            .psh()
            .ack(1)
            .write(&mut frame, payload)
            .unwrap();
        let at = std::time::Duration::from_millis(i as u64);
        pcap.write_packet(&pcap_file::pcap::PcapPacket::new(
            at,
            frame.len() as u32,
            &frame,
        ))
        .unwrap();
        seq += payload.len() as u32;
    }
    let path = std::env::temp_dir().join(format!("steerlab-cut-{}.pcap", std::process::id()));
    std::fs::write(&path, pcap.into_writer()).unwrap();

    let frames = tunnel_frames(&path, &["-d", "tcp.port==4443,steerlab"]);
    let kinds: Vec<&str> = frames.iter().flat_map(|f| f[0].split(',')).collect();
    assert_eq!(kinds, ["1", "4", "5"], "{frames:?}");
    let data = frames
        .iter()
        .find(|f| f[0].split(',').any(|k| k == "4"))
        .unwrap();
    assert!(data[6].split(',').any(|len| len == "3000"), "{data:?}");
    let open = &frames[0];
    assert_eq!(
        (open[2].as_str(), open[3].as_str()),
        ("www.box.com:443", "chrome.exe")
    );
    std::fs::remove_file(&path).unwrap();
}

/// `--pcap-hosts`: every host's file carries the secrets of the sessions it shows, so the
/// PoP's own capture shows the tunnel's frames and the DoH server's its queries.
#[test]
fn the_hosts_captures_decrypt_too() {
    if !have_tshark() {
        return;
    }
    let file = "scenarios/steering/cloud-apps-managed-tunneled.toml";
    let s = scenario::load_file(Path::new(file)).unwrap();
    let tap = world::tap::HostTap::new();
    let captures = world::Captures {
        endpoint: None,
        hosts: Some(tap.clone()),
    };
    world::run_capturing(&s, None, captures).unwrap();
    let epoch = std::time::Duration::from_millis(s.clock_unix_ms as u64);
    let dir = std::env::temp_dir().join(format!("steerlab-hosts-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (host, bytes) in tap.to_pcapng(epoch) {
        std::fs::write(dir.join(format!("{host}.pcapng")), bytes).unwrap();
    }
    let opens: Vec<String> = tunnel_frames(&dir.join("nyc1.pcapng"), &[])
        .into_iter()
        .filter(|f| f[0] == "1")
        .map(|f| f[2].clone())
        .collect();
    assert_eq!(opens, ["www.box.com:443"]);
    let doh = tshark(
        &dir.join("doh.pcapng"),
        &["-Y", "tls && dns", "-T", "fields", "-e", "dns.qry.name"],
    );
    assert!(doh.contains("gateway-acme.goskope.com"), "{doh}");
    std::fs::remove_dir_all(&dir).unwrap();
}
