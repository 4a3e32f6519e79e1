//! `steerlab log parse` and `steerlab log compare` on a customer log in the real client's
//! shape (source lines, hex thread ids, an entry wrapped over two lines).

mod common;

use common::steerlab;

const CUSTOMER: &str = "tests/fixtures/customer-doh-timeout.log";

#[test]
fn parse_tells_the_story() {
    let out = steerlab(&["log", "parse", CUSTOMER]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for step in [
        "DoH download failed (curl 28)",
        "failed to resolve by EDNS",
        "resolved by LDNS",
        "gateway-acme.goskope.com -> 8.36.117.35",
        "TLS tunnel connected",
        "flow to www.box.com tunneled",
    ] {
        assert!(text.contains(step), "missing `{step}` in:\n{text}");
    }
    let json = steerlab(&["log", "parse", CUSTOMER, "--json"]);
    let first = String::from_utf8_lossy(&json.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["entry"]["component"], "nsTunnel");
    assert_eq!(v["detail"]["event"], "connecting");
}

#[test]
fn compare_finds_the_first_divergence() {
    // The far-PoP scenario tells the customer's story up to the tunnel; the customer's
    // log goes on with a flow the scenario does not have.
    let out = steerlab(&[
        "log",
        "compare",
        CUSTOMER,
        "scenarios/pop-selection/doh-partitioned-ldns-far-pop.toml",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("customer line 8: flow to www.box.com tunneled"),
        "{text}"
    );
    assert!(text.contains("simulated: (ends here)"), "{text}");
    // The happy path diverges at once: EDNS answered.
    let out = steerlab(&[
        "log",
        "compare",
        CUSTOMER,
        "scenarios/pop-selection/doh-happy-path.toml",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("+ simulated line") && text.contains("resolved by EDNS"),
        "{text}"
    );
}

#[test]
fn not_a_log_is_bad_input() {
    let out = steerlab(&["log", "parse", "Cargo.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no nsdebuglog lines found"));
}

#[test]
fn a_drafted_scenario_runs_and_reproduces_the_log() {
    let out = std::env::temp_dir().join(format!("steerlab-draft-{}.toml", std::process::id()));
    let parse = steerlab(&[
        "log",
        "parse",
        CUSTOMER,
        "--emit-scenario",
        out.to_str().unwrap(),
    ]);
    assert_eq!(parse.status.code(), Some(0));
    let run = steerlab(&["run", out.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "{text}");
    assert!(text.contains("resolved by LDNS"), "{text}");
}
