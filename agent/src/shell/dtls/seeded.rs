//! Reproducible key exchange for dimpl: X25519 whose ephemeral secrets come from a seed
//! and a counter instead of the operating system.
//!
//! With dimpl's own `dangerously_set_rng_seed` this makes a whole handshake a function of
//! its inputs: ECDSA signatures are deterministic (RFC 6979), so once the ephemeral keys
//! are too, every datagram has the same bytes and size run after run. The keys are then
//! predictable, which is fine in a simulation and wrong anywhere else.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use dimpl::CryptoError;
use dimpl::crypto::{ActiveKeyExchange, Buf, CryptoProvider, NamedGroup, SupportedKxGroup};
use x25519_dalek::{PublicKey, StaticSecret};

use crate::shell::seed::fill;

/// dimpl's RustCrypto provider with [`NamedGroup::X25519`] as its only key exchange, its
/// ephemeral secrets derived from `seed`.
///
/// dimpl wants its key exchange groups `'static`: every call leaks one small allocation
/// (two words and a counter), so call it once per endpoint, not per handshake.
pub fn seeded_provider(seed: u64) -> CryptoProvider {
    let group: &'static SeededX25519 = Box::leak(Box::new(SeededX25519 {
        seed,
        next: AtomicU64::new(0),
    }));
    let groups: &'static [&'static dyn SupportedKxGroup] = Box::leak(Box::new([group as _]));
    let mut provider = dimpl::crypto::rust_crypto::default_provider();
    provider.kx_groups = groups;
    provider
}

#[derive(Debug)]
struct SeededX25519 {
    seed: u64,
    next: AtomicU64,
}

impl SupportedKxGroup for SeededX25519 {
    fn name(&self) -> NamedGroup {
        NamedGroup::X25519
    }

    fn start_exchange(&self, mut buf: Buf) -> Result<Box<dyn ActiveKeyExchange>, CryptoError> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut secret = [0u8; 32];
        fill(self.seed, n, &mut secret);
        let secret = StaticSecret::from(secret);
        buf.clear();
        buf.extend_from_slice(PublicKey::from(&secret).as_bytes());
        Ok(Box::new(Exchange {
            secret,
            public: buf,
        }))
    }
}

struct Exchange {
    secret: StaticSecret,
    public: Buf,
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange").finish_non_exhaustive()
    }
}

impl ActiveKeyExchange for Exchange {
    fn pub_key(&self) -> &[u8] {
        &self.public
    }

    fn complete(self: Box<Self>, peer_pub: &[u8], out: &mut Buf) -> Result<(), CryptoError> {
        let peer: [u8; 32] = peer_pub
            .try_into()
            .map_err(|_| CryptoError::InvalidPublicKey(NamedGroup::X25519))?;
        let shared = self.secret.diffie_hellman(&PublicKey::from(peer));
        // RFC 7748, section 6.1: refuse an all-zero secret (a low-order peer key).
        if !shared.was_contributory() {
            return Err(CryptoError::InvalidPublicKey(NamedGroup::X25519));
        }
        out.clear();
        out.extend_from_slice(shared.as_bytes());
        Ok(())
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(group: &dyn SupportedKxGroup) -> Vec<u8> {
        group.start_exchange(Buf::new()).unwrap().pub_key().to_vec()
    }

    #[test]
    fn same_seed_same_keys_and_both_sides_agree() {
        let (a, b) = (seeded_provider(7), seeded_provider(7));
        let (a, b) = (a.kx_groups[0], b.kx_groups[0]);
        let first = public(a);
        assert_eq!(first, public(b), "same seed, same first key");
        assert_ne!(first, public(a), "the counter moves on");
        let other = seeded_provider(8).kx_groups[0];
        assert_ne!(public(other), public(seeded_provider(7).kx_groups[0]));

        let (x, y) = (
            a.start_exchange(Buf::new()).unwrap(),
            b.start_exchange(Buf::new()).unwrap(),
        );
        let (xp, yp) = (x.pub_key().to_vec(), y.pub_key().to_vec());
        let (mut kx, mut ky) = (Buf::new(), Buf::new());
        x.complete(&yp, &mut kx).unwrap();
        y.complete(&xp, &mut ky).unwrap();
        assert_eq!(&kx[..], &ky[..]);
    }

    #[test]
    fn bad_peer_keys_are_errors() {
        let group = seeded_provider(1).kx_groups[0];
        let mut out = Buf::new();
        let short = group.start_exchange(Buf::new()).unwrap();
        assert!(short.complete(&[1, 2, 3], &mut out).is_err());
        let zero = group.start_exchange(Buf::new()).unwrap();
        assert!(zero.complete(&[0; 32], &mut out).is_err());
    }
}
