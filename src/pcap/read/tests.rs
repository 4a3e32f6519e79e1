use std::io::Cursor;

use super::*;
use crate::pcap::decode::{Decoded, Proto};

fn udp_frame(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(1000, 2000)
        .write(&mut v, payload)
        .unwrap();
    v
}

fn pcap(big_endian: bool, nanos: bool, frames: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
    let w32 = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let w16 = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut out = Vec::new();
    out.extend_from_slice(&w32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    out.extend_from_slice(&w16(2));
    out.extend_from_slice(&w16(4));
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&w32(65535));
    out.extend_from_slice(&w32(1));
    for (s, f, data) in frames {
        out.extend_from_slice(&w32(*s));
        out.extend_from_slice(&w32(*f));
        out.extend_from_slice(&w32(data.len() as u32));
        out.extend_from_slice(&w32(data.len() as u32 + 10));
        out.extend_from_slice(data);
    }
    out
}

fn block(big_endian: bool, kind: u32, body: &[u8]) -> Vec<u8> {
    let w32 = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut body = body.to_vec();
    while !body.len().is_multiple_of(4) {
        body.push(0);
    }
    let len = body.len() as u32 + 12;
    let mut out = w32(kind).to_vec();
    out.extend_from_slice(&w32(len));
    out.extend_from_slice(&body);
    out.extend_from_slice(&w32(len));
    out
}

fn shb(big_endian: bool) -> Vec<u8> {
    let mut body = vec![0x1a, 0x2b, 0x3c, 0x4d];
    if !big_endian {
        body.reverse();
    }
    let w16 = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    body.extend_from_slice(&w16(1));
    body.extend_from_slice(&w16(0));
    body.extend_from_slice(&[0xff; 8]);
    block(big_endian, 0x0a0d_0d0a, &body)
}

fn idb(big_endian: bool, link: u16, tsresol: Option<u8>, offset_s: Option<i64>) -> Vec<u8> {
    let w16 = |v: u16| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut body = w16(link).to_vec();
    body.extend_from_slice(&[0, 0]);
    body.extend_from_slice(&if big_endian {
        0u32.to_be_bytes()
    } else {
        0u32.to_le_bytes()
    });
    if let Some(r) = tsresol {
        body.extend_from_slice(&w16(9));
        body.extend_from_slice(&w16(1));
        body.extend_from_slice(&[r, 0, 0, 0]);
    }
    if let Some(o) = offset_s {
        body.extend_from_slice(&w16(14));
        body.extend_from_slice(&w16(8));
        body.extend_from_slice(&if big_endian {
            o.to_be_bytes()
        } else {
            o.to_le_bytes()
        });
    }
    body.extend_from_slice(&[0, 0, 0, 0]);
    block(big_endian, 1, &body)
}

fn epb(big_endian: bool, iface: u32, ts: u64, data: &[u8]) -> Vec<u8> {
    let w32 = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let mut body = w32(iface).to_vec();
    body.extend_from_slice(&w32((ts >> 32) as u32));
    body.extend_from_slice(&w32(ts as u32));
    body.extend_from_slice(&w32(data.len() as u32));
    body.extend_from_slice(&w32(data.len() as u32));
    body.extend_from_slice(data);
    block(big_endian, 6, &body)
}

type Frames = Vec<(usize, Duration, u32, Vec<u8>)>;

fn frames(bytes: &[u8]) -> Result<Frames, String> {
    let mut r =
        CaptureReader::new(Cursor::new(bytes), Path::new("t")).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    loop {
        match r.next_frame() {
            Ok(Some(f)) => out.push((f.number, f.time, f.link, f.data.to_vec())),
            Ok(None) => return Ok(out),
            Err(d) => return Err(d.to_string()),
        }
    }
}

#[test]
fn pcap_in_both_byte_orders_and_resolutions() {
    let f = udp_frame(b"hi");
    for (be, nanos) in [(false, false), (true, false), (false, true), (true, true)] {
        let bytes = pcap(be, nanos, &[(100, 5, f.clone()), (101, 0, f.clone())]);
        let got = frames(&bytes).unwrap();
        assert_eq!(got.len(), 2);
        let sub = if nanos { 5 } else { 5_000 };
        assert_eq!(got[0].1, Duration::new(100, sub));
        assert_eq!(got[1].0, 2);
        assert_eq!(got[0].3, f);
        match decode(got[0].2, &got[0].3) {
            Decoded::Segment(s) => {
                assert_eq!(s.payload, b"hi");
                assert_eq!(s.proto, Proto::Udp);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn pcapng_sections_interfaces_resolution_and_offset() {
    let f = udp_frame(b"x");
    for be in [false, true] {
        let mut bytes = shb(be);
        bytes.extend(idb(be, 1, None, None));
        bytes.extend(idb(be, 101, Some(9), Some(10)));
        bytes.extend(epb(be, 0, 1_500_000, &f));
        bytes.extend(epb(be, 1, 2_000_000_123, &f[14..]));
        // A custom block is skipped.
        bytes.extend(block(be, 0x0000_0bad, &[1, 2, 3, 4]));
        // A second section in the other byte order starts afresh.
        bytes.extend(shb(!be));
        bytes.extend(idb(!be, 1, Some(0x80 | 10), None));
        bytes.extend(epb(!be, 0, 3 * 1024, &f));
        let got = frames(&bytes).unwrap();
        assert_eq!(got.len(), 3, "be {be}");
        assert_eq!(got[0].1, Duration::new(1, 500_000_000));
        assert_eq!(got[1].1, Duration::new(12, 123), "ns and a 10 s offset");
        assert_eq!(got[1].2, 101);
        assert_eq!(got[2].1, Duration::from_secs(3), "2^-10 s units");
        assert!(matches!(decode(got[1].2, &got[1].3), Decoded::Segment(_)));
    }
}

#[test]
fn truncated_files_name_the_packet() {
    let f = udp_frame(b"payload");
    let bytes = pcap(false, false, &[(1, 0, f.clone()), (2, 0, f.clone())]);
    for cut in [bytes.len() - 3, bytes.len() - f.len() - 10] {
        let err = frames(&bytes[..cut]).unwrap_err();
        assert!(err.starts_with("packet 2: the file ends inside"), "{err}");
        assert!(err.contains("cut short"), "{err}");
    }
    let mut ng = shb(false);
    ng.extend(idb(false, 1, None, None));
    ng.extend(epb(false, 0, 1, &f));
    ng.extend(epb(false, 0, 2, &f));
    let err = frames(&ng[..ng.len() - 5]).unwrap_err();
    assert!(
        err.starts_with("packet 2: the file ends inside a pcapng block"),
        "{err}"
    );
}

#[test]
fn damaged_lengths_and_interfaces_are_named() {
    let f = udp_frame(b"x");
    let mut bytes = pcap(false, false, &[(1, 0, f.clone())]);
    bytes.extend_from_slice(&[0; 8]);
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    bytes.extend_from_slice(&[0; 4]);
    let err = frames(&bytes).unwrap_err();
    assert!(
        err.starts_with("packet 2: its record claims 4294967295"),
        "{err}"
    );

    let mut ng = shb(false);
    ng.extend(epb(false, 3, 1, &f));
    let err = frames(&ng).unwrap_err();
    assert!(err.contains("interface 3"), "{err}");

    let mut ng = shb(false);
    ng.extend_from_slice(&6u32.to_le_bytes());
    ng.extend_from_slice(&13u32.to_le_bytes());
    let err = frames(&ng).unwrap_err();
    assert!(
        err.starts_with("packet 1: a pcapng block (type 0x6) claims 13 bytes"),
        "{err}"
    );
}

#[test]
fn not_a_capture_and_broken_headers() {
    let err = frames(b"hello, world").unwrap_err();
    assert!(
        err.contains("not a pcap or pcapng capture (first bytes 68 65 6c 6c)"),
        "{err}"
    );
    let err = frames(b"").unwrap_err();
    assert!(err.contains("not a pcap or pcapng capture"), "{err}");
    let err = frames(&[0xd4, 0xc3, 0xb2, 0xa1, 2, 0]).unwrap_err();
    assert!(err.contains("inside the 24-byte pcap header"), "{err}");
    let err = frames(&[0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 1, 2, 3, 4]).unwrap_err();
    assert!(err.contains("unknown byte-order magic"), "{err}");
}

#[test]
fn snaplen_cut_vlan_sll2_fragments() {
    let full = udp_frame(&[7; 100]);
    match decode(1, &full[..60]) {
        Decoded::Segment(s) => {
            assert!(s.cut);
            assert_eq!(s.payload.len(), 60 - 14 - 20 - 8);
        }
        other => panic!("{other:?}"),
    }
    // A VLAN tag between the MACs and the ethertype.
    let mut tagged = full[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
    tagged.extend_from_slice(&full[12..]);
    assert!(matches!(decode(1, &tagged), Decoded::Segment(s) if s.payload.len() == 100));
    // SLL2: protocol first, 20 bytes.
    let mut sll2 = vec![0x08, 0x00];
    sll2.extend_from_slice(&[0; 18]);
    sll2.extend_from_slice(&full[14..]);
    assert!(matches!(decode(276, &sll2), Decoded::Segment(_)));
    // An IPv4 fragment: more fragments set.
    let mut frag = full.clone();
    frag[14 + 6] |= 0x20;
    assert_eq!(decode(1, &frag), Decoded::Fragment { offset: 0 });
    assert_eq!(
        decode(1, &full[..20]),
        Decoded::Undecodable("IPv4 header cut short")
    );
    assert_eq!(decode(147, &full), Decoded::UnknownLink(147));
    // ARP is not IP.
    let mut arp = full[..12].to_vec();
    arp.extend_from_slice(&[0x08, 0x06, 0, 1]);
    assert_eq!(decode(1, &arp), Decoded::Other);
}

#[test]
fn ipv6_with_extension_headers() {
    let mut v = Vec::new();
    etherparse::PacketBuilder::ipv6([0xfd; 16], [0xfe; 16], 64)
        .tcp(50_000, 443, 7, 1000)
        .syn()
        .write(&mut v, b"")
        .unwrap();
    match decode(101, &v) {
        Decoded::Segment(s) => {
            assert_eq!(s.dst.port(), 443);
            assert!(matches!(s.proto, Proto::Tcp { seq: 7, flags } if flags.syn()));
        }
        other => panic!("{other:?}"),
    }
    // Insert a hop-by-hop header (8 bytes) before TCP.
    let mut hbh = v[..40].to_vec();
    hbh[6] = 0;
    let plen = u16::from_be_bytes([v[4], v[5]]) + 8;
    hbh[4..6].copy_from_slice(&plen.to_be_bytes());
    hbh.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
    hbh.extend_from_slice(&v[40..]);
    assert!(matches!(decode(101, &hbh), Decoded::Segment(s) if s.dst.port() == 443));
    // A fragment header with an offset.
    let mut frag = v[..40].to_vec();
    frag[6] = 44;
    frag[4..6].copy_from_slice(&(plen).to_be_bytes());
    frag.extend_from_slice(&[6, 0, 0x05, 0x09, 0, 0, 0, 1]);
    frag.extend_from_slice(&v[40..]);
    assert_eq!(decode(101, &frag), Decoded::Fragment { offset: 1288 });
}
