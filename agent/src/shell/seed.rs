//! Seed mixing for the reproducible providers (TLS, DTLS) and anything else that derives
//! many values from one simulation seed.

/// Mixes `seed` and `n` into a new 64-bit value (splitmix64).
pub fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Fills `buf` with the bytes of draw `n` from `seed`: word i is `mix(mix(seed, n), i)`,
/// big-endian, the last one cut to fit. The seeded providers' randomness and ephemeral
/// secrets all come from here.
pub fn fill(seed: u64, n: u64, buf: &mut [u8]) {
    let base = mix(seed, n);
    for (i, chunk) in buf.chunks_mut(8).enumerate() {
        let word = mix(base, i as u64).to_be_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::{fill, mix};

    #[test]
    fn fills_whole_and_partial_words() {
        let mut a = [0u8; 11];
        fill(3, 4, &mut a);
        assert_eq!(a[..8], mix(mix(3, 4), 0).to_be_bytes());
        assert_eq!(a[8..], mix(mix(3, 4), 1).to_be_bytes()[..3]);
    }

    #[test]
    fn mixes_apart() {
        assert_eq!(mix(1, 2), mix(1, 2));
        assert_ne!(mix(1, 2), mix(2, 1));
        assert_ne!(mix(0, 0), 0);
    }
}
