//! `steerlab serve`: a scenario's servers as real services on loopback.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use crate::real::{self, ServeInfo, ServeOptions};
use crate::scenario;

/// The README's first scenario.
const DEFAULT_SCENARIO: &str = "scenarios/pop-selection/doh-partitioned-ldns-far-pop.toml";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The scenario whose servers to run [default: the README's first,
    /// scenarios/pop-selection/doh-partitioned-ldns-far-pop.toml].
    scenario: Option<PathBuf>,
    /// Where to write the CA certificates and serve.json.
    #[arg(long, value_name = "OUT", default_value = "steerlab-serve")]
    dir: PathBuf,
    /// The first loopback address; each host gets its own from here up.
    #[arg(long, value_name = "127.x.y.z", default_value = "127.0.0.10")]
    base: Ipv4Addr,
    /// Also stop when standard input reaches its end (for scripts holding a pipe).
    #[arg(long)]
    stop_on_eof: bool,
    /// Append every server's TLS session secrets to FILE in the SSLKEYLOGFILE form, for
    /// Wireshark to decrypt a capture of the loopback traffic.
    #[arg(long, value_name = "FILE")]
    keylog: Option<PathBuf>,
}

/// The `--keylog FILE` writer, or the exit code of an error already printed.
pub(super) fn open_key_log(
    path: Option<&Path>,
) -> Result<Option<Arc<dyn rustls::KeyLog>>, ExitCode> {
    let Some(path) = path else { return Ok(None) };
    match agent::shell::KeyLogFile::create(path) {
        Ok(file) => Ok(Some(Arc::new(file))),
        Err(e) => {
            eprintln!(
                "error: cannot open the key log {}: {e}; pass a writable file to --keylog",
                path.display()
            );
            Err(ExitCode::from(2))
        }
    }
}

pub fn serve(args: &ServeArgs) -> ExitCode {
    let path = args
        .scenario
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SCENARIO));
    if args.scenario.is_none() && !path.exists() {
        eprintln!(
            "error: no scenario given, and the default {DEFAULT_SCENARIO} is not here: run from the steerlab folder or pass a scenario file"
        );
        return ExitCode::from(2);
    }
    let scenario = match scenario::load_file(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
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
    let key_log = match open_key_log(args.keylog.as_deref()) {
        Ok(key_log) => key_log,
        Err(code) => return code,
    };
    let options = ServeOptions {
        dir: args.dir.clone(),
        base: args.base,
        key_log,
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let served = match real::start(&scenario, &options).await {
            Ok(served) => served,
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return ExitCode::from(2);
            }
        };
        print_table(&served.info, &served.info_path);
        let why = stopped(args.stop_on_eof).await;
        eprintln!("steerlab serve: stopping ({why})");
        served.stop();
        ExitCode::SUCCESS
    })
}

/// Waits for Ctrl-C, SIGTERM, or (when asked) the end of standard input.
async fn stopped(stop_on_eof: bool) -> &'static str {
    let (eof_tx, eof_rx) = tokio::sync::oneshot::channel::<()>();
    if stop_on_eof {
        // A plain thread: tokio's stdin would hold the runtime's shutdown on its read.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            let _ = eof_tx.send(());
        });
    } else {
        std::mem::forget(eof_tx);
    }
    let terminate = async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    term.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        }
        #[cfg(not(unix))]
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = terminate => "SIGTERM",
        Ok(()) = eof_rx => "end of standard input",
    }
}

fn print_table(info: &ServeInfo, info_path: &Path) {
    let mut out = String::new();
    let push = |out: &mut String, line: String| {
        out.push_str(&line);
        out.push('\n');
    };
    push(&mut out, format!("steerlab serve: {}", info.name));
    push(
        &mut out,
        format!("  scenario {}, seed {}", info.scenario.display(), info.seed),
    );
    push(&mut out, String::new());
    push(
        &mut out,
        format!(
            "{:<14} {:<13} {:<15} {:<15} {:<30} names",
            "host", "kind", "address", "in scenario", "listening"
        ),
    );
    for h in &info.hosts {
        let listening = h
            .services
            .iter()
            .map(|l| format!("{} {}/{}", l.what, l.proto, l.port))
            .collect::<Vec<_>>()
            .join(", ");
        let sim = h.sim_ip.map_or("-".to_string(), |ip| ip.to_string());
        let mut names = h.names.join(", ");
        if h.silent {
            names.push_str("  SILENT: partitioned at 0s, never answers");
        }
        push(
            &mut out,
            format!(
                "{:<14} {:<13} {:<15} {:<15} {:<30} {}",
                h.label,
                h.kind,
                h.ip.to_string(),
                sim,
                listening,
                names
            )
            .trim_end()
            .to_string(),
        );
    }
    push(&mut out, String::new());
    if info.ephemeral_ports {
        push(
            &mut out,
            "note: privileged ports could not be bound (not root?): those services got ephemeral ports, shown above".to_string(),
        );
    }
    push(
        &mut out,
        format!(
            "CA certificates: {} (DoH, GSLB, origins), {} (gateways)",
            info.ca.public.display(),
            info.ca.tenant.display()
        ),
    );
    push(&mut out, format!("serve info: {}", info_path.display()));
    if !info.not_applied.is_empty() {
        push(&mut out, String::new());
        push(&mut out, "Not applied in real mode:".to_string());
        for n in &info.not_applied {
            push(&mut out, format!("  - {n}"));
        }
    }
    push(&mut out, String::new());
    push(&mut out, "Try:".to_string());
    for c in &info.clients {
        push(&mut out, format!("  # {}", c.about));
        push(&mut out, format!("  {}", c.line));
    }
    push(&mut out, String::new());
    push(&mut out, "Serving until Ctrl-C.".to_string());
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}
