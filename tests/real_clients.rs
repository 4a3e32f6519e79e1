//! Real clients against `steerlab serve` on loopback: dig against the local resolver,
//! kdig +https and curl --doh-url against DoH, curl against GSLB and through the CONNECT
//! proxy, openssl s_client against a gateway with the tenant CA (verified) and the public
//! CA (refused). Every test runs the command line `serve.json` prints for it, asserts on
//! the answer, and skips with a reason when its tool is not installed. Loopback only.

#![allow(
    clippy::disallowed_methods,
    reason = "real mode: servers and clients run on the real clock"
)]

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use steerlab::real::ServeInfo;

/// A world with every service answering: two PoPs, a backup, an origin, a proxy.
const SCENARIO: &str = r#"
name = "Real clients: every service answering"
seed = 7
duration = "30s"

[tenant]
name = "acme"
gslb = true

[client]
ip = "10.173.13.40"
location = "us-east"
tunnel = "tls"

[dns]
ldns = "10.0.0.53"
ldns_location = "eu-west"

[network]
proxy = { address = "10.10.10.11:8080", discovery = "manual" }

[[pops]]
name = "nyc1"
location = "us-east"
ip = "8.36.116.35"

[[pops]]
name = "fra1"
location = "eu-west"
ip = "8.36.117.35"

[backup]
ip = "8.36.118.35"

[[origins]]
host = "www.box.com"
ip = "107.152.27.197"

[[events]]
at = "0s"
do = "start"
"#;

/// `steerlab serve` in a child process, shared by every test of this file. Its standard
/// input is a pipe held here: when this process ends, serve reads its end and stops.
struct Serving {
    info: ServeInfo,
    child: Mutex<Child>,
}

fn serving() -> Option<&'static Serving> {
    static SERVING: OnceLock<Option<Serving>> = OnceLock::new();
    SERVING
        .get_or_init(|| {
            let dir =
                std::env::temp_dir().join(format!("steerlab-real-clients-{}", std::process::id()));
            std::fs::create_dir_all(&dir).ok()?;
            let scenario = dir.join("every-service.toml");
            std::fs::write(&scenario, SCENARIO).ok()?;
            match start(&scenario, &dir.join("out"), "127.0.1.10") {
                Ok(s) => Some(s),
                Err(e) => panic!("steerlab serve did not start: {e}"),
            }
        })
        .as_ref()
}

fn start(scenario: &Path, out: &Path, base: &str) -> Result<Serving, String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_steerlab"))
        .arg("serve")
        .arg(scenario)
        .arg("--dir")
        .arg(out)
        .args(["--base", base, "--stop-on-eof"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let info_path = out.join("serve.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(info) = ServeInfo::read(&info_path) {
            return Ok(Serving {
                info,
                child: Mutex::new(child),
            });
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            return Err(format!("exited with {status}: {err}"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err("no serve.json after 60 s".to_string());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether `tool` runs at all; prints why a test skips when it does not.
fn have(tool: &str, version_arg: &str) -> bool {
    let ok = Command::new(tool)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        println!("skipped: `{tool}` is not installed (apt-get install the package .ci/run names)");
    }
    ok
}

/// Runs a client line from serve.json (with extra arguments), with a time limit.
fn run(argv: &[String], extra: &[&str]) -> (bool, String) {
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", argv[0]));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{argv:?} took longer than 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut text = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut text);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut text);
    }
    (status.success(), text)
}

fn line<'a>(info: &'a ServeInfo, tool: &str, about: &str) -> &'a [String] {
    &info
        .clients
        .iter()
        .find(|c| c.tool == tool && c.about.contains(about))
        .unwrap_or_else(|| panic!("no {tool} line about {about:?} in serve.json"))
        .argv
}

fn ip_of(info: &ServeInfo, label: &str) -> Ipv4Addr {
    info.hosts
        .iter()
        .find(|h| h.label == label)
        .unwrap_or_else(|| panic!("no host {label}"))
        .ip
}

/// The A records of a dig or kdig answer section.
fn a_records(text: &str, name: &str) -> Vec<Ipv4Addr> {
    text.lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            match words.as_slice() {
                [owner, _ttl, "IN", "A", ip] if owner.trim_end_matches('.') == name => {
                    ip.parse().ok()
                }
                _ => None,
            }
        })
        .collect()
}

#[test]
fn dig_gets_the_gateway_from_the_local_resolver() {
    if !have("dig", "-v") {
        return;
    }
    let Some(s) = serving() else { return };
    let (ok, text) = run(line(&s.info, "dig", "local resolver"), &[]);
    assert!(ok, "{text}");
    // The resolver answers for its own egress (eu-west): the Frankfurt PoP.
    assert_eq!(
        a_records(&text, "gateway-acme.goskope.com"),
        vec![ip_of(&s.info, "fra1")],
        "{text}"
    );
    assert!(text.contains("status: NOERROR"), "{text}");
}

#[test]
fn dig_gets_nxdomain_for_a_name_the_world_does_not_know() {
    if !have("dig", "-v") {
        return;
    }
    let Some(s) = serving() else { return };
    let mut argv = line(&s.info, "dig", "local resolver").to_vec();
    argv.retain(|a| a != "gateway-acme.goskope.com");
    let (_, text) = run(&argv, &["no-such-host.example.com", "+tcp"]);
    assert!(text.contains("status: NXDOMAIN"), "{text}");
}

#[test]
fn kdig_over_https_gets_the_pop_nearest_the_client() {
    if !have("kdig", "--version") {
        return;
    }
    let Some(s) = serving() else { return };
    let (ok, text) = run(line(&s.info, "kdig", "DNS over HTTPS"), &[]);
    assert!(ok, "{text}");
    // Asked from 127.0.0.1, which stands where the client does (us-east): New York.
    assert_eq!(
        a_records(&text, "gateway-acme.goskope.com"),
        vec![ip_of(&s.info, "nyc1")],
        "{text}"
    );
}

#[test]
fn curl_resolves_by_doh_then_gets_the_pop_list() {
    if !have("curl", "--version") {
        return;
    }
    let Some(s) = serving() else { return };
    let (ok, text) = run(line(&s.info, "curl", "by DoH"), &[]);
    if !ok && text.contains("option --doh-url") {
        println!("skipped: this curl has no DNS over HTTPS: {text}");
        return;
    }
    assert!(ok, "{text}");
    let pops = pop_names(&text);
    assert_eq!(pops, vec!["nyc1", "fra1"], "{text}");
}

#[test]
fn curl_gets_the_ranked_pops_from_gslb() {
    if !have("curl", "--version") {
        return;
    }
    let Some(s) = serving() else { return };
    let (ok, text) = run(line(&s.info, "curl", "GSLB API"), &[]);
    assert!(ok, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect(&text);
    let pops = v["pops"].as_array().expect("a pops array");
    assert_eq!(pop_names(&text), vec!["nyc1", "fra1"], "{text}");
    for pop in pops {
        let ip: Ipv4Addr = pop["ip"].as_str().and_then(|i| i.parse().ok()).expect("ip");
        assert!(ip.is_loopback(), "{text}");
        assert_eq!(ip, ip_of(&s.info, pop["name"].as_str().unwrap_or("")));
    }
}

#[test]
fn curl_through_the_connect_proxy_reaches_the_origin() {
    if !have("curl", "--version") {
        return;
    }
    let Some(s) = serving() else { return };
    let (ok, text) = run(line(&s.info, "curl", "CONNECT proxy"), &[]);
    assert!(ok, "{text}");
    assert_eq!(text, "origin www.box.com\n");
    // A name the world does not know: the proxy answers 502.
    let mut argv = line(&s.info, "curl", "CONNECT proxy").to_vec();
    argv.pop();
    let (ok, text) = run(&argv, &["https://example.net/"]);
    assert!(!ok, "{text}");
    assert!(text.contains("502"), "{text}");
}

#[test]
fn openssl_verifies_the_gateway_with_the_tenant_ca_only() {
    if !have("openssl", "version") {
        return;
    }
    let Some(s) = serving() else { return };
    let argv = line(&s.info, "openssl", "tenant CA");
    let (_, text) = run(argv, &[]);
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
    assert!(text.contains("gateway-acme.goskope.com"), "{text}");
    // The same gateway checked against the public CA: not trusted.
    let tenant = s.info.ca.tenant.display().to_string();
    let public = s.info.ca.public.display().to_string();
    let other: Vec<String> = argv
        .iter()
        .map(|a| {
            if *a == tenant {
                public.clone()
            } else {
                a.clone()
            }
        })
        .collect();
    let (_, text) = run(&other, &[]);
    let code = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Verify return code: "))
        .unwrap_or_else(|| panic!("no verify result: {text}"));
    // 19: the tenant CA in the chain is not one openssl was told to trust.
    assert!(!code.starts_with("0 "), "{text}");
}

#[test]
fn serve_json_stays_on_loopback_and_names_its_files() {
    let Some(s) = serving() else { return };
    assert!(s.info.hosts.iter().all(|h| h.ip.is_loopback()));
    for file in [&s.info.ca.public, &s.info.ca.tenant, &s.info.endpoint.cert] {
        let text = std::fs::read_to_string(file).expect("a PEM file");
        assert!(text.starts_with("-----BEGIN CERTIFICATE-----\n"), "{text}");
    }
    assert!(
        s.info
            .clients
            .iter()
            .any(|c| c.line.starts_with("openssl s_client"))
    );
}

#[test]
fn a_bad_scenario_exits_2_with_its_place() {
    let dir = std::env::temp_dir().join(format!("steerlab-real-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bad: PathBuf = dir.join("bad.toml");
    std::fs::write(&bad, "name = \"x\"\nseed = \"seven\"\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_steerlab"))
        .arg("serve")
        .arg(&bad)
        .arg("--dir")
        .arg(dir.join("out"))
        .output()
        .expect("steerlab runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:2:"), "{err}");
}

#[test]
fn a_base_off_loopback_is_refused() {
    let dir = std::env::temp_dir().join(format!("steerlab-real-base-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_steerlab"))
        .args([
            "serve",
            "scenarios/pop-selection/doh-happy-path.toml",
            "--base",
            "10.0.0.1",
        ])
        .arg("--dir")
        .arg(&dir)
        .output()
        .expect("steerlab runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a loopback address"), "{err}");
}

#[test]
fn a_second_serve_on_the_same_addresses_says_the_port_is_in_use() {
    let Some(s) = serving() else { return };
    let dir = std::env::temp_dir().join(format!("steerlab-real-twice-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_steerlab"))
        .arg("serve")
        .arg(&s.info.scenario)
        .args(["--base", "127.0.1.10", "--dir"])
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("steerlab runs");
    assert_eq!(out.status.code(), Some(2));
    // As root, DoH's 127.0.1.10:443 is taken; otherwise DoH falls back to an ephemeral
    // port and the proxy's 8080 is the first one taken.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already in use"), "{err}");
    assert!(err.contains("127.0.1."), "{err}");
    assert!(!dir.join("serve.json").exists());
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_serve_cleanly() {
    let dir = std::env::temp_dir().join(format!("steerlab-real-sigint-{}", std::process::id()));
    let out = dir.join("out");
    let serving = start(
        Path::new("scenarios/pop-selection/doh-happy-path.toml"),
        &out,
        "127.0.7.10",
    )
    .expect("serve starts");
    let mut child = serving.child.into_inner().expect("the child");
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-INT", &pid]).status();
    assert!(sent.is_ok_and(|s| s.success()), "kill -INT {pid}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "serve still runs after Ctrl-C");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(err.contains("stopping (Ctrl-C)"), "{err}");
    assert!(!out.join("serve.json").exists());
    assert!(out.join("tenant-ca.pem").exists());
}

/// As a user who may not bind ports below 1024 (root here, dropping to `nobody` with
/// setpriv): every service gets an ephemeral port, and the agent still gets its tunnel.
#[cfg(unix)]
#[test]
fn without_privileged_ports_serve_falls_back_and_the_agent_still_connects() {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root || !have("setpriv", "--version") {
        println!("skipped: needs root and setpriv to run serve as an unprivileged user");
        return;
    }
    let dir = std::env::temp_dir().join(format!("steerlab-real-unpriv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let scenario = dir.join("happy.toml");
    std::fs::copy("scenarios/pop-selection/doh-happy-path.toml", &scenario).expect("copy");
    let open = |p: &Path, mode: &str| {
        let _ = Command::new("chmod").arg(mode).arg(p).status();
    };
    open(&dir, "777");
    open(&scenario, "644");
    let out = dir.join("out");
    let mut serve = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_steerlab"))
        .arg("serve")
        .arg(&scenario)
        .arg("--dir")
        .arg(&out)
        .args(["--base", "127.0.9.10", "--stop-on-eof"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("setpriv runs");
    let deadline = Instant::now() + Duration::from_secs(60);
    let info = loop {
        if let Ok(info) = ServeInfo::read(&out.join("serve.json")) {
            break info;
        }
        if Instant::now() > deadline || serve.try_wait().ok().flatten().is_some() {
            let _ = serve.kill();
            let mut err = String::new();
            if let Some(mut e) = serve.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!("unprivileged serve did not start: {err}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(info.ephemeral_ports);
    assert!(info.ldns.port() >= 1024 && info.doh.addr.port() >= 1024);
    assert!(info.gateway_port >= 1024);
    let agent = Command::new(env!("CARGO_BIN_EXE_steerlab"))
        .args(["agent", "--for", "3s", "--connect"])
        .arg(out.join("serve.json"))
        .output()
        .expect("steerlab agent runs");
    drop(serve.stdin.take());
    let _ = serve.wait();
    let log = String::from_utf8_lossy(&agent.stdout);
    let summary = String::from_utf8_lossy(&agent.stderr);
    assert!(log.contains("Tunnel status NSTUNNEL_CONNECTED"), "{log}");
    assert!(
        summary.contains(&format!(
            "tunnel TLS to nyc1 ({}:{})",
            ip_of(&info, "nyc1"),
            info.gateway_port
        )),
        "{summary}"
    );
    let mut printed = String::new();
    if let Some(mut o) = serve.stdout.take() {
        let _ = o.read_to_string(&mut printed);
    }
    assert!(printed.contains("ephemeral ports"), "{printed}");
}

/// The tenant's control plane on loopback: the real agent downloads its configuration
/// and reports its tunnel; the REST API, asked with curl, lists the device and its user.
#[test]
fn the_agent_reports_to_the_control_plane_and_curl_sees_the_device() {
    if !have("curl", "--version") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("steerlab-real-tenant-{}", std::process::id()));
    let s = start(
        Path::new("scenarios/tenant/config-pull-applies-live.toml"),
        &dir.join("out"),
        "127.0.10.10",
    )
    .expect("serve starts");
    let agent = Command::new(env!("CARGO_BIN_EXE_steerlab"))
        .args(["agent", "--for", "3s", "--connect"])
        .arg(dir.join("out").join("serve.json"))
        .output()
        .expect("steerlab agent runs");
    let log = String::from_utf8_lossy(&agent.stdout);
    assert!(
        log.contains("Config Applied configuration version 1"),
        "{log}"
    );
    let (ok, text) = run(line(&s.info, "curl", "REST API"), &[]);
    assert!(ok, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).expect(&text);
    assert_eq!(v["total"], 1, "{text}");
    let device = &v["data"][0];
    assert_eq!(device["users"][0]["username"], "bob@acme.com", "{text}");
    assert_eq!(device["last_event"]["event"], "tunnel_up", "{text}");
    let mut child = s.child.into_inner().expect("the child");
    drop(child.stdin.take());
    let _ = child.wait();
}

fn pop_names(json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    v["pops"]
        .as_array()
        .map(|pops| {
            pops.iter()
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
