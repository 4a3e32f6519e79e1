//! Scenario files: TOML in, a checked [`Scenario`] out, or a [`LoadError`] that points
//! at the file, line and column and says what to write instead.
//!
//! - `model`: the typed scenario (re-exported here).
//! - `raw`: serde structs mirroring the TOML, the contract words of each enum, and the
//!   defaults of absent keys.
//! - `load`: [`load_file`] / [`load_str`], raw to model, every semantic check.
//! - `duration`, `clock`, `rule`: the small value grammars.
//! - `schema`: the JSON Schema of the file, generated from `raw` (`steerlab schema`).
//!
//! The contract is `docs/scenario-format.md`; every key is in `docs/scenario-reference.md`.

mod clock;
mod duration;
mod files;
mod load;
mod model;
mod raw;
mod rule;
mod schema;

#[cfg(test)]
mod tests;

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use raw::{Word, parse_word};

pub use clock::{format_clock, parse_clock};
pub use duration::{format_duration, parse_duration};
pub use load::{load_file, load_str};
pub use model::*;
pub use schema::schema_json;

/// A scenario file that cannot be used, and where: rendered like a rustc diagnostic.
///
/// ```text
/// error: unknown key `latncy` in [[pops]]
///   --> scenarios/foo.toml:12:1
///    |
/// 12 | latncy = "12ms"
///    | ^^^^^^
///    = help: did you mean `latency`? known keys: name, location, ip, latency, cert
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", Rendered(self))]
pub struct LoadError {
    pub path: PathBuf,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// A lowercase fragment: what is wrong.
    pub message: String,
    /// What to write instead.
    pub help: Option<String>,
    /// The offending source line (without its line break), when there is one.
    pub source_line: Option<String>,
    /// How many characters from `column` the error covers (at least 1).
    pub width: usize,
}

impl LoadError {
    /// An error about the bytes `span` of `text`. Out-of-range spans are clamped.
    pub fn at(
        path: &Path,
        text: &str,
        span: Range<usize>,
        message: impl Into<String>,
        help: Option<String>,
    ) -> Self {
        let start = floor_char_boundary(text, span.start.min(text.len()));
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let end = floor_char_boundary(text, span.end.clamp(start, line_end));
        let source_line = text[line_start..line_end]
            .strip_suffix('\r')
            .unwrap_or(&text[line_start..line_end]);
        LoadError {
            path: path.to_owned(),
            line: text[..start].matches('\n').count() + 1,
            column: text[line_start..start].chars().count() + 1,
            message: message.into(),
            help,
            source_line: Some(source_line.to_owned()),
            width: text[start..end].chars().count().max(1),
        }
    }

    /// The file could not be read at all.
    pub fn io(path: &Path, error: &std::io::Error) -> Self {
        LoadError {
            path: path.to_owned(),
            line: 1,
            column: 1,
            message: format!("cannot read the scenario file: {error}"),
            help: Some("check the path; scenarios live under `scenarios/`".into()),
            source_line: None,
            width: 1,
        }
    }
}

/// The rustc-style rendering of a [`LoadError`].
struct Rendered<'a>(&'a LoadError);

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        render(self.0, f)
    }
}

fn render(e: &LoadError, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let number = e.line.to_string();
    let pad = " ".repeat(number.len());
    writeln!(f, "error: {}", e.message)?;
    write!(f, "{pad}--> {}:{}:{}", e.path.display(), e.line, e.column)?;
    if let Some(line) = &e.source_line {
        // Keep tabs so the carets line up under them in a terminal.
        let indent: String = line
            .chars()
            .take(e.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(
            f,
            "\n{pad} |\n{number} | {line}\n{pad} | {indent}{}",
            "^".repeat(e.width)
        )?;
    }
    if let Some(help) = &e.help {
        write!(f, "\n{pad} = help: {help}")?;
    }
    Ok(())
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A scenario's text and path: turns value errors into [`LoadError`]s at their spans.
struct Source<'a> {
    path: &'a Path,
    text: &'a str,
}

type Res<T> = Result<T, LoadError>;

impl Source<'_> {
    fn err(
        &self,
        span: Range<usize>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> LoadError {
        LoadError::at(self.path, self.text, span, message, Some(help.into()))
    }

    /// A value parser's `Err("what; help")` becomes a [`LoadError`] with that help.
    fn at<T>(&self, span: Range<usize>, result: Result<T, String>) -> Res<T> {
        result.map_err(|e| {
            let (message, help) = split_help(&e);
            LoadError::at(self.path, self.text, span, message, help.map(str::to_owned))
        })
    }

    fn check<T>(
        &self,
        s: &Spanned<String>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Res<T> {
        self.at(s.span(), parse(s.get_ref()))
    }

    fn opt<T>(
        &self,
        s: &Option<Spanned<String>>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Res<Option<T>> {
        s.as_ref().map(|s| self.check(s, parse)).transpose()
    }

    /// Every element of an optional array, each error at its own element.
    fn list<T>(
        &self,
        items: Option<Vec<Spanned<String>>>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Res<Vec<T>> {
        let items = items.unwrap_or_default();
        items.iter().map(|s| self.check(s, &parse)).collect()
    }

    /// A contract word; the error suggests the nearest and lists them all.
    fn word<T: Word>(&self, s: &Spanned<String>, what: &str) -> Res<T> {
        parse_word(s.get_ref()).map_err(|_| {
            let help = did_you_mean(s.get_ref(), T::WORDS.iter().map(|(_, w)| *w));
            self.err(s.span(), format!("unknown {what} `{}`", s.get_ref()), help)
        })
    }

    fn opt_word<T: Word>(&self, s: &Option<Spanned<String>>, what: &str) -> Res<Option<T>> {
        s.as_ref().map(|s| self.word(s, what)).transpose()
    }

    /// `value`, or an error at the table's `header` asking for `key`.
    fn required<'r>(
        &self,
        value: &'r Option<Spanned<String>>,
        key: &str,
        table: &str,
        header: &Range<usize>,
    ) -> Res<&'r Spanned<String>> {
        let message = format!("missing `{key}` in {table}");
        value
            .as_ref()
            .ok_or_else(|| self.err(header.clone(), message, format!("add `{key} = \"...\"`")))
    }

    /// The text of a file named relative to the scenario's folder.
    fn read_beside(&self, name: &Spanned<String>) -> Res<String> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let path = dir.join(name.get_ref());
        std::fs::read_to_string(&path).map_err(|e| {
            let help = "the path is relative to the scenario file's folder";
            self.err(
                name.span(),
                format!("cannot read {}: {e}", path.display()),
                help,
            )
        })
    }

    /// 1-based line number of a byte offset.
    fn line_of(&self, offset: usize) -> usize {
        let before = self.text.get(..offset).unwrap_or(self.text);
        before.matches('\n').count() + 1
    }
}

/// Splits `"what; help"` at the first `; ` outside backticks.
fn split_help(e: &str) -> (&str, Option<&str>) {
    let mut quoted = false;
    for (i, c) in e.char_indices() {
        match c {
            '`' => quoted = !quoted,
            ';' if !quoted && e[i + 1..].starts_with(' ') => return (&e[..i], Some(&e[i + 2..])),
            _ => {}
        }
    }
    (e, None)
}

/// `did you mean "x"? write one of "a", "b"`.
fn did_you_mean<'w>(input: &str, words: impl Iterator<Item = &'w str> + Clone) -> String {
    let list: Vec<String> = words.clone().map(|w| format!("\"{w}\"")).collect();
    let help = format!("write one of {}", list.join(", "));
    match nearest(input, words) {
        Some(near) => format!("did you mean \"{near}\"? {help}"),
        None => help,
    }
}

/// The candidate closest to `input`, if it is close enough to be a typo.
fn nearest<'a>(input: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let input = input.to_lowercase();
    candidates
        .map(|c| (strsim::jaro_winkler(&input, &c.to_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Turns toml's syntax and shape errors (unknown keys, wrong types) into a [`LoadError`].
fn from_toml(path: &Path, text: &str, error: &toml::de::Error) -> LoadError {
    let span = error.span().unwrap_or(0..0);
    let message = error.message().trim_end();
    if message.starts_with("unknown field `") {
        return unknown_key(path, text, span, message);
    }
    // The key the value belongs to: the name just before the `=` that precedes it.
    let key = text
        .get(..span.start)
        .and_then(|before| before.rsplit('\n').next())
        .and_then(|line| line.trim_end().strip_suffix('='))
        .map(str::trim_end)
        .and_then(|line| {
            let name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
            line.rsplit(|c: char| !name(c)).next()
        })
        .filter(|key| !key.is_empty());
    let example = |value: &str| match key {
        Some(key) => format!(" (e.g. `{key} = {value}`)"),
        None => String::new(),
    };
    let help = if message.contains("expected a string") {
        Some("write the value in double quotes".to_owned())
    } else if message.contains("expected u16") {
        Some("write a port number from 1 to 65535".to_owned())
    } else if [
        "expected u32",
        "expected u64",
        "expected i64",
        "expected usize",
    ]
    .iter()
    .any(|t| message.contains(t))
    {
        Some(format!(
            "write a whole number without quotes{}",
            example("7")
        ))
    } else if message.contains("expected a boolean") {
        Some(format!(
            "write true or false without quotes{}",
            example("true")
        ))
    } else if message.contains("expected a sequence") {
        Some(format!(
            "write a list in square brackets{}",
            example("[\"a\", \"b\"]")
        ))
    } else if message == "duplicate key" {
        Some("each key may appear once per table; remove one".to_owned())
    } else {
        None
    };
    let mut message = message
        .split('\n')
        .next()
        .unwrap_or("invalid TOML")
        .to_owned();
    if message == "duplicate key"
        && let Some(key) = text.get(span.clone())
    {
        message = format!("duplicate key `{key}`");
    }
    LoadError::at(path, text, span, message, help)
}

/// `unknown field `x`, expected one of `a`, `b`` from serde, with the table it is in
/// found by re-parsing the document with spans.
fn unknown_key(path: &Path, text: &str, span: Range<usize>, message: &str) -> LoadError {
    let expected = message
        .split_once(", expected ")
        .map_or("", |(_, rest)| rest);
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let (key, table) = key_context(text, &span).unwrap_or_else(|| {
        let key = message
            .trim_start_matches("unknown field `")
            .split('`')
            .next()
            .unwrap_or("");
        (key.to_owned(), String::new())
    });
    let mut help = String::new();
    if let Some(near) = nearest(&key, known.iter().copied()) {
        help = format!("did you mean `{near}`? ");
    }
    if known.is_empty() {
        help.push_str("this table takes no keys");
    } else {
        help.push_str(&format!("known keys: {}", known.join(", ")));
    }
    LoadError::at(
        path,
        text,
        span,
        format!("unknown key `{key}`{table}"),
        Some(help),
    )
}

/// The key whose name sits at `span`, and ` in [table]` for where it is.
fn key_context(text: &str, span: &Range<usize>) -> Option<(String, String)> {
    let root = toml::de::DeTable::parse(text).ok()?;
    let mut path = Vec::new();
    let key = find_key(root.get_ref(), span, &mut path)?;
    let keys: Vec<&str> = path.iter().flatten().map(String::as_str).collect();
    let table = match path.last() {
        None => " at the top level".to_owned(),
        Some(None) => format!(" in [[{}]]", keys.join(".")),
        Some(Some(_)) => format!(" in [{}]", keys.join(".")),
    };
    Some((key, table))
}

/// Depth-first search for the key at `span`; `path` holds the keys (Some) and array
/// elements (None) leading to its table.
fn find_key(
    table: &toml::de::DeTable<'_>,
    span: &Range<usize>,
    path: &mut Vec<Option<String>>,
) -> Option<String> {
    for (key, value) in table {
        if key.span() == *span {
            return Some(key.get_ref().to_string());
        }
        path.push(Some(key.get_ref().to_string()));
        if let Some(found) = find_in_value(value.get_ref(), span, path) {
            return Some(found);
        }
        path.pop();
    }
    None
}

fn find_in_value(
    value: &toml::de::DeValue<'_>,
    span: &Range<usize>,
    path: &mut Vec<Option<String>>,
) -> Option<String> {
    match value {
        toml::de::DeValue::Table(table) => find_key(table, span, path),
        toml::de::DeValue::Array(items) => {
            for item in items {
                path.push(None);
                if let Some(found) = find_in_value(item.get_ref(), span, path) {
                    return Some(found);
                }
                path.pop();
            }
            None
        }
        _ => None,
    }
}
