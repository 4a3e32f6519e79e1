//! One plain HTTP/1.1 GET of an `http://` URL, its host resolved through the local
//! resolver as the OS would: PAC files (WPAD's `wpad.<domain>`), the on-prem HTTP probe
//! and the captive-portal check.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::HOST;

use super::ldns;
use super::net::{Net, WallClock};
use super::tls::classify;
use crate::core::dns::{self, Answer};
use crate::core::{DnsTransport, HttpOutcome, LdnsOutcome, NetError, OpId, PacFetched};
use crate::pac::MAX_SCRIPT;

/// Fetches the PAC file at `url` (the core's timer bounds the whole fetch).
pub async fn fetch_pac<N: Net>(
    net: N,
    ldns_addr: SocketAddr,
    op: OpId,
    url: String,
    clock: WallClock,
) -> PacFetched {
    PacFetched {
        outcome: get(net, ldns_addr, op, &url).await,
        wall_unix_ms: clock.unix_ms(),
    }
}

/// GETs `url` (the core's timer bounds it); the body is read up to [`MAX_SCRIPT`].
pub async fn get<N: Net>(net: N, ldns_addr: SocketAddr, op: OpId, url: &str) -> HttpOutcome {
    match try_fetch(net, ldns_addr, op, url).await {
        Ok(outcome) => outcome,
        Err(err) => HttpOutcome::Failed(err),
    }
}

async fn try_fetch<N: Net>(
    net: N,
    ldns_addr: SocketAddr,
    op: OpId,
    url: &str,
) -> Result<HttpOutcome, NetError> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| NetError::Other(format!("bad URL {url}: {e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(NetError::Other(format!(
            "URL {url} is not http:// (the only scheme of PAC files and probes)"
        )));
    }
    let host = uri
        .host()
        .ok_or_else(|| NetError::Other(format!("URL {url} has no host")))?
        .trim_matches(['[', ']']);
    let port = uri.port_u16().unwrap_or(80);
    let ip = match host.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => resolve(net.clone(), ldns_addr, op, host).await?,
    };
    let tcp = net
        .connect_tcp(SocketAddr::new(ip, port))
        .await
        .map_err(|e| classify(&e))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let request = hyper::Request::builder()
        .method("GET")
        .uri(path)
        .header(HOST, uri.authority().map_or(host, |a| a.as_str()))
        .body(Full::new(Bytes::new()))
        .map_err(|e| NetError::Other(e.to_string()))?;
    super::https::send(tcp, request, MAX_SCRIPT).await
}

/// One A query for `host` to the local resolver.
async fn resolve<N: Net>(
    net: N,
    ldns_addr: SocketAddr,
    op: OpId,
    host: &str,
) -> Result<IpAddr, NetError> {
    // The id only has to match its answer; the operation id keeps it deterministic.
    let id = (op.0 & 0xffff) as u16;
    let query = dns::build_query(id, host, None);
    let bytes = match ldns::query(net, ldns_addr, DnsTransport::Udp, query).await {
        LdnsOutcome::Response(bytes) => bytes,
        LdnsOutcome::Failed(err) => {
            return Err(NetError::Other(format!(
                "{host} does not resolve: the local resolver {ldns_addr} failed: {err}"
            )));
        }
    };
    match dns::read_answer(id, &bytes) {
        Ok(Answer::Addresses(ips)) => ips
            .first()
            .map(|ip| IpAddr::V4(*ip))
            .ok_or_else(|| NetError::Other(format!("{host} does not resolve"))),
        Ok(Answer::Rcode(rcode)) => Err(NetError::Other(format!(
            "{host} does not resolve ({rcode})"
        ))),
        Ok(Answer::Empty | Answer::Truncated) => Err(NetError::Other(format!(
            "{host} does not resolve (no address)"
        ))),
        Err(e) => Err(NetError::Other(format!("{host} does not resolve: {e}"))),
    }
}
