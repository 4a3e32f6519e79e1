//! Parity: a scenario run in simulation and the same topology in real mode (`steerlab
//! serve` and `steerlab agent --connect`, on loopback) give the same agent log, line for
//! line, once timestamps, addresses and ports are masked; and the same story on meaning
//! (`logs::events`).

#![allow(
    clippy::disallowed_methods,
    reason = "real mode: servers and clients run on the real clock"
)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use steerlab::logs::events::first_divergence;
use steerlab::logs::parse::parse_log;

#[test]
fn doh_partitioned_far_pop_is_the_same_story_on_loopback() {
    // DoH is silent from t = 0: the agent waits out its 10 s DoH timeout on real time too.
    parity(
        "scenarios/pop-selection/doh-partitioned-ldns-far-pop.toml",
        "127.0.2.10",
    );
}

#[test]
fn doh_happy_path_is_the_same_story_on_loopback() {
    let keys = parity("scenarios/pop-selection/doh-happy-path.toml", "127.0.3.10");
    // `--keylog`: the agent and the servers each wrote the secrets of their TLS sessions,
    // and a DoH session's secrets are the same seen from both ends.
    let (serve, agent) = keys;
    assert!(
        agent.contains("CLIENT_TRAFFIC_SECRET_0 "),
        "agent key log: {agent}"
    );
    let agent_lines: std::collections::BTreeSet<&str> = agent.lines().collect();
    assert!(
        serve.lines().any(|l| agent_lines.contains(l)),
        "no session in both key logs:\n--- serve\n{serve}\n--- agent\n{agent}"
    );
}

#[test]
fn dtls_default_is_the_same_story_on_loopback() {
    parity("scenarios/tunnel/dtls-default.toml", "127.0.4.10");
}

/// Kills a child process when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the parity check; returns the key logs (`--keylog`) that serve and the agent
/// wrote.
fn parity(scenario: &str, base: &str) -> (String, String) {
    let s = steerlab::scenario::load_file(Path::new(scenario)).expect("scenario loads");
    let sim = steerlab::world::run(&s, None).expect("simulation runs").log;
    assert!(!sim.is_empty());

    let name = Path::new(scenario)
        .file_stem()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let out = std::env::temp_dir().join(format!("steerlab-parity-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&out).expect("a temporary folder");
    let (serve_keys, agent_keys) = (out.join("serve-keys.log"), out.join("agent-keys.log"));
    let _serve = Reaped(
        Command::new(env!("CARGO_BIN_EXE_steerlab"))
            .args(["serve", scenario, "--base", base, "--stop-on-eof", "--dir"])
            .arg(&out)
            .arg("--keylog")
            .arg(&serve_keys)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("steerlab serve starts"),
    );
    let info = out.join("serve.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !info.exists() {
        assert!(Instant::now() < deadline, "no serve.json after 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut agent = Reaped(
        Command::new(env!("CARGO_BIN_EXE_steerlab"))
            .args(["agent", "--for", "40s", "--connect"])
            .arg(&info)
            .arg("--keylog")
            .arg(&agent_keys)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("steerlab agent starts"),
    );
    let stdout = agent.0.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // As many lines as the simulation wrote, or until the agent stops.
    let mut real = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(45);
    while real.len() < sim.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => real.push(line),
            Err(_) => break,
        }
    }
    // A moment for lines the simulation did not write (there should be none).
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
        real.push(line);
    }
    drop(agent);

    let sim_masked: Vec<String> = sim.iter().map(|l| mask(l)).collect();
    let real_masked: Vec<String> = real.iter().map(|l| mask(l)).collect();
    assert_eq!(
        real_masked,
        sim_masked,
        "\n--- simulation\n{}\n--- real mode\n{}",
        sim.join("\n"),
        real.join("\n")
    );
    let left = parse_log(&sim.join("\n")).expect("a log");
    let right = parse_log(&real.join("\n")).expect("a log");
    assert_eq!(first_divergence(&left, &right), None);
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    (read(&serve_keys), read(&agent_keys))
}

/// The line without its timestamp, with every IPv4 address and port replaced.
fn mask(line: &str) -> String {
    let rest = line.splitn(3, ' ').nth(2).unwrap_or(line);
    let mut out = String::new();
    let chars: Vec<char> = rest.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() && (i == 0 || !chars[i - 1].is_ascii_alphanumeric()) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let word = word.trim_end_matches('.');
            let after_colon = start > 0 && chars[start - 1] == ':';
            let after_port = out.ends_with("port ");
            if word.parse::<std::net::Ipv4Addr>().is_ok() {
                out.push_str("<ip>");
            } else if after_colon || after_port {
                out.push_str("<port>");
            } else {
                out.push_str(word);
            }
            // A sentence's final dot.
            if chars[start..i].ends_with(&['.']) {
                out.push('.');
            }
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

#[test]
fn masking_keeps_the_words() {
    assert_eq!(
        mask(
            "2019/10/14 11:40:49.010 stAgentSvc p1 t1 4 nsssl TLS remote host gateway-acme.goskope.com resolved to 8.36.117.35, port 443"
        ),
        "stAgentSvc p1 t1 4 nsssl TLS remote host gateway-acme.goskope.com resolved to <ip>, port <port>"
    );
    assert_eq!(
        mask(
            "2019/10/14 11:40:49.280 stAgentSvc p1 t1 4 nsTunnel TLS [sessId 1] SSL connected to the server: gateway-acme.goskope.com:443 successfully"
        ),
        "stAgentSvc p1 t1 4 nsTunnel TLS [sessId 1] SSL connected to the server: gateway-acme.goskope.com:<port> successfully"
    );
}
