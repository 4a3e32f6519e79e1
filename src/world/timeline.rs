//! The world's timeline: one line per transition (faults, rule changes, flow outcomes),
//! stamped with simulated time.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A shared, append-only list of timeline lines.
#[derive(Debug, Clone, Default)]
pub struct Timeline(Arc<Mutex<Vec<String>>>);

impl Timeline {
    /// Appends a line stamped with the simulation's current time.
    pub fn push(&self, text: String) {
        let now = turmoil::sim_elapsed().unwrap_or_default();
        self.push_at(now, text);
    }

    /// Appends a line stamped with `at`.
    pub fn push_at(&self, at: Duration, text: String) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push(stamped(at, &text));
        }
    }

    /// How many lines so far.
    pub fn len(&self) -> usize {
        self.0.lock().map(|l| l.len()).unwrap_or_default()
    }

    /// Whether no line was written yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

/// `+12.345s`, the timeline's stamp of `at`.
pub fn stamp(at: Duration) -> String {
    format!("+{}.{:03}s", at.as_secs(), at.subsec_millis())
}

/// A timeline line: `text` stamped with `at`.
pub fn stamped(at: Duration, text: &str) -> String {
    format!("{} {text}", stamp(at))
}

/// A timeline line's time and text (a bare stamp has no text).
pub fn parse(line: &str) -> Option<(Duration, &str)> {
    let rest = line.strip_prefix('+')?;
    let (time, text) = match rest.split_once("s ") {
        Some(split) => split,
        None => (rest.strip_suffix('s')?, ""),
    };
    let (secs, millis) = time.split_once('.')?;
    let secs: u64 = secs.parse().ok()?;
    let millis: u64 = millis.parse().ok()?;
    if millis >= 1000 {
        return None;
    }
    Duration::from_secs(secs)
        .checked_add(Duration::from_millis(millis))
        .map(|at| (at, text))
}
