//! Binding real-mode services: the real port first, an ephemeral one when the real port
//! is privileged and this process may not bind it; a port in use is an error.
//!
//! A silent (partitioned) TCP service listens with a backlog of zero whose only slot is
//! taken by a connection of our own: the kernel then drops every SYN, so a client's
//! connect hangs as it does across a firewall that drops silently. A silent UDP service
//! binds and never reads.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};

/// A listening TCP service, live or silent.
#[derive(Debug)]
pub struct Tcp {
    /// The listener (never accepted from when silent).
    pub listener: TcpListener,
    /// The port it listens on.
    pub port: u16,
    /// Holds the only slot of a silent listener's queue.
    filler: Option<TcpStream>,
}

impl Tcp {
    /// Whether nothing will ever be answered here.
    pub fn is_silent(&self) -> bool {
        self.filler.is_some()
    }
}

/// Why a service could not listen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// Something else listens there.
    #[error(
        "{addr} ({what}) is already in use: stop what listens there (another `steerlab serve`?) or pick another --base"
    )]
    InUse {
        /// The address.
        addr: SocketAddr,
        /// The service.
        what: String,
    },
    /// Any other failure.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Io {
        /// The address.
        addr: SocketAddr,
        /// The service.
        what: String,
        /// Why.
        source: io::Error,
    },
}

/// Binds TCP `ip:port`, or an ephemeral port when `port` is privileged and refused.
pub async fn tcp(ip: Ipv4Addr, port: u16, silent: bool, what: &str) -> Result<Tcp, BindError> {
    match tcp_exact(ip, port, silent, what).await {
        Err(BindError::Io { source, .. }) if source.kind() == io::ErrorKind::PermissionDenied => {
            tcp_exact(ip, 0, silent, what).await
        }
        other => other,
    }
}

/// Binds TCP `ip:port` exactly (0: an ephemeral port).
pub async fn tcp_exact(
    ip: Ipv4Addr,
    port: u16,
    silent: bool,
    what: &str,
) -> Result<Tcp, BindError> {
    let addr = SocketAddr::from((ip, port));
    let error = |source: io::Error| classify(addr, what, source);
    let socket = TcpSocket::new_v4().map_err(error)?;
    socket.set_reuseaddr(true).map_err(error)?;
    socket.bind(addr).map_err(error)?;
    let listener = socket
        .listen(if silent { 0 } else { 1024 })
        .map_err(error)?;
    let bound = listener.local_addr().map_err(error)?;
    let filler = if silent {
        Some(TcpStream::connect(bound).await.map_err(error)?)
    } else {
        None
    };
    Ok(Tcp {
        listener,
        port: bound.port(),
        filler,
    })
}

/// Binds UDP `ip:port` exactly (0: an ephemeral port).
pub async fn udp_exact(ip: Ipv4Addr, port: u16, what: &str) -> Result<UdpSocket, BindError> {
    let addr = SocketAddr::from((ip, port));
    UdpSocket::bind(addr)
        .await
        .map_err(|e| classify(addr, what, e))
}

/// TCP and UDP on one port of each of `ips` (gateways: the agent knows one gateway port;
/// DNS: one port for both): `port` when allowed, else one ephemeral port free on all.
pub async fn tcp_udp(
    ips: &[(Ipv4Addr, bool)],
    port: u16,
    what: &str,
) -> Result<(Vec<(Tcp, UdpSocket)>, u16), BindError> {
    match tcp_udp_at(ips, port, what).await {
        Err(BindError::Io { source, .. }) if source.kind() == io::ErrorKind::PermissionDenied => {}
        other => return other.map(|v| (v, port)),
    }
    // An ephemeral port from the first address, tried on the others; another one if it
    // is taken somewhere.
    let mut last = None;
    for _ in 0..8 {
        let Some(&(first, silent)) = ips.first() else {
            return Ok((Vec::new(), port));
        };
        let probe = tcp_exact(first, 0, silent, what).await?;
        let chosen = probe.port;
        drop(probe);
        match tcp_udp_at(ips, chosen, what).await {
            Ok(v) => return Ok((v, chosen)),
            Err(e @ BindError::InUse { .. }) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| BindError::Io {
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        what: what.to_string(),
        source: io::Error::other("no ephemeral port free on every address"),
    }))
}

async fn tcp_udp_at(
    ips: &[(Ipv4Addr, bool)],
    port: u16,
    what: &str,
) -> Result<Vec<(Tcp, UdpSocket)>, BindError> {
    let mut out = Vec::new();
    for &(ip, silent) in ips {
        let tcp = tcp_exact(ip, port, silent, what).await?;
        let udp = udp_exact(ip, tcp.port, what).await?;
        out.push((tcp, udp));
    }
    Ok(out)
}

fn classify(addr: SocketAddr, what: &str, source: io::Error) -> BindError {
    if source.kind() == io::ErrorKind::AddrInUse {
        BindError::InUse {
            addr,
            what: what.to_string(),
        }
    } else {
        BindError::Io {
            addr,
            what: what.to_string(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_silent_listener_hangs_connects() {
        rt().block_on(async {
            let ip = Ipv4Addr::new(127, 0, 0, 1);
            let silent = tcp_exact(ip, 0, true, "test").await.unwrap();
            assert!(silent.is_silent());
            let to = SocketAddr::from((ip, silent.port));
            let attempt =
                tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(to)).await;
            assert!(attempt.is_err(), "connect finished: {attempt:?}");
        });
    }

    #[test]
    fn a_port_in_use_says_so() {
        rt().block_on(async {
            let ip = Ipv4Addr::new(127, 0, 0, 1);
            let live = tcp_exact(ip, 0, false, "first").await.unwrap();
            let err = tcp_exact(ip, live.port, false, "second").await.unwrap_err();
            assert!(err.to_string().contains("already in use"), "{err}");
        });
    }
}
