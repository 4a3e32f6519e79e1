//! The tunnel: a TLS (TCP) or DTLS (UDP) connection to the gateway, pinned to the tenant
//! CA, carrying [`crate::wire`] frames.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;

use super::ShellEvent;
use super::dtls::{self, DtlsSettings};
use super::net::Net;
use super::tls::classify;
use crate::core::{NetError, OpId, TunnelEvent, TunnelProto};
use crate::wire::Frame;

/// How the tunnel proves the gateway: TLS pinned to the tenant CA, and DTLS if the agent
/// has a certificate for it.
#[derive(Clone)]
pub struct Security {
    /// TLS 1.3, tenant CA only.
    pub tls: Arc<ClientConfig>,
    /// DTLS settings; `None` makes DTLS tunnels fail at once.
    pub dtls: Option<DtlsSettings>,
}

/// Where and how to connect.
pub struct Target {
    /// TLS over TCP or DTLS over UDP.
    pub proto: TunnelProto,
    /// The name the certificate must carry.
    pub server_name: String,
    /// The gateway.
    pub addr: SocketAddr,
    /// An HTTP proxy to go through with CONNECT.
    pub proxy: Option<SocketAddr>,
}

/// Connects, reports [`TunnelEvent::Connected`] or [`TunnelEvent::Failed`], then relays
/// frames until either side closes.
pub async fn run<N: Net>(
    net: N,
    security: Security,
    target: Target,
    op: OpId,
    events: mpsc::UnboundedSender<ShellEvent>,
    mut outgoing: mpsc::UnboundedReceiver<Frame>,
) {
    let Target {
        proto,
        server_name,
        addr,
        proxy,
    } = target;
    match proto {
        TunnelProto::Tls => {
            let stream = connect_tls(&net, security.tls, &server_name, addr, proxy).await;
            serve(stream, op, &events, &mut outgoing).await;
        }
        TunnelProto::Dtls => {
            let stream = match &security.dtls {
                Some(settings) => dtls::connect(&net, settings, &server_name, addr).await,
                None => Err(NetError::Other(
                    "DTLS needs a client certificate, and the agent has none".into(),
                )),
            };
            serve(stream, op, &events, &mut outgoing).await;
        }
    }
}

/// Reports how the connect went and relays frames on success.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: Result<S, NetError>,
    op: OpId,
    events: &mpsc::UnboundedSender<ShellEvent>,
    outgoing: &mut mpsc::UnboundedReceiver<Frame>,
) {
    let report = |event| {
        let _ = events.send(ShellEvent::Tunnel(op, event));
    };
    match stream {
        Ok(stream) => {
            report(TunnelEvent::Connected);
            relay(stream, op, events, outgoing).await;
        }
        Err(err) => report(TunnelEvent::Failed(err)),
    }
}

/// TCP, then TLS 1.3 verified against the tenant CA only.
async fn connect_tls<N: Net>(
    net: &N,
    tls: Arc<ClientConfig>,
    server_name: &str,
    addr: SocketAddr,
    proxy: Option<SocketAddr>,
) -> Result<impl AsyncRead + AsyncWrite + Unpin + use<N>, NetError> {
    let tcp = match proxy {
        None => net.connect_tcp(addr).await.map_err(|e| classify(&e))?,
        Some(proxy) => {
            let mut tcp = net.connect_tcp(proxy).await.map_err(|e| classify(&e))?;
            super::proxy::connect(&mut tcp, server_name, addr.port()).await?;
            tcp
        }
    };
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|e| NetError::Other(format!("bad server name {server_name}: {e}")))?;
    TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| classify(&e))
}

/// Carries frames between the core (via `outgoing` and `events`) and an established
/// tunnel stream until either side closes.
async fn relay<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    op: OpId,
    events: &mpsc::UnboundedSender<ShellEvent>,
    outgoing: &mut mpsc::UnboundedReceiver<Frame>,
) {
    let report = |event| {
        let _ = events.send(ShellEvent::Tunnel(op, event));
    };
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut inbuf = BytesMut::with_capacity(4096);
    let mut outbuf = BytesMut::new();
    loop {
        tokio::select! {
            biased;
            frame = outgoing.recv() => {
                let Some(frame) = frame else {
                    let _ = wr.shutdown().await;
                    return;
                };
                outbuf.clear();
                frame.encode(&mut outbuf);
                if let Err(e) = wr.write_all(&outbuf).await {
                    return report(TunnelEvent::Closed(classify(&e)));
                }
            }
            read = rd.read_buf(&mut inbuf) => {
                match read {
                    Ok(0) => return report(TunnelEvent::Closed(NetError::Closed)),
                    Ok(_) => loop {
                        match Frame::decode(&mut inbuf) {
                            Ok(Some(Frame::KeepaliveAck { seq })) => {
                                report(TunnelEvent::KeepaliveAck { seq });
                            }
                            Ok(Some(Frame::Opened { flow })) => report(TunnelEvent::FlowOpened { flow }),
                            Ok(Some(Frame::Refused { flow, reason })) => {
                                report(TunnelEvent::FlowRefused { flow, reason });
                            }
                            Ok(Some(_)) => {}
                            Ok(None) => break,
                            Err(e) => {
                                return report(TunnelEvent::Closed(NetError::Other(e.to_string())));
                            }
                        }
                    },
                    Err(e) => return report(TunnelEvent::Closed(classify(&e))),
                }
            }
        }
    }
}
