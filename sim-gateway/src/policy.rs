//! The gateway's real-time policy: block destinations by domain or by web category.
//! A blocked flow is refused with a block-page reason the agent passes to the app.

use std::collections::BTreeMap;

use agent::core::steer::DomainSet;

/// What the policy blocks.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    domains: DomainSet,
    categories: Vec<String>,
    host_categories: BTreeMap<String, String>,
}

/// The prefix of a refusal reason that comes from the policy (not from an unreachable
/// origin).
pub const POLICY_REFUSAL: &str = "blocked by policy";

impl Policy {
    /// A policy from block entries (`dropbox.com`, `*.dropbox.com`,
    /// `category:file-sharing`) and the category of each known host.
    pub fn new(block: &[String], host_categories: BTreeMap<String, String>) -> Policy {
        let mut policy = Policy {
            host_categories: host_categories
                .into_iter()
                .map(|(h, c)| (h.to_ascii_lowercase(), c))
                .collect(),
            ..Policy::default()
        };
        for entry in block {
            match entry.strip_prefix("category:") {
                Some(category) => policy.categories.push(category.trim().to_string()),
                None => policy.domains.insert(entry),
            }
        }
        policy
    }

    /// Why `host` is blocked, if it is.
    pub fn blocks(&self, host: &str) -> Option<String> {
        if let Some(pattern) = self.domains.find(host) {
            return Some(format!("{POLICY_REFUSAL}: {pattern}"));
        }
        let category = self.host_categories.get(&host.to_ascii_lowercase())?;
        self.categories
            .iter()
            .any(|c| c.eq_ignore_ascii_case(category))
            .then(|| format!("{POLICY_REFUSAL}: category {category}"))
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
            p.blocks("a.evil.com").as_deref(),
            Some("blocked by policy: *.evil.com")
        );
        assert_eq!(
            p.blocks("WWW.Dropbox.com").as_deref(),
            Some("blocked by policy: category file-sharing")
        );
        assert_eq!(p.blocks("www.box.com"), None);
    }
}
