//! `steerlab run --report OUT.html`: one self-contained page per run (inline CSS and
//! SVG, no scripts, no external resources) with the sequence diagram of the run, the
//! world's timeline, the flow table and the agent's log.
//!
//! The page is a pure function of the run: no wall-clock time goes in, so the same run
//! writes the same bytes. Every piece of text is escaped with [`escape`].

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::RunReport;
use super::sequence::{self, WireRecord};
use crate::world::registry::Role;

/// What one page shows besides the report itself.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    /// The run.
    pub report: &'a RunReport,
    /// The endpoint's traffic (see [`sequence::records_from_pcap`]); empty draws the
    /// timeline alone.
    pub records: &'a [WireRecord],
    /// The scenario's description.
    pub description: &'a str,
    /// Whether the run met the scenario's expectations, and the misses, when checked.
    pub check: Option<(bool, &'a [String])>,
}

/// The page as HTML.
pub fn render(page: &Page<'_>) -> String {
    let r = page.report;
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>steerlab: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&r.name)
    );
    let _ = writeln!(out, "<h1>{}</h1>", escape(&r.name));
    summary(&mut out, page);

    let endpoint = endpoint(r);
    let arrows = sequence::arrows(page.records, endpoint, r.simulated);
    let steps = sequence::steps(arrows, &r.timeline);
    let lifelines = sequence::lifelines(&steps, endpoint, &r.hosts);
    out.push_str("<section id=\"sequence\">\n<h2>Sequence</h2>\n");
    out.push_str(
        "<p class=\"legend\">One arrow per exchange on the endpoint's network: solid, what a \
         side starts; dashed, the answer; red, a reset or a refusal; a red cross, no answer; \
         grey, a close. Yellow bands are the world's timeline. Hover an arrow for its full \
         label. Tunneled app traffic travels inside the tunnel's arrows.</p>\n",
    );
    out.push_str("<div class=\"diagram\">\n");
    out.push_str(&sequence::svg(&lifelines, &steps));
    out.push_str("</div>\n</section>\n");

    timeline(&mut out, r);
    flows(&mut out, r);
    log(&mut out, r);
    out.push_str("</body>\n</html>\n");
    out
}

/// Text made safe for HTML element content and attribute values: `&`, `<`, `>`, `"`
/// and `'` become references; control characters other than tab and newline become
/// U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The endpoint's address, from the world's address book.
fn endpoint(r: &RunReport) -> Ipv4Addr {
    r.hosts
        .iter()
        .find(|(_, h)| h.role == Role::Endpoint)
        .map(|(ip, _)| *ip)
        .unwrap_or(Ipv4Addr::UNSPECIFIED)
}

fn summary(out: &mut String, page: &Page<'_>) {
    let r = page.report;
    if let Some((passed, misses)) = page.check {
        let (class, word) = if passed {
            ("pass", "PASS")
        } else {
            ("fail", "FAIL")
        };
        let _ = writeln!(out, "<p class=\"status {class}\">{word}</p>");
        if !misses.is_empty() {
            out.push_str("<ul class=\"misses\">\n");
            for miss in misses {
                let _ = writeln!(out, "<li><pre>{}</pre></li>", escape(miss));
            }
            out.push_str("</ul>\n");
        }
    }
    if !page.description.trim().is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"description\">{}</p>",
            escape(page.description.trim())
        );
    }
    let o = &r.outcome;
    let gateway = match (&o.gateway, o.resolved_by) {
        (Some(g), Some(m)) => format!(" to {g}, resolved by {}", m.as_str()),
        (Some(g), None) => format!(" to {g}"),
        _ => String::new(),
    };
    out.push_str("<dl class=\"facts\">\n");
    for (term, value) in [
        ("file", r.path.display().to_string()),
        ("seed", r.seed.to_string()),
        ("simulated", format!("{:?}", r.simulated)),
        ("tunnel", format!("{}{gateway}", o.tunnel.as_str())),
        ("flows", r.flows.len().to_string()),
    ] {
        let _ = writeln!(out, "<dt>{term}</dt><dd>{}</dd>", escape(&value));
    }
    out.push_str("</dl>\n");
}

fn timeline(out: &mut String, r: &RunReport) {
    out.push_str("<section id=\"timeline\">\n<h2>World timeline</h2>\n");
    if r.timeline.is_empty() {
        out.push_str("<p>Nothing happened in the world.</p>\n</section>\n");
        return;
    }
    out.push_str("<table class=\"timeline\">\n<thead><tr><th>time</th><th>event</th></tr></thead>\n<tbody>\n");
    for line in &r.timeline {
        let (time, text) = match line.split_once(' ') {
            Some((t, rest)) if t.starts_with('+') => (t, rest),
            _ => ("", line.as_str()),
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"time\">{}</td><td>{}</td></tr>",
            escape(time),
            escape(text)
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn flows(out: &mut String, r: &RunReport) {
    out.push_str("<section id=\"flows\">\n<h2>Flows</h2>\n");
    if r.flows.is_empty() {
        out.push_str("<p>No app flows in this run.</p>\n</section>\n");
        return;
    }
    out.push_str(
        "<table class=\"flows\">\n<thead><tr><th>#</th><th>process</th><th>host</th>\
         <th>address</th><th>verdict</th><th>reason</th><th>outcome</th></tr></thead>\n<tbody>\n",
    );
    for (i, f) in r.flows.iter().enumerate() {
        let verdict = f.verdict.as_str();
        let _ = writeln!(
            out,
            "<tr class=\"flow {verdict}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"verdict\">{verdict}</td><td>{}</td><td>{}</td></tr>",
            i + 1,
            escape(&f.process),
            escape(&f.host),
            escape(&f.addr),
            escape(&f.reason),
            escape(&f.outcome),
        );
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn log(out: &mut String, r: &RunReport) {
    out.push_str("<section id=\"log\">\n<h2>Agent log</h2>\n");
    if r.log.is_empty() {
        out.push_str("<p>The agent logged nothing.</p>\n</section>\n");
        return;
    }
    out.push_str("<pre class=\"log\">");
    for line in &r.log {
        out.push_str(&escape(line));
        out.push('\n');
    }
    out.push_str("</pre>\n</section>\n");
}

const STYLE: &str = "
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 .4em; }
h2 { font-size: 1.15em; margin: 1.6em 0 .5em; border-bottom: 1px solid #ddd; }
.status { display: inline-block; font-weight: bold; padding: .1em .6em; border-radius: 3px; color: #fff; }
.status.pass { background: #2e7d32; }
.status.fail { background: #c62828; }
.misses pre { margin: 0; white-space: pre-wrap; }
.description { max-width: 60em; white-space: pre-line; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .1em 1em; }
dl.facts dt { color: #666; }
dl.facts dd { margin: 0; }
.legend { color: #555; font-size: .9em; max-width: 60em; }
.diagram { overflow-x: auto; border: 1px solid #ddd; background: #fff; }
svg.sequence { font: 11px system-ui, sans-serif; }
svg.sequence .lifeline line { stroke: #bbb; stroke-dasharray: 4 4; }
svg.sequence .lifeline rect { fill: #eef3fb; stroke: #6c8ebf; }
svg.sequence .lifeline text { text-anchor: middle; }
svg.sequence .lifeline .name { font-weight: bold; font-size: 12px; }
svg.sequence .lifeline .detail { fill: #555; font-size: 10px; }
svg.sequence .time { fill: #777; font-size: 10px; font-family: ui-monospace, monospace; }
svg.sequence .arrow line { stroke: #333; stroke-width: 1.2; }
svg.sequence .arrow text { text-anchor: middle; fill: #222; }
svg.sequence .arrow text.left { text-anchor: start; }
svg.sequence .arrow.reply line { stroke-dasharray: 5 3; }
svg.sequence .arrow.failure line { stroke: #c0392b; }
svg.sequence .arrow.failure text { fill: #c0392b; }
svg.sequence .arrow.lost line { stroke: #c0392b; stroke-dasharray: 2 3; }
svg.sequence .arrow.lost text { fill: #c0392b; }
svg.sequence .arrow.close line { stroke: #999; }
svg.sequence .arrow.close text { fill: #888; }
svg.sequence .world rect { fill: #fff6d5; stroke: #e0c25a; }
svg.sequence .world text { fill: #6b5400; }
svg.sequence .more { fill: #777; font-style: italic; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ddd; padding: .2em .5em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.time { font-family: ui-monospace, monospace; white-space: nowrap; }
tr.flow.tunneled .verdict { color: #2e7d32; font-weight: bold; }
tr.flow.bypassed .verdict { color: #1565c0; font-weight: bold; }
tr.flow.direct .verdict { color: #555; font-weight: bold; }
tr.flow.blocked .verdict { color: #c62828; font-weight: bold; }
pre.log { font: 12px/1.4 ui-monospace, monospace; background: #f8f8f8; border: 1px solid #ddd; padding: .6em; overflow-x: auto; }
";
