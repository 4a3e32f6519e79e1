//! Replay throughput on a generated 1,000,000-packet capture (mixed DNS, TLS with split
//! ClientHellos, HTTP and UDP flows; the same file every time), in packets per second:
//! the whole replay (both passes: finding the endpoint, then DNS map, reassembly and a
//! verdict per flow), and the reader with the decoder alone.
//!
//! `cargo bench --bench replay`. `scripts/bench-replay-vs-tshark.sh` compares the same
//! file with `tshark -T fields`.

use std::path::PathBuf;
use std::sync::LazyLock;

use agent::core::steer::{DomainSet, Steering};
use divan::Bencher;
use divan::counter::ItemsCount;
use steerlab::pcap::CaptureReader;
use steerlab::pcap::decode::{Decoded, decode};

const PACKETS: usize = 1_000_000;

static CAPTURE: LazyLock<PathBuf> = LazyLock::new(|| {
    let path =
        std::env::temp_dir().join(format!("steerlab-bench-replay-{}.pcap", std::process::id()));
    let file = std::fs::File::create(&path).expect("create the capture");
    steerlab::pcap::synth::write_synthetic(file, PACKETS, 1).expect("write the capture");
    path
});

fn main() {
    divan::main();
    let _ = std::fs::remove_file(&*CAPTURE);
}

/// A steering configuration with managed domains, so decisions walk the lists.
fn steering() -> Steering {
    let mut managed = DomainSet::default();
    for i in 0..7 {
        managed.insert(&format!("*.example{i}.com"));
    }
    Steering {
        managed,
        ..Steering::default()
    }
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn replay(bencher: Bencher) {
    let path = &*CAPTURE;
    let steering = steering();
    bencher.counter(ItemsCount::new(PACKETS)).bench(|| {
        let report = steerlab::pcap::replay(path, None, steering.clone()).expect("replay");
        assert_eq!(report.packets, PACKETS);
        report.flows.len()
    });
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn read_and_decode(bencher: Bencher) {
    let path = &*CAPTURE;
    bencher.counter(ItemsCount::new(PACKETS)).bench(|| {
        let mut reader = CaptureReader::open(path).expect("open");
        let mut segments = 0usize;
        while let Ok(Some(frame)) = reader.next_frame() {
            if let Decoded::Segment(s) = decode(frame.link, frame.data) {
                segments += s.payload.len().min(1);
            }
        }
        segments
    });
}
