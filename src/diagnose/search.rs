//! Running the candidates: each one is simulated, its repairs and flows placed on the
//! simulated timeline next to the steps they follow in the customer's log, its duration
//! trimmed to just after the last step the customer's log shows, and its final run
//! aligned with the customer's story on meaning (as `steerlab log compare` does).
//! Candidates run in parallel, one per core.

use std::path::Path;

use super::hypotheses::Candidate;
use super::plan::{Plan, PlanEvent};
use crate::logs::events::{Divergence, Step, align, explained, story};
use crate::logs::parse::{Entry, parse_log};
use crate::{expect, scenario, world};

/// How far past the customer's last entry the search runs (then trims).
const HORIZON_MS: u64 = 60_000;
/// How long a drafted run goes on after the last step it must show, at most.
const TAIL_MS: u64 = 3_000;

/// A candidate's final run.
#[derive(Debug, Clone)]
pub struct Tried {
    /// Index into the candidates.
    pub index: usize,
    /// The scenario file written for it.
    pub text: String,
    /// First divergence from the customer's story.
    pub divergence: Option<Divergence>,
    /// Customer steps the run reproduces.
    pub explained: usize,
    /// `[expect]` misses of the final run (the evidence's end state).
    pub misses: Vec<String>,
    /// Why it could not run, if it could not.
    pub error: Option<String>,
    /// The run's log lines.
    pub log: Vec<String>,
    /// Simulations run for it.
    pub runs: usize,
}

/// Runs every candidate against `customer` on `jobs` threads; results in candidate order.
/// `span_ms` is how long the evidence lasts (the log's, or a capture's when there is no
/// log).
pub fn search(
    candidates: &[Candidate],
    customer: &[Entry],
    span_ms: i64,
    jobs: usize,
) -> Vec<Tried> {
    let items: Vec<(usize, &Candidate)> = candidates.iter().enumerate().collect();
    world::run_many(jobs, items, |(i, c)| evaluate(i, c, customer, span_ms))
}

struct Sim {
    entries: Vec<Entry>,
    clock_ms: i64,
    report: crate::report::RunReport,
}

fn simulate(plan: &Plan) -> Result<Sim, String> {
    let text = plan.to_toml();
    let scenario = scenario::load_str(&text, Path::new("diagnosed.toml"))
        .map_err(|e| format!("the drafted scenario does not load: {e}"))?;
    let report = world::run(&scenario, None).map_err(|e| e.to_string())?;
    let entries = parse_log(&report.log.join("\n")).unwrap_or_default();
    Ok(Sim {
        entries,
        clock_ms: scenario.clock_unix_ms,
        report,
    })
}

/// Simulated time (ms since t = 0) of a simulated step.
fn at(sim: &Sim, step: &Step) -> u64 {
    let ms = sim.entries.get(step.index).map_or(0, |e| e.unix_ms) - sim.clock_ms;
    u64::try_from(ms).unwrap_or(0)
}

fn is_flow(step: &Step) -> bool {
    step.meaning.starts_with("flow to ") || step.meaning == "gateway refused a flow"
}

fn evaluate(index: usize, c: &Candidate, customer: &[Entry], span_ms: i64) -> Tried {
    let mut tried = Tried {
        index,
        text: String::new(),
        divergence: None,
        explained: 0,
        misses: Vec::new(),
        error: None,
        log: Vec::new(),
        runs: 0,
    };
    match place(c, customer, span_ms, &mut tried.runs) {
        Ok((plan, sim)) => {
            let full = story(customer);
            let simulated = story(&sim.entries);
            let alignment = align(&full, &simulated);
            // Evidence with no log (a capture alone) is judged by its end state only.
            tried.divergence = alignment.divergence.filter(|_| !full.is_empty());
            tried.explained = explained(&full, &simulated);
            tried.misses = plan_misses(&plan, &sim);
            tried.text = plan.to_toml();
            tried.log = sim.report.log.clone();
        }
        Err(e) => tried.error = Some(e),
    }
    tried
}

fn plan_misses(plan: &Plan, sim: &Sim) -> Vec<String> {
    let Ok(scenario) = scenario::load_str(&plan.to_toml(), Path::new("diagnosed.toml")) else {
        return vec!["the scenario does not load".into()];
    };
    expect::check(&scenario.expect, &sim.report)
        .iter()
        .map(|m| m.to_string())
        .collect()
}

/// The candidate's final plan and run: anchored repairs placed one by one, then the
/// flows, then the duration trimmed.
fn place(
    c: &Candidate,
    customer: &[Entry],
    span: i64,
    runs: &mut usize,
) -> Result<(Plan, Sim), String> {
    let horizon = u64::try_from(span).unwrap_or(0) + HORIZON_MS;
    let full = story(customer);
    let skeleton: Vec<Step> = full.iter().filter(|s| !is_flow(s)).cloned().collect();
    let mut plan = c.plan.clone();
    plan.duration_ms = horizon.min(24 * 3_600_000);
    let mut anchored = c.anchored.clone();
    anchored.sort_by_key(|a| a.after_entry);
    let mut sim = simulate(&plan)?;
    *runs += 1;
    for a in &anchored {
        let simulated = story(&sim.entries);
        let alignment = align(&skeleton, &simulated);
        let t = anchor_time(
            &skeleton,
            &alignment.matched,
            &simulated,
            &sim,
            a.after_entry,
        )
        .map(|(t, step)| {
            // An entry that is no step of its own (a PAC download's failure) comes as
            // long after the step before it as in the customer's log.
            t + customer_ms(customer, a.after_entry).saturating_sub(customer_ms(customer, step))
        })
        .unwrap_or_else(|| customer_ms(customer, a.after_entry));
        insert_event(&mut plan, t + a.delay_ms.max(1), a.event.clone());
        sim = simulate(&plan)?;
        *runs += 1;
    }
    // Flows: after the customer step they follow, as far after it as in the log, before
    // the next one.
    if !c.flows.is_empty() {
        let before_flows = plan.clone();
        let mut placed: Vec<(usize, u64, u64)> = Vec::new();
        let simulated = story(&sim.entries);
        let alignment = align(&skeleton, &simulated);
        let mut last = 0u64;
        for flow in &c.flows {
            let before = skeleton.iter().rposition(|s| s.index < flow.entry);
            let after = skeleton.iter().position(|s| s.index > flow.entry);
            let matched = |k: usize| {
                alignment
                    .matched
                    .iter()
                    .find(|(l, _)| *l == k)
                    .map(|&(_, r)| (r, at(&sim, &simulated[r])))
            };
            let mut floor = 1;
            let mut t = match before.and_then(|k| matched(k).map(|m| (k, m))) {
                Some((k, (r, t_sim))) => {
                    let delta = flow.offset_ms - customer[skeleton[k].index].offset_ms;
                    floor = t_sim + 1;
                    let mut t = t_sim + u64::try_from(delta).unwrap_or(0).max(1);
                    // Before whatever the simulation does next (a retry round the
                    // customer's log does not show before this flow).
                    if let Some(next) = simulated[r + 1..].iter().find(|s| !s.skippable) {
                        t = t.min(at(&sim, next).saturating_sub(1)).max(t_sim + 1);
                    }
                    t
                }
                None => u64::try_from(flow.offset_ms).unwrap_or(0).max(1),
            };
            if let Some((_, next)) = after.and_then(matched) {
                t = t.min(next.saturating_sub(1));
            }
            t = t.max(last + 1);
            last = t;
            placed.push((flow.entry, t, floor));
            insert_event(
                &mut plan,
                t,
                PlanEvent::Connect {
                    process: flow.process.clone(),
                    target: flow.target.clone(),
                    via_proxy: flow.via_proxy,
                    udp: flow.udp,
                },
            );
        }
        plan.duration_ms = plan.duration_ms.max(last + TAIL_MS);
        sim = simulate(&plan)?;
        *runs += 1;
        // An app resolves its host and opens TCP before the client logs its verdict:
        // move each connect earlier by that lag, so the verdict lands where the
        // customer's log has it.
        let simulated = story(&sim.entries);
        let alignment = align(&full, &simulated);
        let mut lags = Vec::new();
        for &(entry, t, _) in &placed {
            let k = full.iter().position(|s| s.index == entry);
            let aligned = k
                .and_then(|k| alignment.matched.iter().find(|(l, _)| *l == k))
                .map(|&(_, r)| at(&sim, &simulated[r]).saturating_sub(t));
            // Not aligned (it landed after the run's next step): the first verdict of
            // its meaning at or after its connect.
            let lag = aligned.or_else(|| {
                let meaning = &full[k?].meaning;
                simulated
                    .iter()
                    .filter(|s| s.meaning == *meaning)
                    .map(|s| at(&sim, s))
                    .find(|&v| v >= t)
                    .map(|v| v - t)
            });
            lags.push(lag);
        }
        let known: Vec<u64> = lags.iter().flatten().copied().collect();
        let typical = known.get(known.len() / 2).copied().unwrap_or(0);
        if lags.iter().any(|l| l.unwrap_or(typical) > 0) {
            plan = before_flows;
            let mut last = 0u64;
            for (flow, (&(_, t, floor), lag)) in c.flows.iter().zip(placed.iter().zip(&lags)) {
                let t = t
                    .saturating_sub(lag.unwrap_or(typical))
                    .max(floor)
                    .max(last + 1);
                last = t;
                insert_event(
                    &mut plan,
                    t,
                    PlanEvent::Connect {
                        process: flow.process.clone(),
                        target: flow.target.clone(),
                        via_proxy: flow.via_proxy,
                        udp: flow.udp,
                    },
                );
            }
            plan.duration_ms = plan.duration_ms.max(last + TAIL_MS);
            sim = simulate(&plan)?;
            *runs += 1;
        }
    }
    // Trim: just after the last step the customer shows, before the simulation's next one.
    let simulated = story(&sim.entries);
    let alignment = align(&full, &simulated);
    let last_event = plan.events.iter().map(|(t, _)| *t).max().unwrap_or(0);
    if std::env::var_os("STEERLAB_DIAGNOSE_DEBUG").is_some() {
        eprintln!(
            "trim: matched {:?} divergence {:?} of {} simulated",
            alignment.matched.last(),
            alignment.divergence,
            simulated.len()
        );
    }
    let end = match alignment.matched.last() {
        Some(&(_, r)) if alignment.divergence.is_none() || r + 1 < simulated.len() => {
            let t = at(&sim, &simulated[r]);
            let next = simulated[r + 1..]
                .iter()
                .find(|s| !s.skippable)
                .map(|s| at(&sim, s));
            let mut end = t + TAIL_MS;
            if let Some(n) = next {
                end = end.min(n.saturating_sub(1)).max(t + 1);
            }
            end
        }
        _ => u64::try_from(span).unwrap_or(0) + TAIL_MS,
    };
    plan.duration_ms = end.max(last_event + 1);
    let sim = simulate(&plan)?;
    *runs += 1;
    Ok((plan, sim))
}

/// Simulated time of the step matching the customer step at or before `entry`, with
/// that customer step's entry.
fn anchor_time(
    skeleton: &[Step],
    matched: &[(usize, usize)],
    simulated: &[Step],
    sim: &Sim,
    entry: usize,
) -> Option<(u64, usize)> {
    let k = skeleton.iter().rposition(|s| s.index <= entry)?;
    let &(_, r) = matched.iter().find(|(l, _)| *l == k)?;
    Some((at(sim, &simulated[r]), skeleton[k].index))
}

fn customer_ms(customer: &[Entry], entry: usize) -> u64 {
    customer
        .get(entry)
        .map_or(0, |e| u64::try_from(e.offset_ms).unwrap_or(0))
}

/// Adds an event, after the events at the same time (file order is kept).
fn insert_event(plan: &mut Plan, at: u64, event: PlanEvent) {
    let pos = plan
        .events
        .iter()
        .position(|(t, _)| *t > at)
        .unwrap_or(plan.events.len());
    plan.events.insert(pos, (at, event));
    plan.duration_ms = plan.duration_ms.max(at + 1);
}
