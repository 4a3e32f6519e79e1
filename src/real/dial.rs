//! How real-mode servers (gateways, the proxy) reach other hosts: a name the world knows
//! or a scenario address, to its loopback address, and a port to the one that host really
//! listens on. Anything else is refused: nothing leaves 127.0.0.0/8.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// Names and addresses to loopback sockets.
#[derive(Debug, Clone, Default)]
pub struct LoopbackDialer {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    names: BTreeMap<String, Ipv4Addr>,
    translate: BTreeMap<Ipv4Addr, Ipv4Addr>,
    ports: BTreeMap<(Ipv4Addr, u16), u16>,
}

impl LoopbackDialer {
    /// A dialer knowing `names` and scenario addresses (`translate`), with the real
    /// ports of services that did not get theirs (`ports`: (address, wanted) to actual).
    pub fn new(
        names: BTreeMap<String, Ipv4Addr>,
        translate: BTreeMap<Ipv4Addr, Ipv4Addr>,
        ports: BTreeMap<(Ipv4Addr, u16), u16>,
    ) -> LoopbackDialer {
        LoopbackDialer {
            inner: Arc::new(Inner {
                names,
                translate,
                ports,
            }),
        }
    }

    /// Where `host:port` really is, if it is in this world.
    pub fn resolve(&self, host: &str, port: u16) -> io::Result<SocketAddr> {
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        let ip = match host.parse::<Ipv4Addr>() {
            Ok(ip) if ip.is_loopback() => Some(ip),
            Ok(ip) => self.inner.translate.get(&ip).copied(),
            Err(_) => self.inner.names.get(&host).copied(),
        };
        let Some(ip) = ip.filter(Ipv4Addr::is_loopback) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host} is not a host of this world (real mode reaches loopback only)"),
            ));
        };
        let port = self.inner.ports.get(&(ip, port)).copied().unwrap_or(port);
        Ok(SocketAddr::from((ip, port)))
    }
}

impl sim_gateway::Dialer for LoopbackDialer {
    type Stream = tokio::net::TcpStream;

    async fn dial(&self, host: &str, port: u16) -> io::Result<Self::Stream> {
        let addr = self.resolve(host, port)?;
        tokio::net::TcpStream::connect(addr).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_is_reachable() {
        let here = Ipv4Addr::new(127, 0, 0, 20);
        let sim = Ipv4Addr::new(107, 152, 27, 197);
        let dialer = LoopbackDialer::new(
            [("www.box.com".to_string(), here)].into(),
            [(sim, here)].into(),
            [((here, 443), 40443)].into(),
        );
        assert_eq!(
            dialer.resolve("WWW.box.com", 443).unwrap(),
            SocketAddr::from((here, 40443))
        );
        assert_eq!(
            dialer.resolve("107.152.27.197", 80).unwrap(),
            SocketAddr::from((here, 80))
        );
        assert!(dialer.resolve("8.8.8.8", 443).is_err());
        assert!(dialer.resolve("example.net", 443).is_err());
    }
}
