//! `steerlab replay`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::pcap::{ReplayReport, replay as replay_capture};
use crate::scenario;
use crate::world::agent_steering;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The capture: pcap or pcapng.
    capture: PathBuf,
    /// Take the steering configuration (and gateway addresses) from this scenario.
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Write a scenario that reproduces the capture's flows.
    #[arg(long, value_name = "OUT")]
    emit_scenario: Option<PathBuf>,
    /// Instead of replaying, write a synthetic capture of N packets to CAPTURE (mixed
    /// DNS, TLS, HTTP and UDP flows, the same every time): the benchmark's input.
    #[arg(long, value_name = "N", hide = true)]
    write_synthetic: Option<usize>,
}

pub fn replay(args: &ReplayArgs) -> ExitCode {
    if let Some(packets) = args.write_synthetic {
        let written = std::fs::File::create(&args.capture)
            .and_then(|f| crate::pcap::synth::write_synthetic(f, packets, 1));
        return match written {
            Ok(()) => {
                eprintln!("wrote {} ({packets} packets)", args.capture.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", args.capture.display());
                ExitCode::from(2)
            }
        };
    }
    let scenario = match args
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
    let steering = scenario.as_ref().map(agent_steering).unwrap_or_default();
    let report = match replay_capture(&args.capture, scenario.as_ref(), steering) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    for warning in &report.warnings {
        eprintln!("warning: {warning}");
    }
    // Written as it is serialized: a capture with many flows needs no second copy.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = if args.json {
        serde_json::to_writer(&mut out, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        out.write_all(table(&report).as_bytes())
    };
    if let Err(e) = written.and_then(|()| out.flush()) {
        eprintln!("error: cannot write the report: {e}");
        return ExitCode::from(2);
    }
    drop(out);
    if let Some(out) = &args.emit_scenario {
        let text = emit_scenario(&report, scenario.as_ref());
        if let Err(e) = std::fs::write(out, text) {
            eprintln!("error: cannot write {}: {e}", out.display());
            return ExitCode::from(2);
        }
        eprintln!("wrote {}", out.display());
    }
    ExitCode::SUCCESS
}

fn table(r: &ReplayReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {} TCP/UDP packet(s), {} DNS answer(s), client {}, {} skipped",
        r.capture,
        r.packets,
        r.dns_answers,
        r.client.as_deref().unwrap_or("unknown"),
        r.skipped_other + r.skipped_undecodable
    );
    if !r.warnings.is_empty() {
        let _ = writeln!(out, "warnings:");
        for line in &r.warnings {
            let _ = writeln!(out, "  {line}");
        }
    }
    let _ = writeln!(out, "control traffic:");
    for line in &r.control {
        let _ = writeln!(out, "  {line}");
    }
    let _ = writeln!(out, "flows ({}):", r.flows.len());
    for f in &r.flows {
        let mut seen = Vec::new();
        if let Some(c) = &f.connect {
            seen.push(format!("CONNECT {c}"));
        }
        if let Some(s) = &f.sni {
            seen.push(format!("SNI {s}"));
        }
        if let Some(h) = &f.http_host {
            seen.push(format!("Host {h}"));
        }
        let seen = if seen.is_empty() {
            String::new()
        } else {
            format!(" [{}]", seen.join(", "))
        };
        let _ = writeln!(
            out,
            "  +{}.{:03}s #{:<6} {} {:<28} {:<22} {:<9} {}{seen}",
            f.time_ms / 1000,
            f.time_ms % 1000,
            f.packet,
            f.proto,
            f.host,
            f.addr,
            f.verdict,
            f.reason
        );
    }
    out
}

/// A scenario with the capture's names as origins and its flows as connect events, each
/// expected to get the verdict the replay gave.
fn emit_scenario(r: &ReplayReport, base: Option<&scenario::Scenario>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "name = \"Replay of {}\"", r.capture.replace('"', "'"));
    let _ = writeln!(
        out,
        "description = \"Generated by steerlab replay: the capture's flows as connect events.\""
    );
    let last = r.flows.last().map_or(0, |f| f.time_ms / 1000);
    let _ = writeln!(out, "duration = \"{}s\"\n", last + 30);
    if let Some(client) = r
        .client
        .as_deref()
        .filter(|c| c.parse::<std::net::Ipv4Addr>().is_ok())
    {
        let _ = writeln!(out, "[client]\nip = \"{client}\"\n");
    }
    if let Some(s) = base {
        let list = |v: &[String]| {
            v.iter()
                .map(|x| format!("\"{x}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(out, "[steering]\nmode = \"{}\"", s.steering.mode.as_str());
        let _ = writeln!(out, "managed = [{}]", list(&s.steering.managed));
        let _ = writeln!(out, "exceptions = [{}]", list(&s.steering.exceptions));
        let _ = writeln!(out, "bypass_apps = [{}]\n", list(&s.steering.bypass_apps));
    }
    let gateways: Vec<_> = r
        .gateways
        .iter()
        .filter_map(|g| match g.ip() {
            std::net::IpAddr::V4(v4) => Some(v4),
            std::net::IpAddr::V6(_) => None,
        })
        .collect();
    if gateways.is_empty() {
        let _ = writeln!(
            out,
            "[[pops]]\nname = \"pop1\"\nlocation = \"us-east\"\nip = \"8.36.116.35\"\n"
        );
    }
    for (i, ip) in gateways.iter().enumerate() {
        let _ = writeln!(
            out,
            "[[pops]]\nname = \"pop{}\"\nlocation = \"us-east\"\nip = \"{ip}\"\n",
            i + 1
        );
    }
    for (host, ip) in &r.names {
        if let std::net::IpAddr::V4(v4) = ip
            && !host.starts_with("gateway")
        {
            let _ = writeln!(out, "[[origins]]\nhost = \"{host}\"\nip = \"{v4}\"\n");
        }
    }
    let _ = writeln!(out, "[[events]]\nat = \"0s\"\ndo = \"start\"\n");
    let named: Vec<_> = r
        .flows
        .iter()
        // Connect events are TCP and direct: UDP flows and CONNECTs through a proxy
        // stay out (the proxy is not in the emitted scenario).
        .filter(|f| f.proto == "tcp" && f.connect.is_none() && r.names.contains_key(&f.host))
        .collect();
    for f in &named {
        let port = f.addr.rsplit(':').next().unwrap_or("443");
        let _ = writeln!(
            out,
            "[[events]]\nat = \"{}ms\"\ndo = \"connect\"\nprocess = \"capture\"\ntarget = \"{}:{port}\"\n",
            f.time_ms.max(1000),
            f.host
        );
    }
    let _ = writeln!(out, "[expect]");
    for f in &named {
        let _ = writeln!(
            out,
            "[[expect.flows]]\nhost = \"{}\"\nverdict = \"{}\"",
            f.host, f.verdict
        );
    }
    out
}
