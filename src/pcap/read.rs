//! Reading capture files into decoded packets.
//!
//! pcap-file 2.0 reads pcapng timestamps as nanoseconds whatever the interface's
//! `if_tsresol` says; this module applies the declared resolution itself (default
//! microseconds). Checksums are never checked: captures taken on `lo` carry wrong ones.

use std::fs::File;
use std::io::{BufReader, Read};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_file::DataLink;
use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};

/// One decoded IP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Its 1-based number in the file.
    pub number: usize,
    /// Capture time since the Unix epoch.
    pub time: Duration,
    /// Source.
    pub src: SocketAddr,
    /// Destination.
    pub dst: SocketAddr,
    /// TCP (with its SYN and ACK flags) or UDP.
    pub transport: Transport,
    /// The transport payload.
    pub payload: Vec<u8>,
}

/// The transport of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP.
    Tcp {
        /// SYN set.
        syn: bool,
        /// ACK set.
        ack: bool,
    },
    /// UDP.
    Udp,
}

/// What a capture contained besides decodable TCP/UDP over IP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skipped {
    /// Frames that are not TCP or UDP over IP (ARP, ICMP...).
    pub other: usize,
    /// Frames that could not be decoded (truncated, unknown link type).
    pub undecodable: usize,
}

/// Why a capture could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not a pcap or pcapng file.
    #[error(
        "{path}: not a pcap or pcapng capture (first bytes {magic}); save it from Wireshark as pcap or pcapng"
    )]
    NotACapture {
        /// The file.
        path: PathBuf,
        /// The first bytes, in hex.
        magic: String,
    },
    /// The file is a capture but broken.
    #[error("{path}: broken capture after {packets} packet(s): {why}")]
    Broken {
        /// The file.
        path: PathBuf,
        /// Packets read before the damage.
        packets: usize,
        /// What pcap-file said.
        why: String,
    },
}

/// Every TCP/UDP packet of a capture, in file order, and what was skipped.
pub fn read_capture(path: &Path) -> Result<(Vec<Packet>, Skipped), CaptureError> {
    let io = |source| CaptureError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).map_err(io)?;
    let file = File::open(path).map_err(io)?;
    let broken = |packets: usize, why: String| CaptureError::Broken {
        path: path.to_path_buf(),
        packets,
        why,
    };
    let mut out = Decoder::default();
    match magic {
        [0x0a, 0x0d, 0x0d, 0x0a] => {
            let mut reader =
                PcapNgReader::new(BufReader::new(file)).map_err(|e| broken(0, e.to_string()))?;
            // Per interface: link type and `if_tsresol` (default 6: microseconds).
            let mut interfaces: Vec<(DataLink, u8)> = Vec::new();
            while let Some(block) = reader.next_block() {
                match block.map_err(|e| broken(out.count, e.to_string()))? {
                    Block::SectionHeader(_) => interfaces.clear(),
                    Block::InterfaceDescription(idb) => {
                        let resol = idb
                            .options
                            .iter()
                            .find_map(|o| match o {
                                InterfaceDescriptionOption::IfTsResol(r) => Some(*r),
                                _ => None,
                            })
                            .unwrap_or(6);
                        interfaces.push((idb.linktype, resol));
                    }
                    Block::EnhancedPacket(epb) => {
                        let (link, resol) = interfaces
                            .get(epb.interface_id as usize)
                            .copied()
                            .unwrap_or((DataLink::ETHERNET, 6));
                        // pcap-file handed the raw count as nanoseconds.
                        out.frame(link, scale(epb.timestamp.as_nanos(), resol), &epb.data);
                    }
                    Block::SimplePacket(spb) => {
                        let link = interfaces.first().map_or(DataLink::ETHERNET, |i| i.0);
                        out.frame(link, Duration::ZERO, &spb.data);
                    }
                    _ => {}
                }
            }
        }
        [0xd4, 0xc3, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0xc3, 0xd4]
        | [0x4d, 0x3c, 0xb2, 0xa1]
        | [0xa1, 0xb2, 0x3c, 0x4d] => {
            let mut reader =
                PcapReader::new(BufReader::new(file)).map_err(|e| broken(0, e.to_string()))?;
            let link = reader.header().datalink;
            while let Some(packet) = reader.next_packet() {
                let packet = packet.map_err(|e| broken(out.count, e.to_string()))?;
                out.frame(link, packet.timestamp, &packet.data);
            }
        }
        _ => {
            return Err(CaptureError::NotACapture {
                path: path.to_path_buf(),
                magic: magic[..n]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            });
        }
    }
    Ok((out.packets, out.skipped))
}

/// The time of `raw` timestamp units for an `if_tsresol` value (pcapng: 10^-n seconds,
/// or 2^-n with the high bit set). Decimal resolutions are exact.
fn scale(raw: u128, resol: u8) -> Duration {
    let exp = u32::from(resol & 0x7f);
    let nanos = if resol & 0x80 != 0 {
        (raw as f64 / 2f64.powi(exp as i32) * 1e9) as u128
    } else if exp <= 9 {
        raw.saturating_mul(10u128.pow(9 - exp))
    } else {
        raw / 10u128.checked_pow(exp - 9).unwrap_or(u128::MAX)
    };
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    Duration::new(secs, (nanos % 1_000_000_000) as u32)
}

#[derive(Default)]
struct Decoder {
    count: usize,
    packets: Vec<Packet>,
    skipped: Skipped,
}

impl Decoder {
    fn frame(&mut self, link: DataLink, time: Duration, data: &[u8]) {
        self.count += 1;
        let sliced = match u32::from(link) {
            1 => SlicedPacket::from_ethernet(data).ok(),
            101 | 12 | 14 | 228 => SlicedPacket::from_ip(data).ok(),
            113 => SlicedPacket::from_linux_sll(data).ok(),
            // Linux SLL2: a 20-byte header, then IP.
            276 => data.get(20..).and_then(|ip| SlicedPacket::from_ip(ip).ok()),
            // BSD loopback and NULL: a 4-byte address family, then IP.
            0 | 108 => data.get(4..).and_then(|ip| SlicedPacket::from_ip(ip).ok()),
            _ => None,
        };
        let Some(sliced) = sliced else {
            self.skipped.undecodable += 1;
            return;
        };
        let (src_ip, dst_ip): (IpAddr, IpAddr) = match &sliced.net {
            Some(NetSlice::Ipv4(v4)) => (
                v4.header().source_addr().into(),
                v4.header().destination_addr().into(),
            ),
            Some(NetSlice::Ipv6(v6)) => (
                v6.header().source_addr().into(),
                v6.header().destination_addr().into(),
            ),
            _ => {
                self.skipped.other += 1;
                return;
            }
        };
        let (transport, sport, dport, payload) = match &sliced.transport {
            Some(TransportSlice::Tcp(t)) => (
                Transport::Tcp {
                    syn: t.syn(),
                    ack: t.ack(),
                },
                t.source_port(),
                t.destination_port(),
                t.payload(),
            ),
            Some(TransportSlice::Udp(u)) => (
                Transport::Udp,
                u.source_port(),
                u.destination_port(),
                u.payload(),
            ),
            _ => {
                self.skipped.other += 1;
                return;
            }
        };
        self.packets.push(Packet {
            number: self.count,
            time,
            src: SocketAddr::new(src_ip, sport),
            dst: SocketAddr::new(dst_ip, dport),
            transport,
            payload: payload.to_vec(),
        });
    }
}
