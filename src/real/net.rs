//! The agent's sockets in real mode: tokio's, refusing every address outside
//! 127.0.0.0/8, so that a stray answer can never send the agent off this machine.

use std::io;
use std::net::SocketAddr;

use agent::shell::{Datagram, Net};

/// Real tokio sockets, loopback only.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoopbackNet;

/// A UDP socket that sends to loopback only.
#[derive(Debug)]
pub struct LoopbackUdp(tokio::net::UdpSocket);

impl Net for LoopbackNet {
    type Tcp = tokio::net::TcpStream;
    type Udp = LoopbackUdp;

    async fn connect_tcp(&self, addr: SocketAddr) -> io::Result<Self::Tcp> {
        check(addr)?;
        tokio::net::TcpStream::connect(addr).await
    }

    async fn bind_udp(&self) -> io::Result<Self::Udp> {
        let socket = tokio::net::UdpSocket::bind(("127.0.0.1", 0)).await?;
        Ok(LoopbackUdp(socket))
    }
}

impl Datagram for LoopbackUdp {
    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> io::Result<usize> {
        check(addr)?;
        self.0.send_to(buf, addr).await
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.0.recv_from(buf).await
    }
}

fn check(addr: SocketAddr) -> io::Result<()> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{addr} is not on loopback: real mode stays on 127.0.0.0/8"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_anything_off_loopback() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let err = LoopbackNet
                .connect_tcp("8.8.8.8:443".parse().unwrap())
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
            let udp = LoopbackNet.bind_udp().await.unwrap();
            let err = udp
                .send_to(b"x", "10.0.0.53:53".parse().unwrap())
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        });
    }
}
