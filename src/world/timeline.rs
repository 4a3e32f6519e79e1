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
            lines.push(format!(
                "+{}.{:03}s {text}",
                at.as_secs(),
                at.subsec_millis()
            ));
        }
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }
}
