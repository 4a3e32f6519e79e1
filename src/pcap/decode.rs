//! One captured frame to its TCP or UDP segment: link layers (Ethernet with VLAN tags,
//! Linux cooked SLL and SLL2, BSD loopback, raw IP), IPv4 and IPv6 (extension headers
//! walked), TCP and UDP. Borrowed, no allocation, no panic on any input; a frame cut by
//! the snaplen still gives what it holds, flagged `cut`.
//!
//! RFC 791 (IPv4), RFC 8200 (IPv6), RFC 9293 (TCP), RFC 768 (UDP).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// What a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A TCP or UDP segment.
    Segment(Segment<'a>),
    /// Not TCP or UDP over IP (ARP, ICMP, LLC...).
    Other,
    /// An IP fragment: not reassembled.
    Fragment {
        /// The fragment's offset in bytes.
        offset: u32,
    },
    /// Broken: the reason, a lowercase fragment.
    Undecodable(&'static str),
    /// A link type this reader does not know.
    UnknownLink(u32),
}

/// A TCP or UDP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Source.
    pub src: SocketAddr,
    /// Destination.
    pub dst: SocketAddr,
    /// TCP (sequence numbers and flags) or UDP.
    pub proto: Proto,
    /// The transport payload as captured.
    pub payload: &'a [u8],
    /// The IP header says there is more than was captured (the snaplen cut it).
    pub cut: bool,
}

/// The transport header's fields replay uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// TCP.
    Tcp {
        /// Sequence number.
        seq: u32,
        /// Flags.
        flags: TcpFlags,
    },
    /// UDP.
    Udp,
}

/// TCP flags, as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// FIN set.
    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    /// SYN set.
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    /// RST set.
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    /// ACK set.
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;

/// Decodes one frame of link type `link` (LINKTYPE_* numbers).
pub fn decode(link: u32, data: &[u8]) -> Decoded<'_> {
    match link {
        // Ethernet.
        1 => ethernet(data),
        // Raw IP (101, and 12/14 on some systems), IPv4 only (228), IPv6 only (229).
        101 | 12 | 14 | 228 | 229 => ip(data),
        // Linux cooked v1: 16 bytes, the protocol in the last two.
        113 => match (be16(data, 14), data.get(16..)) {
            (Some(ethertype), Some(rest)) => by_ethertype(ethertype, rest),
            _ => Decoded::Undecodable("linux cooked header cut short"),
        },
        // Linux cooked v2: 20 bytes, the protocol in the first two.
        276 => match (be16(data, 0), data.get(20..)) {
            (Some(ethertype), Some(rest)) => by_ethertype(ethertype, rest),
            _ => Decoded::Undecodable("linux cooked v2 header cut short"),
        },
        // BSD loopback and NULL: a 4-byte address family (either byte order), then IP.
        0 | 108 => match data.get(4..) {
            Some(rest) if !rest.is_empty() => ip(rest),
            _ => Decoded::Undecodable("loopback header cut short"),
        },
        other => Decoded::UnknownLink(other),
    }
}

fn ethernet(data: &[u8]) -> Decoded<'_> {
    let mut at = 12;
    // VLAN tags (802.1Q, 802.1ad, and the old 0x9100), up to three.
    for _ in 0..4 {
        let Some(ethertype) = be16(data, at) else {
            return Decoded::Undecodable("ethernet header cut short");
        };
        match ethertype {
            0x8100 | 0x88a8 | 0x9100 => at += 4,
            _ => {
                return match data.get(at + 2..) {
                    Some(rest) => by_ethertype(ethertype, rest),
                    None => Decoded::Undecodable("ethernet header cut short"),
                };
            }
        }
    }
    Decoded::Other
}

fn by_ethertype(ethertype: u16, rest: &[u8]) -> Decoded<'_> {
    match ethertype {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => ip(rest),
        _ => Decoded::Other,
    }
}

fn ip(data: &[u8]) -> Decoded<'_> {
    match data.first().map(|b| b >> 4) {
        Some(4) => ipv4(data),
        Some(6) => ipv6(data),
        Some(_) => Decoded::Undecodable("IP version is neither 4 nor 6"),
        None => Decoded::Undecodable("empty IP packet"),
    }
}

fn ipv4(data: &[u8]) -> Decoded<'_> {
    if data.len() < 20 {
        return Decoded::Undecodable("IPv4 header cut short");
    }
    let ihl = usize::from(data[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([data[2], data[3]]));
    if ihl < 20 {
        return Decoded::Undecodable("IPv4 header length below 20 bytes");
    }
    if data.len() < ihl {
        return Decoded::Undecodable("IPv4 options cut short");
    }
    // TSO captures can say 0; otherwise the total bounds the payload (Ethernet pads).
    let total = if total == 0 { data.len() } else { total };
    if total < ihl {
        return Decoded::Undecodable("IPv4 total length shorter than its header");
    }
    let more_fragments = data[6] & 0x20 != 0;
    let offset = u32::from(u16::from_be_bytes([data[6] & 0x1f, data[7]])) * 8;
    if more_fragments || offset > 0 {
        return Decoded::Fragment { offset };
    }
    let src = IpAddr::V4(Ipv4Addr::new(data[12], data[13], data[14], data[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(data[16], data[17], data[18], data[19]));
    let cut = total > data.len();
    let payload = &data[ihl..total.min(data.len())];
    transport(data[9], src, dst, payload, cut)
}

fn ipv6(data: &[u8]) -> Decoded<'_> {
    if data.len() < 40 {
        return Decoded::Undecodable("IPv6 header cut short");
    }
    let declared = usize::from(u16::from_be_bytes([data[4], data[5]]));
    let mut next = data[6];
    let src = IpAddr::V6(Ipv6Addr::from(array16(&data[8..24])));
    let dst = IpAddr::V6(Ipv6Addr::from(array16(&data[24..40])));
    let body = &data[40..];
    // A zero payload length is a jumbogram (or TSO): take what was captured.
    let (mut rest, cut) = if declared == 0 {
        (body, false)
    } else {
        (&body[..declared.min(body.len())], declared > body.len())
    };
    for _ in 0..8 {
        match next {
            // Hop-by-hop, routing, destination options.
            0 | 43 | 60 => {
                let Some(len) = rest.get(1).map(|l| (usize::from(*l) + 1) * 8) else {
                    return Decoded::Undecodable("IPv6 extension header cut short");
                };
                let Some(after) = rest.get(len..) else {
                    return Decoded::Undecodable("IPv6 extension header cut short");
                };
                next = rest[0];
                rest = after;
            }
            // Authentication header.
            51 => {
                let Some(len) = rest.get(1).map(|l| (usize::from(*l) + 2) * 4) else {
                    return Decoded::Undecodable("IPv6 authentication header cut short");
                };
                let Some(after) = rest.get(len..) else {
                    return Decoded::Undecodable("IPv6 authentication header cut short");
                };
                next = rest[0];
                rest = after;
            }
            // Fragment: an atomic fragment (offset 0, no more) is a whole packet.
            44 => {
                let Some(header) = rest.get(..8) else {
                    return Decoded::Undecodable("IPv6 fragment header cut short");
                };
                let word = u16::from_be_bytes([header[2], header[3]]);
                let offset = u32::from(word >> 3) * 8;
                if offset > 0 || word & 1 != 0 {
                    return Decoded::Fragment { offset };
                }
                next = header[0];
                rest = &rest[8..];
            }
            proto => return transport(proto, src, dst, rest, cut),
        }
    }
    Decoded::Undecodable("too many IPv6 extension headers")
}

fn transport<'a>(proto: u8, src: IpAddr, dst: IpAddr, data: &'a [u8], cut: bool) -> Decoded<'a> {
    match proto {
        6 => {
            if data.len() < 20 {
                return Decoded::Undecodable("TCP header cut short");
            }
            let offset = usize::from(data[12] >> 4) * 4;
            if offset < 20 {
                return Decoded::Undecodable("TCP data offset below 20 bytes");
            }
            let Some(payload) = data.get(offset..) else {
                return Decoded::Undecodable("TCP options cut short");
            };
            Decoded::Segment(Segment {
                src: SocketAddr::new(src, u16::from_be_bytes([data[0], data[1]])),
                dst: SocketAddr::new(dst, u16::from_be_bytes([data[2], data[3]])),
                proto: Proto::Tcp {
                    seq: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
                    flags: TcpFlags(data[13]),
                },
                payload,
                cut,
            })
        }
        17 => {
            if data.len() < 8 {
                return Decoded::Undecodable("UDP header cut short");
            }
            let len = usize::from(u16::from_be_bytes([data[4], data[5]]));
            // A zero length (jumbogram, or offload) means "the rest".
            let end = if len >= 8 {
                len.min(data.len())
            } else {
                data.len()
            };
            Decoded::Segment(Segment {
                src: SocketAddr::new(src, u16::from_be_bytes([data[0], data[1]])),
                dst: SocketAddr::new(dst, u16::from_be_bytes([data[2], data[3]])),
                proto: Proto::Udp,
                payload: &data[8..end],
                cut: cut || len > data.len(),
            })
        }
        _ => Decoded::Other,
    }
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*data.get(at)?, *data.get(at + 1)?]))
}

fn array16(b: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, i) in out.iter_mut().zip(b) {
        *o = *i;
    }
    out
}
