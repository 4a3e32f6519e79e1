//! Checking a run against the scenario's `[expect]` table.

use crate::report::RunReport;
use crate::scenario::Expect;

/// One expectation that did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Miss {
    /// The key, e.g. `expect.gateway` or `expect.flows[1].verdict`.
    pub key: String,
    /// What the scenario expected.
    pub expected: String,
    /// What the run produced.
    pub actual: String,
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n  - expected: {}\n  + actual:   {}",
            self.key, self.expected, self.actual
        )
    }
}

/// Every expectation of `expect` that `report` misses, in the order of the table.
pub fn check(expect: &Expect, report: &RunReport) -> Vec<Miss> {
    let mut misses = Vec::new();
    let mut miss = |key: String, expected: String, actual: String| {
        misses.push(Miss {
            key,
            expected,
            actual,
        });
    };
    let out = &report.outcome;
    let shown = |v: Option<&str>| v.map_or_else(|| "(none)".to_string(), |s| format!("\"{s}\""));
    if let Some(want) = expect.resolved_by {
        let got = out.resolved_by.map(|r| r.as_str());
        if got != Some(want.as_str()) {
            miss(
                "expect.resolved_by".into(),
                shown(Some(want.as_str())),
                shown(got),
            );
        }
    }
    if let Some(want) = &expect.gateway
        && out.gateway.as_deref() != Some(want.as_str())
    {
        miss(
            "expect.gateway".into(),
            shown(Some(want)),
            shown(out.gateway.as_deref()),
        );
    }
    if let Some(want) = expect.tunnel
        && out.tunnel != want
    {
        miss(
            "expect.tunnel".into(),
            shown(Some(want.as_str())),
            shown(Some(out.tunnel.as_str())),
        );
    }
    if let Some(flows) = &expect.flows {
        for (i, want) in flows.iter().enumerate() {
            let Some(got) = report.flows.get(i) else {
                miss(
                    format!("expect.flows[{i}]"),
                    format!("a flow of {}", describe(want)),
                    "no such flow".into(),
                );
                continue;
            };
            if let Some(p) = &want.process
                && *p != got.process
            {
                miss(
                    format!("expect.flows[{i}].process"),
                    shown(Some(p)),
                    shown(Some(&got.process)),
                );
            }
            if let Some(h) = &want.host
                && !h.eq_ignore_ascii_case(&got.host)
            {
                miss(
                    format!("expect.flows[{i}].host"),
                    shown(Some(h)),
                    shown(Some(&got.host)),
                );
            }
            if let Some(v) = want.verdict
                && v != got.verdict
            {
                miss(
                    format!("expect.flows[{i}].verdict"),
                    shown(Some(v.as_str())),
                    format!("\"{}\" ({})", got.verdict.as_str(), got.reason),
                );
            }
        }
        if report.flows.len() > flows.len() {
            miss(
                "expect.flows".into(),
                format!("{} flow(s)", flows.len()),
                format!("{} flow(s)", report.flows.len()),
            );
        }
    }
    misses
}

fn describe(flow: &crate::scenario::ExpectFlow) -> String {
    format!(
        "{} to {}",
        flow.process.as_deref().unwrap_or("any process"),
        flow.host.as_deref().unwrap_or("any host")
    )
}
