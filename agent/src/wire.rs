//! The tunnel's framing, spoken by the agent and the gateway over TLS (or DTLS).
//!
//! Every frame is `kind: u8, flow: u32 (big endian), len: u16 (big endian), payload`.
//! Flow 0 is the tunnel itself (keepalives). See `docs/tunnel-framing.md`.
//!
//! | kind | name          | payload                                   |
//! |------|---------------|-------------------------------------------|
//! | 1    | Open          | `host:port` then `\n` then process name   |
//! | 2    | Opened        | empty                                     |
//! | 3    | Refused       | reason text (policy block, origin down)   |
//! | 4    | Data          | bytes of the flow                         |
//! | 5    | Close         | empty                                     |
//! | 6    | Keepalive     | 8-byte sequence number                    |
//! | 7    | KeepaliveAck  | 8-byte sequence number                    |

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The largest payload one frame carries.
pub const MAX_PAYLOAD: usize = 16 * 1024;

/// The size of a frame header.
pub const HEADER_LEN: usize = 7;

/// One tunnel frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Open a flow to `target` (`host:port`) for `process`.
    Open {
        /// Flow id chosen by the agent.
        flow: u32,
        /// `host:port`.
        target: String,
        /// The app's process name.
        process: String,
    },
    /// The gateway reached the origin.
    Opened {
        /// Flow id.
        flow: u32,
    },
    /// The gateway did not open the flow.
    Refused {
        /// Flow id.
        flow: u32,
        /// Why.
        reason: String,
    },
    /// Flow bytes.
    Data {
        /// Flow id.
        flow: u32,
        /// Bytes.
        bytes: Bytes,
    },
    /// The flow is over.
    Close {
        /// Flow id.
        flow: u32,
    },
    /// Are you there?
    Keepalive {
        /// Sequence number.
        seq: u64,
    },
    /// Who is behind this tunnel (the agent's enrolled user), sent once the tunnel is up;
    /// the gateway's policy may depend on the user's groups.
    Hello {
        /// The user, e.g. `bob@acme.com`.
        user: String,
    },
    /// I am.
    KeepaliveAck {
        /// Sequence number echoed.
        seq: u64,
    },
}

/// Why bytes are not a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// An unknown frame kind.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// A payload too long or malformed for its kind.
    #[error("malformed {kind} frame: {why}")]
    Malformed {
        /// The frame kind's name.
        kind: &'static str,
        /// What is wrong.
        why: &'static str,
    },
}

impl Frame {
    /// Appends the encoded frame to `out`. Payloads over [`MAX_PAYLOAD`] are cut.
    pub fn encode(&self, out: &mut BytesMut) {
        let (kind, flow, payload): (u8, u32, Bytes) = match self {
            Frame::Open {
                flow,
                target,
                process,
            } => (1, *flow, Bytes::from(format!("{target}\n{process}"))),
            Frame::Opened { flow } => (2, *flow, Bytes::new()),
            Frame::Refused { flow, reason } => (3, *flow, Bytes::from(reason.clone())),
            Frame::Data { flow, bytes } => (4, *flow, bytes.clone()),
            Frame::Close { flow } => (5, *flow, Bytes::new()),
            Frame::Keepalive { seq } => (6, 0, Bytes::copy_from_slice(&seq.to_be_bytes())),
            Frame::KeepaliveAck { seq } => (7, 0, Bytes::copy_from_slice(&seq.to_be_bytes())),
            Frame::Hello { user } => (8, 0, Bytes::from(user.clone())),
        };
        let payload = &payload[..payload.len().min(MAX_PAYLOAD)];
        out.put_u8(kind);
        out.put_u32(flow);
        out.put_u16(payload.len() as u16);
        out.put_slice(payload);
    }

    /// Takes one frame off the front of `buf`, if a whole one is there.
    pub fn decode(buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let kind = buf[0];
        let flow = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
        let len = usize::from(u16::from_be_bytes([buf[5], buf[6]]));
        if !(1..=8).contains(&kind) {
            return Err(FrameError::UnknownKind(kind));
        }
        if len > MAX_PAYLOAD {
            return Err(FrameError::Malformed {
                kind: kind_name(kind),
                why: "payload longer than the maximum",
            });
        }
        if buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        buf.advance(HEADER_LEN);
        let payload = buf.split_to(len).freeze();
        let text = |kind| {
            String::from_utf8(payload.to_vec()).map_err(|_| FrameError::Malformed {
                kind,
                why: "payload is not UTF-8",
            })
        };
        let seq = |kind| -> Result<u64, FrameError> {
            let arr: [u8; 8] = payload[..].try_into().map_err(|_| FrameError::Malformed {
                kind,
                why: "sequence number is not 8 bytes",
            })?;
            Ok(u64::from_be_bytes(arr))
        };
        Ok(Some(match kind {
            1 => {
                let t = text("Open")?;
                let (target, process) = t.split_once('\n').unwrap_or((t.as_str(), ""));
                Frame::Open {
                    flow,
                    target: target.to_string(),
                    process: process.to_string(),
                }
            }
            2 => Frame::Opened { flow },
            3 => Frame::Refused {
                flow,
                reason: text("Refused")?,
            },
            4 => Frame::Data {
                flow,
                bytes: payload,
            },
            5 => Frame::Close { flow },
            6 => Frame::Keepalive {
                seq: seq("Keepalive")?,
            },
            8 => Frame::Hello {
                user: text("Hello")?,
            },
            _ => Frame::KeepaliveAck {
                seq: seq("KeepaliveAck")?,
            },
        }))
    }
}

fn kind_name(kind: u8) -> &'static str {
    match kind {
        1 => "Open",
        2 => "Opened",
        3 => "Refused",
        4 => "Data",
        5 => "Close",
        6 => "Keepalive",
        8 => "Hello",
        _ => "KeepaliveAck",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip() {
        let frames = vec![
            Frame::Open {
                flow: 7,
                target: "www.box.com:443".into(),
                process: "chrome.exe".into(),
            },
            Frame::Opened { flow: 7 },
            Frame::Refused {
                flow: 7,
                reason: "blocked by policy".into(),
            },
            Frame::Data {
                flow: 7,
                bytes: Bytes::from_static(b"hello"),
            },
            Frame::Close { flow: 7 },
            Frame::Keepalive { seq: 3 },
            Frame::KeepaliveAck { seq: 3 },
            Frame::Hello {
                user: "bob@acme.com".into(),
            },
        ];
        let mut buf = BytesMut::new();
        for f in &frames {
            f.encode(&mut buf);
        }
        for f in &frames {
            assert_eq!(Frame::decode(&mut buf).unwrap().as_ref(), Some(f));
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn partial_frames_wait_for_more() {
        let mut buf = BytesMut::new();
        Frame::Keepalive { seq: 1 }.encode(&mut buf);
        let mut part = buf.split_to(5);
        assert_eq!(Frame::decode(&mut part), Ok(None));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = Frame::decode(&mut buf) {}
        }
    }
}
