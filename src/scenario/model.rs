//! The typed scenario: what [`load_str`](super::load_str) produces once every key is
//! checked. The `Default` impls (in `raw.rs`, next to the keys) give what absent keys mean.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

/// One scenario file, validated. See `docs/scenario-reference.md` for every key.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// The file it was loaded from (as given to the loader).
    pub path: PathBuf,
    /// Required, non-empty.
    pub name: String,
    /// Free text; default empty.
    pub description: String,
    /// Default 0; the same seed gives byte-identical logs and captures.
    pub seed: u64,
    /// Simulated time to run; default 60 s.
    pub duration: Duration,
    /// Wall clock at t = 0 in Unix milliseconds; default `2019-10-14T11:40:40Z`.
    pub clock_unix_ms: i64,
    pub tenant: Tenant,
    pub client: Client,
    pub dns: Dns,
    pub steering: Steering,
    /// One or more gateway PoPs, in file order; names are unique.
    pub pops: Vec<Pop>,
    pub backup: Backup,
    pub origins: Vec<Origin>,
    pub network: Network,
    /// Extension `[policy]`.
    pub policy: Policy,
    /// Extension `[control_plane]`: the tenant's control plane; none when absent.
    pub control_plane: Option<ControlPlane>,
    /// Sorted by `at` (stable: same-time events keep file order).
    pub events: Vec<Event>,
    pub expect: Expect,
}

/// `[tenant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Default `"acme"`; gives `gateway-acme.goskope.com`.
    pub name: String,
    pub region: Region,
    /// Backend flag enabling GSLB for clients >= 96.1; default false.
    pub gslb: bool,
    /// How the GSLB API behaves (extension): answer | malformed | empty | http_NNN |
    /// slow_answer[:DURATION]; default answer.
    pub gslb_behaviour: ServerBehaviour,
    /// The order GSLB lists the PoPs in (extension); default: PoPs in the client's
    /// location first, then the rest in file order.
    pub gslb_order: Vec<String>,
}

/// `tenant.region`: the goskope.com sub-domain, `""` (default, `acme.goskope.com`) | `"eu"` |
/// `"de"` | `"au"` (`acme.eu.goskope.com`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Region {
    Global,
    Eu,
    De,
    Au,
}

/// `[client]`: the endpoint running the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub version: ClientVersion,
    /// Default 10.0.0.10.
    pub ip: Ipv4Addr,
    /// Default `"us-east"`.
    pub location: String,
    pub tunnel: TunnelProto,
    /// Block steered flows while no tunnel is up; default false.
    pub fail_close: bool,
    /// Extension: the enrolled user (`bob@acme.com`), told to the gateway for
    /// user-group policy. Default none.
    pub user: Option<String>,
    /// Extension: how many endpoints run the agent (addresses `ip`, `ip`+1, ...), each
    /// doing every `connect`; the outcome is the first one's. Default 1.
    pub endpoints: u32,
    /// Extension: how many endpoints share one simulated host (one address, like
    /// laptops behind one NAT): endpoint k sits at `ip` + k / `endpoints_per_host`.
    /// Default 1. Scale runs use it to keep turmoil's host count small.
    pub endpoints_per_host: u32,
}

/// A dotted client version such as `95.1.0` or `95.1.0.870`; default `95.1.0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientVersion {
    /// As written in the file.
    pub text: String,
    /// The numeric parts, two to four of them.
    pub parts: Vec<u32>,
}

/// `client.tunnel`, the preferred transport: `"dtls"` (default, UDP 443) | `"tls"` (TCP 443).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelProto {
    Dtls,
    Tls,
}

/// `[dns]`: the resolvers the agent can use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dns {
    /// DoH server name; default `"dns.google"`.
    pub doh: String,
    /// Local resolver address; default 10.0.0.53.
    pub ldns: Ipv4Addr,
    /// Where the local resolver egresses; default `client.location`.
    pub ldns_location: String,
    pub doh_behaviour: ServerBehaviour,
    pub ldns_behaviour: ServerBehaviour,
    /// The certificate the DoH server presents.
    pub doh_cert: CertKind,
    /// Extension: the endpoint's DNS search domain; WPAD looks up `wpad.<domain>` and
    /// the PAC server is `pac.<domain>`. Default `"corp.internal"`.
    pub search_domain: String,
}

/// How a simulated resolver answers (`dns.doh_behaviour`, `dns.ldns_behaviour`): `"answer"`
/// (default) | `"servfail"` | `"empty"` (NOERROR, no records) | `"http_NNN"` (400-599, DoH only) |
/// `"slow_answer"` or `"slow_answer:DURATION"` (answers late; default 30 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerBehaviour {
    Answer,
    ServFail,
    Empty,
    HttpError(u16),
    SlowAnswer(Duration),
    Malformed,
}

/// The certificate a server presents: `"trusted"` (default) | `"untrusted"` (signed by a CA the
/// client does not trust) | `"expired"` (trusted CA, validity over before the scenario clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertKind {
    Trusted,
    Untrusted,
    Expired,
}

/// `[steering]`: what the agent sends through the tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Steering {
    pub mode: SteeringMode,
    /// Default `[80, 443]`; ignored by mode `all`.
    pub ports: Vec<u16>,
    /// Cloud-apps mode: domains (`box.com`, `*.box.com`) to steer.
    pub managed: Vec<String>,
    /// Never steered: domains, wildcards, IPs, CIDRs.
    pub exceptions: Vec<String>,
    /// Certificate-pinned apps, by process name (contract key: each is bypassed).
    pub bypass_apps: Vec<String>,
    /// Certificate-pinned apps with an action (extension `pinned_apps`, and the entries
    /// of `bypass_file`).
    pub pinned_apps: Vec<PinnedApp>,
    /// Mode `all` only: DNS also goes through the tunnel.
    pub steer_dns: bool,
    /// Steer RFC 1918 destinations too.
    pub private_apps: bool,
    /// Extension: hold each TLS flow until its ClientHello and decide by its SNI (the
    /// option for overlapping IPs and apps whose DNS the client cannot see).
    pub sni_check: bool,
    /// Extension: on-prem detection. When `dns_host` resolves to `dns_ip` through the
    /// local resolver, the client is on-prem and steers in `mode` instead.
    pub on_prem: Option<OnPrem>,
}

/// `steering.on_prem`: dynamic steering by on-prem detection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnPrem {
    /// How the client tells it is on-prem.
    pub test: OnPremTest,
    /// The steering mode on-prem.
    pub mode: SteeringMode,
}

/// The on-prem test: `dns_host` + `dns_ip`, or `http_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnPremTest {
    /// `host` resolves to `ip` through the local resolver.
    Dns { host: String, ip: Ipv4Addr },
    /// A GET of `url` answers HTTP 200 within 10 s.
    Http { url: String },
}

impl std::fmt::Display for OnPremTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OnPremTest::Dns { host, ip } => {
                write!(f, "{host} resolves to {ip} by the local resolver")
            }
            OnPremTest::Http { url } => write!(f, "{url} answers HTTP 200"),
        }
    }
}

/// An app flow's transport (`connect` events' `proto`): `"tcp"` | `"udp"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppProto {
    Tcp,
    Udp,
}

/// How an app resolves its host: `"os"` (the OS resolver; the client sees the answer) |
/// `"app-doh"` (the app's own DNS over HTTPS, e.g. a browser's; the client sees nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppDns {
    Os,
    AppDoh,
}

/// A certificate-pinned app and what the agent does with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedApp {
    /// Process name.
    pub process: String,
    /// What to do with its flows.
    pub action: PinnedAction,
}

/// `pinned_apps[].action`: `"bypass"` (send direct) | `"tunnel"` (tunnel it, without
/// inspection) | `"block"` (drop it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PinnedAction {
    Bypass,
    Tunnel,
    Block,
}

/// `steering.mode`: `"cloud-apps"` (default; the managed list only) | `"web"` (ports in
/// `steering.ports`) | `"all"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SteeringMode {
    CloudApps,
    Web,
    All,
}

/// One `[[pops]]` entry: a gateway PoP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pop {
    pub name: String,
    pub location: String,
    pub ip: Ipv4Addr,
    /// One-way latency from the endpoint; default 20 ms.
    pub latency: Duration,
    pub cert: CertKind,
}

/// `[backup]`: the `gateway-backup-<tenant>` host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// None: the world picks an address.
    pub ip: Option<Ipv4Addr>,
    /// None: the second PoP's location.
    pub location: Option<String>,
    /// Default 20 ms.
    pub latency: Duration,
    pub cert: CertKind,
}

/// One `[[origins]]` entry: a server apps reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub host: String,
    pub ip: Ipv4Addr,
    /// Extension: the web category the gateway's policy sees for this host.
    pub category: Option<String>,
    /// Extension: names that are aliases (CNAMEs) of `host`.
    pub aliases: Vec<String>,
}

/// Extension `[control_plane]`: the client downloads its configuration (the scenario's
/// `[steering]` and `client.fail_close` as the tenant's default configuration) from
/// `addon-<tenant>`, and admin events change it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPlane {
    /// How often clients pull their configuration; default 5 minutes.
    pub interval: Duration,
    /// How users enrolled: `"upn"` (default) | `"idp"` | `"email"`.
    pub enrollment: Enrollment,
    /// The endpoint's host name; default `"LAPTOP-1"`.
    pub hostname: String,
    /// The endpoint's device id at the tenant; default `"device-1"`.
    pub device: String,
    /// The group of lost or stolen devices; default `"lost-devices"`.
    pub lost_group: String,
    /// With `enrollment = "email"`: the address the invite the client was installed
    /// from was sent to (it may not be `client.user`, who clicked it).
    pub invite: Option<String>,
}

/// How users enroll their client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Enrollment {
    Upn,
    Idp,
    Email,
}

/// What an `admin` event does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAction {
    /// Put `user` in `group` (only that group).
    MoveUser { user: String, group: String },
    /// Mark `user`'s device lost: move them to the lost-device group.
    MarkLost { user: String },
    /// Change the default configuration's steering mode (clients see it on their next
    /// pull).
    SetMode { mode: SteeringMode },
}

/// Extension `[policy]`: the gateway's real-time policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// Blocked destinations: domains (`dropbox.com`, `*.dropbox.com`) and categories
    /// (`category:file-sharing`), each optionally `for group:NAME`. A blocked tunneled
    /// flow gets a block page.
    pub block: Vec<String>,
    /// Extension: allow rules, same shape; a matching allow wins over every block.
    pub allow: Vec<String>,
    /// Extension: the tenant directory, group -> users.
    pub groups: BTreeMap<String, Vec<String>>,
}

/// `[network]`: firewalls and proxy between the endpoint and the internet.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// Ordered first-match rules on the endpoint.
    pub host_firewall: Vec<Rule>,
    /// Ordered first-match rules at the site perimeter.
    pub perimeter_firewall: Vec<Rule>,
    pub proxy: Option<Proxy>,
    /// PAC script text.
    pub pac: Option<String>,
    /// False: only the proxy reaches the internet. Default true.
    pub direct_egress: bool,
    /// Extension: the largest UDP datagram (bytes) the path carries; larger ones are
    /// dropped (no fragmentation). Default: no limit.
    pub path_mtu: Option<u32>,
    /// Extension: the share (0 to 1) of the endpoint's UDP datagrams lost on the way
    /// out, drawn from the seeded RNG. Default 0.
    pub udp_loss: f64,
    /// Extension: a full-tunnel corporate VPN on the endpoint that carries all internet
    /// traffic (the gateway ranges and DoH included) out at another location.
    pub vpn: Option<Vpn>,
}

/// `network.vpn`: a third-party full-tunnel VPN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vpn {
    /// Where the VPN's traffic reaches the internet (a location like `"eu-west"`).
    pub egress: String,
    /// One-way latency from the endpoint to the VPN's egress; default `"80ms"`.
    pub latency: Duration,
}

/// `network.proxy`: an explicit HTTP proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    pub address: SocketAddrV4,
    pub discovery: ProxyDiscovery,
}

/// `network.proxy.discovery`, how apps find the proxy: `"manual"` (default) | `"pac"` | `"wpad"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyDiscovery {
    Manual,
    Pac,
    Wpad,
}

/// A firewall rule: `ACTION [PROTO[/PORT]] [to TARGET]`. Parse with [`Rule::parse`];
/// `Display` gives the canonical text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub action: RuleAction,
    /// `Any` when the text names no protocol.
    pub proto: RuleProto,
    /// Always None for `Dns` and `Any`.
    pub port: Option<u16>,
    /// None: every destination.
    pub target: Option<RuleTarget>,
    /// The text as written (trimmed).
    pub text: String,
}

/// What a matching rule does: `allow` | `block` (silent drop) | `reset` (TCP RST / ICMP
/// unreachable) | `inspect` (TLS interception, re-signed with the firewall's own CA) |
/// `redirect` (captive portal, HTTP 302) | `intercept` (extension: DNS, UDP and TCP 53, is
/// answered by the site's own resolver whatever server it was sent to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleAction {
    Allow,
    Block,
    Reset,
    Inspect,
    Redirect,
    Intercept,
}

/// Which traffic a rule matches: `tcp` | `udp` | `dns` (UDP and TCP port 53) | `any`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleProto {
    Tcp,
    Udp,
    Dns,
    Any,
}

/// Which destination a rule matches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RuleTarget {
    /// An exact host name, lowercase.
    Host(String),
    /// `*.goskope.com`, stored as `goskope.com` (lowercase): names under it.
    Wildcard(String),
    Ip(IpAddr),
    Cidr(ipnet::IpNet),
}

/// One `[[events]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Simulated time since start; at most the scenario duration.
    pub at: Duration,
    pub action: EventAction,
}

/// `do` of an event, with the keys that word takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventAction {
    /// Start the agent.
    Start,
    /// Stop the agent.
    Stop,
    /// An app resolves `host` (through the OS, or its own DoH per `dns`), then opens
    /// TCP to `port`.
    Connect {
        process: String,
        host: String,
        port: u16,
        via_proxy: bool,
        dns: AppDns,
        /// Extension: `"tcp"` (default) or `"udp"` (one datagram and its answer).
        proto: AppProto,
    },
    /// Add a firewall rule at run time.
    Rule { place: FirewallPlace, rule: Rule },
    /// Cut a host off silently.
    Partition { host: String },
    /// Heal a partition.
    Repair { host: String },
    /// Extension: the endpoint moves to another network in `location` (roaming): the
    /// perimeter firewall rules of the old network no longer apply, DoH with ECS answers
    /// for the new location, and the agent sees a network change.
    Move { location: String },
    /// Extension: the tenant's admin does something (needs `[control_plane]`).
    Admin(AdminAction),
    /// Extension: the user logs in at the captive portal: `redirect` rules stop
    /// applying, as the portal now lets the endpoint out.
    Login,
}

/// `where` of a `rule` event: `"host"` (the endpoint's firewall) | `"perimeter"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FirewallPlace {
    Host,
    Perimeter,
}

/// `[expect]`: checked at the end of the run; absent keys are not checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expect {
    pub resolved_by: Option<ResolvedBy>,
    /// A PoP name or `"backup"`.
    pub gateway: Option<String>,
    pub tunnel: Option<TunnelState>,
    /// `Some(vec![])` (from `flows = []`) expects no flows at all.
    pub flows: Option<Vec<ExpectFlow>>,
}

/// How the agent resolved the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResolvedBy {
    Gslb,
    Edns,
    Ldns,
}

/// The tunnel at the end of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelState {
    Dtls,
    Tls,
    Down,
}

/// One `[[expect.flows]]` entry; absent keys match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpectFlow {
    pub process: Option<String>,
    pub host: Option<String>,
    pub verdict: Option<Verdict>,
}

/// What happened to a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Sent through the tunnel.
    Tunneled,
    /// In the mode's scope but sent direct on purpose.
    Bypassed,
    /// Not in the steering mode's scope.
    Direct,
    /// Dropped by the agent or the gateway's policy.
    Blocked,
}

impl ClientVersion {
    /// True if this version is `major.minor` or later.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        let mine = (
            self.parts.first().copied().unwrap_or(0),
            self.parts.get(1).copied().unwrap_or(0),
        );
        mine >= (major, minor)
    }
}

/// Default one-way latency of a PoP or the backup gateway.
pub const DEFAULT_LATENCY: Duration = Duration::from_millis(20);
/// Default `duration`.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(60);
/// The longest `duration` a scenario may ask for (contract v2): one simulated day.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// Default `clock`.
pub const DEFAULT_CLOCK: &str = "2019-10-14T11:40:40Z";
/// Default delay of `slow_answer` without `:DURATION`.
pub const DEFAULT_SLOW_ANSWER: Duration = Duration::from_secs(30);
