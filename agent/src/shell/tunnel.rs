//! The tunnel: a TLS connection to the gateway, pinned to the tenant CA, carrying
//! [`crate::wire`] frames.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;

use super::ShellEvent;
use super::net::Net;
use super::tls::classify;
use crate::core::{NetError, OpId, TunnelEvent};
use crate::wire::Frame;

/// Connects, reports [`TunnelEvent::Connected`] or [`TunnelEvent::Failed`], then relays
/// frames until either side closes.
pub async fn run<N: Net>(
    net: N,
    tls: Arc<ClientConfig>,
    server_name: String,
    addr: SocketAddr,
    op: OpId,
    events: mpsc::UnboundedSender<ShellEvent>,
    mut outgoing: mpsc::UnboundedReceiver<Frame>,
) {
    let report = |event| {
        let _ = events.send(ShellEvent::Tunnel(op, event));
    };
    let stream = match connect_tls(&net, tls, &server_name, addr).await {
        Ok(s) => s,
        Err(err) => return report(TunnelEvent::Failed(err)),
    };
    report(TunnelEvent::Connected);
    relay(stream, op, &events, &mut outgoing).await;
}

/// TCP, then TLS 1.3 verified against the tenant CA only.
async fn connect_tls<N: Net>(
    net: &N,
    tls: Arc<ClientConfig>,
    server_name: &str,
    addr: SocketAddr,
) -> Result<impl AsyncRead + AsyncWrite + Unpin + use<N>, NetError> {
    let tcp = net.connect_tcp(addr).await.map_err(|e| classify(&e))?;
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
