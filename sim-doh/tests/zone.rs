//! `Zone` on its own.

mod common;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use common::*;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::RecordType;
use sim_doh::Zone;

#[test]
fn location_of_takes_the_longest_prefix() {
    let zone = zone();
    assert_eq!(zone.location_of(NYC_CLIENT).as_deref(), Some("nyc"));
    assert_eq!(zone.location_of(FRA_CLIENT).as_deref(), Some("fra"));
    assert_eq!(zone.location_of(LON_CLIENT).as_deref(), Some("lon"));
    assert_eq!(zone.location_of(Ipv4Addr::new(8, 8, 8, 8)), None);
}

#[test]
fn located_answers_follow_the_location() {
    let zone = zone();
    let query = query(1, GW, RecordType::A);
    assert_eq!(a_records(&zone.answer(&query, Some("fra"))), [FRA_GW]);
    assert_eq!(a_records(&zone.answer(&query, Some("sfo"))), [FALLBACK_GW]);
    assert_eq!(a_records(&zone.answer(&query, None)), [FALLBACK_GW]);
}

#[test]
fn insert_replaces_a_located_name_and_back() {
    let mut zone = Zone::new(30);
    zone.insert_located("a.test", BTreeMap::new(), Ipv4Addr::new(1, 1, 1, 1));
    zone.insert("a.test.", Ipv4Addr::new(2, 2, 2, 2));
    let query = query(2, "A.TEST", RecordType::A);
    let answer = zone.answer(&query, None);
    assert_eq!(a_records(&answer), [Ipv4Addr::new(2, 2, 2, 2)]);
    assert_eq!(answer.answers[0].ttl, 30);
    zone.insert_located("a.test", BTreeMap::new(), Ipv4Addr::new(3, 3, 3, 3));
    assert_eq!(
        a_records(&zone.answer(&query, None)),
        [Ipv4Addr::new(3, 3, 3, 3)]
    );
}

#[test]
fn malformed_questions() {
    let zone = zone();
    let no_question = Message::new(3, MessageType::Query, OpCode::Query);
    let answer = zone.answer(&no_question, None);
    assert_eq!(answer.metadata.response_code, ResponseCode::FormErr);

    let mut two = query(4, GW, RecordType::A);
    two.add_query(two.queries[0].clone());
    assert_eq!(
        zone.answer(&two, None).metadata.response_code,
        ResponseCode::FormErr
    );

    let mut update = query(5, GW, RecordType::A);
    update.metadata.op_code = OpCode::Update;
    let answer = zone.answer(&update, None);
    assert_eq!(answer.metadata.response_code, ResponseCode::NotImp);
}

#[test]
fn aliases_answer_the_cname_chain_then_the_address() {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RData, RecordType};
    let mut zone = sim_doh::Zone::new(60);
    zone.insert("tenant.box.com", Ipv4Addr::new(107, 152, 27, 197));
    zone.insert_alias("files.partner.com", "tenant.box.com");
    zone.insert_alias("loop.a", "loop.b");
    zone.insert_alias("loop.b", "loop.a");
    let mut q = Message::new(7, MessageType::Query, OpCode::Query);
    q.add_query(Query::query(
        Name::from_ascii("files.partner.com.").unwrap(),
        RecordType::A,
    ));
    let r = zone.answer(&q, None);
    assert!(matches!(r.answers[0].data, RData::CNAME(_)));
    assert!(matches!(r.answers[1].data, RData::A(a) if a.0 == Ipv4Addr::new(107, 152, 27, 197)));
    let mut q = Message::new(8, MessageType::Query, OpCode::Query);
    q.add_query(Query::query(
        Name::from_ascii("loop.a.").unwrap(),
        RecordType::A,
    ));
    assert!(zone.answer(&q, None).answers.len() <= 8, "a loop stops");
}
