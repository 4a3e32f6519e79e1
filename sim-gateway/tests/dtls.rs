//! The gateway's DTLS on a real UDP socket on 127.0.0.1, against the agent's DTLS client
//! over `TokioNet`: a keepalive answered through the relay; identities dimpl cannot use
//! are refused when the gateway is built; junk datagrams start no session.

use std::io;
use std::net::Ipv4Addr;
use std::time::Duration;

use agent::shell::dtls::{self, DtlsIdentity, DtlsSettings};
use agent::shell::{TokioNet, WallClock};
use agent::wire::Frame;
use bytes::BytesMut;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sim_gateway::{Dialer, Gateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NAME: &str = "gateway-acme.goskope.com";

#[derive(Clone)]
struct NoOrigins;

impl Dialer for NoOrigins {
    type Stream = tokio::net::TcpStream;

    async fn dial(&self, _: &str, _: u16) -> io::Result<Self::Stream> {
        Err(io::ErrorKind::NotFound.into())
    }
}

struct Pki {
    root: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

type Leaf = (CertificateDer<'static>, PrivateKeyDer<'static>);

impl Pki {
    fn new() -> Pki {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let root = params.self_signed(&key).unwrap().der().clone();
        let issuer = Issuer::new(params, key);
        Pki { root, issuer }
    }

    fn leaf(&self, name: &str, alg: &'static rcgen::SignatureAlgorithm) -> Leaf {
        let key = KeyPair::generate_for(alg).unwrap();
        let params = CertificateParams::new(vec![name.to_string()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (cert.der().clone(), der)
    }
}

fn gateway(pki: &Pki) -> Gateway<NoOrigins> {
    let (tls_cert, tls_key) = pki.leaf(NAME, &rcgen::PKCS_ED25519);
    let (cert, key) = pki.leaf(NAME, &rcgen::PKCS_ECDSA_P256_SHA256);
    Gateway::new("nyc1", vec![tls_cert], tls_key, system_time, NoOrigins)
        .unwrap()
        .with_dtls(&cert, &key, None)
        .unwrap()
}

#[allow(clippy::disallowed_methods, reason = "real sockets, real clock")]
fn system_time() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

fn local<F: std::future::Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, f)
}

#[test]
fn keepalive_over_dtls_on_loopback() {
    let pki = Pki::new();
    let gw = gateway(&pki);
    let (cert, key) = pki.leaf("endpoint.acme.example", &rcgen::PKCS_ECDSA_P256_SHA256);
    let identity = DtlsIdentity::new(&cert, &key);
    let settings = DtlsSettings::new(
        std::slice::from_ref(&pki.root),
        WallClock::new(system_time),
        identity,
    )
    .unwrap();
    let ack = local(async move {
        let socket = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = socket.local_addr()?;
        tokio::task::spawn_local(async move { gw.serve_dtls(socket).await });
        // Junk first: not a handshake record, so no session, and no harm.
        let junk = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        junk.send_to(&[0x17, 0xfe, 0xfd, 0, 1], addr).await?;
        let mut stream = dtls::connect(&TokioNet, &settings, NAME, addr)
            .await
            .map_err(|e| io::Error::other(format!("{e:?}")))?;
        let mut out = BytesMut::new();
        Frame::Keepalive { seq: 42 }.encode(&mut out);
        stream.write_all(&out).await?;
        let mut inbuf = BytesMut::new();
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Some(frame) = Frame::decode(&mut inbuf).map_err(io::Error::other)? {
                    return Ok::<_, io::Error>(frame);
                }
                if stream.read_buf(&mut inbuf).await? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            }
        })
        .await?
    });
    assert_eq!(ack.unwrap(), Frame::KeepaliveAck { seq: 42 });
}

#[test]
fn identities_dimpl_cannot_use_are_refused_up_front() {
    let pki = Pki::new();
    let (tls_cert, tls_key) = pki.leaf(NAME, &rcgen::PKCS_ED25519);
    let gw = Gateway::new(
        "nyc1",
        vec![tls_cert.clone()],
        tls_key,
        system_time,
        NoOrigins,
    );
    let gw = gw.unwrap();
    let ed_key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(vec![1, 2, 3]));
    assert!(gw.clone().with_dtls(&tls_cert, &ed_key, Some(1)).is_err());
    let served = local(async move {
        let socket = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        gw.serve_dtls(socket).await
    });
    assert!(served.is_err(), "no DTLS identity, no DTLS");
}
