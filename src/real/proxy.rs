//! The site's explicit HTTP proxy on real sockets: `CONNECT host:port` (RFC 9110, section
//! 9.3.6) to a host of this world, then bytes both ways; the same answers as the
//! simulated proxy (`world::proxy`): `405` for other methods, `400` for a bad target,
//! `502` for a host it cannot reach.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::dial::LoopbackDialer;

/// The largest request head the proxy reads.
const MAX_HEAD: usize = 8 * 1024;

/// Serves CONNECT on every connection `listener` accepts. Call inside a `LocalSet`.
pub async fn serve(listener: TcpListener, dialer: LoopbackDialer) -> std::io::Result<()> {
    loop {
        let (client, _) = listener.accept().await?;
        tokio::task::spawn_local(handle(client, dialer.clone()));
    }
}

async fn handle(mut client: TcpStream, dialer: LoopbackDialer) {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return;
        }
        match client.read_u8().await {
            Ok(b) => head.push(b),
            Err(_) => return,
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut words = text.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if method != "CONNECT" {
        let _ = client
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            .await;
        return;
    }
    let Some((host, port)) = target
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
    else {
        let _ = client.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        return;
    };
    let upstream = match dialer.resolve(host, port) {
        Ok(addr) => TcpStream::connect(addr).await.ok(),
        Err(_) => None,
    };
    let Some(mut upstream) = upstream else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await
        .is_err()
    {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}
