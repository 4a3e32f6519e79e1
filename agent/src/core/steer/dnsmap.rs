//! The domain map: which names the endpoint's apps resolved to which addresses, learnt
//! from the DNS answers the client's driver sees, with TTL expiry.
//!
//! - A CNAME chain maps every address to the asked name and to every name of the chain,
//!   so a CNAME to a managed domain (or from one) is recognised.
//! - Several names on one address are all kept (most recent first): a flow to a shared
//!   address is managed when any of its names is (see `Verdicts` for the SNI option).
//! - One name on many addresses maps each address.
//! - An entry lives until its TTL runs out; a newer answer for the same pair renews it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RData;

/// Addresses to names, with expiry.
#[derive(Debug, Clone, Default)]
pub struct DnsMap {
    entries: BTreeMap<IpAddr, Vec<(String, Instant)>>,
}

/// The answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a DNS answer: {0}")]
pub struct NotAnAnswer(pub String);

impl DnsMap {
    /// Learns from one DNS response (wire format). Returns how many address-name pairs
    /// it recorded.
    pub fn learn(&mut self, bytes: &[u8], now: Instant) -> Result<usize, NotAnAnswer> {
        let msg = Message::from_vec(bytes).map_err(|e| NotAnAnswer(e.to_string()))?;
        let mut names: Vec<String> = msg
            .queries
            .iter()
            .map(|q| norm(&q.name().to_ascii()))
            .collect();
        let mut addrs = Vec::new();
        for record in &msg.answers {
            let ttl = Duration::from_secs(u64::from(record.ttl));
            match &record.data {
                RData::CNAME(target) => names.push(norm(&target.0.to_ascii())),
                RData::A(a) => addrs.push((IpAddr::V4(a.0), ttl, norm(&record.name.to_ascii()))),
                RData::AAAA(a) => addrs.push((IpAddr::V6(a.0), ttl, norm(&record.name.to_ascii()))),
                _ => {}
            }
        }
        let mut count = 0;
        for (ip, ttl, owner) in addrs {
            if !names.contains(&owner) {
                names.push(owner);
            }
            for name in &names {
                self.insert(ip, name, now + ttl);
                count += 1;
            }
        }
        Ok(count)
    }

    /// Records `name` for `ip` until `expires`.
    pub fn insert(&mut self, ip: IpAddr, name: &str, expires: Instant) {
        let list = self.entries.entry(ip).or_default();
        list.retain(|(n, _)| n != name);
        list.insert(0, (name.to_string(), expires));
    }

    /// The live names of `ip`, most recent first.
    pub fn names(&self, ip: IpAddr, now: Instant) -> Vec<&str> {
        self.entries
            .get(&ip)
            .map(|list| {
                list.iter()
                    .filter(|(_, exp)| *exp > now)
                    .map(|(n, _)| n.as_str())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every live (name, address) pair, in address order.
    pub fn live_pairs(&self, now: Instant) -> impl Iterator<Item = (&str, IpAddr)> + '_ {
        self.entries.iter().flat_map(move |(ip, list)| {
            list.iter()
                .filter(move |(_, exp)| *exp > now)
                .map(move |(n, _)| (n.as_str(), *ip))
        })
    }

    /// Drops expired entries.
    pub fn expire(&mut self, now: Instant) {
        self.entries.retain(|_, list| {
            list.retain(|(_, exp)| *exp > now);
            !list.is_empty()
        });
    }
}

fn norm(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "tests take a base instant")]
mod tests {
    use super::*;
    use hickory_proto::op::{MessageType, OpCode, Query};
    use hickory_proto::rr::rdata::{A, CNAME};
    use hickory_proto::rr::{Name, Record, RecordType};
    use std::net::Ipv4Addr;

    fn answer(q: &str, chain: &[&str], ip: Ipv4Addr, ttl: u32) -> Vec<u8> {
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.add_query(Query::query(Name::from_ascii(q).unwrap(), RecordType::A));
        let mut owner = q.to_string();
        for c in chain {
            let rd = RData::CNAME(CNAME(Name::from_ascii(c).unwrap()));
            m.add_answer(Record::from_rdata(
                Name::from_ascii(&owner).unwrap(),
                ttl,
                rd,
            ));
            owner = c.to_string();
        }
        m.add_answer(Record::from_rdata(
            Name::from_ascii(&owner).unwrap(),
            ttl,
            RData::A(A(ip)),
        ));
        m.to_vec().unwrap()
    }

    #[test]
    fn cname_chain_maps_every_name_and_expires() {
        let now = Instant::now();
        let ip = Ipv4Addr::new(1, 2, 3, 4);
        let mut map = DnsMap::default();
        map.learn(&answer("www.box.com.", &["box.map.cdn.net."], ip, 60), now)
            .unwrap();
        let names = map.names(IpAddr::V4(ip), now);
        assert!(names.contains(&"www.box.com") && names.contains(&"box.map.cdn.net"));
        assert!(
            map.names(IpAddr::V4(ip), now + Duration::from_secs(61))
                .is_empty()
        );
    }

    #[test]
    fn shared_address_keeps_both_names_newest_first() {
        let now = Instant::now();
        let ip = Ipv4Addr::new(5, 6, 7, 8);
        let mut map = DnsMap::default();
        map.learn(&answer("a.com.", &[], ip, 60), now).unwrap();
        map.learn(&answer("b.com.", &[], ip, 60), now).unwrap();
        assert_eq!(map.names(IpAddr::V4(ip), now), vec!["b.com", "a.com"]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut map = DnsMap::default();
        assert!(map.learn(&[1, 2, 3], Instant::now()).is_err());
    }
}
