//! The file as written: serde structs mirroring the TOML key for key, what absent keys
//! mean (the model's `Default` impls), and the contract words of every enum. Values that
//! need checking stay `Spanned` strings so the loader can point at them;
//! `deny_unknown_fields` everywhere makes typos errors.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize, Serializer};
use toml::Spanned;

use super::duration::parse_duration;
use super::model::{
    AppDns, AppProto, Backup, CertKind, Client, ClientVersion, DEFAULT_LATENCY,
    DEFAULT_SLOW_ANSWER, Dns, Enrollment, FirewallPlace, Network, PinnedAction, ProxyDiscovery,
    Region, ResolvedBy, RuleAction, RuleProto, ServerBehaviour, Steering, SteeringMode, Tenant,
    TunnelProto, TunnelState, Verdict,
};
use super::schema::{
    AdminWord, ClockText, DnsBehaviour, DurationText, EndpointCount, EventWord, HttpBehaviour,
    Ipv4Text, PathMtu, Port, RuleText, Share, SocketAddrText,
};
use super::{LoadError, from_toml};

type S = Option<Spanned<String>>;

/// Parses the TOML into the raw shape: syntax, unknown keys and value types are
/// checked here, with the error at the offending key or value.
pub(super) fn parse(path: &Path, text: &str) -> Result<RawScenario, LoadError> {
    toml::from_str(text).map_err(|e| from_toml(path, text, &e))
}

/// The whole file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(
    rename = "Scenario",
    title = "steerlab scenario",
    description = "A steerlab scenario file; docs/scenario-reference.md explains every key."
)]
pub(super) struct RawScenario {
    /// Title shown by `steerlab run` and in test names. Must not be empty. Required.
    #[schemars(with = "String")]
    pub name: S,
    /// Free text. Default: `""`.
    pub description: Option<String>,
    /// Seed of every random choice. The same seed gives a byte-identical log and pcap. Default:
    /// `0`.
    pub seed: Option<u64>,
    /// Simulated time to run, at most `"24h"`. Default: `"60s"`.
    #[schemars(with = "Option<DurationText>")]
    pub duration: S,
    /// Simulated wall clock at t = 0, used for log timestamps and certificate validity.
    /// Default: `"2019-10-14T11:40:40Z"`.
    #[schemars(with = "Option<ClockText>")]
    pub clock: Option<Spanned<toml::Value>>,
    pub tenant: Option<RawTenant>,
    pub client: Option<RawClient>,
    pub dns: Option<RawDns>,
    pub steering: Option<RawSteering>,
    #[schemars(with = "Vec<RawPop>", length(min = 1))]
    pub pops: Option<Vec<Spanned<RawPop>>>,
    pub backup: Option<RawBackup>,
    #[schemars(with = "Option<Vec<RawOrigin>>")]
    pub origins: Option<Vec<Spanned<RawOrigin>>>,
    pub network: Option<RawNetwork>,
    pub policy: Option<RawPolicy>,
    pub control_plane: Option<RawControlPlane>,
    #[schemars(with = "Option<Vec<RawEvent>>")]
    pub events: Option<Vec<Spanned<RawEvent>>>,
    pub expect: Option<RawExpect>,
}

/// `[tenant]`: the tenant, its region and its GSLB.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Tenant")]
pub(super) struct RawTenant {
    /// The tenant. Gives `gateway-acme.goskope.com` and `gateway-backup-acme.goskope.com`.
    /// Letters, digits and `-` only. Default: `"acme"`.
    #[schemars(with = "Option<String>")]
    pub name: S,
    /// `""` | `"eu"` | `"de"` | `"au"`. Selects `acme.eu.goskope.com`-style names. Default:
    /// `""`.
    #[schemars(with = "Option<Region>")]
    pub region: S,
    /// Backend tenant flag. Clients ≥ 96.1 always ask GSLB first; with the flag off GSLB
    /// refuses (HTTP 403) and the client falls back to EDNS. Default: `false`.
    pub gslb: Option<bool>,
    /// How the GSLB API answers: `"answer"`, `"malformed"` (200 with a body that is not JSON),
    /// `"empty"` (an empty PoP list), `"http_NNN"`, `"slow_answer[:DURATION]"`. `"servfail"`
    /// acts as `"http_500"`. Default: `"answer"`.
    #[schemars(with = "Option<HttpBehaviour>")]
    pub gslb_behaviour: S,
    /// The order GSLB lists PoPs in (its geo ranking). The client still probes them and picks
    /// the lowest RTT, so the first listed need not win. Default: PoPs by latency from the
    /// client, then file order.
    #[schemars(with = "Option<Vec<String>>")]
    pub gslb_order: Option<Vec<Spanned<String>>>,
}

/// `[client]`: the endpoint and its agent.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Client")]
pub(super) struct RawClient {
    /// Agent version: 2 to 4 dot-separated numbers (`"96.1"`, `"95.1.0.870"`). Below 96.1 the
    /// agent tries DoH (EDNS) and then LDNS. From 96.1, with `tenant.gslb`, it tries GSLB
    /// first. Default: `"95.1.0"`.
    #[schemars(with = "Option<String>")]
    pub version: S,
    /// Endpoint address. Default: `"10.0.0.10"`.
    #[schemars(with = "Option<Ipv4Text>")]
    pub ip: S,
    /// Where the endpoint is. DoH with ECS and GSLB answer for this location. Default:
    /// `"us-east"`.
    #[schemars(with = "Option<String>")]
    pub location: S,
    /// Preferred tunnel: `"dtls"` (UDP 443) | `"tls"` (TCP 443). Default: `"dtls"`.
    #[schemars(with = "Option<TunnelProto>")]
    pub tunnel: S,
    /// `true`: steered flows are blocked while no tunnel is up. Default: `false`.
    pub fail_close: Option<bool>,
    /// The enrolled user, e.g. `"bob@acme.com"`, told to the gateway when the tunnel comes up
    /// (user-group policy).
    #[schemars(with = "Option<String>")]
    pub user: S,
    /// How many endpoints run the agent, at `ip`, `ip`+1, ... Every `connect` happens on each
    /// of them (flows are reported event by event, endpoint by endpoint); firewall, partition,
    /// `move` and `login` events apply to all; the outcome and `[expect]` tunnel/gateway are
    /// the first endpoint's; the agent log holds every agent's lines, endpoint k's (from 0)
    /// with process id `p<k+1>` (`stAgentSvc p2 t1 ...`), so `grep ' p2 '` picks one agent; the
    /// timeline ends with how many tunnels are up. For scale runs (`perf/`). Default: `1`.
    #[schemars(with = "Option<EndpointCount>")]
    pub endpoints: Option<Spanned<u32>>,
    /// How many endpoints share one simulated host, i.e. one address (laptops behind one NAT
    /// address): endpoint k sits at `ip` + k / `endpoints_per_host`. Each still runs its own
    /// agent, apps and path; they share the address, its ephemeral ports and the host's links
    /// (a `partition` cuts them all). Scale runs use it: turmoil's cost per tick grows with
    /// hosts x links, not with endpoints (see docs/performance.md). Default: `1`.
    #[schemars(with = "Option<EndpointCount>")]
    pub endpoints_per_host: Option<Spanned<u32>>,
}

/// `[dns]`: the DoH server and the local resolver.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Dns")]
pub(super) struct RawDns {
    /// DoH server name. Default: `"dns.google"`.
    #[schemars(with = "Option<String>")]
    pub doh: S,
    /// Local resolver address. Default: `"10.0.0.53"`.
    #[schemars(with = "Option<Ipv4Text>")]
    pub ldns: S,
    /// Where the local resolver's egress is. The LDNS answers for that location. Default:
    /// `client.location`.
    #[schemars(with = "Option<String>")]
    pub ldns_location: S,
    /// How the DoH server answers: `"answer"`, `"servfail"`, `"empty"`, `"malformed"`,
    /// `"http_NNN"` (400-599) or `"slow_answer[:DURATION]"`. Default: `"answer"`.
    #[schemars(with = "Option<HttpBehaviour>")]
    pub doh_behaviour: S,
    /// How the local resolver answers: `"answer"`, `"servfail"`, `"empty"` or
    /// `"slow_answer[:DURATION]"`. Default: `"answer"`.
    #[schemars(with = "Option<DnsBehaviour>")]
    pub ldns_behaviour: S,
    /// Certificate the DoH server presents: `"trusted"` | `"untrusted"` (signed by a CA the
    /// client does not trust) | `"expired"` (trusted CA, validity already over at `clock`).
    /// Default: `"trusted"`.
    #[schemars(with = "Option<CertKind>")]
    pub doh_cert: S,
    /// The endpoint's DNS search domain. The PAC server is `pac.<domain>` (PAC URL
    /// `http://pac.<domain>/proxy.pac`); with WPAD the client looks up `wpad.<domain>` and
    /// fetches `/wpad.dat`. Default: `"corp.internal"`.
    #[schemars(with = "Option<String>")]
    pub search_domain: S,
}

/// `[steering]`: what the agent steers into the tunnel.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Steering")]
pub(super) struct RawSteering {
    /// `"cloud-apps"` (managed list only) | `"web"` (ports in `ports`) | `"all"`. Default:
    /// `"cloud-apps"`.
    #[schemars(with = "Option<SteeringMode>")]
    pub mode: S,
    /// Web ports. Mode `"all"` ignores them. Default: `[80, 443]`.
    #[schemars(with = "Option<Vec<Port>>")]
    pub ports: Option<Vec<Spanned<u16>>>,
    /// Cloud-apps mode: domains to steer (`"box.com"`, `"*.box.com"`). Stored as written.
    /// Default: `[]`.
    #[schemars(with = "Option<Vec<String>>")]
    pub managed: Option<Vec<Spanned<String>>>,
    /// Never steered: domains, wildcards, IPs, CIDRs. Stored as written. Default: `[]`.
    #[schemars(with = "Option<Vec<String>>")]
    pub exceptions: Option<Vec<Spanned<String>>>,
    /// Certificate-pinned apps, by process name (`"Teams.exe"`, case-insensitive): their flows
    /// are bypassed. Default: `[]`.
    #[schemars(with = "Option<Vec<String>>")]
    pub bypass_apps: Option<Vec<Spanned<String>>>,
    /// Pinned apps with an action: `"bypass"` (send direct), `"tunnel"` (tunnel without
    /// inspection), `"block"` (drop). Wins over `bypass_apps` for the same process. Default:
    /// `[]`.
    #[schemars(with = "Option<Vec<RawPinnedApp>>")]
    pub pinned_apps: Option<Vec<Spanned<RawPinnedApp>>>,
    /// An `nsexception.json` beside the scenario (path relative to its folder): `{"domains":
    /// [...], "ips": [...]}`; added to `exceptions`.
    #[schemars(with = "Option<String>")]
    pub exceptions_file: S,
    /// An `nsbypass.json`: `{"apps": [{"name": "Zoom", "process": "zoom.us", "action":
    /// "bypass"}]}` (`action` defaults to `"bypass"`); added to `pinned_apps`.
    #[schemars(with = "Option<String>")]
    pub bypass_file: S,
    /// Mode `"all"` only: DNS also goes through the tunnel. Default: `false`.
    pub steer_dns: Option<bool>,
    /// RFC 1918 destinations are never steered unless this is `true`. Default: `false`.
    pub private_apps: Option<bool>,
    /// Hold every TLS flow until its ClientHello and decide by its SNI instead of the DNS map
    /// (overlapping IPs; apps whose DNS the client cannot see). Default: `false`.
    pub sni_check: Option<bool>,
    /// On-prem detection: `{ dns_host = "onprem.acme.corp", dns_ip = "10.20.0.5", mode =
    /// "cloud-apps" }`. At start and after a `move`, the client asks the local resolver for
    /// `dns_host`; if it resolves to `dns_ip` the client is on-prem and steers in `mode`,
    /// otherwise (or without an answer in 5 s) in `steering.mode`. An origin with that host and
    /// address makes the resolver answer it. Or by HTTP: `{ http_url =
    /// "http://intranet.acme.corp/alive", mode = "cloud-apps" }`: a GET that answers 200 within
    /// 10 s means on-prem (an origin with that host answers 200; without one the name does not
    /// resolve and the client is remote). `http_url` and `dns_host`/`dns_ip` exclude each
    /// other.
    #[schemars(with = "Option<RawOnPrem>")]
    pub on_prem: Option<Spanned<RawOnPrem>>,
}

/// `steering.on_prem`: on-prem detection, by a DNS lookup (`dns_host`, `dns_ip`) or
/// an HTTP probe (`http_url`), and the steering `mode` while on-prem.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a table with `dns_host` and `dns_ip` (or `http_url`), and `mode`"
)]
#[schemars(rename = "OnPrem")]
pub(super) struct RawOnPrem {
    /// With `dns_ip`: the name the client asks the local resolver for.
    #[schemars(with = "Option<String>")]
    pub dns_host: S,
    /// With `dns_host`: the address that means "on-prem".
    #[schemars(with = "Option<Ipv4Text>")]
    pub dns_ip: S,
    /// Instead of DNS: an HTTP URL that only answers on-prem.
    #[schemars(with = "Option<String>")]
    pub http_url: S,
    /// The steering mode while on-prem: `"cloud-apps"` | `"web"` | `"all"`. Required.
    #[schemars(with = "SteeringMode")]
    pub mode: S,
}

/// One `[[steering.pinned_apps]]` entry: a certificate-pinned app and what to do with it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table with `process` and `action`")]
#[schemars(rename = "PinnedApp")]
pub(super) struct RawPinnedApp {
    /// The process name, e.g. `"Teams.exe"` (case-insensitive). Required.
    #[schemars(with = "String")]
    pub process: S,
    /// `"bypass"` (send direct) | `"tunnel"` (tunnel without inspection) | `"block"`. Required.
    #[schemars(with = "PinnedAction")]
    pub action: S,
}

/// One `[[pops]]` table: a gateway PoP. A scenario needs at least one.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Pop")]
pub(super) struct RawPop {
    /// PoP name, e.g. `"nyc1"`. Names are unique. The names `backup`, `doh`, `ldns`, `gslb`,
    /// `proxy` and `pac` are reserved, because events use them. Required.
    #[schemars(with = "String")]
    pub name: S,
    /// Where the PoP is. Location-aware answers (DoH with ECS, GSLB, the LDNS) pick a PoP at
    /// the asker's location. Required.
    #[schemars(with = "String")]
    pub location: S,
    /// PoP gateway address. Required.
    #[schemars(with = "Ipv4Text")]
    pub ip: S,
    /// One-way latency from the endpoint. Default: `"20ms"`.
    #[schemars(with = "Option<DurationText>")]
    pub latency: S,
    /// Certificate the gateway presents: `"trusted"` | `"untrusted"` | `"expired"`. Default:
    /// `"trusted"`.
    #[schemars(with = "Option<CertKind>")]
    pub cert: S,
}

/// `[backup]`: the backup gateway, `gateway-backup-<tenant>`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Backup")]
pub(super) struct RawBackup {
    /// Backup gateway address. Default: an address the world picks.
    #[schemars(with = "Option<Ipv4Text>")]
    pub ip: S,
    /// Where it is. Default: the second PoP's location.
    #[schemars(with = "Option<String>")]
    pub location: S,
    /// One-way latency from the endpoint. Default: `"20ms"`.
    #[schemars(with = "Option<DurationText>")]
    pub latency: S,
    /// `"trusted"` | `"untrusted"` | `"expired"`. Default: `"trusted"`.
    #[schemars(with = "Option<CertKind>")]
    pub cert: S,
}

/// One `[[origins]]` table: a server on the internet that apps reach.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Origin")]
pub(super) struct RawOrigin {
    /// The server's name. Each host is listed once. Required.
    #[schemars(with = "String")]
    pub host: S,
    /// Its address. Required.
    #[schemars(with = "Ipv4Text")]
    pub ip: S,
    /// The web category the gateway's policy sees for this host, e.g. `"file-sharing"`.
    #[schemars(with = "Option<String>")]
    pub category: S,
    /// Names that are CNAMEs of `host`: resolvers answer the CNAME chain, then the address.
    /// Default: `[]`.
    #[schemars(with = "Option<Vec<String>>")]
    pub aliases: Option<Vec<Spanned<String>>>,
}

/// `[control_plane]`: the tenant's control plane (configuration downloads, admin events).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "ControlPlane")]
pub(super) struct RawControlPlane {
    /// How often clients pull their configuration. Default: `"5m"`.
    #[schemars(with = "Option<DurationText>")]
    pub interval: S,
    /// `"upn"` | `"idp"` | `"email"`. Default: `"upn"`.
    #[schemars(with = "Option<Enrollment>")]
    pub enrollment: S,
    /// The endpoint's host name at the tenant. Default: `"LAPTOP-1"`.
    #[schemars(with = "Option<String>")]
    pub hostname: S,
    /// The endpoint's device id at the tenant. Default: `"device-1"`.
    #[schemars(with = "Option<String>")]
    pub device: S,
    /// The lost or stolen device group (seed 004's configuration, and a block-all gateway
    /// rule). Default: `"lost-devices"`.
    #[schemars(with = "Option<String>")]
    pub lost_group: S,
    /// With `"email"`: the address the client's invite was sent to (may differ from
    /// `client.user`, who clicked it: the device is attributed to the invitee).
    #[schemars(with = "Option<String>")]
    pub invite: S,
}

/// `[policy]`: the gateway's real-time policy, enforced on every tunneled flow.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Policy")]
pub(super) struct RawPolicy {
    /// Blocked destinations: domains (`"dropbox.com"`, `"*.dropbox.com"`) and categories
    /// (`"category:file-sharing"`, matched against `[[origins]] category`). A blocked flow gets
    /// verdict `blocked`, reason `gateway blocked by policy: ...`, and the app sees a block
    /// page. Default: `[]`.
    #[schemars(with = "Option<Vec<String>>")]
    pub block: Option<Vec<Spanned<String>>>,
    /// Allow rules, same shape; a matching allow wins over every block (e.g. block
    /// `"category:file-sharing"`, allow `"www.box.com"`). Default: `[]`.
    #[schemars(with = "Option<Vec<String>>")]
    pub allow: Option<Vec<Spanned<String>>>,
    /// The tenant directory: group name → users, e.g. `{ contractors = ["bob@acme.com"] }`.
    /// Default: `{}`.
    #[schemars(with = "Option<BTreeMap<String, Vec<String>>>")]
    pub groups: Option<BTreeMap<String, Vec<Spanned<String>>>>,
}

/// `[network]`: firewalls, proxy, PAC, VPN and the path between the endpoint and the
/// internet.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Network")]
pub(super) struct RawNetwork {
    /// The endpoint's firewall: ordered, first match wins. Default: `[]`.
    #[schemars(with = "Option<Vec<RuleText>>")]
    pub host_firewall: Option<Vec<Spanned<String>>>,
    /// The site perimeter firewall, after the host firewall: ordered, first match wins.
    /// Default: `[]`.
    #[schemars(with = "Option<Vec<RuleText>>")]
    pub perimeter_firewall: Option<Vec<Spanned<String>>>,
    /// An explicit HTTP proxy: `{ address = "IP:PORT", discovery = "manual" }`. `address` is
    /// required. `discovery` is `"manual"` (default) | `"pac"` | `"wpad"`.
    #[schemars(with = "Option<RawProxy>")]
    pub proxy: Option<Spanned<RawProxy>>,
    /// PAC script text, served by the site's PAC server. Used when `proxy.discovery` is `"pac"`
    /// or `"wpad"`, or when there is no `proxy` table (then discovery is by PAC URL). Without
    /// it, PAC and WPAD serve a script that returns `PROXY <proxy.address>`.
    pub pac: Option<String>,
    /// `false`: only the proxy reaches the internet. Default: `true`.
    pub direct_egress: Option<bool>,
    /// The largest IPv4 packet the endpoint's path carries: UDP datagrams whose payload plus 28
    /// header bytes exceed it are dropped (the DTLS fragmentation case). Default: no limit.
    #[schemars(with = "Option<PathMtu>")]
    pub path_mtu: Option<Spanned<u32>>,
    /// Share of the endpoint's outgoing UDP datagrams lost, drawn from the scenario's seed. TCP
    /// is never dropped (turmoil's TCP does not retransmit). Default: `0`.
    #[schemars(with = "Option<Share>")]
    pub udp_loss: Option<Spanned<f64>>,
    /// A full-tunnel third-party VPN on the endpoint: `{ egress = "eu-west", latency = "80ms"
    /// }` (`latency` defaults to 80 ms, one way to the egress). All internet traffic goes
    /// through it: DoH (ECS) and GSLB see the client at `egress`, and every public host is
    /// `latency` farther away; PoPs in the egress location are one default link beyond the
    /// egress, other PoPs keep their own latency on top. The timeline says so at 0 s.
    #[schemars(with = "Option<RawVpn>")]
    pub vpn: Option<Spanned<RawVpn>>,
}

/// `network.vpn`: a full-tunnel third-party VPN on the endpoint.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Vpn")]
pub(super) struct RawVpn {
    /// The location the VPN exits at, e.g. `"eu-west"`. Required.
    #[schemars(with = "String")]
    pub egress: S,
    /// One-way latency to the egress. Default: `"80ms"`.
    #[schemars(with = "Option<DurationText>")]
    pub latency: S,
}

/// `network.proxy`: an explicit HTTP proxy.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Proxy")]
pub(super) struct RawProxy {
    /// `"IP:PORT"` of the proxy. Required.
    #[schemars(with = "SocketAddrText")]
    pub address: S,
    /// How the client finds the proxy: `"manual"` | `"pac"` | `"wpad"`. Default: `"manual"`.
    #[schemars(with = "Option<ProxyDiscovery>")]
    pub discovery: S,
}

/// One `[[events]]` table: what happens, and when. Each `do` takes its own keys (see
/// `do`); the loader refuses a key the `do` does not use.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Event")]
pub(super) struct RawEvent {
    /// When the event happens. At most `duration`. (Used by: all, **required**.)
    #[schemars(with = "DurationText")]
    pub at: S,
    /// `"start"` | `"stop"` *ext* | `"connect"` | `"rule"` | `"partition"` | `"repair"` |
    /// `"move"` *ext*. (Used by: all, **required**.)
    #[serde(rename = "do")]
    #[schemars(with = "EventWord")]
    pub action: S,
    /// The app's process name, e.g. `"chrome.exe"`. (Used by: `connect`, required.)
    #[schemars(with = "Option<String>")]
    pub process: S,
    /// `"HOST:PORT"`. HOST is a host name or an IPv4 address. PORT is 1–65535. (Used by:
    /// `connect`, required.)
    #[schemars(with = "Option<String>")]
    pub target: S,
    /// `true`: the app follows the system proxy settings: the manual `network.proxy`, or the
    /// PAC file's answer for its URL, with HTTP CONNECT. Requires `network.proxy` or
    /// `network.pac`. (Used by: `connect`, default `false`.)
    #[schemars(with = "Option<bool>")]
    pub via_proxy: Option<Spanned<bool>>,
    /// `"host"` | `"perimeter"`: the firewall the rule goes to. (Used by: `rule`, required.)
    #[serde(rename = "where")]
    #[schemars(with = "Option<FirewallPlace>")]
    pub place: S,
    /// The rule to add. It is checked before the rules already in that firewall. (Used by:
    /// `rule`, required.)
    #[schemars(with = "Option<RuleText>")]
    pub rule: S,
    /// A PoP name, `"backup"`, `"doh"`, `"ldns"`, `"gslb"`, `"proxy"`, `"pac"` (the PAC server)
    /// or an origin host. Case-insensitive. (Used by: `partition`, `repair`, required.)
    #[schemars(with = "Option<String>")]
    pub host: S,
    /// The location of the network the endpoint moves to. (Used by: `move`, required.)
    #[schemars(with = "Option<String>")]
    pub location: S,
    /// How the app resolves its host: `"os"` (the OS resolver, through the endpoint's
    /// firewalls; the client sees the answer) | `"app-doh"` (its own DNS over HTTPS, like a
    /// browser's; the client sees nothing). (Used by: `connect`, default `"os"`.)
    #[schemars(with = "Option<AppDns>")]
    pub dns: S,
    /// `"udp"`: the app sends one datagram and waits 3 s for the origin's echo instead of
    /// opening TCP (no `via_proxy`). Steered only in mode `all`. (Used by: `connect`, default
    /// `"tcp"`.)
    #[schemars(with = "Option<AppProto>")]
    pub proto: S,
    /// `"move_user"` | `"mark_lost"` | `"set_mode"`. (Used by: `admin`, required.)
    #[serde(rename = "action")]
    #[schemars(with = "Option<AdminWord>")]
    pub action_key: S,
    /// The tenant user, e.g. `"bob@acme.com"`. (Used by: `admin` (`move_user`, `mark_lost`).)
    #[schemars(with = "Option<String>")]
    pub user: S,
    /// The group to move the user to. (Used by: `admin` (`move_user`).)
    #[schemars(with = "Option<String>")]
    pub group: S,
    /// `"cloud-apps"` | `"web"` | `"all"`. (Used by: `admin` (`set_mode`).)
    #[schemars(with = "Option<SteeringMode>")]
    pub mode: S,
}

/// `[expect]`: checked at the end of the run; an absent key is not checked.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Expect")]
pub(super) struct RawExpect {
    /// `"GSLB"` | `"EDNS"` | `"LDNS"`: how the agent found its gateway.
    #[schemars(with = "Option<ResolvedBy>")]
    pub resolved_by: S,
    /// The PoP name the tunnel ends at, or `"backup"`. It must be one of the scenario's PoPs.
    /// Through an explicit proxy this is the PoP the proxy reached: the proxy resolves the
    /// gateway name itself (from the site), which may differ from the address in the agent's
    /// log (`proxy/proxy-resolves-another-pop.toml`).
    #[schemars(with = "Option<String>")]
    pub gateway: S,
    /// `"DTLS"` | `"TLS"` | `"down"`.
    #[schemars(with = "Option<TunnelState>")]
    pub tunnel: S,
    /// `[[expect.flows]]`: every flow the run saw, matched in order of appearance. `flows = []`
    /// expects no flows.
    pub flows: Option<Vec<RawFlow>>,
}

/// One `[[expect.flows]]` entry; an absent key matches anything.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Flow")]
pub(super) struct RawFlow {
    /// Process name.
    #[schemars(with = "Option<String>")]
    pub process: S,
    /// Destination host.
    #[schemars(with = "Option<String>")]
    pub host: S,
    /// `"tunneled"` | `"bypassed"` | `"direct"` | `"blocked"`. The meanings are in
    /// `docs/scenario-format.md`.
    #[schemars(with = "Option<Verdict>")]
    pub verdict: S,
}

// --- what absent keys mean ---

impl Default for Tenant {
    fn default() -> Self {
        Tenant {
            name: "acme".into(),
            region: Region::Global,
            gslb: false,
            gslb_behaviour: ServerBehaviour::Answer,
            gslb_order: Vec::new(),
        }
    }
}

impl Default for Client {
    fn default() -> Self {
        Client {
            version: ClientVersion {
                text: "95.1.0".into(),
                parts: vec![95, 1, 0],
            },
            ip: Ipv4Addr::new(10, 0, 0, 10),
            location: "us-east".into(),
            tunnel: TunnelProto::Dtls,
            fail_close: false,
            user: None,
            endpoints: 1,
            endpoints_per_host: 1,
        }
    }
}

impl Default for Dns {
    /// `ldns_location` follows the default client location, `us-east`.
    fn default() -> Self {
        Dns {
            doh: "dns.google".into(),
            ldns: Ipv4Addr::new(10, 0, 0, 53),
            ldns_location: "us-east".into(),
            doh_behaviour: ServerBehaviour::Answer,
            ldns_behaviour: ServerBehaviour::Answer,
            doh_cert: CertKind::Trusted,
            search_domain: "corp.internal".into(),
        }
    }
}

impl Default for Steering {
    fn default() -> Self {
        Steering {
            mode: SteeringMode::CloudApps,
            ports: vec![80, 443],
            managed: vec![],
            exceptions: vec![],
            bypass_apps: vec![],
            pinned_apps: vec![],
            sni_check: false,
            on_prem: None,
            steer_dns: false,
            private_apps: false,
        }
    }
}

impl Default for Backup {
    fn default() -> Self {
        Backup {
            ip: None,
            location: None,
            latency: DEFAULT_LATENCY,
            cert: CertKind::Trusted,
        }
    }
}

impl Default for Network {
    fn default() -> Self {
        Network {
            host_firewall: vec![],
            perimeter_firewall: vec![],
            proxy: None,
            pac: None,
            direct_egress: true,
            path_mtu: None,
            udp_loss: 0.0,
            vpn: None,
        }
    }
}

/// Fieldless enums spelled by a fixed word in the file.
pub(super) trait Word: Sized + Copy + 'static {
    /// Every variant with its word, in documentation order.
    const WORDS: &'static [(Self, &'static str)];
}

/// Parses a contract word; the error lists the accepted words.
pub(super) fn parse_word<T: Word>(text: &str) -> Result<T, String> {
    T::WORDS
        .iter()
        .find(|(_, w)| *w == text)
        .map(|(v, _)| *v)
        .ok_or_else(|| one_of(T::WORDS))
}

/// `write one of "a", "b", "c"`.
pub(super) fn one_of<T>(words: &[(T, &str)]) -> String {
    let list: Vec<String> = words.iter().map(|(_, w)| format!("\"{w}\"")).collect();
    format!("write one of {}", list.join(", "))
}

macro_rules! words {
    ($($ty:ident { $($var:ident = $word:literal),+ $(,)? })+) => {$(
        impl Word for $ty {
            const WORDS: &'static [(Self, &'static str)] = &[$(($ty::$var, $word)),+];
        }
        impl $ty {
            /// The word the scenario file uses for this value.
            pub fn as_str(&self) -> &'static str {
                match self { $($ty::$var => $word),+ }
            }
        }
        impl JsonSchema for $ty {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                let words: &[&str] = &[$($word),+];
                schemars::json_schema!({ "type": "string", "enum": words })
            }
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )+};
}

words! {
    Region { Global = "", Eu = "eu", De = "de", Au = "au" }
    TunnelProto { Dtls = "dtls", Tls = "tls" }
    CertKind { Trusted = "trusted", Untrusted = "untrusted", Expired = "expired" }
    SteeringMode { CloudApps = "cloud-apps", Web = "web", All = "all" }
    PinnedAction { Bypass = "bypass", Tunnel = "tunnel", Block = "block" }
    AppDns { Os = "os", AppDoh = "app-doh" }
    AppProto { Tcp = "tcp", Udp = "udp" }
    Enrollment { Upn = "upn", Idp = "idp", Email = "email" }
    ProxyDiscovery { Manual = "manual", Pac = "pac", Wpad = "wpad" }
    FirewallPlace { Host = "host", Perimeter = "perimeter" }
    RuleAction { Allow = "allow", Block = "block", Reset = "reset", Inspect = "inspect", Redirect = "redirect", Intercept = "intercept" }
    RuleProto { Tcp = "tcp", Udp = "udp", Dns = "dns", Any = "any" }
    ResolvedBy { Gslb = "GSLB", Edns = "EDNS", Ldns = "LDNS" }
    TunnelState { Dtls = "DTLS", Tls = "TLS", Down = "down" }
    Verdict { Tunneled = "tunneled", Bypassed = "bypassed", Direct = "direct", Blocked = "blocked" }
}

impl ServerBehaviour {
    /// Parses `answer | servfail | empty | http_NNN | slow_answer[:DURATION]`;
    /// `http_NNN` (400-599) only when `http` (the DoH server), not for the LDNS.
    pub fn parse(s: &str, http: bool) -> Result<ServerBehaviour, String> {
        let words = if http {
            "\"answer\", \"servfail\", \"empty\", \"malformed\", \"http_NNN\", \"slow_answer[:DURATION]\""
        } else {
            "\"answer\", \"servfail\", \"empty\", \"slow_answer[:DURATION]\""
        };
        if let Some(delay) = s.strip_prefix("slow_answer:") {
            let delay = parse_duration(delay).map_err(|e| format!("bad slow_answer delay: {e}"))?;
            return Ok(ServerBehaviour::SlowAnswer(delay));
        }
        match (s, s.strip_prefix("http_")) {
            ("answer", _) => Ok(ServerBehaviour::Answer),
            ("servfail", _) => Ok(ServerBehaviour::ServFail),
            ("empty", _) => Ok(ServerBehaviour::Empty),
            ("malformed", _) if http => Ok(ServerBehaviour::Malformed),
            ("slow_answer", _) => Ok(ServerBehaviour::SlowAnswer(DEFAULT_SLOW_ANSWER)),
            (_, Some(_)) if !http => Err(format!(
                "the local resolver speaks plain DNS, not HTTP; write one of {words}"
            )),
            (_, Some(code)) => match code.parse::<u16>() {
                Ok(c) if (400..=599).contains(&c) => Ok(ServerBehaviour::HttpError(c)),
                _ => Err(format!(
                    "`{s}` is not an HTTP error status; write http_400 to http_599, e.g. \"http_503\""
                )),
            },
            _ => Err(format!(
                "unknown server behaviour `{s}`; write one of {words}"
            )),
        }
    }
}

macro_rules! serialize_as_word {
    ($($ty:ident)+) => {$(
        impl Serialize for $ty {
            fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    )+};
}

serialize_as_word!(ResolvedBy TunnelState Verdict);
