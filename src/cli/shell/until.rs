//! `run until`: finding the first time a condition holds, on the session's live world.
//!
//! [`search`] steps the world one tick at a time and reads the run only when something a
//! report shows has changed (a log line, a timeline line, a flow, the tunnel's state), so
//! the first time the condition holds is found exactly, at the cost of the time stepped.

use std::time::Duration;

use super::command::Until;
use crate::report::RunReport;
use crate::scenario::TunnelState;
use crate::world::{self, World, WorldError, timeline};

/// Finds the first time in `(now, end]` the goal holds, stepping `world` in place one
/// tick at a time and checking the run whenever what a report would show has changed.
/// Returns the time it stopped at, the run to there, and whether the goal holds.
pub fn search(
    goal: &Goal,
    world: &mut World,
    end: Duration,
) -> Result<(Duration, RunReport, bool), WorldError> {
    let mut seen = world.progress();
    let mut t = world.now();
    while t < end {
        t += world::TICK;
        world.advance_to(t)?;
        let progress = world.progress();
        if progress != seen {
            seen = progress;
            let report = world.report();
            if goal.holds(&report) {
                return Ok((t, report, true));
            }
        }
    }
    Ok((t, world.report(), false))
}

/// What `run until` waits for, with what was there before it started.
#[derive(Debug, Clone)]
pub enum Goal {
    Tunnel {
        up: bool,
    },
    Flow {
        host: String,
        flows_before: usize,
        unresolved_before: usize,
    },
}

impl Goal {
    pub fn new(until: &Until, now: &RunReport) -> Goal {
        match until {
            Until::TunnelUp => Goal::Tunnel { up: true },
            Until::TunnelDown => Goal::Tunnel { up: false },
            Until::Flow(host) => Goal::Flow {
                host: host.to_ascii_lowercase(),
                flows_before: flows_to(now, host),
                unresolved_before: unresolved(now, host),
            },
        }
    }

    pub fn name(&self) -> String {
        match self {
            Goal::Tunnel { up: true } => "tunnel-up".to_string(),
            Goal::Tunnel { up: false } => "tunnel-down".to_string(),
            Goal::Flow { host, .. } => format!("a flow to {host}"),
        }
    }

    pub fn holds(&self, r: &RunReport) -> bool {
        match self {
            Goal::Tunnel { up } => (r.outcome.tunnel != TunnelState::Down) == *up,
            Goal::Flow {
                host,
                flows_before,
                unresolved_before,
            } => flows_to(r, host) > *flows_before || unresolved(r, host) > *unresolved_before,
        }
    }

    /// What happened, once it holds in `r`.
    pub fn describe(&self, r: &RunReport) -> String {
        match self {
            Goal::Tunnel { up: true } => format!(
                "tunnel up ({}{})",
                r.outcome.tunnel.as_str(),
                r.outcome
                    .gateway
                    .as_ref()
                    .map(|g| format!(" to {g}"))
                    .unwrap_or_default()
            ),
            Goal::Tunnel { up: false } => "tunnel down".to_string(),
            Goal::Flow {
                host, flows_before, ..
            } => match r
                .flows
                .iter()
                .filter(|f| f.host.eq_ignore_ascii_case(host))
                .nth(*flows_before)
            {
                Some(f) => format!(
                    "flow {} {} {} ({}; {})",
                    f.process,
                    f.addr,
                    f.verdict.as_str(),
                    f.reason,
                    f.outcome
                ),
                None => format!("no flow to {host}: the app could not resolve it"),
            },
        }
    }
}

fn flows_to(r: &RunReport, host: &str) -> usize {
    r.flows
        .iter()
        .filter(|f| f.host.eq_ignore_ascii_case(host))
        .count()
}

fn unresolved(r: &RunReport, host: &str) -> usize {
    let needle = format!(" could not resolve {}:", host.to_ascii_lowercase());
    world_lines(r)
        .iter()
        .filter(|l| l.to_ascii_lowercase().contains(&needle))
        .count()
}

/// The timeline without its closing `end:` line (which every run adds).
pub fn world_lines(r: &RunReport) -> &[String] {
    match r.timeline.split_last() {
        Some((last, rest))
            if timeline::parse(last).is_some_and(|(_, t)| t.starts_with("end: ")) =>
        {
            rest
        }
        _ => &r.timeline,
    }
}
