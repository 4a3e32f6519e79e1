//! rustls client configurations: one that trusts the public CA (for DNS over HTTPS) and
//! one pinned to the tenant CA (for the tunnel), both checking validity against the
//! agent's wall clock.

use std::io;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::time_provider::TimeProvider;
use rustls::{ClientConfig, RootCertStore};

use super::net::WallClock;
use crate::core::NetError;

mod keylog;
mod seeded;

pub use keylog::{KeyLogFile, KeyLogLines};
pub use seeded::seeded_provider;

/// Builds a TLS 1.3 client config trusting exactly `roots`, its cryptography from
/// `provider`, its session secrets to `key_log` when given.
pub fn client_config(
    roots: &[CertificateDer<'static>],
    clock: WallClock,
    alpn: &[&[u8]],
    provider: Arc<rustls::crypto::CryptoProvider>,
    key_log: Option<&Arc<dyn rustls::KeyLog>>,
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root.clone())?;
    }
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
    let mut config = ClientConfig::builder_with_details(provider, Arc::new(SimClock(clock)))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_webpki_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    if let Some(key_log) = key_log {
        config.key_log = key_log.clone();
    }
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct SimClock(WallClock);

impl TimeProvider for SimClock {
    fn current_time(&self) -> Option<UnixTime> {
        let since = self.0.now().duration_since(std::time::UNIX_EPOCH).ok()?;
        Some(UnixTime::since_unix_epoch(since))
    }
}

/// Turns an IO error (possibly wrapping a rustls error) into the core's [`NetError`].
pub fn classify(err: &io::Error) -> NetError {
    if let Some(tls) = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        return NetError::Tls(tls.to_string());
    }
    match err.kind() {
        io::ErrorKind::ConnectionRefused => NetError::Refused,
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => NetError::Reset,
        io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe => NetError::Closed,
        _ => NetError::Other(err.to_string()),
    }
}
