//! Swarm testing: proptest generates whole scenarios (PoPs, client, steering, firewall
//! rules, a proxy, fault schedules, app connects) as TOML text, loads them with
//! `scenario::load_str`, runs the world twice, and checks invariants on every case:
//!
//! - **runs**: the text loads and the world runs (no panic, no world error);
//! - **deterministic**: the same seed gives identical log bytes, timeline and flows;
//! - **one-record-per-connect**: every connect event ends in exactly one flow record,
//!   or in the timeline's "could not resolve ...: no flow" line when the app's own DNS
//!   lookup failed (then the agent never sees a flow);
//! - **fail-close**: with `fail_close`, a flow the agent's steering would tunnel is
//!   never sent out of the tunnel (verdict `direct` or `bypassed`);
//! - **tenant-ca-only**: the tunnel never comes up to a gateway whose certificate is not
//!   from the tenant CA (`cert = "untrusted"` / `"expired"`), and never over TLS while
//!   `inspect tcp/443` leads the host firewall with no way around it;
//! - **recovers**: once every fault is repaired on a network that lets the tunnel
//!   through, the tunnel is up again within [`RECOVERY_BOUND`].
//!
//! A failing case (after shrinking) is printed as a scenario file with a comment naming
//! the invariant, and written to `target/swarm-failures/<name>.toml`, so that
//! `cargo run -- run target/swarm-failures/<name>.toml` replays it.
//!
//! `swarm_ci` runs a few cases; `swarm_long_N` (ignored) run 100 cases each, ten of
//! them, for `--partition` sharding. See docs/swarm.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use agent::core::steer::{FlowInfo, Verdict as AgentVerdict};
use agent::core::{BACKOFF_CAP, KEEPALIVE_TIMEOUT, TUNNEL_CONNECT_TIMEOUT};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use steerlab::report::RunReport;
use steerlab::scenario::{self, EventAction, FirewallPlace, Rule, Scenario, TunnelState, Verdict};
use steerlab::world::{self, path::Transport, path::Verdict as PathVerdict};

/// How long after the last fault (partition, repair, rule change) the tunnel must be up
/// again, when the network then lets it through. The sum of every wait that can stand
/// between the heal and a working tunnel (docs/swarm.md): a stale tunnel noticed
/// (`KEEPALIVE_TIMEOUT`), or an operation in flight timing out (≤ 10 s) and the
/// backoff that follows (≤ `BACKOFF_CAP`), then a DTLS connect that times out before
/// TLS (`TUNNEL_CONNECT_TIMEOUT`) — plus one more connect timeout of slack for the
/// round trips of the successful attempt.
const RECOVERY_BOUND: Duration = KEEPALIVE_TIMEOUT
    .saturating_add(BACKOFF_CAP)
    .saturating_add(TUNNEL_CONNECT_TIMEOUT)
    .saturating_add(TUNNEL_CONNECT_TIMEOUT);

/// An app flow finishes within this after its connect event (two DNS tries of 2 s, a
/// connect of 10 s, an HTTP or CONNECT exchange of 10 s), so it is recorded before the
/// run ends.
const FLOW_SETTLE: Duration = Duration::from_secs(30);

/// Faults start within this, and are repaired within this after they start.
const FAULT_WINDOW_MS: u64 = 30_000;

#[test]
fn swarm_ci() {
    swarm(0x5741_524d, cases_from_env(4));
}

macro_rules! long_shards {
    ($($name:ident = $shard:expr),* $(,)?) => {$(
        /// One tenth of the long run: 100 cases (or `SWARM_CASES`) from its own RNG seed.
        #[test]
        #[ignore = "long run: cargo test --release --test swarm -- --ignored (docs/swarm.md)"]
        fn $name() {
            swarm(0x4c4f_4e47_0000 + $shard, cases_from_env(100));
        }
    )*};
}

long_shards! {
    swarm_long_0 = 0, swarm_long_1 = 1, swarm_long_2 = 2, swarm_long_3 = 3,
    swarm_long_4 = 4, swarm_long_5 = 5, swarm_long_6 = 6, swarm_long_7 = 7,
    swarm_long_8 = 8, swarm_long_9 = 9,
}

fn cases_from_env(default: u32) -> u32 {
    std::env::var("SWARM_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `cases` generated cases from the RNG seed `rng_seed`, on every core
/// (`world::run_many`, as `run --jobs` does); on a failure, shrinks the first failing
/// case on this thread, writes the scenario file and panics with it.
fn swarm(rng_seed: u64, cases: u32) {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&rng_seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed);
    let config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(config, rng);
    let strategy = case_strategy();
    let mut trees = Vec::new();
    for _ in 0..cases {
        match strategy.new_tree(&mut runner) {
            Ok(tree) => trees.push(tree),
            Err(why) => panic!("swarm could not generate a case: {why}"),
        }
    }
    let progress = std::env::var_os("SWARM_PROGRESS").is_some();
    let generated: Vec<(usize, Case)> = trees.iter().map(|t| t.current()).enumerate().collect();
    let results = world::run_many(world::default_jobs(), generated, |(n, case)| {
        #[allow(
            clippy::disallowed_methods,
            reason = "wall time of a case, for progress"
        )]
        let started = std::time::Instant::now();
        let result = check_case(&case);
        if progress {
            let verdict = if result.is_ok() { "ok" } else { "FAILED" };
            eprintln!(
                "swarm {rng_seed:#x} case {}: seed {} {verdict} in {:.1}s",
                n + 1,
                case.seed,
                started.elapsed().as_secs_f64()
            );
        }
        result.err()
    });
    eprintln!("swarm {rng_seed:#x}: {}", Stats::summary());
    let Some((first, failure)) = results
        .into_iter()
        .enumerate()
        .find_map(|(i, f)| f.map(|f| (i, f)))
    else {
        return;
    };
    let (case, failure) = shrink(&mut trees[first], failure);
    let (file, text) = write_failure(&case, &failure);
    panic!(
        "swarm invariant `{}` broken:\n{}\n--- scenario ({})\n{text}\nreproduce: cargo run -- run {}",
        failure.invariant,
        failure.detail,
        file.display(),
        file.display()
    );
}

/// At most this many simplifications of a failing case.
const MAX_SHRINK_ITERS: u32 = 48;

/// Simplifies a failing case while it keeps failing (proptest's shrink: simplify after
/// a failure, complicate after a pass); returns the simplest failing case found.
fn shrink(tree: &mut impl ValueTree<Value = Case>, failure: Failure) -> (Case, Failure) {
    let mut best = (tree.current(), failure);
    let mut passed = false;
    for _ in 0..MAX_SHRINK_ITERS {
        let moved = if passed {
            tree.complicate()
        } else {
            tree.simplify()
        };
        if !moved {
            break;
        }
        let case = tree.current();
        match check_case(&case) {
            Err(f) => {
                best = (case, f);
                passed = false;
            }
            Ok(()) => passed = true,
        }
    }
    best
}

// ---------------------------------------------------------------------------------------
// The generated case.

const LOCATIONS: [&str; 4] = ["us-east", "us-west", "eu-west", "ap-south"];
const POP_NAMES: [&str; 4] = ["nyc1", "sjc1", "fra1", "bom1"];
const BACKUP_IP: &str = "8.36.120.35";
const PROXY: &str = "10.10.10.11:8080";
/// Origins apps connect to: (host, address). One private.
const ORIGINS: [(&str, &str); 5] = [
    ("www.box.com", "107.152.27.197"),
    ("app.dropbox.com", "162.125.1.18"),
    ("zoom.us", "170.114.52.2"),
    ("example.org", "93.184.215.14"),
    ("wiki.corp.internal", "10.20.0.7"),
];
const MANAGED: [&str; 6] = [
    "box.com",
    "*.box.com",
    "*.dropbox.com",
    "zoom.us",
    "example.org",
    "wiki.corp.internal",
];
const EXCEPTIONS: [&str; 5] = [
    "zoom.us",
    "*.zoom.us",
    "170.114.0.0/16",
    "93.184.215.14",
    "*.dropbox.com",
];
const PROCESSES: [&str; 4] = ["chrome.exe", "Teams.exe", "zoom.us", "curl"];
const VERSIONS: [&str; 4] = ["95.1.0", "96.0.2", "96.1", "97.0.1.12"];
const CERTS: [&str; 3] = ["trusted", "untrusted", "expired"];

/// One scenario, before it is written as TOML.
#[derive(Debug, Clone)]
struct Case {
    seed: u64,
    pops: Vec<PopGen>,
    backup: (usize, u64, usize),
    client_location: usize,
    version: usize,
    dtls: bool,
    fail_close: bool,
    gslb: bool,
    ldns_location: usize,
    mode: usize,
    ports: usize,
    managed: Vec<usize>,
    exceptions: Vec<usize>,
    bypass_teams: bool,
    private_apps: bool,
    inspect_all: bool,
    host_rules: Vec<String>,
    perimeter_rules: Vec<String>,
    proxy: Option<bool>,
    faults: Vec<FaultGen>,
    rule_events: Vec<(u64, bool, String)>,
    connects: Vec<ConnectGen>,
}

#[derive(Debug, Clone)]
struct PopGen {
    location: usize,
    latency_ms: u64,
    cert: usize,
}

/// A partition of `host` at `at_ms`, repaired `repair_after_ms` later (or never).
#[derive(Debug, Clone)]
struct FaultGen {
    host: usize,
    at_ms: u64,
    repair_after_ms: Option<u64>,
}

/// A connect at `share` thousandths of the time before the flows must settle.
#[derive(Debug, Clone)]
struct ConnectGen {
    share: u64,
    process: usize,
    origin: usize,
    port: usize,
    via_proxy: bool,
}

fn cert_strategy() -> impl Strategy<Value = usize> {
    prop_oneof![24 => Just(0usize), 1 => Just(1usize), 1 => Just(2usize)]
}

fn pop_strategy() -> impl Strategy<Value = PopGen> {
    (0..LOCATIONS.len(), 5u64..150, cert_strategy()).prop_map(|(location, latency_ms, cert)| {
        PopGen {
            location,
            latency_ms,
            cert,
        }
    })
}

/// One rule from the grammar: ACTION [PROTO[/PORT]] [to TARGET].
fn rule_strategy(pops: usize) -> impl Strategy<Value = String> {
    let action = prop_oneof![
        4 => Just("allow"),
        2 => Just("block"),
        2 => Just("reset"),
        1 => Just("inspect"),
        1 => Just("redirect"),
        1 => Just("intercept"),
    ];
    let proto = prop_oneof![
        Just(String::new()),
        Just("any".to_string()),
        Just("dns".to_string()),
        prop_oneof![Just("tcp"), Just("udp")].prop_flat_map(|p| {
            prop_oneof![
                Just(p.to_string()),
                prop_oneof![Just(53u16), Just(80), Just(443), Just(8080)]
                    .prop_map(move |port| format!("{p}/{port}")),
            ]
        }),
    ];
    let mut targets: Vec<String> = [
        "*.goskope.com",
        "gateway-acme.goskope.com",
        "gateway-backup-acme.goskope.com",
        "8.36.0.0/16",
        BACKUP_IP,
        "dns.google",
        "8.8.8.8",
        "10.0.0.53",
        "*.box.com",
        "zoom.us",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    for (i, name) in POP_NAMES.iter().enumerate().take(pops) {
        targets.push(format!("gateway-{name}.goskope.com"));
        targets.push(pop_ip(i));
    }
    let target = proptest::option::weighted(0.7, proptest::sample::select(targets));
    (action, proto, target).prop_map(|(action, proto, target)| {
        let mut rule = action.to_string();
        if !proto.is_empty() {
            rule.push(' ');
            rule.push_str(&proto);
        }
        if let Some(target) = target {
            rule.push_str(" to ");
            rule.push_str(&target);
        }
        rule
    })
}

/// A firewall list: empty half the time, else one or two rules.
fn rules(pops: usize) -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(rule_strategy(pops), 1..3),
    ]
}

fn case_strategy() -> impl Strategy<Value = Case> {
    prop::collection::vec(pop_strategy(), 1..=4).prop_flat_map(|pops| {
        let n = pops.len();
        let client = (
            0..LOCATIONS.len(),
            0..VERSIONS.len(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            0..LOCATIONS.len(),
        );
        let steering = (
            0usize..3,
            0usize..3,
            prop::collection::vec(0..MANAGED.len(), 0..4),
            prop::collection::vec(0..EXCEPTIONS.len(), 0..3),
            any::<bool>(),
            any::<bool>(),
        );
        let network = (
            proptest::bool::weighted(0.15),
            rules(n),
            rules(n),
            proptest::option::weighted(0.25, proptest::bool::weighted(0.8)),
        );
        // Fault hosts: the PoPs, then doh, ldns, backup, gslb.
        let fault = (
            0..n + 4,
            0..FAULT_WINDOW_MS,
            proptest::option::weighted(0.85, 1_000..FAULT_WINDOW_MS),
        )
            .prop_map(|(host, at_ms, repair_after_ms)| FaultGen {
                host,
                at_ms,
                repair_after_ms,
            });
        let rule_event = (0..FAULT_WINDOW_MS * 2, any::<bool>(), rule_strategy(n));
        let connect = (
            0u64..1000,
            0..PROCESSES.len(),
            0..ORIGINS.len(),
            0usize..3,
            any::<bool>(),
        )
            .prop_map(|(share, process, origin, port, via_proxy)| ConnectGen {
                share,
                process,
                origin,
                port,
                via_proxy,
            });
        let schedule = (
            prop::collection::vec(fault, 0..4),
            prop::collection::vec(rule_event, 0..2),
            prop::collection::vec(connect, 1..6),
        );
        let backup = (0..LOCATIONS.len(), 5u64..150, cert_strategy());
        (
            Just(pops),
            0u64..1000,
            backup,
            client,
            steering,
            network,
            schedule,
        )
            .prop_map(
                |(pops, seed, backup, client, steering, network, schedule)| Case {
                    seed,
                    pops,
                    backup,
                    client_location: client.0,
                    version: client.1,
                    dtls: client.2,
                    fail_close: client.3,
                    gslb: client.4,
                    ldns_location: client.5,
                    mode: steering.0,
                    ports: steering.1,
                    managed: steering.2,
                    exceptions: steering.3,
                    bypass_teams: steering.4,
                    private_apps: steering.5,
                    inspect_all: network.0,
                    host_rules: network.1,
                    perimeter_rules: network.2,
                    proxy: network.3,
                    faults: schedule.0,
                    rule_events: schedule.1,
                    connects: schedule.2,
                },
            )
    })
}

fn pop_ip(i: usize) -> String {
    format!("8.36.{}.35", 116 + i)
}

impl Case {
    fn fault_host(&self, i: usize) -> &'static str {
        match i.checked_sub(self.pops.len()) {
            None => POP_NAMES[i],
            Some(0) => "doh",
            Some(1) => "ldns",
            Some(2) => "backup",
            Some(_) => "gslb",
        }
    }

    /// When the last fault event (partition, repair, rule change) happens.
    fn heal_ms(&self) -> u64 {
        let faults = self
            .faults
            .iter()
            .map(|f| f.at_ms + f.repair_after_ms.unwrap_or(0));
        let rules = self.rule_events.iter().map(|r| r.0);
        faults.chain(rules).max().unwrap_or(0)
    }

    /// Whether the recovery invariant can apply (what the file says, before the
    /// firewall rules are weighed after the run): every fault repaired, every gateway
    /// certificate trusted, no inspection of every TLS connect, direct egress. Only
    /// then does the run need [`RECOVERY_BOUND`] after the last fault.
    fn may_recover(&self) -> bool {
        self.faults.iter().all(|f| f.repair_after_ms.is_some())
            && self.pops.iter().all(|p| p.cert == 0)
            && self.backup.2 == 0
            && !self.inspect_all
            && self.proxy != Some(false)
    }

    fn duration_ms(&self) -> u64 {
        let bound = if self.may_recover() {
            u64::try_from(RECOVERY_BOUND.as_millis()).unwrap_or(u64::MAX)
        } else {
            FLOW_SETTLE.as_secs() * 1000
        };
        (self.heal_ms() + bound)
            .max(FLOW_SETTLE.as_secs() * 1000 * 2)
            .div_ceil(1000)
            * 1000
    }

    fn connect_ms(&self, c: &ConnectGen) -> u64 {
        let settle = FLOW_SETTLE.as_secs() * 1000;
        1_000 + (self.duration_ms() - settle - 1_000) * c.share / 1000
    }

    /// The scenario file.
    fn toml(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(t, "name = \"swarm case (seed {})\"", self.seed);
        let _ = writeln!(t, "seed = {}", self.seed);
        let _ = writeln!(t, "duration = \"{}s\"", self.duration_ms() / 1000);
        let _ = writeln!(t, "\n[tenant]\ngslb = {}", self.gslb);
        let _ = writeln!(
            t,
            "\n[client]\nversion = \"{}\"\nlocation = \"{}\"\ntunnel = \"{}\"\nfail_close = {}",
            VERSIONS[self.version],
            LOCATIONS[self.client_location],
            if self.dtls { "dtls" } else { "tls" },
            self.fail_close
        );
        let _ = writeln!(
            t,
            "\n[dns]\nldns_location = \"{}\"",
            LOCATIONS[self.ldns_location]
        );
        let _ = writeln!(
            t,
            "\n[steering]\nmode = \"{}\"\nports = {}\nmanaged = {}\nexceptions = {}\nbypass_apps = {}\nprivate_apps = {}",
            ["cloud-apps", "web", "all"][self.mode],
            ["[80, 443]", "[443]", "[80, 443, 8443]"][self.ports],
            list(self.managed.iter().map(|&i| MANAGED[i])),
            list(self.exceptions.iter().map(|&i| EXCEPTIONS[i])),
            list(self.bypass_teams.then_some("Teams.exe")),
            self.private_apps
        );
        for (i, pop) in self.pops.iter().enumerate() {
            let _ = writeln!(
                t,
                "\n[[pops]]\nname = \"{}\"\nlocation = \"{}\"\nip = \"{}\"\nlatency = \"{}ms\"\ncert = \"{}\"",
                POP_NAMES[i],
                LOCATIONS[pop.location],
                pop_ip(i),
                pop.latency_ms,
                CERTS[pop.cert]
            );
        }
        let (location, latency_ms, cert) = self.backup;
        let _ = writeln!(
            t,
            "\n[backup]\nip = \"{BACKUP_IP}\"\nlocation = \"{}\"\nlatency = \"{latency_ms}ms\"\ncert = \"{}\"",
            LOCATIONS[location], CERTS[cert]
        );
        for (host, ip) in ORIGINS {
            let _ = writeln!(t, "\n[[origins]]\nhost = \"{host}\"\nip = \"{ip}\"");
        }
        let inspect = self.inspect_all.then_some("inspect tcp/443");
        let host_rules = inspect
            .into_iter()
            .chain(self.host_rules.iter().map(String::as_str));
        let _ = writeln!(
            t,
            "\n[network]\nhost_firewall = {}\nperimeter_firewall = {}",
            list(host_rules),
            list(self.perimeter_rules.iter().map(String::as_str))
        );
        if let Some(direct_egress) = self.proxy {
            let _ = writeln!(
                t,
                "proxy = {{ address = \"{PROXY}\", discovery = \"manual\" }}\ndirect_egress = {direct_egress}"
            );
        }
        for (at_ms, body) in self.events() {
            let _ = writeln!(t, "\n[[events]]\nat = \"{at_ms}ms\"\n{body}");
        }
        t
    }

    /// Every event, in time order (start first; at equal times partitions before
    /// repairs, so a repair at the same moment wins).
    fn events(&self) -> Vec<(u64, String)> {
        let mut events: Vec<(u64, u8, String)> = vec![(0, 0, "do = \"start\"".to_string())];
        for f in &self.faults {
            let host = self.fault_host(f.host);
            events.push((f.at_ms, 1, format!("do = \"partition\"\nhost = \"{host}\"")));
            if let Some(after) = f.repair_after_ms {
                events.push((
                    f.at_ms + after,
                    3,
                    format!("do = \"repair\"\nhost = \"{host}\""),
                ));
            }
        }
        for (at_ms, host, rule) in &self.rule_events {
            let place = if *host { "host" } else { "perimeter" };
            events.push((
                *at_ms,
                2,
                format!("do = \"rule\"\nwhere = \"{place}\"\nrule = \"{rule}\""),
            ));
        }
        for c in &self.connects {
            let via_proxy = c.via_proxy && self.proxy.is_some();
            events.push((
                self.connect_ms(c),
                4,
                format!(
                    "do = \"connect\"\nprocess = \"{}\"\ntarget = \"{}:{}\"\nvia_proxy = {via_proxy}",
                    PROCESSES[c.process],
                    ORIGINS[c.origin].0,
                    [443, 80, 8443][c.port]
                ),
            ));
        }
        events.sort_by_key(|(at, order, _)| (*at, *order));
        events.into_iter().map(|(at, _, body)| (at, body)).collect()
    }
}

fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = items.into_iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

// ---------------------------------------------------------------------------------------
// The invariants.

/// How often each invariant had something to check (so a run shows none was vacuous).
struct Stats;

static STATS: [std::sync::atomic::AtomicUsize; 7] =
    [const { std::sync::atomic::AtomicUsize::new(0) }; 7];
const STAT_NAMES: [&str; 7] = [
    "cases run",
    "flows",
    "fail-close flows",
    "steered fail-close flows",
    "runs with an untrusted gateway",
    "runs under inspect tcp/443",
    "runs checked for recovery",
];

impl Stats {
    fn add(i: usize, n: usize) {
        STATS[i].fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    fn summary() -> String {
        let parts: Vec<String> = STATS
            .iter()
            .zip(STAT_NAMES)
            .map(|(n, name)| format!("{} {name}", n.load(std::sync::atomic::Ordering::Relaxed)))
            .collect();
        parts.join(", ")
    }
}

/// A broken invariant.
#[derive(Debug)]
struct Failure {
    invariant: &'static str,
    detail: String,
    /// An `[expect]` table that makes `steerlab run` fail the same way, when the
    /// invariant can be said with one.
    expect: Option<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)
    }
}

fn fail(invariant: &'static str, detail: String) -> Failure {
    Failure {
        invariant,
        detail,
        expect: None,
    }
}

fn check_case(case: &Case) -> Result<(), Failure> {
    let text = case.toml();
    let scenario = scenario::load_str(&text, Path::new("swarm.toml")).map_err(|e| {
        fail(
            "loads",
            format!("the generated scenario does not load:\n{e}"),
        )
    })?;
    let first = run(&scenario)?;
    let second = run(&scenario)?;
    Stats::add(0, 1);
    Stats::add(1, first.flows.len());
    deterministic(&first, &second)?;
    one_record_per_connect(&scenario, &first)?;
    fail_close(&scenario, &first)?;
    tenant_ca_only(&scenario, &first)?;
    recovers(case, &scenario, &first)?;
    Ok(())
}

fn run(scenario: &Scenario) -> Result<RunReport, Failure> {
    let run = std::panic::catch_unwind(|| world::run(scenario, None));
    match run {
        Ok(Ok(report)) => Ok(report),
        Ok(Err(e)) => Err(fail("runs", format!("world error: {e}"))),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(ToString::to_string))
                .unwrap_or_default();
            Err(fail("runs", format!("the run panicked: {what}")))
        }
    }
}

fn deterministic(a: &RunReport, b: &RunReport) -> Result<(), Failure> {
    let first_diff = |x: &[String], y: &[String]| {
        let i = x.iter().zip(y).take_while(|(l, r)| l == r).count();
        format!(
            "first difference at line {}:\n  {:?}\n  {:?}",
            i + 1,
            x.get(i),
            y.get(i)
        )
    };
    if a.log != b.log {
        return Err(fail(
            "deterministic",
            format!("two runs, two logs; {}", first_diff(&a.log, &b.log)),
        ));
    }
    if a.timeline != b.timeline {
        return Err(fail(
            "deterministic",
            format!(
                "two runs, two timelines; {}",
                first_diff(&a.timeline, &b.timeline)
            ),
        ));
    }
    if a.flows != b.flows || a.outcome != b.outcome {
        return Err(fail(
            "deterministic",
            format!("two runs, two outcomes: {:?} / {:?}", a.outcome, b.outcome),
        ));
    }
    Ok(())
}

fn one_record_per_connect(s: &Scenario, r: &RunReport) -> Result<(), Failure> {
    // (process, host) -> connects, records, "no flow" lines.
    let mut counts: BTreeMap<(String, String), (usize, usize, usize)> = BTreeMap::new();
    for e in &s.events {
        if let EventAction::Connect { process, host, .. } = &e.action {
            counts.entry((process.clone(), host.clone())).or_default().0 += 1;
        }
    }
    for f in &r.flows {
        counts
            .entry((f.process.clone(), f.host.clone()))
            .or_default()
            .1 += 1;
    }
    for ((process, host), c) in counts.iter_mut() {
        let line = format!("app {process} could not resolve {host}: no flow");
        c.2 = r.timeline.iter().filter(|l| l.ends_with(&line)).count();
    }
    for ((process, host), (connects, records, unresolved)) in &counts {
        if records + unresolved != *connects {
            return Err(fail(
                "one-record-per-connect",
                format!(
                    "{process} -> {host}: {connects} connect event(s), {records} flow record(s), \
                     {unresolved} unresolved\n--- story\n{}",
                    r.story()
                ),
            ));
        }
    }
    Ok(())
}

fn fail_close(s: &Scenario, r: &RunReport) -> Result<(), Failure> {
    if !s.client.fail_close {
        return Ok(());
    }
    let steering = world::agent_steering(s);
    let ports = flow_ports(s, r);
    for (i, f) in r.flows.iter().enumerate() {
        let dst: SocketAddr = f
            .addr
            .parse()
            .map_err(|_| fail("fail-close", format!("flow {i} has no address: {}", f.addr)))?;
        // A CONNECT is judged by its host and port, not the proxy's address.
        let dst = match s.network.proxy.as_ref() {
            Some(p) if dst == SocketAddr::V4(p.address) => {
                let port = ports.get(i).copied().flatten().unwrap_or(dst.port());
                SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))
            }
            _ => dst,
        };
        let info = FlowInfo {
            process: f.process.clone(),
            names: vec![f.host.clone()],
            dst,
        };
        let steered = steering.decide(&info, true).verdict == AgentVerdict::Tunneled;
        Stats::add(2, 1);
        Stats::add(3, usize::from(steered));
        let out = matches!(f.verdict, Verdict::Direct | Verdict::Bypassed);
        if steered && out {
            let mut expect = String::from("[expect]\n");
            for (j, g) in r.flows.iter().enumerate() {
                let _ = write!(
                    expect,
                    "[[expect.flows]]\nprocess = \"{}\"\nhost = \"{}\"\n",
                    g.process, g.host
                );
                if j == i {
                    expect.push_str("verdict = \"blocked\"\n");
                }
            }
            return Err(Failure {
                invariant: "fail-close",
                detail: format!(
                    "fail close is on, yet the steered flow {} -> {} ({}) went {} ({}; {})",
                    f.process,
                    f.host,
                    f.addr,
                    f.verdict.as_str(),
                    f.reason,
                    f.outcome
                ),
                expect: Some(expect),
            });
        }
    }
    Ok(())
}

/// The port each flow record's app asked for: connect events paired in order with the
/// records (an event whose app could not resolve its host has none).
fn flow_ports(s: &Scenario, r: &RunReport) -> Vec<Option<u16>> {
    let mut ports = vec![None; r.flows.len()];
    let mut next = 0;
    for e in &s.events {
        if let EventAction::Connect {
            process,
            host,
            port,
            ..
        } = &e.action
            && let Some(f) = r.flows.get(next)
            && f.process == *process
            && f.host == *host
        {
            ports[next] = Some(*port);
            next += 1;
        }
    }
    ports
}

fn tenant_ca_only(s: &Scenario, r: &RunReport) -> Result<(), Failure> {
    let mut bad: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
    for pop in &s.pops {
        if pop.cert != scenario::CertKind::Trusted {
            bad.insert(
                pop.ip,
                format!("PoP {} ({:?} certificate)", pop.name, pop.cert),
            );
        }
    }
    if s.backup.cert != scenario::CertKind::Trusted
        && let Some(ip) = s.backup.ip
    {
        bad.insert(ip, format!("backup ({:?} certificate)", s.backup.cert));
    }
    let inspected = inspect_without_way_around(s);
    Stats::add(4, usize::from(!bad.is_empty()));
    Stats::add(5, usize::from(inspected));
    let mut last_ip: Option<Ipv4Addr> = None;
    // Through an explicit proxy the agent sends CONNECT NAME and the proxy resolves NAME
    // itself (the gateway name to the PoP nearest the site): that is the server reached,
    // whatever the agent resolved.
    let proxy_resolves = steerlab::world::proxy_resolution(s);
    let mut proxied: Option<Ipv4Addr> = None;
    for line in &r.log {
        if line.contains(" Connecting to ") {
            proxied = line
                .split_once(" through proxy ")
                .and_then(|(head, _)| head.rsplit(' ').next())
                .and_then(|target| target.rsplit_once(':'))
                .and_then(|(name, _)| proxy_resolves.get(&name.to_ascii_lowercase()).copied());
        }
        if let Some(rest) = line
            .split(" resolved to ")
            .nth(1)
            .filter(|_| line.contains(" remote host "))
        {
            last_ip = rest.split(',').next().and_then(|ip| ip.trim().parse().ok());
        }
        if !line.contains("SSL connected to the") {
            continue;
        }
        // The GSLB form names the address itself: NAME(IP):PORT.
        let ip = line
            .split_once("gslbgw server: ")
            .and_then(|(_, rest)| rest.split_once('(')?.1.split_once(')'))
            .and_then(|(ip, _)| ip.parse().ok())
            .or(proxied)
            .or(last_ip);
        if let Some(what) = ip.and_then(|ip| bad.get(&ip)) {
            return Err(fail(
                "tenant-ca-only",
                format!("the tunnel came up to {what}:\n  {line}"),
            ));
        }
        if inspected && line.contains(" nsTunnel TLS ") {
            return Err(fail(
                "tenant-ca-only",
                format!(
                    "`inspect tcp/443` leads the host firewall and there is no proxy, yet a TLS tunnel came up:\n  {line}"
                ),
            ));
        }
    }
    let up = r.outcome.tunnel != TunnelState::Down;
    if let (true, Some(gw)) = (up, &r.outcome.gateway) {
        let cert = match gw.as_str() {
            "backup" => s.backup.cert,
            name => s
                .pops
                .iter()
                .find(|p| p.name == name)
                .map_or(scenario::CertKind::Trusted, |p| p.cert),
        };
        if cert != scenario::CertKind::Trusted {
            return Err(fail(
                "tenant-ca-only",
                format!("the run ends with the tunnel up to {gw}, whose certificate is {cert:?}"),
            ));
        }
    }
    if inspected && r.outcome.tunnel == TunnelState::Tls {
        return Err(fail(
            "tenant-ca-only",
            "the run ends with a TLS tunnel through `inspect tcp/443`".to_string(),
        ));
    }
    Ok(())
}

/// `inspect tcp/443` (every destination) is the host firewall's first rule, no proxy
/// offers a way around it, and no rule event puts a TCP 443 rule before it.
fn inspect_without_way_around(s: &Scenario) -> bool {
    let Some(first) = s.network.host_firewall.first() else {
        return false;
    };
    let leads = first.to_string() == "inspect tcp/443";
    let bypassed = s.events.iter().any(|e| match &e.action {
        EventAction::Rule {
            place: FirewallPlace::Host,
            rule,
        } => covers_tcp_443(rule),
        _ => false,
    });
    leads && !bypassed && s.network.proxy.is_none()
}

fn covers_tcp_443(rule: &Rule) -> bool {
    use steerlab::scenario::RuleProto;
    matches!(rule.proto, RuleProto::Any | RuleProto::Tcp) && rule.port.is_none_or(|p| p == 443)
}

/// Liveness: when every partition is repaired and the network at the end lets the
/// tunnel through, the tunnel is up at `heal + RECOVERY_BOUND` (the end of the run).
fn recovers(case: &Case, s: &Scenario, r: &RunReport) -> Result<(), Failure> {
    let Some(why) = healthy_at_end(case, s, r) else {
        return Ok(());
    };
    Stats::add(6, 1);
    if r.outcome.tunnel == TunnelState::Down {
        let heal = Duration::from_millis(case.heal_ms());
        return Err(Failure {
            invariant: "recovers",
            detail: format!(
                "the last fault was at {}, the network then lets the tunnel through ({why}), \
                 yet the tunnel is still down {} later\n--- story\n{}",
                scenario::format_duration(heal),
                scenario::format_duration(RECOVERY_BOUND),
                r.story()
            ),
            // Either protocol satisfies the invariant; the preferred one is named.
            expect: Some(format!(
                "[expect]\ntunnel = \"{}\"\n",
                if case.dtls { "DTLS" } else { "TLS" }
            )),
        });
    }
    Ok(())
}

/// Whether the network at the end of the run lets a tunnel up; `Some(why)` when it
/// does: every partition repaired, every gateway's certificate from the tenant CA, TCP
/// 443 to every gateway passing both firewalls (with every rule event applied), and a
/// resolver reachable (DoH on TCP 443, or the local resolver on UDP 53).
fn healthy_at_end(case: &Case, s: &Scenario, r: &RunReport) -> Option<String> {
    if !case.may_recover() || case.faults.iter().any(|f| f.repair_after_ms.is_none()) {
        return None;
    }
    let trusted = |c| c == scenario::CertKind::Trusted;
    if !s.pops.iter().all(|p| trusted(p.cert)) || !trusted(s.backup.cert) {
        return None;
    }
    if s.network.proxy.is_some() && !s.network.direct_egress {
        return None;
    }
    let mut path = world::path::Path::new(
        s.network.host_firewall.clone(),
        s.network.perimeter_firewall.clone(),
    );
    for e in &s.events {
        if let EventAction::Rule { place, rule } = &e.action {
            path.add_rule(*place, rule.clone());
        }
    }
    let gateways = s.pops.iter().map(|p| p.ip).chain(s.backup.ip);
    for ip in gateways {
        if path.check(&r.hosts, Transport::Tcp, ip, 443) != PathVerdict::Pass {
            return None;
        }
    }
    let doh = r.hosts.by_label("doh")?;
    let doh_ok = path.check(&r.hosts, Transport::Tcp, doh, 443) == PathVerdict::Pass;
    let ldns_ok = matches!(
        path.check(&r.hosts, Transport::Udp, s.dns.ldns, 53),
        PathVerdict::Pass | PathVerdict::InterceptDns { .. }
    );
    match (doh_ok, ldns_ok) {
        (true, true) => Some("TCP 443 to every gateway and DoH, UDP 53 to the LDNS".into()),
        (true, false) => Some("TCP 443 to every gateway and DoH".into()),
        (false, true) => Some("TCP 443 to every gateway, UDP 53 to the LDNS".into()),
        (false, false) => None,
    }
}

// ---------------------------------------------------------------------------------------
// Failing cases as scenario files.

fn write_failure(case: &Case, failure: &Failure) -> (PathBuf, String) {
    let mut text = format!(
        "# swarm failure: invariant `{}` broken\n",
        failure.invariant
    );
    for line in failure.detail.lines().take(12) {
        let _ = writeln!(text, "#   {line}");
    }
    text.push_str("# generated by tests/swarm.rs; see docs/swarm.md\n\n");
    text.push_str(&case.toml());
    if let Some(expect) = &failure.expect {
        text.push('\n');
        text.push_str(expect);
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
        .join("swarm-failures");
    let file = dir.join(format!("{}-seed{}.toml", failure.invariant, case.seed));
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(&file, &text);
    (file, text)
}

/// The generator and the checks themselves: a written case loads, and the checks fire
/// on reports that break them.
mod meta {
    use super::*;
    use proptest::strategy::ValueTree;

    fn sample(seed: u8) -> Case {
        let mut runner = TestRunner::new_with_rng(
            Config::default(),
            TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
        );
        case_strategy()
            .new_tree(&mut runner)
            .map(|t| t.current())
            .unwrap_or_else(|e| panic!("cannot generate: {e}"))
    }

    #[test]
    fn generated_cases_load_and_keep_flows_inside_the_run() {
        for seed in 0..64u8 {
            let case = sample(seed);
            let s = scenario::load_str(&case.toml(), Path::new("swarm.toml"))
                .unwrap_or_else(|e| panic!("{e}\n{}", case.toml()));
            assert_eq!(s.pops.len(), case.pops.len());
            for e in &s.events {
                if matches!(e.action, EventAction::Connect { .. }) {
                    assert!(e.at + FLOW_SETTLE <= s.duration, "{}", case.toml());
                }
            }
            if case.may_recover() {
                assert!(
                    Duration::from_millis(case.heal_ms()) + RECOVERY_BOUND <= s.duration,
                    "{}",
                    case.toml()
                );
            }
        }
    }

    #[test]
    fn the_recovery_bound_is_the_documented_sum() {
        assert_eq!(RECOVERY_BOUND, Duration::from_secs(110));
    }

    #[test]
    fn failures_are_written_as_scenarios_that_load() {
        let case = sample(7);
        let failure = Failure {
            invariant: "recovers",
            detail: "an example".to_string(),
            expect: Some("[expect]\ntunnel = \"DTLS\"\n".to_string()),
        };
        let (file, text) = write_failure(&case, &failure);
        assert!(text.starts_with("# swarm failure: invariant `recovers` broken"));
        let s = scenario::load_file(&file).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.expect.tunnel, Some(TunnelState::Dtls));
        let _ = std::fs::remove_file(file);
    }

    /// A healthy case passes every check as run; each check then fires on a report (or
    /// scenario) changed to break exactly its invariant.
    #[test]
    fn each_check_fires_on_a_report_that_breaks_it() {
        let mut case = sample(3);
        case.pops.truncate(1);
        case.pops[0].cert = 0;
        case.backup.2 = 0;
        (case.fail_close, case.mode, case.ports) = (true, 2, 0);
        case.managed.clear();
        case.exceptions.clear();
        (case.bypass_teams, case.private_apps, case.inspect_all) = (false, false, false);
        case.host_rules.clear();
        case.perimeter_rules.clear();
        case.proxy = None;
        case.faults.clear();
        case.rule_events.clear();
        case.connects = vec![ConnectGen {
            share: 500,
            process: 0,
            origin: 0,
            port: 0,
            via_proxy: false,
        }];
        let s = scenario::load_str(&case.toml(), Path::new("swarm.toml"))
            .unwrap_or_else(|e| panic!("{e}"));
        let r = run(&s).unwrap_or_else(|f| panic!("{f}"));
        assert_eq!(r.flows.len(), 1, "{}", r.story());
        assert_eq!(r.flows[0].verdict, Verdict::Tunneled, "{}", r.story());
        assert!(healthy_at_end(&case, &s, &r).is_some());
        let holds = [
            deterministic(&r, &r),
            one_record_per_connect(&s, &r),
            fail_close(&s, &r),
            tenant_ca_only(&s, &r),
            recovers(&case, &s, &r),
        ];
        for result in holds {
            assert!(result.is_ok(), "{result:?}");
        }

        let mut other = r.clone();
        other.log[0].push('!');
        assert_eq!(
            deterministic(&r, &other).map_err(|f| f.invariant),
            Err("deterministic")
        );
        let mut lost = r.clone();
        lost.flows.clear();
        assert_eq!(
            one_record_per_connect(&s, &lost).map_err(|f| f.invariant),
            Err("one-record-per-connect")
        );
        let mut leaked = r.clone();
        leaked.flows[0].verdict = Verdict::Direct;
        let failure = fail_close(&s, &leaked).map_err(|f| f.invariant);
        assert_eq!(failure, Err("fail-close"));
        let mut rogue = s.clone();
        rogue.pops[0].cert = scenario::CertKind::Untrusted;
        assert_eq!(
            tenant_ca_only(&rogue, &r).map_err(|f| f.invariant),
            Err("tenant-ca-only")
        );
        let mut down = r.clone();
        down.outcome.tunnel = TunnelState::Down;
        assert_eq!(
            recovers(&case, &s, &down).map_err(|f| f.invariant),
            Err("recovers")
        );
        // Fail open: the same leaked flow is allowed.
        let mut open = s.clone();
        open.client.fail_close = false;
        assert!(fail_close(&open, &leaked).is_ok());
    }
}
