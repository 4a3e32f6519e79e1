//! The client's exception files, as a client's config folder holds them, which a
//! scenario may point at instead of (or beside) inline lists.
//!
//! `nsexception.json` — IP and domain exceptions of the steering configuration:
//!
//! ```json
//! { "domains": ["zoom.us", "*.zoom.us"], "ips": ["203.0.113.0/24", "198.51.100.7"] }
//! ```
//!
//! `nsbypass.json` — certificate-pinned applications and what to do with them (`action`
//! is `bypass`, `tunnel` or `block`; default `bypass`; `name` is free text):
//!
//! ```json
//! { "apps": [ { "name": "Zoom", "process": "zoom.us" },
//!             { "process": "Teams.exe", "action": "block" } ] }
//! ```
//!
//! Errors name the file, line and column, and the shape expected.

use serde::Deserialize;

use super::model::RuleTarget;
use super::model::{PinnedAction, PinnedApp};

const EXCEPTION_SHAPE: &str =
    r#"expected {"domains": ["zoom.us", "*.zoom.us"], "ips": ["203.0.113.0/24"]}"#;
const BYPASS_SHAPE: &str =
    r#"expected {"apps": [{"process": "Teams.exe", "action": "bypass" | "tunnel" | "block"}]}"#;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExceptionFile {
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    ips: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BypassFile {
    apps: Vec<BypassEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BypassEntry {
    #[serde(default)]
    #[allow(dead_code, reason = "free text in the file, kept for the shape")]
    name: Option<String>,
    process: String,
    #[serde(default)]
    action: Option<String>,
}

/// The exceptions of an `nsexception.json` text; `Err("what; help")`.
pub fn exceptions(file: &str, text: &str) -> Result<Vec<String>, String> {
    let parsed: ExceptionFile = serde_json::from_str(text)
        .map_err(|e| format!("{file}:{}:{}: {e}; {EXCEPTION_SHAPE}", e.line(), e.column()))?;
    let mut out = Vec::new();
    for entry in parsed.domains.iter().chain(&parsed.ips) {
        RuleTarget::parse(entry)
            .map_err(|e| format!("{file}: bad exception `{entry}`: {e}; {EXCEPTION_SHAPE}"))?;
        out.push(entry.clone());
    }
    Ok(out)
}

/// The pinned apps of an `nsbypass.json` text; `Err("what; help")`.
pub fn bypass_apps(file: &str, text: &str) -> Result<Vec<PinnedApp>, String> {
    let parsed: BypassFile = serde_json::from_str(text)
        .map_err(|e| format!("{file}:{}:{}: {e}; {BYPASS_SHAPE}", e.line(), e.column()))?;
    parsed
        .apps
        .into_iter()
        .map(|app| {
            let action = match app.action.as_deref().unwrap_or("bypass") {
                "bypass" => PinnedAction::Bypass,
                "tunnel" => PinnedAction::Tunnel,
                "block" => PinnedAction::Block,
                other => {
                    return Err(format!(
                        "{file}: unknown action `{other}` for `{}`; {BYPASS_SHAPE}",
                        app.process
                    ));
                }
            };
            if app.process.trim().is_empty() {
                return Err(format!(
                    "{file}: an app with an empty `process`; {BYPASS_SHAPE}"
                ));
            }
            Ok(PinnedApp {
                process: app.process,
                action,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_files() {
        let e = exceptions(
            "x.json",
            r#"{"domains":["zoom.us","*.zoom.us"],"ips":["203.0.113.0/24"]}"#,
        )
        .unwrap();
        assert_eq!(e, ["zoom.us", "*.zoom.us", "203.0.113.0/24"]);
        let b = bypass_apps("b.json", r#"{"apps":[{"name":"Zoom","process":"zoom.us"},{"process":"Teams.exe","action":"block"}]}"#)
            .unwrap();
        assert_eq!(b[1].action, PinnedAction::Block);
        assert_eq!(b[0].action, PinnedAction::Bypass);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let err = exceptions("nsexception.json", "{\n  \"domains\": [1]\n}").unwrap_err();
        assert!(err.starts_with("nsexception.json:2:"), "{err}");
        let err = bypass_apps(
            "nsbypass.json",
            r#"{"apps":[{"process":"a","action":"maybe"}]}"#,
        )
        .unwrap_err();
        assert!(err.contains("unknown action `maybe`"), "{err}");
    }
}
