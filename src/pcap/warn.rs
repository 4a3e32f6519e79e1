//! Warnings about a capture, each naming the first packet it is about: one line per
//! kind of problem, with how many more packets had it, so a capture cut by a small
//! snaplen gives one line, not a million.

use std::collections::BTreeMap;

use super::decode::Decoded;

/// How many packet numbers a line lists beyond the first.
const EXAMPLES: usize = 3;

/// Warnings, grouped by kind.
#[derive(Debug, Clone, Default)]
pub struct Warnings {
    kinds: BTreeMap<String, Group>,
    /// Damage that ended the reading, if any: always its own line, last.
    damage: Option<String>,
}

#[derive(Debug, Clone)]
struct Group {
    first: usize,
    message: String,
    more: Vec<usize>,
    count: usize,
}

impl Warnings {
    /// Records `message` about packet `number`, grouped under `kind`.
    pub fn add(&mut self, kind: &str, number: usize, message: impl FnOnce() -> String) {
        match self.kinds.get_mut(kind) {
            Some(g) => {
                g.count += 1;
                if g.more.len() < EXAMPLES {
                    g.more.push(number);
                }
            }
            None => {
                self.kinds.insert(
                    kind.to_string(),
                    Group {
                        first: number,
                        message: message(),
                        more: Vec::new(),
                        count: 1,
                    },
                );
            }
        }
    }

    /// A frame that gave no segment.
    pub fn frame(&mut self, number: usize, decoded: &Decoded<'_>) {
        match decoded {
            Decoded::Fragment { offset } => {
                let offset = *offset;
                self.add("fragment", number, || {
                    format!("IP fragment (offset {offset}): fragments are not reassembled, skipped")
                });
            }
            Decoded::Undecodable(why) => {
                let why = *why;
                self.add(&format!("undecodable {why}"), number, || {
                    format!("undecodable frame: {why}, skipped")
                });
            }
            Decoded::UnknownLink(link) => {
                let link = *link;
                self.add(&format!("link {link}"), number, || {
                    format!(
                        "link type {link} is not supported (Ethernet, raw IP, Linux cooked, loopback are), skipped"
                    )
                });
            }
            Decoded::Segment(_) | Decoded::Other => {}
        }
    }

    /// The damage that ended the reading.
    pub fn damage(&mut self, message: String) {
        self.damage = Some(message);
    }

    /// Whether there is nothing to say.
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty() && self.damage.is_none()
    }

    /// One line per kind, in order of the first packet, then the damage.
    pub fn lines(&self) -> Vec<String> {
        let mut groups: Vec<&Group> = self.kinds.values().collect();
        groups.sort_by_key(|g| g.first);
        let mut out: Vec<String> = groups
            .into_iter()
            .map(|g| {
                let mut line = format!("packet {}: {}", g.first, g.message);
                if g.count > 1 {
                    let list = g
                        .more
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ");
                    let etc = if g.count - 1 > g.more.len() {
                        ", ..."
                    } else {
                        ""
                    };
                    line.push_str(&format!(
                        " (and {} more packet(s) like it: {list}{etc})",
                        g.count - 1
                    ));
                }
                line
            })
            .collect();
        out.extend(self.damage.clone());
        out
    }
}
