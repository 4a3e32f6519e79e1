//! The capture reader: `read_capture` on any file (pcap or pcapng, damaged or not).
//! Packets come out in file order; an error names the file.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("steerlab-fuzz-capture-{}.pcap", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("the scratch file is writable");
    match steerlab::pcap::read::read_capture(path) {
        Ok((packets, _skipped)) => {
            let mut last = 0;
            for p in &packets {
                assert!(p.number > last);
                last = p.number;
                assert!(p.payload.len() <= data.len());
            }
        }
        Err(e) => assert!(e.to_string().contains("steerlab-fuzz-capture-")),
    }
});
