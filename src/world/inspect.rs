//! The perimeter firewall's TLS inspection (`inspect` rules): a proxy that terminates
//! the endpoint's TLS with a certificate from the firewall's own CA (the world's rogue
//! CA, which neither the agent's pinned tunnel nor its DoH client trusts), then
//! re-originates the connection to the name the client asked for (its SNI) and relays
//! the plaintext. A pinned client therefore fails the handshake, as the real one does.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};
use tokio_rustls::{LazyConfigAcceptor, TlsConnector};
use turmoil::net::{TcpListener, TcpStream};

/// The inspection proxy.
#[derive(Clone)]
pub struct Inspector {
    /// Presents the firewall's certificate.
    pub server: Arc<ServerConfig>,
    /// Re-originates, trusting the public and tenant CAs.
    pub upstream: Arc<ClientConfig>,
    /// Where names are.
    pub names: Arc<BTreeMap<String, Ipv4Addr>>,
}

impl Inspector {
    /// Serves on TCP 443 of a turmoil host.
    pub async fn serve(self) -> turmoil::Result {
        let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 443)).await?;
        loop {
            let (tcp, _) = listener.accept().await?;
            tokio::task::spawn_local(self.clone().intercept(tcp));
        }
    }

    async fn intercept(self, tcp: TcpStream) {
        let Ok(start) = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp).await
        else {
            return;
        };
        let Some(sni) = start
            .client_hello()
            .server_name()
            .map(str::to_ascii_lowercase)
        else {
            return;
        };
        // The client aborts here when it does not trust the firewall's CA.
        let Ok(mut downstream) = start.into_stream(self.server.clone()).await else {
            return;
        };
        let Some(ip) = self.names.get(&sni) else {
            return;
        };
        let Ok(tcp) = TcpStream::connect(SocketAddr::from((*ip, 443))).await else {
            return;
        };
        let Ok(name) = ServerName::try_from(sni) else {
            return;
        };
        let Ok(mut upstream) = TlsConnector::from(self.upstream.clone())
            .connect(name, tcp)
            .await
        else {
            return;
        };
        let _ = tokio::io::copy_bidirectional(&mut downstream, &mut upstream).await;
    }
}
