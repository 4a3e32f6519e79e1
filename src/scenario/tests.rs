//! Unit tests of the scenario loader: the contract example, defaults, every kind of
//! error with its position, and the small grammars.

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

use super::*;

/// The example block of `docs/scenario-format.md`, verbatim.
const EXAMPLE: &str = r#"name = "DoH blocked: agent falls back to LDNS"       # required
description = "free text shown by steerlab run"
seed = 7                 # default 0; same seed => byte-identical log and pcap
duration = "120s"        # simulated time to run; default "60s"
clock = "2019-10-14T11:40:40Z"   # simulated wall clock at t=0, for log timestamps

[tenant]
name = "acme"            # gateway-acme.goskope.com, gateway-backup-acme.goskope.com
region = ""              # "" | "eu" | "de" | "au"  -> acme.eu.goskope.com style names
gslb = false             # backend tenant flag that enables GSLB for clients >= 96.1

[client]
version = "95.1.0"       # < 96.1: DoH (EDNS) then LDNS; >= 96.1 with tenant.gslb: GSLB first
ip = "10.173.13.40"      # endpoint address; default "10.0.0.10"
location = "us-east"     # where the endpoint is; DoH with ECS and GSLB answer for it
tunnel = "dtls"          # preferred tunnel: "dtls" (UDP 443) | "tls" (TCP 443); default "dtls"
fail_close = false       # true: steered flows are blocked while no tunnel is up

[dns]
doh = "dns.google"       # DoH server name; default "dns.google"
ldns = "10.0.0.53"       # local resolver address; default "10.0.0.53"
ldns_location = "eu-west"  # where the local resolver's egress is; default client.location

[steering]
mode = "cloud-apps"      # "cloud-apps" (managed list only) | "web" (ports 80/443) | "all"
ports = [80, 443]        # default [80, 443]; ignored by mode "all"
managed = ["box.com", "*.box.com"]               # cloud-apps mode: domains to steer
exceptions = ["zoom.us", "*.zoom.us", "203.0.113.0/24", "198.51.100.7"]  # never steered
bypass_apps = ["zoom.us", "Teams.exe"]           # certificate-pinned apps, by process name
steer_dns = false        # mode "all" only: DNS also goes through the tunnel
private_apps = false     # RFC 1918 destinations are never steered unless true

[[pops]]                 # one or more gateway PoPs
name = "nyc1"
location = "us-east"
ip = "8.36.116.35"
latency = "12ms"         # one-way latency from the endpoint; default "20ms"
[[pops]]
name = "fra1"
location = "eu-west"
ip = "8.36.117.35"
latency = "90ms"

[backup]                 # gateway-backup-<tenant>: a gateway host of its own
ip = "8.36.118.35"       # default: an address the world picks
location = "eu-west"     # default: the second PoP's location
latency = "90ms"         # default "20ms"

[[origins]]              # servers on the internet that apps reach, directly or via the gateway
host = "www.box.com"
ip = "107.152.27.197"

[network]
# Ordered first-match rules, the host firewall on the endpoint first, then the perimeter.
# Rule grammar: ACTION [PROTO[/PORT]] [to TARGET]
#   ACTION: allow | block (silent drop) | reset (TCP RST / ICMP unreachable) | inspect (TLS
#   interception: re-signs with the firewall's own CA) | redirect (captive portal, HTTP 302)
#   PROTO: tcp | udp | dns | any ;  TARGET: a host name, "*.domain", an IP or a CIDR
host_firewall = ["allow tcp/443 to *.goskope.com", "block any"]
perimeter_firewall = ["block udp/443", "inspect tcp/443"]
proxy = { address = "10.10.10.11:8080", discovery = "manual" }   # "manual" | "pac" | "wpad"
pac = "function FindProxyForURL(url, host) { return 'PROXY 10.10.10.11:8080'; }"
direct_egress = true     # false: only the proxy reaches the internet

[[events]]               # what happens, in simulated time
at = "0s"
do = "start"             # start the agent
[[events]]
at = "30s"
do = "connect"           # an app resolves the host through the OS, then opens TCP
process = "chrome.exe"
target = "www.box.com:443"
via_proxy = false        # true: the app uses the explicit proxy with HTTP CONNECT
[[events]]
at = "60s"
do = "rule"              # add a firewall rule at run time
where = "perimeter"      # "host" | "perimeter"
rule = "block udp/443"
[[events]]
at = "90s"
do = "partition"         # cut a host off silently (connects hang until timeouts); "repair" heals it
host = "nyc1"            # a PoP name, "backup", "doh", "ldns", "gslb", "proxy" or an origin host

[expect]                 # checked at the end of the run; a miss fails the test with a diff
resolved_by = "LDNS"     # "GSLB" | "EDNS" | "LDNS"
gateway = "nyc1"         # PoP name the tunnel ends at, or "backup"
tunnel = "TLS"           # "DTLS" | "TLS" | "down"
[[expect.flows]]         # every flow the run saw, matched in order of appearance
process = "chrome.exe"
host = "www.box.com"
verdict = "tunneled"     # "tunneled" | "bypassed" | "direct" | "blocked"
"#;

/// The smallest valid scenario.
const MINIMAL: &str =
    "name = \"m\"\n[[pops]]\nname = \"nyc1\"\nlocation = \"us-east\"\nip = \"8.36.116.35\"\n";

fn load(text: &str) -> Result<Scenario, LoadError> {
    load_str(text, Path::new("scenarios/t.toml"))
}

fn fail(text: &str) -> LoadError {
    match load(text) {
        Ok(s) => panic!("expected an error, loaded {s:?}"),
        Err(e) => e,
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn contract_example_loads() -> Result<(), LoadError> {
    let s = load(EXAMPLE)?;
    assert_eq!(s.name, "DoH blocked: agent falls back to LDNS");
    assert_eq!(s.description, "free text shown by steerlab run");
    assert_eq!((s.seed, s.duration), (7, Duration::from_secs(120)));
    assert_eq!(s.clock_unix_ms, 1_571_053_240_000);
    assert_eq!(
        s.tenant,
        Tenant {
            name: "acme".into(),
            region: Region::Global,
            gslb: false
        }
    );
    assert_eq!(s.client.version.parts, [95, 1, 0]);
    assert!(!s.client.version.at_least(96, 1) && s.client.version.at_least(95, 1));
    assert_eq!(s.client.ip, Ipv4Addr::new(10, 173, 13, 40));
    assert_eq!(
        (
            s.client.location.as_str(),
            s.client.tunnel,
            s.client.fail_close
        ),
        ("us-east", TunnelProto::Dtls, false)
    );
    assert_eq!(
        (s.dns.doh.as_str(), s.dns.ldns, s.dns.ldns_location.as_str()),
        ("dns.google", Ipv4Addr::new(10, 0, 0, 53), "eu-west")
    );
    assert_eq!(s.steering.mode, SteeringMode::CloudApps);
    assert_eq!(s.steering.ports, [80, 443]);
    assert_eq!(s.steering.managed, ["box.com", "*.box.com"]);
    assert_eq!(
        s.steering.exceptions,
        ["zoom.us", "*.zoom.us", "203.0.113.0/24", "198.51.100.7"]
    );
    assert_eq!(s.steering.bypass_apps, ["zoom.us", "Teams.exe"]);
    assert!(!s.steering.steer_dns && !s.steering.private_apps);
    let pops: Vec<_> = s
        .pops
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.location.as_str(),
                p.ip.to_string(),
                p.latency,
            )
        })
        .collect();
    assert_eq!(
        pops,
        [
            ("nyc1", "us-east", "8.36.116.35".into(), ms(12)),
            ("fra1", "eu-west", "8.36.117.35".into(), ms(90))
        ]
    );
    let backup = Backup {
        ip: Some(Ipv4Addr::new(8, 36, 118, 35)),
        location: Some("eu-west".into()),
        latency: ms(90),
        cert: CertKind::Trusted,
    };
    assert_eq!(s.backup, backup);
    assert_eq!(
        s.origins,
        [Origin {
            host: "www.box.com".into(),
            ip: Ipv4Addr::new(107, 152, 27, 197)
        }]
    );
    let texts = |rules: &[Rule]| rules.iter().map(Rule::to_string).collect::<Vec<_>>();
    assert_eq!(
        texts(&s.network.host_firewall),
        ["allow tcp/443 to *.goskope.com", "block any"]
    );
    assert_eq!(
        texts(&s.network.perimeter_firewall),
        ["block udp/443", "inspect tcp/443"]
    );
    assert_eq!(
        s.network.host_firewall[0].target,
        Some(RuleTarget::Wildcard("goskope.com".into()))
    );
    let proxy = Proxy {
        address: SocketAddrV4::new(Ipv4Addr::new(10, 10, 10, 11), 8080),
        discovery: ProxyDiscovery::Manual,
    };
    assert_eq!(s.network.proxy, Some(proxy));
    assert!(
        s.network
            .pac
            .as_deref()
            .is_some_and(|p| p.starts_with("function FindProxyForURL"))
    );
    assert!(s.network.direct_egress);
    let connect = EventAction::Connect {
        process: "chrome.exe".into(),
        host: "www.box.com".into(),
        port: 443,
        via_proxy: false,
    };
    let rule = EventAction::Rule {
        place: FirewallPlace::Perimeter,
        rule: Rule::parse("block udp/443").map_err(|e| fail(&e))?,
    };
    let events: Vec<_> = s
        .events
        .iter()
        .map(|e| (e.at.as_secs(), e.action.clone()))
        .collect();
    let partition = EventAction::Partition {
        host: "nyc1".into(),
    };
    assert_eq!(
        events,
        [
            (0, EventAction::Start),
            (30, connect),
            (60, rule),
            (90, partition)
        ]
    );
    assert_eq!(
        (
            s.expect.resolved_by,
            s.expect.gateway.as_deref(),
            s.expect.tunnel
        ),
        (Some(ResolvedBy::Ldns), Some("nyc1"), Some(TunnelState::Tls))
    );
    let flow = ExpectFlow {
        process: Some("chrome.exe".into()),
        host: Some("www.box.com".into()),
        verdict: Some(Verdict::Tunneled),
    };
    assert_eq!(s.expect.flows, Some(vec![flow]));
    Ok(())
}

#[test]
fn every_default() -> Result<(), LoadError> {
    let s = load(MINIMAL)?;
    assert_eq!(s.path, Path::new("scenarios/t.toml"));
    assert_eq!(
        (s.description.as_str(), s.seed, s.duration),
        ("", 0, Duration::from_secs(60))
    );
    assert_eq!(
        s.clock_unix_ms,
        parse_clock(DEFAULT_CLOCK).map_err(|e| fail(&e))?
    );
    assert_eq!(
        s.tenant,
        Tenant {
            name: "acme".into(),
            region: Region::Global,
            gslb: false
        }
    );
    let version = ClientVersion {
        text: "95.1.0".into(),
        parts: vec![95, 1, 0],
    };
    let client = Client {
        version,
        ip: Ipv4Addr::new(10, 0, 0, 10),
        location: "us-east".into(),
        tunnel: TunnelProto::Dtls,
        fail_close: false,
    };
    assert_eq!(s.client, client);
    assert_eq!(s.dns, Dns::default());
    assert_eq!(
        (s.dns.doh_behaviour, s.dns.ldns_behaviour, s.dns.doh_cert),
        (
            ServerBehaviour::Answer,
            ServerBehaviour::Answer,
            CertKind::Trusted
        )
    );
    assert_eq!(
        s.steering,
        Steering {
            mode: SteeringMode::CloudApps,
            ports: vec![80, 443],
            ..Steering::default()
        }
    );
    assert!(
        s.steering.managed.is_empty()
            && s.steering.exceptions.is_empty()
            && s.steering.bypass_apps.is_empty()
    );
    assert_eq!(
        (s.pops[0].latency, s.pops[0].cert),
        (ms(20), CertKind::Trusted)
    );
    assert_eq!(
        s.backup,
        Backup {
            ip: None,
            location: None,
            latency: ms(20),
            cert: CertKind::Trusted
        }
    );
    assert!(s.origins.is_empty() && s.events.is_empty());
    assert_eq!(
        s.network,
        Network {
            host_firewall: vec![],
            perimeter_firewall: vec![],
            proxy: None,
            pac: None,
            direct_egress: true
        }
    );
    assert_eq!(
        s.expect,
        Expect {
            resolved_by: None,
            gateway: None,
            tunnel: None,
            flows: None
        }
    );
    // ldns_location follows client.location.
    let s = load(&format!("{MINIMAL}[client]\nlocation = \"ap-south\"\n"))?;
    assert_eq!(s.dns.ldns_location, "ap-south");
    Ok(())
}

#[test]
fn extensions_load() -> Result<(), LoadError> {
    let text = format!(
        "{MINIMAL}cert = \"expired\"\n[dns]\ndoh_behaviour = \"http_503\"\nldns_behaviour = \"slow_answer:15s\"\ndoh_cert = \"untrusted\"\n\
         [backup]\ncert = \"untrusted\"\n[tenant]\nregion = \"eu\"\ngslb = true\n[client]\nversion = \"96.1\"\n\
         [[events]]\nat = \"5s\"\ndo = \"stop\"\n[[events]]\nat = \"1s\"\ndo = \"repair\"\nhost = \"DoH\"\n"
    );
    let s = load(&text)?;
    assert_eq!(s.pops[0].cert, CertKind::Expired);
    assert_eq!(s.dns.doh_behaviour, ServerBehaviour::HttpError(503));
    assert_eq!(
        s.dns.ldns_behaviour,
        ServerBehaviour::SlowAnswer(Duration::from_secs(15))
    );
    assert_eq!(
        (s.dns.doh_cert, s.backup.cert, s.tenant.region),
        (CertKind::Untrusted, CertKind::Untrusted, Region::Eu)
    );
    assert!(s.tenant.gslb && s.client.version.at_least(96, 1) && !s.client.version.at_least(96, 2));
    assert_eq!(
        s.events[0],
        Event {
            at: ms(1000),
            action: EventAction::Repair { host: "doh".into() }
        }
    );
    assert_eq!(
        s.events[1],
        Event {
            at: ms(5000),
            action: EventAction::Stop
        }
    );
    let s = load(&format!(
        "{MINIMAL}[dns]\ndoh_behaviour = \"slow_answer\"\n"
    ))?;
    assert_eq!(
        s.dns.doh_behaviour,
        ServerBehaviour::SlowAnswer(Duration::from_secs(30))
    );
    Ok(())
}

#[test]
fn unknown_key_suggests_and_points_at_it() {
    let text = format!("{MINIMAL}latncy = \"12ms\"\n");
    let e = fail(&text);
    assert_eq!((e.line, e.column), (6, 1));
    assert_eq!(e.message, "unknown key `latncy` in [[pops]]");
    assert_eq!(
        e.help.as_deref(),
        Some("did you mean `latency`? known keys: name, location, ip, latency, cert")
    );
    let shown = e.to_string();
    let expected = "error: unknown key `latncy` in [[pops]]\n --> scenarios/t.toml:6:1\n  |\n6 | latncy = \"12ms\"\n  | ^^^^^^\n  = help: did you mean `latency`? known keys: name, location, ip, latency, cert";
    assert_eq!(shown, expected);
}

#[test]
fn unknown_key_names_its_table() {
    let e = fail(&format!("nmae = \"x\"\n{MINIMAL}"));
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (1, 1, "unknown key `nmae` at the top level")
    );
    assert!(
        e.help
            .as_deref()
            .is_some_and(|h| h.starts_with("did you mean `name`?"))
    );
    let e = fail(&format!(
        "{MINIMAL}[network]\nproxy = {{ adress = \"10.0.0.1:8080\" }}\n"
    ));
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (7, 11, "unknown key `adress` in [network.proxy]")
    );
    let e = fail(&format!(
        "{MINIMAL}[[expect.flows]]\nverdikt = \"direct\"\n"
    ));
    assert_eq!(
        (e.line, e.message.as_str()),
        (7, "unknown key `verdikt` in [[expect.flows]]")
    );
    let e = fail(&format!(
        "{MINIMAL}[[events]]\nat = \"1s\"\ndo = \"start\"\nzzzz = 1\n"
    ));
    assert_eq!(
        e.help.as_deref(),
        Some("known keys: at, do, process, target, via_proxy, where, rule, host")
    );
}

#[test]
fn syntax_and_type_errors_point_at_the_spot() {
    let e = fail("name = \"x\"\nseed = \n");
    assert_eq!(e.line, 2);
    let e = fail("name = \"x\"\nseed = \"7\"\n");
    assert_eq!((e.line, e.column), (2, 8));
    let e = fail("name = 3\n");
    assert_eq!(
        (e.line, e.column, e.help.as_deref()),
        (1, 8, Some("write the value in double quotes"))
    );
    let e = fail(&format!("{MINIMAL}[steering]\nports = [80, 70000]\n"));
    assert_eq!((e.line, e.column), (7, 14));
}

#[test]
fn bad_duration_points_at_the_value() {
    let e = fail(&format!("{MINIMAL}latency = \"12\"\n"));
    assert_eq!((e.line, e.column, e.width), (6, 11, 4));
    assert_eq!(e.message, "`12` has no unit");
    assert_eq!(e.help.as_deref(), Some("write e.g. \"12s\" or \"12ms\""));
    let e = fail(&format!("duration = \"-5s\"\n{MINIMAL}"));
    assert!(e.message.contains("negative"));
}

#[test]
fn bad_rule_points_at_the_array_element() {
    let e = fail(&format!(
        "{MINIMAL}[network]\nperimeter_firewall = [\"block udp/443\", \"block 443\"]\n"
    ));
    assert_eq!((e.line, e.column, e.width), (7, 40, 11));
    assert_eq!(
        e.message,
        "a port needs a protocol: write \"tcp/443\" or \"udp/443\""
    );
    let e = fail(&format!(
        "{MINIMAL}[network]\nhost_firewall = [\"permit any\"]\n"
    ));
    assert_eq!(e.message, "unknown rule action `permit`");
    assert!(
        e.help.as_deref().is_some_and(
            |h| h.contains("\"allow\", \"block\", \"reset\", \"inspect\", \"redirect\"")
        )
    );
}

#[test]
fn unknown_event_host_lists_the_valid_ones() {
    let text = format!(
        "{MINIMAL}[[origins]]\nhost = \"www.box.com\"\nip = \"1.2.3.4\"\n[[events]]\nat = \"1s\"\ndo = \"partition\"\nhost = \"nyc2\"\n"
    );
    let e = fail(&text);
    assert_eq!((e.line, e.column), (12, 8));
    assert_eq!(e.message, "unknown host `nyc2` in partition event");
    let help = "did you mean \"nyc1\"? write one of \"nyc1\", \"backup\", \"doh\", \"ldns\", \"gslb\", \"proxy\", \"www.box.com\"";
    assert_eq!(e.help.as_deref(), Some(help));
}

#[test]
fn duplicate_and_reserved_pops() {
    let e = fail(&format!(
        "{MINIMAL}[[pops]]\nname = \"nyc1\"\nlocation = \"x\"\nip = \"1.1.1.1\"\n"
    ));
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (7, 8, "duplicate PoP name `nyc1`")
    );
    assert_eq!(
        e.help.as_deref(),
        Some("the first `nyc1` is on line 3; PoP names must be unique")
    );
    let e = fail("name = \"m\"\n[[pops]]\nname = \"backup\"\nlocation = \"x\"\nip = \"1.1.1.1\"\n");
    assert_eq!(e.message, "`backup` is reserved");
    let e = fail("name = \"m\"\n[[pops]]\nname = \"a\"\nip = \"1.1.1.1\"\n");
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (2, 1, "missing `location` in [[pops]]")
    );
}

#[test]
fn required_name_and_pops() {
    let e = fail("");
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (1, 1, "missing required key `name`")
    );
    let e = fail("name = \"  \"\n");
    assert_eq!(e.message, "empty name");
    let e = fail("name = \"x\"\n");
    assert!(e.message.starts_with("no [[pops]]"));
}

#[test]
fn event_checks() -> Result<(), LoadError> {
    let event = |body: &str| format!("{MINIMAL}[[events]]\n{body}");
    let e = fail(&event(
        "at = \"1s\"\ndo = \"partition\"\nhost = \"nyc1\"\nprocess = \"x\"\n",
    ));
    assert_eq!(
        (e.line, e.message.as_str()),
        (10, "`process` does not apply to do = \"partition\"")
    );
    assert_eq!(
        e.help.as_deref(),
        Some("do = \"partition\" takes at, do, host; remove `process`")
    );
    let e = fail(&event("at = \"61s\"\ndo = \"start\"\n"));
    assert_eq!(e.message, "event at 61s is after the end of the run");
    let e = fail(&event("at = \"1s\"\ndo = \"begin\"\n"));
    assert!(e.help.as_deref().is_some_and(|h| {
        h.contains("\"start\", \"stop\", \"connect\", \"rule\", \"partition\", \"repair\"")
    }));
    let e = fail(&event(
        "at = \"1s\"\ndo = \"connect\"\nprocess = \"a\"\ntarget = \"www.box.com:0\"\n",
    ));
    assert!(e.message.contains("not a port"));
    let e = fail(&event(
        "at = \"1s\"\ndo = \"connect\"\nprocess = \"a\"\ntarget = \"x.com:443\"\nvia_proxy = true\n",
    ));
    assert_eq!(e.message, "`via_proxy = true` but [network] has no proxy");
    let e = fail(&event(
        "at = \"1s\"\ndo = \"rule\"\nwhere = \"edge\"\nrule = \"block any\"\n",
    ));
    assert_eq!(e.message, "unknown firewall `edge`");
    let e = fail(&event("do = \"start\"\n"));
    assert_eq!(
        (e.line, e.message.as_str()),
        (6, "missing `at` in [[events]]")
    );
    // Same-time events keep their file order.
    let s = load(&format!(
        "{MINIMAL}[[events]]\nat=\"2s\"\ndo=\"stop\"\n[[events]]\nat=\"1s\"\ndo=\"start\"\n[[events]]\nat=\"2s\"\ndo=\"start\"\n"
    ))?;
    let order: Vec<_> = s
        .events
        .iter()
        .map(|e| (e.at.as_secs(), e.action.clone()))
        .collect();
    assert_eq!(
        order,
        [
            (1, EventAction::Start),
            (2, EventAction::Stop),
            (2, EventAction::Start)
        ]
    );
    Ok(())
}

#[test]
fn expect_checks() -> Result<(), LoadError> {
    let e = fail(&format!("{MINIMAL}[expect]\ngateway = \"fra1\"\n"));
    assert_eq!(
        (e.message.as_str(), e.help.as_deref()),
        (
            "unknown gateway `fra1`",
            Some("write one of \"nyc1\", \"backup\"")
        )
    );
    let e = fail(&format!(
        "{MINIMAL}[[expect.flows]]\nverdict = \"tunnelled\"\n"
    ));
    let help = "did you mean \"tunneled\"? write one of \"tunneled\", \"bypassed\", \"direct\", \"blocked\"";
    assert_eq!((e.line, e.column, e.help.as_deref()), (7, 11, Some(help)));
    let s = load(&format!(
        "{MINIMAL}[expect]\ntunnel = \"down\"\nflows = []\n"
    ))?;
    assert_eq!(
        (s.expect.tunnel, s.expect.flows),
        (Some(TunnelState::Down), Some(vec![]))
    );
    Ok(())
}

#[test]
fn server_behaviour_words() {
    let e = fail(&format!("{MINIMAL}[dns]\nldns_behaviour = \"http_503\"\n"));
    assert_eq!(e.message, "the local resolver speaks plain DNS, not HTTP");
    let e = fail(&format!("{MINIMAL}[dns]\ndoh_behaviour = \"http_200\"\n"));
    assert!(e.message.contains("not an HTTP error status"));
    let e = fail(&format!(
        "{MINIMAL}[dns]\ndoh_behaviour = \"slow_answer:soon\"\n"
    ));
    assert!(e.message.starts_with("bad slow_answer delay"));
}

#[test]
fn contract_words_serialize() {
    assert_eq!(
        serde_json::to_string(&Verdict::Bypassed).ok().as_deref(),
        Some("\"bypassed\"")
    );
    assert_eq!(
        serde_json::to_string(&ResolvedBy::Gslb).ok().as_deref(),
        Some("\"GSLB\"")
    );
    assert_eq!(
        serde_json::to_string(&TunnelState::Down).ok().as_deref(),
        Some("\"down\"")
    );
    assert_eq!(
        (TunnelState::Dtls.as_str(), ResolvedBy::Edns.to_string()),
        ("DTLS", "EDNS".to_owned())
    );
}

#[test]
fn duration_round_trips() {
    for text in [
        "250ms", "10s", "1.5s", "2m", "1h", "0s", "90s", "1.5ms", "0.001ms", "36h",
    ] {
        assert_eq!(
            parse_duration(text).map(format_duration).as_deref(),
            Ok(text),
            "{text}"
        );
    }
    assert_eq!(parse_duration("2.50s"), Ok(ms(2500)));
    assert_eq!(format_duration(ms(60_000)), "1m");
    assert_eq!(format_duration(Duration::new(1, 1)), "1.000000001s");
    for d in [
        Duration::MAX,
        Duration::new(12_345, 678_901_234),
        Duration::from_nanos(1),
    ] {
        assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{d:?}");
    }
    for bad in [
        "",
        "10",
        "-1s",
        "s",
        "1.s",
        ".5s",
        "1..5s",
        "5 s",
        "5sec",
        "1.0000000001ms",
        "99999999999999999999999h",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn rule_round_trips() -> Result<(), String> {
    for text in [
        "allow tcp/443 to *.goskope.com",
        "block any",
        "reset udp/53",
        "inspect tcp/443",
        "redirect tcp/80 to portal.example",
        "block dns to 8.8.8.8",
        "block any to 203.0.113.0/24",
        "allow any to 2001:db8::1",
    ] {
        let rule = Rule::parse(text)?;
        assert_eq!(rule.to_string(), text);
        assert_eq!(Rule::parse(&rule.to_string())?, rule);
    }
    let rule = Rule::parse("  block   to  Example.COM ")?;
    assert_eq!(
        (rule.proto, rule.to_string(), rule.text.as_str()),
        (
            RuleProto::Any,
            "block any to example.com".into(),
            "block   to  Example.COM"
        )
    );
    let dns = Rule::parse("allow dns")?;
    assert_eq!((dns.proto, dns.port), (RuleProto::Dns, None));
    assert_eq!(Rule::parse("allow tcp")?.target, None);
    assert_eq!(
        Rule::parse("block to 1.2.3.4")?.target,
        Some(RuleTarget::Ip(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4))))
    );
    for bad in [
        "",
        "deny any",
        "block 443",
        "block dns/53",
        "block any/443",
        "block tcp/0",
        "block tcp/70000",
        "block tcp to",
        "block to a b",
        "block 8.8.8.8",
        "block to *.",
        "block to 300.1.1.1",
        "block to 10.0.0.0/33",
    ] {
        assert!(Rule::parse(bad).is_err(), "{bad}");
    }
    Ok(())
}

#[test]
fn clock_parser_edges() {
    assert_eq!(parse_clock("1970-01-01T00:00:00Z"), Ok(0));
    assert_eq!(parse_clock("1969-12-31T23:59:59.999Z"), Ok(-1));
    assert_eq!(parse_clock("2019-10-14T11:40:40Z"), Ok(1_571_053_240_000));
    assert_eq!(
        parse_clock("2019-10-14T13:40:40+02:00"),
        Ok(1_571_053_240_000)
    );
    assert_eq!(
        parse_clock("2019-10-14T06:10:40-05:30"),
        Ok(1_571_053_240_000)
    );
    assert_eq!(parse_clock("2019-10-14t11:40:40.5z"), Ok(1_571_053_240_500));
    assert_eq!(
        parse_clock("2019-10-14T11:40:40.123456789Z"),
        Ok(1_571_053_240_123)
    );
    assert_eq!(parse_clock("2000-02-29T00:00:00Z"), Ok(951_782_400_000));
    assert_eq!(parse_clock("2024-02-29T12:00:00Z"), Ok(1_709_208_000_000));
    assert_eq!(parse_clock("2000-03-01T00:00:00Z"), Ok(951_868_800_000));
    for bad in [
        "1900-02-29T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "2019-04-31T00:00:00Z",
        "2019-13-01T00:00:00Z",
        "2019-10-14T24:00:00Z",
        "2019-10-14T11:40:60Z",
        "2019-10-14T11:40:40",
        "2019-10-14T11:40:40+2:00",
        "2019-10-14",
        "2019-10-14T11:40:40.Z",
        "2019-10-14T11:40:40+24:00",
        "２019-10-14T11:40:40Z",
    ] {
        assert!(parse_clock(bad).is_err(), "{bad}");
    }
    for ms in [
        0,
        -1,
        951_782_400_000,
        1_571_053_240_123,
        253_402_300_799_999,
    ] {
        assert_eq!(parse_clock(&format_clock(ms)), Ok(ms), "{ms}");
    }
}

#[test]
fn clock_key_accepts_toml_datetimes() -> Result<(), LoadError> {
    let s = load(&format!("clock = 2019-10-14T13:40:40+02:00\n{MINIMAL}"))?;
    assert_eq!(s.clock_unix_ms, 1_571_053_240_000);
    let e = fail(&format!("clock = 2019-10-14T11:40:40\n{MINIMAL}"));
    assert!(e.message.contains("missing offset"), "{e}");
    Ok(())
}

#[test]
fn odd_input_never_panics() {
    let inputs = [
        "\u{feff}",
        "\r\n\r\n",
        "[[pops]",
        "é = 1",
        "name = \"é\"\n[[pops]]\nname = \"é\"\nlocation = \"é\"\nip = \"é\"\n",
        "a.b.c = 1",
        "[pops]\nname = 1",
        "name = \"x\"\r\nnmae = 1\r\n",
        "\t\tlatency = \"x\"",
    ];
    for text in inputs {
        if let Err(e) = load(text) {
            let shown = e.to_string();
            assert!(
                shown.starts_with("error: ") && e.line >= 1 && e.column >= 1,
                "{shown}"
            );
        }
    }
    let e = fail("name = \"x\"\r\nnmae = 1\r\n");
    assert_eq!((e.line, e.source_line.as_deref()), (2, Some("nmae = 1")));
}
