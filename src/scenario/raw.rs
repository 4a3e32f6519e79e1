//! The file as written: serde structs mirroring the TOML key for key, and the contract
//! words of every enum. Values that need checking stay `Spanned` strings so the loader
//! can point at them; `deny_unknown_fields` everywhere makes typos errors.

use std::ops::Range;
use std::path::Path;

use serde::{Deserialize, Serialize, Serializer};
use toml::Spanned;

use super::{LoadError, nearest};

use super::model::{
    CertKind, FirewallPlace, ProxyDiscovery, Region, ResolvedBy, RuleAction, RuleProto,
    SteeringMode, TunnelProto, TunnelState, Verdict,
};

type S = Option<Spanned<String>>;

/// Parses the TOML into the raw shape: syntax, unknown keys and value types are
/// checked here, with the error at the offending key or value.
pub(super) fn parse(path: &Path, text: &str) -> Result<RawScenario, LoadError> {
    toml::from_str(text).map_err(|e| from_toml(path, text, &e))
}

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawScenario {
    pub name: S,
    pub description: Option<String>,
    pub seed: Option<u64>,
    pub duration: S,
    /// A string or a TOML offset date-time.
    pub clock: Option<Spanned<toml::Value>>,
    pub tenant: Option<RawTenant>,
    pub client: Option<RawClient>,
    pub dns: Option<RawDns>,
    pub steering: Option<RawSteering>,
    pub pops: Option<Vec<Spanned<RawPop>>>,
    pub backup: Option<RawBackup>,
    pub origins: Option<Vec<Spanned<RawOrigin>>>,
    pub network: Option<RawNetwork>,
    pub events: Option<Vec<Spanned<RawEvent>>>,
    pub expect: Option<RawExpect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawTenant {
    pub name: S,
    pub region: S,
    pub gslb: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawClient {
    pub version: S,
    pub ip: S,
    pub location: S,
    pub tunnel: S,
    pub fail_close: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawDns {
    pub doh: S,
    pub ldns: S,
    pub ldns_location: S,
    pub doh_behaviour: S,
    pub ldns_behaviour: S,
    pub doh_cert: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawSteering {
    pub mode: S,
    pub ports: Option<Vec<Spanned<u16>>>,
    pub managed: Option<Vec<Spanned<String>>>,
    pub exceptions: Option<Vec<Spanned<String>>>,
    pub bypass_apps: Option<Vec<Spanned<String>>>,
    pub steer_dns: Option<bool>,
    pub private_apps: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawPop {
    pub name: S,
    pub location: S,
    pub ip: S,
    pub latency: S,
    pub cert: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawBackup {
    pub ip: S,
    pub location: S,
    pub latency: S,
    pub cert: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawOrigin {
    pub host: S,
    pub ip: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawNetwork {
    pub host_firewall: Option<Vec<Spanned<String>>>,
    pub perimeter_firewall: Option<Vec<Spanned<String>>>,
    pub proxy: Option<Spanned<RawProxy>>,
    pub pac: Option<String>,
    pub direct_egress: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawProxy {
    pub address: S,
    pub discovery: S,
}

/// One `[[events]]` table: every key of every `do`, checked per `do` by the loader.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawEvent {
    pub at: S,
    #[serde(rename = "do")]
    pub action: S,
    pub process: S,
    pub target: S,
    pub via_proxy: Option<Spanned<bool>>,
    #[serde(rename = "where")]
    pub place: S,
    pub rule: S,
    pub host: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawExpect {
    pub resolved_by: S,
    pub gateway: S,
    pub tunnel: S,
    pub flows: Option<Vec<RawFlow>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawFlow {
    pub process: S,
    pub host: S,
    pub verdict: S,
}

/// Turns toml's syntax and shape errors (unknown keys, wrong types) into a [`LoadError`].
fn from_toml(path: &Path, text: &str, error: &toml::de::Error) -> LoadError {
    let span = error.span().unwrap_or(0..0);
    let message = error.message().trim_end();
    if message.starts_with("unknown field `") {
        return unknown_key(path, text, span, message);
    }
    let help = if message.contains("expected a string") {
        Some("write the value in double quotes".to_owned())
    } else if message.contains("expected u16") {
        Some("write a port number from 1 to 65535".to_owned())
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

/// Fieldless enums spelled by a fixed word in the file.
pub(super) trait Word: Sized + Copy + 'static {
    /// Every variant with its word, in documentation order.
    const WORDS: &'static [(Self, &'static str)];
}

/// Parses a contract word; the error lists the accepted words.
pub(super) fn parse_word<T: Word>(text: &str) -> Result<T, String> {
    T::WORDS
        .iter()
        .find(|(_, w)| *w == text)
        .map(|(v, _)| *v)
        .ok_or_else(|| one_of(T::WORDS))
}

/// `write one of "a", "b", "c"`.
pub(super) fn one_of<T>(words: &[(T, &str)]) -> String {
    let list: Vec<String> = words.iter().map(|(_, w)| format!("\"{w}\"")).collect();
    format!("write one of {}", list.join(", "))
}

macro_rules! words {
    ($($ty:ident { $($var:ident = $word:literal),+ $(,)? })+) => {$(
        impl Word for $ty {
            const WORDS: &'static [(Self, &'static str)] = &[$(($ty::$var, $word)),+];
        }
        impl $ty {
            /// The word the scenario file uses for this value.
            pub fn as_str(&self) -> &'static str {
                match self { $($ty::$var => $word),+ }
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )+};
}

words! {
    Region { Global = "", Eu = "eu", De = "de", Au = "au" }
    TunnelProto { Dtls = "dtls", Tls = "tls" }
    CertKind { Trusted = "trusted", Untrusted = "untrusted", Expired = "expired" }
    SteeringMode { CloudApps = "cloud-apps", Web = "web", All = "all" }
    ProxyDiscovery { Manual = "manual", Pac = "pac", Wpad = "wpad" }
    FirewallPlace { Host = "host", Perimeter = "perimeter" }
    RuleAction { Allow = "allow", Block = "block", Reset = "reset", Inspect = "inspect", Redirect = "redirect" }
    RuleProto { Tcp = "tcp", Udp = "udp", Dns = "dns", Any = "any" }
    ResolvedBy { Gslb = "GSLB", Edns = "EDNS", Ldns = "LDNS" }
    TunnelState { Dtls = "DTLS", Tls = "TLS", Down = "down" }
    Verdict { Tunneled = "tunneled", Bypassed = "bypassed", Direct = "direct", Blocked = "blocked" }
}

macro_rules! serialize_as_word {
    ($($ty:ident)+) => {$(
        impl Serialize for $ty {
            fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    )+};
}

serialize_as_word!(ResolvedBy TunnelState Verdict);
