//! Reading capture files, streaming: one frame at a time from a pcap or pcapng file, each
//! decoded to its TCP or UDP segment.
//!
//! The formats are parsed here rather than by pcap-file: its pcapng reader ignores
//! `if_tsresol` (Wireshark's files come out 1000x too small) and a damaged length field
//! must become a warning naming the packet, not a huge allocation. pcap: microsecond and
//! nanosecond magics, both byte orders. pcapng: several sections and interfaces, each
//! with its byte order, `if_tsresol` and `if_tsoffset`; enhanced, simple and obsolete
//! packet blocks. Checksums are never checked: captures taken on `lo` carry wrong ones.
//!
//! Nothing here panics on any input, and memory stays flat: one frame buffer, reused.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use super::decode::{Decoded, Proto, Segment, TcpFlags, decode};
use super::warn::Warnings;

/// The largest frame a pcap record may claim (libpcap's `MAXIMUM_SNAPLEN`).
pub const MAX_FRAME: usize = 262_144;
/// The largest pcapng block read (a packet block holds one frame and its options).
const MAX_BLOCK: usize = 16 * 1024 * 1024;

/// One decoded IP packet (owned; [`CaptureReader`] streams borrowed frames instead).
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
    /// Frames that could not be decoded (truncated, unknown link type, IP fragments).
    pub undecodable: usize,
}

/// Why a capture could not be read at all.
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
        "{path}: not a pcap or pcapng capture ({magic}); save it from Wireshark as pcap or pcapng"
    )]
    NotACapture {
        /// The file.
        path: PathBuf,
        /// What it starts with: its first bytes in hex, or that it is empty.
        magic: String,
    },
    /// The file starts like a capture but its header is broken.
    #[error("{path}: broken capture header: {why}")]
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// The damage that stopped reading a capture part way: the frames before it were read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("packet {packet}: {why}; the rest of the file was not read")]
pub struct Damage {
    /// The number the damaged packet would have had.
    pub packet: usize,
    /// What is wrong.
    pub why: String,
}

/// One frame as captured.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Its 1-based number in the file.
    pub number: usize,
    /// Capture time since the Unix epoch.
    pub time: Duration,
    /// The link type (LINKTYPE_* number).
    pub link: u32,
    /// The bytes captured.
    pub data: &'a [u8],
    /// The frame's length on the wire (more than `data` when cut by the snaplen).
    pub original_len: u32,
}

/// Every TCP/UDP packet of a capture, in file order, and what was skipped. Damage part
/// way through ends the list there (see [`CaptureReader`] to see it).
pub fn read_capture(path: &Path) -> Result<(Vec<Packet>, Skipped), CaptureError> {
    let mut reader = CaptureReader::open(path)?;
    let mut packets = Vec::new();
    let mut skipped = Skipped::default();
    let mut warnings = Warnings::default();
    while let Ok(Some(frame)) = reader.next_frame() {
        match decode(frame.link, frame.data) {
            Decoded::Segment(s) => packets.push(Packet {
                number: frame.number,
                time: frame.time,
                src: s.src,
                dst: s.dst,
                transport: match s.proto {
                    Proto::Tcp { flags, .. } => Transport::Tcp {
                        syn: flags.syn(),
                        ack: flags.ack(),
                    },
                    Proto::Udp => Transport::Udp,
                },
                payload: s.payload.to_vec(),
            }),
            other => skipped.count(&other, frame.number, &mut warnings),
        }
    }
    Ok((packets, skipped))
}

impl Skipped {
    /// Counts a frame that gave no segment, with a warning where it is worth one.
    pub fn count(&mut self, decoded: &Decoded<'_>, number: usize, warnings: &mut Warnings) {
        match decoded {
            Decoded::Segment(_) => {}
            Decoded::Other => self.other += 1,
            Decoded::Fragment { .. } | Decoded::Undecodable(_) | Decoded::UnknownLink(_) => {
                self.undecodable += 1;
                warnings.frame(number, decoded);
            }
        }
    }
}

/// A pcap or pcapng file, one frame at a time.
pub struct CaptureReader<R> {
    input: R,
    format: Format,
    /// Frames handed out so far.
    count: usize,
    buf: Vec<u8>,
    done: bool,
}

enum Format {
    Pcap {
        big_endian: bool,
        nanos: bool,
        link: u32,
    },
    PcapNg {
        big_endian: bool,
        interfaces: Vec<Interface>,
    },
}

#[derive(Debug, Clone, Copy)]
struct Interface {
    link: u32,
    snaplen: u32,
    resol: u8,
    offset_s: i64,
}

impl CaptureReader<BufReader<File>> {
    /// Opens `path` and reads its header.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        let file = File::open(path).map_err(|source| CaptureError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        CaptureReader::new(BufReader::with_capacity(1 << 20, file), path)
    }
}

impl<R: Read> CaptureReader<R> {
    /// Reads the file header from `input`; `path` names it in errors.
    pub fn new(mut input: R, path: &Path) -> Result<Self, CaptureError> {
        let mut head = [0u8; 24];
        let n = read_full(&mut input, &mut head).map_err(|source| CaptureError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |why: String| CaptureError::BadHeader {
            path: path.to_path_buf(),
            why,
        };
        let not = || CaptureError::NotACapture {
            path: path.to_path_buf(),
            magic: match n {
                0 => "the file is empty".to_string(),
                _ => {
                    let hex: Vec<String> = head[..n.min(4)]
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    format!("first bytes {}", hex.join(" "))
                }
            },
        };
        if n < 4 {
            return Err(not());
        }
        let format = match head[..4] {
            [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => (false, head[0] == 0x4d),
            [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => (true, head[3] == 0x4d),
            [0x0a, 0x0d, 0x0d, 0x0a] => {
                if n < 12 {
                    return Err(bad(format!(
                        "the file ends after {n} bytes, inside the pcapng section header"
                    )));
                }
                let big_endian = match head[8..12] {
                    [0x1a, 0x2b, 0x3c, 0x4d] => true,
                    [0x4d, 0x3c, 0x2b, 0x1a] => false,
                    _ => {
                        return Err(bad(
                            "pcapng section header with an unknown byte-order magic".into(),
                        ));
                    }
                };
                let len = u32_at(&head, 4, big_endian) as usize;
                if !(28..=MAX_BLOCK).contains(&len) || !len.is_multiple_of(4) {
                    return Err(bad(format!("pcapng section header of {len} bytes")));
                }
                // Skip the rest of the section header (options) after the 24 bytes read.
                let rest = len.saturating_sub(n);
                let mut skip = Vec::new();
                let got = (&mut input)
                    .take(rest as u64)
                    .read_to_end(&mut skip)
                    .map_err(|source| CaptureError::Io {
                        path: path.to_path_buf(),
                        source,
                    })?;
                if got < rest {
                    return Err(bad("the file ends inside the pcapng section header".into()));
                }
                return Ok(CaptureReader {
                    input,
                    format: Format::PcapNg {
                        big_endian,
                        interfaces: Vec::new(),
                    },
                    count: 0,
                    buf: Vec::new(),
                    done: false,
                });
            }
            _ => return Err(not()),
        };
        if n < 24 {
            return Err(bad(format!(
                "the file ends after {n} bytes, inside the 24-byte pcap header"
            )));
        }
        let (big_endian, nanos) = format;
        // The low 16 bits are the link type; the upper ones may carry FCS information.
        let link = u32_at(&head, 20, big_endian) & 0xffff;
        Ok(CaptureReader {
            input,
            format: Format::Pcap {
                big_endian,
                nanos,
                link,
            },
            count: 0,
            buf: Vec::new(),
            done: false,
        })
    }

    /// The next frame, `None` at the end of the file. Damage (a truncated file, a length
    /// field out of range) is returned once, then the reader ends.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, Damage> {
        if self.done {
            return Ok(None);
        }
        let result = match self.format {
            Format::Pcap { .. } => self.next_pcap(),
            Format::PcapNg { .. } => self.next_pcapng(),
        };
        match result {
            Ok(Some(meta)) => {
                self.count += 1;
                Ok(Some(Frame {
                    number: self.count,
                    time: meta.time,
                    link: meta.link,
                    data: &self.buf[meta.start..meta.end],
                    original_len: meta.original_len,
                }))
            }
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(why) => {
                self.done = true;
                Err(Damage {
                    packet: self.count + 1,
                    why,
                })
            }
        }
    }

    fn next_pcap(&mut self) -> Result<Option<Meta>, String> {
        let Format::Pcap {
            big_endian,
            nanos,
            link,
        } = self.format
        else {
            return Ok(None);
        };
        let mut head = [0u8; 16];
        let n = read_full(&mut self.input, &mut head).map_err(|e| format!("cannot read: {e}"))?;
        if n == 0 {
            return Ok(None);
        }
        if n < 16 {
            return Err(format!(
                "the file ends inside its record header ({n} of 16 bytes): the capture was cut short"
            ));
        }
        let secs = u64::from(u32_at(&head, 0, big_endian));
        let frac = u64::from(u32_at(&head, 4, big_endian));
        let caplen = u32_at(&head, 8, big_endian) as usize;
        let original_len = u32_at(&head, 12, big_endian);
        if caplen > MAX_FRAME {
            return Err(format!(
                "its record claims {caplen} captured bytes, more than the {MAX_FRAME} a capture can hold: the file is damaged"
            ));
        }
        self.buf.resize(caplen, 0);
        let got =
            read_full(&mut self.input, &mut self.buf).map_err(|e| format!("cannot read: {e}"))?;
        if got < caplen {
            return Err(format!(
                "the file ends inside it ({got} of {caplen} bytes): the capture was cut short"
            ));
        }
        let sub_ns = if nanos {
            frac
        } else {
            frac.saturating_mul(1000)
        };
        let time = Duration::from_secs(secs).saturating_add(Duration::from_nanos(sub_ns));
        Ok(Some(Meta {
            time,
            link,
            start: 0,
            end: caplen,
            original_len,
        }))
    }

    fn next_pcapng(&mut self) -> Result<Option<Meta>, String> {
        loop {
            let Format::PcapNg { big_endian, .. } = self.format else {
                return Ok(None);
            };
            let mut head = [0u8; 8];
            let n =
                read_full(&mut self.input, &mut head).map_err(|e| format!("cannot read: {e}"))?;
            if n == 0 {
                return Ok(None);
            }
            if n < 8 {
                return Err(format!(
                    "the file ends inside a block header ({n} of 8 bytes): the capture was cut short"
                ));
            }
            let kind_le = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
            let is_shb = kind_le == 0x0a0d_0d0a;
            // A section header sets its own byte order: read its magic first.
            let mut big_endian = big_endian;
            let mut body_start = 0;
            self.buf.clear();
            if is_shb {
                let mut magic = [0u8; 4];
                if read_full(&mut self.input, &mut magic)
                    .map_err(|e| format!("cannot read: {e}"))?
                    < 4
                {
                    return Err("the file ends inside a section header".into());
                }
                big_endian = match magic {
                    [0x1a, 0x2b, 0x3c, 0x4d] => true,
                    [0x4d, 0x3c, 0x2b, 0x1a] => false,
                    _ => return Err("a section header with an unknown byte-order magic".into()),
                };
                self.buf.extend_from_slice(&magic);
                body_start = 4;
            }
            let kind = u32_at(&head, 0, big_endian);
            let len = u32_at(&head, 4, big_endian) as usize;
            if !(12..=MAX_BLOCK).contains(&len) || !len.is_multiple_of(4) || (is_shb && len < 28) {
                return Err(format!(
                    "a pcapng block (type {kind:#x}) claims {len} bytes: the file is damaged"
                ));
            }
            // Body and trailing length; `take` so a lying length cannot allocate more
            // than the file holds.
            let want = len - 8 - body_start;
            let got = (&mut self.input)
                .take(want as u64)
                .read_to_end(&mut self.buf)
                .map_err(|e| format!("cannot read: {e}"))?;
            if got < want {
                return Err(format!(
                    "the file ends inside a pcapng block ({} of {len} bytes): the capture was cut short",
                    got + 8 + body_start
                ));
            }
            let body_len = self.buf.len() - 4;
            let body = &self.buf[..body_len];
            let Format::PcapNg { interfaces, .. } = &mut self.format else {
                return Ok(None);
            };
            match kind {
                0x0a0d_0d0a => {
                    interfaces.clear();
                    self.format = Format::PcapNg {
                        big_endian,
                        interfaces: Vec::new(),
                    };
                }
                1 => {
                    if body.len() < 8 {
                        return Err("an interface description block shorter than 20 bytes".into());
                    }
                    let link = u32::from(u16_at(body, 0, big_endian));
                    let snaplen = u32_at(body, 4, big_endian);
                    let (mut resol, mut offset_s) = (6, 0);
                    for (code, value) in Options::new(&body[8..], big_endian) {
                        match (code, value) {
                            (9, [r, ..]) => resol = *r,
                            (14, v) if v.len() >= 8 => {
                                offset_s = u64_at(v, 0, big_endian) as i64;
                            }
                            _ => {}
                        }
                    }
                    interfaces.push(Interface {
                        link,
                        snaplen,
                        resol,
                        offset_s,
                    });
                }
                // Enhanced (6) and obsolete (2) packet blocks.
                6 | 2 => {
                    if body.len() < 20 {
                        return Err(format!(
                            "a packet block of {} bytes, too short for its header",
                            body.len() + 12
                        ));
                    }
                    let (iface, hi, lo, caplen, original_len) = if kind == 6 {
                        (
                            u32_at(body, 0, big_endian) as usize,
                            u32_at(body, 4, big_endian),
                            u32_at(body, 8, big_endian),
                            u32_at(body, 12, big_endian) as usize,
                            u32_at(body, 16, big_endian),
                        )
                    } else {
                        (
                            usize::from(u16_at(body, 0, big_endian)),
                            u32_at(body, 4, big_endian),
                            u32_at(body, 8, big_endian),
                            u32_at(body, 12, big_endian) as usize,
                            u32_at(body, 16, big_endian),
                        )
                    };
                    let Some(interface) = interfaces.get(iface).copied() else {
                        return Err(format!(
                            "its packet block names interface {iface}, but the section describes {}",
                            interfaces.len()
                        ));
                    };
                    if caplen > body.len() - 20 {
                        return Err(format!(
                            "its packet block claims {caplen} captured bytes but holds {}",
                            body.len() - 20
                        ));
                    }
                    let raw = (u64::from(hi) << 32) | u64::from(lo);
                    return Ok(Some(Meta {
                        time: pcapng_time(raw, interface.resol, interface.offset_s),
                        link: interface.link,
                        start: 20,
                        end: 20 + caplen,
                        original_len,
                    }));
                }
                // Simple packet block: no timestamp, the first interface.
                3 => {
                    if body.len() < 4 {
                        return Err("a simple packet block shorter than 16 bytes".into());
                    }
                    let Some(interface) = interfaces.first().copied() else {
                        return Err("a simple packet block before any interface description".into());
                    };
                    let original_len = u32_at(body, 0, big_endian);
                    let mut caplen = (original_len as usize).min(body.len() - 4);
                    if interface.snaplen != 0 {
                        caplen = caplen.min(interface.snaplen as usize);
                    }
                    return Ok(Some(Meta {
                        time: Duration::ZERO,
                        link: interface.link,
                        start: 4,
                        end: 4 + caplen,
                        original_len,
                    }));
                }
                // Name resolution, statistics, custom and other blocks.
                _ => {}
            }
        }
    }
}

struct Meta {
    time: Duration,
    link: u32,
    start: usize,
    end: usize,
    original_len: u32,
}

/// The time of `raw` timestamp units for an `if_tsresol` value (pcapng: 10^-n seconds,
/// or 2^-n with the high bit set), plus `if_tsoffset` seconds. Decimal resolutions are
/// exact.
fn pcapng_time(raw: u64, resol: u8, offset_s: i64) -> Duration {
    let exp = u32::from(resol & 0x7f);
    let raw = u128::from(raw);
    let nanos = if resol & 0x80 != 0 {
        if exp >= 128 {
            0
        } else {
            (raw.saturating_mul(1_000_000_000)) >> exp.min(127)
        }
    } else if exp <= 9 {
        raw.saturating_mul(10u128.pow(9 - exp))
    } else {
        10u128.checked_pow(exp - 9).map_or(0, |d| raw / d)
    };
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    let t = Duration::new(secs, (nanos % 1_000_000_000) as u32);
    if offset_s >= 0 {
        t.saturating_add(Duration::from_secs(offset_s as u64))
    } else {
        t.saturating_sub(Duration::from_secs(offset_s.unsigned_abs()))
    }
}

/// pcapng options: (code, value) until `opt_endofopt` or the end.
struct Options<'a> {
    data: &'a [u8],
    big_endian: bool,
}

impl<'a> Options<'a> {
    fn new(data: &'a [u8], big_endian: bool) -> Self {
        Options { data, big_endian }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = (u16, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.data.len() < 4 {
            return None;
        }
        let code = u16_at(self.data, 0, self.big_endian);
        let len = usize::from(u16_at(self.data, 2, self.big_endian));
        if code == 0 {
            return None;
        }
        let value = self.data.get(4..4 + len)?;
        let padded = (len + 3) & !3;
        self.data = self.data.get(4 + padded..).unwrap_or_default();
        Some((code, value))
    }
}

/// Reads until `buf` is full or the input ends; how many bytes were read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn u16_at(b: &[u8], at: usize, big_endian: bool) -> u16 {
    let v = [
        b.get(at).copied().unwrap_or(0),
        b.get(at + 1).copied().unwrap_or(0),
    ];
    if big_endian {
        u16::from_be_bytes(v)
    } else {
        u16::from_le_bytes(v)
    }
}

fn u32_at(b: &[u8], at: usize, big_endian: bool) -> u32 {
    let mut v = [0u8; 4];
    for (i, x) in v.iter_mut().enumerate() {
        *x = b.get(at + i).copied().unwrap_or(0);
    }
    if big_endian {
        u32::from_be_bytes(v)
    } else {
        u32::from_le_bytes(v)
    }
}

fn u64_at(b: &[u8], at: usize, big_endian: bool) -> u64 {
    let (hi, lo) = if big_endian {
        (u32_at(b, at, true), u32_at(b, at + 4, true))
    } else {
        (u32_at(b, at + 4, false), u32_at(b, at, false))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

#[cfg(test)]
mod tests;
