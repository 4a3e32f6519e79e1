//! Verdict latency with 100,000 exceptions (50,000 domain patterns, 50,000 networks),
//! against a linear scan of the same list measured in the same run.
//!
//! `cargo bench -p steerlab-agent --bench verdicts` prints both and their ratio.
#![allow(clippy::disallowed_methods, reason = "a benchmark measures wall time")]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use agent::core::steer::{FlowInfo, Mode, Steering, parse_net};

const EXCEPTIONS: usize = 100_000;
const FLOWS: usize = 10_000;

fn main() {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut patterns = Vec::with_capacity(EXCEPTIONS);
    for i in 0..EXCEPTIONS / 2 {
        let wild = if i % 2 == 0 { "*." } else { "" };
        patterns.push(format!("{wild}host{i}.example{}.com", i % 97));
    }
    for _ in 0..EXCEPTIONS / 2 {
        let ip = Ipv4Addr::from(rng.u32(..));
        patterns.push(format!("{ip}/{}", rng.u8(16..=32)));
    }
    let mut steering = Steering {
        mode: Mode::All,
        // Only exceptions decide here: private addresses are steered like the rest.
        private_apps: true,
        ..Steering::default()
    };
    for p in &patterns {
        steering.add_exception(p);
    }
    let flows: Vec<FlowInfo> = (0..FLOWS)
        .map(|i| FlowInfo {
            process: "chrome.exe".into(),
            names: vec![format!(
                "www.host{}.example{}.com",
                rng.usize(..EXCEPTIONS),
                i % 97
            )],
            dst: SocketAddr::new(IpAddr::V4(Ipv4Addr::from(rng.u32(..))), 443),
        })
        .collect();

    let indexed = time(|| {
        flows
            .iter()
            .filter(|f| {
                steering.decide(black_box(f), true).verdict != agent::core::steer::Verdict::Tunneled
            })
            .count()
    });
    let parsed = parse(&patterns);
    let linear = time(|| {
        flows
            .iter()
            .filter(|f| linear_scan(&parsed, black_box(f)))
            .count()
    });
    assert_eq!(
        indexed.1, linear.1,
        "both ways must find the same exceptions"
    );
    let per = |d: Duration| d.as_nanos() as f64 / FLOWS as f64;
    println!(
        "verdicts with {EXCEPTIONS} exceptions, {FLOWS} flows, {} matched",
        indexed.1
    );
    println!(
        "  indexed (DomainSet + NetSet): {:>12.0} ns/flow",
        per(indexed.0)
    );
    println!(
        "  linear scan, pre-parsed:      {:>12.0} ns/flow",
        per(linear.0)
    );
    println!(
        "  ratio: indexed is {:.0}x faster",
        per(linear.0) / per(indexed.0)
    );
}

/// The best of five runs.
fn time(mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut out = 0;
    for _ in 0..5 {
        let start = Instant::now();
        out = f();
        best = best.min(start.elapsed());
    }
    (best, out)
}

/// One pre-parsed exception, for the baseline.
enum Pattern {
    Net(u32, u32),
    Exact(String),
    Below(String),
}

fn parse(patterns: &[String]) -> Vec<Pattern> {
    patterns
        .iter()
        .map(|p| match parse_net(p) {
            Some((IpAddr::V4(n), len)) => {
                let mask = if len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(len))
                };
                Pattern::Net(u32::from(n) & mask, mask)
            }
            _ => match p.strip_prefix("*.") {
                Some(suffix) => Pattern::Below(format!(".{suffix}")),
                None => Pattern::Exact(p.clone()),
            },
        })
        .collect()
}

/// What a naive client would do: test every (pre-parsed) pattern in turn.
fn linear_scan(patterns: &[Pattern], flow: &FlowInfo) -> bool {
    let ip = match flow.dst.ip() {
        IpAddr::V4(v4) => u32::from(v4),
        IpAddr::V6(_) => return false,
    };
    patterns.iter().any(|p| match p {
        Pattern::Net(net, mask) => ip & mask == *net,
        Pattern::Exact(name) => flow.names.iter().any(|n| n == name),
        Pattern::Below(suffix) => flow.names.iter().any(|n| n.ends_with(suffix.as_str())),
    })
}
