//! `steerlab schema`: the committed `scenario.schema.json` is the command's output, every
//! bundled scenario validates against it, and a typo'd key does not.

use std::path::{Path, PathBuf};

mod common;

use common::steerlab;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn schema() -> serde_json::Value {
    let text = std::fs::read_to_string(root().join("scenario.schema.json"))
        .expect("scenario.schema.json at the repository root");
    serde_json::from_str(&text).expect("scenario.schema.json is JSON")
}

/// A TOML document as the JSON value editors validate: the same tables, arrays and
/// scalars, date-times as their RFC 3339 text.
fn to_json(value: toml::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        toml::Value::String(s) => J::String(s),
        toml::Value::Integer(i) => J::from(i),
        toml::Value::Float(f) => J::from(f),
        toml::Value::Boolean(b) => J::Bool(b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(items) => J::Array(items.into_iter().map(to_json).collect()),
        toml::Value::Table(table) => {
            J::Object(table.into_iter().map(|(k, v)| (k, to_json(v))).collect())
        }
    }
}

fn scenario_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    let table: toml::Table =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{} is not TOML: {e}", path.display()));
    to_json(toml::Value::Table(table))
}

fn toml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            toml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}

/// What is wrong with `instance`, one line per error.
fn errors(validator: &jsonschema::Validator, instance: &serde_json::Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn the_committed_schema_is_what_steerlab_schema_prints() {
    let committed = std::fs::read_to_string(root().join("scenario.schema.json"))
        .expect("scenario.schema.json at the repository root");
    let out = steerlab(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(printed, steerlab::scenario::schema_json());
    assert!(
        committed == printed,
        "scenario.schema.json is stale: the scenario structs changed. Regenerate it with\n\
         \n    cargo run -- schema > scenario.schema.json\n\nand commit it."
    );
}

#[test]
fn every_bundled_scenario_validates() {
    let validator = jsonschema::validator_for(&schema()).expect("a valid JSON Schema");
    let mut files = Vec::new();
    toml_files(&root().join("scenarios"), &mut files);
    assert!(files.len() > 50, "found only {} scenarios", files.len());
    let mut failed = Vec::new();
    for path in &files {
        let errs = errors(&validator, &scenario_json(path));
        if !errs.is_empty() {
            failed.push(format!("{}:\n  {}", path.display(), errs.join("\n  ")));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn unknown_keys_and_words_do_not_validate() {
    let validator = jsonschema::validator_for(&schema()).expect("a valid JSON Schema");
    let base = scenario_json(&root().join("scenarios/pop-selection/doh-happy-path.toml"));
    assert!(errors(&validator, &base).is_empty());

    let mut typo = base.clone();
    typo["pops"][0]["latncy"] = "5ms".into();
    let errs = errors(&validator, &typo);
    assert!(
        errs.iter().any(|e| e.contains("latncy")),
        "an unknown key in [[pops]] passed: {errs:?}"
    );

    let mut top = base.clone();
    top["sead"] = 7.into();
    assert!(
        !errors(&validator, &top).is_empty(),
        "an unknown top-level key passed"
    );

    let mut word = base.clone();
    word["client"] = serde_json::json!({ "tunnel": "ipsec" });
    assert!(
        !errors(&validator, &word).is_empty(),
        "tunnel = \"ipsec\" passed"
    );

    let mut duration = base.clone();
    duration["duration"] = "5 minutes".into();
    assert!(
        !errors(&validator, &duration).is_empty(),
        "a bad duration passed"
    );

    let mut no_name = base;
    no_name.as_object_mut().unwrap().remove("name");
    assert!(
        !errors(&validator, &no_name).is_empty(),
        "a missing name passed"
    );
}

/// Every key has a description for editors to show (a doc comment on its field in
/// src/scenario/raw.rs), and every table its own.
#[test]
fn every_key_is_described() {
    let schema = schema();
    let definitions = schema["definitions"].as_object().expect("definitions");
    let described = |s: &serde_json::Value| -> bool {
        if s.get("description")
            .is_some_and(|d| d.as_str().is_some_and(|d| !d.is_empty()))
        {
            return true;
        }
        // A table: described by its definition.
        let target = s
            .get("$ref")
            .or_else(|| s.get("items").and_then(|i| i.get("$ref")))
            .and_then(|r| r.as_str())
            .and_then(|r| r.strip_prefix("#/definitions/"));
        target.is_some_and(|name| definitions[name].get("description").is_some())
    };
    let mut missing = Vec::new();
    let tables = std::iter::once(("(top level)", &schema))
        .chain(definitions.iter().map(|(name, s)| (name.as_str(), s)));
    for (table, s) in tables {
        for (key, property) in s["properties"].as_object().expect("properties") {
            if !described(property) {
                missing.push(format!("{table}.{key}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "keys without a description (add a doc comment to the field in src/scenario/raw.rs, \
         then regenerate scenario.schema.json): {missing:?}"
    );
}
