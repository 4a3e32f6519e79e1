//! The bad-input corpus (`tests/bad-input/`): broken scenario files, captures and
//! nsdebuglogs. Each file has a sibling `.expected` file holding exactly what the CLI
//! prints on stderr for it; the CLI must exit with status 2 (bad input) and print
//! nothing on stdout.
//!
//! - `scenario/*.toml`: `steerlab run FILE`
//! - `capture/*`: `steerlab replay FILE`
//! - `log/*`: `steerlab log parse FILE`
//!
//! To add a case, add the file, run the command, check that the message says what is
//! wrong and where, and save stderr as `NAME.expected` (`NAME` is the file name
//! without its extension).

use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = "tests/bad-input";

#[test]
fn broken_scenarios() {
    check_folder("scenario", &["run"], 20);
}

#[test]
fn broken_captures() {
    check_folder("capture", &["replay"], 4);
}

#[test]
fn broken_logs() {
    check_folder("log", &["log", "parse"], 4);
}

/// Every input of `tests/bad-input/<folder>` through `steerlab <command> FILE`: exit 2,
/// no stdout, stderr exactly as in its `.expected` file. At least `min` inputs.
fn check_folder(folder: &str, command: &[&str], min: usize) {
    let inputs = inputs(folder);
    assert!(
        inputs.len() >= min,
        "{ROOT}/{folder}: {} input(s), expected at least {min}",
        inputs.len()
    );
    let mut failures = Vec::new();
    for input in &inputs {
        let rel = input.to_string_lossy().replace('\\', "/");
        let expected_file = input.with_extension("expected");
        let expected = std::fs::read_to_string(manifest().join(&expected_file))
            .unwrap_or_else(|e| panic!("{}: {e}", expected_file.display()));
        let out = Command::new(env!("CARGO_BIN_EXE_steerlab"))
            .args(command)
            .arg(&rel)
            .current_dir(manifest())
            .env("NO_COLOR", "1")
            .output()
            .expect("the steerlab binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut wrong = Vec::new();
        if out.status.code() != Some(2) {
            wrong.push(format!("exit status {:?}, expected 2", out.status.code()));
        }
        if !stdout.is_empty() {
            wrong.push(format!("stdout is not empty:\n{stdout}"));
        }
        if stderr != expected {
            wrong.push(format!(
                "stderr differs from {}:\n--- expected\n{expected}--- got\n{stderr}",
                expected_file.display()
            ));
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "steerlab {} {rel}: {}",
                command.join(" "),
                wrong.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The inputs of a folder (everything but `.expected` files), relative to the package
/// root, in name order.
fn inputs(folder: &str) -> Vec<PathBuf> {
    let dir = Path::new(ROOT).join(folder);
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(manifest().join(&dir))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok())
        .map(|entry| dir.join(entry.file_name()))
        .filter(|p| p.extension().is_none_or(|e| e != "expected"))
        .collect();
    inputs.sort();
    inputs
}

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.expected` file belongs to an input, so a renamed input cannot leave a stale
/// message behind.
#[test]
fn no_orphan_expected_files() {
    for folder in ["scenario", "capture", "log"] {
        let dir = manifest().join(ROOT).join(folder);
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        for name in names.iter().filter(|n| n.ends_with(".expected")) {
            let stem = name.trim_end_matches(".expected");
            let has_input = names.iter().any(|n| {
                !n.ends_with(".expected") && Path::new(n).file_stem() == Some(stem.as_ref())
            });
            assert!(has_input, "{folder}/{name} has no input file");
        }
    }
}
