//! What a run produced: the agent's log, the world's timeline, the outcome and flows,
//! and how to render them for people (the snapshot), for machines (JSON) and as a
//! one-line summary.
//!
//! - [`html`]: the self-contained HTML page of a run (`steerlab run --report`).
//! - [`sequence`]: its sequence diagram, from the endpoint's recorded traffic.
//! - [`exchange`]: that traffic collapsed to one arrow per exchange.

pub mod exchange;
pub mod html;
pub mod sequence;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::scenario::{ResolvedBy, TunnelState, Verdict};
use crate::world::registry::Registry;

/// The end state the `[expect]` table is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// How the gateway of the tunnel was resolved.
    pub resolved_by: Option<ResolvedBy>,
    /// The PoP name, or `backup`, the tunnel ends at.
    pub gateway: Option<String>,
    /// The tunnel at the end of the run.
    pub tunnel: TunnelState,
}

/// One app flow and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FlowRecord {
    /// The app's process name.
    pub process: String,
    /// The host it asked for.
    pub host: String,
    /// The address it went to (`ip:port`).
    pub addr: String,
    /// The agent's verdict.
    pub verdict: Verdict,
    /// Why.
    pub reason: String,
    /// What the app saw: connected, reset, timed out, refused by the gateway...
    pub outcome: String,
}

/// Everything one run produced.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The scenario's name.
    pub name: String,
    /// The scenario file.
    pub path: PathBuf,
    /// The seed used.
    pub seed: u64,
    /// Simulated time covered.
    pub simulated: Duration,
    /// Wall time taken (never part of the snapshot).
    pub wall: Duration,
    /// The agent's nsdebuglog lines.
    pub log: Vec<String>,
    /// The world's timeline, one line per transition.
    pub timeline: Vec<String>,
    /// The end state.
    pub outcome: Outcome,
    /// Every app flow, in order of appearance.
    pub flows: Vec<FlowRecord>,
    /// The world's hosts by address, with their roles and names (labels the addresses
    /// of a capture).
    pub hosts: Registry,
}

impl RunReport {
    /// The text a person reads and the snapshot holds: the agent's log, then the world.
    pub fn story(&self) -> String {
        let mut out = String::new();
        for line in &self.log {
            out.push_str(line);
            out.push('\n');
        }
        out.push_str("--- world\n");
        for line in &self.timeline {
            out.push_str(line);
            out.push('\n');
        }
        for flow in &self.flows {
            out.push_str(&format!(
                "flow {} {} {} {} ({}; {})\n",
                flow.process,
                flow.host,
                flow.addr,
                flow.verdict.as_str(),
                flow.reason,
                flow.outcome
            ));
        }
        out
    }

    /// The JSON object of the CLI contract.
    pub fn json(&self, passed: bool) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "file": self.path.display().to_string(),
            "seed": self.seed,
            "resolved_by": self.outcome.resolved_by.map(|r| r.as_str()),
            "gateway": self.outcome.gateway,
            "tunnel": self.outcome.tunnel.as_str(),
            "status": if passed { "passed" } else { "failed" },
            "flows": self.flows,
        })
    }
}

#[cfg(test)]
mod tests;
