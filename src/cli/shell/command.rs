//! The shell's command language: one command per line, words split at spaces, `"..."`
//! quotes a word with spaces (`connect "Microsoft Teams.exe" teams.microsoft.com:443`).
//!
//! [`parse`] never panics; its errors name the command and say what to write.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::scenario::{FirewallPlace, parse_duration};

/// One command of the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `step DURATION`: advance simulated time.
    Step(Duration),
    /// `run until CONDITION [within DURATION]`.
    RunUntil {
        until: Until,
        within: Option<Duration>,
    },
    /// `connect PROCESS HOST:PORT [via-proxy] [app-doh]`.
    Connect {
        process: String,
        target: String,
        via_proxy: bool,
        app_doh: bool,
    },
    /// `rule add|remove host|perimeter RULE`.
    Rule {
        change: RuleChange,
        place: FirewallPlace,
        rule: String,
    },
    /// `partition HOST`.
    Partition(String),
    /// `repair HOST`.
    Repair(String),
    /// `start`: start the agent.
    Start,
    /// `stop`: stop the agent.
    Stop,
    /// `move LOCATION`: the endpoint roams to another network.
    Move(String),
    /// `status`.
    Status,
    /// `pops`.
    Pops,
    /// `flows`.
    Flows,
    /// `explain HOST[:PORT] [PROCESS]`.
    Explain {
        host: String,
        port: u16,
        process: Option<String>,
    },
    /// `log [N|all]`.
    Log(LogCount),
    /// `save OUT.toml [NAME]`.
    Save { path: PathBuf, name: Option<String> },
    /// `help [COMMAND]`.
    Help(Option<String>),
    /// `undo`: take back the last change made at the current time.
    Undo,
    /// `quit` (or `exit`).
    Quit,
}

/// What `run until` waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Until {
    TunnelUp,
    TunnelDown,
    /// A new flow (or a failed resolution) for this host.
    Flow(String),
}

/// `rule add` or `rule remove`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleChange {
    Add,
    Remove,
}

/// How many log lines `log` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogCount {
    Last(usize),
    All,
}

/// Lines `log` prints without a count.
pub const DEFAULT_LOG_LINES: usize = 20;

/// A line that is not a command: which command, what is wrong, what to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError {
    /// The command word as typed (or `shell` when there is none to name).
    pub command: String,
    /// A lowercase fragment: what is wrong.
    pub message: String,
    /// What to write instead.
    pub help: String,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}; {}", self.command, self.message, self.help)
    }
}

/// Every command word with its usage and what it does, in the order `help` lists them.
pub const COMMANDS: [(&str, &str, &str); 19] = [
    (
        "step",
        "step DURATION",
        "advance simulated time (e.g. `step 10s`) and print the new log and world lines",
    ),
    (
        "run",
        "run until tunnel-up|tunnel-down|flow HOST [within DURATION]",
        "advance until the condition holds (at most 10m unless `within` says)",
    ),
    (
        "connect",
        "connect PROCESS HOST:PORT [via-proxy] [app-doh]",
        "an app opens a connection now",
    ),
    (
        "rule",
        "rule add|remove host|perimeter RULE",
        "change a firewall now (RULE as in scenario files, e.g. `block udp/443`)",
    ),
    ("partition", "partition HOST", "cut a host off silently now"),
    ("repair", "repair HOST", "heal a partition now"),
    (
        "undo",
        "undo",
        "take back the last change (connect, rule, partition...) made since time last moved",
    ),
    ("start", "start", "start the agent now"),
    ("stop", "stop", "stop the agent now"),
    (
        "move",
        "move LOCATION",
        "the endpoint roams to a network in LOCATION now",
    ),
    (
        "status",
        "status",
        "time, how the gateway was resolved, the gateway, the tunnel",
    ),
    (
        "pops",
        "pops",
        "the PoPs with location, latency and address",
    ),
    (
        "flows",
        "flows",
        "every app flow so far: verdict, reason, outcome",
    ),
    (
        "explain",
        "explain HOST[:PORT] [PROCESS]",
        "why a flow to HOST gets its verdict, and what the firewalls do with it",
    ),
    (
        "log",
        "log [N|all]",
        "the last N (default 20) agent log lines, or all of them",
    ),
    (
        "save",
        "save OUT.toml [NAME]",
        "write the scenario with what was done, up to now (NAME: a new `name` for it)",
    ),
    ("help", "help [COMMAND]", "this list, or one command"),
    ("quit", "quit", "leave the shell (also `exit`)"),
    ("exit", "exit", "leave the shell"),
];

/// The hosts `partition` and `repair` name besides PoPs and origins.
pub const SERVICE_HOSTS: [&str; 6] = ["backup", "doh", "ldns", "gslb", "proxy", "pac"];

/// Parses one line. `Ok(None)`: nothing to do (blank, or a `#` comment).
pub fn parse(line: &str) -> Result<Option<Command>, CommandError> {
    let words = split_words(line)?;
    let Some((first, rest)) = words.split_first() else {
        return Ok(None);
    };
    if first.starts_with('#') {
        return Ok(None);
    }
    let word = first.to_ascii_lowercase();
    let err = |message: String| CommandError {
        command: word.clone(),
        message,
        help: format!("write `{}`", usage(&word)),
    };
    let one = |what: &str| -> Result<String, CommandError> {
        match rest {
            [one] => Ok(one.clone()),
            [] => Err(err(format!("missing {what}"))),
            [_, extra, ..] => Err(err(format!("unexpected `{extra}` after the {what}"))),
        }
    };
    let none = || match rest.first() {
        None => Ok(()),
        Some(extra) => Err(err(format!("`{word}` takes nothing, found `{extra}`"))),
    };
    let command = match word.as_str() {
        "step" => Command::Step(duration(&one("duration")?).map_err(err)?),
        "run" => run_until(rest).map_err(err)?,
        "connect" => connect(rest).map_err(err)?,
        "rule" => rule(rest).map_err(err)?,
        "partition" => Command::Partition(one("host")?),
        "repair" => Command::Repair(one("host")?),
        "start" => none().map(|()| Command::Start)?,
        "stop" => none().map(|()| Command::Stop)?,
        "move" => Command::Move(one("location")?),
        "status" => none().map(|()| Command::Status)?,
        "pops" => none().map(|()| Command::Pops)?,
        "flows" => none().map(|()| Command::Flows)?,
        "explain" => explain(rest).map_err(err)?,
        "log" => Command::Log(log_count(rest).map_err(err)?),
        "save" => match rest {
            [] => return Err(err("missing the output file".to_string())),
            [path] => Command::Save {
                path: PathBuf::from(path),
                name: None,
            },
            [path, name @ ..] => Command::Save {
                path: PathBuf::from(path),
                name: Some(name.join(" ")),
            },
        },
        "help" | "?" => match rest {
            [] => Command::Help(None),
            [topic] => Command::Help(Some(topic.to_ascii_lowercase())),
            [_, extra, ..] => return Err(err(format!("unexpected `{extra}`"))),
        },
        "undo" => none().map(|()| Command::Undo)?,
        "quit" | "exit" => none().map(|()| Command::Quit)?,
        _ => {
            let words = COMMANDS.iter().map(|(w, _, _)| *w);
            let near = words
                .clone()
                .map(|w| (strsim::jaro_winkler(&word, w), w))
                .filter(|(score, _)| *score >= 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, w)| format!("did you mean `{w}`? "))
                .unwrap_or_default();
            return Err(CommandError {
                command: word.clone(),
                message: "unknown command".to_string(),
                help: format!("{near}write `help` for the list of commands"),
            });
        }
    };
    Ok(Some(command))
}

/// The usage line of a command word (the word itself when it is unknown).
pub fn usage(word: &str) -> &str {
    COMMANDS
        .iter()
        .find(|(w, _, _)| *w == word)
        .map_or(word, |(_, usage, _)| usage)
}

/// Splits at whitespace; `"..."` keeps spaces inside a word.
fn split_words(line: &str) -> Result<Vec<String>, CommandError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quoted {
        let command = words.first().map_or("shell", String::as_str).to_string();
        return Err(CommandError {
            command,
            message: "a `\"` is not closed".to_string(),
            help: "close the quoted word with `\"`".to_string(),
        });
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

fn duration(text: &str) -> Result<Duration, String> {
    parse_duration(text).map_err(|e| e.replace('"', "`"))
}

fn run_until(rest: &[String]) -> Result<Command, String> {
    let Some((until_word, rest)) = rest.split_first() else {
        return Err("missing `until`".to_string());
    };
    if !until_word.eq_ignore_ascii_case("until") {
        return Err(format!("expected `until`, found `{until_word}`"));
    }
    let Some((condition, rest)) = rest.split_first() else {
        return Err("missing the condition".to_string());
    };
    let (until, rest) = match condition.to_ascii_lowercase().as_str() {
        "tunnel-up" => (Until::TunnelUp, rest),
        "tunnel-down" => (Until::TunnelDown, rest),
        "flow" => match rest.split_first() {
            Some((host, rest)) if !host.eq_ignore_ascii_case("within") => {
                (Until::Flow(host.clone()), rest)
            }
            _ => return Err("`flow` needs a host".to_string()),
        },
        other => {
            return Err(format!(
                "unknown condition `{other}`: it is tunnel-up, tunnel-down or flow HOST"
            ));
        }
    };
    let within = match rest {
        [] => None,
        [within, cap] if within.eq_ignore_ascii_case("within") => Some(duration(cap)?),
        [within] if within.eq_ignore_ascii_case("within") => {
            return Err("`within` needs a duration".to_string());
        }
        [extra, ..] => return Err(format!("unexpected `{extra}` after the condition")),
    };
    Ok(Command::RunUntil { until, within })
}

fn connect(rest: &[String]) -> Result<Command, String> {
    let [process, target, flags @ ..] = rest else {
        return Err(if rest.is_empty() {
            "missing the process and HOST:PORT".to_string()
        } else {
            "missing HOST:PORT".to_string()
        });
    };
    let (mut via_proxy, mut app_doh) = (false, false);
    for flag in flags {
        match flag.to_ascii_lowercase().as_str() {
            "via-proxy" => via_proxy = true,
            "app-doh" => app_doh = true,
            _ => return Err(format!("unknown option `{flag}`")),
        }
    }
    if !target.contains(':') {
        return Err(format!("`{target}` has no port"));
    }
    Ok(Command::Connect {
        process: process.clone(),
        target: target.clone(),
        via_proxy,
        app_doh,
    })
}

fn rule(rest: &[String]) -> Result<Command, String> {
    let [change, place, words @ ..] = rest else {
        return Err("missing `add` or `remove`, and `host` or `perimeter`".to_string());
    };
    let change = match change.to_ascii_lowercase().as_str() {
        "add" => RuleChange::Add,
        "remove" | "rm" | "delete" => RuleChange::Remove,
        other => return Err(format!("expected `add` or `remove`, found `{other}`")),
    };
    let place = match place.to_ascii_lowercase().as_str() {
        "host" => FirewallPlace::Host,
        "perimeter" => FirewallPlace::Perimeter,
        other => return Err(format!("expected `host` or `perimeter`, found `{other}`")),
    };
    if words.is_empty() {
        return Err("missing the rule".to_string());
    }
    Ok(Command::Rule {
        change,
        place,
        rule: words.join(" "),
    })
}

fn explain(rest: &[String]) -> Result<Command, String> {
    let (target, process) = match rest {
        [] => return Err("missing the host".to_string()),
        [target] => (target, None),
        [target, process] => (target, Some(process.clone())),
        [_, _, extra, ..] => return Err(format!("unexpected `{extra}` after the process")),
    };
    let (host, port) = match target.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("`{port}` is not a port from 1 to 65535"))?;
            (host.to_string(), port)
        }
        _ => (target.clone(), 443),
    };
    if host.is_empty() {
        return Err("missing the host".to_string());
    }
    Ok(Command::Explain {
        host,
        port,
        process,
    })
}

fn log_count(rest: &[String]) -> Result<LogCount, String> {
    match rest {
        [] => Ok(LogCount::Last(DEFAULT_LOG_LINES)),
        [all] if all.eq_ignore_ascii_case("all") => Ok(LogCount::All),
        [n] => n
            .parse::<usize>()
            .map(LogCount::Last)
            .map_err(|_| format!("`{n}` is not a number of lines")),
        [_, extra, ..] => Err(format!("unexpected `{extra}`")),
    }
}

/// The `help` text: every command, or one.
pub fn help(topic: Option<&str>) -> Result<String, CommandError> {
    let entry = |(_, usage, what): &(&str, &str, &str)| format!("  {usage}\n      {what}\n");
    match topic {
        None => {
            let mut out = String::from("commands (DURATION like 250ms, 10s, 2m):\n");
            for e in COMMANDS.iter().filter(|(w, _, _)| *w != "exit") {
                out.push_str(&entry(e));
            }
            Ok(out)
        }
        Some(topic) => COMMANDS
            .iter()
            .find(|(w, _, _)| *w == topic)
            .map(entry)
            .ok_or_else(|| CommandError {
                command: "help".to_string(),
                message: format!("no command `{topic}`"),
                help: "write `help` for the list of commands".to_string(),
            }),
    }
}
