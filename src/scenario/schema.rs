//! `steerlab schema`: the JSON Schema of the scenario file, generated from the raw serde
//! structs (`raw.rs`) so that it cannot drift from what the loader accepts. Editors use it
//! through a `#:schema ./scenario.schema.json` line (docs/scenario-reference.md).
//!
//! The schema checks shape: keys (unknown ones are refused, as the loader refuses them),
//! value types, the contract words of every enum, and the rough form of durations,
//! addresses and rules. The loader still does the checks a schema cannot express (a PoP
//! name that exists, which keys each event `do` takes, required keys of tables).

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::load::{EVENT_KEYS, MAX_ENDPOINTS};
use super::raw::RawScenario;

/// The schema as pretty-printed JSON with a final newline: what `steerlab schema` prints
/// and `scenario.schema.json` holds.
pub fn schema_json() -> String {
    // Draft 7: the newest draft that every TOML editor plugin (taplo, tombi) reads.
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let mut schema = serde_json::Value::from(generator.into_root_schema_for::<RawScenario>());
    drop_null(&mut schema);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// TOML has no null: an optional key is simply left out. schemars writes `Option<T>` as
/// "T or null"; this keeps T (`"type": ["string", "null"]` becomes `"type": "string"`,
/// `"anyOf": [T, {"type": "null"}]` becomes T, keeping the key's description, and null
/// leaves the words of an `enum`).
fn drop_null(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if let [only] = types.as_slice() {
                    let only = only.clone();
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(words)) = map.get_mut("enum") {
                words.retain(|w| !w.is_null());
            }
            if let Some(Value::Array(alternatives)) = map.get_mut("anyOf") {
                let null = serde_json::json!({ "type": "null" });
                alternatives.retain(|a| *a != null);
                if let [only] = alternatives.as_slice() {
                    let Value::Object(only) = only.clone() else {
                        return;
                    };
                    map.remove("anyOf");
                    for (key, v) in only {
                        map.entry(key).or_insert(v);
                    }
                }
            }
            map.values_mut().for_each(drop_null);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null),
        _ => {}
    }
}

/// Declares a string-valued schema type: its name, and the schema body.
macro_rules! text_schema {
    ($($(#[$doc:meta])* $ty:ident => $body:tt)+) => {$(
        $(#[$doc])*
        pub(super) struct $ty;
        impl JsonSchema for $ty {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> Cow<'static, str> {
                stringify!($ty).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($body)
            }
        }
    )+};
}

text_schema! {
    /// `"250ms"`, `"10s"`, `"1.5s"`, `"2m"`, `"1h"`.
    DurationText => {
        "type": "string",
        "description": "A duration: a number and a unit, ms, s, m or h (e.g. \"250ms\", \"1.5s\", \"2m\").",
        "pattern": "^[0-9.]+(ms|s|m|h)$",
        "examples": ["250ms", "10s", "2m"]
    }
    /// The start of the simulated clock.
    ClockText => {
        "type": "string",
        "description": "When the run starts, as an RFC 3339 date-time (a string or a TOML offset date-time), e.g. 2019-10-14T11:40:40Z.",
        "examples": ["2019-10-14T11:40:40Z"]
    }
    /// A dotted IPv4 address.
    Ipv4Text => {
        "type": "string",
        "description": "An IPv4 address, e.g. \"10.0.0.10\".",
        "pattern": "^[0-9]{1,3}(\\.[0-9]{1,3}){3}$"
    }
    /// `IP:PORT`.
    SocketAddrText => {
        "type": "string",
        "description": "An IPv4 address and port, e.g. \"10.10.10.11:8080\".",
        "pattern": "^[0-9]{1,3}(\\.[0-9]{1,3}){3}:[0-9]{1,5}$"
    }
    /// A firewall rule: `ACTION [PROTO[/PORT]] [to TARGET]`.
    RuleText => {
        "type": "string",
        "description": "A firewall rule: ACTION [PROTO[/PORT]] [to TARGET], e.g. \"block udp/443\", \"allow tcp/443 to *.goskope.com\". ACTION is allow, block, reset, inspect, redirect or intercept; PROTO tcp, udp, dns or any.",
        "pattern": "^\\s*(allow|block|reset|inspect|redirect|intercept)(\\s.*)?$"
    }
    /// How the DoH server or the GSLB answers.
    HttpBehaviour => {
        "description": "How the server answers: answer, servfail, empty, malformed, http_NNN (400-599) or slow_answer[:DURATION].",
        "anyOf": [
            { "type": "string", "enum": ["answer", "servfail", "empty", "malformed", "slow_answer"] },
            { "type": "string", "pattern": "^http_[45][0-9]{2}$" },
            { "type": "string", "pattern": "^slow_answer:[0-9.]+(ms|s|m|h)$" }
        ]
    }
    /// How the local resolver answers (plain DNS: no HTTP statuses).
    DnsBehaviour => {
        "description": "How the local resolver answers: answer, servfail, empty or slow_answer[:DURATION].",
        "anyOf": [
            { "type": "string", "enum": ["answer", "servfail", "empty", "slow_answer"] },
            { "type": "string", "pattern": "^slow_answer:[0-9.]+(ms|s|m|h)$" }
        ]
    }
    /// An admin event's `action`.
    AdminWord => {
        "type": "string",
        "description": "What the admin does: move_user (takes user, group), mark_lost (takes user) or set_mode (takes mode).",
        "enum": ["move_user", "mark_lost", "set_mode"]
    }
    /// A TCP or UDP port that can be steered.
    Port => {
        "type": "integer",
        "minimum": 1,
        "maximum": 65535
    }
    /// `[network] path_mtu`.
    PathMtu => {
        "type": "integer",
        "description": "The IPv4 path MTU in bytes.",
        "minimum": 68,
        "maximum": 65535
    }
    /// `[network] udp_loss`.
    Share => {
        "type": "number",
        "description": "The share of UDP datagrams lost, from 0.0 to 1.0 (0.3 is 30%).",
        "minimum": 0.0,
        "maximum": 1.0
    }
}

/// An event's `do`, with the keys each one takes.
pub(super) struct EventWord;

impl JsonSchema for EventWord {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "EventWord".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let words: Vec<&str> = EVENT_KEYS.iter().map(|(w, _)| *w).collect();
        let takes: Vec<String> = EVENT_KEYS
            .iter()
            .map(|(w, keys)| match keys {
                [] => format!("{w} (no other keys)"),
                _ => format!("{w} ({})", keys.join(", ")),
            })
            .collect();
        let description = format!("What happens; each takes: {}.", takes.join("; "));
        json_schema!({ "type": "string", "description": description, "enum": words })
    }
}

/// `[client] endpoints` and `endpoints_per_host`.
pub(super) struct EndpointCount;

impl JsonSchema for EndpointCount {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> Cow<'static, str> {
        "EndpointCount".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "minimum": 1, "maximum": MAX_ENDPOINTS })
    }
}
