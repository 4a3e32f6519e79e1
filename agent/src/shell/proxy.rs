//! HTTP CONNECT (RFC 9110, section 9.3.6) through an explicit proxy.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::tls::classify;
use crate::core::NetError;

/// The largest response head the client reads before it gives up on the proxy.
const MAX_HEAD: usize = 8 * 1024;

/// Asks the proxy on `stream` for a tunnel to `host:port`; on success the stream carries
/// the tunnel.
pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    host: &str,
    port: u16,
) -> Result<(), NetError> {
    let request = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| classify(&e))?;
    // Read byte by byte so nothing past the head (the tunnel's first bytes) is taken.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return Err(NetError::Other("proxy answer head too long".into()));
        }
        let byte = stream.read_u8().await.map_err(|e| classify(&e))?;
        head.push(byte);
    }
    let text = String::from_utf8_lossy(&head);
    let status = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("");
    if status == "200" {
        Ok(())
    } else {
        let line = text.lines().next().unwrap_or("").trim().to_string();
        Err(NetError::Other(format!(
            "proxy refused CONNECT {host}:{port}: {line}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepts_200_and_reports_the_rest() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let server = tokio::spawn(async move {
            let mut buf = [0u8; 256];
            let n = b.read(&mut buf).await.unwrap();
            assert!(
                String::from_utf8_lossy(&buf[..n]).starts_with("CONNECT gw.example:443 HTTP/1.1")
            );
            b.write_all(b"HTTP/1.1 200 Connection established\r\n\r\nTLS")
                .await
                .unwrap();
        });
        connect(&mut a, "gw.example", 443).await.unwrap();
        let mut rest = [0u8; 3];
        a.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"TLS", "bytes after the head stay in the stream");
        server.await.unwrap();

        let (mut a, mut b) = tokio::io::duplex(1024);
        tokio::spawn(async move {
            let mut buf = [0u8; 256];
            let _ = b.read(&mut buf).await;
            let _ = b.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n").await;
        });
        let err = connect(&mut a, "gw.example", 443).await.unwrap_err();
        assert!(err.to_string().contains("403"), "{err}");
    }
}
