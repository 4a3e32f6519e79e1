//! UDP for the world's servers that speak datagrams: the gateway's DTLS on UDP 443.
//!
//! sim-gateway takes any [`sim_gateway::Udp`]; it implements it for tokio's socket itself
//! (real mode), and the orphan rule leaves turmoil's to a wrapper here.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

use sim_gateway::{Dialer, Gateway, Udp};

/// A turmoil UDP socket as the gateway's [`Udp`].
#[derive(Debug)]
pub struct SimUdpSocket(pub turmoil::net::UdpSocket);

impl Udp for SimUdpSocket {
    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> io::Result<usize> {
        self.0.send_to(buf, addr).await
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.0.recv_from(buf).await
    }
}

/// Serves a gateway's DTLS (see [`Gateway::with_dtls`]) on UDP `port` of a turmoil host.
pub async fn gateway_dtls<D: Dialer>(gw: Gateway<D>, port: u16) -> turmoil::Result {
    let socket = turmoil::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).await?;
    gw.serve_dtls(SimUdpSocket(socket)).await?;
    Ok(())
}
