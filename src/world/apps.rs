//! The endpoint's apps: each `connect` event is an app that resolves its host through
//! the OS resolver (the agent's driver sees the answer), opens its flow (the agent sees
//! the SYN and decides), and then goes through the tunnel or straight through the
//! network path. What became of every flow is recorded.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent::core::dns::{self, Answer};
use agent::core::steer::Verdict as AgentVerdict;
use agent::shell::{AppFlow, Command, Datagram, Net};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::net::SimNet;
use super::timeline::Timeline;
use crate::report::FlowRecord;
use crate::scenario::Verdict;

/// How long an app waits for its TCP connect (or the gateway's answer for a tunneled
/// flow) before it gives up.
pub const APP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a UDP app waits for the answer to its datagram.
pub const APP_UDP_TIMEOUT: Duration = Duration::from_secs(3);

/// What a UDP app sends; origins echo it.
pub const APP_UDP_PAYLOAD: &[u8] = b"steerlab app datagram";

/// How long an app waits for one answer from the OS resolver, and how many times it asks.
pub const APP_DNS_TIMEOUT: Duration = Duration::from_secs(2);
/// See [`APP_DNS_TIMEOUT`].
pub const APP_DNS_TRIES: u32 = 2;

/// One app connection to make.
#[derive(Debug, Clone)]
pub struct AppRequest {
    /// Its place among the scenario's connect events (flows are reported in this order).
    pub index: usize,
    /// The process name.
    pub process: String,
    /// The host it connects to.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The app resolves through its own DNS over HTTPS (the client sees no answer).
    pub own_doh: bool,
    /// The app sends through this explicit proxy with HTTP CONNECT.
    pub via_proxy: Option<SocketAddr>,
    /// A UDP flow (one datagram and its answer) instead of a TCP connection.
    pub udp: bool,
}

/// What the apps share.
#[derive(Clone)]
pub struct Apps {
    /// The endpoint's network.
    pub net: SimNet,
    /// The agent's command channel.
    pub agent: mpsc::UnboundedSender<Command>,
    /// The OS resolver.
    pub resolver: SocketAddr,
    /// The endpoint's address.
    pub client_ip: IpAddr,
    /// Flows by index.
    pub flows: Arc<Mutex<BTreeMap<usize, FlowRecord>>>,
    /// The world's timeline.
    pub timeline: Timeline,
    /// What an app's own DNS over HTTPS answers.
    pub names: Arc<BTreeMap<String, std::net::Ipv4Addr>>,
}

impl Apps {
    /// Runs every request that arrives, each as its own task.
    pub async fn serve(self, mut requests: mpsc::UnboundedReceiver<AppRequest>) {
        while let Some(request) = requests.recv().await {
            tokio::task::spawn_local(self.clone().connect(request));
        }
    }

    async fn connect(self, req: AppRequest) {
        let target = format!("{}:{}", req.host, req.port);
        if let Some(proxy) = req.via_proxy {
            // The proxy resolves the host: the app only opens its CONNECT.
            let connect = Some((req.host.clone(), req.port));
            return self.open(req, target, proxy, None, connect).await;
        }
        let Some((ip, answer)) = self.resolve(&req).await else {
            self.timeline.push(format!(
                "app {} could not resolve {}: no flow",
                req.process, req.host
            ));
            return;
        };
        if !answer.is_empty() {
            let _ = self.agent.send(Command::AppDns(answer));
        }
        let dst = SocketAddr::new(ip, req.port);
        // A TLS app puts its host in the ClientHello's SNI.
        let sni = (req.port == 443 && !req.udp && req.host.parse::<IpAddr>().is_err())
            .then(|| req.host.clone());
        self.open(req, target, dst, sni, None).await;
    }

    /// Opens the flow: the agent decides, then the app goes through the tunnel or the
    /// path (to `dst`, the origin or the proxy for a CONNECT).
    async fn open(
        self,
        req: AppRequest,
        target: String,
        dst: SocketAddr,
        sni: Option<String>,
        connect: Option<(String, u16)>,
    ) {
        let src = SocketAddr::new(self.client_ip, 50_000 + (req.index as u16 % 10_000));
        let (reply, decision) = oneshot::channel();
        let via_proxy = connect.is_some();
        let flow = AppFlow {
            process: req.process.clone(),
            src,
            dst,
            sni,
            connect,
            proto: if req.udp {
                agent::core::steer::FlowProto::Udp
            } else {
                agent::core::steer::FlowProto::Tcp
            },
            reply,
        };
        if self.agent.send(Command::AppFlow(flow)).is_err() {
            return;
        }
        let Ok(decided) = decision.await else {
            return;
        };
        let mut reason = decided.decision.reason.to_string();
        let mut verdict = match decided.decision.verdict {
            AgentVerdict::Tunneled => Verdict::Tunneled,
            AgentVerdict::Bypassed => Verdict::Bypassed,
            AgentVerdict::Direct => Verdict::Direct,
            AgentVerdict::Blocked => Verdict::Blocked,
        };
        // On the wire, the flow's packets say whose they are and what the agent decided.
        let net = self.net.noted(format!(
            "app {} {target}: {} ({reason})",
            req.process,
            verdict.as_str()
        ));
        let outcome = match (verdict, decided.opened) {
            (Verdict::Blocked, _) => "dropped by the agent".to_string(),
            (Verdict::Tunneled, Some(opened)) => {
                match tokio::time::timeout(APP_CONNECT_TIMEOUT, opened).await {
                    Ok(Ok(Ok(()))) => "opened through the tunnel".to_string(),
                    // The gateway's policy blocked it: the app gets a block page.
                    Ok(Ok(Err(why))) if why.starts_with(sim_gateway::policy::POLICY_REFUSAL) => {
                        verdict = Verdict::Blocked;
                        reason = format!("gateway {why}");
                        "block page".to_string()
                    }
                    Ok(Ok(Err(why))) => format!("refused: {why}"),
                    Ok(Err(_)) => "tunnel gone".to_string(),
                    Err(_) => "timed out waiting for the gateway".to_string(),
                }
            }
            _ if req.udp => self.udp_exchange(&net, dst).await,
            _ => match tokio::time::timeout(APP_CONNECT_TIMEOUT, net.connect_tcp(dst)).await {
                Ok(Ok(stream)) if via_proxy => proxy_connect(stream, &target).await,
                Ok(Ok(stream)) if req.port == 80 => http_get(stream, &req.host).await,
                Ok(Ok(_stream)) => "connected".to_string(),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    "reset".to_string()
                }
                Ok(Err(e)) => format!("failed: {e}"),
                Err(_) => "timed out".to_string(),
            },
        };
        self.timeline.push(format!(
            "flow {} {target} {} ({outcome})",
            req.process,
            verdict.as_str()
        ));
        let record = FlowRecord {
            process: req.process,
            host: req.host,
            addr: dst.to_string(),
            verdict,
            reason,
            outcome,
        };
        if let Ok(mut flows) = self.flows.lock() {
            flows.insert(req.index, record);
        }
    }

    /// One datagram to `dst` through the network path, and the origin's echo.
    async fn udp_exchange(&self, net: &SimNet, dst: SocketAddr) -> String {
        let Ok(socket) = net.bind_udp().await else {
            return "failed: no UDP socket".to_string();
        };
        match socket.send_to(APP_UDP_PAYLOAD, dst).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return "unreachable (ICMP)".to_string();
            }
            Err(e) => return format!("failed: {e}"),
        }
        let mut buf = vec![0u8; 2048];
        let answer = async {
            loop {
                match socket.recv_from(&mut buf).await {
                    Ok((_, from)) if from == dst => return true,
                    Ok(_) => continue,
                    Err(_) => return false,
                }
            }
        };
        match tokio::time::timeout(APP_UDP_TIMEOUT, answer).await {
            Ok(true) => "UDP answered".to_string(),
            Ok(false) | Err(_) => "no UDP answer".to_string(),
        }
    }

    /// Asks the OS resolver (through the network path) for the host's address; returns
    /// it with the answer bytes the driver saw.
    async fn resolve(&self, req: &AppRequest) -> Option<(IpAddr, Vec<u8>)> {
        if let Ok(ip) = req.host.parse::<IpAddr>() {
            return Some((ip, Vec::new()));
        }
        if req.own_doh {
            // Encrypted to the app's own resolver: the client's driver sees nothing.
            let ip = self.names.get(&req.host.to_ascii_lowercase())?;
            return Some((IpAddr::V4(*ip), Vec::new()));
        }
        let note = format!(
            "app {} looks up {} (the OS resolver)",
            req.process, req.host
        );
        let socket = self.net.noted(note).bind_udp().await.ok()?;
        let id = 0x4000 + (req.index as u16 & 0x3fff);
        let query = dns::build_query(id, &req.host, None);
        for _ in 0..APP_DNS_TRIES {
            if socket.send_to(&query, self.resolver).await.is_err() {
                return None;
            }
            let mut buf = vec![0u8; 4096];
            let Ok(Ok((n, _))) =
                tokio::time::timeout(APP_DNS_TIMEOUT, socket.recv_from(&mut buf)).await
            else {
                continue;
            };
            buf.truncate(n);
            return match dns::read_answer(id, &buf) {
                Ok(Answer::Addresses(ips)) => Some((IpAddr::V4(ips[0]), buf)),
                _ => None,
            };
        }
        None
    }
}

/// A plain HTTP GET of `/` from `host`: what the app saw, e.g. `HTTP 200` or
/// `HTTP 302 to http://portal/login`.
async fn http_get<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, host: &str) -> String {
    let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let Some(head) = exchange(&mut stream, &request).await else {
        return "connected, no HTTP answer".to_string();
    };
    let location = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or_else(|| l.strip_prefix("Location: "))
        })
        .map(|l| format!(" to {}", l.trim()))
        .unwrap_or_default();
    format!("HTTP {}{location}", status_of(&head))
}

/// An HTTP CONNECT to `target` through the proxy on `stream`: what the app saw.
async fn proxy_connect<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, target: &str) -> String {
    let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    match exchange(&mut stream, &request).await {
        Some(head) => format!("CONNECT through the proxy: HTTP {}", status_of(&head)),
        None => "no answer from the proxy".to_string(),
    }
}

/// Sends `request` and reads the response head (byte by byte, so nothing after it is
/// taken), within [`APP_CONNECT_TIMEOUT`]; `None` when nothing came.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    request: &str,
) -> Option<String> {
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut head = Vec::new();
    let read = async {
        while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
            match stream.read_u8().await {
                Ok(b) => head.push(b),
                Err(_) => break,
            }
        }
    };
    tokio::time::timeout(APP_CONNECT_TIMEOUT, read).await.ok()?;
    (!head.is_empty()).then(|| String::from_utf8_lossy(&head).into_owned())
}

/// The status code of a response head.
fn status_of(head: &str) -> &str {
    head.lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?")
}
