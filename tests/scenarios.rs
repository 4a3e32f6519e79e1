//! One test per scenario file under `scenarios/`: load it, run the world twice with its
//! seed (the two logs must be byte-identical), check `[expect]` (scenarios under
//! `negative/` must make a checker fire), and compare the story (agent log plus world
//! timeline) with its insta snapshot in `snapshots/`.

use std::path::Path;

use steerlab::{expect, scenario, world};

fn run_scenario(path: &Path) -> datatest_stable::Result<()> {
    let scenario = scenario::load_file(path)?;
    let first = world::run(&scenario, None)?;
    let second = world::run(&scenario, None)?;
    if first.log != second.log || first.timeline != second.timeline {
        return Err(format!(
            "{}: two runs with seed {} differ; reproduce with `cargo run -- run {} --seed {}`",
            path.display(),
            first.seed,
            path.display(),
            first.seed
        )
        .into());
    }
    let misses = expect::check(&scenario.expect, &first);
    let negative = path.components().any(|c| c.as_os_str() == "negative");
    if negative && misses.is_empty() {
        return Err(format!(
            "{}: negative scenario, but no checker fired",
            path.display()
        )
        .into());
    }
    if !negative && !misses.is_empty() {
        let text: Vec<String> = misses.iter().map(ToString::to_string).collect();
        return Err(format!(
            "{}: expectations missed:\n{}\n--- story\n{}reproduce: cargo run -- run {} --seed {}",
            path.display(),
            text.join("\n"),
            first.story(),
            path.display(),
            first.seed
        )
        .into());
    }
    let name = snapshot_name(path);
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_description(scenario.name.clone());
    settings.set_omit_expression(true);
    settings.bind(|| insta::assert_snapshot!(name, first.story()));
    Ok(())
}

/// `scenarios/pop-selection/doh-happy-path.toml` -> `pop-selection__doh-happy-path`.
fn snapshot_name(path: &Path) -> String {
    let rel = path.strip_prefix("scenarios").unwrap_or(path);
    rel.with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("__")
}

datatest_stable::harness! {
    { test = run_scenario, root = "scenarios", pattern = r"\.toml$" },
}
