//! DNS over HTTPS, RFC 8484: `GET /dns-query?dns=<base64url>` and `POST /dns-query` with
//! an `application/dns-message` body, answered as `application/dns-message`.
//!
//! The client's location comes from the EDNS Client Subnet option (RFC 7871) when the
//! query has one, otherwise from the peer address the world puts in the request
//! extensions as [`ConnectInfo<SocketAddr>`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use data_encoding::BASE64URL_NOPAD;
use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};

use crate::{Behaviour, Zone};

/// The media type of DNS messages on the wire (RFC 8484 section 6).
pub const DNS_MESSAGE: &str = "application/dns-message";

/// The largest DNS message (RFC 8484 section 6: up to 65535 bytes).
const MAX_MESSAGE: usize = 65_535;

/// What the DoH router serves from.
#[derive(Clone, Debug)]
pub struct DohState {
    /// The names it answers.
    pub zone: Arc<Zone>,
    /// How it treats every request.
    pub behaviour: Behaviour,
}

/// The DoH server: `GET` and `POST` on `/dns-query`.
///
/// Malformed requests get 400 with a text body saying what was wrong (415 for a `POST`
/// with another content type); other methods get 405. It never panics on any input.
pub fn router(state: DohState) -> Router {
    Router::new()
        .route("/dns-query", get(dns_query).post(dns_query))
        .with_state(state)
}

async fn dns_query(State(state): State<DohState>, request: Request) -> Response {
    if let Behaviour::HttpError(code) = state.behaviour {
        // A 1xx is not a final response: hyper would not send it as one.
        let status = StatusCode::from_u16(code)
            .ok()
            .filter(|s| !s.is_informational())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (
            status,
            format!("simulated http error {}\n", status.as_u16()),
        )
            .into_response();
    }
    if state.behaviour == Behaviour::Malformed {
        let headers = [(axum::http::header::CONTENT_TYPE, DNS_MESSAGE)];
        return (headers, "this is not a dns message").into_response();
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let wire = match read_query(request).await {
        Ok(wire) => wire,
        Err((status, why)) => return (status, format!("{why}\n")).into_response(),
    };
    let query = match Message::from_vec(&wire) {
        Ok(query) if query.metadata.message_type == MessageType::Query => query,
        Ok(_) => return bad_request("the dns message is a response, not a query"),
        Err(e) => return bad_request(&format!("not a dns message: {e}")),
    };

    let location = match client_subnet(&query) {
        Some(subnet) => subnet.and_then(|ip| state.zone.location_of(ip)),
        None => match peer {
            Some(IpAddr::V4(ip)) => state.zone.location_of(ip),
            Some(IpAddr::V6(ip)) => ip
                .to_ipv4_mapped()
                .and_then(|ip| state.zone.location_of(ip)),
            None => None,
        },
    };
    let response = state
        .behaviour
        .apply(state.zone.answer(&query, location.as_deref()));
    state.behaviour.delay().await;
    dns_response(&response)
}

/// The DNS message of a GET (`dns` parameter) or POST (body) request.
async fn read_query(request: Request) -> Result<Vec<u8>, (StatusCode, String)> {
    let bad = |why: &str| (StatusCode::BAD_REQUEST, why.to_owned());
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        let query = request.uri().query().unwrap_or("");
        let Some(dns) = query.split('&').find_map(|pair| pair.strip_prefix("dns=")) else {
            return Err(bad("missing dns query parameter"));
        };
        // RFC 8484 says no padding; accept it anyway, percent-encoded or not.
        let dns = dns.trim_end_matches("%3D").trim_end_matches("%3d");
        let dns = dns.trim_end_matches('=');
        return match BASE64URL_NOPAD.decode(dns.as_bytes()) {
            Ok(wire) if wire.is_empty() => Err(bad("empty dns query parameter")),
            Ok(wire) => Ok(wire),
            Err(e) => Err(bad(&format!("dns query parameter is not base64url: {e}"))),
        };
    }

    let content_type = request.headers().get(header::CONTENT_TYPE);
    let media_type = content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if !media_type.is_some_and(|t| t.eq_ignore_ascii_case(DNS_MESSAGE)) {
        let why = format!("content-type must be {DNS_MESSAGE}");
        return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, why));
    }
    match axum::body::to_bytes(request.into_body(), MAX_MESSAGE).await {
        Ok(body) if body.is_empty() => Err(bad("empty body")),
        Ok(body) => Ok(body.to_vec()),
        Err(_) => Err(bad("body unreadable or longer than 65535 bytes")),
    }
}

/// The query's client subnet: `None` without the option, `Some(None)` when it carries
/// no usable IPv4 address (an IPv6 family, or source prefix 0, by which the client asks
/// that its address not be used, RFC 7871 section 7.1.2).
fn client_subnet(query: &Message) -> Option<Option<std::net::Ipv4Addr>> {
    let edns = query.edns.as_ref()?;
    let Some(EdnsOption::Subnet(subnet)) = edns.option(EdnsCode::Subnet) else {
        return None;
    };
    Some(match subnet.addr() {
        IpAddr::V4(ip) if subnet.source_prefix() > 0 => Some(ip),
        _ => None,
    })
}

/// A 200 with the encoded message, cacheable for its smallest answer TTL (RFC 8484
/// section 5.1).
fn dns_response(response: &Message) -> Response {
    let wire = match response.to_vec() {
        Ok(wire) => wire,
        Err(e) => {
            let why = format!("cannot encode the answer: {e}\n");
            return (StatusCode::INTERNAL_SERVER_ERROR, why).into_response();
        }
    };
    let mut http = Response::new(Body::from(Bytes::from(wire)));
    let headers = http.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(DNS_MESSAGE));
    if let Some(ttl_s) = response.answers.iter().map(|r| r.ttl).min() {
        let value = HeaderValue::from_str(&format!("max-age={ttl_s}"));
        if let Ok(value) = value {
            headers.insert(header::CACHE_CONTROL, value);
        }
    }
    http
}

fn bad_request(why: &str) -> Response {
    (StatusCode::BAD_REQUEST, format!("{why}\n")).into_response()
}
