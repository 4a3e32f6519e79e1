//! Helpers shared by the command-line tests.

use std::process::{Command, Output};

/// Runs the `steerlab` binary from the package root.
pub fn steerlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_steerlab"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the steerlab binary runs")
}
