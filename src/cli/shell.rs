//! `steerlab shell FILE`: step a scenario interactively, add events as you go, and save
//! what was done as a new scenario (docs/shell.md).
//!
//! - `command`: the command language and its errors.
//! - `session`: the edited scenario, simulated time, and what has been shown.
//! - `document`: the scenario as a TOML document; what `save` writes.
//! - `until`: `run until`, finding when a condition starts to hold.
//! - `explain`: why a flow gets its verdict.
//! - `complete`: tab completion for the line editor.
//!
//! With a terminal on stdin the shell uses a line editor (history, completion); with
//! anything else it reads one command per line, prints no prompt, and exits at the end
//! of input. Output goes to stdout, a bad command's one-line error to stderr. Exit code
//! 0, or 2 when the scenario file cannot be used.

mod command;
mod complete;
mod document;
mod explain;
mod session;
#[cfg(test)]
mod tests;
mod until;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Editor};

use crate::world::timeline::stamp;
use command::{Command, CommandError};
use complete::ShellHelper;
use session::Session;

#[derive(Debug, Args)]
pub struct ShellArgs {
    /// The scenario file to start from.
    file: PathBuf,
    /// Keep the line editor's history in this file (default: ~/.steerlab_history;
    /// only with a terminal).
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
}

/// Whether to go on reading commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Continue,
    Quit,
}

pub fn shell(args: &ShellArgs) -> ExitCode {
    let mut session = match Session::open(&args.file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if std::io::stdin().is_terminal() {
        interactive(&mut session, args)
    } else {
        scripted(&mut session)
    }
    ExitCode::SUCCESS
}

/// One command per line from stdin, no prompt.
fn scripted(session: &mut Session) {
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = match line {
            Ok(line) => line,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                eprintln!("error: shell: a line is not UTF-8 text; write commands as text");
                continue;
            }
            Err(e) => {
                eprintln!("error: shell: cannot read stdin ({e}); stopping");
                break;
            }
        };
        if run_line(session, &line) == Next::Quit {
            break;
        }
    }
}

/// The line editor: history and completion.
fn interactive(session: &mut Session, args: &ShellArgs) {
    let config = Config::builder()
        .auto_add_history(true)
        .completion_type(CompletionType::List)
        .build();
    let mut editor: Editor<ShellHelper, DefaultHistory> = match Editor::with_config(config) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("shell: no line editor ({e}); reading commands line by line");
            return scripted(session);
        }
    };
    editor.set_helper(Some(ShellHelper {
        vocabulary: session.vocabulary(),
    }));
    let history = args.history.clone().or_else(default_history);
    if let Some(path) = &history {
        // A missing history file is the first session's normal case.
        let _ = editor.load_history(path);
    }
    println!(
        "steerlab shell: {} ({})\nat {}; the agent log and world lines print as time moves. `help` lists the commands, Tab completes.",
        session.scenario().name,
        args.file.display(),
        stamp(session.now())
    );
    loop {
        let prompt = format!("steerlab {}> ", stamp(session.now()));
        match editor.readline(&prompt) {
            Ok(line) => {
                if run_line(session, &line) == Next::Quit {
                    break;
                }
                if let Some(helper) = editor.helper_mut() {
                    helper.vocabulary = session.vocabulary();
                }
            }
            // Ctrl-C drops the line being typed, as in a shell.
            Err(ReadlineError::Interrupted) => {}
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("shell: cannot read the terminal: {e}");
                break;
            }
        }
    }
    if let Some(path) = &history
        && let Err(e) = editor.save_history(path)
    {
        eprintln!("shell: history not saved to {}: {e}", path.display());
    }
}

fn default_history() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".steerlab_history"))
}

/// Parses and runs one line; prints its output (stdout) or its error (stderr).
fn run_line(session: &mut Session, line: &str) -> Next {
    let command = match command::parse(line) {
        Ok(Some(c)) => c,
        Ok(None) => return Next::Continue,
        Err(e) => {
            eprintln!("error: {}", one_line(&e.to_string()));
            return Next::Continue;
        }
    };
    let word = command_word(&command);
    let next = if command == Command::Quit {
        Next::Quit
    } else {
        Next::Continue
    };
    match execute(session, command) {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            if out
                .write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                // Nobody reads the output any more (a closed pipe): stop.
                return Next::Quit;
            }
        }
        Err(e) => {
            let e = CommandError {
                command: word.to_string(),
                message: e,
                help: format!("write `{}`", command::usage(word)),
            };
            eprintln!("error: {}", one_line(&e.to_string()));
        }
    }
    next
}

/// Runs one command: its output, or what went wrong (a fragment; the caller names the
/// command and its usage).
fn execute(session: &mut Session, command: Command) -> Result<String, String> {
    match command {
        Command::Step(by) => session.step(by),
        Command::RunUntil { until, within } => session.run_until(&until, within),
        Command::Connect {
            process,
            target,
            via_proxy,
            app_doh,
        } => session.connect(&process, &target, via_proxy, app_doh),
        Command::Rule {
            change,
            place,
            rule,
        } => session.rule(change, place, &rule),
        Command::Partition(host) => session.partition(&host, true),
        Command::Repair(host) => session.partition(&host, false),
        Command::Start => session.start_stop(true),
        Command::Stop => session.start_stop(false),
        Command::Move(location) => session.move_to(&location),
        Command::Status => Ok(session.status()),
        Command::Pops => Ok(session.pops()),
        Command::Flows => Ok(session.flows()),
        Command::Explain {
            host,
            port,
            process,
        } => explain::explain(session, &host, port, process.as_deref()),
        Command::Log(count) => Ok(session.log(count)),
        Command::Save { path, name } => session.save(&path, name.as_deref()),
        Command::Help(topic) => command::help(topic.as_deref()).map_err(|e| e.message),
        Command::Undo => session.undo(),
        Command::Quit => Ok(String::new()),
    }
}

fn command_word(command: &Command) -> &'static str {
    match command {
        Command::Step(_) => "step",
        Command::RunUntil { .. } => "run",
        Command::Connect { .. } => "connect",
        Command::Rule { .. } => "rule",
        Command::Partition(_) => "partition",
        Command::Repair(_) => "repair",
        Command::Start => "start",
        Command::Stop => "stop",
        Command::Move(_) => "move",
        Command::Status => "status",
        Command::Pops => "pops",
        Command::Flows => "flows",
        Command::Explain { .. } => "explain",
        Command::Log(_) => "log",
        Command::Save { .. } => "save",
        Command::Help(_) => "help",
        Command::Undo => "undo",
        Command::Quit => "quit",
    }
}

/// An error on one line, whatever the message held.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
