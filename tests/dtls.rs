//! DTLS end to end in turmoil: the agent's `dtls::connect` against sim-gateway's DTLS on
//! UDP 443, a keepalive answered by the gateway's relay; a rogue gateway certificate; a
//! lossy link where dimpl's retransmissions (on simulated time) still finish the
//! handshake; the same seed giving the same times; and the failure mapping.

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use agent::core::NetError;
use agent::shell::dtls::{self, DtlsIdentity, DtlsSettings};
use agent::shell::{Datagram, Net, WallClock};
use agent::wire::Frame;
use bytes::BytesMut;
use steerlab::world::pki::{Authority, Pki};
use steerlab::world::serve::{WorldClock, WorldDialer};
use steerlab::world::udp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const EPOCH_MS: i64 = 1_571_053_240_000;
const ENDPOINT: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(163, 116, 128, 80);
const NAME: &str = "gateway-acme.goskope.com";
const ONE_WAY: Duration = Duration::from_millis(10);
const ORIGIN: Ipv4Addr = Ipv4Addr::new(93, 184, 216, 34);
const ECHO: &str = "echo.example";

/// An origin echoing every TCP connection on port 7.
async fn echo() -> turmoil::Result {
    let listener = turmoil::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, 7)).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::task::spawn_local(async move {
            let (mut rd, mut wr) = tokio::io::split(stream);
            let _ = tokio::io::copy(&mut rd, &mut wr).await;
        });
    }
}

/// Plain turmoil sockets, no firewall.
#[derive(Clone)]
struct PlainNet;

struct PlainUdp(turmoil::net::UdpSocket);

impl Datagram for PlainUdp {
    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> io::Result<usize> {
        self.0.send_to(buf, addr).await
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.0.recv_from(buf).await
    }
}

impl Net for PlainNet {
    type Tcp = turmoil::net::TcpStream;
    type Udp = PlainUdp;

    async fn connect_tcp(&self, addr: SocketAddr) -> io::Result<Self::Tcp> {
        turmoil::net::TcpStream::connect(addr).await
    }

    async fn bind_udp(&self) -> io::Result<Self::Udp> {
        let socket = turmoil::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await?;
        Ok(PlainUdp(socket))
    }
}

/// What one run saw, in simulated time since the start.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    handshake: Result<Duration, NetError>,
    /// When the first keepalive came back acknowledged.
    acked: Option<Duration>,
    keepalives_sent: u64,
}

fn identity(pki: &mut Pki, name: &str, by: Authority) -> DtlsIdentity {
    let leaf = pki.ecdsa_leaf(&[name.to_string()], by, false).unwrap();
    DtlsIdentity::new(&leaf.chain[0], &leaf.key)
}

/// One endpoint running [`exchange`], one gateway presenting an ECDSA certificate from
/// `gateway_ca`, a 10 ms one-way link losing messages at `loss`.
fn run(seed: u64, gateway_ca: Authority, loss: f64) -> Seen {
    world(seed, gateway_ca, loss, |settings| async move {
        exchange(&settings).await
    })
}

/// The world of [`run`] with any client, and an echo origin the gateway can reach.
fn world<F, Fut, T>(seed: u64, gateway_ca: Authority, loss: f64, client: F) -> T
where
    F: FnOnce(DtlsSettings) -> Fut + 'static,
    Fut: std::future::Future<Output = T> + 'static,
    T: 'static,
{
    let mut pki = Pki::new(seed, EPOCH_MS).unwrap();
    let clock = WorldClock {
        epoch_unix_ms: EPOCH_MS,
    };
    let tls = pki
        .leaf(&[NAME.to_string()], Authority::Tenant, false)
        .unwrap();
    let dtls_leaf = pki
        .ecdsa_leaf(&[NAME.to_string()], gateway_ca, false)
        .unwrap();
    let gw = sim_gateway::Gateway::new(
        "nyc1",
        tls.chain,
        tls.key,
        move || clock.now(),
        WorldDialer::new(BTreeMap::from([(ECHO.to_string(), ORIGIN)])),
    )
    .unwrap()
    .with_dtls(&dtls_leaf.chain[0], &dtls_leaf.key, Some(seed))
    .unwrap();
    let settings = DtlsSettings::new(
        &[pki.tenant_root()],
        WallClock::new(move || clock.now()),
        identity(&mut pki, "endpoint.acme.example", Authority::Tenant),
    )
    .unwrap()
    .with_seed(seed);

    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .epoch(UNIX_EPOCH + Duration::from_millis(EPOCH_MS as u64))
        .tick_duration(Duration::from_millis(1))
        .simulation_duration(Duration::from_secs(120))
        .build();
    sim.host(GATEWAY, move || udp::gateway_dtls(gw.clone(), 443));
    sim.host(ORIGIN, echo);
    let seen = Arc::new(Mutex::new(None));
    let out = seen.clone();
    sim.client(ENDPOINT, async move {
        let result = client(settings).await;
        *out.lock().unwrap() = Some(result);
        Ok(())
    });
    sim.set_link_latency(ENDPOINT, GATEWAY, ONE_WAY);
    if loss > 0.0 {
        sim.set_link_fail_rate(ENDPOINT, GATEWAY, loss);
    }
    sim.run().unwrap();
    let seen = seen.lock().unwrap().take();
    seen.expect("the client ran")
}

/// Connects, then sends a keepalive every second (DTLS does not resend lost records)
/// until one is acknowledged.
async fn exchange(settings: &DtlsSettings) -> Seen {
    let start = tokio::time::Instant::now();
    let addr = SocketAddr::from((GATEWAY, 443));
    let mut stream = match dtls::connect(&PlainNet, settings, NAME, addr).await {
        Ok(stream) => stream,
        Err(e) => {
            return Seen {
                handshake: Err(e),
                acked: None,
                keepalives_sent: 0,
            };
        }
    };
    let handshake = Ok(start.elapsed());
    let mut inbuf = BytesMut::new();
    let mut out = BytesMut::new();
    for seq in 1..=30u64 {
        out.clear();
        Frame::Keepalive { seq }.encode(&mut out);
        stream.write_all(&out).await.unwrap();
        let wait = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                if let Some(frame) = Frame::decode(&mut inbuf).unwrap() {
                    return frame;
                }
                assert!(
                    stream.read_buf(&mut inbuf).await.unwrap() > 0,
                    "tunnel closed"
                );
            }
        });
        if let Ok(frame) = wait.await {
            assert!(
                matches!(frame, Frame::KeepaliveAck { seq: s } if s <= seq),
                "{frame:?}"
            );
            return Seen {
                handshake,
                acked: Some(start.elapsed()),
                keepalives_sent: seq,
            };
        }
    }
    Seen {
        handshake,
        acked: None,
        keepalives_sent: 30,
    }
}

#[test]
fn keepalive_round_trip_through_the_gateway_relay() {
    let seen = run(1, Authority::Tenant, 0.0);
    println!("no loss: {seen:?}");
    let handshake = seen.handshake.clone().unwrap();
    // A cookie exchange, then the handshake proper: at least two round trips.
    assert!(handshake >= 4 * ONE_WAY, "{handshake:?}");
    assert!(handshake < Duration::from_millis(500), "{handshake:?}");
    assert_eq!(seen.keepalives_sent, 1);
    assert!(seen.acked.is_some());
}

/// Opens a flow to the echo origin through the tunnel, then sends `len` bytes in one
/// frame (the relay drops data for a flow it has not opened yet).
async fn echo_through_tunnel(settings: DtlsSettings, len: usize) -> Vec<u8> {
    let addr = SocketAddr::from((GATEWAY, 443));
    let mut stream = dtls::connect(&PlainNet, &settings, NAME, addr)
        .await
        .unwrap();
    let mut out = BytesMut::new();
    let target = format!("{ECHO}:7");
    let flow = 1;
    Frame::Open {
        flow,
        target,
        process: "curl".into(),
    }
    .encode(&mut out);
    stream.write_all(&out).await.unwrap();
    let mut inbuf = BytesMut::new();
    let mut echoed = Vec::new();
    while echoed.len() < len {
        match Frame::decode(&mut inbuf).unwrap() {
            Some(Frame::Opened { flow: 1 }) => {
                let bytes = (0..len).map(|i| (i % 251) as u8).collect::<Vec<_>>();
                out.clear();
                Frame::Data {
                    flow,
                    bytes: bytes.into(),
                }
                .encode(&mut out);
                stream.write_all(&out).await.unwrap();
            }
            Some(Frame::Data { flow: 1, bytes }) => echoed.extend_from_slice(&bytes),
            Some(other) => panic!("unexpected {other:?}"),
            None => assert!(
                stream.read_buf(&mut inbuf).await.unwrap() > 0,
                "tunnel closed"
            ),
        }
    }
    echoed
}

#[test]
fn frames_longer_than_a_datagram_cross_in_pieces_both_ways() {
    let len = 10_000;
    let echoed = world(3, Authority::Tenant, 0.0, move |s| {
        echo_through_tunnel(s, len)
    });
    let sent = (0..len).map(|i| (i % 251) as u8).collect::<Vec<_>>();
    assert_eq!(echoed, sent);
}

#[test]
fn rogue_gateway_certificate_is_refused() {
    let seen = run(1, Authority::Rogue, 0.0);
    match seen.handshake {
        Err(NetError::Tls(reason)) => assert!(reason.contains("UnknownIssuer"), "{reason}"),
        other => panic!("expected a certificate error, got {other:?}"),
    }
}

#[test]
fn handshake_survives_loss_by_retransmission() {
    let mut slowest = Duration::ZERO;
    for seed in 1..=5 {
        let seen = run(seed, Authority::Tenant, 0.3);
        println!("30% loss, seed {seed}: {seen:?}");
        let handshake = seen.handshake.unwrap();
        slowest = slowest.max(handshake);
        assert!(seen.acked.is_some(), "seed {seed}: no keepalive came back");
    }
    // dimpl's first retransmission waits about a second: some handshake needed one.
    assert!(slowest >= Duration::from_millis(700), "{slowest:?}");
}

#[test]
fn same_seed_same_times() {
    for loss in [0.0, 0.3] {
        let a = run(4, Authority::Tenant, loss);
        let b = run(4, Authority::Tenant, loss);
        assert_eq!(a, b, "loss {loss}");
    }
    assert_ne!(
        run(4, Authority::Tenant, 0.3),
        run(5, Authority::Tenant, 0.3)
    );
}

/// A socket whose every send is refused (a host firewall's reject), or silently dropped.
#[derive(Clone)]
struct FirewalledNet {
    refuse: bool,
}

struct FirewalledUdp {
    refuse: bool,
}

impl Datagram for FirewalledUdp {
    async fn send_to(&self, buf: &[u8], _: SocketAddr) -> io::Result<usize> {
        match self.refuse {
            true => Err(io::ErrorKind::ConnectionRefused.into()),
            false => Ok(buf.len()),
        }
    }

    async fn recv_from(&self, _: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        std::future::pending().await
    }
}

impl Net for FirewalledNet {
    type Tcp = tokio::net::TcpStream;
    type Udp = FirewalledUdp;

    async fn connect_tcp(&self, _: SocketAddr) -> io::Result<Self::Tcp> {
        Err(io::ErrorKind::ConnectionRefused.into())
    }

    async fn bind_udp(&self) -> io::Result<Self::Udp> {
        Ok(FirewalledUdp {
            refuse: self.refuse,
        })
    }
}

#[test]
fn refused_or_silent_networks_and_bad_identities() {
    let mut pki = Pki::new(2, EPOCH_MS).unwrap();
    let clock = WallClock::new(|| UNIX_EPOCH + Duration::from_millis(EPOCH_MS as u64));
    let roots = [pki.tenant_root()];

    // dimpl takes ECDSA only: an Ed25519 identity is refused up front, not at connect.
    let ed = pki
        .leaf(&["endpoint.acme.example".into()], Authority::Tenant, false)
        .unwrap();
    let err = DtlsSettings::new(
        &roots,
        clock.clone(),
        DtlsIdentity::new(&ed.chain[0], &ed.key),
    );
    assert!(err.is_err());

    let id = identity(&mut pki, "endpoint.acme.example", Authority::Tenant);
    let settings = DtlsSettings::new(&roots, clock, id).unwrap().with_mtu(1000);
    assert_eq!(settings.mtu(), 1000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let addr = SocketAddr::from((GATEWAY, 443));
    let refusing = FirewalledNet { refuse: true };
    let result = local.block_on(&rt, dtls::connect(&refusing, &settings, NAME, addr));
    assert_eq!(result.err(), Some(NetError::Refused));

    // A silent network: dimpl retransmits on its schedule and gives up long after the
    // core's 10 s connect timer would have cancelled the attempt.
    let silent = FirewalledNet { refuse: false };
    let (result, waited) = local.block_on(&rt, async {
        let start = tokio::time::Instant::now();
        let result = dtls::connect(&silent, &settings, NAME, addr).await;
        (result, start.elapsed())
    });
    println!(
        "silent network: {:?} after {waited:?}",
        result.as_ref().err()
    );
    assert!(matches!(result, Err(NetError::Tls(_))));
    assert!(waited > Duration::from_secs(10), "{waited:?}");
}
