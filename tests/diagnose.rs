//! `steerlab diagnose` on the customer logs under tests/fixtures/customers (each with the
//! conclusions it must reach in expected.json), on rotated logs, bundles (folder and
//! zip), a capture, and on bad evidence.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use common::steerlab;

const CUSTOMERS: &str = "tests/fixtures/customers";

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("steerlab-diagnose-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn diagnose(args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut all = vec!["diagnose", "--json"];
    all.extend_from_slice(args);
    let out = steerlab(&all);
    (out.status.code(), json_of(&out))
}

/// The fields expected.json names, as the diagnosis gives them.
fn conclusions(v: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "resolved_by": v["resolved_by"],
        "tunnel": v["tunnel"],
        "gateway_ip": v["gateway_ip"],
        "failover": v["failover"],
        "proxy": v["proxy"],
        "causes": v["causes"],
        "flows": v["flows"],
    })
}

/// A drafted scenario passes `steerlab run` (exit 0).
fn assert_runs(scenario: &Path, name: &str) {
    let run = steerlab(&["run", scenario.to_str().unwrap()]);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{name}: {}",
        String::from_utf8_lossy(&run.stdout)
    );
}

#[test]
fn every_customer_log_is_diagnosed_as_expected_and_its_scenario_tells_the_same_story() {
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(CUSTOMERS))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
    dirs.sort();
    assert!(dirs.len() >= 5, "five customer logs at least: {dirs:?}");
    let out_dir = temp("customers");
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let log = dir.join("nsdebuglog.log");
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap())
                .unwrap();
        let scenario = out_dir.join(format!("{name}.toml"));
        let (code, v) = diagnose(&[log.to_str().unwrap(), "--out", scenario.to_str().unwrap()]);
        assert_eq!(code, Some(0), "{name}: {v:#}");
        assert_eq!(conclusions(&v), expected, "{name}");
        assert!(v["divergence"].is_null(), "{name}: {v:#}");
        assert_eq!(v["explained"]["lines"], v["explained"]["of"], "{name}");
        assert_eq!(v["scenario"], scenario.to_str().unwrap(), "{name}");
        assert_runs(&scenario, &name);
        let compare = steerlab(&[
            "log",
            "compare",
            log.to_str().unwrap(),
            scenario.to_str().unwrap(),
        ]);
        assert_eq!(
            compare.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&compare.stdout)
        );
    }
}

#[test]
fn ambiguous_evidence_names_its_alternatives_and_what_tells_them_apart() {
    let (code, v) = diagnose(&[&format!("{CUSTOMERS}/udp-blocked/nsdebuglog.log")]);
    assert_eq!(code, Some(0));
    let alternatives = v["alternatives"].as_array().unwrap();
    let mtu = alternatives
        .iter()
        .find(|a| a["causes"] == serde_json::json!(["dtls-mtu"]))
        .unwrap_or_else(|| panic!("no MTU alternative: {v:#}"));
    assert!(mtu["tell_apart"].as_str().unwrap().contains("MTU"));
    // Unknown lines are kept and counted, never silently dropped.
    assert_eq!(v["unknown_lines"], 1, "{v:#}");
}

/// The udp-blocked log cut in two rotated files, given in any order, and as a bundle
/// folder and zip with its nsexception.json.
#[test]
fn rotated_logs_and_bundles_tell_the_same_story() {
    let text = std::fs::read_to_string(format!("{CUSTOMERS}/udp-blocked/nsdebuglog.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (old, new) = lines.split_at(8);
    let dir = temp("rotated");
    std::fs::write(dir.join("nsdebuglog.log.1"), old.join("\n") + "\n").unwrap();
    std::fs::write(dir.join("nsdebuglog.log"), new.join("\n") + "\n").unwrap();
    std::fs::write(
        dir.join("nsexception.json"),
        r#"{"domains": ["zoom.us", "*.zoom.us"], "ips": ["203.0.113.0/24"]}"#,
    )
    .unwrap();
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{CUSTOMERS}/udp-blocked/expected.json")).unwrap(),
    )
    .unwrap();
    let newest = dir.join("nsdebuglog.log");
    let oldest = dir.join("nsdebuglog.log.1");
    let (code, v) = diagnose(&[newest.to_str().unwrap(), oldest.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(conclusions(&v), expected);
    let (code, v) = diagnose(&[dir.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(conclusions(&v), expected);
    assert!(
        v["client"]["exceptions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "203.0.113.0/24"),
        "{v:#}"
    );
    // The same bundle as a zip.
    let zip_path = dir.join("bundle.zip");
    let file = std::fs::File::create(&zip_path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default();
    for name in ["nsdebuglog.log.1", "nsdebuglog.log", "nsexception.json"] {
        zip.start_file(format!("Logs/{name}"), opts).unwrap();
        zip.write_all(&std::fs::read(dir.join(name)).unwrap())
            .unwrap();
    }
    zip.finish().unwrap();
    let (code, v) = diagnose(&[zip_path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(conclusions(&v), expected);
    // Truncated: bad input, naming the file.
    let bytes = std::fs::read(&zip_path).unwrap();
    let cut = dir.join("cut.zip");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = steerlab(&["diagnose", cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cut.zip") && err.contains("zip"), "{err}");
}

#[test]
fn bad_evidence_is_refused_naming_the_file_and_line() {
    let dir = temp("bad");
    let empty = dir.join("nsdebuglog.log");
    std::fs::write(&empty, "").unwrap();
    let binary = dir.join("blob.log");
    std::fs::write(&binary, [0u8, 159, 146, 150, 0, 1, 2, 3, 255, 0, 7]).unwrap();
    let other = dir.join("zscaler.log");
    std::fs::write(
        &other,
        "2024/05/01 10:00:00.000 ZSATunnel p12 t34 4 ZscalerTunnel Tunnel state TUNNEL_FORWARDING\n2024/05/01 10:00:01.000 ZSATunnel p12 t34 4 ZscalerTunnel ping ok\n",
    )
    .unwrap();
    let prose = dir.join("notes.txt");
    std::fs::write(&prose, "the customer says it does not work\nsince Monday\n").unwrap();
    for (path, words) in [
        (&empty, "empty"),
        (&binary, "binary"),
        (&other, "another product"),
        (&prose, "no nsdebuglog lines"),
    ] {
        let out = steerlab(&["diagnose", path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", path.display());
        assert!(
            err.contains(path.to_str().unwrap()) && err.contains(words),
            "{err}"
        );
    }
    // The located ones name the line.
    let out = steerlab(&["diagnose", other.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("zscaler.log:1:"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = steerlab(&["diagnose", dir.join("missing.log").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

/// A capture alone: the same facts as the log (DoH unanswered, LDNS's answer, DTLS
/// unanswered then TLS); with the log as well, the log leads.
#[test]
fn a_capture_tells_the_facts_too() {
    let dir = temp("capture");
    let pcap = dir.join("udp.pcap");
    let scenario = dir.join("udp.toml");
    std::fs::write(
        &scenario,
        r#"name = "DoH and UDP 443 blocked"
duration = "30s"
[client]
tunnel = "dtls"
[network]
perimeter_firewall = ["block udp/443"]
[[pops]]
name = "nyc1"
location = "us-east"
ip = "8.36.116.35"
[[events]]
at = "0s"
do = "partition"
host = "doh"
[[events]]
at = "0s"
do = "start"
"#,
    )
    .unwrap();
    let run = steerlab(&[
        "run",
        scenario.to_str().unwrap(),
        "--pcap",
        pcap.to_str().unwrap(),
    ]);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
    let (code, v) = diagnose(&[pcap.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["tunnel"], "TLS", "{v:#}");
    assert_eq!(v["resolved_by"], "LDNS", "{v:#}");
    assert_eq!(v["gateway_ip"], "8.36.116.35", "{v:#}");
    let causes = v["causes"].as_array().unwrap();
    assert!(causes.iter().any(|c| c == "udp-443-blocked"), "{v:#}");
    assert!(causes.iter().any(|c| c == "doh-blocked"), "{v:#}");
    assert!(!v["capture_facts"].as_array().unwrap().is_empty());
}

/// Logs the simulator wrote for bundled scenarios, read back as a customer's: the
/// diagnosis names the scenario's cause (a fault that begins mid-session, UDP 443
/// blocked, none for a healthy steering setup), explains every line with no divergence,
/// and the scenario it drafts passes `steerlab run`.
#[test]
fn bundled_scenarios_logs_are_diagnosed_back_to_their_causes() {
    let dir = temp("bundled");
    let cases: [(&str, &[&str]); 6] = [
        (
            "scenarios/failover/gateway-partitioned-mid-session.toml",
            &["gateway-unreachable"],
        ),
        (
            "scenarios/tunnel/dtls-then-udp-blocked.toml",
            &["udp-443-blocked"],
        ),
        ("scenarios/steering/web-exceptions-and-private.toml", &[]),
        // A mode change on a pull: the draft has the control plane and the admin's event.
        ("scenarios/tenant/policy-change-on-next-pull.toml", &[]),
        // A refusal for a group after a flow let through: the admin moved the user.
        ("scenarios/tenant/group-move-gateway-policy.toml", &[]),
        ("scenarios/tenant/lost-device.toml", &[]),
    ];
    for (k, (scenario, causes)) in cases.into_iter().enumerate() {
        let log = dir.join(format!("{k}.log"));
        let drafted = dir.join(format!("{k}.toml"));
        let run = steerlab(&["run", scenario, "--log", log.to_str().unwrap()]);
        assert_eq!(run.status.code(), Some(0), "{scenario}");
        let (code, v) = diagnose(&[log.to_str().unwrap(), "--out", drafted.to_str().unwrap()]);
        assert_eq!(code, Some(0), "{scenario}: {v:#}");
        assert_eq!(v["causes"], serde_json::json!(causes), "{scenario}: {v:#}");
        assert!(v["divergence"].is_null(), "{scenario}: {v:#}");
        assert_eq!(v["explained"]["lines"], v["explained"]["of"], "{scenario}");
        assert_runs(&drafted, scenario);
    }
}
