//! The file as written: serde structs mirroring the TOML key for key, what absent keys
//! mean (the model's `Default` impls), and the contract words of every enum. Values that
//! need checking stay `Spanned` strings so the loader can point at them;
//! `deny_unknown_fields` everywhere makes typos errors.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use serde::{Deserialize, Serialize, Serializer};
use toml::Spanned;

use super::duration::parse_duration;
use super::model::{
    AppDns, AppProto, Backup, CertKind, Client, ClientVersion, DEFAULT_LATENCY,
    DEFAULT_SLOW_ANSWER, Dns, Enrollment, FirewallPlace, Network, PinnedAction, ProxyDiscovery,
    Region, ResolvedBy, RuleAction, RuleProto, ServerBehaviour, Steering, SteeringMode, Tenant,
    TunnelProto, TunnelState, Verdict,
};
use super::{LoadError, from_toml};

type S = Option<Spanned<String>>;

/// Parses the TOML into the raw shape: syntax, unknown keys and value types are
/// checked here, with the error at the offending key or value.
pub(super) fn parse(path: &Path, text: &str) -> Result<RawScenario, LoadError> {
    toml::from_str(text).map_err(|e| from_toml(path, text, &e))
}

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawScenario {
    pub name: S,
    pub description: Option<String>,
    pub seed: Option<u64>,
    pub duration: S,
    /// A string or a TOML offset date-time.
    pub clock: Option<Spanned<toml::Value>>,
    pub tenant: Option<RawTenant>,
    pub client: Option<RawClient>,
    pub dns: Option<RawDns>,
    pub steering: Option<RawSteering>,
    pub pops: Option<Vec<Spanned<RawPop>>>,
    pub backup: Option<RawBackup>,
    pub origins: Option<Vec<Spanned<RawOrigin>>>,
    pub network: Option<RawNetwork>,
    pub policy: Option<RawPolicy>,
    pub control_plane: Option<RawControlPlane>,
    pub events: Option<Vec<Spanned<RawEvent>>>,
    pub expect: Option<RawExpect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawTenant {
    pub name: S,
    pub region: S,
    pub gslb: Option<bool>,
    pub gslb_behaviour: S,
    pub gslb_order: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawClient {
    pub version: S,
    pub ip: S,
    pub location: S,
    pub tunnel: S,
    pub fail_close: Option<bool>,
    pub user: S,
    pub endpoints: Option<Spanned<u32>>,
    pub endpoints_per_host: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawDns {
    pub doh: S,
    pub ldns: S,
    pub ldns_location: S,
    pub doh_behaviour: S,
    pub ldns_behaviour: S,
    pub doh_cert: S,
    pub search_domain: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawSteering {
    pub mode: S,
    pub ports: Option<Vec<Spanned<u16>>>,
    pub managed: Option<Vec<Spanned<String>>>,
    pub exceptions: Option<Vec<Spanned<String>>>,
    pub bypass_apps: Option<Vec<Spanned<String>>>,
    pub pinned_apps: Option<Vec<Spanned<RawPinnedApp>>>,
    pub exceptions_file: S,
    pub bypass_file: S,
    pub steer_dns: Option<bool>,
    pub private_apps: Option<bool>,
    pub sni_check: Option<bool>,
    pub on_prem: Option<Spanned<RawOnPrem>>,
}

#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table with `dns_host` and `dns_ip` (or `http_url`), and `mode`"
)]
pub(super) struct RawOnPrem {
    pub dns_host: S,
    pub dns_ip: S,
    pub http_url: S,
    pub mode: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table with `process` and `action`")]
pub(super) struct RawPinnedApp {
    pub process: S,
    pub action: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawPop {
    pub name: S,
    pub location: S,
    pub ip: S,
    pub latency: S,
    pub cert: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawBackup {
    pub ip: S,
    pub location: S,
    pub latency: S,
    pub cert: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawOrigin {
    pub host: S,
    pub ip: S,
    pub category: S,
    pub aliases: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawControlPlane {
    pub interval: S,
    pub enrollment: S,
    pub hostname: S,
    pub device: S,
    pub lost_group: S,
    pub invite: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawPolicy {
    pub block: Option<Vec<Spanned<String>>>,
    pub allow: Option<Vec<Spanned<String>>>,
    pub groups: Option<BTreeMap<String, Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawNetwork {
    pub host_firewall: Option<Vec<Spanned<String>>>,
    pub perimeter_firewall: Option<Vec<Spanned<String>>>,
    pub proxy: Option<Spanned<RawProxy>>,
    pub pac: Option<String>,
    pub direct_egress: Option<bool>,
    pub path_mtu: Option<Spanned<u32>>,
    pub udp_loss: Option<Spanned<f64>>,
    pub vpn: Option<Spanned<RawVpn>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawVpn {
    pub egress: S,
    pub latency: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawProxy {
    pub address: S,
    pub discovery: S,
}

/// One `[[events]]` table: every key of every `do`, checked per `do` by the loader.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawEvent {
    pub at: S,
    #[serde(rename = "do")]
    pub action: S,
    pub process: S,
    pub target: S,
    pub via_proxy: Option<Spanned<bool>>,
    #[serde(rename = "where")]
    pub place: S,
    pub rule: S,
    pub host: S,
    pub location: S,
    pub dns: S,
    pub proto: S,
    #[serde(rename = "action")]
    pub action_key: S,
    pub user: S,
    pub group: S,
    pub mode: S,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawExpect {
    pub resolved_by: S,
    pub gateway: S,
    pub tunnel: S,
    pub flows: Option<Vec<RawFlow>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(super) struct RawFlow {
    pub process: S,
    pub host: S,
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
