//! The endpoint's sockets in the simulation: turmoil's, behind the world's [`Path`].
//! This is the agent's [`Net`] implementation inside turmoil; the agent cannot tell it
//! from real sockets.

use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};

use agent::shell::{Datagram, Net};

use super::path::{Path, Transport, Verdict};
use super::registry::Registry;

/// The endpoint's network.
#[derive(Clone)]
pub struct SimNet {
    path: Arc<Mutex<Path>>,
    registry: Arc<Registry>,
    inspector: Option<std::net::Ipv4Addr>,
}

impl SimNet {
    /// The endpoint's network over `path`.
    pub fn new(path: Arc<Mutex<Path>>, registry: Arc<Registry>) -> SimNet {
        SimNet {
            path,
            registry,
            inspector: None,
        }
    }

    /// Sends intercepted TLS to the inspection proxy at `proxy`.
    pub fn with_inspector(mut self, proxy: std::net::Ipv4Addr) -> SimNet {
        self.inspector = Some(proxy);
        self
    }

    fn verdict(&self, transport: Transport, addr: SocketAddr) -> io::Result<Verdict> {
        let SocketAddr::V4(v4) = addr else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the world is IPv4 only",
            ));
        };
        let path = self
            .path
            .lock()
            .map_err(|_| io::Error::other("network path lock poisoned"))?;
        Ok(path.check(&self.registry, transport, *v4.ip(), v4.port()))
    }
}

impl SimNet {
    fn udp_lost(&self, len: usize) -> bool {
        self.path
            .lock()
            .map(|mut p| p.udp_lost(len).is_some())
            .unwrap_or(false)
    }
}

impl Net for SimNet {
    type Tcp = turmoil::net::TcpStream;
    type Udp = SimUdp;

    async fn connect_tcp(&self, addr: SocketAddr) -> io::Result<Self::Tcp> {
        match self.verdict(Transport::Tcp, addr)? {
            Verdict::Pass => turmoil::net::TcpStream::connect(addr).await,
            // A silent drop: the SYN goes nowhere and the connect hangs until the
            // caller gives up.
            Verdict::Drop { .. } => std::future::pending().await,
            Verdict::Refuse { .. } => Err(io::ErrorKind::ConnectionRefused.into()),
            // The inspection proxy terminates the TLS and re-originates it.
            Verdict::Inspect { .. } => match self.inspector {
                Some(proxy) => {
                    turmoil::net::TcpStream::connect(SocketAddr::from((proxy, 443))).await
                }
                None => turmoil::net::TcpStream::connect(addr).await,
            },
        }
    }

    async fn bind_udp(&self) -> io::Result<Self::Udp> {
        let socket =
            turmoil::net::UdpSocket::bind(SocketAddrV4::new([0, 0, 0, 0].into(), 0)).await?;
        Ok(SimUdp {
            socket,
            net: self.clone(),
        })
    }
}

/// A UDP socket on the endpoint, behind the path.
pub struct SimUdp {
    socket: turmoil::net::UdpSocket,
    net: SimNet,
}

impl Datagram for SimUdp {
    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> io::Result<usize> {
        match self.net.verdict(Transport::Udp, addr)? {
            Verdict::Pass | Verdict::Inspect { .. } if self.net.udp_lost(buf.len()) => {
                Ok(buf.len())
            }
            Verdict::Pass | Verdict::Inspect { .. } => self.socket.send_to(buf, addr).await,
            Verdict::Drop { .. } => Ok(buf.len()),
            Verdict::Refuse { .. } => Err(io::ErrorKind::ConnectionRefused.into()),
        }
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.socket.recv_from(buf).await
    }
}
