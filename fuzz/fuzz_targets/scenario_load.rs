//! The scenario loader: `load_str` on any text gives a scenario or one error that points
//! inside the text.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match steerlab::scenario::load_str(&text, Path::new("fuzz.toml")) {
        Ok(s) => assert!(!s.pops.is_empty()),
        Err(e) => {
            assert!(e.line >= 1 && e.column >= 1 && e.width >= 1);
            assert!(e.line <= text.lines().count().max(1) + 1);
            let rendered = e.to_string();
            assert!(rendered.starts_with("error: "));
        }
    }
});
