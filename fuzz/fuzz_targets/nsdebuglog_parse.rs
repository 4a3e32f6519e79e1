//! The nsdebuglog parser: `parse_log` on any text, then every entry classified (what
//! `steerlab log parse` does).
#![no_main]

use libfuzzer_sys::fuzz_target;
use steerlab::logs::events::classify;
use steerlab::logs::parse::parse_log;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse_log(&text) {
        Ok(entries) => {
            assert_eq!(entries[0].offset_ms, 0);
            let lines = text.lines().count();
            let mut last = 0;
            for e in &entries {
                assert!(e.line > last && e.line <= lines);
                last = e.line;
                let event = classify(e);
                let _ = event.meaning();
            }
        }
        Err(e) => assert_eq!(e.lines, text.lines().count()),
    }
});
