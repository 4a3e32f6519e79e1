//! The zone and query builders the integration tests share.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RData, RecordType};
use sim_doh::Zone;

/// The located name: nyc, fra and lon each get their own gateway.
pub const GW: &str = "gateway-acme.goskope.com";
pub const NYC_GW: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const FRA_GW: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const LON_GW: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
pub const FALLBACK_GW: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 9);

/// Client addresses: 100.64/16 is nyc, 100.65/16 fra, except 100.65.1/24 which is lon.
pub const NYC_CLIENT: Ipv4Addr = Ipv4Addr::new(100, 64, 3, 4);
pub const FRA_CLIENT: Ipv4Addr = Ipv4Addr::new(100, 65, 7, 8);
pub const LON_CLIENT: Ipv4Addr = Ipv4Addr::new(100, 65, 1, 9);

/// A name with so many A records that its answer does not fit in 512 bytes.
pub const BIG: &str = "big.example.com";
pub const BIG_COUNT: u8 = 60;

pub fn zone() -> Arc<Zone> {
    let mut zone = Zone::new(60);
    let by_location = BTreeMap::from([
        ("nyc".to_owned(), NYC_GW),
        ("fra".to_owned(), FRA_GW),
        ("lon".to_owned(), LON_GW),
    ]);
    zone.insert_located(GW, by_location, FALLBACK_GW);
    zone.insert("www.example.com", Ipv4Addr::new(192, 0, 2, 1));
    zone.insert("WWW.example.com.", Ipv4Addr::new(192, 0, 2, 2));
    for i in 0..BIG_COUNT {
        zone.insert(BIG, Ipv4Addr::new(198, 51, 100, i));
    }
    zone.locate("100.64.0.0/16".parse().unwrap(), "nyc");
    zone.locate("100.65.0.0/16".parse().unwrap(), "fra");
    zone.locate("100.65.1.0/24".parse().unwrap(), "lon");
    Arc::new(zone)
}

/// A recursive query with a fixed id.
pub fn query(id: u16, name: &str, query_type: RecordType) -> Message {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    // Names on the wire are always fully qualified: build them so, to compare.
    let mut name = Name::from_ascii(name).unwrap();
    name.set_fqdn(true);
    message.add_query(Query::query(name, query_type));
    message
}

/// `query` with EDNS and a client subnet option.
pub fn query_ecs(id: u16, name: &str, subnet: Ipv4Addr, source_prefix: u8) -> Message {
    let mut message = query(id, name, RecordType::A);
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    let subnet = ClientSubnet::new(IpAddr::V4(subnet), source_prefix, 0);
    edns.options_mut().insert(EdnsOption::Subnet(subnet));
    message.set_edns(edns);
    message
}

/// The A addresses of an answer, in order.
pub fn a_records(message: &Message) -> Vec<Ipv4Addr> {
    message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

/// The client subnet option of a message, as (address, source, scope).
pub fn ecs(message: &Message) -> Option<(IpAddr, u8, u8)> {
    let edns = message.edns.as_ref()?;
    match edns.option(EdnsCode::Subnet)? {
        EdnsOption::Subnet(s) => Some((s.addr(), s.source_prefix(), s.scope_prefix())),
        _ => None,
    }
}
