//! The agent's timers and every timeout number it uses.
//!
//! Where no public figure exists for the real client, the number is the model's choice
//! and is documented here and in `docs/timeouts.md`.

use std::time::Duration;

/// How long one DNS-over-HTTPS exchange (connect, TLS, POST, answer) may take before the
/// client gives up on EDNS. The vendor documents a 10 s API timeout.
pub const DOH_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the client waits for one UDP answer from the local resolver before it asks
/// again.
pub const LDNS_TRY_TIMEOUT: Duration = Duration::from_secs(2);

/// How many times the client asks the local resolver (over UDP, or once over TCP after a
/// truncated answer) before LDNS resolution fails.
pub const LDNS_TRIES: u32 = 3;

/// How long the GSLB REST call may take before the client falls back to EDNS (the
/// vendor's API timeout).
pub const GSLB_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the client waits for its TCP RTT probes of GSLB's PoPs.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// How many of GSLB's PoPs the client probes ("roughly the ten closest").
pub const MAX_PROBES: usize = 10;

/// How long a tunnel connect (TCP or UDP handshake plus TLS/DTLS handshake) may take.
pub const TUNNEL_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long fetching a PAC file (WPAD lookup, connect, GET) may take before the client
/// carries on without a proxy (the vendor's 10 s API timeout).
pub const PAC_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the client sends a keepalive frame over an idle tunnel.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// How long the tunnel may stay silent (no keepalive answer, no data) before the client
/// declares it dead and reconnects.
pub const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(30);

/// First reconnect delay; doubled on every failed attempt.
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);

/// Largest reconnect delay, before jitter.
pub const BACKOFF_CAP: Duration = Duration::from_secs(60);

/// The agent's timers. At most one of each kind is armed at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// When to give up on the DNS-over-HTTPS exchange and fall back to LDNS.
    DohTimeout,
    /// When to decide the client is remote for want of an on-prem DNS answer.
    OnPremCheck,
    /// When to give up on the GSLB API and fall back to EDNS.
    GslbTimeout,
    /// When to stop waiting for RTT probes and pick from what answered.
    ProbeDeadline,
    /// When to give up on one local resolver try and send the next one.
    LdnsTry,
    /// When to give up on the tunnel connect and fail over.
    TunnelConnect,
    /// When to give up on fetching the PAC file.
    PacFetch,
    /// When to give up on the captive-portal check.
    PortalCheck,
    /// When to download the client configuration again.
    ConfigPull,
    /// When to give up on a configuration download.
    ConfigTimeout,
    /// When to send the next keepalive.
    KeepaliveSend,
    /// When to declare a silent tunnel dead.
    KeepaliveDeadline,
    /// When to start the next connection attempt after a failure.
    Reconnect,
}

impl Timer {
    /// Why this timer is armed, for traces.
    pub fn reason(self) -> &'static str {
        match self {
            Timer::DohTimeout => "EDNS download timeout",
            Timer::OnPremCheck => "on-prem check timeout",
            Timer::GslbTimeout => "GSLB API timeout",
            Timer::ProbeDeadline => "RTT probes over",
            Timer::LdnsTry => "LDNS answer timeout",
            Timer::TunnelConnect => "tunnel connect timeout",
            Timer::PacFetch => "PAC fetch timeout",
            Timer::PortalCheck => "captive-portal check timeout",
            Timer::ConfigPull => "configuration pull due",
            Timer::ConfigTimeout => "configuration download timeout",
            Timer::KeepaliveSend => "keepalive due",
            Timer::KeepaliveDeadline => "tunnel silent too long",
            Timer::Reconnect => "reconnect backoff over",
        }
    }
}

/// The delay before reconnect attempt `attempt` (1-based): `min(CAP, BASE * 2^(attempt-1))`,
/// then jittered into `[d/2, d]` with `jitter` in `[0, 1]`.
pub fn backoff_delay(attempt: u32, jitter: f64) -> Duration {
    let exp = attempt.saturating_sub(1).min(16);
    let raw = BACKOFF_BASE.saturating_mul(1u32 << exp).min(BACKOFF_CAP);
    let half = raw / 2;
    let ms = half.as_millis() as f64 * jitter.clamp(0.0, 1.0);
    half + Duration::from_millis(ms.round() as u64)
}
