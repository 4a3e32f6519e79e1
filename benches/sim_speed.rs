//! Simulation speed: simulated seconds per wall second of whole scenario runs, the
//! baseline being real time (a ratio of 1 would be a run as slow as the real client).
//!
//! `cargo bench --bench sim_speed`. Each benchmark runs one scenario once per
//! iteration; divan reports the wall time, and the ratio is `duration / time`:
//! - `timeout_heavy`: failover/everything-down.toml, 120 s of DoH, LDNS and connect
//!   timeouts and backoff with almost nothing on the wire;
//! - `busy`: steering/udp-all-traffic.toml, a tunnel and app flows;
//! - `outage_600s`: perf/outage-600s.toml, ten minutes of an outage of every gateway;
//! - `outage_600s_all_awake`: the same with no idle server host asleep (every host ticked
//!   on every step, as before hosts slept): the baseline for what sleeping saves;
//! - `shell_step_590s` and `shell_ten_steps_of_1s`: what the shell does with that file,
//!   stepping one [`World`] in place: the first step to 590 s, then ten `step 1s` from
//!   there (the world at 590 s is built outside the timing). The ratio of the two is
//!   what a late step costs against the run so far;
//! - `turmoil_floor_600s`: bare turmoil with as many hosts as the outage world has, the
//!   same tick and the same 600 s, every host idle (servers that accept nothing): the
//!   floor any world of that size stands on. `outage_600s` against it is the world's
//!   cost over turmoil's own;
//! - `turmoil_floor_600s_one_awake`: the same bare hosts with every server crashed, only
//!   the endpoint's host ticking: the floor of a world whose servers all sleep (turmoil
//!   still walks every link and host on every step);
//! - `thousand_endpoints` (only with `STEERLAB_BENCH_SCALE=1`): perf/thousand-endpoints.toml.

use std::path::Path;

use std::time::Duration;

use divan::Bencher;
use steerlab::scenario::{MAX_DURATION, Scenario, load_file};
use steerlab::world::{Captures, World};

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

#[divan::bench(sample_count = 3, sample_size = 1)]
fn outage_600s(bencher: Bencher) {
    run(bencher, OUTAGE);
}

const OUTAGE: &str = "perf/outage-600s.toml";

/// The same run with every host ticked on every step (no idle server sleeps): the
/// baseline for what sleeping saves.
#[divan::bench(sample_count = 3, sample_size = 1)]
fn outage_600s_all_awake(bencher: Bencher) {
    let s = scenario(OUTAGE);
    bencher.bench_local(|| {
        let mut world = World::new(&s, None, Captures::default()).expect("the world builds");
        world.keep_awake();
        world.advance_to(s.duration).expect("the world steps");
        divan::black_box(world.report().log.len())
    });
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn turmoil_floor_600s(bencher: Bencher) {
    bare_turmoil(bencher, false);
}

/// Bare turmoil with the outage world's hosts, every server crashed after the first
/// step: only the endpoint's host ticks. The floor of a world whose servers all sleep;
/// what is left of it is turmoil's per-step walk over every link and host.
#[divan::bench(sample_count = 3, sample_size = 1)]
fn turmoil_floor_600s_one_awake(bencher: Bencher) {
    bare_turmoil(bencher, true);
}

fn bare_turmoil(bencher: Bencher, servers_asleep: bool) {
    let s = scenario(OUTAGE);
    let world = World::new(&s, None, Captures::default()).expect("the world builds");
    let hosts = world.sim_hosts();
    println!("{OUTAGE}: {} hosts", hosts.len());
    bencher.bench_local(|| {
        let mut sim = turmoil::Builder::new()
            .simulation_duration(s.duration + Duration::from_secs(1))
            .tick_duration(steerlab::world::TICK)
            .min_message_latency(steerlab::world::DEFAULT_LINK_LATENCY)
            .max_message_latency(steerlab::world::DEFAULT_LINK_LATENCY)
            .build();
        let (client, servers) = hosts.split_first().expect("a world has hosts");
        for ip in servers {
            sim.host(std::net::IpAddr::V4(*ip), || async {
                let listener = turmoil::net::TcpListener::bind(("0.0.0.0", 443)).await?;
                loop {
                    drop(listener.accept().await?);
                }
            });
        }
        let duration = s.duration;
        sim.client(std::net::IpAddr::V4(*client), async move {
            tokio::time::sleep(duration).await;
            Ok(())
        });
        if servers_asleep {
            sim.step().expect("the bare simulation steps");
            for ip in servers {
                sim.crash(std::net::IpAddr::V4(*ip));
            }
        }
        sim.run().expect("the bare simulation runs");
    });
}

/// A world for `s` as the shell keeps one: it may be stepped to the longest duration.
fn shell_world(s: &Scenario) -> World {
    World::with_horizon(s, None, Captures::default(), MAX_DURATION).expect("the world builds")
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn shell_step_590s(bencher: Bencher) {
    let s = scenario(OUTAGE);
    bencher.bench_local(|| {
        let mut world = shell_world(&s);
        world
            .advance_to(Duration::from_secs(590))
            .expect("the world steps");
        divan::black_box(world.report().log.len())
    });
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn shell_ten_steps_of_1s(bencher: Bencher) {
    let s = scenario(OUTAGE);
    bencher
        .with_inputs(|| {
            let mut world = shell_world(&s);
            world
                .advance_to(Duration::from_secs(590))
                .expect("the world steps");
            world
        })
        .bench_local_values(|mut world| {
            for k in 1..=10 {
                world
                    .advance_to(Duration::from_secs(590 + k))
                    .expect("the world steps");
                divan::black_box(world.report().log.len());
            }
        });
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
