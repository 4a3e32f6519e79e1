//! The site's explicit HTTP proxy: `CONNECT host:port` (RFC 9110, section 9.3.6) to any
//! name the world knows, then bytes both ways. Other methods get `405`, unknown names
//! `502`.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use turmoil::net::{TcpListener, TcpStream};

/// The largest request head the proxy reads.
const MAX_HEAD: usize = 8 * 1024;

/// A CONNECT proxy.
#[derive(Clone)]
pub struct Proxy {
    /// Names it can reach.
    pub names: Arc<BTreeMap<String, Ipv4Addr>>,
}

impl Proxy {
    /// Serves on `port` of a turmoil host.
    pub async fn serve(self, port: u16) -> turmoil::Result {
        let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).await?;
        loop {
            let (client, _) = listener.accept().await?;
            tokio::task::spawn_local(self.clone().handle(client));
        }
    }

    async fn handle(self, mut client: TcpStream) {
        let (host, port) = match read_connect(&mut client).await {
            Some(Ok(target)) => target,
            Some(Err(answer)) => return refuse(client, answer).await,
            None => return,
        };
        let ip = host
            .parse::<Ipv4Addr>()
            .ok()
            .or_else(|| self.names.get(&host.to_ascii_lowercase()).copied());
        let Some(ip) = ip else {
            return refuse(client, BAD_GATEWAY).await;
        };
        let Ok(mut upstream) = TcpStream::connect(SocketAddr::from((ip, port))).await else {
            return refuse(client, BAD_GATEWAY).await;
        };
        if client.write_all(ESTABLISHED).await.is_err() {
            return;
        }
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}

/// The answer to a CONNECT that reached its host.
pub const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";
/// The answer when the host cannot be reached.
pub const BAD_GATEWAY: &[u8] = b"HTTP/1.1 502 Bad Gateway\r\n\r\n";

/// Reads one request head and what it asks for: `Ok((host, port))` for a CONNECT, or
/// `Err(answer)` (405 for another method, 400 for a bad target); `None` when the client
/// went away or sent a head over [`MAX_HEAD`] bytes.
pub async fn read_connect<S: AsyncRead + Unpin>(
    client: &mut S,
) -> Option<Result<(String, u16), &'static [u8]>> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return None;
        }
        head.push(client.read_u8().await.ok()?);
    }
    let text = String::from_utf8_lossy(&head);
    let mut words = text.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    if method != "CONNECT" {
        return Some(Err(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n"));
    }
    Some(
        target
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
            .ok_or(b"HTTP/1.1 400 Bad Request\r\n\r\n"),
    )
}

/// How long the proxy waits for a refused client to finish sending before it closes.
const REFUSE_LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// Answers with an error and closes cleanly: send the answer, shut the write side, and
/// read what the client still sends (a pipelined ClientHello, say) until it closes, so
/// unread bytes do not turn the close into a reset that loses the answer.
pub async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(mut client: S, answer: &[u8]) {
    if client.write_all(answer).await.is_err() {
        return;
    }
    let _ = client.shutdown().await;
    let mut sink = [0u8; 1024];
    let drain = async {
        while let Ok(n) = client.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(REFUSE_LINGER, drain).await;
}
