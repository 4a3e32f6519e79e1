//! The site's explicit HTTP proxy on real sockets: `CONNECT host:port` (RFC 9110, section
//! 9.3.6) to a host of this world, then bytes both ways; the same answers as the
//! simulated proxy (`world::proxy`): `405` for other methods, `400` for a bad target,
//! `502` for a host it cannot reach.

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::dial::LoopbackDialer;
use crate::world::proxy::{BAD_GATEWAY, ESTABLISHED, read_connect, refuse};

/// Serves CONNECT on every connection `listener` accepts. Call inside a `LocalSet`.
pub async fn serve(listener: TcpListener, dialer: LoopbackDialer) -> std::io::Result<()> {
    loop {
        let (client, _) = listener.accept().await?;
        tokio::task::spawn_local(handle(client, dialer.clone()));
    }
}

async fn handle(mut client: TcpStream, dialer: LoopbackDialer) {
    let (host, port) = match read_connect(&mut client).await {
        Some(Ok(target)) => target,
        Some(Err(answer)) => return refuse(client, answer).await,
        None => return,
    };
    let upstream = match dialer.resolve(&host, port) {
        Ok(addr) => TcpStream::connect(addr).await.ok(),
        Err(_) => None,
    };
    let Some(mut upstream) = upstream else {
        return refuse(client, BAD_GATEWAY).await;
    };
    if client.write_all(ESTABLISHED).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}
