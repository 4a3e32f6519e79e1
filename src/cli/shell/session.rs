//! One shell session: the scenario as edited so far, the simulated time, and what has
//! been shown.
//!
//! The session keeps one live [`World`] and steps it in place: a step costs what it
//! simulates, not the time since 0. The edited scenario is kept as a TOML document (the
//! original text plus one `[[events]]` table per thing done), and each edit is loaded
//! back with the scenario loader, so what runs is exactly what `save` writes: before
//! time moves, the world takes the edited scenario's events (all of them at or after
//! now). The world is deterministic, so the live world shows what a run of the saved
//! file from t = 0 shows. When it cannot take the edit (a rule that needs a host the world
//! does not have, such as the inspection proxy), the session builds the world again
//! from t = 0.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml_edit::DocumentMut;

use super::command::{LogCount, RuleChange, SERVICE_HOSTS, Until};
use super::document;
use super::until::{self, Goal, world_lines};
use crate::report::RunReport;
use crate::scenario::{
    self, EventAction, FirewallPlace, LoadError, Rule, Scenario, TunnelState, format_duration,
};
use crate::world::timeline::stamp;
use crate::world::{self, Captures, World, WorldError};

/// The longest single `step`.
pub const MAX_STEP: Duration = Duration::from_secs(3600);
/// `run until` gives up after this much simulated time unless `within` says otherwise.
pub const DEFAULT_UNTIL_CAP: Duration = Duration::from_secs(600);
/// The latest simulated time a session may reach.
pub const MAX_TIME: Duration = crate::scenario::MAX_DURATION;

/// The comment above the first event a session adds.
const FIRST_COMMENT: &str = "# Added by steerlab shell:";

/// Why a session could not start: the scenario is bad input (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The file cannot be read or loaded.
    #[error("{0}")]
    Load(#[from] LoadError),
    /// The file is not a TOML document toml_edit can keep (comments and all).
    #[error("error: {path}: {message}")]
    Edit { path: String, message: String },
    /// The world cannot be built from it.
    #[error("error: {path}: {error}")]
    World { path: String, error: WorldError },
}

/// The state of one shell session.
pub struct Session {
    /// The file the session started from.
    path: PathBuf,
    /// The original text plus the session's events.
    doc: DocumentMut,
    /// `doc`, loaded.
    scenario: Scenario,
    /// Events the session added.
    added: usize,
    /// Simulated time.
    now: Duration,
    /// The run from t = 0 to `now`.
    report: RunReport,
    /// The state before each change made since the last run, newest last (`undo`);
    /// emptied by every run, since what ran cannot be taken back.
    undo: Vec<Edit>,
    /// Agent log lines already printed.
    shown_log: usize,
    /// World timeline lines already printed.
    shown_world: usize,
    /// The world at `now`, with the events of `scenario` as it was when time last moved;
    /// `None` after the world stopped with an error (the next run builds it again).
    world: Option<World>,
}

impl Session {
    /// Loads `path` and runs it to t = 0 (which checks that the world can be built).
    pub fn open(path: &Path) -> Result<Session, OpenError> {
        let text = std::fs::read_to_string(path).map_err(|e| LoadError::io(path, &e))?;
        let scenario = scenario::load_str(&text, path)?;
        let doc = text.parse::<DocumentMut>().map_err(|e| OpenError::Edit {
            path: path.display().to_string(),
            message: e.message().to_string(),
        })?;
        let mut world = live_world(&scenario).map_err(|error| OpenError::World {
            path: path.display().to_string(),
            error,
        })?;
        world
            .advance_to(Duration::ZERO)
            .map_err(|error| OpenError::World {
                path: path.display().to_string(),
                error,
            })?;
        let report = world.report();
        Ok(Session {
            path: path.to_owned(),
            doc,
            scenario,
            added: 0,
            undo: Vec::new(),
            now: Duration::ZERO,
            report,
            shown_log: 0,
            shown_world: 0,
            world: Some(world),
        })
    }

    /// The scenario as edited so far (its `duration` is not the session's time).
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Simulated time.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// The run to `now`.
    pub fn report(&self) -> &RunReport {
        &self.report
    }

    /// `step DURATION`: runs to `now + by` and returns the new lines.
    pub fn step(&mut self, by: Duration) -> Result<String, String> {
        if by > MAX_STEP {
            return Err(format!(
                "at most {} at a time; write e.g. `step 10m`",
                format_duration(MAX_STEP)
            ));
        }
        let to = self.checked_time(by)?;
        let report = self.run_to(to)?;
        let mut out = self.advance(to, report);
        out.push_str(&self.summary_line());
        Ok(out)
    }

    /// `run until ...`: steps until the condition holds, at most `within` (default
    /// [`DEFAULT_UNTIL_CAP`]).
    pub fn run_until(&mut self, until: &Until, within: Option<Duration>) -> Result<String, String> {
        let cap = within.unwrap_or(DEFAULT_UNTIL_CAP);
        if cap > MAX_STEP.max(DEFAULT_UNTIL_CAP) {
            return Err(format!(
                "`within` is at most {}",
                format_duration(MAX_STEP.max(DEFAULT_UNTIL_CAP))
            ));
        }
        let end = self.checked_time(cap)?;
        if let Until::Flow(host) = until {
            self.check_flow_host(host)?;
        }
        let goal = Goal::new(until, &self.report);
        if let Goal::Tunnel { up } = goal
            && goal.holds(&self.report)
        {
            let state = if up { "up" } else { "down" };
            return Ok(format!(
                "the tunnel is already {state} at {}\n",
                stamp(self.now)
            ));
        }
        let world = self.world_now()?;
        let searched = until::search(&goal, world, end);
        let (to, report, found) = self.kept(searched)?;
        let mut out = self.advance(to, report);
        if found {
            let _ = writeln!(out, "{} at {}", goal.describe(&self.report), stamp(to));
        } else {
            let _ = writeln!(
                out,
                "{} did not come within {}: stopped at {}",
                goal.name(),
                format_duration(cap),
                stamp(to)
            );
        }
        out.push_str(&self.summary_line());
        Ok(out)
    }

    /// Adds a `connect` event now.
    pub fn connect(
        &mut self,
        process: &str,
        target: &str,
        via_proxy: bool,
        app_doh: bool,
    ) -> Result<String, String> {
        let table = document::connect(self.now, process, target, via_proxy, app_doh);
        self.add(vec![table], None)?;
        Ok(format!(
            "at {}: {process} connects to {target}{}{}; `step` to see it\n",
            stamp(self.now),
            if via_proxy { " via the proxy" } else { "" },
            if app_doh { " (its own DoH)" } else { "" },
        ))
    }

    /// `partition HOST` or `repair HOST`.
    pub fn partition(&mut self, host: &str, cut: bool) -> Result<String, String> {
        if let Some(missing) = self.missing_service(host) {
            return Err(missing.to_string());
        }
        let word = if cut { "partition" } else { "repair" };
        let table = document::host_event(self.now, word, host);
        self.add(vec![table], None)?;
        Ok(format!("at {}: {word} {host}\n", stamp(self.now)))
    }

    /// `start` or `stop`.
    pub fn start_stop(&mut self, start: bool) -> Result<String, String> {
        let word = if start { "start" } else { "stop" };
        self.add(vec![document::bare_event(self.now, word)], None)?;
        Ok(format!("at {}: {word} the agent\n", stamp(self.now)))
    }

    /// `move LOCATION`.
    pub fn move_to(&mut self, location: &str) -> Result<String, String> {
        self.add(vec![document::move_event(self.now, location)], None)?;
        Ok(format!(
            "at {}: the endpoint moves to a network in {location}\n",
            stamp(self.now)
        ))
    }

    /// `rule add|remove host|perimeter RULE`.
    ///
    /// Removing has no event of its own: the remaining rules of that firewall are added
    /// again (each added rule goes first), then `allow any`, so traffic the removed rule
    /// caught falls through to what it would meet without it.
    pub fn rule(
        &mut self,
        change: RuleChange,
        place: FirewallPlace,
        text: &str,
    ) -> Result<String, String> {
        let rule = Rule::parse(text).map_err(|e| e.replace('"', "`"))?;
        let at = stamp(self.now);
        match change {
            RuleChange::Add => {
                let table = document::rule_event(self.now, place, &rule.to_string());
                self.add(vec![table], None)?;
                Ok(format!(
                    "at {at}: rule `{rule}` goes first in the {place} firewall\n"
                ))
            }
            RuleChange::Remove => {
                let rules = self.rules(place);
                let Some(index) = rules.iter().position(|r| same_rule(r, &rule)) else {
                    let list = if rules.is_empty() {
                        "it has no rules".to_string()
                    } else {
                        let texts: Vec<String> = rules.iter().map(|r| format!("`{r}`")).collect();
                        format!("its rules are {}", texts.join(", "))
                    };
                    return Err(format!("the {place} firewall has no rule `{rule}`: {list}"));
                };
                let remaining: Vec<String> = rules
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != index)
                    .map(|(_, r)| r.to_string())
                    .collect();
                // Events at one time apply in order and each goes first: add in reverse.
                let tables: Vec<_> = std::iter::once("allow any".to_string())
                    .chain(remaining.iter().rev().cloned())
                    .map(|r| document::rule_event(self.now, place, &r))
                    .collect();
                let comment = format!(
                    "# rule remove {place} `{rule}`: the remaining rules again, ahead of the old \
                     list, then `allow any`"
                );
                self.add(tables, Some(comment))?;
                Ok(format!(
                    "at {at}: rule `{rule}` removed from the {place} firewall ({} rule event(s): \
                     the {} remaining rule(s) go first again, then `allow any`)\n",
                    remaining.len() + 1,
                    remaining.len()
                ))
            }
        }
    }

    /// `status`.
    pub fn status(&self) -> String {
        let outcome = &self.report.outcome;
        let mut out = String::new();
        let wall = self.scenario.clock_unix_ms.saturating_add(millis(self.now));
        let _ = writeln!(
            out,
            "time         {} ({})",
            stamp(self.now),
            scenario::format_clock(wall)
        );
        let _ = writeln!(
            out,
            "agent        {}",
            if self.agent_started() {
                "started"
            } else {
                "not started"
            }
        );
        let _ = writeln!(
            out,
            "resolved_by  {}",
            outcome.resolved_by.map_or("-", |r| r.as_str())
        );
        let _ = writeln!(
            out,
            "gateway      {}",
            outcome.gateway.as_deref().unwrap_or("-")
        );
        let _ = writeln!(out, "tunnel       {}", outcome.tunnel.as_str());
        for place in [FirewallPlace::Host, FirewallPlace::Perimeter] {
            let rules: Vec<String> = self.rules(place).iter().map(|r| format!("`{r}`")).collect();
            let _ = writeln!(
                out,
                "{:<12} {}",
                format!("{place} fw"),
                if rules.is_empty() {
                    "no rules".to_string()
                } else {
                    rules.join(", ")
                }
            );
        }
        let cut = self.partitioned();
        let _ = writeln!(
            out,
            "partitioned  {}",
            if cut.is_empty() {
                "none".to_string()
            } else {
                cut.into_iter().collect::<Vec<_>>().join(", ")
            }
        );
        let _ = writeln!(
            out,
            "flows        {} ({} pending)",
            self.report.flows.len(),
            self.flow_rows()
                .iter()
                .filter(|r| matches!(r, FlowRow::Pending { .. }))
                .count()
        );
        out
    }

    /// `pops`.
    pub fn pops(&self) -> String {
        let s = &self.scenario;
        let gateway = self.report.outcome.gateway.as_deref();
        let mut rows = vec![[
            "name".to_string(),
            "location".to_string(),
            "latency".to_string(),
            "ip".to_string(),
            "cert".to_string(),
            String::new(),
        ]];
        let mark = |name: &str| {
            if gateway == Some(name) && self.report.outcome.tunnel != TunnelState::Down {
                format!("<- tunnel {}", self.report.outcome.tunnel.as_str())
            } else {
                String::new()
            }
        };
        for pop in &s.pops {
            rows.push([
                pop.name.clone(),
                pop.location.clone(),
                format_duration(pop.latency),
                pop.ip.to_string(),
                pop.cert.as_str().to_string(),
                mark(&pop.name),
            ]);
        }
        rows.push([
            "backup".to_string(),
            s.backup
                .location
                .clone()
                .or_else(|| s.pops.get(1).map(|p| p.location.clone()))
                .unwrap_or_else(|| "-".to_string()),
            format_duration(s.backup.latency),
            s.backup
                .ip
                .map_or_else(|| "(world's pick)".to_string(), |ip| ip.to_string()),
            s.backup.cert.as_str().to_string(),
            mark("backup"),
        ]);
        table(&rows)
    }

    /// `flows`.
    pub fn flows(&self) -> String {
        let rows = self.flow_rows();
        if rows.is_empty() {
            return "no flows yet: add one with `connect PROCESS HOST:PORT`\n".to_string();
        }
        let mut cells = vec![[
            "#".to_string(),
            "process".to_string(),
            "host".to_string(),
            "addr".to_string(),
            "verdict".to_string(),
            "reason".to_string(),
            "outcome".to_string(),
        ]];
        for (i, row) in rows.iter().enumerate() {
            let n = (i + 1).to_string();
            cells.push(match row {
                FlowRow::Done(f) => [
                    n,
                    f.process.clone(),
                    f.host.clone(),
                    f.addr.clone(),
                    f.verdict.as_str().to_string(),
                    f.reason.clone(),
                    f.outcome.clone(),
                ],
                FlowRow::Pending { process, target } => [
                    n,
                    process.clone(),
                    target.clone(),
                    "-".to_string(),
                    "-".to_string(),
                    "-".to_string(),
                    "pending (no verdict yet, or no flow: see the world lines)".to_string(),
                ],
            });
        }
        table(&cells)
    }

    /// `log [N|all]`.
    pub fn log(&self, count: LogCount) -> String {
        let log = &self.report.log;
        let from = match count {
            LogCount::All => 0,
            LogCount::Last(n) => log.len().saturating_sub(n),
        };
        let mut out = String::new();
        for line in &log[from..] {
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    /// `save OUT`: the original text with the session's events, events after now
    /// dropped, `duration` = now and `[expect]` = what the session saw.
    pub fn save(&self, out: &Path, name: Option<&str>) -> Result<String, String> {
        if out.is_dir() {
            return Err(format!("{} is a folder; name a file", out.display()));
        }
        if let Some(folder) = out.parent().filter(|p| !p.as_os_str().is_empty())
            && !folder.is_dir()
        {
            return Err(format!("there is no folder {}", folder.display()));
        }
        let mut doc = self.doc.clone();
        if let Some(name) = name {
            document::set_name(&mut doc, name);
        }
        let saved = document::saved(&doc, &self.path, out, self.now, &self.report)?;
        // What is written must load and be the scenario that ran.
        let loaded = scenario::load_str(&saved.text, out).map_err(|e| {
            format!(
                "the saved scenario would not load ({}); nothing was written",
                e.to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("error: ")
            )
        })?;
        if loaded.events.iter().any(|e| e.at > self.now) {
            return Err("the saved scenario has events after now; nothing was written".into());
        }
        std::fs::write(out, &saved.text)
            .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        let mut msg = format!(
            "saved {}: duration {}, {} event(s) added by the session",
            out.display(),
            format_duration(self.now),
            self.added
        );
        if saved.dropped > 0 {
            let _ = write!(
                msg,
                ", {} later event(s) of {} left out",
                saved.dropped,
                self.path.display()
            );
        }
        let _ = writeln!(
            msg,
            "; [expect] is what the session saw ({})",
            saved.expect_summary
        );
        let _ = writeln!(msg, "run it with: steerlab run {}", out.display());
        Ok(msg)
    }

    /// Words the line editor completes: PoPs, hosts, processes, rules.
    pub fn vocabulary(&self) -> super::complete::Vocabulary {
        let s = &self.scenario;
        let mut hosts: Vec<String> = s.pops.iter().map(|p| p.name.clone()).collect();
        hosts.extend(
            SERVICE_HOSTS
                .iter()
                .filter(|h| self.missing_service(h).is_none())
                .map(|h| h.to_string()),
        );
        let mut origins = BTreeSet::new();
        for o in &s.origins {
            origins.insert(o.host.clone());
            origins.extend(o.aliases.iter().cloned());
        }
        hosts.extend(origins.iter().cloned());
        let mut processes: BTreeSet<String> = s
            .events
            .iter()
            .filter_map(|e| match &e.action {
                EventAction::Connect { process, .. } => Some(process.clone()),
                _ => None,
            })
            .collect();
        processes.extend(s.steering.bypass_apps.iter().cloned());
        processes.extend(s.steering.pinned_apps.iter().map(|p| p.process.clone()));
        processes.extend(["chrome.exe".to_string(), "curl".to_string()]);
        let rules = |place| self.rules(place).iter().map(|r| r.to_string()).collect();
        super::complete::Vocabulary {
            pops: s.pops.iter().map(|p| p.name.clone()).collect(),
            hosts,
            origins: origins.into_iter().collect(),
            processes: processes.into_iter().collect(),
            host_rules: rules(FirewallPlace::Host),
            perimeter_rules: rules(FirewallPlace::Perimeter),
        }
    }

    /// The rules of one firewall now, first match first: the scenario's list with the
    /// rule events so far in front (a `move` clears the perimeter's).
    pub fn rules(&self, place: FirewallPlace) -> Vec<Rule> {
        let network = &self.scenario.network;
        let mut rules = match place {
            FirewallPlace::Host => network.host_firewall.clone(),
            FirewallPlace::Perimeter => network.perimeter_firewall.clone(),
        };
        for event in self.past_events() {
            match &event.action {
                EventAction::Rule { place: p, rule } if *p == place => {
                    rules.insert(0, rule.clone())
                }
                EventAction::Move { .. } if place == FirewallPlace::Perimeter => rules.clear(),
                _ => {}
            }
        }
        rules
    }

    /// Hosts cut off now (lowercase scenario names).
    pub fn partitioned(&self) -> BTreeSet<String> {
        let mut cut = BTreeSet::new();
        for event in self.past_events() {
            match &event.action {
                EventAction::Partition { host } => {
                    cut.insert(host.to_ascii_lowercase());
                }
                EventAction::Repair { host } => {
                    cut.remove(&host.to_ascii_lowercase());
                }
                _ => {}
            }
        }
        cut
    }

    /// Whether the agent has been started (and not stopped since).
    pub fn agent_started(&self) -> bool {
        let mut started = false;
        for event in self.past_events() {
            match event.action {
                EventAction::Start => started = true,
                EventAction::Stop => started = false,
                _ => {}
            }
        }
        started
    }

    /// The connect events so far with what became of each.
    pub fn flow_rows(&self) -> Vec<FlowRow<'_>> {
        let mut done: Vec<Option<&crate::report::FlowRecord>> =
            self.report.flows.iter().map(Some).collect();
        let mut rows = Vec::new();
        for event in self.past_events() {
            if let EventAction::Connect {
                process,
                host,
                port,
                ..
            } = &event.action
            {
                let found = done.iter_mut().find(|f| {
                    f.is_some_and(|f| f.process == *process && f.host.eq_ignore_ascii_case(host))
                });
                match found.and_then(Option::take) {
                    Some(flow) => rows.push(FlowRow::Done(flow)),
                    None => rows.push(FlowRow::Pending {
                        process: process.clone(),
                        target: format!("{host}:{port}"),
                    }),
                }
            }
        }
        rows
    }

    fn past_events(&self) -> impl Iterator<Item = &scenario::Event> {
        let now = self.now;
        self.scenario.events.iter().filter(move |e| e.at <= now)
    }

    /// Why `host`, a service host the scenario may not have, is not in this world.
    fn missing_service(&self, host: &str) -> Option<&'static str> {
        let s = &self.scenario;
        if host.eq_ignore_ascii_case("proxy") && s.network.proxy.is_none() {
            return Some("this scenario has no proxy ([network] proxy)");
        }
        if host.eq_ignore_ascii_case("pac") && world::pac::discovery(s).is_none() {
            return Some("this scenario has no PAC server (no PAC or WPAD discovery)");
        }
        None
    }

    /// A host apps can connect to: an origin, one of its aliases, or an IPv4 address.
    fn check_flow_host(&self, host: &str) -> Result<(), String> {
        let origins = &self.scenario.origins;
        let known = origins.iter().any(|o| {
            o.host.eq_ignore_ascii_case(host)
                || o.aliases.iter().any(|a| a.eq_ignore_ascii_case(host))
        });
        if known || host.parse::<std::net::Ipv4Addr>().is_ok() {
            return Ok(());
        }
        let names: Vec<&str> = origins.iter().map(|o| o.host.as_str()).collect();
        Err(if names.is_empty() {
            format!("`{host}` is not an origin of this scenario (it has no [[origins]])")
        } else {
            format!(
                "`{host}` is not an origin of this scenario ({})",
                names.join(", ")
            )
        })
    }

    fn checked_time(&self, by: Duration) -> Result<Duration, String> {
        if !by.subsec_nanos().is_multiple_of(1_000_000) {
            return Err(format!(
                "`{}` is not a whole number of milliseconds: the world moves 1 ms at a time",
                format_duration(by)
            ));
        }
        let to = self.now.checked_add(by).unwrap_or(Duration::MAX);
        if to > MAX_TIME {
            return Err(format!(
                "a session ends at {}; it is {} now",
                format_duration(MAX_TIME),
                stamp(self.now)
            ));
        }
        Ok(to)
    }

    /// Steps the live world to `to` (at or after now) and reads the run.
    fn run_to(&mut self, to: Duration) -> Result<RunReport, String> {
        let world = self.world_now()?;
        let stepped = world.advance_to(to).map(|()| world.report());
        self.kept(stepped)
    }

    /// The live world at now, with the edited scenario's events: the one kept when it
    /// can take them, else one built again from t = 0.
    fn world_now(&mut self) -> Result<&mut World, String> {
        let now = self.now;
        let kept = self
            .world
            .take()
            .filter(|w| w.now() <= now)
            .and_then(|mut w| w.reschedule(&self.scenario).then_some(w));
        let world = match kept {
            Some(world) => world,
            None => live_world(&self.scenario).map_err(stopped)?,
        };
        let world = self.world.insert(world);
        world.advance_to(now).map_err(stopped)?;
        Ok(world)
    }

    /// `result` of the live world, dropping the world when it stopped with an error.
    fn kept<T>(&mut self, result: Result<T, WorldError>) -> Result<T, String> {
        result.map_err(|e| {
            self.world = None;
            stopped(e)
        })
    }

    /// Adds event tables (one edit), checked by the scenario loader.
    fn add(
        &mut self,
        tables: Vec<toml_edit::Table>,
        comment: Option<String>,
    ) -> Result<(), String> {
        let mut doc = self.doc.clone();
        if self.now > self.scenario.duration {
            document::set_duration(&mut doc, self.now);
        }
        let comment = match (self.added == 0, comment) {
            (true, Some(c)) => Some(format!("{FIRST_COMMENT}\n{c}")),
            (true, None) => Some(FIRST_COMMENT.to_string()),
            (false, c) => c,
        };
        document::push_events(&mut doc, tables.clone(), comment.as_deref())?;
        let text = doc.to_string();
        let scenario = scenario::load_str(&text, &self.path).map_err(|e| match e.help {
            Some(help) => format!("{}; {help}", e.message),
            None => e.message,
        })?;
        let before = Edit {
            doc: std::mem::replace(&mut self.doc, doc),
            scenario: std::mem::replace(&mut self.scenario, scenario),
            added: self.added,
        };
        self.undo.push(before);
        self.added += tables.len();
        Ok(())
    }

    /// `undo`: the state before the last change made since time last moved.
    pub fn undo(&mut self) -> Result<String, String> {
        let Some(before) = self.undo.pop() else {
            return Err(format!(
                "nothing to take back at {}: changes are final once time moves",
                stamp(self.now)
            ));
        };
        let taken = self.added - before.added;
        self.doc = before.doc;
        self.scenario = before.scenario;
        self.added = before.added;
        Ok(format!(
            "took back the last change ({taken} event(s)) at {}\n",
            stamp(self.now)
        ))
    }

    /// Takes `report` (the run to `to`) as the present and returns the lines not shown
    /// yet: the agent's, then the world's.
    fn advance(&mut self, to: Duration, report: RunReport) -> String {
        let mut out = String::new();
        let world = world_lines(&report);
        let old_world = world_lines(&self.report);
        let same_log = report.log.get(..self.shown_log) == self.report.log.get(..self.shown_log);
        let same_world = world.get(..self.shown_world) == old_world.get(..self.shown_world);
        if !same_log || !same_world {
            out.push_str("note: the run from t = 0 no longer matches what was shown; from here on the lines are the new run's\n");
            self.shown_log = common_prefix(&report.log, &self.report.log).min(self.shown_log);
            self.shown_world = common_prefix(world, old_world).min(self.shown_world);
        }
        for line in report.log.iter().skip(self.shown_log) {
            out.push_str(line);
            out.push('\n');
        }
        let new_world = world.get(self.shown_world..).unwrap_or_default();
        if !new_world.is_empty() {
            out.push_str("--- world\n");
            for line in new_world {
                out.push_str(line);
                out.push('\n');
            }
        }
        self.shown_log = report.log.len();
        self.shown_world = world.len();
        self.undo.clear();
        self.now = to;
        self.report = report;
        out
    }

    fn summary_line(&self) -> String {
        let o = &self.report.outcome;
        let mut line = format!("--- at {}: tunnel {}", stamp(self.now), o.tunnel.as_str());
        if let (Some(g), Some(r)) = (&o.gateway, o.resolved_by) {
            let _ = write!(line, " to {g}, resolved by {}", r.as_str());
        }
        line.push('\n');
        line
    }
}

/// A world for `scenario` that a session may step to [`MAX_TIME`].
fn live_world(scenario: &Scenario) -> Result<World, WorldError> {
    World::with_horizon(scenario, None, Captures::default(), MAX_TIME)
}

fn stopped(e: WorldError) -> String {
    format!("the world stopped: {e}")
}

/// The session before one change.
struct Edit {
    doc: DocumentMut,
    scenario: Scenario,
    added: usize,
}

/// What became of one connect event so far.
#[derive(Debug)]
pub enum FlowRow<'a> {
    Done(&'a crate::report::FlowRecord),
    Pending { process: String, target: String },
}

fn common_prefix(a: &[String], b: &[String]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Two rules are the same if they read the same once canonical.
fn same_rule(a: &Rule, b: &Rule) -> bool {
    a.to_string() == b.to_string()
}

fn millis(t: Duration) -> i64 {
    i64::try_from(t.as_millis()).unwrap_or(i64::MAX)
}

/// Left-aligned columns, two spaces apart, trailing spaces trimmed.
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(widths) {
            let _ = write!(line, "{cell:<w$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
