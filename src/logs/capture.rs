//! A `tracing` layer that turns the agent's events (target [`agent::shell::LOG_TARGET`])
//! into nsdebuglog lines stamped by a caller-given clock.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use super::format::format_line;

/// The lines captured so far (shared with the layer).
#[derive(Debug, Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<String>>>);

impl Capture {
    /// How many lines so far.
    pub fn len(&self) -> usize {
        self.0.lock().map(|l| l.len()).unwrap_or_default()
    }

    /// Whether no line was written yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn push(&self, line: String) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push(line);
        }
    }
}

/// The layer; `clock` returns the current Unix time in milliseconds.
pub struct CaptureLayer<C> {
    capture: Capture,
    clock: C,
}

impl<C: Fn() -> i64> CaptureLayer<C> {
    /// A layer appending to `capture`.
    pub fn new(capture: Capture, clock: C) -> Self {
        CaptureLayer { capture, clock }
    }
}

impl<S, C> Layer<S> for CaptureLayer<C>
where
    S: Subscriber,
    C: Fn() -> i64 + 'static,
{
    // Only the agent's log events: every other callsite (turmoil's per-host span on every
    // tick, its trace events) is disabled outright, so the registry never builds those
    // spans. That was about 6% of a simulation's time.
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if wanted(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        wanted(metadata)
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if event.metadata().target() != agent::shell::LOG_TARGET {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let line = format_line(
            (self.clock)(),
            fields.pid.unwrap_or(1),
            fields.level,
            &fields.component,
            &fields.message,
        );
        self.capture.push(line);
    }
}

/// An agent log line: an event under [`agent::shell::LOG_TARGET`].
fn wanted(metadata: &Metadata<'_>) -> bool {
    metadata.is_event() && metadata.target() == agent::shell::LOG_TARGET
}

#[derive(Default)]
struct Fields {
    /// The agent's process id (`pid` field), when the shell gives one.
    pid: Option<u32>,
    level: u8,
    component: String,
    message: String,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "level" => self.level = u8::try_from(value).unwrap_or(0),
            "pid" => self.pid = u32::try_from(value).ok(),
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == "level" {
            self.level = u8::try_from(value).unwrap_or(0);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "component" => self.component = value.to_string(),
            "message" => self.message = value.to_string(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                self.message.clear();
                let _ = write!(self.message, "{value:?}");
            }
            "component" => {
                self.component.clear();
                let _ = write!(self.component, "{value:?}");
            }
            _ => {}
        }
    }
}
