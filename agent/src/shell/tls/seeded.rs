//! Reproducible TLS for rustls: the ring provider with its randomness (client and server
//! randoms, session ids, tickets) and its X25519 ephemeral secrets drawn from a seed and
//! a counter instead of the operating system.
//!
//! Ed25519 signatures are deterministic, so with an Ed25519 certificate and this provider
//! on both ends a handshake is a function of its inputs: the same bytes run after run.
//! The keys are then predictable, which is fine in a simulation and wrong anywhere else.
//! Only X25519 is offered, so both ends of a connection must use such a provider (or any
//! peer that accepts X25519, which every TLS 1.3 implementation does).

use std::sync::atomic::{AtomicU64, Ordering};

use rustls::crypto::{
    ActiveKeyExchange, CryptoProvider, GetRandomFailed, SecureRandom, SharedSecret,
    SupportedKxGroup,
};
use rustls::{Error, NamedGroup, PeerMisbehaved};
use x25519_dalek::{PublicKey, StaticSecret};

use crate::shell::seed::{fill, mix};

/// Keeps the random bytes and the key-exchange secrets apart when both come from one
/// seed.
const RANDOM_STREAM: u64 = 0x7215_0000_0000_0001;
const KX_STREAM: u64 = 0x7215_0000_0000_0002;

/// rustls's ring provider whose randomness and X25519 secrets come from `seed`.
///
/// Calls are counted: two providers from the same seed give the same bytes for the same
/// sequence of calls, which a deterministic simulation guarantees.
pub fn seeded_provider(seed: u64) -> CryptoProvider {
    static_groups(rustls::crypto::ring::default_provider(), seed)
}

fn static_groups(mut provider: CryptoProvider, seed: u64) -> CryptoProvider {
    provider.secure_random = Box::leak(Box::new(SeededRandom {
        seed: mix(seed, RANDOM_STREAM),
        next: AtomicU64::new(0),
    }));
    let group: &'static SeededX25519 = Box::leak(Box::new(SeededX25519 {
        seed: mix(seed, KX_STREAM),
        next: AtomicU64::new(0),
    }));
    provider.kx_groups = vec![group];
    provider
}

/// Bytes from splitmix64 over (seed, counter).
#[derive(Debug)]
struct SeededRandom {
    seed: u64,
    next: AtomicU64,
}

impl SecureRandom for SeededRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        fill(self.seed, self.next.fetch_add(1, Ordering::Relaxed), buf);
        Ok(())
    }
}

/// X25519 whose ephemeral secrets come from (seed, counter).
#[derive(Debug)]
struct SeededX25519 {
    seed: u64,
    next: AtomicU64,
}

impl SupportedKxGroup for SeededX25519 {
    fn start(&self) -> Result<Box<dyn ActiveKeyExchange>, Error> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut secret = [0u8; 32];
        fill(self.seed, n, &mut secret);
        let secret = StaticSecret::from(secret);
        let public = PublicKey::from(&secret);
        Ok(Box::new(Exchange { secret, public }))
    }

    fn name(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

struct Exchange {
    secret: StaticSecret,
    public: PublicKey,
}

impl ActiveKeyExchange for Exchange {
    fn complete(self: Box<Self>, peer_pub_key: &[u8]) -> Result<SharedSecret, Error> {
        let peer: [u8; 32] = peer_pub_key
            .try_into()
            .map_err(|_| Error::from(PeerMisbehaved::InvalidKeyShare))?;
        let shared = self.secret.diffie_hellman(&PublicKey::from(peer));
        // RFC 7748, section 6.1: refuse an all-zero secret (a low-order peer key).
        if !shared.was_contributory() {
            return Err(Error::from(PeerMisbehaved::InvalidKeyShare));
        }
        Ok(SharedSecret::from(&shared.as_bytes()[..]))
    }

    fn pub_key(&self) -> &[u8] {
        self.public.as_bytes()
    }

    fn group(&self) -> NamedGroup {
        NamedGroup::X25519
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(provider: &CryptoProvider, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        provider.secure_random.fill(&mut buf).unwrap();
        buf
    }

    #[test]
    fn same_seed_same_bytes_and_keys() {
        let (a, b) = (seeded_provider(7), seeded_provider(7));
        assert_eq!(random(&a, 45), random(&b, 45));
        assert_eq!(random(&a, 3), random(&b, 3));
        let key = |p: &CryptoProvider| p.kx_groups[0].start().unwrap().pub_key().to_vec();
        assert_eq!(key(&a), key(&b));
        assert_ne!(key(&a), key(&seeded_provider(8)));
    }

    #[test]
    fn calls_and_seeds_differ() {
        let a = seeded_provider(7);
        let first = random(&a, 32);
        assert_ne!(first, random(&a, 32));
        assert_ne!(first, random(&seeded_provider(8), 32));
        assert_eq!(random(&a, 5).len(), 5);
    }

    #[test]
    fn both_ends_agree_and_bad_shares_are_refused() {
        let (a, b) = (seeded_provider(1), seeded_provider(2));
        let x = a.kx_groups[0].start().unwrap();
        let y = b.kx_groups[0].start().unwrap();
        let (xp, yp) = (x.pub_key().to_vec(), y.pub_key().to_vec());
        let s1 = x.complete(&yp).unwrap();
        let s2 = y.complete(&xp).unwrap();
        assert_eq!(s1.secret_bytes(), s2.secret_bytes());
        let z = a.kx_groups[0].start().unwrap();
        assert!(z.complete(&[0u8; 31]).is_err());
        let z = a.kx_groups[0].start().unwrap();
        assert!(
            z.complete(&[0u8; 32]).is_err(),
            "the all-zero point is low order"
        );
    }
}
