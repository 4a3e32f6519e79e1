//! IP and CIDR lists: one hash-free ordered set per prefix length, so a lookup costs at
//! most one probe per prefix length in use (at most 33 for IPv4, 129 for IPv6),
//! whatever the list's size.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// A set of IPv4 and IPv6 networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetSet {
    v4: BTreeMap<u8, BTreeSet<u32>>,
    v6: BTreeMap<u8, BTreeSet<u128>>,
}

impl NetSet {
    /// Adds `net/len` (host bits are ignored). A length over the family's width is
    /// clamped to it.
    pub fn insert(&mut self, net: IpAddr, len: u8) {
        match net {
            IpAddr::V4(a) => {
                let len = len.min(32);
                self.v4
                    .entry(len)
                    .or_default()
                    .insert(u32::from(a) & mask4(len));
            }
            IpAddr::V6(a) => {
                let len = len.min(128);
                self.v6
                    .entry(len)
                    .or_default()
                    .insert(u128::from(a) & mask6(len));
            }
        }
    }

    /// Whether the set has no network.
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// The most specific network holding `ip`, as `(network, length)`.
    pub fn find(&self, ip: IpAddr) -> Option<(IpAddr, u8)> {
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4
                    .iter()
                    .rev()
                    .find(|(len, nets)| nets.contains(&(a & mask4(**len))))
                    .map(|(len, _)| (IpAddr::V4((a & mask4(*len)).into()), *len))
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6
                    .iter()
                    .rev()
                    .find(|(len, nets)| nets.contains(&(a & mask6(**len))))
                    .map(|(len, _)| (IpAddr::V6((a & mask6(*len)).into()), *len))
            }
        }
    }
}

fn mask4(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

fn mask6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn most_specific_network_wins() {
        let mut set = NetSet::default();
        set.insert("203.0.113.0".parse().unwrap(), 24);
        set.insert("203.0.113.128".parse().unwrap(), 25);
        set.insert("2001:db8::".parse().unwrap(), 32);
        let found = set.find("203.0.113.200".parse().unwrap()).unwrap();
        assert_eq!(found, ("203.0.113.128".parse().unwrap(), 25));
        assert!(set.find("203.0.114.1".parse().unwrap()).is_none());
        assert!(set.find("2001:db8::1".parse().unwrap()).is_some());
    }

    proptest! {
        #[test]
        fn agrees_with_a_linear_scan(nets in proptest::collection::vec((any::<u32>(), 0u8..=32), 0..20), ip in any::<u32>()) {
            let mut set = NetSet::default();
            for (n, l) in &nets {
                set.insert(IpAddr::V4((*n).into()), *l);
            }
            let linear = nets.iter().any(|(n, l)| ip & mask4(*l) == n & mask4(*l));
            prop_assert_eq!(set.find(IpAddr::V4(ip.into())).is_some(), linear);
        }
    }
}
