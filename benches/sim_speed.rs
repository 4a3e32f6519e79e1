//! Simulation speed: simulated seconds per wall second of whole scenario runs, the
//! baseline being real time (a ratio of 1 would be a run as slow as the real client).
//!
//! `cargo bench --bench sim_speed`. Each benchmark runs one scenario once per
//! iteration; divan reports the wall time, and the ratio is `duration / time`:
//! - `timeout_heavy`: failover/everything-down.toml, 120 s of DoH, LDNS and connect
//!   timeouts and backoff with almost nothing on the wire;
//! - `busy`: steering/udp-all-traffic.toml, a tunnel and app flows;
//! - `thousand_endpoints` (only with `STEERLAB_BENCH_SCALE=1`): perf/thousand-endpoints.toml.

use std::path::Path;

use divan::Bencher;
use steerlab::scenario::{Scenario, load_file};

fn main() {
    divan::main();
}

fn scenario(path: &str) -> Scenario {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    load_file(&root.join(path)).expect("the scenario loads")
}

fn run(bencher: Bencher, path: &str) {
    let s = scenario(path);
    println!(
        "{path}: {} s simulated per iteration",
        s.duration.as_secs_f64()
    );
    bencher.bench_local(|| {
        let report = steerlab::world::run(&s, None).expect("the run completes");
        divan::black_box(report.log.len())
    });
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn timeout_heavy(bencher: Bencher) {
    run(bencher, "scenarios/failover/everything-down.toml");
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn busy(bencher: Bencher) {
    run(bencher, "scenarios/steering/udp-all-traffic.toml");
}

#[divan::bench(sample_count = 1, sample_size = 1)]
fn thousand_endpoints(bencher: Bencher) {
    if std::env::var_os("STEERLAB_BENCH_SCALE").is_none() {
        println!("thousand_endpoints: set STEERLAB_BENCH_SCALE=1 to run it");
        bencher.bench_local(|| ());
        return;
    }
    run(bencher, "perf/thousand-endpoints.toml");
}
