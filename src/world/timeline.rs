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

/// A timeline line: `text` stamped with `at`.
pub fn stamped(at: Duration, text: &str) -> String {
    format!("+{}.{:03}s {text}", at.as_secs(), at.subsec_millis())
}
