//! The network the shell runs on: real tokio sockets or the simulator's.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::io::{AsyncRead, AsyncWrite};

/// The sockets the agent needs. Implemented by [`TokioNet`] for real sockets and by the
/// simulator's world for simulated ones (behind its firewalls).
pub trait Net: Clone + 'static {
    /// A connected TCP stream.
    type Tcp: AsyncRead + AsyncWrite + Unpin + 'static;
    /// A bound UDP socket.
    type Udp: Datagram + 'static;

    /// Opens a TCP connection.
    fn connect_tcp(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Tcp>>;

    /// Binds a UDP socket on an ephemeral port.
    fn bind_udp(&self) -> impl Future<Output = io::Result<Self::Udp>>;
}

/// A UDP socket.
pub trait Datagram {
    /// Sends one datagram.
    fn send_to(&self, buf: &[u8], addr: SocketAddr) -> impl Future<Output = io::Result<usize>>;
    /// Receives one datagram.
    fn recv_from(&self, buf: &mut [u8]) -> impl Future<Output = io::Result<(usize, SocketAddr)>>;
}

/// The wall clock the agent checks certificates against (the simulator gives a simulated
/// one).
#[derive(Clone)]
pub struct WallClock(Arc<dyn Fn() -> SystemTime + Send + Sync>);

impl WallClock {
    /// A clock from a function.
    pub fn new(f: impl Fn() -> SystemTime + Send + Sync + 'static) -> WallClock {
        WallClock(Arc::new(f))
    }

    /// The operating system's clock.
    #[allow(
        clippy::disallowed_methods,
        reason = "real mode runs on the real clock"
    )]
    pub fn system() -> WallClock {
        WallClock::new(SystemTime::now)
    }

    /// The time now.
    pub fn now(&self) -> SystemTime {
        (self.0)()
    }

    /// The time now in milliseconds since 1970 (negative before it).
    pub fn unix_ms(&self) -> i64 {
        match self.now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
        }
    }
}

impl std::fmt::Debug for WallClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WallClock")
    }
}

/// Real sockets through tokio.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioNet;

impl Net for TokioNet {
    type Tcp = tokio::net::TcpStream;
    type Udp = tokio::net::UdpSocket;

    async fn connect_tcp(&self, addr: SocketAddr) -> io::Result<Self::Tcp> {
        tokio::net::TcpStream::connect(addr).await
    }

    async fn bind_udp(&self) -> io::Result<Self::Udp> {
        tokio::net::UdpSocket::bind(("0.0.0.0", 0)).await
    }
}

impl Datagram for tokio::net::UdpSocket {
    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> io::Result<usize> {
        tokio::net::UdpSocket::send_to(self, buf, addr).await
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        tokio::net::UdpSocket::recv_from(self, buf).await
    }
}
