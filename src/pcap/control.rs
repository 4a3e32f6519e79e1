//! The agent's own connections in a capture (DNS over HTTPS, the TLS and DTLS tunnel to
//! a gateway) and how each ended: an unanswered SYN, a refusal (RST), a TLS alert, a
//! handshake the client abandoned, or an answer.
//!
//! TLS is read from record headers only (RFC 8446 section 5.1): the payload is
//! encrypted, but the order of records tells the story. A TLS 1.3 server sends encrypted
//! handshake records before the client's first; the client then sends its Finished and
//! its request, each in an application-data record, so encrypted data from the server
//! after the client's second record is an answer. A client that sends a single record
//! and closes has rejected the handshake (an encrypted alert: e.g. an untrusted
//! certificate). Plaintext alerts (RFC 8446 section 6) are named.

use std::time::Duration;

/// Which of the agent's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlKind {
    /// DNS over HTTPS.
    Doh,
    /// The tunnel to a gateway; `backup` when it is the backup gateway.
    Gateway {
        /// The scenario's backup gateway.
        backup: bool,
    },
}

/// One TCP connection of the agent's own.
#[derive(Debug, Clone)]
pub struct Control {
    kind: ControlKind,
    /// The packet that showed it first (its SYN, or its first packet when the capture
    /// started after the SYN).
    pub packet: usize,
    /// When, since the capture's start.
    pub at: Duration,
    /// `ip:port`.
    dst: String,
    syn_acked: bool,
    reset_by: Option<Side>,
    alert: Option<(Side, u8)>,
    up: Records,
    down: Records,
    client_app: u32,
    server_app_early: bool,
    answered_bytes: u64,
}

/// Who sent something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The endpoint.
    Client,
    /// The server.
    Server,
}

impl Side {
    fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

impl Control {
    /// A connection to `dst` first seen at `packet`; `syn` when that packet is its SYN.
    pub fn new(kind: ControlKind, packet: usize, at: Duration, dst: String, syn: bool) -> Self {
        Control {
            kind,
            packet,
            at,
            dst,
            syn_acked: !syn,
            reset_by: None,
            alert: None,
            up: Records::default(),
            down: Records::default(),
            client_app: 0,
            server_app_early: false,
            answered_bytes: 0,
        }
    }

    /// The server answered the SYN.
    pub fn syn_ack(&mut self) {
        self.syn_acked = true;
    }

    /// A RST from `side`.
    pub fn reset(&mut self, side: Side) {
        self.reset_by.get_or_insert(side);
    }

    /// In-order stream bytes from `side`.
    pub fn bytes(&mut self, side: Side, bytes: &[u8]) {
        let records = match side {
            Side::Client => &mut self.up,
            Side::Server => &mut self.down,
        };
        let mut events = Vec::new();
        records.feed(bytes, &mut |e| events.push(e));
        for event in events {
            match (side, event) {
                (_, Record::Alert(desc)) => {
                    self.alert.get_or_insert((side, desc));
                }
                (Side::Client, Record::AppData(_)) => self.client_app += 1,
                (Side::Server, Record::AppData(len)) => {
                    if self.client_app == 0 {
                        self.server_app_early = true;
                    }
                    let needed = if self.server_app_early { 2 } else { 1 };
                    if self.client_app >= needed {
                        self.answered_bytes += u64::from(len);
                    }
                }
                (_, Record::Other) => {}
            }
        }
    }

    /// Whether the ending is known (an answer or an alert): nothing more to read.
    pub fn settled(&self) -> bool {
        self.answered_bytes > 0 || self.alert.is_some()
    }

    /// The line for the report: what, when, which packet, and how it ended.
    pub fn line(&self) -> String {
        let what = match self.kind {
            ControlKind::Doh => format!("DNS over HTTPS to {}", self.dst),
            ControlKind::Gateway { backup: false } => format!("tunnel TLS to gateway {}", self.dst),
            ControlKind::Gateway { backup: true } => {
                format!("tunnel TLS to gateway {} (the backup)", self.dst)
            }
        };
        format!(
            "+{}.{:03}s {what} (packet {}): {}",
            self.at.as_secs(),
            self.at.subsec_millis(),
            self.packet,
            self.outcome()
        )
    }

    fn outcome(&self) -> String {
        if let Some((side, desc)) = self.alert {
            return format!("TLS alert from the {}: {}", side.as_str(), alert_name(desc));
        }
        if self.answered_bytes > 0 {
            let answer = match self.kind {
                ControlKind::Doh => "answered",
                ControlKind::Gateway { .. } => "handshake done, data both ways",
            };
            return format!(
                "{answer} ({} bytes of encrypted data from the server)",
                self.answered_bytes
            );
        }
        if self.server_app_early && self.client_app == 1 {
            return "the client abandoned the TLS handshake (an encrypted alert: e.g. an untrusted certificate)"
                .to_string();
        }
        if let Some(side) = self.reset_by {
            return if side == Side::Server && !self.syn_acked {
                "refused (RST from the server)".to_string()
            } else {
                format!("reset by the {}", side.as_str())
            };
        }
        if !self.syn_acked {
            return "unanswered SYN".to_string();
        }
        if self.down.records == 0 {
            return "connected, no TLS from the server".to_string();
        }
        "TLS handshake started, no answer seen".to_string()
    }
}

/// One DTLS (or other UDP) exchange of the agent's own: datagrams each way.
#[derive(Debug, Clone)]
pub struct UdpControl {
    /// The first datagram's packet number.
    pub packet: usize,
    /// When, since the capture's start.
    pub at: Duration,
    label: String,
    sent: u64,
    received: u64,
}

impl UdpControl {
    /// A UDP exchange `label`led, first seen at `packet`.
    pub fn new(label: String, packet: usize, at: Duration) -> Self {
        UdpControl {
            packet,
            at,
            label,
            sent: 0,
            received: 0,
        }
    }

    /// A datagram from the client (`up`) or back.
    pub fn datagram(&mut self, up: bool) {
        if up {
            self.sent += 1;
        } else {
            self.received += 1;
        }
    }

    /// The line for the report.
    pub fn line(&self) -> String {
        let outcome = if self.received == 0 {
            format!("unanswered ({} datagram(s) sent, none back)", self.sent)
        } else {
            format!("{} datagram(s) sent, {} received", self.sent, self.received)
        };
        format!(
            "+{}.{:03}s {} (packet {}): {outcome}",
            self.at.as_secs(),
            self.at.subsec_millis(),
            self.label,
            self.packet
        )
    }
}

/// A TLS record seen in a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Record {
    /// A plaintext alert, with its description.
    Alert(u8),
    /// Application data (or TLS 1.3 encrypted handshake), with its length.
    AppData(u16),
    /// Handshake, change cipher spec, heartbeat.
    Other,
}

/// TLS record headers of one direction, across segment boundaries.
#[derive(Debug, Clone, Default)]
struct Records {
    header: [u8; 5],
    header_len: usize,
    /// Body bytes of the current record still to skip.
    left: usize,
    /// A plaintext alert's first body bytes.
    alert: Option<[u8; 2]>,
    alert_len: usize,
    records: u32,
    /// Not TLS: stop reading.
    broken: bool,
}

impl Records {
    fn feed(&mut self, mut bytes: &[u8], out: &mut impl FnMut(Record)) {
        while !bytes.is_empty() && !self.broken {
            if self.left > 0 {
                let n = self.left.min(bytes.len());
                if let Some(alert) = &mut self.alert {
                    for b in &bytes[..n] {
                        if self.alert_len < 2 {
                            alert[self.alert_len] = *b;
                            self.alert_len += 1;
                        }
                    }
                }
                self.left -= n;
                bytes = &bytes[n..];
                if self.left == 0
                    && let Some(alert) = self.alert.take()
                {
                    out(Record::Alert(alert[1]));
                }
                continue;
            }
            let n = (5 - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&bytes[..n]);
            self.header_len += n;
            bytes = &bytes[n..];
            if self.header_len < 5 {
                return;
            }
            self.header_len = 0;
            let [kind, major, _, hi, lo] = self.header;
            let len = u16::from_be_bytes([hi, lo]);
            if !(20..=24).contains(&kind) || major != 3 {
                self.broken = true;
                return;
            }
            self.records += 1;
            self.left = usize::from(len);
            match kind {
                // A plaintext alert is two bytes; a longer one is encrypted (TLS 1.2).
                21 if len == 2 => {
                    self.alert = Some([0; 2]);
                    self.alert_len = 0;
                }
                21 => out(Record::Other),
                23 => out(Record::AppData(len)),
                _ => out(Record::Other),
            }
            if self.left == 0
                && let Some(alert) = self.alert.take()
            {
                out(Record::Alert(alert[1]));
            }
        }
    }
}

/// The name of a TLS alert description (RFC 8446 section 6).
pub fn alert_name(desc: u8) -> String {
    let name = match desc {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        22 => "record_overflow",
        40 => "handshake_failure",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        109 => "missing_extension",
        110 => "unsupported_extension",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        other => return format!("alert {other}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![kind, 3, 3];
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn doh() -> Control {
        Control::new(
            ControlKind::Doh,
            3,
            Duration::from_millis(1500),
            "8.8.8.8:443".into(),
            true,
        )
    }

    #[test]
    fn unanswered_refused_and_reset() {
        let c = doh();
        assert_eq!(
            c.line(),
            "+1.500s DNS over HTTPS to 8.8.8.8:443 (packet 3): unanswered SYN"
        );
        let mut c = doh();
        c.reset(Side::Server);
        assert!(
            c.line().ends_with("refused (RST from the server)"),
            "{}",
            c.line()
        );
        let mut c = doh();
        c.syn_ack();
        c.bytes(Side::Client, &record(22, &[1; 100]));
        c.reset(Side::Server);
        assert!(c.line().ends_with("reset by the server"), "{}", c.line());
    }

    #[test]
    fn a_plaintext_alert_split_over_segments() {
        let mut c = doh();
        c.syn_ack();
        c.bytes(Side::Client, &record(22, &[1; 50]));
        let alert = record(21, &[2, 48]);
        for b in &alert {
            c.bytes(Side::Server, std::slice::from_ref(b));
        }
        assert!(
            c.line().ends_with("TLS alert from the server: unknown_ca"),
            "{}",
            c.line()
        );
    }

    #[test]
    fn tls13_answer_and_abandoned_handshake() {
        let server_flight = [
            record(22, &[2; 90]),
            record(20, &[1]),
            record(23, &[0; 400]),
        ]
        .concat();
        let mut c = doh();
        c.syn_ack();
        c.bytes(Side::Client, &record(22, &[1; 200]));
        c.bytes(Side::Server, &server_flight);
        c.bytes(
            Side::Client,
            &[
                record(20, &[1]),
                record(23, &[0; 53]),
                record(23, &[0; 120]),
            ]
            .concat(),
        );
        c.bytes(Side::Server, &record(23, &[0; 250]));
        assert!(
            c.line()
                .ends_with("answered (250 bytes of encrypted data from the server)"),
            "{}",
            c.line()
        );

        let mut c = doh();
        c.syn_ack();
        c.bytes(Side::Client, &record(22, &[1; 200]));
        c.bytes(Side::Server, &server_flight);
        c.bytes(Side::Client, &record(23, &[0; 19]));
        assert!(
            c.line().contains("the client abandoned the TLS handshake"),
            "{}",
            c.line()
        );
    }

    #[test]
    fn not_tls_stops_reading() {
        let mut c = doh();
        c.syn_ack();
        c.bytes(Side::Server, b"HTTP/1.1 400 Bad Request\r\n\r\n");
        assert!(
            c.line().ends_with("connected, no TLS from the server"),
            "{}",
            c.line()
        );
    }

    #[test]
    fn udp_counts() {
        let mut u = UdpControl::new(
            "tunnel DTLS to gateway 8.36.116.35:443".into(),
            2,
            Duration::ZERO,
        );
        u.datagram(true);
        u.datagram(true);
        assert!(
            u.line()
                .ends_with("unanswered (2 datagram(s) sent, none back)")
        );
        u.datagram(false);
        assert!(u.line().ends_with("2 datagram(s) sent, 1 received"));
    }
}
