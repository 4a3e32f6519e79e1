//! The agent is not simulation-only: the same shell runs on real tokio sockets against
//! sim-doh and sim-gateway served on 127.0.0.1 ephemeral ports. Loopback only.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use agent::core::{Config, Method, Region, TunnelProto, TunnelStatus};
use agent::shell::{Command, Shell, ShellConfig, TokioNet, WallClock};
use steerlab::logs::{Capture, CaptureLayer};
use steerlab::world::pki::{Authority, Pki};
use steerlab::world::serve::{self, RealDialer};
use tracing_subscriber::layer::SubscriberExt;

#[allow(
    clippy::disallowed_methods,
    reason = "real mode runs on the real clock"
)]
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[test]
fn agent_resolves_by_doh_and_tunnels_over_loopback() -> Result<(), Box<dyn std::error::Error>> {
    let capture = Capture::default();
    let subscriber =
        tracing_subscriber::registry().with(CaptureLayer::new(capture.clone(), now_ms));
    let _guard = tracing::subscriber::set_default(subscriber);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let status = local.block_on(&rt, async {
        let mut pki = Pki::new(1, now_ms())?;
        let system_clock = Arc::new(rustls::time_provider::DefaultTimeProvider);

        // The gateway on 127.0.0.1.
        let gw_listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let gw_addr = gw_listener.local_addr()?;
        let names = vec!["gateway-acme.goskope.com".to_string()];
        let leaf = pki.leaf(&names, Authority::Tenant, false)?;
        #[allow(clippy::disallowed_methods, reason = "real mode")]
        let gw = sim_gateway::Gateway::new(
            "nyc1",
            leaf.chain,
            leaf.key,
            SystemTime::now,
            RealDialer::default(),
        )?;
        tokio::task::spawn_local(serve::serve_gateway(gw_listener, gw));

        // DNS over HTTPS on 127.0.0.1, answering the gateway name with 127.0.0.1.
        let mut zone = sim_doh::Zone::new(60);
        zone.insert("gateway-acme.goskope.com", Ipv4Addr::LOCALHOST);
        let doh_listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let doh_addr = doh_listener.local_addr()?;
        let doh_leaf = pki.leaf(&["dns.google".to_string()], Authority::Public, false)?;
        let router = sim_doh::router(sim_doh::DohState {
            zone: Arc::new(zone),
            behaviour: sim_doh::Behaviour::Answer,
        });
        let tls = serve::server_config(&doh_leaf, system_clock, None)?;
        tokio::task::spawn_local(serve::serve_router(
            doh_listener,
            router,
            Some(tls),
            serve::Date::System,
        ));

        let config = Config {
            tenant: "acme".into(),
            region: Region::Global,
            version: "95.1.0".into(),
            client_ip: Ipv4Addr::LOCALHOST,
            doh_name: "dns.google".into(),
            doh_addr,
            gslb_name: "gateway.gslb.goskope.com".into(),
            gslb_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 9)),
            ldns: SocketAddr::from((Ipv4Addr::LOCALHOST, 9)),
            gateway_port: gw_addr.port(),
            tunnel: TunnelProto::Tls,
            dtls_available: false,
            steering: Default::default(),
            on_prem: None,
            proxy: None,
            proxy_discovery: None,
            portal_check_url: None,
            user: None,
            control: None,
            seed: 1,
        };
        let shell = Shell::new(
            TokioNet,
            config,
            ShellConfig {
                public_roots: vec![pki.public_root()],
                tenant_roots: vec![pki.tenant_root()],
                clock: WallClock::system(),
                tls_seed: None,
                key_log: None,
            },
        )?;
        let mut status = shell.status();
        let (commands, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::task::spawn_local(shell.run(rx));
        commands.send(Command::Start)?;
        tokio::time::timeout(Duration::from_secs(20), async {
            while status.borrow_and_update().tunnel != TunnelStatus::Connected {
                if status.changed().await.is_err() {
                    break;
                }
            }
        })
        .await?;
        let seen = status.borrow().clone();
        drop(commands);
        Ok::<_, Box<dyn std::error::Error>>((seen, gw_addr))
    })?;
    let (status, gw_addr) = status;
    assert_eq!(status.tunnel, TunnelStatus::Connected);
    assert_eq!(status.resolved_by, Some(Method::Edns));
    assert_eq!(status.gateway.map(|(_, addr, _)| addr), Some(gw_addr));
    let log = capture.lines().join("\n");
    assert!(
        log.contains("dnsResolver Hostname gateway-acme.goskope.com resolved by EDNS"),
        "{log}"
    );
    assert!(
        log.contains("SSL connected to the server: gateway-acme.goskope.com"),
        "{log}"
    );
    Ok(())
}
