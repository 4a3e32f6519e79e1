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
