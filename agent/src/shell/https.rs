//! One DNS-over-HTTPS exchange (RFC 8484): TCP, TLS, HTTP/1.1 POST of an
//! `application/dns-message`, the answer body.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

use super::net::Net;
use super::tls::classify;
use crate::core::{DohOutcome, NetError};

/// The media type of RFC 8484.
pub const DNS_MESSAGE: &str = "application/dns-message";

/// Runs one exchange to completion (the core's timer bounds it).
pub async fn exchange<N: Net>(
    net: N,
    tls: Arc<ClientConfig>,
    server_name: String,
    addr: SocketAddr,
    body: Vec<u8>,
) -> DohOutcome {
    match try_exchange(net, tls, &server_name, addr, body).await {
        Ok(outcome) => outcome,
        Err(err) => DohOutcome::Failed(err),
    }
}

async fn try_exchange<N: Net>(
    net: N,
    tls: Arc<ClientConfig>,
    server_name: &str,
    addr: SocketAddr,
    body: Vec<u8>,
) -> Result<DohOutcome, NetError> {
    let tcp = net.connect_tcp(addr).await.map_err(|e| classify(&e))?;
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|e| NetError::Other(format!("bad server name {server_name}: {e}")))?;
    let stream = TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| classify(&e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| NetError::Other(e.to_string()))?;
    let driver = tokio::task::spawn_local(async move {
        let _ = conn.await;
    });
    let request = Request::post("/dns-query")
        .header(HOST, server_name)
        .header(CONTENT_TYPE, DNS_MESSAGE)
        .header(ACCEPT, DNS_MESSAGE)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| NetError::Other(e.to_string()))?;
    let result = async {
        let response = sender.send_request(request).await.map_err(hyper_error)?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(hyper_error)?
            .to_bytes()
            .to_vec();
        Ok(DohOutcome::Response { status, body })
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
