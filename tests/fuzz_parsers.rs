//! The fuzz targets' entry points on proptest-generated input, so that CI covers them
//! without a fuzzer (the fuzzers themselves live in `fuzz/`, see docs/swarm.md).
//!
//! Each property feeds arbitrary bytes, and bytes mutated from a real input, to one
//! parser and checks what must hold for any input: no panic, and the parser's own
//! promises (counts, limits, error text, round trips).

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant};

use agent::core::steer::DnsMap;
use agent::pac::{PacEnv, find_proxy};
use proptest::prelude::*;

/// A fixed seed: CI runs the same cases every time (`PROPTEST_RNG_SEED` overrides it).
fn config(cases: u32) -> ProptestConfig {
    let rng_seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00f0_2210);
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(rng_seed),
        ..ProptestConfig::default()
    }
}

/// Bytes: fully random, or a real input with a few bytes overwritten and maybe cut.
fn mutated(seed: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    let flips = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8);
    let mutated = (flips, any::<prop::sample::Index>()).prop_map(move |(flips, cut)| {
        let mut bytes = seed.to_vec();
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        bytes
    });
    prop_oneof![prop::collection::vec(any::<u8>(), 0..600), mutated]
}

/// A real DNS answer: www.box.com, CNAME to box.map.fastly.net, then an A record.
const DNS_ANSWER: &[u8] = &[
    0x40, 0x01, 0x81, 0x80, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, // header
    3, b'w', b'w', b'w', 3, b'b', b'o', b'x', 3, b'c', b'o', b'm', 0, 0x00, 0x01, 0x00, 0x01, 0xc0,
    0x0c, 0x00, 0x05, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x0a, // CNAME, ttl 60
    3, b'b', b'o', b'x', 3, b'm', b'a', b'p', 0xc0, 0x10, // box.map.box.com
    0xc0, 0x29, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x04, 107, 152, 27, 197,
];

proptest! {
    #![proptest_config(config(300))]

    /// DNS answer capture: any bytes either fail to parse or record pairs whose names
    /// all resolve back to the addresses they were recorded for.
    #[test]
    fn dns_map_learn(bytes in mutated(DNS_ANSWER)) {
        #[allow(clippy::disallowed_methods, reason = "a base instant; nothing is timed")]
        let now = Instant::now();
        let mut map = DnsMap::default();
        if let Ok(count) = map.learn(&bytes, now) {
            let pairs: Vec<(String, IpAddr)> =
                map.live_pairs(now).map(|(n, ip)| (n.to_string(), ip)).collect();
            prop_assert!(pairs.len() <= count);
            for (name, ip) in &pairs {
                prop_assert!(map.names(*ip, now).contains(&name.as_str()));
                prop_assert_eq!(name.to_ascii_lowercase(), name.clone());
            }
            // Nothing outlives the largest TTL a record can carry.
            map.expire(now + Duration::from_secs(u64::from(u32::MAX) + 1));
            prop_assert_eq!(map.live_pairs(now + Duration::from_secs(u64::from(u32::MAX) + 1)).count(), 0);
        }
    }

    /// The scenario loader: any text loads or gives one error that points inside the
    /// text and renders with its file name.
    #[test]
    fn scenario_load_str(bytes in mutated(SCENARIO.as_bytes())) {
        let text = String::from_utf8_lossy(&bytes);
        match steerlab::scenario::load_str(&text, Path::new("fuzz.toml")) {
            Ok(s) => prop_assert!(!s.pops.is_empty()),
            Err(e) => {
                prop_assert!(e.line >= 1 && e.column >= 1 && e.width >= 1);
                prop_assert!(e.line <= text.lines().count().max(1) + 1, "line {} of {:?}", e.line, text);
                let rendered = e.to_string();
                prop_assert!(rendered.starts_with("error: "), "{}", rendered);
                prop_assert!(rendered.contains("fuzz.toml:"), "{}", rendered);
            }
        }
    }

    /// The nsdebuglog parser: any text parses to entries with line numbers inside the
    /// text and offsets from the first entry, or says it is not a log.
    #[test]
    fn nsdebuglog_parse(bytes in mutated(LOG.as_bytes())) {
        let text = String::from_utf8_lossy(&bytes);
        match steerlab::logs::parse::parse_log(&text) {
            Ok(entries) => {
                prop_assert!(!entries.is_empty());
                prop_assert_eq!(entries[0].offset_ms, 0);
                let lines = text.lines().count();
                let mut last = 0;
                for e in &entries {
                    prop_assert!(e.line > last && e.line <= lines);
                    last = e.line;
                    prop_assert!(!e.component.is_empty());
                }
            }
            Err(e) => prop_assert_eq!(e.lines, text.lines().count()),
        }
    }

    /// The site proxy's CONNECT request parser (src/world/proxy.rs): for any request
    /// it answers nothing (an incomplete head) or exactly one status line; a complete
    /// head always gets an answer; 405 exactly when the method is not CONNECT; 200 only
    /// for a CONNECT to a name or address it knows, on the port that listens.
    #[test]
    fn connect_request(request in mutated(CONNECT_REQUEST)) {
        // The replay's reader of the same bytes (src/pcap/sniff.rs).
        use steerlab::pcap::sniff::{Sniffed, sniff};
        let _ = sniff(&request, false);
        if let Sniffed::Http(http) = sniff(&request, true) {
            prop_assert!(http.head_len <= request.len());
            if let Some((host, _)) = &http.connect {
                prop_assert!(request.starts_with(b"CONNECT "));
                prop_assert!(!host.is_empty() && host.bytes().all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase()));
            }
        }
        let answer = proxy_answer(&request);
        let head = request
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| &request[..i + 4])
            .filter(|h| h.len() <= 8 * 1024);
        let status = ANSWERS.iter().find(|a| answer == a.as_bytes());
        prop_assert!(answer.is_empty() || status.is_some(), "unexpected answer {:?}", String::from_utf8_lossy(&answer));
        let Some(head) = head else {
            prop_assert!(answer.is_empty(), "an answer to an incomplete head: {:?}", String::from_utf8_lossy(&answer));
            return Ok(());
        };
        // Every complete head gets an answer, bytes after it or not (see
        // `proxy_error_answer_survives_bytes_after_the_head`).
        let Some(status) = status else {
            prop_assert!(false, "a complete head got no answer: {:?}", String::from_utf8_lossy(head));
            return Ok(());
        };
        let text = String::from_utf8_lossy(head);
        let mut words = text.lines().next().unwrap_or("").split_whitespace();
        let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        prop_assert_eq!(status.contains(" 405 "), method != "CONNECT", "{:?}", text);
        if status.contains(" 200 ") {
            let (host, port) = target.rsplit_once(':').unwrap_or_default();
            prop_assert!(port.parse::<u16>() == Ok(443), "{:?}", text);
            prop_assert!(host.eq_ignore_ascii_case("www.box.com") || host == "107.152.27.197", "{:?}", text);
        }
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// The PAC evaluator: any script, URL and host give an answer or an error, within
    /// the budgets (the test would hang otherwise), and an answer's choices are read
    /// from what the script returned.
    #[test]
    fn pac_find_proxy(script in pac_script(), url in "[ -~]{0,60}", host in "[ -~]{0,30}") {
        let env = PacEnv {
            my_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 10)),
            now_unix_ms: 1_571_053_240_000,
            names: [("gateway-acme.goskope.com".to_string(), IpAddr::V4(Ipv4Addr::new(8, 36, 116, 35)))].into_iter().collect(),
        };
        if let Ok(answer) = find_proxy(&script, &url, &host, &env) {
            prop_assert_eq!(agent::pac::parse_choices(&answer.returned), Ok(answer.choices.clone()));
            prop_assert!(answer.alerts.len() <= agent::pac::MAX_ALERTS);
        }
    }

    /// The capture reader: any file is read, or refused with an error naming it.
    #[test]
    fn capture_read(bytes in prop_oneof![mutated(PCAP), mutated(PCAPNG)]) {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-parsers");
        std::fs::create_dir_all(&dir).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let path = dir.join(format!("capture-{}.pcap", std::process::id()));
        let mut file = std::fs::File::create(&path).map_err(|e| TestCaseError::fail(e.to_string()))?;
        file.write_all(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        drop(file);
        match steerlab::pcap::read::read_capture(&path) {
            Ok((packets, _skipped)) => {
                let mut last = 0;
                for p in &packets {
                    prop_assert!(p.number > last);
                    last = p.number;
                    prop_assert!(p.payload.len() <= bytes.len());
                }
            }
            Err(e) => prop_assert!(e.to_string().contains("capture-"), "{}", e),
        }
    }
}

/// Scripts: arbitrary text, or a real PAC file with a fragment spliced in (loops,
/// throws, helpers on odd input, huge strings).
fn pac_script() -> impl Strategy<Value = String> {
    let fragments = prop::sample::select(vec![
        "while(true){}",
        "throw 'x';",
        "return 42;",
        "return null;",
        "return 'PROXY ';",
        "return 'SOCKS5 a:1; DIRECT; PROXY [::1]:99999';",
        "return shExpMatch(host, '*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*a');",
        "return isInNet(dnsResolve(host), '10.0.0.0', '255.0.0.0') ? 'DIRECT' : 'PROXY p:1';",
        "var s='x'; for(;;){ s = s + s; }",
        "function f(){ return f(); } return f();",
        "alert(url); alert(host); return 'DIRECT';",
        "return weekdayRange('MON','FRI') && timeRange(0, 23) ? 'DIRECT' : 'PROXY q:8080';",
    ]);
    prop_oneof![
        "[ -~]{0,80}",
        fragments.prop_map(|f| format!("function FindProxyForURL(url, host) {{ {f} }}")),
    ]
}

const CONNECT_REQUEST: &[u8] = b"CONNECT www.box.com:443 HTTP/1.1\r\nHost: www.box.com:443\r\n\r\n";

/// Every answer the site proxy gives.
const ANSWERS: [&str; 4] = [
    "HTTP/1.1 200 Connection established\r\n\r\n",
    "HTTP/1.1 400 Bad Request\r\n\r\n",
    "HTTP/1.1 405 Method Not Allowed\r\n\r\n",
    "HTTP/1.1 502 Bad Gateway\r\n\r\n",
];

/// Sends `request` to the world's site proxy in a small turmoil world (the proxy, one
/// origin listening on 443, the endpoint) and returns what came back within 5 s.
fn proxy_answer(request: &[u8]) -> Vec<u8> {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let proxy = Ipv4Addr::new(10, 10, 10, 11);
    let origin = Ipv4Addr::new(107, 152, 27, 197);
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(30))
        .rng_seed(1)
        .build();
    let names = Arc::new(BTreeMap::from([("www.box.com".to_string(), origin)]));
    sim.host(IpAddr::V4(proxy), move || {
        steerlab::world::proxy::Proxy {
            names: names.clone(),
        }
        .serve(8080)
    });
    sim.host(IpAddr::V4(origin), || async {
        let listener = turmoil::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, 443)).await?;
        let mut held = Vec::new();
        loop {
            held.push(listener.accept().await?.0);
        }
    });
    let answer = Arc::new(Mutex::new(Vec::new()));
    let out = answer.clone();
    let request = request.to_vec();
    sim.client(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 10)), async move {
        let mut stream = turmoil::net::TcpStream::connect((proxy, 8080)).await?;
        stream.write_all(&request).await?;
        let mut got = Vec::new();
        let read = async {
            let mut buf = [0u8; 512];
            while let Ok(n @ 1..) = stream.read(&mut buf).await {
                got.extend_from_slice(&buf[..n]);
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
        if let Ok(mut out) = out.lock() {
            *out = got;
        }
        Ok(())
    });
    sim.run().expect("the proxy world runs");
    let mut got = Vec::new();
    if let Ok(mut answer) = answer.lock() {
        got = std::mem::take(&mut *answer);
    }
    got
}

const SCENARIO: &str = include_str!("../scenarios/pop-selection/doh-partitioned-ldns-far-pop.toml");
const LOG: &str = include_str!("fixtures/customer-doh-timeout.log");

/// A pcap (microseconds, Ethernet) with one UDP datagram: a DNS query from
/// 10.0.0.10:50000 to 10.0.0.53:53.
const PCAP: &[u8] = &[
    0xd4, 0xc3, 0xb2, 0xa1, 0x02, 0x00, 0x04, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0x01,
    0, 0, 0, // header, link type 1
    0x38, 0x5e, 0xa4, 0x5d, 0, 0, 0, 0, 0x3e, 0, 0, 0, 0x3e, 0, 0, 0, // record header
    2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00, // ethernet
    0x45, 0, 0, 0x30, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 10, 10, 0, 0, 53, // IPv4
    0xc3, 0x50, 0, 53, 0, 0x1c, 0, 0, // UDP
    0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1, 0, // DNS (20 bytes)
];

/// A pcapng: section header, interface (Ethernet), one enhanced packet with the same
/// frame as [`PCAP`].
const PCAPNG: &[u8] = &[
    0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 28, 0, 0, 0, // SHB
    1, 0, 0, 0, 20, 0, 0, 0, 1, 0, 0, 0, 0xff, 0xff, 0, 0, 20, 0, 0, 0, // IDB
    6, 0, 0, 0, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x3e, 0, 0, 0, 0x3e, 0, 0, 0, 2,
    0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45, 0, 0, 0x30, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0,
    0, 10, 10, 0, 0, 53, 0xc3, 0x50, 0, 53, 0, 0x1c, 0, 0, 0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0,
    0, 0, 1, b'a', 0, 0, 1, 0, 1, 0, 0, 0, // frame, padded to 64
    96, 0, 0, 0, // EPB
];

/// The seeds are what they claim: the DNS answer teaches two names, the captures
/// hold one datagram each, the scenario loads and the log parses.
#[test]
fn seeds_are_real_inputs() {
    #[allow(
        clippy::disallowed_methods,
        reason = "a base instant; nothing is timed"
    )]
    let now = Instant::now();
    let mut map = DnsMap::default();
    assert_eq!(map.learn(DNS_ANSWER, now), Ok(2));
    let ip = IpAddr::V4(Ipv4Addr::new(107, 152, 27, 197));
    assert_eq!(map.names(ip, now), vec!["box.map.box.com", "www.box.com"]);
    steerlab::scenario::load_str(SCENARIO, Path::new("seed.toml")).expect("the seed loads");
    assert!(
        steerlab::logs::parse::parse_log(LOG)
            .expect("the seed parses")
            .len()
            > 3
    );
    for (name, bytes) in [("seed.pcap", PCAP), ("seed.pcapng", PCAPNG)] {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-parsers");
        std::fs::create_dir_all(&dir).expect("a temp folder");
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("written");
        let (packets, _) = steerlab::pcap::read::read_capture(&path).expect("the seed reads");
        assert_eq!(packets.len(), 1, "{name}");
        assert_eq!(packets[0].payload.len(), 20, "{name}");
    }
    assert_eq!(proxy_answer(CONNECT_REQUEST), ANSWERS[0].as_bytes());
    assert_eq!(
        proxy_answer(b"GET / HTTP/1.1\r\n\r\n"),
        ANSWERS[2].as_bytes()
    );
    assert_eq!(
        proxy_answer(b"CONNECT nowhere.example:443 HTTP/1.1\r\n\r\n"),
        ANSWERS[3].as_bytes()
    );
}

/// Found by the `connect_request` fuzz target: when the client had sent bytes after the
/// request head (a client that pipelines its TLS ClientHello behind the CONNECT), the
/// site proxy's 400/405/502 answer never reached it: the connection was dropped with
/// those bytes unread, which reset it and discarded the answer. The proxy now shuts its
/// side and drains before closing (`refuse` in src/world/proxy.rs).
#[test]
fn proxy_error_answer_survives_bytes_after_the_head() {
    assert_eq!(
        proxy_answer(b"GET / HTTP/1.1\r\n\r\n"),
        ANSWERS[2].as_bytes()
    );
    assert_eq!(
        proxy_answer(b"GET / HTTP/1.1\r\n\r\nEXTRA"),
        ANSWERS[2].as_bytes()
    );
}
