//! `steerlab run`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::expect::{self, Miss};
use crate::pcap::export::Recorder;
use crate::report::RunReport;
use crate::report::html::{self, Page};
use crate::report::sequence;
use crate::scenario::{self, Scenario};
use crate::world;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario files or folders of them.
    paths: Vec<PathBuf>,
    /// Print one JSON object per scenario instead of the summary.
    #[arg(long)]
    json: bool,
    /// Write the agent's log here (a folder, one `<name>.log` per scenario, when several run).
    #[arg(long, value_name = "OUT")]
    log: Option<PathBuf>,
    /// Write the endpoint's traffic as a pcap capture here (a folder, one `<name>.pcap`
    /// per scenario, when several run).
    #[arg(long, value_name = "OUT")]
    pcap: Option<PathBuf>,
    /// Write every host's traffic, as turmoil's network carried it, into this folder: one
    /// `<host>.pcapng` per host (`nyc1.pcapng`, `doh.pcapng`...; a sub-folder per
    /// scenario when several run).
    #[arg(long, value_name = "DIR")]
    pcap_hosts: Option<PathBuf>,
    /// Write a self-contained HTML report (sequence diagram, timeline, flows, log) here
    /// (a folder, one `<name>.html` per scenario, when several run).
    #[arg(long, value_name = "OUT")]
    report: Option<PathBuf>,
    /// Use this seed instead of the scenario's.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Run this many scenario files at once (default: the number of cores). Output and
    /// exit code are the same as with `--jobs 1`, in the same order.
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
}

/// What became of one scenario file.
enum Result {
    BadInput,
    Ran { passed: bool },
}

pub fn run(args: &RunArgs) -> ExitCode {
    let files = match collect(&args.paths) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if files.is_empty() {
        eprintln!("error: no scenario files (*.toml) found; pass a file or a folder of them");
        return ExitCode::from(2);
    }
    let several = files.len() > 1;
    let progress = Progress::new(several, files.len());
    let jobs = args.jobs.map_or_else(world::default_jobs, usize::from);
    let mut results = Vec::new();
    // Worlds run side by side; what they print and write is done here, file by file in
    // order, so the output is the same whatever the number of jobs.
    world::run_many_each(
        jobs,
        files.clone(),
        |file| {
            progress.start(&file);
            simulate(&file, args)
        },
        |i, simulated| {
            results.push(finish(&files[i], simulated, args, several, &progress));
            progress.done();
        },
    );
    progress.finish();
    let bad = results
        .iter()
        .filter(|r| matches!(r, Result::BadInput))
        .count();
    let failed = results
        .iter()
        .filter(|r| matches!(r, Result::Ran { passed: false }))
        .count();
    if !args.json && several {
        println!(
            "\n{} scenario(s): {} passed, {} failed, {} bad input",
            results.len(),
            results.len() - failed - bad,
            failed,
            bad
        );
    }
    if bad > 0 {
        ExitCode::from(2)
    } else if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// One file's simulation, before anything is printed or written.
enum Simulated {
    /// It could not be loaded or built: what to print on stderr.
    BadInput(String),
    Ran(Box<Ran>),
}

struct Ran {
    scenario: Scenario,
    report: RunReport,
    recorder: Option<Recorder>,
    tap: Option<world::tap::HostTap>,
}

/// Loads and simulates one file (on any thread; prints nothing).
fn simulate(file: &Path, args: &RunArgs) -> Simulated {
    let scenario = match scenario::load_file(file) {
        Ok(s) => s,
        Err(e) => return Simulated::BadInput(e.to_string()),
    };
    let recorder =
        (args.pcap.is_some() || args.report.is_some()).then(|| Recorder::new(scenario.client.ip));
    let tap = args.pcap_hosts.is_some().then(world::tap::HostTap::new);
    let captures = world::Captures {
        endpoint: recorder.clone(),
        hosts: tap.clone(),
    };
    match world::run_capturing(&scenario, args.seed, captures) {
        Ok(report) => Simulated::Ran(Box::new(Ran {
            scenario,
            report,
            recorder,
            tap,
        })),
        Err(e) => Simulated::BadInput(format!("error: {}: {e}", file.display())),
    }
}

/// Prints and writes what one file's simulation gave (on the calling thread, in order).
fn finish(
    file: &Path,
    simulated: Simulated,
    args: &RunArgs,
    several: bool,
    progress: &Progress,
) -> Result {
    let ran = match simulated {
        Simulated::BadInput(message) => {
            progress.quiet(|| eprintln!("{message}"));
            return Result::BadInput;
        }
        Simulated::Ran(ran) => ran,
    };
    let Ran {
        scenario,
        report,
        recorder,
        tap,
    } = *ran;
    progress.named(&scenario.name);
    if let (Some(dir), Some(tap)) = (&args.pcap_hosts, &tap)
        && let Err(e) = write_host_captures(dir, &scenario, &report, tap, several)
    {
        progress.quiet(|| {
            eprintln!(
                "error: cannot write the host captures to {}: {e}",
                dir.display()
            )
        });
        return Result::BadInput;
    }
    progress.quiet(|| finish_one(file, &scenario, &report, recorder.as_ref(), args, several))
}

/// Checks, writes and prints one run.
fn finish_one(
    file: &Path,
    scenario: &Scenario,
    report: &RunReport,
    recorder: Option<&Recorder>,
    args: &RunArgs,
    several: bool,
) -> Result {
    let misses = expect::check(&scenario.expect, report);
    let negative = is_negative(file);
    // A negative scenario passes when a checker fires.
    let passed = misses.is_empty() != negative;
    if let Some(out) = &args.log
        && let Err(e) = write_out(out, report, several, "log", log_text(report).as_bytes())
    {
        eprintln!("error: cannot write the log to {}: {e}", out.display());
        return Result::BadInput;
    }
    if let (Some(out), Some(recorder)) = (&args.pcap, recorder) {
        let epoch =
            std::time::Duration::from_millis(u64::try_from(scenario.clock_unix_ms).unwrap_or(0));
        let ng = out.extension().is_some_and(|e| e == "pcapng");
        let (ext, bytes) = if ng {
            ("pcapng", recorder.to_pcapng(epoch))
        } else {
            ("pcap", recorder.to_pcap(epoch))
        };
        if let Err(e) = write_out(out, report, several, ext, &bytes) {
            eprintln!("error: cannot write the capture to {}: {e}", out.display());
            return Result::BadInput;
        }
    }
    if let Some(out) = &args.report {
        let page = report_page(scenario, report, recorder, &misses, passed);
        if let Err(e) = write_out(out, report, several, "html", page.as_bytes()) {
            eprintln!("error: cannot write the report to {}: {e}", out.display());
            return Result::BadInput;
        }
    }
    if args.json {
        println!("{}", report.json(passed));
    } else {
        print_summary(scenario, report, &misses, negative, passed);
    }
    Result::Ran { passed }
}

fn print_summary(s: &Scenario, r: &RunReport, misses: &[Miss], negative: bool, passed: bool) {
    let mut out = std::io::stdout().lock();
    let word = if passed { "PASS" } else { "FAIL" };
    let _ = writeln!(out, "{word}  {}  ({})", s.name, r.path.display());
    if !s.description.is_empty() {
        for line in s.description.trim().lines() {
            let _ = writeln!(out, "      {}", line.trim());
        }
    }
    let ratio = r.simulated.as_secs_f64() / r.wall.as_secs_f64().max(1e-9);
    // Slower than ten times real time, one decimal says more than "0x".
    let digits = if ratio < 10.0 { 1 } else { 0 };
    let _ = writeln!(
        out,
        "      tunnel {}{}; {} flow(s); seed {}; {:.0?} simulated in {:.2?} ({ratio:.digits$}x)",
        r.outcome.tunnel.as_str(),
        match (&r.outcome.gateway, r.outcome.resolved_by) {
            (Some(g), Some(m)) => format!(" to {g}, resolved by {}", m.as_str()),
            _ => String::new(),
        },
        r.flows.len(),
        r.seed,
        r.simulated,
        r.wall
    );
    if negative {
        let _ = writeln!(
            out,
            "      negative scenario: {}",
            if misses.is_empty() {
                "no checker fired (it should have)"
            } else {
                "a checker fired, as it should"
            }
        );
    }
    for miss in misses {
        let _ = writeln!(out, "      {}", miss.to_string().replace('\n', "\n      "));
    }
    if !passed {
        let _ = writeln!(
            out,
            "      reproduce: cargo run -- run {} --seed {}",
            r.path.display(),
            r.seed
        );
    }
}

/// The HTML report of one run: the recorder's traffic read back from its capture (with
/// a zero epoch, so times are offsets into the run).
fn report_page(
    scenario: &Scenario,
    report: &RunReport,
    recorder: Option<&Recorder>,
    misses: &[Miss],
    passed: bool,
) -> String {
    let records = recorder
        .map(|r| sequence::records_from_pcap(&r.to_pcap(Duration::ZERO)))
        .unwrap_or_default();
    let misses: Vec<String> = misses.iter().map(ToString::to_string).collect();
    html::render(&Page {
        report,
        records: &records,
        description: &scenario.description,
        check: Some((passed, &misses)),
    })
}

/// A progress bar on stderr while several scenarios run and stderr is a terminal
/// (scenario n/N, its name, time elapsed); otherwise nothing beyond the usual output.
struct Progress(Option<ProgressBar>);

impl Progress {
    fn new(several: bool, total: usize) -> Progress {
        if !several || !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = ProgressBar::new(total as u64);
        let style =
            ProgressStyle::with_template("[{elapsed_precise}] {bar:30} {pos}/{len} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(250));
        Progress(Some(bar))
    }

    fn start(&self, file: &Path) {
        if let Some(bar) = &self.0 {
            bar.set_message(file.display().to_string());
        }
    }

    fn named(&self, name: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(name.to_string());
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.0 {
            bar.inc(1);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }

    /// Runs `f` (which prints) with the bar hidden.
    fn quiet<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.0 {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }
}

fn log_text(report: &RunReport) -> String {
    report.log.iter().map(|l| format!("{l}\n")).collect()
}

/// Writes `bytes` to `out`, or to `out/<scenario stem>.<ext>` when several scenarios run
/// or `out` is a folder.
fn write_out(
    out: &Path,
    report: &RunReport,
    several: bool,
    ext: &str,
    bytes: &[u8],
) -> std::io::Result<()> {
    if several || out.is_dir() {
        std::fs::create_dir_all(out)?;
        let stem = report
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        std::fs::write(out.join(format!("{stem}.{ext}")), bytes)
    } else {
        std::fs::write(out, bytes)
    }
}

/// One `<host>.pcapng` per host into `dir` (into `dir/<scenario>/` when several run).
fn write_host_captures(
    dir: &Path,
    scenario: &Scenario,
    report: &RunReport,
    tap: &world::tap::HostTap,
    several: bool,
) -> std::io::Result<()> {
    let dir = if several {
        let stem = report.path.file_stem().unwrap_or_default();
        dir.join(stem)
    } else {
        dir.to_path_buf()
    };
    std::fs::create_dir_all(&dir)?;
    let epoch = Duration::from_millis(u64::try_from(scenario.clock_unix_ms).unwrap_or(0));
    for (label, bytes) in tap.to_pcapng(epoch) {
        let name: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        std::fs::write(dir.join(format!("{name}.pcapng")), bytes)?;
    }
    Ok(())
}

/// Scenarios under a `negative` folder must make a checker fire.
pub fn is_negative(file: &Path) -> bool {
    file.components().any(|c| c.as_os_str() == "negative")
}

/// The scenario files named by `paths` (folders searched recursively, sorted), or every
/// file under `./scenarios` when none is named.
pub fn collect(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let default = [PathBuf::from("scenarios")];
    let paths = if paths.is_empty() {
        &default[..]
    } else {
        paths
    };
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut files)?;
        } else if p.exists() {
            files.push(p.clone());
        } else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{}: no such file or folder", p.display()),
            ));
        }
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
    Ok(())
}
