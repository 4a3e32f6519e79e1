//! The world's DNS data: names to A records, some answered by where the client is.
//!
//! Answers follow RFC 1035 (NOERROR, NXDOMAIN, FORMERR, NOTIMP) and RFC 2308 (NODATA:
//! NOERROR without answers for a known name and another type). The EDNS Client Subnet
//! option (RFC 7871) of a query is copied back with the SCOPE PREFIX-LENGTH set to the
//! SOURCE PREFIX-LENGTH: the answer is valid for exactly the subnet the client sent.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, RwLock};

use hickory_proto::op::{Edns, Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::rdata::{A, CNAME};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use ipnet::Ipv4Net;

/// The UDP payload size this server advertises in its EDNS answers (the DNS flag day 2020
/// value).
const MAX_PAYLOAD: u16 = 1232;

/// How many aliases an answer follows before it stops (a loop guard).
const MAX_CNAME_CHAIN: usize = 8;

/// Names to A answers, and client networks to locations.
///
/// Names are case-insensitive and the trailing dot is optional, both when inserting and
/// when asking.
#[derive(Clone, Debug)]
pub struct Zone {
    ttl_s: u32,
    names: BTreeMap<String, Entry>,
    /// Shared by clones, so a running server sees [`Zone::relocate`].
    locations: Arc<RwLock<BTreeMap<Ipv4Net, String>>>,
}

#[derive(Clone, Debug)]
enum Entry {
    Static(Vec<Ipv4Addr>),
    /// An alias (CNAME) of another name.
    Alias(String),
    Located {
        by_location: BTreeMap<String, Ipv4Addr>,
        fallback: Ipv4Addr,
    },
}

impl Zone {
    /// An empty zone whose records all carry this TTL.
    pub fn new(ttl_s: u32) -> Self {
        Self {
            ttl_s,
            names: BTreeMap::new(),
            locations: Arc::default(),
        }
    }

    /// Adds a static A record. Several inserts for one name give several A records, in
    /// insertion order. Inserting a name that was located or an alias replaces that answer.
    pub fn insert(&mut self, name: &str, ip: Ipv4Addr) {
        let entry = self
            .names
            .entry(normalize(name))
            .or_insert_with(|| Entry::Static(Vec::new()));
        match entry {
            Entry::Static(ips) => ips.push(ip),
            Entry::Located { .. } | Entry::Alias(_) => *entry = Entry::Static(vec![ip]),
        }
    }

    /// Makes the answer for `name` depend on the asking client's location: one A record,
    /// `by_location[location]`, or `fallback` for an unknown or missing location.
    /// Replaces any earlier records for the name.
    pub fn insert_located(
        &mut self,
        name: &str,
        by_location: BTreeMap<String, Ipv4Addr>,
        fallback: Ipv4Addr,
    ) {
        let entry = Entry::Located {
            by_location,
            fallback,
        };
        self.names.insert(normalize(name), entry);
    }

    /// Places the addresses of `net` in `location`. Where networks overlap, the longest
    /// prefix wins; locating the same network again replaces its location.
    pub fn locate(&mut self, net: Ipv4Net, location: &str) {
        self.relocate(net, location);
    }

    /// Like [`Zone::locate`], on a zone already shared with running servers: a client
    /// network that moved (roaming) is answered for its new location from now on.
    pub fn relocate(&self, net: Ipv4Net, location: &str) {
        if let Ok(mut locations) = self.locations.write() {
            locations.insert(net.trunc(), location.to_owned());
        }
    }

    /// Makes `name` an alias (CNAME) of `target`, replacing what `name` had.
    pub fn insert_alias(&mut self, name: &str, target: &str) {
        self.names
            .insert(normalize(name), Entry::Alias(normalize(target)));
    }

    /// The location of an address, from the longest matching network given to
    /// [`Zone::locate`].
    pub fn location_of(&self, ip: Ipv4Addr) -> Option<String> {
        let locations = self.locations.read().ok()?;
        locations
            .iter()
            .filter(|(net, _)| net.contains(&ip))
            .max_by_key(|(net, _)| net.prefix_len())
            .map(|(_, location)| location.clone())
    }

    /// Answers `query` as seen by a client at `location`.
    ///
    /// The response echoes the id, RD and the question, and sets RA. A for a known name:
    /// NOERROR with its A records. Another type for a known name: NOERROR without
    /// answers. Unknown name: NXDOMAIN. Not exactly one question: FORMERR. An opcode other
    /// than QUERY: NOTIMP. A class other than IN: REFUSED. With EDNS in the query the
    /// response carries EDNS too, with the query's client subnet option copied back.
    pub fn answer(&self, query: &Message, location: Option<&str>) -> Message {
        let mut response = Message::response(query.metadata.id, query.metadata.op_code);
        response.metadata.recursion_desired = query.metadata.recursion_desired;
        response.metadata.checking_disabled = query.metadata.checking_disabled;
        response.metadata.recursion_available = true;
        response.add_queries(query.queries.iter().cloned());
        if let Some(edns) = &query.edns {
            response.set_edns(response_edns(edns));
        }

        let rcode = if query.metadata.op_code != OpCode::Query {
            ResponseCode::NotImp
        } else if query.queries.len() != 1 {
            ResponseCode::FormErr
        } else {
            let question = &query.queries[0];
            if question.query_class() != DNSClass::IN {
                ResponseCode::Refused
            } else if self
                .names
                .contains_key(&normalize(&question.name().to_ascii()))
            {
                // Follow aliases (a bounded chain), answering each CNAME, then the A records.
                let mut owner = question.name().clone();
                let mut entry = self.names.get(&normalize(&owner.to_ascii()));
                for _ in 0..MAX_CNAME_CHAIN {
                    let Some(Entry::Alias(target)) = entry else {
                        break;
                    };
                    let Ok(target_name) = Name::from_ascii(format!("{target}.")) else {
                        break;
                    };
                    let rdata = RData::CNAME(CNAME(target_name.clone()));
                    response.add_answer(Record::from_rdata(owner.clone(), self.ttl_s, rdata));
                    owner = target_name;
                    entry = self.names.get(&normalize(target));
                }
                if question.query_type() == RecordType::A
                    && let Some(entry) = entry
                {
                    for ip in entry.ips(location) {
                        let rdata = RData::A(A(ip));
                        response.add_answer(Record::from_rdata(owner.clone(), self.ttl_s, rdata));
                    }
                }
                ResponseCode::NoError
            } else {
                ResponseCode::NXDomain
            }
        };
        response.metadata.response_code = rcode;
        response
    }
}

impl Entry {
    fn ips(&self, location: Option<&str>) -> Vec<Ipv4Addr> {
        match self {
            Self::Static(ips) => ips.clone(),
            Self::Alias(_) => Vec::new(),
            Self::Located {
                by_location,
                fallback,
            } => {
                let ip = location
                    .and_then(|l| by_location.get(l))
                    .unwrap_or(fallback);
                vec![*ip]
            }
        }
    }
}

/// The response's EDNS: our payload size, and the client subnet option copied back with
/// scope = source (RFC 7871 section 7.2.1).
fn response_edns(query_edns: &Edns) -> Edns {
    let mut edns = Edns::new();
    edns.set_max_payload(MAX_PAYLOAD);
    if let Some(EdnsOption::Subnet(subnet)) = query_edns.option(EdnsCode::Subnet) {
        let mut subnet = *subnet;
        subnet.set_scope_prefix(subnet.source_prefix());
        edns.options_mut().insert(EdnsOption::Subnet(subnet));
    }
    edns
}

/// Lower case, without the trailing dot.
fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}
