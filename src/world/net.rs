//! The endpoint's sockets in the simulation: turmoil's, behind the world's [`Path`], and
//! recorded for the capture when one is asked for. This is the agent's [`Net`]
//! implementation inside turmoil; the agent cannot tell it from real sockets.

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::pin::Pin;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use agent::shell::{Datagram, Net};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::path::{Path, Transport, Verdict};
use super::registry::Registry;
use crate::pcap::export::Recorder;

/// The endpoint's network.
#[derive(Clone)]
pub struct SimNet {
    path: Arc<Mutex<Path>>,
    registry: Arc<Registry>,
    inspector: Option<std::net::Ipv4Addr>,
    portal: Option<std::net::Ipv4Addr>,
    /// The site's resolver that intercepted DNS goes to.
    dns_interceptor: Option<std::net::Ipv4Addr>,
    recorder: Option<Recorder>,
    /// Whose traffic this is, for the capture's comments (`None`: the agent's).
    note: Option<Arc<str>>,
    /// Source ports for connect attempts that never got a socket (dropped or refused).
    attempt_ports: Arc<AtomicU16>,
}

impl SimNet {
    /// The endpoint's network over `path`.
    pub fn new(path: Arc<Mutex<Path>>, registry: Arc<Registry>) -> SimNet {
        SimNet {
            path,
            registry,
            inspector: None,
            portal: None,
            dns_interceptor: None,
            recorder: None,
            note: None,
            attempt_ports: Arc::new(AtomicU16::new(40_000)),
        }
    }

    /// The same network, its traffic noted as `note` in the capture (an app flow and the
    /// agent's verdict on it); without a note, traffic is the agent's own.
    pub fn noted(&self, note: String) -> SimNet {
        SimNet {
            note: Some(note.into()),
            ..self.clone()
        }
    }

    /// Sends intercepted TLS to the inspection proxy at `proxy`.
    pub fn with_inspector(mut self, proxy: std::net::Ipv4Addr) -> SimNet {
        self.inspector = Some(proxy);
        self
    }

    /// Sends redirected TCP 80/443 to the captive portal at `portal`.
    pub fn with_portal(mut self, portal: std::net::Ipv4Addr) -> SimNet {
        self.portal = Some(portal);
        self
    }

    /// Sends intercepted DNS to the site's resolver at `resolver`.
    pub fn with_dns_interceptor(mut self, resolver: std::net::Ipv4Addr) -> SimNet {
        self.dns_interceptor = Some(resolver);
        self
    }

    /// Where intercepted DNS for `addr` really goes.
    fn intercepted(&self, addr: SocketAddr) -> SocketAddr {
        self.dns_interceptor
            .map_or(addr, |ip| SocketAddr::from((ip, addr.port())))
    }

    /// Records every connect, segment and datagram into `recorder`.
    pub fn with_recorder(mut self, recorder: Recorder) -> SimNet {
        self.recorder = Some(recorder);
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

    fn udp_lost(&self, len: usize) -> bool {
        self.path
            .lock()
            .map(|mut p| p.udp_lost(len).is_some())
            .unwrap_or(false)
    }

    fn attempt(&self, addr: SocketAddr, reset: bool) {
        if let Some(rec) = &self.recorder {
            let port = self.attempt_ports.fetch_add(1, Ordering::Relaxed);
            let local = SocketAddr::from((self.registry_client(), port));
            rec.attempt(now(), local, addr, reset, self.note.clone());
        }
    }

    fn registry_client(&self) -> std::net::Ipv4Addr {
        self.registry
            .iter()
            .find(|(_, h)| h.role == super::registry::Role::Endpoint)
            .map(|(ip, _)| *ip)
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED)
    }

    fn established(&self, stream: turmoil::net::TcpStream, peer: SocketAddr) -> SimTcp {
        let record = self.recorder.clone().and_then(|rec| {
            let local = stream.local_addr().ok()?;
            rec.connected(now(), local, peer, self.note.clone());
            Some((rec, local, peer))
        });
        SimTcp { stream, record }
    }
}

impl Net for SimNet {
    type Tcp = SimTcp;
    type Udp = SimUdp;

    async fn connect_tcp(&self, addr: SocketAddr) -> io::Result<Self::Tcp> {
        match self.verdict(Transport::Tcp, addr)? {
            Verdict::Pass => match turmoil::net::TcpStream::connect(addr).await {
                Ok(stream) => Ok(self.established(stream, addr)),
                Err(e) => {
                    // Nothing listens there: the peer answers the SYN with a reset.
                    self.attempt(addr, true);
                    Err(e)
                }
            },
            // A silent drop: the SYN goes nowhere and the connect hangs until the
            // caller gives up.
            Verdict::Drop { .. } => {
                self.attempt(addr, false);
                std::future::pending().await
            }
            Verdict::Refuse { .. } => {
                self.attempt(addr, true);
                Err(io::ErrorKind::ConnectionRefused.into())
            }
            // The inspection proxy terminates the TLS and re-originates it; on the
            // laptop the connection still looks like one to `addr`.
            Verdict::Inspect { .. } => {
                let to = self
                    .inspector
                    .map_or(addr, |proxy| SocketAddr::from((proxy, 443)));
                let stream = turmoil::net::TcpStream::connect(to).await?;
                Ok(self.established(stream, addr))
            }
            // The site's resolver answers; the laptop still sees `addr`.
            Verdict::InterceptDns { .. } => {
                let stream = turmoil::net::TcpStream::connect(self.intercepted(addr)).await?;
                Ok(self.established(stream, addr))
            }
            Verdict::Redirect { .. } => {
                let to = self
                    .portal
                    .map_or(addr, |portal| SocketAddr::from((portal, addr.port())));
                let stream = turmoil::net::TcpStream::connect(to).await?;
                Ok(self.established(stream, addr))
            }
        }
    }

    async fn bind_udp(&self) -> io::Result<Self::Udp> {
        let socket =
            turmoil::net::UdpSocket::bind(SocketAddrV4::new([0, 0, 0, 0].into(), 0)).await?;
        Ok(SimUdp {
            socket,
            net: self.clone(),
            intercepted: Mutex::new(BTreeMap::new()),
        })
    }
}

/// The simulated wall time since the start of the run.
fn now() -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

/// A TCP stream of the endpoint, recorded when a capture is on.
pub struct SimTcp {
    stream: turmoil::net::TcpStream,
    record: Option<(Recorder, SocketAddr, SocketAddr)>,
}

impl AsyncRead for SimTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.stream).poll_read(cx, buf);
        if let (Poll::Ready(Ok(())), Some((rec, local, peer))) = (&poll, &self.record) {
            let got = &buf.filled()[before..];
            if !got.is_empty() {
                rec.data(now(), *local, *peer, false, got);
            }
        }
        poll
    }
}

impl AsyncWrite for SimTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write(cx, data);
        if let (Poll::Ready(Ok(n)), Some((rec, local, peer))) = (&poll, &self.record) {
            rec.data(now(), *local, *peer, true, &data[..*n]);
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl Drop for SimTcp {
    fn drop(&mut self) {
        if let Some((rec, local, peer)) = &self.record {
            rec.closed(now(), *local, *peer);
        }
    }
}

/// A UDP socket on the endpoint, behind the path.
pub struct SimUdp {
    socket: turmoil::net::UdpSocket,
    net: SimNet,
    /// For intercepted DNS: the address answers come from -> the server the datagram
    /// was sent to (the interceptor answers in its name).
    intercepted: Mutex<BTreeMap<SocketAddr, SocketAddr>>,
}

impl Datagram for SimUdp {
    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> io::Result<usize> {
        let verdict = self.net.verdict(Transport::Udp, addr)?;
        if let (Some(rec), Ok(local)) = (&self.net.recorder, self.socket.local_addr()) {
            let local = SocketAddr::from((self.net.registry_client(), local.port()));
            rec.datagram(now(), local, addr, buf, self.net.note.clone());
        }
        match verdict {
            Verdict::Pass | Verdict::Inspect { .. } if self.net.udp_lost(buf.len()) => {
                Ok(buf.len())
            }
            Verdict::Pass | Verdict::Inspect { .. } => self.socket.send_to(buf, addr).await,
            Verdict::InterceptDns { .. } => {
                let to = self.net.intercepted(addr);
                if let Ok(mut map) = self.intercepted.lock() {
                    map.insert(to, addr);
                }
                self.socket.send_to(buf, to).await
            }
            Verdict::Drop { .. } | Verdict::Redirect { .. } => Ok(buf.len()),
            Verdict::Refuse { .. } => Err(io::ErrorKind::ConnectionRefused.into()),
        }
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, from) = self.socket.recv_from(buf).await?;
        let from = self
            .intercepted
            .lock()
            .ok()
            .and_then(|map| map.get(&from).copied())
            .unwrap_or(from);
        if let (Some(rec), Ok(local)) = (&self.net.recorder, self.socket.local_addr()) {
            let local = SocketAddr::from((self.net.registry_client(), local.port()));
            rec.datagram(now(), from, local, &buf[..n], self.net.note.clone());
        }
        Ok((n, from))
    }
}
