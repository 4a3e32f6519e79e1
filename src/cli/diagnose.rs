//! `steerlab diagnose EVIDENCE... [--json] [--out SCENARIO.toml] [--report OUT.html]
//! [--scenario BASE.toml] [--jobs N]` (contract v2).
//!
//! Exit codes: 0 the written scenario's run matches the evidence with no divergence; 1
//! the best scenario found still diverges (the first divergence is printed); 2 bad input.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::diagnose::{self, Diagnosis, Options};
use crate::logs::events::{classify, story};
use crate::logs::parse::parse_log;
use crate::report::html;
use crate::{scenario, world};

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// nsdebuglog files (rotated ones too), "Save Logs" bundles (folder or .zip) and
    /// laptop captures (.pcap/.pcapng), in any mix.
    #[arg(required = true, value_name = "EVIDENCE")]
    evidence: Vec<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Write the scenario (with `[expect]` from the evidence) here.
    #[arg(long, value_name = "SCENARIO.toml")]
    out: Option<PathBuf>,
    /// Write the run's HTML report with the customer's lines beside the simulated ones.
    #[arg(long, value_name = "OUT.html")]
    report: Option<PathBuf>,
    /// What is already known (steering configuration, PoPs); the evidence fills in the rest.
    #[arg(long, value_name = "BASE.toml")]
    scenario: Option<PathBuf>,
    /// Candidates simulated at once (default: the number of cores).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
}

pub fn diagnose(args: &DiagnoseArgs) -> ExitCode {
    let base = match args
        .scenario
        .as_deref()
        .map(scenario::load_file)
        .transpose()
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let jobs = args
        .jobs
        .filter(|&n| n > 0)
        .unwrap_or_else(crate::world::default_jobs);
    if std::io::stderr().is_terminal() {
        eprintln!(
            "diagnose: reading the evidence and simulating the candidates on {jobs} thread(s)..."
        );
    }
    let opts = Options {
        evidence: args.evidence.clone(),
        base,
        jobs,
        out: args.out.clone(),
    };
    let d = match diagnose::diagnose(&opts) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(out) = &args.out
        && let Err(e) = std::fs::write(out, &d.scenario_text)
    {
        eprintln!("error: cannot write {}: {e}", out.display());
        return ExitCode::from(2);
    }
    if let Some(path) = &args.report
        && let Err(e) = write_report(path, &d, &opts)
    {
        eprintln!("error: cannot write the report {}: {e}", path.display());
        return ExitCode::from(2);
    }
    if args.json {
        match serde_json::to_string_pretty(&d) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        print!("{}", text(&d));
    }
    if d.divergence.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The diagnosis in words.
fn text(d: &Diagnosis) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "evidence: {}", d.evidence.join(", "));
    let c = &d.client;
    let _ = writeln!(
        o,
        "client: version {}, tenant {}{}, prefers {}, GSLB {}",
        c.version.as_deref().unwrap_or("unknown"),
        c.tenant.as_deref().unwrap_or("unknown"),
        c.region
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default(),
        c.tunnel_preference.as_deref().unwrap_or("unknown"),
        if c.gslb { "asked" } else { "not asked" }
    );
    let _ = writeln!(
        o,
        "resolved by {}, gateway {}, tunnel {}{}{}",
        d.resolved_by.as_deref().unwrap_or("(never)"),
        d.gateway_ip.as_deref().unwrap_or("(unknown)"),
        d.tunnel,
        if d.failover {
            ", failed over to gateway-backup"
        } else {
            ""
        },
        d.proxy
            .as_deref()
            .map(|p| format!(", proxy {p}"))
            .unwrap_or_default()
    );
    if d.causes.is_empty() {
        let _ = writeln!(o, "causes: none found: the evidence shows no failure");
    } else {
        let _ = writeln!(o, "causes:");
        for w in &d.cause_words {
            let _ = writeln!(o, "  {w}");
        }
    }
    for a in &d.assumptions {
        let _ = writeln!(o, "  assumed: {a}");
    }
    if !d.flows.is_empty() {
        let _ = writeln!(o, "flows ({}):", d.flows.len());
        for f in &d.flows {
            let _ = writeln!(
                o,
                "  {:<9} {:<16} {:<28} {}",
                f.verdict, f.process, f.host, f.addr
            );
        }
    }
    for note in &d.capture_facts {
        let _ = writeln!(o, "capture: {note}");
    }
    let _ = writeln!(
        o,
        "explained: {} of {} step(s) of the evidence ({} candidate(s), {} simulation(s))",
        d.explained.lines, d.explained.of, d.candidates_tried, d.simulations
    );
    if d.unknown_lines > 0 {
        let _ = writeln!(o, "lines not understood: {}", d.unknown_lines);
        for ex in &d.unknown_examples {
            let _ = writeln!(o, "  {ex}");
        }
    }
    match &d.divergence {
        None => {
            let _ = writeln!(
                o,
                "same story: the scenario's run reproduces the evidence step for step"
            );
        }
        Some(div) => {
            if div.line == 0 {
                let _ = writeln!(o, "the run ends in another state than the evidence:");
            } else {
                let _ = writeln!(o, "first divergence at {}:{}:", div.file, div.line);
            }
            let _ = writeln!(o, "  - customer:  {}", div.expected);
            let _ = writeln!(o, "  + simulated: {}", div.simulated);
        }
    }
    for alt in &d.alternatives {
        let _ = writeln!(o, "alternative: {}", alt.causes.join(", "));
        for a in &alt.assumptions {
            let _ = writeln!(o, "  assumed: {a}");
        }
        let _ = writeln!(o, "  to tell them apart: {}", alt.tell_apart);
    }
    if let Some(s) = &d.scenario {
        let _ = writeln!(o, "scenario: {s}");
    }
    o
}

/// The run's page with a section of the customer's steps beside the simulated ones.
fn write_report(path: &Path, d: &Diagnosis, opts: &Options) -> Result<(), String> {
    let scenario = scenario::load_str(&d.scenario_text, Path::new("diagnosed.toml"))
        .map_err(|e| e.to_string())?;
    let report = world::run(&scenario, None).map_err(|e| e.to_string())?;
    let misses: Vec<String> = crate::expect::check(&scenario.expect, &report)
        .iter()
        .map(ToString::to_string)
        .collect();
    let page = html::render(&html::Page {
        report: &report,
        records: &[],
        description: &scenario.description,
        check: Some((misses.is_empty(), &misses)),
    });
    let ev = diagnose::evidence::read(&opts.evidence).map_err(|e| e.to_string())?;
    let simulated = parse_log(&report.log.join("\n")).unwrap_or_default();
    let mut side = String::from(
        "<section id=\"customer\">\n<h2>The customer's log beside the simulated one</h2>\n<table>\n<tr><th>customer</th><th>simulated</th></tr>\n",
    );
    let customer_steps = story(&ev.entries);
    let sim_steps = story(&simulated);
    let alignment = crate::logs::events::align(&customer_steps, &sim_steps);
    for (i, step) in customer_steps.iter().enumerate() {
        let entry = &ev.entries[step.index];
        let matched = alignment
            .matched
            .iter()
            .find(|(l, _)| *l == i)
            .map(|&(_, r)| &simulated[sim_steps[r].index]);
        let _ = writeln!(
            side,
            "<tr><td>{} <b>{}</b> {}</td><td>{}</td></tr>",
            html::escape(&entry.time),
            html::escape(&entry.component),
            html::escape(&entry.message),
            matched.map_or_else(
                || "<i>(not reproduced)</i>".to_string(),
                |s| format!(
                    "{} <b>{}</b> {}",
                    html::escape(&s.time),
                    html::escape(&s.component),
                    html::escape(&s.message)
                )
            )
        );
    }
    let unknown = ev
        .entries
        .iter()
        .filter(|e| classify(e) == crate::logs::events::Event::Unknown)
        .count();
    let _ = writeln!(
        side,
        "</table>\n<p>{} of {} step(s) reproduced; {} line(s) of no known shape.</p>\n</section>",
        d.explained.lines, d.explained.of, unknown
    );
    let html = match page.rfind("</body>") {
        Some(i) => format!("{}{side}{}", &page[..i], &page[i..]),
        None => page + &side,
    };
    std::fs::write(path, html).map_err(|e| e.to_string())
}
