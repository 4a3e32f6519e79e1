//! Domain lists: exact names and `*.suffix` wildcards, matched at label boundaries.
//!
//! A wildcard `*.example.com` matches names strictly below `example.com`, never
//! `example.com` itself (the vendor documents it so). Lookups walk the name's label
//! boundaries, so they cost one set probe per label whatever the list's size.

use std::collections::BTreeSet;

/// A set of domain patterns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainSet {
    exact: BTreeSet<String>,
    below: BTreeSet<String>,
}

impl DomainSet {
    /// Builds a set from patterns (`example.com`, `*.example.com`); case and a trailing
    /// dot are ignored.
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> DomainSet {
        let mut set = DomainSet::default();
        for p in patterns {
            set.insert(p);
        }
        set
    }

    /// Adds one pattern.
    pub fn insert(&mut self, pattern: &str) {
        let p = normalize(pattern);
        match p.strip_prefix("*.") {
            Some(suffix) => self.below.insert(suffix.to_string()),
            None => self.exact.insert(p),
        };
    }

    /// Whether the set has no pattern.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.below.is_empty()
    }

    /// The pattern that matches `name`, if any.
    pub fn find(&self, name: &str) -> Option<String> {
        let name = normalize(name);
        if self.exact.contains(&name) {
            return Some(name);
        }
        let mut rest = name.as_str();
        while let Some((_, parent)) = rest.split_once('.') {
            if self.below.contains(parent) {
                return Some(format!("*.{parent}"));
            }
            rest = parent;
        }
        None
    }

    /// Whether some pattern matches `name`.
    pub fn matches(&self, name: &str) -> bool {
        self.find(name).is_some()
    }
}

fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exact_and_wildcard() {
        let set = DomainSet::new(["box.com", "*.zoom.us"]);
        assert!(set.matches("box.com"));
        assert!(set.matches("BOX.com."));
        assert!(!set.matches("www.box.com"));
        assert!(set.matches("a.b.zoom.us"));
        assert!(
            !set.matches("zoom.us"),
            "a wildcard does not match the bare domain"
        );
        assert!(!set.matches("notzoom.us"));
    }

    fn linear(patterns: &[String], name: &str) -> bool {
        let name = normalize(name);
        patterns.iter().any(|p| {
            let p = normalize(p);
            match p.strip_prefix("*.") {
                Some(s) => name.ends_with(&format!(".{s}")),
                None => name == p,
            }
        })
    }

    proptest! {
        #[test]
        fn agrees_with_a_linear_scan(
            patterns in proptest::collection::vec("(\\*\\.)?[a-c]{1,2}(\\.[a-c]{1,2}){0,2}", 0..8),
            name in "[a-c]{1,2}(\\.[a-c]{1,2}){0,3}",
        ) {
            let set = DomainSet::new(patterns.iter().map(String::as_str));
            prop_assert_eq!(set.matches(&name), linear(&patterns, &name));
        }
    }
}
