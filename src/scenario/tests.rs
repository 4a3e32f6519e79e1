//! Unit tests of the scenario loader: the contract example, defaults, errors with their
//! positions and help, and the duration, rule and clock grammars. Tables are strings so
//! that one case stays one line.

use std::path::Path;
use std::time::Duration;

use super::*;

/// The smallest valid scenario: five lines, so an appended snippet starts on line 6.
const MINIMAL: &str =
    "name = 'm'\n[[pops]]\nname = 'nyc1'\nlocation = 'us-east'\nip = '8.36.116.35'\n";

fn load(text: &str) -> Result<Scenario, LoadError> {
    load_str(text, Path::new("scenarios/t.toml"))
}

/// `MINIMAL` plus `extra`, where `|` stands for a line break.
fn with(extra: &str) -> Result<Scenario, LoadError> {
    load(&format!("{MINIMAL}{}\n", extra.replace('|', "\n")))
}

fn fail(result: Result<Scenario, LoadError>) -> LoadError {
    result.expect_err("expected a load error")
}

/// A `Debug` rendering written over several lines: each line break stands for a space.
fn joined(lines: &str) -> String {
    lines.trim().replace('\n', " ")
}

const EXAMPLE_LOADED: &str = r#"
Scenario { path: "scenarios/t.toml",
name: "DoH blocked: agent falls back to LDNS",
description: "free text shown by steerlab run",
seed: 7, duration: 120s, clock_unix_ms: 1571053240000,
tenant: Tenant { name: "acme", region: Global, gslb: false, gslb_behaviour: Answer, gslb_order: [] },
client: Client { version: ClientVersion { text: "95.1.0", parts: [95, 1, 0] }, ip: 10.173.13.40, location: "us-east", tunnel: Dtls, fail_close: false, user: None, endpoints: 1, endpoints_per_host: 1 },
dns: Dns { doh: "dns.google", ldns: 10.0.0.53, ldns_location: "eu-west", doh_behaviour: Answer, ldns_behaviour: Answer, doh_cert: Trusted, search_domain: "corp.internal" },
steering: Steering { mode: CloudApps, ports: [80, 443], managed: ["box.com", "*.box.com"], exceptions: ["zoom.us", "*.zoom.us", "203.0.113.0/24", "198.51.100.7"], bypass_apps: ["zoom.us", "Teams.exe"], pinned_apps: [], steer_dns: false, private_apps: false, sni_check: false, on_prem: None },
pops: [Pop { name: "nyc1", location: "us-east", ip: 8.36.116.35, latency: 12ms, cert: Trusted },
Pop { name: "fra1", location: "eu-west", ip: 8.36.117.35, latency: 90ms, cert: Trusted }],
backup: Backup { ip: Some(8.36.118.35), location: Some("eu-west"), latency: 90ms, cert: Trusted },
origins: [Origin { host: "www.box.com", ip: 107.152.27.197, category: None, aliases: [] }],
network: Network { host_firewall: [Rule { action: Allow, proto: Tcp, port: Some(443), target: Some(Wildcard("goskope.com")), text: "allow tcp/443 to *.goskope.com" },
Rule { action: Block, proto: Any, port: None, target: None, text: "block any" }],
perimeter_firewall: [Rule { action: Block, proto: Udp, port: Some(443), target: None, text: "block udp/443" },
Rule { action: Inspect, proto: Tcp, port: Some(443), target: None, text: "inspect tcp/443" }],
proxy: Some(Proxy { address: 10.10.10.11:8080, discovery: Manual }),
pac: Some("function FindProxyForURL(url, host) { return 'PROXY 10.10.10.11:8080'; }"), direct_egress: true, path_mtu: None, udp_loss: 0.0, vpn: None }, policy: Policy { block: [], allow: [], groups: {} }, control_plane: None,
events: [Event { at: 0ns, action: Start },
Event { at: 30s, action: Connect { process: "chrome.exe", host: "www.box.com", port: 443, via_proxy: false, dns: Os, proto: Tcp } },
Event { at: 60s, action: Rule { place: Perimeter, rule: Rule { action: Block, proto: Udp, port: Some(443), target: None, text: "block udp/443" } } },
Event { at: 90s, action: Partition { host: "nyc1" } }],
expect: Expect { resolved_by: Some(Ldns), gateway: Some("nyc1"), tunnel: Some(Tls),
flows: Some([ExpectFlow { process: Some("chrome.exe"), host: Some("www.box.com"), verdict: Some(Tunneled) }]) } }
"#;

const MINIMAL_LOADED: &str = r#"
Scenario { path: "scenarios/t.toml",
name: "m",
description: "",
seed: 0, duration: 60s, clock_unix_ms: 1571053240000,
tenant: Tenant { name: "acme", region: Global, gslb: false, gslb_behaviour: Answer, gslb_order: [] },
client: Client { version: ClientVersion { text: "95.1.0", parts: [95, 1, 0] }, ip: 10.0.0.10, location: "us-east", tunnel: Dtls, fail_close: false, user: None, endpoints: 1, endpoints_per_host: 1 },
dns: Dns { doh: "dns.google", ldns: 10.0.0.53, ldns_location: "us-east", doh_behaviour: Answer, ldns_behaviour: Answer, doh_cert: Trusted, search_domain: "corp.internal" },
steering: Steering { mode: CloudApps, ports: [80, 443], managed: [], exceptions: [], bypass_apps: [], pinned_apps: [], steer_dns: false, private_apps: false, sni_check: false, on_prem: None },
pops: [Pop { name: "nyc1", location: "us-east", ip: 8.36.116.35, latency: 20ms, cert: Trusted }],
backup: Backup { ip: None, location: None, latency: 20ms, cert: Trusted },
origins: [],
network: Network { host_firewall: [],
perimeter_firewall: [],
proxy: None,
pac: None, direct_egress: true, path_mtu: None, udp_loss: 0.0, vpn: None }, policy: Policy { block: [], allow: [], groups: {} }, control_plane: None,
events: [],
expect: Expect { resolved_by: None, gateway: None, tunnel: None,
flows: None } }
"#;

#[test]
fn contract_example_loads() -> Result<(), LoadError> {
    let s = load(EXAMPLE)?;
    assert_eq!(format!("{s:?}"), joined(EXAMPLE_LOADED));
    assert!(!s.client.version.at_least(96, 1) && s.client.version.at_least(95, 1));
    Ok(())
}

#[test]
fn every_default() -> Result<(), LoadError> {
    let s = load(MINIMAL)?;
    assert_eq!(format!("{s:?}"), joined(MINIMAL_LOADED));
    assert_eq!(Ok(s.clock_unix_ms), parse_clock(DEFAULT_CLOCK));
    assert_eq!((&s.dns, &s.backup), (&Dns::default(), &Backup::default()));
    assert_eq!(
        (&s.tenant, &s.client),
        (&Tenant::default(), &Client::default())
    );
    assert_eq!(
        (&s.steering, &s.network),
        (&Steering::default(), &Network::default())
    );
    // ldns_location follows client.location.
    let s = with("[client]|location = 'ap-south'")?;
    assert_eq!(s.dns.ldns_location, "ap-south");
    Ok(())
}

const EXTENSIONS: &str = "cert = 'expired'|[dns]|doh_behaviour = 'http_503'|\
    ldns_behaviour = 'slow_answer:15s'|doh_cert = 'untrusted'|[backup]|cert = 'untrusted'|\
    [tenant]|region = 'eu'|gslb = true|[client]|version = '96.1'|\
    [[events]]|at = '5s'|do = 'stop'|[[events]]|at = '1.5s'|do = 'repair'|host = 'DoH'";
/// `(tenant, client.version, dns, pops[0].cert, backup.cert, events)` of `EXTENSIONS`.
const EXTENSIONS_LOADED: &str = r#"
(Tenant { name: "acme", region: Eu, gslb: true, gslb_behaviour: Answer, gslb_order: [] },
ClientVersion { text: "96.1", parts: [96, 1] },
Dns { doh: "dns.google", ldns: 10.0.0.53, ldns_location: "us-east", doh_behaviour: HttpError(503), ldns_behaviour: SlowAnswer(15s), doh_cert: Untrusted, search_domain: "corp.internal" },
Expired, Untrusted,
[Event { at: 1.5s, action: Repair { host: "doh" } }, Event { at: 5s, action: Stop }])
"#;

#[test]
fn extensions_load() -> Result<(), LoadError> {
    let s = with(EXTENSIONS)?;
    let parts = (
        &s.tenant,
        &s.client.version,
        &s.dns,
        s.pops[0].cert,
        s.backup.cert,
        &s.events,
    );
    assert_eq!(format!("{parts:?}"), joined(EXTENSIONS_LOADED));
    assert!(s.client.version.at_least(96, 1) && !s.client.version.at_least(96, 2));
    let slow = with("[dns]|doh_behaviour = 'slow_answer'")?.dns;
    assert_eq!(
        slow.doh_behaviour,
        ServerBehaviour::SlowAnswer(Duration::from_secs(30))
    );
    let e = with("[expect]|tunnel = 'down'|flows = []")?.expect;
    assert_eq!((e.tunnel, e.flows), (Some(TunnelState::Down), Some(vec![])));
    let s = load(&format!("clock = 2019-10-14T13:40:40+02:00\n{MINIMAL}"))?;
    assert_eq!(s.clock_unix_ms, 1_571_053_240_000);
    Ok(())
}

#[test]
fn events_sort_stably_by_time() -> Result<(), LoadError> {
    let s = with(
        "[[events]]|at='2s'|do='stop'|[[events]]|at='1s'|do='start'|[[events]]|at='2s'|do='start'",
    )?;
    let got: Vec<_> = s.events.iter().map(|e| (e.at, &e.action)).collect();
    assert_eq!(format!("{got:?}"), "[(1s, Start), (2s, Stop), (2s, Start)]");
    Ok(())
}

#[test]
fn unknown_key_renders_like_rustc() {
    let e = fail(with("latncy = '12ms'"));
    assert_eq!((e.line, e.column, e.width), (6, 1, 6));
    let want = "error: unknown key `latncy` in [[pops]]
 --> scenarios/t.toml:6:1
  |
6 | latncy = '12ms'
  | ^^^^^^
  = help: did you mean `latency`? known keys: name, location, ip, latency, cert";
    assert_eq!(e.to_string(), want);
    let e = fail(with("||||[tenant]|\tname = 'a b'"));
    let want = "error: `a b` cannot be part of a host name
  --> scenarios/t.toml:11:9
   |
11 | \tname = 'a b'
   | \t       ^^^^^
   = help: write letters, digits and `-`, e.g. \"acme\"";
    assert_eq!(e.to_string(), want);
}

/// `LINE:COLUMN message-prefix [=> exact help] <- snippet appended to MINIMAL`, where `|`
/// in the snippet is a line break.
const ERRORS: &str = r#"
6:1 unknown key `nmae` in [[pops]] => did you mean `name`? known keys: name, location, ip, latency, cert <- nmae = 1
7:11 unknown key `adress` in [network.proxy] => did you mean `address`? known keys: address, discovery <- [network]|proxy = { adress = '10.0.0.1:8080' }
7:1 unknown key `verdikt` in [[expect.flows]] <- [[expect.flows]]|verdikt = 'direct'
7:1 unknown key `doh_behavior` in [dns] => did you mean `doh_behaviour`? known keys: doh, ldns, ldns_location, doh_behaviour, ldns_behaviour, doh_cert, search_domain <- [dns]|doh_behavior = 'empty'
9:1 unknown key `zzzz` in [[events]] => known keys: at, do, process, target, via_proxy, where, rule, host, location, dns, proto, action, user, group, mode <- [[events]]|at = '1s'|do = 'start'|zzzz = 1
7:14 invalid value: integer `70000` => write a port number from 1 to 65535 <- [steering]|ports = [80, 70000]
7:10 port 0 cannot be steered <- [steering]|ports = [0]
7:11 invalid type: floating point => write the value in double quotes <- [client]|version = 96.1
7:11 `96` is not a client version <- [client]|version = '96'
7:6 `10.0.0.300` is not an IPv4 address <- [client]|ip = '10.0.0.300'
7:10 unknown tunnel `udp` <- [client]|tunnel = 'udp'
7:8 unknown steering mode `cloudapps` => did you mean "cloud-apps"? write one of "cloud-apps", "web", "all" <- [steering]|mode = 'cloudapps'
7:15 `zoom..us` is not a host name <- [steering]|exceptions = ['zoom..us']
7:10 unknown region `us` => write one of "", "eu", "de", "au" <- [tenant]|region = 'us'
6:8 unclosed array table <- [[pops]
6:1 duplicate key `name` <- name = 'x'
6:11 `12` has no unit => write e.g. "12s" or "12ms" <- latency = '12'
6:8 unknown certificate kind `self-signed` <- cert = 'self-signed'
7:11 negative duration `-1s` <- [backup]|latency = '-1s'
7:40 a port needs a protocol <- [network]|perimeter_firewall = ['block udp/443', 'block 443']
7:18 unknown rule action `permit` => write one of "allow", "block", "reset", "inspect", "redirect", "intercept" <- [network]|host_firewall = ['permit any']
7:21 `10.0.0.1` is not an address and port <- [network]|proxy = { address = '10.0.0.1' }
7:9 missing `address` in network.proxy <- [network]|proxy = { discovery = 'pac' }
7:8 duplicate PoP name `nyc1` => the first `nyc1` is on line 3; PoP names must be unique <- [[pops]]|name = 'nyc1'|location = 'x'|ip = '1.1.1.1'
7:8 `gslb` is reserved <- [[pops]]|name = 'gslb'|location = 'x'|ip = '1.1.1.1'
6:1 missing `location` in [[pops]] <- [[pops]]|name = 'a'|ip = '1.1.1.1'
7:8 `a..b` is not a host name <- [[origins]]|host = 'a..b'|ip = '1.1.1.1'
6:1 missing `at` in [[events]] <- [[events]]|do = 'start'
7:6 event at 61s is after the end of the run <- [[events]]|at = '61s'|do = 'start'
8:6 unknown event `begin` => write one of "start", "stop", "connect", "rule", "partition", "repair", "move", "login", "admin" <- [[events]]|at = '1s'|do = 'begin'
10:11 `process` does not apply to do = "partition" => do = "partition" takes at, do, host; remove `process` <- [[events]]|at = '1s'|do = 'partition'|host = 'nyc1'|process = 'x'
12:8 unknown host `nyc2` in partition event => did you mean "nyc1"? write one of "nyc1", "backup", "doh", "ldns", "gslb", "proxy", "pac", "tenant", "www.box.com" <- [[origins]]|host = 'www.box.com'|ip = '1.2.3.4'|[[events]]|at = '1s'|do = 'partition'|host = 'nyc2'
6:1 missing `target` in [[events]] <- [[events]]|at = '1s'|do = 'connect'|process = 'a'
10:10 `0` is not a port <- [[events]]|at = '1s'|do = 'connect'|process = 'a'|target = 'x.com:0'
10:10 `x.com` has no port <- [[events]]|at = '1s'|do = 'connect'|process = 'a'|target = 'x.com'
11:13 `via_proxy = true` but [network] has no proxy <- [[events]]|at = '1s'|do = 'connect'|process = 'a'|target = 'x:1'|via_proxy = true
9:9 unknown firewall `edge` <- [[events]]|at = '1s'|do = 'rule'|where = 'edge'|rule = 'block any'
10:8 `dns` already means UDP and TCP port 53 <- [[events]]|at = '1s'|do = 'rule'|where = 'host'|rule = 'block dns/53'
7:11 unknown gateway `fra1` => write one of "nyc1", "backup" <- [expect]|gateway = 'fra1'
7:15 unknown resolver `ldns` <- [expect]|resolved_by = 'ldns'
7:10 unknown tunnel state `tls` <- [expect]|tunnel = 'tls'
7:11 unknown verdict `tunnelled` => did you mean "tunneled"? write one of "tunneled", "bypassed", "direct", "blocked" <- [[expect.flows]]|verdict = 'tunnelled'
7:18 the local resolver speaks plain DNS <- [dns]|ldns_behaviour = 'http_503'
7:17 `http_200` is not an HTTP error status <- [dns]|doh_behaviour = 'http_200'
7:17 bad slow_answer delay: `soon` has no number <- [dns]|doh_behaviour = 'slow_answer:soon'
"#;

#[test]
fn errors_point_at_the_value_and_say_what_to_write() {
    for case in ERRORS.trim().lines() {
        let (want, extra) = case.split_once(" <- ").unwrap_or_default();
        let (want, help) = want
            .split_once(" => ")
            .map_or((want, None), |(w, h)| (w, Some(h)));
        let e = fail(with(extra));
        let got = format!("{}:{} {}", e.line, e.column, e.message);
        assert!(got.starts_with(want), "{e}");
        assert!(help.is_none() || help == e.help.as_deref(), "{e}");
    }
    assert_eq!(fail(load("")).message, "missing required key `name`");
    assert!(fail(load("name = 'x'")).message.starts_with("no [[pops]]"));
    assert_eq!(fail(load("name = ' '")).message, "empty name");
    let e = fail(load(&format!("clock = 2019-10-14T11:40:40\n{MINIMAL}")));
    assert!(e.message.ends_with("missing offset (add `Z` for UTC)"));
}

#[test]
fn contract_words_serialize() -> Result<(), serde_json::Error> {
    let words = (Verdict::Bypassed, ResolvedBy::Gslb, TunnelState::Down);
    let json = serde_json::to_string(&words)?;
    assert_eq!(json, r#"["bypassed","GSLB","down"]"#);
    assert_eq!(ResolvedBy::Edns.as_str(), "EDNS");
    assert_eq!(Verdict::Direct.to_string(), "direct");
    Ok(())
}

const CANONICAL_RULES: &str = "allow tcp/443 to *.goskope.com|block any|reset udp/53|\
    inspect tcp/443|redirect tcp/80 to portal.example|block dns to 8.8.8.8|\
    block any to 203.0.113.0/24|allow any to 2001:db8::1";

/// The round trips through the public API; edge cases are tested next to each grammar.
#[test]
fn grammars_round_trip() -> Result<(), String> {
    for text in "250ms 10s 1.5s 2m 1h 0s 90s 1.5ms 0.001ms 36h 1.000000001s".split(' ') {
        let back = parse_duration(text).map(format_duration);
        assert_eq!(back.as_deref(), Ok(text));
    }
    let odd = [1, 12_345_678_901_234, u64::MAX].map(Duration::from_nanos);
    for d in odd.into_iter().chain([Duration::MAX]) {
        assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{d:?}");
    }
    for text in CANONICAL_RULES.split('|') {
        let rule = Rule::parse(text)?;
        assert_eq!(rule.to_string(), text);
        assert_eq!(Rule::parse(&rule.to_string())?, rule);
    }
    let rule = Rule::parse("  block   to  Example.COM ")?;
    assert_eq!(rule.to_string(), "block any to example.com");
    assert_eq!(Rule::parse(&rule.to_string())?.target, rule.target);
    for unix_ms in [0, -1, 951_868_800_000, 1_571_053_240_123] {
        assert_eq!(parse_clock(&format_clock(unix_ms)), Ok(unix_ms));
    }
    Ok(())
}

#[test]
fn odd_input_never_panics() {
    let odd = "\u{feff}|\r\n\r\n|é = 1|a.b.c = 1|[pops]\nname = 1|\t\tx = 'y'|[[pops]]\n[[pops]]";
    for text in odd.split('|') {
        let e = fail(load(text));
        let shown = e.to_string();
        assert!(
            shown.starts_with("error: ") && e.line >= 1 && e.column >= 1,
            "{e}"
        );
    }
    let e = fail(with("[[pops]]|name = 'é'|location = 'é'|ip = 'é'"));
    assert_eq!((e.line, e.column, e.width), (9, 6, 3));
    let e = fail(load("name = \"x\"\r\nnmae = 1\r\n"));
    assert_eq!((e.line, e.source_line.as_deref()), (2, Some("nmae = 1")));
}

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

/// A run is at most a day (contract v2): 24h loads, a nanosecond more is bad input at
/// the value, and so is a run that would never end.
#[test]
fn duration_is_at_most_a_day() {
    let at = |d: &str| load(&format!("name = 'm'\nduration = '{d}'\n{}", &MINIMAL[11..]));
    assert_eq!(at("24h").map(|s| s.duration).ok(), Some(MAX_DURATION));
    assert_eq!(at("1440m").map(|s| s.duration).ok(), Some(MAX_DURATION));
    for long in ["24.000000001h", "86401s", "999999999h"] {
        let err = fail(at(long));
        let text = err.to_string();
        assert!(text.contains(":2:12"), "{text}");
        assert!(
            text.contains(&format!("duration `{long}` is longer than 24h")),
            "{text}"
        );
        assert!(text.contains("write at most \"24h\""), "{text}");
    }
}
