//! Tab completion for the line editor: command words, then what each command takes
//! (PoP names, hosts, process names, origin targets, rules).

use std::borrow::Cow;

use rustyline::Context;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;

use super::command::COMMANDS;

/// The words a session can complete right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vocabulary {
    /// PoP names.
    pub pops: Vec<String>,
    /// Everything `partition` and `repair` take: PoPs, service hosts, origins.
    pub hosts: Vec<String>,
    /// Origin hosts and their aliases.
    pub origins: Vec<String>,
    /// Process names seen in the scenario, and a few common ones.
    pub processes: Vec<String>,
    /// The rules of the host firewall now.
    pub host_rules: Vec<String>,
    /// The rules of the perimeter firewall now.
    pub perimeter_rules: Vec<String>,
}

/// Where the word being completed starts, and the words that fit.
pub fn complete(vocab: &Vocabulary, line: &str) -> (usize, Vec<String>) {
    let start = line.rfind(char::is_whitespace).map_or(0, |i| {
        i + line[i..].chars().next().map_or(1, char::len_utf8)
    });
    let prefix = &line[start..];
    let words: Vec<&str> = line[..start].split_whitespace().collect();
    let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let candidates: Vec<String> = match words.as_slice() {
        [] => COMMANDS
            .iter()
            .map(|(w, _, _)| w.to_string())
            .filter(|w| w != "exit")
            .collect(),
        [cmd, rest @ ..] => match (cmd.to_ascii_lowercase().as_str(), rest) {
            ("run", []) => owned(&["until"]),
            ("run", [_]) => owned(&["tunnel-up", "tunnel-down", "flow"]),
            ("run", [_, flow]) if flow.eq_ignore_ascii_case("flow") => vocab.origins.clone(),
            ("run", [_, cond]) if !cond.eq_ignore_ascii_case("flow") => owned(&["within"]),
            ("run", [_, _, _]) => owned(&["within"]),
            ("connect", []) => vocab.processes.clone(),
            ("connect", [_]) => vocab
                .origins
                .iter()
                .flat_map(|o| [format!("{o}:443"), format!("{o}:80")])
                .collect(),
            ("connect", [_, _, ..]) => owned(&["via-proxy", "app-doh"]),
            ("rule", []) => owned(&["add", "remove"]),
            ("rule", [_]) => owned(&["host", "perimeter"]),
            ("rule", [change, place, _rule @ ..]) if change.eq_ignore_ascii_case("remove") => {
                let rules = if place.eq_ignore_ascii_case("host") {
                    &vocab.host_rules
                } else {
                    &vocab.perimeter_rules
                };
                // A rule has spaces: complete it whole, from its first word.
                let from = word_starts(line).get(3).copied().unwrap_or(start);
                let whole = &line[from..];
                let fits = rules
                    .iter()
                    .filter(|r| starts_with(r, whole))
                    .cloned()
                    .collect();
                return (from, fits);
            }
            ("rule", [_, _]) => owned(&["allow", "block", "reset", "inspect", "redirect"]),
            ("rule", [_, _, _]) => owned(&[
                "tcp/443", "udp/443", "tcp/80", "dns", "any", "tcp", "udp", "to",
            ]),
            ("rule", [_, _, _, last]) if !last.eq_ignore_ascii_case("to") => owned(&["to"]),
            ("rule", [.., to]) if to.eq_ignore_ascii_case("to") => vocab
                .origins
                .iter()
                .cloned()
                .chain(["*.goskope.com".to_string()])
                .collect(),
            ("partition" | "repair", []) => vocab.hosts.clone(),
            ("explain", []) => vocab.origins.clone(),
            ("explain", [_]) => vocab.processes.clone(),
            ("help", []) => COMMANDS.iter().map(|(w, _, _)| w.to_string()).collect(),
            ("log", []) => owned(&["all", "50", "100"]),
            ("move", []) => vocab.pops.clone(),
            _ => Vec::new(),
        },
    };
    let mut fits: Vec<String> = candidates
        .into_iter()
        .filter(|c| starts_with(c, prefix))
        .collect();
    fits.dedup();
    (start, fits)
}

/// Byte offsets where each word of `line` starts.
fn word_starts(line: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut in_word = false;
    for (i, c) in line.char_indices() {
        if c.is_whitespace() {
            in_word = false;
        } else if !in_word {
            starts.push(i);
            in_word = true;
        }
    }
    starts
}

fn starts_with(candidate: &str, prefix: &str) -> bool {
    candidate
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// The line editor's helper: completion from the session's [`Vocabulary`].
#[derive(Debug, Default)]
pub struct ShellHelper {
    pub vocabulary: Vocabulary,
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = line.get(..pos).unwrap_or(line);
        let (start, words) = complete(&self.vocabulary, before);
        let pairs = words
            .into_iter()
            .map(|w| Pair {
                display: w.clone(),
                replacement: w,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Highlighter for ShellHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        Cow::Borrowed(line)
    }
}

impl Validator for ShellHelper {}

impl rustyline::Helper for ShellHelper {}
