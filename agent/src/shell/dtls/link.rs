//! One dimpl session on a UDP socket with one peer: draining dimpl's output, waking on
//! datagrams, timers and the stream's side, and the pump that runs after the handshake.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;
use dimpl::{Dtls, Output};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};

use crate::core::NetError;
use crate::shell::net::Datagram;
use crate::shell::tls::classify;

/// The largest datagram read.
const MAX_DATAGRAM: usize = 64 * 1024;
/// Bytes from the gateway waiting for the stream's reader before datagrams wait too.
const BACKLOG: usize = 256 * 1024;

pub(super) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// A dimpl error as the core sees it: every one is fatal to the session.
pub(super) fn failed(err: dimpl::Error) -> NetError {
    NetError::Tls(err.to_string())
}

fn send_failed(err: &io::Error) -> NetError {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => NetError::Refused,
        _ => classify(err),
    }
}

/// Cuts the next whole tunnel frame (header, then `len` at bytes 5..7, then payload; see
/// `docs/tunnel-framing.md`) off `buf`, once it is all there.
fn next_frame(buf: &mut BytesMut) -> Option<BytesMut> {
    let header = buf.get(..crate::wire::HEADER_LEN)?;
    let len = crate::wire::HEADER_LEN + usize::from(u16::from_be_bytes([header[5], header[6]]));
    (buf.len() >= len).then(|| buf.split_to(len))
}

/// The stream's side of the pump.
struct App<'a> {
    rd: &'a mut ReadHalf<DuplexStream>,
    wr: &'a mut WriteHalf<DuplexStream>,
    outgoing: &'a mut BytesMut,
}

/// What woke the pump up.
enum Wake {
    Wrote(io::Result<usize>),
    Read(io::Result<usize>),
    Datagram(io::Result<(usize, SocketAddr)>),
    Timer,
}

/// One dimpl session on a socket, talking to one peer.
pub(super) struct Link<U> {
    pub(super) dtls: Dtls,
    socket: U,
    peer: SocketAddr,
    out: Vec<u8>,
    datagram: Vec<u8>,
    deadline: Option<Instant>,
    received: BytesMut,
    pub(super) peer_cert: Option<Vec<u8>>,
    pub(super) connected: bool,
    pub(super) close_notify: bool,
}

impl<U: Datagram> Link<U> {
    pub(super) fn new(dtls: Dtls, socket: U, peer: SocketAddr) -> Link<U> {
        Link {
            dtls,
            socket,
            peer,
            out: vec![0; 2048],
            datagram: vec![0; MAX_DATAGRAM],
            deadline: None,
            received: BytesMut::new(),
            peer_cert: None,
            connected: false,
            close_notify: false,
        }
    }

    /// Drains dimpl's output up to its next timeout; returns the datagrams to send.
    pub(super) fn drain(&mut self) -> Result<Vec<Vec<u8>>, NetError> {
        let mut packets = Vec::new();
        loop {
            let have = self.out.len();
            match self.dtls.poll_output(&mut self.out) {
                Output::Packet(p) => packets.push(p.to_vec()),
                Output::BufferTooSmall { needed } if needed > have => {
                    self.out.resize(needed, 0);
                }
                Output::BufferTooSmall { needed } => {
                    return Err(NetError::Other(format!("DTLS wants {needed} bytes")));
                }
                Output::Timeout(at) => {
                    self.deadline = Some(at);
                    return Ok(packets);
                }
                Output::Connected => self.connected = true,
                Output::PeerCert(der) => self.peer_cert = Some(der.to_vec()),
                Output::ApplicationData(data) => self.received.extend_from_slice(data),
                Output::CloseNotify => self.close_notify = true,
                _ => {} // DTLS-SRTP keying material: not used.
            }
        }
    }

    pub(super) async fn send(&self, packets: Vec<Vec<u8>>) -> Result<(), NetError> {
        for packet in packets {
            let sent = self.socket.send_to(&packet, self.peer).await;
            sent.map_err(|e| send_failed(&e))?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), NetError> {
        let packets = self.drain()?;
        self.send(packets).await
    }

    /// Waits for a datagram or the next timer and feeds it to dimpl (the handshake).
    pub(super) async fn wait(&mut self) -> Result<(), NetError> {
        match self.wake(None).await {
            Wake::Datagram(got) => self.on_datagram(got),
            Wake::Timer => self.on_timer(),
            Wake::Wrote(_) | Wake::Read(_) => Ok(()),
        }
    }

    /// Waits for a datagram, the next timer, or (with `app`) the stream's side.
    async fn wake(&mut self, app: Option<App<'_>>) -> Wake {
        let deadline = self.deadline;
        let timer = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let (rd, wr, outgoing) = match app {
            Some(App { rd, wr, outgoing }) => (Some(rd), Some(wr), Some(outgoing)),
            None => (None, None, None),
        };
        let (reading, writing) = (rd.is_some(), wr.is_some() && !self.received.is_empty());
        // Stop taking datagrams while the stream side is not reading what came.
        let listening = self.received.len() < BACKLOG;
        tokio::select! {
            biased;
            got = self.socket.recv_from(&mut self.datagram), if listening => Wake::Datagram(got),
            () = timer => Wake::Timer,
            wrote = async {
                match wr {
                    Some(wr) => wr.write_buf(&mut self.received).await,
                    None => std::future::pending().await,
                }
            }, if writing => Wake::Wrote(wrote),
            read = async {
                match (rd, outgoing) {
                    (Some(rd), Some(outgoing)) => rd.read_buf(outgoing).await,
                    _ => std::future::pending().await,
                }
            }, if reading => Wake::Read(read),
        }
    }

    fn on_datagram(&mut self, got: io::Result<(usize, SocketAddr)>) -> Result<(), NetError> {
        let (n, from) = got.map_err(|e| classify(&e))?;
        if from != self.peer {
            return Ok(());
        }
        self.dtls.handle_timeout(now()).map_err(failed)?;
        let packet = self.datagram.get(..n).unwrap_or_default();
        self.dtls.handle_packet(packet).map_err(failed)
    }

    fn on_timer(&mut self) -> Result<(), NetError> {
        self.dtls.handle_timeout(now()).map_err(failed)
    }

    /// Hands `outgoing`'s whole frames to dimpl, one record per frame (or per `record`
    /// bytes of a longer one), sending as it goes so dimpl's queue never fills.
    async fn send_frames(
        &mut self,
        outgoing: &mut BytesMut,
        record: usize,
    ) -> Result<(), NetError> {
        while let Some(frame) = next_frame(outgoing) {
            for chunk in frame.chunks(record) {
                self.dtls.send_application_data(chunk).map_err(failed)?;
                self.flush().await?;
            }
        }
        Ok(())
    }

    /// Carries bytes between `pipe` and the peer until either side ends.
    pub(super) async fn pump(mut self, pipe: DuplexStream, record: usize) {
        let (mut rd, mut wr) = tokio::io::split(pipe);
        let mut outgoing = BytesMut::new();
        let mut open = true;
        loop {
            if self.flush().await.is_err() || !open {
                return;
            }
            if self.close_notify && self.received.is_empty() {
                let _ = wr.shutdown().await;
                return;
            }
            let app = App {
                rd: &mut rd,
                wr: &mut wr,
                outgoing: &mut outgoing,
            };
            let step = match self.wake(Some(app)).await {
                Wake::Datagram(got) => self.on_datagram(got),
                Wake::Timer => self.on_timer(),
                Wake::Wrote(Ok(n)) if n > 0 => Ok(()),
                Wake::Wrote(_) => return,
                Wake::Read(Ok(n)) if n > 0 => self.send_frames(&mut outgoing, record).await,
                Wake::Read(_) => {
                    // The stream was dropped: say goodbye (sent by the next flush).
                    open = false;
                    self.dtls.close().map_err(failed)
                }
            };
            if step.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Frame;

    #[test]
    fn frames_are_cut_whole_and_only_whole() {
        let mut buf = BytesMut::new();
        Frame::Keepalive { seq: 7 }.encode(&mut buf);
        let data = Frame::Data {
            flow: 3,
            bytes: vec![9; 3000].into(),
        };
        data.encode(&mut buf);
        let first = next_frame(&mut buf).unwrap();
        assert_eq!(first.len(), crate::wire::HEADER_LEN + 8);
        let mut tail = buf.split_off(100);
        assert!(next_frame(&mut buf).is_none(), "a partial frame stays");
        buf.unsplit(tail.split());
        let mut second = next_frame(&mut buf).unwrap();
        assert!(buf.is_empty());
        assert_eq!(Frame::decode(&mut second).unwrap(), Some(data));
        assert!(next_frame(&mut BytesMut::from(&[4u8, 0, 0][..])).is_none());
    }

    #[test]
    fn errors_map_for_the_core() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(send_failed(&refused), NetError::Refused);
        let timeout = dimpl::Error::Timeout(dimpl::TimeoutError::Handshake);
        assert!(matches!(failed(timeout), NetError::Tls(text) if text.contains("timeout")));
    }
}
