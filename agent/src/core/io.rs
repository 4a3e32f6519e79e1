//! What goes into the core (events) and what comes out of it (actions).

use std::net::SocketAddr;

use super::config::TunnelProto;
use super::log::LogLine;
use super::steer::Decision;

/// Identifies one IO operation the core asked for; results for an operation the core no
/// longer waits on are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub u64);

/// How a DNS query travels to the local resolver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsTransport {
    /// UDP 53.
    Udp,
    /// TCP 53 (after a truncated UDP answer).
    Tcp,
}

/// Something the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Emit a log line.
    Log(LogLine),
    /// POST `body` (an `application/dns-message`) to `https://<server_name>/dns-query` at
    /// `addr`, and report [`HttpOutcome`].
    QueryDoh {
        /// Operation id.
        op: OpId,
        /// TLS server name and HTTP host.
        server_name: String,
        /// Where to connect.
        addr: SocketAddr,
        /// The DNS query.
        body: Vec<u8>,
    },
    /// Send `query` to the local resolver and report [`LdnsOutcome`].
    QueryLdns {
        /// Operation id.
        op: OpId,
        /// The resolver.
        addr: SocketAddr,
        /// UDP or TCP.
        transport: DnsTransport,
        /// The DNS query.
        query: Vec<u8>,
    },
    /// Open a tunnel to `addr`, verifying the certificate for `server_name` against the
    /// tenant CA only, and report [`TunnelEvent`]s for it.
    OpenTunnel {
        /// Operation id (also identifies the tunnel later).
        op: OpId,
        /// TLS server name.
        server_name: String,
        /// Where to connect.
        addr: SocketAddr,
        /// TLS or DTLS.
        proto: TunnelProto,
        /// Connect through this HTTP proxy with CONNECT (TLS only).
        proxy: Option<SocketAddr>,
    },
    /// GET the client configuration (`path`) from the control plane over HTTPS and report
    /// its [`HttpOutcome`] to [`crate::core::Agent::handle_config`].
    FetchConfig {
        /// Operation id.
        op: OpId,
        /// TLS server name and HTTP host (`addon-<tenant>...`).
        server_name: String,
        /// Where to connect.
        addr: SocketAddr,
        /// Path and query.
        path: String,
    },
    /// POST a client event (JSON) to the control plane; nobody waits for the answer.
    PostEvent {
        /// TLS server name and HTTP host (`addon-<tenant>...`).
        server_name: String,
        /// Where to connect.
        addr: SocketAddr,
        /// The JSON body: `{"device", "user", "type"}`.
        body: Vec<u8>,
    },
    /// Tell the gateway at the end of tunnel `op` who the user is.
    SendHello {
        /// The tunnel.
        op: OpId,
        /// The enrolled user.
        user: String,
    },
    /// Send a keepalive with this sequence number on tunnel `op`.
    SendKeepalive {
        /// The tunnel.
        op: OpId,
        /// Sequence number.
        seq: u64,
    },
    /// Close tunnel `op`.
    CloseTunnel {
        /// The tunnel.
        op: OpId,
    },
    /// GET `path` from the GSLB API at `addr` over HTTPS and report [`HttpOutcome`].
    QueryGslb {
        /// Operation id.
        op: OpId,
        /// TLS server name and HTTP host.
        server_name: String,
        /// Where to connect.
        addr: SocketAddr,
        /// Path and query.
        path: String,
    },
    /// Open (and close) a TCP connection to `addr` and report whether it connected; the
    /// core times it.
    Probe {
        /// Operation id.
        op: OpId,
        /// The PoP's gateway address.
        addr: SocketAddr,
    },
    /// POST the measured RTTs (JSON) back to the GSLB API; nobody waits for the answer.
    PostGslbRtt {
        /// TLS server name and HTTP host.
        server_name: String,
        /// Where to connect.
        addr: SocketAddr,
        /// Path.
        path: String,
        /// JSON body.
        body: Vec<u8>,
    },
    /// Tell the app what the agent decided for its flow.
    Steer {
        /// The flow.
        flow: u32,
        /// The decision.
        decision: Decision,
    },
    /// Open a tunneled flow on tunnel `op`.
    OpenFlow {
        /// The tunnel.
        op: OpId,
        /// The flow.
        flow: u32,
        /// `host:port` for the gateway to reach.
        target: String,
        /// The app's process name.
        process: String,
    },
    /// Tell the app whether its tunneled flow reached the origin.
    FlowResult {
        /// The flow.
        flow: u32,
        /// `Err` holds the reason it did not.
        result: Result<(), String>,
    },
    /// GET the PAC file at `url` (`http://host[:port]/path`; a host name is resolved
    /// through the local resolver, as the OS would) and report [`PacFetched`].
    FetchPac {
        /// Operation id.
        op: OpId,
        /// The PAC URL.
        url: String,
    },
    /// GET `url` (`http://host[:port]/path`, the host resolved through the local
    /// resolver) and report its [`HttpOutcome`] (the on-prem probe, the captive-portal
    /// check).
    HttpGet {
        /// Operation id.
        op: OpId,
        /// The URL.
        url: String,
    },
    /// Stop operation `op`: its result is no longer wanted.
    Cancel {
        /// The operation.
        op: OpId,
    },
}

/// Why a network operation failed, as the shell saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetError {
    /// The peer (or a firewall) refused the connection.
    Refused,
    /// The connection was reset.
    Reset,
    /// The peer closed the connection.
    Closed,
    /// The TLS handshake failed; the text is rustls's reason.
    Tls(String),
    /// Anything else, with its text.
    Other(String),
}

impl std::fmt::Display for NetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetError::Refused => f.write_str("connection refused"),
            NetError::Reset => f.write_str("connection reset by peer"),
            NetError::Closed => f.write_str("connection closed by peer"),
            NetError::Tls(t) => f.write_str(t),
            NetError::Other(t) => f.write_str(t),
        }
    }
}

/// The result of an HTTPS exchange (DNS over HTTPS, the GSLB API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpOutcome {
    /// An HTTP response arrived.
    Response {
        /// HTTP status.
        status: u16,
        /// Response body.
        body: Vec<u8>,
    },
    /// The exchange failed before a response.
    Failed(NetError),
}

/// The result of fetching a PAC file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacFetched {
    /// The HTTP exchange (a failed name lookup is `Failed(Other(..))`).
    pub outcome: HttpOutcome,
    /// The wall clock when the file arrived (milliseconds since 1970, UTC): what the
    /// script's `Date` and time helpers see.
    pub wall_unix_ms: i64,
}

/// The result of one query to the local resolver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LdnsOutcome {
    /// Answer bytes arrived.
    Response(Vec<u8>),
    /// The query could not be sent or the answer not read.
    Failed(NetError),
}

/// What happened to a tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelEvent {
    /// Connected and the gateway's certificate verified.
    Connected,
    /// The connect or handshake failed.
    Failed(NetError),
    /// A keepalive answer arrived.
    KeepaliveAck {
        /// Its sequence number.
        seq: u64,
    },
    /// The established tunnel closed.
    Closed(NetError),
    /// The gateway reached the origin of a tunneled flow.
    FlowOpened {
        /// The flow.
        flow: u32,
    },
    /// The gateway did not open a tunneled flow.
    FlowRefused {
        /// The flow.
        flow: u32,
        /// The gateway's reason.
        reason: String,
    },
}
