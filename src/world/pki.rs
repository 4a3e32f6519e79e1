//! The world's PKI, made with rcgen when the world is built: a public CA (what browsers
//! and the agent's DoH client trust), the tenant CA (the only CA the tunnel trusts), and a
//! rogue CA (an attacker's or an inspecting firewall's). Keys are Ed25519 from the
//! scenario seed, serials and validity are fixed, so the same seed gives the same bytes.
//!
//! DTLS (dimpl) takes only ECDSA P-256/P-384 certificates: [`Pki::ecdsa_leaf`] makes
//! P-256 leaves from the seed the same way, still signed by the Ed25519 CAs (webpki
//! checks an Ed25519 signature over an ECDSA leaf like any other).

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

/// Which CA signs a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authority {
    /// The public web PKI.
    Public,
    /// The tenant's CA.
    Tenant,
    /// A CA nobody trusts.
    Rogue,
}

/// A leaf certificate with its key.
#[derive(Debug)]
pub struct Leaf {
    /// Leaf first, then the issuing CA.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's key.
    pub key: PrivateKeyDer<'static>,
    /// Where a server presenting this leaf logs its TLS session secrets: the PKI's key
    /// log (see [`Pki::log_keys_to`]).
    pub key_log: Option<Arc<dyn rustls::KeyLog>>,
}

impl Clone for Leaf {
    fn clone(&self) -> Self {
        Leaf {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            key_log: self.key_log.clone(),
        }
    }
}

/// The world's certificate authorities.
pub struct Pki {
    seed: u64,
    now_unix_s: i64,
    next_serial: u64,
    public: (Issuer<'static, KeyPair>, CertificateDer<'static>),
    tenant: (Issuer<'static, KeyPair>, CertificateDer<'static>),
    rogue: (Issuer<'static, KeyPair>, CertificateDer<'static>),
    key_log: Option<Arc<dyn rustls::KeyLog>>,
}

/// Several key logs fed the same secrets (the endpoint's capture and the hosts').
#[derive(Debug)]
struct KeyLogs(Vec<Arc<dyn rustls::KeyLog>>);

impl rustls::KeyLog for KeyLogs {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        for log in &self.0 {
            log.log(label, client_random, secret);
        }
    }
}

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
#[error("certificate generation failed: {0}")]
pub struct PkiError(#[from] rcgen::Error);

impl Pki {
    /// CAs for a world whose clock starts at `now_unix_ms`.
    pub fn new(seed: u64, now_unix_ms: i64) -> Result<Pki, PkiError> {
        let now_unix_s = now_unix_ms.div_euclid(1000);
        let mut next_serial = 1;
        let mut ca = |label: &str, name: &str| -> Result<_, PkiError> {
            let key = seeded_key(seed, label)?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.distinguished_name.push(DnType::CommonName, name);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            params.serial_number = Some(SerialNumber::from(next_serial));
            next_serial += 1;
            set_validity(&mut params, now_unix_s, -3650, 3650);
            let cert = params.self_signed(&key)?;
            Ok((Issuer::new(params, key), cert.der().clone()))
        };
        let public = ca("public-ca", "steerlab Public Root CA")?;
        let tenant = ca("tenant-ca", "steerlab Tenant CA")?;
        let rogue = ca("rogue-ca", "Untrusted Inspection CA")?;
        Ok(Pki {
            seed,
            now_unix_s,
            next_serial,
            public,
            tenant,
            rogue,
            key_log: None,
        })
    }

    /// Every TLS session made with this PKI's certificates and roots logs its secrets to
    /// `key_log`: the servers through their leaves (issued after this call), the world's
    /// clients through [`Pki::key_log`]. Called again, the secrets go to every log given.
    pub fn log_keys_to(&mut self, key_log: Arc<dyn rustls::KeyLog>) {
        self.key_log = Some(match self.key_log.take() {
            None => key_log,
            Some(first) => Arc::new(KeyLogs(vec![first, key_log])),
        });
    }

    /// The key log of [`Pki::log_keys_to`], if any.
    pub fn key_log(&self) -> Option<Arc<dyn rustls::KeyLog>> {
        self.key_log.clone()
    }

    /// The public CA certificate.
    pub fn public_root(&self) -> CertificateDer<'static> {
        self.public.1.clone()
    }

    /// The tenant CA certificate.
    pub fn tenant_root(&self) -> CertificateDer<'static> {
        self.tenant.1.clone()
    }

    /// The rogue CA certificate.
    pub fn rogue_root(&self) -> CertificateDer<'static> {
        self.rogue.1.clone()
    }

    /// A leaf for `names`, signed by `by`; `expired` makes it end a day before the clock.
    pub fn leaf(
        &mut self,
        names: &[String],
        by: Authority,
        expired: bool,
    ) -> Result<Leaf, PkiError> {
        let key = seeded_key(self.seed, &format!("leaf-{}", names.join(",")))?;
        self.sign(key, names, by, expired)
    }

    /// Like [`Pki::leaf`] with an ECDSA P-256 key (for DTLS), also from the seed.
    pub fn ecdsa_leaf(
        &mut self,
        names: &[String],
        by: Authority,
        expired: bool,
    ) -> Result<Leaf, PkiError> {
        let key = seeded_p256_key(self.seed, &format!("ecdsa-leaf-{}", names.join(",")))?;
        self.sign(key, names, by, expired)
    }

    fn sign(
        &mut self,
        key: KeyPair,
        names: &[String],
        by: Authority,
        expired: bool,
    ) -> Result<Leaf, PkiError> {
        let mut params = CertificateParams::new(names.to_vec())?;
        if let Some(first) = names.first() {
            params
                .distinguished_name
                .push(DnType::CommonName, first.as_str());
        }
        params.serial_number = Some(SerialNumber::from(self.next_serial));
        self.next_serial += 1;
        if expired {
            set_validity(&mut params, self.now_unix_s, -400, -1);
        } else {
            set_validity(&mut params, self.now_unix_s, -30, 365);
        }
        let (issuer, root) = match by {
            Authority::Public => (&self.public.0, &self.public.1),
            Authority::Tenant => (&self.tenant.0, &self.tenant.1),
            Authority::Rogue => (&self.rogue.0, &self.rogue.1),
        };
        let cert = params.signed_by(&key, issuer)?;
        Ok(Leaf {
            chain: vec![cert.der().clone(), root.clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            key_log: self.key_log.clone(),
        })
    }
}

fn set_validity(params: &mut CertificateParams, now_s: i64, from_days: i64, to_days: i64) {
    let at = |days: i64| {
        OffsetDateTime::from_unix_timestamp(now_s + days * 86_400)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    };
    params.not_before = at(from_days);
    params.not_after = at(to_days);
}

/// An Ed25519 key whose 32 secret bytes come from the seed and a label.
fn seeded_key(seed: u64, label: &str) -> Result<KeyPair, rcgen::Error> {
    let secret = seeded_secret(seed, label);
    // PKCS#8 v1 wrapping of an Ed25519 secret (RFC 8410, section 7).
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&secret);
    KeyPair::try_from(der.as_slice())
}

/// An ECDSA P-256 key whose secret scalar comes from the seed and a label (a label with a
/// counter appended when the bytes fall outside the curve's order, about once in 2^32).
fn seeded_p256_key(seed: u64, label: &str) -> Result<KeyPair, rcgen::Error> {
    use p256::pkcs8::EncodePrivateKey;
    let mut attempt = 0u32;
    let secret = loop {
        let bytes = seeded_secret(seed, &format!("{label}#{attempt}"));
        if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
            break secret;
        }
        attempt += 1;
    };
    let der = secret
        .to_pkcs8_der()
        .map_err(|_| rcgen::Error::CouldNotParseKeyPair)?;
    KeyPair::try_from(der.as_bytes())
}

/// 32 secret bytes from the seed and a label (splitmix64).
fn seeded_secret(seed: u64, label: &str) -> [u8; 32] {
    let mut state = seed ^ 0x5EED_57EE_41AB_0000;
    for b in label.bytes() {
        state = state.rotate_left(5) ^ u64::from(b);
        state = state.wrapping_mul(0x100_0000_01B3);
    }
    let mut secret = [0u8; 32];
    for chunk in secret.chunks_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_be_bytes());
    }
    secret
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_certificates() {
        let mut a = Pki::new(7, 1_571_053_240_000).unwrap();
        let mut b = Pki::new(7, 1_571_053_240_000).unwrap();
        assert_eq!(a.tenant_root(), b.tenant_root());
        let names = vec!["gateway-acme.goskope.com".to_string()];
        let la = a.leaf(&names, Authority::Tenant, false).unwrap();
        let lb = b.leaf(&names, Authority::Tenant, false).unwrap();
        assert_eq!(la.chain, lb.chain);
        let ea = a.ecdsa_leaf(&names, Authority::Tenant, false).unwrap();
        let eb = b.ecdsa_leaf(&names, Authority::Tenant, false).unwrap();
        assert_eq!(ea.chain, eb.chain);
        assert_eq!(ea.key.secret_der(), eb.key.secret_der());
        assert_ne!(ea.chain[0], la.chain[0]);
        let c = Pki::new(8, 1_571_053_240_000).unwrap();
        assert_ne!(a.tenant_root(), c.tenant_root());
    }

    #[test]
    fn ecdsa_leaves_verify_against_the_ed25519_tenant_ca() {
        use rustls::client::danger::ServerCertVerifier;
        let now_ms = 1_571_053_240_000;
        let mut pki = Pki::new(3, now_ms).unwrap();
        let names = vec!["gateway-acme.goskope.com".to_string()];
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.tenant_root()).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .unwrap();
        let now = rustls::pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_millis(
            now_ms as u64,
        ));
        let name = rustls::pki_types::ServerName::try_from(names[0].as_str()).unwrap();
        let verify =
            |leaf: &Leaf| verifier.verify_server_cert(&leaf.chain[0], &[], &name, &[], now);
        let good = pki.ecdsa_leaf(&names, Authority::Tenant, false).unwrap();
        assert!(verify(&good).is_ok(), "{:?}", verify(&good));
        let rogue = pki.ecdsa_leaf(&names, Authority::Rogue, false).unwrap();
        let err = verify(&rogue).unwrap_err().to_string();
        assert!(err.contains("UnknownIssuer"), "{err}");
        let expired = pki.ecdsa_leaf(&names, Authority::Tenant, true).unwrap();
        assert!(verify(&expired).is_err());
    }
}
