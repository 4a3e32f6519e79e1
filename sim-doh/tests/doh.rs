//! The DoH router, called with `oneshot` and no socket.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::Response;
use common::*;
use data_encoding::BASE64URL_NOPAD;
use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::RecordType;
use sim_doh::{Behaviour, DohState, router};
use tower::ServiceExt;

fn state(behaviour: Behaviour) -> DohState {
    DohState {
        zone: zone(),
        behaviour,
    }
}

fn get_request(dns_param: &str, peer: Option<Ipv4Addr>) -> Request<Body> {
    let mut request = Request::get(format!("/dns-query?dns={dns_param}"))
        .header(header::ACCEPT, "application/dns-message")
        .body(Body::empty())
        .unwrap();
    if let Some(ip) = peer {
        let addr = SocketAddr::from((ip, 40_000));
        request.extensions_mut().insert(ConnectInfo(addr));
    }
    request
}

fn get(message: &Message, peer: Option<Ipv4Addr>) -> Request<Body> {
    get_request(&BASE64URL_NOPAD.encode(&message.to_vec().unwrap()), peer)
}

fn post(message: &Message, content_type: &str) -> Request<Body> {
    Request::post("/dns-query")
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(message.to_vec().unwrap()))
        .unwrap()
}

async fn call(behaviour: Behaviour, request: Request<Body>) -> Response {
    router(state(behaviour)).oneshot(request).await.unwrap()
}

async fn body(response: Response) -> Vec<u8> {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20);
    bytes.await.unwrap().to_vec()
}

/// Asserts a 200 `application/dns-message` and decodes it.
async fn dns(response: Response) -> Message {
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers().get(header::CONTENT_TYPE).unwrap();
    assert_eq!(content_type, "application/dns-message");
    Message::from_vec(&body(response).await).unwrap()
}

async fn text(response: Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    String::from_utf8(body(response).await).unwrap()
}

#[tokio::test]
async fn ecs_picks_the_location_answer() {
    let query = query_ecs(7, GW, Ipv4Addr::new(100, 65, 7, 0), 24);
    let answer = dns(call(Behaviour::Answer, get(&query, None)).await).await;
    assert_eq!(answer.metadata.id, 7);
    assert_eq!(answer.metadata.message_type, MessageType::Response);
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert!(answer.metadata.recursion_available);
    assert_eq!(answer.queries, query.queries);
    assert_eq!(a_records(&answer), [FRA_GW]);
    let echoed = ecs(&answer).unwrap();
    assert_eq!(echoed, (Ipv4Addr::new(100, 65, 7, 0).into(), 24, 24));
}

#[tokio::test]
async fn ecs_longest_prefix_wins_and_beats_the_peer() {
    let query = query_ecs(8, GW, Ipv4Addr::new(100, 65, 1, 0), 24);
    let request = get(&query, Some(NYC_CLIENT));
    let answer = dns(call(Behaviour::Answer, request).await).await;
    assert_eq!(a_records(&answer), [LON_GW]);
}

#[tokio::test]
async fn unknown_ecs_location_gets_the_fallback() {
    let query = query_ecs(9, GW, Ipv4Addr::new(203, 0, 113, 0), 24);
    let answer = dns(call(Behaviour::Answer, get(&query, Some(NYC_CLIENT))).await).await;
    assert_eq!(a_records(&answer), [FALLBACK_GW]);
}

#[tokio::test]
async fn ecs_prefix_zero_means_no_location() {
    let query = query_ecs(10, GW, Ipv4Addr::UNSPECIFIED, 0);
    let answer = dns(call(Behaviour::Answer, get(&query, Some(FRA_CLIENT))).await).await;
    assert_eq!(a_records(&answer), [FALLBACK_GW]);
}

#[tokio::test]
async fn without_ecs_the_peer_address_locates() {
    let query = query(11, GW, RecordType::A);
    let answer = dns(call(Behaviour::Answer, get(&query, Some(NYC_CLIENT))).await).await;
    assert_eq!(a_records(&answer), [NYC_GW]);
    assert!(answer.edns.is_none());
    let answer = dns(call(Behaviour::Answer, get(&query, Some(LON_CLIENT))).await).await;
    assert_eq!(a_records(&answer), [LON_GW]);
}

#[tokio::test]
async fn without_ecs_or_peer_the_fallback_answers() {
    let query = query(12, GW, RecordType::A);
    let answer = dns(call(Behaviour::Answer, get(&query, None)).await).await;
    assert_eq!(a_records(&answer), [FALLBACK_GW]);
}

#[tokio::test]
async fn post_answers_like_get() {
    let query = query_ecs(13, GW, Ipv4Addr::new(100, 64, 0, 0), 16);
    let request = post(&query, "application/dns-message");
    let response = call(Behaviour::Answer, request).await;
    let cache_control = response.headers().get(header::CACHE_CONTROL).unwrap();
    assert_eq!(cache_control, "max-age=60");
    let answer = dns(response).await;
    assert_eq!(answer.metadata.id, 13);
    assert_eq!(a_records(&answer), [NYC_GW]);
}

#[tokio::test]
async fn static_names_are_case_insensitive_and_ordered() {
    let query = query(14, "Www.Example.COM.", RecordType::A);
    let answer = dns(call(Behaviour::Answer, get(&query, None)).await).await;
    let expected = [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)];
    assert_eq!(a_records(&answer), expected);
    assert_eq!(answer.answers[0].name, query.queries[0].name().clone());
}

#[tokio::test]
async fn unknown_name_is_nxdomain() {
    let query = query(15, "nope.example.com", RecordType::A);
    let answer = dns(call(Behaviour::Answer, get(&query, None)).await).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);
    assert!(answer.answers.is_empty());
}

#[tokio::test]
async fn aaaa_of_a_known_name_is_empty() {
    let query = query(16, GW, RecordType::AAAA);
    let answer = dns(call(Behaviour::Answer, get(&query, None)).await).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert!(answer.answers.is_empty());
}

#[tokio::test]
async fn servfail_behaviour() {
    let query = query(17, GW, RecordType::A);
    let answer = dns(call(Behaviour::ServFail, get(&query, None)).await).await;
    assert_eq!(answer.metadata.id, 17);
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
    assert!(answer.answers.is_empty());
}

#[tokio::test]
async fn empty_behaviour() {
    for name in [GW, "nope.example.com"] {
        let query = query(18, name, RecordType::A);
        let answer = dns(call(Behaviour::Empty, get(&query, None)).await).await;
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        assert!(answer.answers.is_empty());
    }
}

#[tokio::test]
async fn http_error_behaviour() {
    let query = query(19, GW, RecordType::A);
    let response = call(Behaviour::HttpError(503), get(&query, None)).await;
    assert!(
        !text(response, StatusCode::SERVICE_UNAVAILABLE)
            .await
            .is_empty()
    );
    let response = call(Behaviour::HttpError(7), get(&query, None)).await;
    text(response, StatusCode::INTERNAL_SERVER_ERROR).await;
}

#[tokio::test(start_paused = true)]
async fn slow_answer_behaviour() {
    let query = query(20, GW, RecordType::A);
    let start = tokio::time::Instant::now();
    let behaviour = Behaviour::SlowAnswer(Duration::from_secs(5));
    let answer = dns(call(behaviour, get(&query, Some(FRA_CLIENT))).await).await;
    assert!(start.elapsed() >= Duration::from_secs(5));
    assert_eq!(a_records(&answer), [FRA_GW]);
}

#[tokio::test]
async fn bad_requests_are_400() {
    let response = call(Behaviour::Answer, get_request("not*base64!", None)).await;
    assert!(
        text(response, StatusCode::BAD_REQUEST)
            .await
            .contains("base64")
    );

    let garbage = BASE64URL_NOPAD.encode(b"\x00\x01garbage");
    let response = call(Behaviour::Answer, get_request(&garbage, None)).await;
    let why = text(response, StatusCode::BAD_REQUEST).await;
    assert!(why.contains("not a dns message"), "{why}");

    let request = Request::get("/dns-query?ct=x").body(Body::empty()).unwrap();
    let response = call(Behaviour::Answer, request).await;
    assert!(
        text(response, StatusCode::BAD_REQUEST)
            .await
            .contains("missing dns")
    );

    let mut response_message = query(21, GW, RecordType::A);
    response_message.metadata.message_type = MessageType::Response;
    let response = call(Behaviour::Answer, get(&response_message, None)).await;
    text(response, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn padded_base64_is_accepted() {
    let wire = ["a.test", "ab.test", "abc.test"]
        .map(|name| query(22, name, RecordType::A).to_vec().unwrap())
        .into_iter()
        .find(|wire| wire.len() % 3 != 0)
        .unwrap();
    let padded = data_encoding::BASE64URL.encode(&wire);
    assert!(padded.ends_with('='));
    let answer = dns(call(Behaviour::Answer, get_request(&padded, None)).await).await;
    assert_eq!(answer.metadata.id, 22);
}

#[tokio::test]
async fn post_with_wrong_content_type_is_415() {
    let query = query(23, GW, RecordType::A);
    let response = call(Behaviour::Answer, post(&query, "application/json")).await;
    let why = text(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
    assert!(why.contains("application/dns-message"));
}

#[tokio::test]
async fn other_methods_are_405() {
    let request = Request::builder()
        .method(Method::PUT)
        .uri("/dns-query")
        .body(Body::empty())
        .unwrap();
    let response = call(Behaviour::Answer, request).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn every_prefix_of_a_query_gets_200_or_400() {
    let wire = query_ecs(24, GW, Ipv4Addr::new(100, 65, 7, 0), 24)
        .to_vec()
        .unwrap();
    for len in 0..=wire.len() {
        let mut flipped = wire[..len].to_vec();
        if let Some(last) = flipped.last_mut() {
            *last ^= 0xA5;
        }
        for body in [&wire[..len], &flipped[..]] {
            let request = Request::post("/dns-query")
                .header(header::CONTENT_TYPE, "application/dns-message")
                .body(Body::from(body.to_vec()))
                .unwrap();
            let status = call(Behaviour::Answer, request).await.status();
            assert!(status == StatusCode::OK || status == StatusCode::BAD_REQUEST);
        }
    }
}
