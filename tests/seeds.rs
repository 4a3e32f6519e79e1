//! The seed moves backoff jitter, never the outcome: one outage scenario under several
//! seeds reaches the same end state, with reconnect delays that differ.

use std::path::Path;

use steerlab::{scenario, world};

#[test]
fn seed_changes_jitter_but_not_the_outcome() -> Result<(), Box<dyn std::error::Error>> {
    let s = scenario::load_file(Path::new(
        "scenarios/failover/gateway-partitioned-mid-session.toml",
    ))?;
    let runs: Vec<_> = [1u64, 2, 3]
        .iter()
        .map(|seed| world::run(&s, Some(*seed)))
        .collect::<Result<_, _>>()?;
    let delays = |r: &steerlab::report::RunReport| -> Vec<String> {
        r.log
            .iter()
            .filter(|l| l.contains("Reconnecting in"))
            .cloned()
            .collect()
    };
    for r in &runs[1..] {
        assert_eq!(
            r.outcome, runs[0].outcome,
            "seed {} changed the outcome",
            r.seed
        );
    }
    assert!(!delays(&runs[0]).is_empty());
    assert_ne!(
        delays(&runs[0]),
        delays(&runs[1]),
        "seeds 1 and 2 gave the same jitter"
    );
    Ok(())
}
