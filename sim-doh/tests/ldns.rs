//! The local resolver, driven through `handle_udp` and `handle_tcp` with no socket.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::*;
use hickory_proto::op::{Edns, Message, MessageType, ResponseCode};
use hickory_proto::rr::RecordType;
use sim_doh::{Behaviour, Ldns};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn ldns(behaviour: Behaviour) -> Ldns {
    Ldns::new(zone(), "nyc".to_owned(), behaviour)
}

fn src(ip: Ipv4Addr) -> SocketAddr {
    SocketAddr::from((ip, 53_000))
}

async fn udp(ldns: &Ldns, query: &Message, from: Ipv4Addr) -> (Vec<u8>, Message) {
    let wire = query.to_vec().unwrap();
    let reply = ldns.handle_udp(&wire, src(from)).await.expect("a reply");
    let message = Message::from_vec(&reply).unwrap();
    (reply, message)
}

#[tokio::test]
async fn answers_for_its_egress_regardless_of_client() {
    let ldns = ldns(Behaviour::Answer);
    let (_, answer) = udp(&ldns, &query(1, GW, RecordType::A), FRA_CLIENT).await;
    assert_eq!(answer.metadata.id, 1);
    assert_eq!(answer.metadata.message_type, MessageType::Response);
    assert!(answer.metadata.recursion_available);
    assert_eq!(a_records(&answer), [NYC_GW]);

    let with_ecs = query_ecs(2, GW, Ipv4Addr::new(100, 65, 1, 0), 24);
    let (_, answer) = udp(&ldns, &with_ecs, LON_CLIENT).await;
    assert_eq!(a_records(&answer), [NYC_GW]);
}

#[tokio::test]
async fn nxdomain_and_aaaa() {
    let ldns = ldns(Behaviour::Answer);
    let (_, answer) = udp(&ldns, &query(3, "nope.test", RecordType::A), NYC_CLIENT).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);
    let (_, answer) = udp(&ldns, &query(4, GW, RecordType::AAAA), NYC_CLIENT).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert!(answer.answers.is_empty());
}

#[tokio::test]
async fn servfail_and_empty_behaviours() {
    let (_, answer) = udp(
        &ldns(Behaviour::ServFail),
        &query(5, GW, RecordType::A),
        NYC_CLIENT,
    )
    .await;
    assert_eq!(answer.metadata.id, 5);
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
    assert!(answer.answers.is_empty());

    let (_, answer) = udp(
        &ldns(Behaviour::Empty),
        &query(6, GW, RecordType::A),
        NYC_CLIENT,
    )
    .await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert!(answer.answers.is_empty());
}

#[tokio::test]
async fn http_error_is_a_plain_answer() {
    let ldns = ldns(Behaviour::HttpError(503));
    let (_, answer) = udp(&ldns, &query(7, GW, RecordType::A), FRA_CLIENT).await;
    assert_eq!(a_records(&answer), [NYC_GW]);
}

#[tokio::test(start_paused = true)]
async fn slow_answer_waits() {
    let ldns = ldns(Behaviour::SlowAnswer(Duration::from_millis(2500)));
    let start = tokio::time::Instant::now();
    let (_, answer) = udp(&ldns, &query(8, GW, RecordType::A), FRA_CLIENT).await;
    assert!(start.elapsed() >= Duration::from_millis(2500));
    assert_eq!(a_records(&answer), [NYC_GW]);
}

#[tokio::test]
async fn garbage_and_responses_are_dropped() {
    let ldns = ldns(Behaviour::Answer);
    let from = src(NYC_CLIENT);
    assert_eq!(ldns.handle_udp(b"", from).await, None);
    assert_eq!(ldns.handle_udp(b"\x12\x34\x01", from).await, None);
    let mut response = query(9, GW, RecordType::A);
    response.metadata.message_type = MessageType::Response;
    assert_eq!(
        ldns.handle_udp(&response.to_vec().unwrap(), from).await,
        None
    );
    // Every prefix of a valid query is dropped or answered, never a panic.
    let wire = query_ecs(10, GW, Ipv4Addr::new(100, 65, 7, 0), 24)
        .to_vec()
        .unwrap();
    for len in 0..wire.len() {
        let _ = ldns.handle_udp(&wire[..len], from).await;
    }
}

#[tokio::test]
async fn large_udp_answers_are_truncated() {
    let ldns = ldns(Behaviour::Answer);
    let (reply, answer) = udp(&ldns, &query(11, BIG, RecordType::A), NYC_CLIENT).await;
    assert!(reply.len() <= 512, "{} bytes", reply.len());
    assert!(answer.metadata.truncation);
    assert!(answer.answers.len() < usize::from(BIG_COUNT));

    // The query's EDNS payload size raises the limit.
    let mut big_edns = query(12, BIG, RecordType::A);
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    big_edns.set_edns(edns);
    let (reply, answer) = udp(&ldns, &big_edns, NYC_CLIENT).await;
    assert!(reply.len() > 512);
    assert!(!answer.metadata.truncation);
    assert_eq!(answer.answers.len(), usize::from(BIG_COUNT));
}

#[tokio::test]
async fn tcp_answers_two_framed_queries_then_eof() {
    let ldns = ldns(Behaviour::Answer);
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let serve = tokio::spawn(async move { ldns.handle_tcp(server, src(FRA_CLIENT)).await });

    let mut framed = Vec::new();
    for message in [query(13, GW, RecordType::A), query(14, BIG, RecordType::A)] {
        let wire = message.to_vec().unwrap();
        framed.extend_from_slice(&u16::try_from(wire.len()).unwrap().to_be_bytes());
        framed.extend_from_slice(&wire);
    }
    client.write_all(&framed).await.unwrap();

    let mut answers = Vec::new();
    for _ in 0..2 {
        let len = client.read_u16().await.unwrap();
        let mut reply = vec![0; usize::from(len)];
        client.read_exact(&mut reply).await.unwrap();
        answers.push(Message::from_vec(&reply).unwrap());
    }
    assert_eq!(answers[0].metadata.id, 13);
    assert_eq!(a_records(&answers[0]), [NYC_GW]);
    assert_eq!(answers[1].metadata.id, 14);
    assert!(!answers[1].metadata.truncation);
    assert_eq!(answers[1].answers.len(), usize::from(BIG_COUNT));

    client.shutdown().await.unwrap();
    drop(client);
    serve.await.unwrap().unwrap();
}

#[tokio::test]
async fn tcp_garbage_closes_the_connection() {
    let ldns = ldns(Behaviour::Answer);
    let (mut client, server) = tokio::io::duplex(1024);
    let serve = tokio::spawn(async move { ldns.handle_tcp(server, src(NYC_CLIENT)).await });
    client.write_all(b"\x00\x03abc").await.unwrap();
    serve.await.unwrap().unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}
