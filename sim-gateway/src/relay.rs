//! One tunnel session: frames in from the agent, frames out to it, one relayed
//! connection per opened flow.

use std::collections::BTreeMap;
use std::sync::Arc;

use agent::wire::Frame;
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::sync::mpsc;

use crate::policy::Policy;
use crate::{Dialer, LOG_TARGET};

pub(crate) struct Session<D: Dialer> {
    dialer: D,
    gateway: String,
    id: u32,
    flows: BTreeMap<u32, mpsc::UnboundedSender<Bytes>>,
    policy: Arc<Policy>,
    /// The user the agent said it runs for (its Hello frame).
    user: Option<String>,
}

enum Upstream {
    Opened(u32, Box<dyn FnOnce() -> mpsc::UnboundedSender<Bytes>>),
    Frame(Frame),
}

impl<D: Dialer> Session<D> {
    pub(crate) fn new(dialer: D, gateway: String, id: u32, policy: Arc<Policy>) -> Session<D> {
        Session {
            dialer,
            gateway,
            id,
            flows: BTreeMap::new(),
            policy,
            user: None,
        }
    }

    /// Runs until the agent closes the tunnel; returns why it ended.
    pub(crate) async fn run<S>(mut self, tunnel: S) -> String
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (mut rd, mut wr) = tokio::io::split(tunnel);
        let (up_tx, mut up_rx) = mpsc::unbounded_channel::<Upstream>();
        let mut inbuf = BytesMut::with_capacity(4096);
        let mut out = BytesMut::new();
        loop {
            tokio::select! {
                biased;
                Some(up) = up_rx.recv() => {
                    let frame = match up {
                        Upstream::Opened(flow, attach) => {
                            self.flows.insert(flow, attach());
                            Frame::Opened { flow }
                        }
                        Upstream::Frame(frame) => {
                            if let Frame::Close { flow } | Frame::Refused { flow, .. } = &frame {
                                self.flows.remove(flow);
                            }
                            frame
                        }
                    };
                    if let Err(e) = send(&mut wr, &mut out, &frame).await {
                        return format!("write failed: {e}");
                    }
                }
                read = rd.read_buf(&mut inbuf) => {
                    match read {
                        Ok(0) => return "closed by the agent".to_string(),
                        Err(e) => return format!("read failed: {e}"),
                        Ok(_) => {}
                    }
                    loop {
                        let frame = match Frame::decode(&mut inbuf) {
                            Ok(Some(frame)) => frame,
                            Ok(None) => break,
                            Err(e) => return format!("bad frame from the agent: {e}"),
                        };
                        if let Some(reply) = self.handle(frame, &up_tx)
                            && let Err(e) = send(&mut wr, &mut out, &reply).await
                        {
                            return format!("write failed: {e}");
                        }
                    }
                }
            }
        }
    }

    fn handle(&mut self, frame: Frame, up: &mpsc::UnboundedSender<Upstream>) -> Option<Frame> {
        match frame {
            Frame::Keepalive { seq } => Some(Frame::KeepaliveAck { seq }),
            Frame::Hello { user } => {
                tracing::info!(
                    target: LOG_TARGET,
                    gateway = %self.gateway,
                    "session {} user {user}",
                    self.id
                );
                self.user = Some(user);
                None
            }
            Frame::Open {
                flow,
                target,
                process,
            } => {
                let Some((host, port)) = target
                    .rsplit_once(':')
                    .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
                else {
                    return Some(Frame::Refused {
                        flow,
                        reason: format!("bad target {target}"),
                    });
                };
                tracing::info!(
                    target: LOG_TARGET,
                    gateway = %self.gateway,
                    "session {} flow {flow} from {process} to {host}:{port}",
                    self.id
                );
                let name = host.trim_start_matches("udp/");
                if let Some(reason) = self.policy.blocks(name, self.user.as_deref()) {
                    return Some(Frame::Refused { flow, reason });
                }
                if let Some(host) = host.strip_prefix("udp/") {
                    tokio::task::spawn_local(open_udp_flow(
                        self.dialer.clone(),
                        flow,
                        host.to_string(),
                        port,
                        up.clone(),
                    ));
                    return None;
                }
                tokio::task::spawn_local(open_flow(
                    self.dialer.clone(),
                    flow,
                    host,
                    port,
                    up.clone(),
                ));
                None
            }
            Frame::Data { flow, bytes } => {
                if let Some(tx) = self.flows.get(&flow) {
                    let _ = tx.send(bytes);
                }
                None
            }
            Frame::Close { flow } => {
                self.flows.remove(&flow);
                None
            }
            Frame::Opened { .. } | Frame::Refused { .. } | Frame::KeepaliveAck { .. } => None,
        }
    }
}

async fn send<W: AsyncWrite + Unpin>(
    wr: &mut W,
    out: &mut BytesMut,
    frame: &Frame,
) -> std::io::Result<()> {
    out.clear();
    frame.encode(out);
    wr.write_all(out).await
}

/// Dials the origin, reports Opened or Refused, then pumps bytes both ways.
async fn open_flow<D: Dialer>(
    dialer: D,
    flow: u32,
    host: String,
    port: u16,
    up: mpsc::UnboundedSender<Upstream>,
) {
    let stream = match dialer.dial(&host, port).await {
        Ok(s) => s,
        Err(e) => {
            let reason = format!("origin {host}:{port} unreachable: {e}");
            let _ = up.send(Upstream::Frame(Frame::Refused { flow, reason }));
            return;
        }
    };
    let (mut rd, wr) = tokio::io::split(stream);
    let (down_tx, down_rx) = mpsc::unbounded_channel::<Bytes>();
    tokio::task::spawn_local(pump_down(wr, down_rx));
    let _ = up.send(Upstream::Opened(flow, Box::new(move || down_tx)));
    let mut buf = vec![0u8; agent::wire::MAX_PAYLOAD];
    loop {
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let bytes = Bytes::copy_from_slice(&buf[..n]);
                if up
                    .send(Upstream::Frame(Frame::Data { flow, bytes }))
                    .is_err()
                {
                    return;
                }
            }
        }
    }
    let _ = up.send(Upstream::Frame(Frame::Close { flow }));
}

/// How long the gateway waits for an origin's answer to its UDP probe.
pub const UDP_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The datagram the gateway sends to open a UDP flow.
pub const UDP_PROBE: &[u8] = b"steerlab udp flow open";

/// Opens a UDP flow: one datagram to the origin; an answer within
/// [`UDP_PROBE_TIMEOUT`] reports Opened, none reports Refused.
async fn open_udp_flow<D: Dialer>(
    dialer: D,
    flow: u32,
    host: String,
    port: u16,
    up: mpsc::UnboundedSender<Upstream>,
) {
    let answer = tokio::time::timeout(
        UDP_PROBE_TIMEOUT,
        dialer.exchange_udp(&host, port, UDP_PROBE),
    )
    .await;
    let frame = match answer {
        Ok(Ok(_)) => {
            let _ = up.send(Upstream::Opened(
                flow,
                Box::new(|| mpsc::unbounded_channel().0),
            ));
            return;
        }
        Ok(Err(e)) => Frame::Refused {
            flow,
            reason: format!("origin {host}:{port} unreachable over UDP: {e}"),
        },
        Err(_) => Frame::Refused {
            flow,
            reason: format!(
                "origin {host}:{port} did not answer over UDP in {}s",
                UDP_PROBE_TIMEOUT.as_secs()
            ),
        },
    };
    let _ = up.send(Upstream::Frame(frame));
}

async fn pump_down<S: AsyncWrite>(mut wr: WriteHalf<S>, mut rx: mpsc::UnboundedReceiver<Bytes>) {
    while let Some(bytes) = rx.recv().await {
        if wr.write_all(&bytes).await.is_err() {
            return;
        }
    }
    let _ = wr.shutdown().await;
}
