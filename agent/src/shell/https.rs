//! One HTTPS exchange: TCP, TLS, an HTTP/1.1 request, the whole answer body. Used for
//! DNS over HTTPS (RFC 8484: POST of an `application/dns-message`) and the GSLB API.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

use super::net::Net;
use super::tls::classify;
use crate::core::{HttpOutcome, NetError};

/// The media type of RFC 8484.
pub const DNS_MESSAGE: &str = "application/dns-message";

/// One request: method, path, and for a POST its body and media type.
#[derive(Debug, Clone)]
pub struct Request {
    /// Where to connect.
    pub addr: SocketAddr,
    /// TLS server name and HTTP host.
    pub server_name: String,
    /// `GET` or `POST`.
    pub method: &'static str,
    /// Path and query.
    pub path: String,
    /// Media type of the body (and of the accepted answer).
    pub media_type: &'static str,
    /// The body (empty for a GET).
    pub body: Vec<u8>,
}

impl Request {
    /// The DNS-over-HTTPS POST of RFC 8484.
    pub fn doh(server_name: String, addr: SocketAddr, query: Vec<u8>) -> Request {
        Request {
            addr,
            server_name,
            method: "POST",
            path: "/dns-query".to_string(),
            media_type: DNS_MESSAGE,
            body: query,
        }
    }

    /// A JSON request to an API (the GSLB service): a GET with an empty body, or a POST.
    pub fn json(
        method: &'static str,
        server_name: String,
        addr: SocketAddr,
        path: String,
        body: Vec<u8>,
    ) -> Request {
        Request {
            addr,
            server_name,
            method,
            path,
            media_type: "application/json",
            body,
        }
    }
}

/// Runs one exchange to completion (the core's timer bounds it).
pub async fn exchange<N: Net>(net: N, tls: Arc<ClientConfig>, request: Request) -> HttpOutcome {
    match try_exchange(net, tls, request).await {
        Ok(outcome) => outcome,
        Err(err) => HttpOutcome::Failed(err),
    }
}

async fn try_exchange<N: Net>(
    net: N,
    tls: Arc<ClientConfig>,
    request: Request,
) -> Result<HttpOutcome, NetError> {
    let Request {
        addr,
        server_name,
        method,
        path,
        media_type,
        body,
    } = request;
    let server_name = server_name.as_str();
    let tcp = net.connect_tcp(addr).await.map_err(|e| classify(&e))?;
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|e| NetError::Other(format!("bad server name {server_name}: {e}")))?;
    let stream = TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| classify(&e))?;
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(HOST, server_name)
        .header(CONTENT_TYPE, media_type)
        .header(ACCEPT, media_type)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| NetError::Other(e.to_string()))?;
    send(stream, request, usize::MAX).await
}

/// One HTTP/1.1 request over `io` (plain or TLS): the status and the whole body, read up
/// to `limit` bytes.
pub(super) async fn send<S>(
    io: S,
    request: hyper::Request<Full<Bytes>>,
    limit: usize,
) -> Result<HttpOutcome, NetError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| NetError::Other(e.to_string()))?;
    let driver = tokio::task::spawn_local(async move {
        let _ = conn.await;
    });
    let result = async {
        let response = sender.send_request(request).await.map_err(hyper_error)?;
        let status = response.status().as_u16();
        let body = http_body_util::Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map_err(|e| NetError::Other(format!("reading the body: {e}")))?
            .to_bytes()
            .to_vec();
        Ok(HttpOutcome::Response { status, body })
    }
    .await;
    driver.abort();
    result
}

fn hyper_error(err: hyper::Error) -> NetError {
    use std::error::Error;
    let mut source = err.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return classify(io);
        }
        source = s.source();
    }
    if err.is_incomplete_message() {
        NetError::Closed
    } else {
        NetError::Other(err.to_string())
    }
}
