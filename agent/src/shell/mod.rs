//! The thin async shell around the core: one loop that carries actions out as IO and
//! feeds IO results back as events. It decides nothing.
//!
//! Every IO operation runs as a local task (`spawn_local`: run the shell inside a
//! `LocalSet`, which turmoil hosts already are) that reports into one channel.

pub mod dtls;
mod https;
mod ldns;
mod net;
mod plain_http;
mod proxy;
pub mod seed;
mod tls;
mod tunnel;

use std::collections::BTreeMap;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;
use std::net::SocketAddr;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use dtls::{DtlsIdentity, DtlsSettings};
pub use net::{Datagram, Net, TokioNet, WallClock};
pub use tls::classify as classify_io_error;
pub use tls::seeded_provider as seeded_tls_provider;
pub use tls::{KeyLogFile, KeyLogLines};

use crate::core::steer::Decision;
use crate::core::{
    Action, Agent, Config, HttpOutcome, LdnsOutcome, Level, LogLine, NetError, OpId, Status,
    TunnelEvent,
};
use crate::wire::Frame;

/// The `tracing` target of the agent's log lines.
pub const LOG_TARGET: &str = "nsdebuglog";

/// What the shell needs beside the agent's own config.
#[derive(Debug, Clone)]
pub struct ShellConfig {
    /// CAs trusted for DNS over HTTPS (the public web PKI).
    pub public_roots: Vec<CertificateDer<'static>>,
    /// The tenant CA: the only CA trusted for the tunnel.
    pub tenant_roots: Vec<CertificateDer<'static>>,
    /// The clock certificates are checked against.
    pub clock: WallClock,
    /// With a seed, TLS randomness and key exchange come from it (see
    /// [`seeded_tls_provider`]): reproducible handshakes with predictable keys, for
    /// simulations. `None`: ring with the operating system's randomness.
    pub tls_seed: Option<u64>,
    /// Where the TLS session secrets go (SSLKEYLOGFILE lines), if anywhere: for
    /// decrypting a capture of the tunnel and DNS over HTTPS.
    pub key_log: Option<Arc<dyn rustls::KeyLog>>,
}

/// Why the shell could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShellError {
    /// A CA certificate was not usable.
    #[error("bad CA certificate: {0}")]
    BadCertificate(#[from] rustls::Error),
}

/// Commands from the outside world: the user, and what the client's driver sees of the
/// endpoint's apps.
#[derive(Debug)]
pub enum Command {
    /// Enable the client.
    Start,
    /// Disable the client.
    Stop,
    /// The endpoint moved to another network.
    NetworkChanged,
    /// A DNS answer on its way to an app.
    AppDns(Vec<u8>),
    /// An app opens a flow (its SYN); the decision comes back on `reply`.
    AppFlow(AppFlow),
}

/// An app's new flow.
#[derive(Debug)]
pub struct AppFlow {
    /// The app's process name.
    pub process: String,
    /// The app's address and port.
    pub src: SocketAddr,
    /// Where it goes.
    pub dst: SocketAddr,
    /// The server name of its TLS ClientHello, if it is TLS with SNI.
    pub sni: Option<String>,
    /// The host and port of its HTTP CONNECT, when `dst` is an on-prem proxy.
    pub connect: Option<(String, u16)>,
    /// TCP or UDP.
    pub proto: crate::core::steer::FlowProto,
    /// Gets the agent's decision.
    pub reply: oneshot::Sender<FlowDecision>,
}

/// The agent's answer to an [`AppFlow`].
#[derive(Debug)]
pub struct FlowDecision {
    /// The verdict and why.
    pub decision: Decision,
    /// For a tunneled flow: whether the gateway reached the origin.
    pub opened: Option<oneshot::Receiver<Result<(), String>>>,
}

#[derive(Debug)]
enum ShellEvent {
    Doh(OpId, HttpOutcome),
    Gslb(OpId, HttpOutcome),
    Probe(OpId, Result<(), NetError>),
    Ldns(OpId, LdnsOutcome),
    Tunnel(OpId, TunnelEvent),
    Pac(OpId, crate::core::PacFetched),
    Get(OpId, HttpOutcome),
    Config(OpId, HttpOutcome),
}

/// The agent with its IO.
pub struct Shell<N: Net> {
    net: N,
    agent: Agent,
    doh_tls: Arc<ClientConfig>,
    tunnel: tunnel::Security,
    tasks: BTreeMap<OpId, JoinHandle<()>>,
    tunnels: BTreeMap<OpId, mpsc::UnboundedSender<Frame>>,
    events_tx: mpsc::UnboundedSender<ShellEvent>,
    events_rx: mpsc::UnboundedReceiver<ShellEvent>,
    status: watch::Sender<Status>,
    next_flow: u32,
    waiting_verdict: BTreeMap<u32, oneshot::Sender<FlowDecision>>,
    waiting_open: BTreeMap<u32, oneshot::Sender<Result<(), String>>>,
    clock: WallClock,
    /// The process id the log lines carry (1 unless told).
    pid: u32,
}

impl<N: Net> Shell<N> {
    /// Builds the shell; nothing runs until [`Shell::run`].
    pub fn new(net: N, config: Config, shell: ShellConfig) -> Result<Shell<N>, ShellError> {
        let provider = Arc::new(match shell.tls_seed {
            Some(seed) => tls::seeded_provider(seed),
            None => rustls::crypto::ring::default_provider(),
        });
        let doh_tls = tls::client_config(
            &shell.public_roots,
            shell.clock.clone(),
            &[b"http/1.1"],
            provider.clone(),
            shell.key_log.as_ref(),
        )?;
        let tunnel = tunnel::Security {
            tls: tls::client_config(
                &shell.tenant_roots,
                shell.clock.clone(),
                &[],
                provider,
                shell.key_log.as_ref(),
            )?,
            dtls: None,
        };
        let agent = Agent::new(config);
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (status, _) = watch::channel(agent.status());
        Ok(Shell {
            net,
            agent,
            doh_tls,
            tunnel,
            tasks: BTreeMap::new(),
            tunnels: BTreeMap::new(),
            events_tx,
            events_rx,
            status,
            clock: shell.clock,
            next_flow: 0,
            waiting_verdict: BTreeMap::new(),
            waiting_open: BTreeMap::new(),
            pid: 1,
        })
    }

    /// The process id the agent's log lines carry (`p<pid>`): several agents logging
    /// into one log (a multi-endpoint world) are told apart by it. Default 1.
    pub fn with_log_pid(mut self, pid: u32) -> Shell<N> {
        self.pid = pid;
        self
    }

    /// Enables DTLS tunnels (without it they fail at once): the settings carry the agent's
    /// own ECDSA certificate, which dimpl needs.
    pub fn with_dtls(mut self, settings: DtlsSettings) -> Shell<N> {
        self.tunnel.dtls = Some(settings);
        self
    }

    /// Watches the agent's status.
    pub fn status(&self) -> watch::Receiver<Status> {
        self.status.subscribe()
    }

    /// Runs until the command channel closes.
    pub async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            self.carry_out();
            let deadline = self.agent.poll_timeout().map(|(at, _)| at);
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                command = commands.recv() => {
                    let now = now();
                    match command {
                        Some(Command::Start) => self.agent.handle_start(now),
                        Some(Command::Stop) => self.agent.handle_stop(now),
                        Some(Command::NetworkChanged) => self.agent.handle_network_change(now),
                        Some(Command::AppDns(answer)) => self.agent.handle_app_dns(&answer, now),
                        Some(Command::AppFlow(app)) => {
                            self.next_flow += 1;
                            let flow = self.next_flow;
                            self.waiting_verdict.insert(flow, app.reply);
                            self.agent.handle_app_flow(
                                crate::core::FlowSeen {
                                    flow,
                                    process: app.process,
                                    src: app.src,
                                    dst: app.dst,
                                    sni: app.sni,
                                    connect: app.connect,
                                    proto: app.proto,
                                },
                                now,
                            );
                        }
                        None => break,
                    }
                }
                Some(event) = self.events_rx.recv() => self.dispatch(event),
                () = sleep => self.agent.handle_timeout(now()),
            }
        }
        self.carry_out();
        for (_, task) in std::mem::take(&mut self.tasks) {
            task.abort();
        }
    }

    fn dispatch(&mut self, event: ShellEvent) {
        let now = now();
        // A one-shot operation's task is over once its result is here; a tunnel's only
        // when it failed or closed.
        let over = match &event {
            ShellEvent::Tunnel(op, e) => {
                matches!(e, TunnelEvent::Failed(_) | TunnelEvent::Closed(_)).then_some(*op)
            }
            ShellEvent::Doh(op, _)
            | ShellEvent::Gslb(op, _)
            | ShellEvent::Probe(op, _)
            | ShellEvent::Ldns(op, _)
            | ShellEvent::Config(op, _)
            | ShellEvent::Get(op, _)
            | ShellEvent::Pac(op, _) => Some(*op),
        };
        if let Some(op) = over {
            self.tasks.remove(&op);
            self.tunnels.remove(&op);
        }
        match event {
            ShellEvent::Doh(op, outcome) => self.agent.handle_doh(op, outcome, now),
            ShellEvent::Gslb(op, outcome) => self.agent.handle_gslb(op, outcome, now),
            ShellEvent::Probe(op, result) => self.agent.handle_probe(op, result, now),
            ShellEvent::Ldns(op, outcome) => self.agent.handle_ldns(op, outcome, now),
            ShellEvent::Config(op, outcome) => self.agent.handle_config(op, outcome, now),
            ShellEvent::Get(op, outcome) => self.agent.handle_http_get(op, outcome, now),
            ShellEvent::Pac(op, fetched) => self.agent.handle_pac(op, fetched, now),
            ShellEvent::Tunnel(op, event) => self.agent.handle_tunnel(op, event, now),
        }
    }

    fn carry_out(&mut self) {
        while let Some(action) = self.agent.poll_action() {
            match action {
                Action::Log(line) => emit(&line, self.pid),
                Action::QueryDoh {
                    op,
                    server_name,
                    addr,
                    body,
                } => {
                    let request = https::Request::doh(server_name, addr, body);
                    self.https(op, request, ShellEvent::Doh);
                }
                Action::QueryGslb {
                    op,
                    server_name,
                    addr,
                    path,
                } => {
                    let request = https::Request::json("GET", server_name, addr, path, Vec::new());
                    self.https(op, request, ShellEvent::Gslb);
                }
                Action::PostEvent {
                    server_name,
                    addr,
                    body,
                } => {
                    let path = "/events".to_string();
                    let request = https::Request::json("POST", server_name, addr, path, body);
                    let fut = https::exchange(self.net.clone(), self.doh_tls.clone(), request);
                    tokio::task::spawn_local(async move {
                        let _ = fut.await;
                    });
                }
                Action::PostGslbRtt {
                    server_name,
                    addr,
                    path,
                    body,
                } => {
                    let request = https::Request::json("POST", server_name, addr, path, body);
                    let fut = https::exchange(self.net.clone(), self.doh_tls.clone(), request);
                    tokio::task::spawn_local(async move {
                        let _ = fut.await;
                    });
                }
                Action::Probe { op, addr } => {
                    let net = self.net.clone();
                    let tx = self.events_tx.clone();
                    self.spawn(op, async move {
                        let result = net
                            .connect_tcp(addr)
                            .await
                            .map(drop)
                            .map_err(|e| tls::classify(&e));
                        let _ = tx.send(ShellEvent::Probe(op, result));
                    });
                }
                Action::QueryLdns {
                    op,
                    addr,
                    transport,
                    query,
                } => {
                    let fut = ldns::query(self.net.clone(), addr, transport, query);
                    let tx = self.events_tx.clone();
                    self.spawn(op, async move {
                        let _ = tx.send(ShellEvent::Ldns(op, fut.await));
                    });
                }
                Action::OpenTunnel {
                    op,
                    server_name,
                    addr,
                    proto,
                    proxy,
                } => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    self.tunnels.insert(op, tx);
                    let target = tunnel::Target {
                        proto,
                        server_name,
                        addr,
                        proxy,
                    };
                    let fut = tunnel::run(
                        self.net.clone(),
                        self.tunnel.clone(),
                        target,
                        op,
                        self.events_tx.clone(),
                        rx,
                    );
                    self.spawn(op, fut);
                }
                Action::SendHello { op, user } => {
                    if let Some(tx) = self.tunnels.get(&op) {
                        let _ = tx.send(Frame::Hello { user });
                    }
                }
                Action::SendKeepalive { op, seq } => {
                    if let Some(tx) = self.tunnels.get(&op) {
                        let _ = tx.send(Frame::Keepalive { seq });
                    }
                }
                Action::Steer { flow, decision } => {
                    let opened =
                        (decision.verdict == crate::core::steer::Verdict::Tunneled).then(|| {
                            let (tx, rx) = oneshot::channel();
                            self.waiting_open.insert(flow, tx);
                            rx
                        });
                    if let Some(reply) = self.waiting_verdict.remove(&flow) {
                        let _ = reply.send(FlowDecision { decision, opened });
                    }
                }
                Action::OpenFlow {
                    op,
                    flow,
                    target,
                    process,
                } => {
                    if let Some(tx) = self.tunnels.get(&op) {
                        let _ = tx.send(Frame::Open {
                            flow,
                            target,
                            process,
                        });
                    }
                }
                Action::FlowResult { flow, result } => {
                    if let Some(tx) = self.waiting_open.remove(&flow) {
                        let _ = tx.send(result);
                    }
                }
                Action::FetchPac { op, url } => {
                    let fut = plain_http::fetch_pac(
                        self.net.clone(),
                        self.agent.config().ldns,
                        op,
                        url,
                        self.clock.clone(),
                    );
                    let tx = self.events_tx.clone();
                    self.spawn(op, async move {
                        let _ = tx.send(ShellEvent::Pac(op, fut.await));
                    });
                }
                Action::FetchConfig {
                    op,
                    server_name,
                    addr,
                    path,
                } => {
                    let request = https::Request::json("GET", server_name, addr, path, Vec::new());
                    self.https(op, request, ShellEvent::Config);
                }
                Action::HttpGet { op, url } => {
                    let (net, ldns) = (self.net.clone(), self.agent.config().ldns);
                    let tx = self.events_tx.clone();
                    self.spawn(op, async move {
                        let outcome = plain_http::get(net, ldns, op, &url).await;
                        let _ = tx.send(ShellEvent::Get(op, outcome));
                    });
                }
                Action::CloseTunnel { op } | Action::Cancel { op } => {
                    self.tunnels.remove(&op);
                    if let Some(task) = self.tasks.remove(&op) {
                        task.abort();
                    }
                }
            }
        }
        self.status.send_replace(self.agent.status());
    }

    /// Runs one HTTPS exchange (public CAs) as operation `op`, reporting it as `event`.
    fn https(
        &mut self,
        op: OpId,
        request: https::Request,
        event: fn(OpId, HttpOutcome) -> ShellEvent,
    ) {
        let fut = https::exchange(self.net.clone(), self.doh_tls.clone(), request);
        let tx = self.events_tx.clone();
        self.spawn(op, async move {
            let _ = tx.send(event(op, fut.await));
        });
    }

    fn spawn(&mut self, op: OpId, fut: impl std::future::Future<Output = ()> + 'static) {
        self.tasks.insert(op, tokio::task::spawn_local(fut));
    }
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// Sends a log line to `tracing` under [`LOG_TARGET`], with its nsdebuglog level,
/// component and the agent's process id as fields.
fn emit(line: &LogLine, pid: u32) {
    let level = line.level.number();
    let component = line.component;
    let text = line.text.as_str();
    match line.level {
        Level::Critical | Level::Error => {
            tracing::error!(target: LOG_TARGET, level, component, pid, "{text}")
        }
        Level::Warning => tracing::warn!(target: LOG_TARGET, level, component, pid, "{text}"),
        Level::Info => tracing::info!(target: LOG_TARGET, level, component, pid, "{text}"),
        Level::Debug => tracing::debug!(target: LOG_TARGET, level, component, pid, "{text}"),
    }
}
