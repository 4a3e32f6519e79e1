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
