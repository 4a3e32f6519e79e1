//! The pcapng Decryption Secrets Block (pcapng spec, block type `0x0000000A`): TLS session
//! secrets inside the capture file, so that Wireshark and tshark decrypt it with no
//! setup. pcap-file 2 has no type for it; it writes the block as an unknown block whose
//! body this module lays out:
//!
//! ```text
//! secrets type (u32) = 0x544c534b "TLSK"   secrets length (u32)
//! secrets data (SSLKEYLOGFILE lines), zero-padded to 4 bytes
//! ```
//!
//! (The writer adds the block type and both total-length fields around the body.)

use std::borrow::Cow;
use std::collections::BTreeSet;

use pcap_file::Endianness;
use pcap_file::pcapng::blocks::unknown::UnknownBlock;

/// The block type of a Decryption Secrets Block.
pub const DECRYPTION_SECRETS_BLOCK: u32 = 0x0000_000A;
/// The secrets type of an SSLKEYLOGFILE (NSS key log) payload: "TLSK".
pub const TLS_KEY_LOG: u32 = 0x544c_534b;

/// The client random of a TLS ClientHello at the start of `payload` (a client's first
/// bytes on a connection), as lowercase hex: the key a key log line is filed under.
pub fn client_random(payload: &[u8]) -> Option<String> {
    // Record: type 22 (handshake), version (2), length (2); handshake: type 1
    // (ClientHello), length (3), client version (2), then the 32-byte random.
    if payload.len() < 43 || payload[0] != 22 || payload[5] != 1 {
        return None;
    }
    Some(payload[11..43].iter().map(|b| format!("{b:02x}")).collect())
}

/// The lines of `key_log` whose client random is in `randoms`: the secrets of the
/// sessions a capture shows, not those of every endpoint and server of the world.
pub fn lines_for(key_log: &str, randoms: &BTreeSet<String>) -> String {
    key_log
        .lines()
        .filter(|line| {
            line.split(' ')
                .nth(1)
                .is_some_and(|random| randoms.contains(random))
        })
        .flat_map(|line| [line, "\n"])
        .collect()
}

/// A Decryption Secrets Block carrying `key_log` (SSLKEYLOGFILE text), its numbers in the
/// section's byte order.
pub fn tls_key_log_block(key_log: &str, endianness: Endianness) -> UnknownBlock<'static> {
    let data = key_log.as_bytes();
    let u32_bytes = |n: u32| match endianness {
        Endianness::Big => n.to_be_bytes(),
        Endianness::Little => n.to_le_bytes(),
    };
    let mut body = Vec::with_capacity(8 + data.len() + 3);
    body.extend_from_slice(&u32_bytes(TLS_KEY_LOG));
    body.extend_from_slice(&u32_bytes(u32::try_from(data.len()).unwrap_or(u32::MAX)));
    body.extend_from_slice(data);
    body.resize(body.len().next_multiple_of(4), 0);
    let length = u32::try_from(body.len() + 12).unwrap_or(u32::MAX);
    UnknownBlock {
        type_: DECRYPTION_SECRETS_BLOCK,
        length,
        value: Cow::Owned(body),
    }
}

#[cfg(test)]
mod tests {
    use pcap_file::pcapng::PcapNgWriter;

    use super::*;

    #[test]
    fn the_block_is_laid_out_as_the_spec_says() {
        let mut writer = PcapNgWriter::with_endianness(Vec::new(), Endianness::Little).unwrap();
        let header_len = writer.get_ref().len();
        let block = tls_key_log_block("CLIENT_RANDOM ab cd\n", Endianness::Little);
        writer.write_pcapng_block(block).unwrap();
        let bytes = &writer.get_ref()[header_len..];
        // 12 bytes of framing, 8 of secrets header, 20 of data (a multiple of 4 already).
        assert_eq!(bytes.len(), 40);
        assert_eq!(bytes[0..4], 0x0a_u32.to_le_bytes());
        assert_eq!(bytes[4..8], 40_u32.to_le_bytes());
        assert_eq!(&bytes[8..12], b"KSLT", "0x544c534b, little-endian");
        assert_eq!(bytes[12..16], 20_u32.to_le_bytes());
        assert_eq!(&bytes[16..36], b"CLIENT_RANDOM ab cd\n");
        assert_eq!(bytes[36..40], 40_u32.to_le_bytes());
    }

    #[test]
    fn only_the_sessions_the_capture_shows_are_kept() {
        let mut hello = vec![22, 3, 1, 0, 200, 1, 0, 0, 196, 3, 3];
        hello.extend((0..32).map(|i| i as u8));
        hello.extend([0; 20]);
        let random = client_random(&hello).unwrap();
        assert_eq!(random.len(), 64);
        assert!(random.starts_with("000102"));
        assert_eq!(client_random(&hello[..40]), None, "cut short");
        assert_eq!(client_random(&[23; 64]), None, "application data");
        let log = format!("A {random} 01\nB ffff 02\nC {random} 03\n");
        let kept = lines_for(&log, &BTreeSet::from([random.clone()]));
        assert_eq!(kept, format!("A {random} 01\nC {random} 03\n"));
    }

    #[test]
    fn data_is_padded_to_four_bytes() {
        let block = tls_key_log_block("X 1 2\n", Endianness::Big);
        assert_eq!(&block.value[0..4], b"TLSK");
        assert_eq!(block.value[4..8], 6_u32.to_be_bytes());
        assert_eq!(block.value.len(), 8 + 8);
        assert_eq!(&block.value[14..], &[0, 0]);
    }
}
