//! `steerlab agent --connect SERVE_JSON`: the real agent against `steerlab serve`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use agent::shell::Command;
use clap::Args;
use tracing_subscriber::layer::SubscriberExt;

use crate::logs::Capture;
use crate::real::ServeInfo;
use crate::real::agent::{self as real_agent, EchoLayer};
use crate::scenario;

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The serve.json that `steerlab serve` wrote.
    #[arg(long, value_name = "SERVE_JSON")]
    connect: PathBuf,
    /// Stop after this long (e.g. 30s, 2m) [default: run until Ctrl-C].
    #[arg(long = "for", value_name = "DURATION", value_parser = scenario::parse_duration)]
    run_for: Option<Duration>,
    /// Append the TLS session secrets (tunnel, DoH, GSLB, tenant) to FILE in the
    /// SSLKEYLOGFILE form, for Wireshark to decrypt a capture of the agent.
    #[arg(long, value_name = "FILE")]
    keylog: Option<PathBuf>,
}

pub fn agent(args: &AgentArgs) -> ExitCode {
    let info = match ServeInfo::read(&args.connect) {
        Ok(info) => info,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let scenario = match scenario::load_file(&info.scenario) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if scenario.name != info.name {
        eprintln!(
            "warning: {} changed since `steerlab serve` read it (now {:?}); restart serve to match",
            info.scenario.display(),
            scenario.name
        );
    }
    let key_log = match super::serve::open_key_log(args.keylog.as_deref()) {
        Ok(key_log) => key_log,
        Err(code) => return code,
    };
    let capture = Capture::default();
    let print = |line: &str| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    let subscriber = tracing_subscriber::registry().with(EchoLayer::new(
        capture,
        real_agent::now_unix_ms,
        print,
    ));
    let _guard = tracing::subscriber::set_default(subscriber);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let shell = match real_agent::shell(&scenario, &info, key_log) {
            Ok(shell) => shell,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        let status = shell.status();
        let (commands, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::task::spawn_local(shell.run(rx));
        let _ = commands.send(Command::Start);
        let limit = async {
            match args.run_for {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        let why = tokio::select! {
            _ = limit => "time is up",
            _ = tokio::signal::ctrl_c() => "Ctrl-C",
        };
        let seen = status.borrow().clone();
        drop(commands);
        eprintln!(
            "steerlab agent: stopped ({why}): {}",
            real_agent::summary(&seen, &info)
        );
        ExitCode::SUCCESS
    })
}
