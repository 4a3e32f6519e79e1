//! The real agent against `steerlab serve`: its configuration from `serve.json` and the
//! scenario it names, its CAs from the serve folder, the system clock, and loopback-only
//! sockets; its log through the same nsdebuglog formatter as the simulation.

use std::path::Path;
use std::sync::{Arc, Mutex};

use agent::core::{Config, Method, Role, Status, TunnelProto, TunnelStatus};
use agent::shell::{DtlsIdentity, DtlsSettings, Shell, ShellConfig, WallClock};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, Layer};

use super::info::ServeInfo;
use super::net::LoopbackNet;
use crate::logs::{Capture, CaptureLayer};
use crate::scenario::{self, ProxyDiscovery, Scenario};

/// Why the agent could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// A PEM file from the serve folder is missing or unreadable.
    #[error("cannot read {path}: {why} (is `steerlab serve` still running?)")]
    Pem {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// The shell rejected a certificate.
    #[error(transparent)]
    Shell(#[from] agent::shell::ShellError),
    /// The DTLS identity was rejected.
    #[error("bad DTLS identity: {0}")]
    Dtls(#[from] rustls::Error),
}

/// The agent's configuration: the scenario's client, the served addresses.
pub fn config(s: &Scenario, info: &ServeInfo) -> Config {
    let translate = |ip| info.translate(ip).unwrap_or(ip);
    Config {
        tenant: s.tenant.name.clone(),
        region: crate::world::build::agent_region(s.tenant.region),
        version: s.client.version.text.clone(),
        client_ip: s.client.ip,
        doh_name: info.doh.name.clone(),
        doh_addr: info.doh.addr,
        gslb_name: info.gslb.name.clone(),
        gslb_addr: info.gslb.addr,
        ldns: info.ldns,
        gateway_port: info.gateway_port,
        tunnel: match s.client.tunnel {
            scenario::TunnelProto::Dtls => TunnelProto::Dtls,
            scenario::TunnelProto::Tls => TunnelProto::Tls,
        },
        dtls_available: true,
        // With a control plane the configuration comes from the tenant: the client
        // starts on its built-in defaults until the first download (as in the world).
        steering: if s.control_plane.is_some() {
            agent::core::steer::Steering::default()
        } else {
            crate::world::agent_steering(s)
        },
        proxy: s
            .network
            .proxy
            .as_ref()
            .filter(|p| p.discovery == ProxyDiscovery::Manual)
            .and(info.proxy),
        proxy_discovery: match crate::world::pac::discovery(s) {
            Some(agent::core::ProxyDiscovery::Pac { .. }) => info
                .pac_url
                .clone()
                .map(|url| agent::core::ProxyDiscovery::Pac { url }),
            other => other,
        },
        portal_check_url: Some(info.portal_check_url.clone()),
        user: s.client.user.clone(),
        control: s
            .control_plane
            .as_ref()
            .zip(info.control_plane.as_ref())
            .map(|(cp, served)| agent::core::control::ControlPlane {
                server_name: served.name.clone(),
                addr: served.addr,
                device: cp.device.clone(),
                hostname: cp.hostname.clone(),
                invite: cp.invite.clone(),
            }),
        on_prem: crate::world::build::on_prem_check(s, translate),
        seed: s.seed,
    }
}

/// The shell on loopback sockets and the system clock, trusting the served CAs, with
/// the endpoint's DTLS identity; its TLS session secrets go to `key_log` if given.
pub fn shell(
    s: &Scenario,
    info: &ServeInfo,
    key_log: Option<Arc<dyn rustls::KeyLog>>,
) -> Result<Shell<LoopbackNet>, AgentError> {
    let public = read_cert(&info.ca.public)?;
    let tenant = read_cert(&info.ca.tenant)?;
    let identity_cert = read_cert(&info.endpoint.cert)?;
    let identity_key =
        PrivateKeyDer::from_pem_file(&info.endpoint.key).map_err(|e| AgentError::Pem {
            path: info.endpoint.key.display().to_string(),
            why: e.to_string(),
        })?;
    let shell = Shell::new(
        LoopbackNet,
        config(s, info),
        ShellConfig {
            public_roots: vec![public],
            tenant_roots: vec![tenant.clone()],
            clock: WallClock::system(),
            tls_seed: None,
            key_log,
        },
    )?;
    let dtls = DtlsSettings::new(
        &[tenant],
        WallClock::system(),
        DtlsIdentity::new(&identity_cert, &identity_key),
    )?;
    Ok(shell.with_dtls(dtls))
}

fn read_cert(path: &Path) -> Result<CertificateDer<'static>, AgentError> {
    CertificateDer::from_pem_file(path).map_err(|e| AgentError::Pem {
        path: path.display().to_string(),
        why: e.to_string(),
    })
}

/// One line on how the agent ended: `tunnel TLS to fra1 (127.0.0.14:443), resolved by
/// LDNS`.
pub fn summary(status: &Status, info: &ServeInfo) -> String {
    let method = status.resolved_by.map(|m| match m {
        Method::Gslb => "GSLB",
        Method::Edns => "EDNS",
        Method::Ldns => "LDNS",
    });
    match (status.tunnel, status.gateway) {
        (TunnelStatus::Connected, Some((proto, addr, role))) => {
            let proto = match proto {
                TunnelProto::Dtls => "DTLS",
                TunnelProto::Tls => "TLS",
            };
            let name = match (role, addr.ip()) {
                (Role::Backup, _) => "backup".to_string(),
                (Role::Primary, std::net::IpAddr::V4(ip)) => info
                    .host_at(ip)
                    .map_or_else(|| ip.to_string(), |h| h.label.clone()),
                (Role::Primary, ip) => ip.to_string(),
            };
            let by = method.map_or(String::new(), |m| format!(", resolved by {m}"));
            format!("tunnel {proto} to {name} ({addr}){by}")
        }
        _ => "tunnel down".to_string(),
    }
}

/// A `tracing` layer that renders the agent's lines like the simulation does (through
/// [`CaptureLayer`]) and hands each new line to `out` at once.
pub struct EchoLayer<C, F> {
    inner: CaptureLayer<C>,
    capture: Capture,
    printed: Mutex<usize>,
    out: F,
}

impl<C: Fn() -> i64, F: Fn(&str)> EchoLayer<C, F> {
    /// A layer stamping lines with `clock` (Unix milliseconds) and passing them to `out`.
    pub fn new(capture: Capture, clock: C, out: F) -> Self {
        EchoLayer {
            inner: CaptureLayer::new(capture.clone(), clock),
            capture,
            printed: Mutex::new(0),
            out,
        }
    }
}

impl<S, C, F> Layer<S> for EchoLayer<C, F>
where
    S: Subscriber,
    C: Fn() -> i64 + 'static,
    F: Fn(&str) + 'static,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        self.inner.on_event(event, ctx);
        let lines = self.capture.lines();
        if let Ok(mut printed) = self.printed.lock() {
            for line in lines.iter().skip(*printed) {
                (self.out)(line);
            }
            *printed = lines.len();
        }
    }
}

/// The wall clock in Unix milliseconds, for log lines.
pub fn now_unix_ms() -> i64 {
    WallClock::system().unix_ms()
}
