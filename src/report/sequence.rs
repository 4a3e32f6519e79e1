//! The sequence diagram of a run, drawn as inline SVG: one column per host that took
//! part, one row per exchange on the wire ([`super::exchange`]) or line of the world's
//! timeline, in simulated time.
//!
//! Everything here is a pure function of its input: the same run draws the same
//! diagram, byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::Duration;

pub use super::exchange::{
    Arrow, BURST_GAP, Kind, Segment, WireRecord, arrows, describe, records_from_pcap,
};
use super::html::escape;
use crate::world::registry::{Registry, Role};
use crate::world::timeline::{self, stamp};

/// At most this many rows are drawn; a note says how many more there were.
pub const MAX_ROWS: usize = 1500;

impl Kind {
    fn class(self) -> &'static str {
        match self {
            Kind::Request => "request",
            Kind::Reply => "reply",
            Kind::Failure => "failure",
            Kind::Lost => "lost",
            Kind::Close => "close",
        }
    }

    fn marker(self) -> &'static str {
        match self {
            Kind::Request | Kind::Reply => "arrow",
            Kind::Failure => "arrow-failure",
            Kind::Lost => "cross",
            Kind::Close => "arrow-close",
        }
    }
}

/// One row of the diagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An exchange on the wire.
    Arrow(Arrow),
    /// A line of the world's timeline (a fault, a rule change, an app's connect).
    World {
        /// When.
        at: Duration,
        /// What happened.
        text: String,
    },
}

impl Step {
    fn at(&self) -> Duration {
        match self {
            Step::Arrow(a) => a.at,
            Step::World { at, .. } => *at,
        }
    }
}

/// A column of the diagram: one host that took part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifeline {
    /// Its address.
    pub ip: Ipv4Addr,
    /// What the scenario calls it: `endpoint`, `DoH`, `PoP nyc1`, an origin's name...
    pub name: String,
    /// Its address and role detail, under the name.
    pub detail: String,
}

/// The diagram's rows: `arrows` and the world's `timeline` lines (`+S.mmms text`)
/// merged in time order, a timeline line before the traffic of its millisecond (the
/// driver applies events before it steps the network).
pub fn steps(arrows: Vec<Arrow>, timeline: &[String]) -> Vec<Step> {
    let mut rows: Vec<(Duration, u8, usize, Step)> = Vec::new();
    let mut last = Duration::ZERO;
    for (i, line) in timeline.iter().enumerate() {
        let (at, text) = match timeline::parse(line) {
            Some((at, text)) => (at, text.to_string()),
            None => (last, line.clone()),
        };
        last = at;
        rows.push((at, 0, i, Step::World { at, text }));
    }
    for arrow in arrows {
        rows.push((arrow.at, 1, arrow.seq, Step::Arrow(arrow)));
    }
    rows.sort_by_key(|(at, rank, seq, _)| (*at, *rank, *seq));
    rows.into_iter().map(|(_, _, _, step)| step).collect()
}

/// The columns for `steps`: the endpoint first, then the other hosts that took part by
/// role (DoH, LDNS, GSLB, PoPs, backup, proxy, inspector, portal, origins, addresses
/// the world does not know), then by address.
pub fn lifelines(steps: &[Step], endpoint: Ipv4Addr, hosts: &Registry) -> Vec<Lifeline> {
    let mut seen = BTreeSet::new();
    for step in steps {
        if let Step::Arrow(a) = step {
            seen.insert(a.from);
            seen.insert(a.to);
        }
    }
    seen.remove(&endpoint);
    let mut peers: Vec<(u8, Ipv4Addr, Lifeline)> = seen
        .into_iter()
        .map(|ip| {
            let (rank, line) = lifeline(ip, hosts);
            (rank, ip, line)
        })
        .collect();
    peers.sort_by_key(|(rank, ip, _)| (*rank, *ip));
    let (_, first) = lifeline(endpoint, hosts);
    std::iter::once(first)
        .chain(peers.into_iter().map(|(_, _, l)| l))
        .collect()
}

/// Layout, in pixels.
const LEFT: usize = 64;
const COLUMN: usize = 168;
const HEAD_TOP: usize = 8;
const HEAD_HEIGHT: usize = 38;
const ROWS_TOP: usize = HEAD_TOP + HEAD_HEIGHT + 24;
const ROW: usize = 22;
/// Roughly how wide one character of an 11px label is.
const CHAR_WIDTH: usize = 6;

/// The diagram as an inline `<svg>` element (no namespace URL: it lives in HTML).
pub fn svg(lifelines: &[Lifeline], steps: &[Step]) -> String {
    let column: BTreeMap<Ipv4Addr, usize> = lifelines
        .iter()
        .enumerate()
        .map(|(i, l)| (l.ip, i))
        .collect();
    let drawn = steps.len().min(MAX_ROWS);
    let rows = drawn + usize::from(steps.len() > MAX_ROWS);
    let width = LEFT + lifelines.len().max(1) * COLUMN + 8;
    let height = ROWS_TOP + rows * ROW + 16;
    let x = |i: usize| LEFT + i * COLUMN + COLUMN / 2;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg class=\"sequence\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"sequence diagram\">"
    );
    out.push_str(DEFS);
    for (i, l) in lifelines.iter().enumerate() {
        let cx = x(i);
        let _ = writeln!(
            out,
            "<g class=\"lifeline\"><title>{}</title>\
             <line x1=\"{cx}\" y1=\"{}\" x2=\"{cx}\" y2=\"{}\"/>\
             <rect x=\"{}\" y=\"{HEAD_TOP}\" width=\"{}\" height=\"{HEAD_HEIGHT}\" rx=\"4\"/>\
             <text class=\"name\" x=\"{cx}\" y=\"{}\">{}</text>\
             <text class=\"detail\" x=\"{cx}\" y=\"{}\">{}</text></g>",
            escape(&format!("{} ({})", l.name, l.detail)),
            HEAD_TOP + HEAD_HEIGHT,
            height - 8,
            cx - (COLUMN - 12) / 2,
            COLUMN - 12,
            HEAD_TOP + 16,
            escape(&clip(&l.name, (COLUMN - 16) / 7)),
            HEAD_TOP + 31,
            escape(&clip(&l.detail, (COLUMN - 16) / CHAR_WIDTH)),
        );
    }
    let mut shown: Option<Duration> = None;
    for (row, step) in steps.iter().take(drawn).enumerate() {
        let y = ROWS_TOP + row * ROW;
        let at = step.at();
        if shown != Some(at) {
            let _ = writeln!(
                out,
                "<text class=\"time\" x=\"4\" y=\"{}\">{}</text>",
                y + 4,
                stamp(at)
            );
            shown = Some(at);
        }
        match step {
            Step::World { text, .. } => {
                let _ = writeln!(
                    out,
                    "<g class=\"world\"><title>{} {}</title>\
                     <rect x=\"{LEFT}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"3\"/>\
                     <text x=\"{}\" y=\"{}\">{}</text></g>",
                    stamp(at),
                    escape(text),
                    y - 12,
                    width - LEFT - 8,
                    ROW - 4,
                    LEFT + 8,
                    y + 2,
                    escape(&clip(text, (width - LEFT - 24) / CHAR_WIDTH)),
                );
            }
            Step::Arrow(a) => {
                let (Some(&from), Some(&to)) = (column.get(&a.from), column.get(&a.to)) else {
                    continue;
                };
                let (x1, x2) = (x(from), x(to));
                let (left, span) = (x1.min(x2), x1.abs_diff(x2));
                // Centred over the arrow when it fits; else from the arrow's left end
                // on, over the lifelines to its right.
                let chars = a.label.chars().count();
                let (class, text_x, room) = if chars * CHAR_WIDTH + 8 <= span {
                    ("", left + span / 2, chars)
                } else {
                    let room = width.saturating_sub(left + 12) / CHAR_WIDTH;
                    (" class=\"left\"", left + 6, room)
                };
                let name = |i: usize| {
                    lifelines
                        .get(i)
                        .map(|l| escape(&l.name))
                        .unwrap_or_default()
                };
                let _ = writeln!(
                    out,
                    "<g class=\"arrow {}\"><title>{} {} \u{2192} {}: {}</title>\
                     <line x1=\"{x1}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" marker-end=\"url(#{})\"/>\
                     <text{class} x=\"{text_x}\" y=\"{}\">{}</text></g>",
                    a.kind.class(),
                    stamp(at),
                    name(from),
                    name(to),
                    escape(&a.label),
                    a.kind.marker(),
                    y - 4,
                    escape(&clip(&a.label, room)),
                );
            }
        }
    }
    if steps.len() > MAX_ROWS {
        let y = ROWS_TOP + drawn * ROW;
        let _ = writeln!(
            out,
            "<text class=\"more\" x=\"{LEFT}\" y=\"{y}\">{} more rows not drawn; \
             the capture (--pcap) has them all</text>",
            steps.len() - MAX_ROWS
        );
    }
    out.push_str("</svg>\n");
    out
}

/// Arrowheads: dark, red and grey, and the cross of a packet that got no answer.
const DEFS: &str = "<defs>\
<marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#333\"/></marker>\
<marker id=\"arrow-failure\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#c0392b\"/></marker>\
<marker id=\"arrow-close\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#999\"/></marker>\
<marker id=\"cross\" viewBox=\"0 0 10 10\" refX=\"5\" refY=\"5\" markerWidth=\"9\" markerHeight=\"9\" orient=\"auto\"><path d=\"M1,1 L9,9 M9,1 L1,9\" stroke=\"#c0392b\" stroke-width=\"2\"/></marker>\
</defs>\n";

/// `text` cut to `max` characters, with an ellipsis when cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('\u{2026}');
    out
}

/// The column of the host at `ip`, and where it sorts.
fn lifeline(ip: Ipv4Addr, hosts: &Registry) -> (u8, Lifeline) {
    let Some(host) = hosts.at(ip) else {
        let name = ip.to_string();
        let detail = "not in the world".to_string();
        return (u8::MAX, Lifeline { ip, name, detail });
    };
    let (name, detail) = match &host.role {
        Role::Pop(name) => (format!("PoP {name}"), ip.to_string()),
        Role::Origin(name) => (name.clone(), format!("origin {ip}")),
        Role::Doh => {
            let server = host.dns_names.first().map(String::as_str).unwrap_or("");
            ("DoH".to_string(), format!("{server} {ip}"))
        }
        // The scenario's own word for the others (`ldns`, `backup`, `proxy`...).
        _ => (display_label(&host.label), ip.to_string()),
    };
    (rank(&host.role), Lifeline { ip, name, detail })
}

/// Where a host's column sorts: the endpoint, the agent's resolution chain, gateways,
/// the site's middleboxes, origins.
fn rank(role: &Role) -> u8 {
    let order = [
        matches!(role, Role::Endpoint),
        matches!(role, Role::Doh),
        matches!(role, Role::Ldns),
        matches!(role, Role::Gslb),
        matches!(role, Role::Pop(_)),
        matches!(role, Role::Backup),
        matches!(role, Role::Proxy),
        matches!(role, Role::Inspector),
        matches!(role, Role::Portal),
    ];
    let last = u8::try_from(order.len()).unwrap_or(u8::MAX);
    match order.iter().position(|hit| *hit) {
        Some(i) => u8::try_from(i).unwrap_or(last),
        None if matches!(role, Role::Origin(_)) => last + 1,
        None => last,
    }
}

/// How a scenario's host label reads as a column title.
fn display_label(label: &str) -> String {
    match label {
        "ldns" => "LDNS",
        "gslb" => "GSLB",
        "inspector" => "inspection proxy",
        "portal" => "captive portal",
        "pac" => "PAC server",
        other => other,
    }
    .to_string()
}
