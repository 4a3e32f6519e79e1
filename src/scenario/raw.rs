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
    #[schemars(with = "String")]
    pub name: S,
    pub description: Option<String>,
    pub seed: Option<u64>,
    #[schemars(with = "Option<DurationText>")]
    pub duration: S,
    /// A string or a TOML offset date-time.
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

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Tenant")]
pub(super) struct RawTenant {
    #[schemars(with = "Option<String>")]
    pub name: S,
    #[schemars(with = "Option<Region>")]
    pub region: S,
    pub gslb: Option<bool>,
    #[schemars(with = "Option<HttpBehaviour>")]
    pub gslb_behaviour: S,
    #[schemars(with = "Option<Vec<String>>")]
    pub gslb_order: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Client")]
pub(super) struct RawClient {
    #[schemars(with = "Option<String>")]
    pub version: S,
    #[schemars(with = "Option<Ipv4Text>")]
    pub ip: S,
    #[schemars(with = "Option<String>")]
    pub location: S,
    #[schemars(with = "Option<TunnelProto>")]
    pub tunnel: S,
    pub fail_close: Option<bool>,
    #[schemars(with = "Option<String>")]
    pub user: S,
    #[schemars(with = "Option<EndpointCount>")]
    pub endpoints: Option<Spanned<u32>>,
    #[schemars(with = "Option<EndpointCount>")]
    pub endpoints_per_host: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Dns")]
pub(super) struct RawDns {
    #[schemars(with = "Option<String>")]
    pub doh: S,
    #[schemars(with = "Option<Ipv4Text>")]
    pub ldns: S,
    #[schemars(with = "Option<String>")]
    pub ldns_location: S,
    #[schemars(with = "Option<HttpBehaviour>")]
    pub doh_behaviour: S,
    #[schemars(with = "Option<DnsBehaviour>")]
    pub ldns_behaviour: S,
    #[schemars(with = "Option<CertKind>")]
    pub doh_cert: S,
    #[schemars(with = "Option<String>")]
    pub search_domain: S,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Steering")]
pub(super) struct RawSteering {
    #[schemars(with = "Option<SteeringMode>")]
    pub mode: S,
    #[schemars(with = "Option<Vec<Port>>")]
    pub ports: Option<Vec<Spanned<u16>>>,
    #[schemars(with = "Option<Vec<String>>")]
    pub managed: Option<Vec<Spanned<String>>>,
    #[schemars(with = "Option<Vec<String>>")]
    pub exceptions: Option<Vec<Spanned<String>>>,
    #[schemars(with = "Option<Vec<String>>")]
    pub bypass_apps: Option<Vec<Spanned<String>>>,
    #[schemars(with = "Option<Vec<RawPinnedApp>>")]
    pub pinned_apps: Option<Vec<Spanned<RawPinnedApp>>>,
    #[schemars(with = "Option<String>")]
    pub exceptions_file: S,
    #[schemars(with = "Option<String>")]
    pub bypass_file: S,
    pub steer_dns: Option<bool>,
    pub private_apps: Option<bool>,
    pub sni_check: Option<bool>,
    #[schemars(with = "Option<RawOnPrem>")]
    pub on_prem: Option<Spanned<RawOnPrem>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a table with `dns_host` and `dns_ip` (or `http_url`), and `mode`"
)]
#[schemars(rename = "OnPrem")]
pub(super) struct RawOnPrem {
    #[schemars(with = "Option<String>")]
    pub dns_host: S,
    #[schemars(with = "Option<Ipv4Text>")]
    pub dns_ip: S,
    #[schemars(with = "Option<String>")]
    pub http_url: S,
    #[schemars(with = "SteeringMode")]
    pub mode: S,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table with `process` and `action`")]
#[schemars(rename = "PinnedApp")]
pub(super) struct RawPinnedApp {
    #[schemars(with = "String")]
    pub process: S,
    #[schemars(with = "PinnedAction")]
    pub action: S,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Pop")]
pub(super) struct RawPop {
    #[schemars(with = "String")]
    pub name: S,
    #[schemars(with = "String")]
    pub location: S,
    #[schemars(with = "Ipv4Text")]
    pub ip: S,
    #[schemars(with = "Option<DurationText>")]
    pub latency: S,
    #[schemars(with = "Option<CertKind>")]
    pub cert: S,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Backup")]
pub(super) struct RawBackup {
    #[schemars(with = "Option<Ipv4Text>")]
    pub ip: S,
    #[schemars(with = "Option<String>")]
    pub location: S,
    #[schemars(with = "Option<DurationText>")]
    pub latency: S,
    #[schemars(with = "Option<CertKind>")]
    pub cert: S,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Origin")]
pub(super) struct RawOrigin {
    #[schemars(with = "String")]
    pub host: S,
    #[schemars(with = "Ipv4Text")]
    pub ip: S,
    #[schemars(with = "Option<String>")]
    pub category: S,
    #[schemars(with = "Option<Vec<String>>")]
    pub aliases: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "ControlPlane")]
pub(super) struct RawControlPlane {
    #[schemars(with = "Option<DurationText>")]
    pub interval: S,
    #[schemars(with = "Option<Enrollment>")]
    pub enrollment: S,
    #[schemars(with = "Option<String>")]
    pub hostname: S,
    #[schemars(with = "Option<String>")]
    pub device: S,
    #[schemars(with = "Option<String>")]
    pub lost_group: S,
    #[schemars(with = "Option<String>")]
    pub invite: S,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Policy")]
pub(super) struct RawPolicy {
    #[schemars(with = "Option<Vec<String>>")]
    pub block: Option<Vec<Spanned<String>>>,
    #[schemars(with = "Option<Vec<String>>")]
    pub allow: Option<Vec<Spanned<String>>>,
    #[schemars(with = "Option<BTreeMap<String, Vec<String>>>")]
    pub groups: Option<BTreeMap<String, Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Network")]
pub(super) struct RawNetwork {
    #[schemars(with = "Option<Vec<RuleText>>")]
    pub host_firewall: Option<Vec<Spanned<String>>>,
    #[schemars(with = "Option<Vec<RuleText>>")]
    pub perimeter_firewall: Option<Vec<Spanned<String>>>,
    #[schemars(with = "Option<RawProxy>")]
    pub proxy: Option<Spanned<RawProxy>>,
    pub pac: Option<String>,
    pub direct_egress: Option<bool>,
    #[schemars(with = "Option<PathMtu>")]
    pub path_mtu: Option<Spanned<u32>>,
    #[schemars(with = "Option<Share>")]
    pub udp_loss: Option<Spanned<f64>>,
    #[schemars(with = "Option<RawVpn>")]
    pub vpn: Option<Spanned<RawVpn>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Vpn")]
pub(super) struct RawVpn {
    #[schemars(with = "String")]
    pub egress: S,
    #[schemars(with = "Option<DurationText>")]
    pub latency: S,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Proxy")]
pub(super) struct RawProxy {
    #[schemars(with = "SocketAddrText")]
    pub address: S,
    #[schemars(with = "Option<ProxyDiscovery>")]
    pub discovery: S,
}

/// One `[[events]]` table: every key of every `do`, checked per `do` by the loader.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Event")]
pub(super) struct RawEvent {
    #[schemars(with = "DurationText")]
    pub at: S,
    #[serde(rename = "do")]
    #[schemars(with = "EventWord")]
    pub action: S,
    #[schemars(with = "Option<String>")]
    pub process: S,
    #[schemars(with = "Option<String>")]
    pub target: S,
    #[schemars(with = "Option<bool>")]
    pub via_proxy: Option<Spanned<bool>>,
    #[serde(rename = "where")]
    #[schemars(with = "Option<FirewallPlace>")]
    pub place: S,
    #[schemars(with = "Option<RuleText>")]
    pub rule: S,
    #[schemars(with = "Option<String>")]
    pub host: S,
    #[schemars(with = "Option<String>")]
    pub location: S,
    #[schemars(with = "Option<AppDns>")]
    pub dns: S,
    #[schemars(with = "Option<AppProto>")]
    pub proto: S,
    #[serde(rename = "action")]
    #[schemars(with = "Option<AdminWord>")]
    pub action_key: S,
    #[schemars(with = "Option<String>")]
    pub user: S,
    #[schemars(with = "Option<String>")]
    pub group: S,
    #[schemars(with = "Option<SteeringMode>")]
    pub mode: S,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Expect")]
pub(super) struct RawExpect {
    #[schemars(with = "Option<ResolvedBy>")]
    pub resolved_by: S,
    #[schemars(with = "Option<String>")]
    pub gateway: S,
    #[schemars(with = "Option<TunnelState>")]
    pub tunnel: S,
    pub flows: Option<Vec<RawFlow>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "a table")]
#[schemars(rename = "Flow")]
pub(super) struct RawFlow {
    #[schemars(with = "Option<String>")]
    pub process: S,
    #[schemars(with = "Option<String>")]
    pub host: S,
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
