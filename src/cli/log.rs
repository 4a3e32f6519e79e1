//! `steerlab log parse` and `steerlab log compare`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::logs::events::{Event, classify, first_divergence};
use crate::logs::parse::{Entry, parse_log};
use crate::{scenario, world};

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Read an nsdebuglog file into a timeline of what happened.
    Parse(ParseArgs),
    /// Run a scenario and show where its log first diverges from a customer's.
    Compare(CompareArgs),
}

#[derive(Debug, Args)]
pub struct ParseArgs {
    /// The nsdebuglog file.
    file: PathBuf,
    /// Print the entries and their meaning as JSON lines.
    #[arg(long)]
    json: bool,
    /// Draft a scenario from what the log shows.
    #[arg(long, value_name = "OUT")]
    emit_scenario: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The customer's nsdebuglog.
    customer: PathBuf,
    /// The scenario to run.
    scenario: PathBuf,
    /// Use this seed instead of the scenario's.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
}

pub fn log(command: &LogCommand) -> ExitCode {
    match command {
        LogCommand::Parse(args) => parse(args),
        LogCommand::Compare(args) => compare(args),
    }
}

fn read(file: &PathBuf) -> Result<Vec<Entry>, ExitCode> {
    let bytes = std::fs::read(file).map_err(|e| {
        eprintln!("error: {}: cannot read: {e}", file.display());
        ExitCode::from(2)
    })?;
    parse_log(&String::from_utf8_lossy(&bytes)).map_err(|e| {
        eprintln!("error: {}: {e}", file.display());
        ExitCode::from(2)
    })
}

fn parse(args: &ParseArgs) -> ExitCode {
    let entries = match read(&args.file) {
        Ok(e) => e,
        Err(code) => return code,
    };
    for entry in &entries {
        let event = classify(entry);
        if args.json {
            let v =
                serde_json::json!({ "entry": entry, "meaning": event.meaning(), "detail": event });
            println!("{v}");
        } else if let Some(meaning) = event.meaning() {
            println!(
                "+{}.{:03}s line {:<5} {:<32} {}",
                entry.offset_ms / 1000,
                entry.offset_ms % 1000,
                entry.line,
                meaning,
                detail(&event)
            );
        }
    }
    if let Some(out) = &args.emit_scenario {
        let text = crate::diagnose::draft(entries.clone(), &args.file.display().to_string());
        if let Err(e) = std::fs::write(out, text) {
            eprintln!("error: cannot write {}: {e}", out.display());
            return ExitCode::from(2);
        }
        eprintln!("wrote {}", out.display());
    }
    ExitCode::SUCCESS
}

fn detail(event: &Event) -> String {
    match event {
        Event::Connecting { host, .. }
        | Event::Resolved { host, .. }
        | Event::ResolveFailed { host, .. } => host.clone(),
        Event::RemoteHost { host, ip, .. } => format!("{host} -> {ip}"),
        Event::Connected { host, .. } | Event::Failover { host } => host.clone(),
        Event::HandshakeFailed { reason, .. } | Event::ConnectFailed { reason, .. } => {
            reason.clone()
        }
        Event::FlowTunneled { process, .. }
        | Event::FlowBypassed { process, .. }
        | Event::FlowDirect { process, .. }
        | Event::FlowDropped { process, .. } => {
            format!("process {process}")
        }
        _ => String::new(),
    }
}

fn compare(args: &CompareArgs) -> ExitCode {
    let customer = match read(&args.customer) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let scenario = match scenario::load_file(&args.scenario) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let report = match world::run(&scenario, args.seed) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {}: {e}", args.scenario.display());
            return ExitCode::from(2);
        }
    };
    // A run that logged nothing (never started) tells an empty story.
    let simulated = parse_log(&report.log.join("\n")).unwrap_or_default();
    match first_divergence(&customer, &simulated) {
        None => {
            println!("same story: the scenario reproduces the customer's log step for step");
            ExitCode::SUCCESS
        }
        Some(d) => {
            let side = |s: &Option<(usize, String)>, name: &str| match s {
                Some((line, m)) => format!("{name} line {line}: {m}"),
                None => format!("{name}: (ends here)"),
            };
            println!("first divergence at step {}:", d.index + 1);
            println!("  - {}", side(&d.left, "customer"));
            println!("  + {}", side(&d.right, "simulated"));
            ExitCode::from(1)
        }
    }
}
