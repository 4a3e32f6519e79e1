//! `steerlab diagnose`: from a customer's evidence to a scenario that tells the same
//! story.
//!
//! 1. [`evidence`] reads every file (logs, rotated logs, bundle folders and zips with
//!    their config files, captures) into one log in time order.
//! 2. [`facts`] (and [`capture`]) say what the evidence shows: resolution, tunnel,
//!    gateway address, failover, proxy, flows, and the failures on the way.
//! 3. [`hypotheses`] turns the facts into candidate scenarios, one per way of explaining
//!    the failures, each with its cause ids ([`hypotheses::CAUSES`]).
//! 4. [`search`] runs every candidate in the simulator (in parallel), placing repairs and
//!    flows next to the customer's steps, and keeps the one whose run matches the
//!    customer's story best; candidates that fit as well are the alternatives.

pub mod capture;
pub mod evidence;
pub mod facts;
pub mod hypotheses;
pub mod plan;
pub mod search;

use std::path::PathBuf;

use serde::Serialize;

use crate::logs::events::story;
use crate::scenario::Scenario;
pub use evidence::EvidenceError;
use facts::Facts;
use hypotheses::{Candidate, words};
use search::Tried;

/// What `diagnose` concludes (the `--json` object of contract v2, plus details).
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    /// `GSLB` | `EDNS` | `LDNS`, or null when the evidence never shows a resolution.
    pub resolved_by: Option<String>,
    /// `DTLS` | `TLS` | `down`.
    pub tunnel: String,
    /// The primary gateway's address the client resolved.
    pub gateway_ip: Option<String>,
    /// The client failed over to gateway-backup.
    pub failover: bool,
    /// `ip:port` of a proxy the evidence shows.
    pub proxy: Option<String>,
    /// Cause ids.
    pub causes: Vec<String>,
    /// Every app flow, in order.
    pub flows: Vec<FlowOut>,
    /// Evidence steps the scenario's run reproduces.
    pub explained: Explained,
    /// The first divergence of the best run, if any.
    pub divergence: Option<DivergenceOut>,
    /// The scenario written with `--out`.
    pub scenario: Option<String>,
    /// Other explanations that fit the evidence as well.
    pub alternatives: Vec<Alternative>,
    /// The causes in words.
    pub cause_words: Vec<String>,
    /// What the chosen candidate assumes about the network.
    pub assumptions: Vec<String>,
    /// The client as the evidence shows it.
    pub client: ClientOut,
    /// Evidence files read.
    pub evidence: Vec<String>,
    /// Lines of no known shape: how many, and the first few (`file:line text`).
    pub unknown_lines: usize,
    pub unknown_examples: Vec<String>,
    /// Facts taken from captures.
    pub capture_facts: Vec<String>,
    /// Candidates simulated, and simulations run in all.
    pub candidates_tried: usize,
    pub simulations: usize,
    /// The chosen run's log (for `--report`; not printed in JSON).
    #[serde(skip)]
    pub simulated_log: Vec<String>,
    /// The chosen scenario's text.
    #[serde(skip)]
    pub scenario_text: String,
}

/// A flow of the evidence.
#[derive(Debug, Clone, Serialize)]
pub struct FlowOut {
    pub process: String,
    pub host: String,
    pub addr: String,
    pub verdict: String,
}

/// `{ "lines": N, "of": M }`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Explained {
    pub lines: usize,
    pub of: usize,
}

/// `{ "line", "expected", "simulated" }`, with the file of the line.
#[derive(Debug, Clone, Serialize)]
pub struct DivergenceOut {
    pub line: usize,
    pub file: String,
    pub expected: String,
    pub simulated: String,
}

/// Another explanation.
#[derive(Debug, Clone, Serialize)]
pub struct Alternative {
    pub causes: Vec<String>,
    pub assumptions: Vec<String>,
    /// What further evidence would tell it from the chosen one.
    pub tell_apart: String,
}

/// The client's settings the evidence shows.
#[derive(Debug, Clone, Serialize)]
pub struct ClientOut {
    pub version: Option<String>,
    pub tenant: Option<String>,
    pub region: Option<String>,
    pub tunnel_preference: Option<String>,
    pub gslb: bool,
    pub steering_mode: Option<String>,
    pub managed: Vec<String>,
    pub exceptions: Vec<String>,
    pub pinned_apps: Vec<String>,
    pub fail_close: bool,
}

/// Options of one diagnosis.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The evidence files and folders.
    pub evidence: Vec<PathBuf>,
    /// What is already known.
    pub base: Option<Scenario>,
    /// Threads for the candidates.
    pub jobs: usize,
    /// Where the scenario will be written (named in the result).
    pub out: Option<PathBuf>,
}

/// Reads the evidence, tries the candidates, and concludes.
pub fn diagnose(opts: &Options) -> Result<Diagnosis, EvidenceError> {
    let ev = evidence::read(&opts.evidence)?;
    let facts = facts::gather(&ev);
    let candidates = hypotheses::candidates(&facts, &ev, opts.base.as_ref());
    let tried = search::search(&candidates, &ev.entries, ev.span_ms(), opts.jobs.max(1));
    Ok(conclude(&ev, &facts, &candidates, &tried, opts))
}

/// The scenario `log parse --emit-scenario` drafts: the most likely candidate's plan
/// with its flows at the customer's times, not simulated.
pub fn draft(entries: Vec<crate::logs::parse::Entry>, source: &str) -> String {
    let ev = evidence::Evidence {
        entry_file: vec![0; entries.len()],
        entries,
        files: vec![source.to_string()],
        ..evidence::Evidence::default()
    };
    let facts = facts::gather(&ev);
    let candidates = hypotheses::candidates(&facts, &ev, None);
    let Some(c) = candidates.first() else {
        return String::new();
    };
    let mut plan = c.plan.clone();
    let mut last = 0;
    for a in &c.anchored {
        let at = ev
            .entries
            .get(a.after_entry)
            .map_or(0, |e| u64::try_from(e.offset_ms).unwrap_or(0))
            + 1;
        plan.events.push((at, a.event.clone()));
        last = last.max(at);
    }
    for f in &c.flows {
        let at = u64::try_from(f.offset_ms).unwrap_or(0).max(1).max(last + 1);
        last = at;
        plan.events.push((
            at,
            plan::PlanEvent::Connect {
                process: f.process.clone(),
                target: f.target.clone(),
                via_proxy: f.via_proxy,
                udp: f.udp,
            },
        ));
    }
    plan.events.sort_by_key(|(t, _)| *t);
    let span = ev
        .entries
        .last()
        .map_or(0, |e| u64::try_from(e.offset_ms).unwrap_or(0));
    plan.duration_ms = span.max(last) + 5_000;
    plan.to_toml()
}

fn score(t: &Tried) -> (bool, bool, usize, bool) {
    (
        t.error.is_none(),
        t.divergence.is_none(),
        t.explained,
        t.misses.is_empty(),
    )
}

fn conclude(
    ev: &evidence::Evidence,
    facts: &Facts,
    candidates: &[Candidate],
    tried: &[Tried],
    opts: &Options,
) -> Diagnosis {
    let customer = story(&ev.entries);
    // The best score; the first (most likely) candidate wins ties.
    let best = tried.iter().fold(None::<&Tried>, |acc, t| match acc {
        Some(a) if score(a) >= score(t) => Some(a),
        _ => Some(t),
    });
    let chosen = best.map(|t| &candidates[t.index]);
    let mut divergence = best.and_then(|t| {
        t.divergence.as_ref().map(|d| {
            let (line, file) = match &d.left {
                Some((line, _)) => {
                    let idx = customer
                        .iter()
                        .find(|s| s.line == *line)
                        .map_or(0, |s| s.index);
                    (*line, file_of(ev, idx))
                }
                None => (
                    customer.last().map_or(0, |s| s.line),
                    customer
                        .last()
                        .map_or_else(String::new, |s| file_of(ev, s.index)),
                ),
            };
            DivergenceOut {
                line,
                file,
                expected: d.left.as_ref().map_or_else(
                    || "(the customer's log ends here)".to_string(),
                    |l| l.1.clone(),
                ),
                simulated: d.right.as_ref().map_or_else(
                    || "(the simulated log ends here)".to_string(),
                    |r| r.1.clone(),
                ),
            }
        })
    });
    // A run that tells the story but ends in another state (or a capture with no log).
    if divergence.is_none()
        && let Some(t) = best
        && let Some(miss) = t.misses.first()
    {
        let mut lines = miss.lines();
        let key = lines.next().unwrap_or("").to_string();
        let expected = lines
            .next()
            .unwrap_or("")
            .trim()
            .trim_start_matches("- expected:")
            .trim()
            .to_string();
        let actual = lines
            .next()
            .unwrap_or("")
            .trim()
            .trim_start_matches("+ actual:")
            .trim()
            .to_string();
        divergence = Some(DivergenceOut {
            line: customer.last().map_or(0, |s| s.line),
            file: customer
                .last()
                .map_or_else(String::new, |s| file_of(ev, s.index)),
            expected: format!("{key} {expected}"),
            simulated: format!("{key} {actual}"),
        });
    }
    if best.is_some_and(|t| t.error.is_some()) {
        divergence = Some(DivergenceOut {
            line: 0,
            file: String::new(),
            expected: "a scenario that runs".into(),
            simulated: best.and_then(|t| t.error.clone()).unwrap_or_default(),
        });
    }
    let causes: Vec<String> = chosen.map_or_else(Vec::new, |c| {
        c.causes.iter().map(|s| (*s).to_string()).collect()
    });
    let alternatives = match best {
        Some(b) => tried
            .iter()
            .filter(|t| t.index != b.index && score(t) == score(b))
            .map(|t| &candidates[t.index])
            .filter(|c| chosen.is_some_and(|ch| ch.assumptions != c.assumptions))
            .map(|c| Alternative {
                causes: c.causes.iter().map(|s| (*s).to_string()).collect(),
                assumptions: c.assumptions.clone(),
                tell_apart: tell_apart(
                    chosen.map_or(&[][..], |ch| &ch.causes),
                    &c.causes,
                    &c.assumptions,
                ),
            })
            .collect(),
        None => Vec::new(),
    };
    let unknown = ev.unknown_lines();
    let plan = chosen.map(|c| &c.plan);
    Diagnosis {
        resolved_by: facts.resolved_by.clone(),
        tunnel: facts.tunnel.clone(),
        gateway_ip: facts.gateway_ip.clone(),
        failover: facts.failover,
        proxy: facts.proxy.clone(),
        cause_words: causes
            .iter()
            .map(|c| format!("{c}: {}", words(c)))
            .collect(),
        causes,
        flows: facts
            .flows
            .iter()
            .map(|f| FlowOut {
                process: f.process.clone(),
                host: f.host.clone(),
                addr: f.addr.clone(),
                verdict: f.verdict.clone(),
            })
            .collect(),
        explained: Explained {
            lines: best.map_or(0, |t| t.explained),
            of: customer.len(),
        },
        divergence,
        scenario: opts.out.as_ref().map(|p| p.display().to_string()),
        alternatives,
        assumptions: chosen.map_or_else(Vec::new, |c| c.assumptions.clone()),
        client: ClientOut {
            version: facts.version.clone(),
            tenant: facts.tenant.clone(),
            region: facts.region.clone(),
            tunnel_preference: facts.first_proto.clone(),
            gslb: facts.gslb_asked,
            steering_mode: plan.and_then(|p| p.mode.clone()),
            managed: plan.map_or_else(Vec::new, |p| p.managed.clone()),
            exceptions: plan.map_or_else(Vec::new, |p| p.exceptions.clone()),
            pinned_apps: plan.map_or_else(Vec::new, |p| {
                p.bypass_apps
                    .iter()
                    .cloned()
                    .chain(p.pinned.iter().map(|(x, a)| format!("{x} ({a})")))
                    .collect()
            }),
            fail_close: plan.is_some_and(|p| p.fail_close),
        },
        evidence: ev
            .files
            .iter()
            .cloned()
            .chain(ev.captures.iter().map(|c| c.0.clone()))
            .collect(),
        unknown_lines: unknown.len(),
        unknown_examples: unknown
            .iter()
            .take(5)
            .map(|(place, text)| format!("{place} {text}"))
            .collect(),
        capture_facts: facts.capture_notes.clone(),
        candidates_tried: tried.len(),
        simulations: tried.iter().map(|t| t.runs).sum(),
        simulated_log: best.map_or_else(Vec::new, |t| t.log.clone()),
        scenario_text: best.map_or_else(String::new, |t| t.text.clone()),
    }
}

fn file_of(ev: &evidence::Evidence, index: usize) -> String {
    ev.entry_file
        .get(index)
        .and_then(|&f| ev.files.get(f))
        .cloned()
        .unwrap_or_default()
}

/// What would tell two explanations apart.
fn tell_apart(chosen: &[&str], other: &[&str], assumptions: &[String]) -> String {
    let has = |set: &[&str], id: &str| set.contains(&id);
    if has(other, "dtls-mtu") || has(chosen, "dtls-mtu") {
        return "a capture on the laptop: if small UDP 443 datagrams to the gateway get answers and only the large handshake flights are lost (or an ICMP 'fragmentation needed' comes back), it is the path MTU; if no UDP 443 datagram gets an answer, UDP 443 is blocked".into();
    }
    if has(other, "gateway-untrusted-cert") || has(chosen, "gateway-untrusted-cert") {
        return "the issuer of the certificate the client was shown (the log's `issuer:` or a capture of the handshake): a firewall's CA means inspection; the vendor's CA with a wrong or expired certificate means the gateway's own certificate".into();
    }
    if assumptions.iter().any(|a| a.contains("host firewall")) {
        return "whether the laptop works from another network: a perimeter firewall inspects only on this site, a host firewall (antivirus, EDR) everywhere; its name in the certificate's issuer tells too".into();
    }
    if assumptions.iter().any(|a| a.contains("perimeter")) {
        return "whether another laptop on the same site, without the host security suite, shows the same failure".into();
    }
    "a capture on the laptop during the failure".into()
}
