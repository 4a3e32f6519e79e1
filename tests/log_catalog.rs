//! Every line the agent writes is a line the reader knows: over every bundled scenario's
//! snapshot (the agent's log as `steerlab run` wrote it), each log line parses and
//! classifies as a known event, so `log parse`, `log compare` and `diagnose` read the
//! simulator's logs with nothing left unknown.

use std::collections::BTreeMap;
use std::path::Path;

use steerlab::logs::events::{Event, classify};
use steerlab::logs::parse::parse_log;

#[test]
fn every_line_of_every_bundled_scenarios_log_is_a_known_event() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "snap"))
        .collect();
    files.sort();
    assert!(
        files.len() > 50,
        "the bundled scenarios' snapshots: {files:?}"
    );
    // Unknown shapes, with the first file that has each.
    let mut unknown: BTreeMap<String, String> = BTreeMap::new();
    let mut lines = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        // The agent's log: the lines in the nsdebuglog shape (the timeline's start with `+`).
        let log: Vec<&str> = text
            .lines()
            .filter(|l| l.as_bytes().first().is_some_and(u8::is_ascii_digit))
            .collect();
        let entries = parse_log(&log.join("\n")).unwrap_or_else(|e| panic!("{file:?}: {e}"));
        lines += entries.len();
        for entry in entries {
            if classify(&entry) == Event::Unknown {
                unknown
                    .entry(format!("{} {}", entry.component, entry.message))
                    .or_insert_with(|| file.display().to_string());
            }
        }
    }
    assert!(lines > 1000, "{lines} lines read");
    assert!(
        unknown.is_empty(),
        "{} line shapes the reader does not know:\n{}",
        unknown.len(),
        unknown
            .iter()
            .map(|(line, file)| format!("  {line}    ({file})"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
