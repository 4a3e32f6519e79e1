//! The gateway's real-time policy: allow and block rules by domain or web category,
//! optionally only for a user group. A blocked flow is refused with a block-page reason
//! the agent passes to the app.
//!
//! A rule is `TARGET [for group:NAME]`, where TARGET is a domain (`dropbox.com`,
//! `*.dropbox.com`), `category:NAME`, or `any` (every destination: the block-all policy of
//! a lost-device group). An allow rule that matches wins over every block
//! rule (allow rules carve exceptions out of blocks); otherwise the first block rule that
//! matches blocks. Group rules apply when the session's user (told by the agent's Hello
//! frame) is in the group, by the tenant directory.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use agent::core::steer::DomainSet;

/// The prefix of a refusal reason that comes from the policy (not from an unreachable
/// origin).
pub const POLICY_REFUSAL: &str = "blocked by policy";

/// What one rule matches.
#[derive(Debug, Clone)]
enum Target {
    /// One domain pattern, kept as written for the reason text.
    Domain(DomainSet, String),
    /// A web category.
    Category(String),
    /// Every destination.
    Any,
}

/// One allow or block rule.
#[derive(Debug, Clone)]
struct Rule {
    target: Target,
    /// Only for members of this group (lower case).
    group: Option<String>,
    /// The rule as written.
    text: String,
}

/// The tenant's real-time policy and directory.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    block: Vec<Rule>,
    allow: Vec<Rule>,
    host_categories: BTreeMap<String, String>,
    /// Lower-case user -> lower-case groups, shared with the tenant's admin so that group
    /// changes apply to the next flow.
    directory: Directory,
}

/// The tenant directory the gateway consults: each user's groups. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Directory(Arc<Mutex<BTreeMap<String, Vec<String>>>>);

impl Directory {
    /// Puts `user` in exactly these groups.
    pub fn set_groups(&self, user: &str, groups: &[String]) {
        if let Ok(mut map) = self.0.lock() {
            let groups = groups.iter().map(|g| g.to_ascii_lowercase()).collect();
            map.insert(user.to_ascii_lowercase(), groups);
        }
    }

    /// The groups of `user` (lower case).
    pub fn groups(&self, user: &str) -> Vec<String> {
        self.0
            .lock()
            .ok()
            .and_then(|map| map.get(&user.to_ascii_lowercase()).cloned())
            .unwrap_or_default()
    }
}

impl Policy {
    /// A policy from block rules (`dropbox.com`, `*.dropbox.com`,
    /// `category:file-sharing`, `category:social for group:contractors`) and the category
    /// of each known host.
    pub fn new(block: &[String], host_categories: BTreeMap<String, String>) -> Policy {
        Policy {
            block: block.iter().map(|r| rule(r)).collect(),
            host_categories: host_categories
                .into_iter()
                .map(|(h, c)| (h.to_ascii_lowercase(), c))
                .collect(),
            ..Policy::default()
        }
    }

    /// Adds allow rules, which win over block rules.
    pub fn with_allow(mut self, allow: &[String]) -> Policy {
        self.allow = allow.iter().map(|r| rule(r)).collect();
        self
    }

    /// Sets the tenant directory from group -> users.
    pub fn with_directory(mut self, groups: &BTreeMap<String, Vec<String>>) -> Policy {
        let mut by_user: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (group, users) in groups {
            for user in users {
                by_user
                    .entry(user.to_ascii_lowercase())
                    .or_default()
                    .push(group.to_ascii_lowercase());
            }
        }
        let directory = Directory::default();
        for (user, groups) in &by_user {
            directory.set_groups(user, groups);
        }
        self.directory = directory;
        self
    }

    /// The directory, to change users' groups while the gateway runs.
    pub fn directory(&self) -> Directory {
        self.directory.clone()
    }

    /// Why `host` is blocked for `user` (the session's user, if the agent said), if it is.
    pub fn blocks(&self, host: &str, user: Option<&str>) -> Option<String> {
        let groups = user.map(|u| self.directory.groups(u)).unwrap_or_default();
        let category = self.host_categories.get(&host.to_ascii_lowercase());
        let applies = |r: &&Rule| {
            r.group.as_ref().is_none_or(|g| groups.contains(g))
                && match &r.target {
                    Target::Domain(set, _) => set.matches(host),
                    Target::Category(c) => category.is_some_and(|hc| hc.eq_ignore_ascii_case(c)),
                    Target::Any => true,
                }
        };
        if self.allow.iter().any(|r| applies(&r)) {
            return None;
        }
        let rule = self.block.iter().find(applies)?;
        let what = match &rule.target {
            Target::Domain(_, pattern) => pattern.clone(),
            Target::Category(c) => format!("category {c}"),
            Target::Any => "every destination".to_string(),
        };
        Some(match (&rule.group, user) {
            (Some(group), Some(user)) => {
                format!("{POLICY_REFUSAL}: {what} for group {group} ({user})")
            }
            _ => format!("{POLICY_REFUSAL}: {what}"),
        })
    }

    /// The rules as written, blocks then allows (for logs).
    pub fn describe(&self) -> Vec<String> {
        let blocks = self.block.iter().map(|r| format!("block {}", r.text));
        let allows = self.allow.iter().map(|r| format!("allow {}", r.text));
        blocks.chain(allows).collect()
    }
}

/// Reads `TARGET [for group:NAME]`. The scenario loader checked the text.
fn rule(text: &str) -> Rule {
    let (target, group) = match text.split_once(" for group:") {
        Some((t, g)) => (t.trim(), Some(g.trim().to_ascii_lowercase())),
        None => (text.trim(), None),
    };
    let target = match target.strip_prefix("category:") {
        Some(c) => Target::Category(c.trim().to_string()),
        None if target.eq_ignore_ascii_case("any") => Target::Any,
        None => {
            let mut set = DomainSet::default();
            set.insert(target);
            Target::Domain(set, target.to_string())
        }
    };
    Rule {
        target,
        group,
        text: text.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_by_domain_and_category() {
        let cats = BTreeMap::from([("www.dropbox.com".to_string(), "file-sharing".to_string())]);
        let p = Policy::new(&["*.evil.com".into(), "category:file-sharing".into()], cats);
        assert_eq!(
            p.blocks("a.evil.com", None).as_deref(),
            Some("blocked by policy: *.evil.com")
        );
        assert_eq!(
            p.blocks("WWW.Dropbox.com", None).as_deref(),
            Some("blocked by policy: category file-sharing")
        );
        assert_eq!(p.blocks("www.box.com", None), None);
    }

    #[test]
    fn group_rules_apply_to_members_only_and_allows_win() {
        let cats = BTreeMap::from([
            ("www.dropbox.com".to_string(), "file-sharing".to_string()),
            ("www.box.com".to_string(), "file-sharing".to_string()),
        ]);
        let groups = BTreeMap::from([
            ("contractors".to_string(), vec!["Bob@acme.com".to_string()]),
            ("it".to_string(), vec!["alice@acme.com".to_string()]),
        ]);
        let p = Policy::new(
            &[
                "category:file-sharing for group:contractors".into(),
                "*.evil.com".into(),
            ],
            cats,
        )
        .with_allow(&["www.box.com".into(), "a.evil.com for group:it".into()])
        .with_directory(&groups);
        assert_eq!(
            p.blocks("www.dropbox.com", Some("bob@acme.com")).as_deref(),
            Some("blocked by policy: category file-sharing for group contractors (bob@acme.com)")
        );
        assert_eq!(p.blocks("www.dropbox.com", Some("alice@acme.com")), None);
        assert_eq!(p.blocks("www.dropbox.com", None), None);
        // An allow carves an exception out of a block.
        assert_eq!(p.blocks("www.box.com", Some("bob@acme.com")), None);
        assert!(p.blocks("a.evil.com", Some("bob@acme.com")).is_some());
        assert_eq!(p.blocks("a.evil.com", Some("alice@acme.com")), None);
    }

    #[test]
    fn block_all_for_a_group_follows_the_live_directory() {
        let p = Policy::new(&["any for group:lost".into()], BTreeMap::new());
        assert_eq!(p.blocks("www.box.com", Some("bob@acme.com")), None);
        p.directory()
            .set_groups("bob@acme.com", &["Lost".to_string()]);
        assert_eq!(
            p.blocks("www.box.com", Some("BOB@acme.com")).as_deref(),
            Some("blocked by policy: every destination for group lost (BOB@acme.com)")
        );
    }
}
