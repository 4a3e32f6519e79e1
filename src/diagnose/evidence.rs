//! Reading a customer's evidence: nsdebuglog files (rotated ones too), a "Save Logs"
//! bundle (a folder or a .zip holding the log and config files such as
//! nsexception.json, nsbypass.json, nsconfig.json) and laptop captures (.pcap/.pcapng),
//! into one log in time order, the bundle's configuration and the captures' packets.
//!
//! Bad evidence is refused with the file (and line) at fault: a binary file that is no
//! capture, an empty file, a damaged zip, a text that is no nsdebuglog, a log of another
//! product.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::logs::events::{Event, classify};
use crate::logs::parse::{Entry, parse_log};
use crate::pcap::{Packet, read_capture};

/// The largest file read (a bundle's log rotates at a few MB; a capture is streamed).
const MAX_TEXT: u64 = 256 * 1024 * 1024;

/// Everything the evidence holds.
#[derive(Debug, Default)]
pub struct Evidence {
    /// Every log entry of every log file, oldest file first; `line` is the line in its
    /// own file, `offset_ms` counts from the first entry of all.
    pub entries: Vec<Entry>,
    /// The file of each entry (index into `files`).
    pub entry_file: Vec<usize>,
    /// The log files read, as given or as found in a bundle (`bundle.zip:nsdebuglog.log`).
    pub files: Vec<String>,
    /// Exceptions from nsexception.json (domains and IPs).
    pub exceptions: Vec<String>,
    /// Certificate-pinned apps from nsbypass.json: (process, action).
    pub pinned_apps: Vec<(String, String)>,
    /// What nsconfig.json says, when a bundle has one.
    pub config: BundleConfig,
    /// The captures read: (file, packets).
    pub captures: Vec<(String, Vec<Packet>)>,
}

/// The few settings of nsconfig.json that shape the story.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BundleConfig {
    /// `failClose`-like keys.
    pub fail_close: Option<bool>,
    /// The tenant's host name (`acme.goskope.com` gives `acme`).
    pub tenant: Option<String>,
    /// Steering mode words (`cloud-apps`, `web`, `all`).
    pub mode: Option<String>,
}

/// Why evidence cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {why}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct EvidenceError {
    /// The file at fault.
    pub file: String,
    /// The line at fault, when there is one.
    pub line: Option<usize>,
    /// What is wrong and what to give instead.
    pub why: String,
}

fn bad(file: &str, line: Option<usize>, why: impl Into<String>) -> EvidenceError {
    EvidenceError {
        file: file.to_string(),
        line,
        why: why.into(),
    }
}

/// Reads every path given (files, folders, zips).
pub fn read(paths: &[PathBuf]) -> Result<Evidence, EvidenceError> {
    if paths.is_empty() {
        return Err(bad(
            "(none)",
            None,
            "no evidence given: name an nsdebuglog, a bundle folder or .zip, or a capture",
        ));
    }
    let mut logs: Vec<(String, Vec<Entry>)> = Vec::new();
    let mut ev = Evidence::default();
    for path in paths {
        let name = path.display().to_string();
        if path.is_dir() {
            read_folder(path, &mut logs, &mut ev)?;
            continue;
        }
        let bytes = read_file(path)?;
        read_item(&name, path, &bytes, &mut logs, &mut ev, false)?;
    }
    if logs.is_empty() && ev.captures.is_empty() {
        return Err(bad(
            &paths[0].display().to_string(),
            None,
            "no nsdebuglog and no capture found in the evidence",
        ));
    }
    merge(logs, &mut ev);
    Ok(ev)
}

fn read_file(path: &Path) -> Result<Vec<u8>, EvidenceError> {
    let name = path.display().to_string();
    let file =
        std::fs::File::open(path).map_err(|e| bad(&name, None, format!("cannot read: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_TEXT)
        .read_to_end(&mut bytes)
        .map_err(|e| bad(&name, None, format!("cannot read: {e}")))?;
    Ok(bytes)
}

/// A bundle folder: its logs, config files and captures (two levels deep), in name order.
fn read_folder(
    dir: &Path,
    logs: &mut Vec<(String, Vec<Entry>)>,
    ev: &mut Evidence,
) -> Result<(), EvidenceError> {
    let mut found = Vec::new();
    collect(dir, 0, &mut found);
    found.sort();
    let before = (logs.len(), ev.captures.len());
    for path in found {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if !wanted_in_bundle(&file_name) {
            continue;
        }
        let bytes = read_file(&path)?;
        read_item(&path.display().to_string(), &path, &bytes, logs, ev, true)?;
    }
    if (logs.len(), ev.captures.len()) == before {
        return Err(bad(
            &dir.display().to_string(),
            None,
            "this folder holds no nsdebuglog.log (nor a capture): give the folder of a \"Save Logs\" bundle",
        ));
    }
    Ok(())
}

fn collect(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in read.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if depth < 2 {
                collect(&path, depth + 1, out);
            }
        } else {
            out.push(path);
        }
    }
}

/// The files of a bundle that are evidence: logs (rotated too), the config files, captures.
fn wanted_in_bundle(name: &str) -> bool {
    is_log_name(name)
        || matches!(name, "nsexception.json" | "nsbypass.json" | "nsconfig.json")
        || name.ends_with(".pcap")
        || name.ends_with(".pcapng")
}

/// `nsdebuglog.log`, `nsdebuglog.log.1`, `nsdebuglog.1.log`, `stAgentSvc.log`...
fn is_log_name(name: &str) -> bool {
    name.contains("debuglog") || name.contains("stagentsvc") || name.ends_with(".log")
}

fn read_item(
    name: &str,
    path: &Path,
    bytes: &[u8],
    logs: &mut Vec<(String, Vec<Entry>)>,
    ev: &mut Evidence,
    in_bundle: bool,
) -> Result<(), EvidenceError> {
    let base = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(name)
        .to_lowercase();
    if bytes.is_empty() {
        return Err(bad(
            name,
            None,
            "the file is empty: give the customer's nsdebuglog.log, bundle or capture",
        ));
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        return read_zip(name, bytes, logs, ev);
    }
    if is_capture(bytes) {
        let (packets, _) = read_capture(path).map_err(|e| bad(name, None, e.to_string()))?;
        ev.captures.push((name.to_string(), packets));
        return Ok(());
    }
    if base.ends_with(".json") {
        return read_config(name, &base, bytes, ev);
    }
    if base.ends_with(".zip") {
        return Err(bad(
            name,
            None,
            "not a readable zip (no zip header): the archive is damaged or is not a zip",
        ));
    }
    let text = text_of(name, bytes)?;
    let entries = parse_log(&text).map_err(|e| {
        let first = text
            .lines()
            .position(|l| !l.trim().is_empty())
            .map(|i| i + 1);
        bad(name, first, e.to_string())
    })?;
    // A log of another product can share the date shape: it must hold the client's
    // components.
    let known = entries
        .iter()
        .filter(|e| classify(e) != Event::Unknown)
        .count();
    if known == 0 {
        return Err(bad(
            name,
            entries.first().map(|e| e.line),
            format!(
                "no line of this log is a steering client's ({} entries, none from nsTunnel, nsssl, dnsResolver, restapi, BypassAppMgr...): is it another product's log?",
                entries.len()
            ),
        ));
    }
    let _ = in_bundle;
    logs.push((name.to_string(), entries));
    Ok(())
}

fn is_capture(bytes: &[u8]) -> bool {
    const MAGICS: [[u8; 4]; 5] = [
        [0xd4, 0xc3, 0xb2, 0xa1],
        [0xa1, 0xb2, 0xc3, 0xd4],
        [0x4d, 0x3c, 0xb2, 0xa1],
        [0xa1, 0xb2, 0x3c, 0x4d],
        [0x0a, 0x0d, 0x0d, 0x0a],
    ];
    bytes.len() >= 4 && MAGICS.iter().any(|m| bytes[..4] == *m)
}

/// The text of a log file: UTF-8 (or UTF-16 with a byte-order mark, as Windows tools
/// write); binary data is refused.
fn text_of(name: &str, bytes: &[u8]) -> Result<String, EvidenceError> {
    if let Some(rest) = bytes.strip_prefix(&[0xff, 0xfe]) {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        return Ok(String::from_utf16_lossy(&units));
    }
    let bytes = bytes.strip_prefix(&[0xef, 0xbb, 0xbf]).unwrap_or(bytes);
    let sample = &bytes[..bytes.len().min(64 * 1024)];
    let controls = sample
        .iter()
        .filter(|&&b| b == 0 || (b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t')))
        .count();
    if controls * 100 > sample.len().max(1) || sample.contains(&0) {
        return Err(bad(
            name,
            None,
            "binary data, not an nsdebuglog text, a bundle (.zip or folder) or a capture (.pcap/.pcapng)",
        ));
    }
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

fn read_zip(
    name: &str,
    bytes: &[u8],
    logs: &mut Vec<(String, Vec<Entry>)>,
    ev: &mut Evidence,
) -> Result<(), EvidenceError> {
    let damaged = |e: zip::result::ZipError| {
        bad(
            name,
            None,
            format!(
                "not a readable zip ({e}): the archive is truncated or damaged; ask for the bundle again"
            ),
        )
    };
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(damaged)?;
    let mut names: Vec<(String, usize)> = (0..archive.len())
        .filter_map(|i| {
            let file = archive.by_index(i).ok()?;
            let name = file.name().ok()?.to_string();
            (!file.is_dir()).then_some((name, i))
        })
        .collect();
    names.sort();
    let before = (logs.len(), ev.captures.len());
    for (inner, i) in names {
        let base = inner.rsplit('/').next().unwrap_or(&inner).to_lowercase();
        if !wanted_in_bundle(&base) {
            continue;
        }
        let mut file = archive.by_index(i).map_err(damaged)?;
        let mut data = Vec::new();
        file.by_ref()
            .take(MAX_TEXT)
            .read_to_end(&mut data)
            .map_err(|e| {
                bad(
                    &format!("{name}:{inner}"),
                    None,
                    format!("cannot unpack: {e}; the archive is truncated or damaged"),
                )
            })?;
        let label = format!("{name}:{inner}");
        if is_capture(&data) {
            // Captures are read from a file: unpack it beside the other temporary files.
            let tmp = std::env::temp_dir().join(format!(
                "steerlab-diagnose-{}-{}",
                std::process::id(),
                base
            ));
            std::fs::write(&tmp, &data)
                .map_err(|e| bad(&label, None, format!("cannot unpack: {e}")))?;
            let read = read_capture(&tmp).map_err(|e| bad(&label, None, e.to_string()));
            let _ = std::fs::remove_file(&tmp);
            ev.captures.push((label, read?.0));
            continue;
        }
        read_item(&label, Path::new(&inner), &data, logs, ev, true)?;
    }
    if (logs.len(), ev.captures.len()) == before {
        return Err(bad(
            name,
            None,
            "this zip holds no nsdebuglog.log (nor a capture): give a \"Save Logs\" bundle",
        ));
    }
    Ok(())
}

fn read_config(
    name: &str,
    base: &str,
    bytes: &[u8],
    ev: &mut Evidence,
) -> Result<(), EvidenceError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| bad(name, Some(e.line()), format!("not valid JSON: {e}")))?;
    match base {
        "nsexception.json" => {
            for key in ["domains", "ips", "names", "exceptions"] {
                for item in strings(&value[key]) {
                    ev.exceptions.push(item);
                }
            }
        }
        "nsbypass.json" => {
            let apps = value["apps"].as_array().or_else(|| value.as_array());
            for app in apps.into_iter().flatten() {
                let process = app["process"]
                    .as_str()
                    .or_else(|| app["name"].as_str())
                    .unwrap_or("");
                if process.is_empty() {
                    continue;
                }
                let action = app["action"].as_str().unwrap_or("bypass").to_lowercase();
                ev.pinned_apps.push((process.to_string(), action));
            }
        }
        _ => {
            // nsconfig.json: keys vary by release; look for the few that matter.
            let mut found = BundleConfig::default();
            walk(&value, &mut |key, v| {
                let k = key.to_ascii_lowercase();
                if k.contains("failclose") || k.contains("fail_close") {
                    found.fail_close = found.fail_close.or(v
                        .as_bool()
                        .or_else(|| v.as_str().map(|s| matches!(s, "true" | "1" | "yes"))));
                }
                if (k == "tenanthost" || k == "tenant" || k == "tenantname")
                    && let Some(s) = v.as_str()
                {
                    found
                        .tenant
                        .get_or_insert_with(|| s.split('.').next().unwrap_or(s).to_string());
                }
                if (k.contains("steeringmode") || k.contains("trafficmode"))
                    && let Some(s) = v.as_str()
                {
                    let s = s.to_ascii_lowercase();
                    let mode = if s.contains("all") {
                        "all"
                    } else if s.contains("web") {
                        "web"
                    } else {
                        "cloud-apps"
                    };
                    found.mode.get_or_insert_with(|| mode.to_string());
                }
            });
            ev.config = found;
        }
    }
    Ok(())
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

fn walk(v: &serde_json::Value, f: &mut dyn FnMut(&str, &serde_json::Value)) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, x) in map {
                f(k, x);
                walk(x, f);
            }
        }
        serde_json::Value::Array(items) => {
            for x in items {
                walk(x, f);
            }
        }
        _ => {}
    }
}

/// One log out of several files: oldest file first (by its first entry's time, so
/// `nsdebuglog.log.2`, `.1`, then `nsdebuglog.log`), offsets from the first entry of all.
fn merge(mut logs: Vec<(String, Vec<Entry>)>, ev: &mut Evidence) {
    logs.sort_by_key(|(name, entries)| (entries.first().map_or(0, |e| e.unix_ms), name.clone()));
    let first = logs
        .iter()
        .filter_map(|(_, e)| e.first().map(|e| e.unix_ms))
        .min()
        .unwrap_or(0);
    for (name, entries) in logs {
        let index = ev.files.len();
        ev.files.push(name);
        for mut entry in entries {
            entry.offset_ms = entry.unix_ms - first;
            ev.entries.push(entry);
            ev.entry_file.push(index);
        }
    }
}

impl Evidence {
    /// How long the evidence lasts, in milliseconds: the log's span, or the captures'
    /// when there is no log.
    pub fn span_ms(&self) -> i64 {
        if let Some(last) = self.entries.last() {
            return last.offset_ms;
        }
        let times = self
            .captures
            .iter()
            .flat_map(|(_, p)| p.iter().map(|p| p.time.as_millis()));
        let (lo, hi) = times.fold((u128::MAX, 0), |(lo, hi), t| (lo.min(t), hi.max(t)));
        i64::try_from(hi.saturating_sub(lo)).unwrap_or(0)
    }

    /// `file:line` of an entry's line number `line` within the entry at `index`.
    pub fn place(&self, index: usize) -> String {
        let file = self
            .entry_file
            .get(index)
            .and_then(|&f| self.files.get(f))
            .map_or("", String::as_str);
        let line = self.entries.get(index).map_or(0, |e| e.line);
        format!("{file}:{line}")
    }

    /// Lines of no known shape: (place, text), kept and shown, never silently dropped.
    pub fn unknown_lines(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| classify(e) == Event::Unknown)
            .map(|(i, e)| (self.place(i), format!("{} {}", e.component, e.message)))
            .collect()
    }
}
