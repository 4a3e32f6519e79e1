//! One query to the local resolver over UDP or TCP 53 (RFC 1035; TCP uses a two-byte
//! length prefix, section 4.2.2).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::net::{Datagram, Net};
use super::tls::classify;
use crate::core::{DnsTransport, LdnsOutcome, NetError};

/// Sends `query` and waits for the answer from `addr` (the core's timer bounds it).
pub async fn query<N: Net>(
    net: N,
    addr: SocketAddr,
    transport: DnsTransport,
    query: Vec<u8>,
) -> LdnsOutcome {
    let result = match transport {
        DnsTransport::Udp => udp(net, addr, &query).await,
        DnsTransport::Tcp => tcp(net, addr, &query).await,
    };
    match result {
        Ok(bytes) => LdnsOutcome::Response(bytes),
        Err(err) => LdnsOutcome::Failed(err),
    }
}

async fn udp<N: Net>(net: N, addr: SocketAddr, query: &[u8]) -> Result<Vec<u8>, NetError> {
    let socket = net.bind_udp().await.map_err(|e| classify(&e))?;
    socket
        .send_to(query, addr)
        .await
        .map_err(|e| classify(&e))?;
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, from) = socket.recv_from(&mut buf).await.map_err(|e| classify(&e))?;
        if from == addr {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn tcp<N: Net>(net: N, addr: SocketAddr, query: &[u8]) -> Result<Vec<u8>, NetError> {
    let mut stream = net.connect_tcp(addr).await.map_err(|e| classify(&e))?;
    let len = u16::try_from(query.len()).map_err(|_| NetError::Other("query too long".into()))?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(query);
    stream.write_all(&out).await.map_err(|e| classify(&e))?;
    let n = stream.read_u16().await.map_err(|e| classify(&e))?;
    let mut buf = vec![0u8; usize::from(n)];
    stream
        .read_exact(&mut buf)
        .await
        .map_err(|e| classify(&e))?;
    Ok(buf)
}
