//! `run until`: finding the first time a condition holds without a live simulation.
//!
//! Runs are from t = 0, so each check costs a run. [`search`] runs to growing horizons
//! (10 s, then 4 times further each time, up to the cap), tries the times where the
//! agent's log or the world's timeline says something that can make the condition
//! true, and bisects when none of those is it.

use std::collections::BTreeSet;
use std::time::Duration;

use super::command::Until;
use crate::logs::events::{Event as LogEvent, classify};
use crate::logs::parse::parse_log;
use crate::report::RunReport;
use crate::scenario::{TunnelState, parse_clock};
use crate::world;

/// Candidate times tried per horizon before bisecting.
const MAX_CANDIDATES: usize = 8;

/// Finds the first time in `(now, end]` the goal holds: runs to growing horizons,
/// checks the times where the log or the timeline says something relevant, and
/// falls back to bisecting when none of them is it.
pub fn search(
    goal: &Goal,
    now: Duration,
    end: Duration,
    epoch_ms: i64,
    run_to: impl Fn(Duration) -> Result<RunReport, String>,
) -> Result<(Duration, RunReport, bool), String> {
    let mut checked = now;
    let mut horizon = now;
    let mut span = Duration::from_secs(10);
    loop {
        horizon = (horizon + span).min(end);
        span *= 4;
        let long = run_to(horizon)?;
        for t in goal
            .candidates(&long, epoch_ms, checked, horizon)
            .into_iter()
            .take(MAX_CANDIDATES)
        {
            for t in [t, t + world::TICK] {
                if t > horizon {
                    continue;
                }
                let report = if t == horizon {
                    long.clone()
                } else {
                    run_to(t)?
                };
                if goal.holds(&report) {
                    return Ok((t, report, true));
                }
            }
        }
        if goal.holds(&long) {
            // Bisect (checked, horizon]: not holding at `lo`, holding at `hi`.
            let (mut lo, mut hi, mut at_hi) = (checked, horizon, long);
            while hi - lo > world::TICK {
                let mid = lo + (hi - lo) / 2;
                let mid = Duration::from_millis(mid.as_millis() as u64);
                if mid <= lo {
                    break;
                }
                let report = run_to(mid)?;
                if goal.holds(&report) {
                    (hi, at_hi) = (mid, report);
                } else {
                    lo = mid;
                }
            }
            return Ok((hi, at_hi, true));
        }
        checked = horizon;
        if horizon >= end {
            return Ok((horizon, long, false));
        }
    }
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

    /// Times in `(after, until]` where `r`'s lines suggest the goal may start to hold.
    fn candidates(
        &self,
        r: &RunReport,
        epoch_ms: i64,
        after: Duration,
        until: Duration,
    ) -> Vec<Duration> {
        let mut times = BTreeSet::new();
        match self {
            Goal::Tunnel { up } => {
                for line in &r.log {
                    let Some(at) = log_time(line, epoch_ms) else {
                        continue;
                    };
                    let Ok(entries) = parse_log(line) else {
                        continue;
                    };
                    let relevant = entries.iter().any(|e| {
                        let event = classify(e);
                        if *up {
                            matches!(event, LogEvent::Connected { .. })
                        } else {
                            matches!(
                                event,
                                LogEvent::Disconnected { .. }
                                    | LogEvent::Connecting { .. }
                                    | LogEvent::HandshakeFailed { .. }
                                    | LogEvent::ConnectFailed { .. }
                                    | LogEvent::Failover { .. }
                                    | LogEvent::FallbackToTls
                            )
                        }
                    });
                    if relevant {
                        times.insert(at);
                    }
                }
                if !up {
                    for line in world_lines(r) {
                        let Some((at, text)) = world_time(line) else {
                            continue;
                        };
                        if text.starts_with("stop agent") || text.starts_with("move ") {
                            times.insert(at);
                        }
                    }
                }
            }
            Goal::Flow { host, .. } => {
                let target = format!(" {host}:");
                let unresolved = format!(" could not resolve {host}:");
                for line in world_lines(r) {
                    let Some((at, text)) = world_time(line) else {
                        continue;
                    };
                    let text = text.to_ascii_lowercase();
                    if (text.starts_with("flow ") && text.contains(&target))
                        || text.contains(&unresolved)
                    {
                        times.insert(at);
                    }
                }
            }
        }
        times
            .into_iter()
            .filter(|t| *t > after && *t <= until)
            .collect()
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
        Some((last, rest)) if world_time(last).is_some_and(|(_, t)| t.starts_with("end: ")) => rest,
        _ => &r.timeline,
    }
}

/// `+12.345s text` into its time and text.
fn world_time(line: &str) -> Option<(Duration, &str)> {
    let rest = line.strip_prefix('+')?;
    let (stamp, text) = rest.split_once("s ")?;
    let (secs, ms) = stamp.split_once('.')?;
    let secs: u64 = secs.parse().ok()?;
    let ms: u64 = ms.parse().ok()?;
    let at = Duration::from_secs(secs).checked_add(Duration::from_millis(ms))?;
    Some((at, text))
}

/// The simulated time of an agent log line (`2019/10/14 11:40:49.871 ...`).
fn log_time(line: &str, epoch_ms: i64) -> Option<Duration> {
    let mut words = line.split_whitespace();
    let date = words.next()?.replace('/', "-");
    let time = words.next()?;
    let unix_ms = parse_clock(&format!("{date}T{time}Z")).ok()?;
    u64::try_from(unix_ms - epoch_ms)
        .ok()
        .map(Duration::from_millis)
}
