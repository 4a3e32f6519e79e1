//! The session's scenario as a TOML document: the original text, comments and all, with
//! one `[[events]]` table per thing the session did, and the file `save` writes.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, Value, value};

use crate::report::RunReport;
use crate::scenario::{FirewallPlace, format_duration, parse_duration};

/// `[[events]]` `do = "connect"`.
pub fn connect(at: Duration, process: &str, target: &str, via_proxy: bool, app_doh: bool) -> Table {
    let mut t = event(at, "connect");
    t.insert("process", value(process));
    t.insert("target", value(target));
    if via_proxy {
        t.insert("via_proxy", value(true));
    }
    if app_doh {
        t.insert("dns", value("app-doh"));
    }
    t
}

/// `do = "partition"` or `"repair"` with a host.
pub fn host_event(at: Duration, word: &str, host: &str) -> Table {
    let mut t = event(at, word);
    t.insert("host", value(host));
    t
}

/// `do = "start"` or `"stop"`.
pub fn bare_event(at: Duration, word: &str) -> Table {
    event(at, word)
}

/// `do = "move"`.
pub fn move_event(at: Duration, location: &str) -> Table {
    let mut t = event(at, "move");
    t.insert("location", value(location));
    t
}

/// `do = "rule"`.
pub fn rule_event(at: Duration, place: FirewallPlace, rule: &str) -> Table {
    let mut t = event(at, "rule");
    t.insert("where", value(place.as_str()));
    t.insert("rule", value(rule));
    t
}

fn event(at: Duration, word: &str) -> Table {
    let mut t = Table::new();
    t.insert("at", value(format_duration(at)));
    t.insert("do", value(word));
    t
}

/// Sets the top-level `duration`, keeping a comment after the old value.
pub fn set_duration(doc: &mut DocumentMut, to: Duration) {
    set_top(doc, "duration", format_duration(to));
}

/// Sets the top-level `name`, keeping a comment after the old value.
pub fn set_name(doc: &mut DocumentMut, name: &str) {
    set_top(doc, "name", name.to_string());
}

fn set_top(doc: &mut DocumentMut, key: &str, text: String) {
    match doc.get_mut(key).and_then(Item::as_value_mut) {
        Some(v) => {
            let decor = v.decor().clone();
            *v = Value::from(text);
            *v.decor_mut() = decor;
        }
        None => {
            doc.insert(key, value(text));
        }
    }
}

/// Appends event tables after the file's events; `comment` (whole `#` lines) goes
/// above the first.
pub fn push_events(
    doc: &mut DocumentMut,
    mut tables: Vec<Table>,
    comment: Option<&str>,
) -> Result<(), String> {
    if let (Some(comment), Some(first)) = (comment, tables.first_mut()) {
        first.decor_mut().set_prefix(format!("\n{comment}\n"));
    }
    match doc.get_mut("events") {
        None => {
            let mut aot = ArrayOfTables::new();
            for t in tables {
                aot.push(t);
            }
            doc.insert("events", Item::ArrayOfTables(aot));
        }
        Some(Item::ArrayOfTables(aot)) => {
            for t in tables {
                aot.push(t);
            }
        }
        Some(Item::Value(Value::Array(array))) => {
            for t in tables {
                array.push(t.into_inline_table());
            }
        }
        Some(_) => {
            return Err(
                "the file's `events` is not a list of tables; write them as [[events]]".into(),
            );
        }
    }
    Ok(())
}

/// The text `save` writes, and what it changed.
#[derive(Debug)]
pub struct Saved {
    pub text: String,
    /// Events of the original file after `now`, left out.
    pub dropped: usize,
    /// The new `[expect]` in a few words.
    pub expect_summary: String,
}

/// The session's document for `out`: `duration` = `now`, events after `now` left out,
/// `[expect]` = what `report` (the run to `now`) shows, and file references made
/// relative to `out`'s folder.
pub fn saved(
    doc: &DocumentMut,
    source: &Path,
    out: &Path,
    now: Duration,
    report: &RunReport,
) -> Result<Saved, String> {
    let mut doc = doc.clone();
    set_duration(&mut doc, now);
    let later = |at: Option<&str>| {
        at.and_then(|s| parse_duration(s).ok())
            .is_some_and(|at| at > now)
    };
    let mut dropped = 0;
    match doc.get_mut("events") {
        Some(Item::ArrayOfTables(aot)) => {
            let before = aot.len();
            aot.retain(|t| !later(t.get("at").and_then(Item::as_str)));
            dropped = before - aot.len();
        }
        Some(Item::Value(Value::Array(array))) => {
            let before = array.len();
            array.retain(|v| {
                !later(
                    v.as_inline_table()
                        .and_then(|t| t.get("at"))
                        .and_then(Value::as_str),
                )
            });
            dropped = before - array.len();
        }
        _ => {}
    }
    rebase_files(&mut doc, source, out);
    let (expect, expect_summary) = expect_table(report, now);
    doc.remove("expect");
    doc.insert("expect", Item::Table(expect));
    Ok(Saved {
        text: doc.to_string(),
        dropped,
        expect_summary,
    })
}

/// `[expect]` from a run, and a summary of it.
fn expect_table(report: &RunReport, now: Duration) -> (Table, String) {
    let o = &report.outcome;
    let mut t = Table::new();
    t.decor_mut().set_prefix(format!(
        "\n# What `steerlab shell` saw at +{}.{:03}s.\n",
        now.as_secs(),
        now.subsec_millis()
    ));
    let mut summary = format!("tunnel {}", o.tunnel.as_str());
    if let Some(r) = o.resolved_by {
        t.insert("resolved_by", value(r.as_str()));
    }
    if let Some(g) = &o.gateway {
        // `[expect] gateway` names a PoP or `backup` (an address is not a gateway name).
        if g.parse::<std::net::IpAddr>().is_err() {
            t.insert("gateway", value(g.as_str()));
            summary.push_str(&format!(" to {g}"));
        }
    }
    if let Some(r) = o.resolved_by {
        summary.push_str(&format!(", resolved by {}", r.as_str()));
    }
    t.insert("tunnel", value(o.tunnel.as_str()));
    if report.flows.is_empty() {
        t.insert("flows", value(toml_edit::Array::new()));
    } else {
        let mut flows = ArrayOfTables::new();
        for f in &report.flows {
            let mut ft = Table::new();
            ft.insert("process", value(f.process.as_str()));
            ft.insert("host", value(f.host.as_str()));
            ft.insert("verdict", value(f.verdict.as_str()));
            flows.push(ft);
        }
        t.insert("flows", Item::ArrayOfTables(flows));
    }
    summary.push_str(&format!(", {} flow(s)", report.flows.len()));
    (t, summary)
}

/// `[steering] exceptions_file` and `bypass_file` are relative to the scenario's folder:
/// when `out` is in another folder, point them at the same files from there.
fn rebase_files(doc: &mut DocumentMut, source: &Path, out: &Path) {
    let folder = |p: &Path| {
        let parent = p.parent().filter(|p| !p.as_os_str().is_empty());
        parent
            .unwrap_or(Path::new("."))
            .canonicalize()
            .unwrap_or_else(|_| parent.unwrap_or(Path::new(".")).to_path_buf())
    };
    let (from, to) = (folder(source), folder(out));
    if from == to {
        return;
    }
    let Some(steering) = doc.get_mut("steering").and_then(Item::as_table_like_mut) else {
        return;
    };
    for key in ["exceptions_file", "bypass_file"] {
        let Some(item) = steering.get_mut(key) else {
            continue;
        };
        let Some(name) = item.as_str() else {
            continue;
        };
        let target = from.join(name);
        let rebased = relative(&target, &to).unwrap_or(target);
        if let Some(v) = item.as_value_mut() {
            let decor = v.decor().clone();
            *v = Value::from(rebased.to_string_lossy().replace('\\', "/"));
            *v.decor_mut() = decor;
        }
    }
}

/// `target` relative to the folder `base` (both absolute), if they share a root.
fn relative(target: &Path, base: &Path) -> Option<PathBuf> {
    let t: Vec<Component> = target.components().collect();
    let b: Vec<Component> = base.components().collect();
    if t.first() != b.first() {
        return None;
    }
    let common = t.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c.as_os_str());
    }
    Some(out)
}
