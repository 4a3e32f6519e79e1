//! [`load_file`] and [`load_str`]: TOML to [`RawScenario`] with serde (syntax, unknown
//! keys, value types), then to [`Scenario`] with every semantic check, each pointing at
//! the value's span.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::clock::parse_clock;
use super::duration::{format_duration, parse_duration};
use super::model::*;
use super::raw::*;
use super::rule::check_host;
use super::{LoadError, from_toml, nearest};

/// Reads and loads one scenario file.
pub fn load_file(path: &Path) -> Result<Scenario, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError::io(path, &e))?;
    load_str(&text, path)
}

/// Loads a scenario from its text; `path` is recorded and used in error messages.
pub fn load_str(text: &str, path: &Path) -> Result<Scenario, LoadError> {
    let raw: RawScenario = toml::from_str(text).map_err(|e| from_toml(path, text, &e))?;
    Loader { path, text }.scenario(raw)
}

/// Names a partition or repair event may cut off besides PoPs and origins; PoPs may
/// not take them.
const SERVICE_HOSTS: [&str; 5] = ["backup", "doh", "ldns", "gslb", "proxy"];
/// `do` words and the keys each takes besides `at` and `do`.
const EVENT_KEYS: [(&str, &[&str]); 6] = [
    ("start", &[]),
    ("stop", &[]),
    ("connect", &["process", "target", "via_proxy"]),
    ("rule", &["where", "rule"]),
    ("partition", &["host"]),
    ("repair", &["host"]),
];
/// `2019-10-14T11:40:40Z`.
const DEFAULT_CLOCK_UNIX_MS: i64 = 1_571_053_240_000;

type Res<T> = Result<T, LoadError>;

struct Loader<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Loader<'_> {
    fn scenario(&self, raw: RawScenario) -> Res<Scenario> {
        let name = match &raw.name {
            None => {
                return Err(self.err(
                    0..0,
                    "missing required key `name`",
                    "add `name = \"...\"` at the top of the file",
                ));
            }
            Some(n) => self.check(n, |s| text_value(s, "name", "a short title"))?,
        };
        let duration = self
            .opt(&raw.duration, parse_duration)?
            .unwrap_or(DEFAULT_DURATION);
        let clock_unix_ms = match &raw.clock {
            None => DEFAULT_CLOCK_UNIX_MS,
            Some(v) => match v.get_ref() {
                toml::Value::String(s) => self.at(v.span(), parse_clock(s))?,
                toml::Value::Datetime(dt) => self.at(v.span(), parse_clock(&dt.to_string()))?,
                _ => {
                    return Err(self.err(
                        v.span(),
                        "`clock` is not a date-time",
                        "write e.g. \"2019-10-14T11:40:40Z\"",
                    ));
                }
            },
        };
        let client = self.client(raw.client)?;
        let pops = self.pops(raw.pops.unwrap_or_default())?;
        let origins = self.origins(raw.origins.unwrap_or_default())?;
        let network = self.network(raw.network)?;
        let mut hosts: Vec<String> = pops.iter().map(|p| p.name.clone()).collect();
        hosts.extend(SERVICE_HOSTS.map(String::from));
        hosts.extend(origins.iter().map(|o| o.host.clone()));
        let mut events = Vec::new();
        for event in raw.events.unwrap_or_default() {
            events.push(self.event(event, duration, &hosts, network.proxy.is_some())?);
        }
        events.sort_by_key(|e| e.at);
        Ok(Scenario {
            path: self.path.to_owned(),
            name,
            description: raw.description.unwrap_or_default(),
            seed: raw.seed.unwrap_or(0),
            duration,
            clock_unix_ms,
            tenant: self.tenant(raw.tenant)?,
            dns: self.dns(raw.dns, &client)?,
            client,
            steering: self.steering(raw.steering)?,
            backup: self.backup(raw.backup)?,
            expect: self.expect(raw.expect, &pops)?,
            pops,
            origins,
            network,
            events,
        })
    }

    fn tenant(&self, raw: Option<RawTenant>) -> Res<Tenant> {
        let mut t = Tenant::default();
        let Some(raw) = raw else { return Ok(t) };
        if let Some(name) = &raw.name {
            t.name = self.check(name, tenant_name)?;
        }
        if let Some(region) = &raw.region {
            t.region = self.word(region, "region")?;
        }
        t.gslb = raw.gslb.unwrap_or(t.gslb);
        Ok(t)
    }

    fn client(&self, raw: Option<RawClient>) -> Res<Client> {
        let mut c = Client::default();
        let Some(raw) = raw else { return Ok(c) };
        if let Some(v) = &raw.version {
            self.check(v, |s| {
                ClientVersion::parse(s)
                    .map_err(|e| format!("{e}; write e.g. \"95.1.0\" or \"96.1\""))
            })
            .map(|v| c.version = v)?;
        }
        c.ip = self.opt(&raw.ip, ipv4)?.unwrap_or(c.ip);
        c.location = self.opt(&raw.location, location)?.unwrap_or(c.location);
        if let Some(tunnel) = &raw.tunnel {
            c.tunnel = self.word(tunnel, "tunnel")?;
        }
        c.fail_close = raw.fail_close.unwrap_or(c.fail_close);
        Ok(c)
    }

    fn dns(&self, raw: Option<RawDns>, client: &Client) -> Res<Dns> {
        let mut d = Dns {
            ldns_location: client.location.clone(),
            ..Dns::default()
        };
        let Some(raw) = raw else { return Ok(d) };
        d.doh = self
            .opt(&raw.doh, |s| {
                check_host(s).map_err(|e| format!("{e}; write e.g. \"dns.google\""))
            })?
            .unwrap_or(d.doh);
        d.ldns = self.opt(&raw.ldns, ipv4)?.unwrap_or(d.ldns);
        d.ldns_location = self
            .opt(&raw.ldns_location, location)?
            .unwrap_or(d.ldns_location);
        d.doh_behaviour = self
            .opt(&raw.doh_behaviour, |s| behaviour(s, true))?
            .unwrap_or(d.doh_behaviour);
        d.ldns_behaviour = self
            .opt(&raw.ldns_behaviour, |s| behaviour(s, false))?
            .unwrap_or(d.ldns_behaviour);
        if let Some(cert) = &raw.doh_cert {
            d.doh_cert = self.word(cert, "certificate kind")?;
        }
        Ok(d)
    }

    fn steering(&self, raw: Option<RawSteering>) -> Res<Steering> {
        let mut s = Steering::default();
        let Some(raw) = raw else { return Ok(s) };
        if let Some(mode) = &raw.mode {
            s.mode = self.word(mode, "steering mode")?;
        }
        if let Some(ports) = raw.ports {
            s.ports = Vec::new();
            for port in ports {
                if *port.get_ref() == 0 {
                    return Err(self.err(
                        port.span(),
                        "port 0 cannot be steered",
                        "write a port number from 1 to 65535",
                    ));
                }
                s.ports.push(port.into_inner());
            }
        }
        let target = |t: &str| RuleTarget::parse(t).map(|_| t.to_owned());
        s.managed = self.list(raw.managed, target)?;
        s.exceptions = self.list(raw.exceptions, target)?;
        s.bypass_apps = self.list(raw.bypass_apps, |t| {
            text_value(t, "bypass app", "a process name or a domain")
        })?;
        s.steer_dns = raw.steer_dns.unwrap_or(s.steer_dns);
        s.private_apps = raw.private_apps.unwrap_or(s.private_apps);
        Ok(s)
    }

    fn pops(&self, raw: Vec<Spanned<RawPop>>) -> Res<Vec<Pop>> {
        if raw.is_empty() {
            let help = "add a [[pops]] table with name, location and ip";
            return Err(self.err(
                0..0,
                "no [[pops]]: a scenario needs at least one gateway PoP",
                help,
            ));
        }
        let mut pops = Vec::new();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for entry in raw {
            let (header, pop) = (entry.span(), entry.into_inner());
            let name_s = self.required(&pop.name, "name", "[[pops]]", &header)?;
            let name = self.check(name_s, |s| {
                text_value(s, "PoP name", "a short name such as \"nyc1\"")
            })?;
            if SERVICE_HOSTS.contains(&name.as_str()) {
                let help = format!(
                    "PoP names may not be {}; rename it, e.g. \"{name}1\"",
                    SERVICE_HOSTS.join(", ")
                );
                return Err(self.err(name_s.span(), format!("`{name}` is reserved"), help));
            }
            if let Some(line) = seen.insert(name.clone(), self.line_of(name_s.span().start)) {
                let help =
                    format!("the first `{name}` is on line {line}; PoP names must be unique");
                return Err(self.err(name_s.span(), format!("duplicate PoP name `{name}`"), help));
            }
            pops.push(Pop {
                location: self.check(
                    self.required(&pop.location, "location", "[[pops]]", &header)?,
                    location,
                )?,
                ip: self.check(self.required(&pop.ip, "ip", "[[pops]]", &header)?, ipv4)?,
                latency: self
                    .opt(&pop.latency, parse_duration)?
                    .unwrap_or(DEFAULT_LATENCY),
                cert: self
                    .opt_word(&pop.cert, "certificate kind")?
                    .unwrap_or(CertKind::Trusted),
                name,
            });
        }
        Ok(pops)
    }

    fn backup(&self, raw: Option<RawBackup>) -> Res<Backup> {
        let mut b = Backup::default();
        let Some(raw) = raw else { return Ok(b) };
        b.ip = self.opt(&raw.ip, ipv4)?;
        b.location = self.opt(&raw.location, location)?;
        b.latency = self.opt(&raw.latency, parse_duration)?.unwrap_or(b.latency);
        b.cert = self
            .opt_word(&raw.cert, "certificate kind")?
            .unwrap_or(b.cert);
        Ok(b)
    }

    fn origins(&self, raw: Vec<Spanned<RawOrigin>>) -> Res<Vec<Origin>> {
        let mut origins: Vec<Origin> = Vec::new();
        for entry in raw {
            let (header, origin) = (entry.span(), entry.into_inner());
            let host_s = self.required(&origin.host, "host", "[[origins]]", &header)?;
            let host = self.check(host_s, |s| {
                check_host(s).map_err(|e| format!("{e}; write e.g. \"www.box.com\""))
            })?;
            if origins.iter().any(|o| o.host == host) {
                return Err(self.err(
                    host_s.span(),
                    format!("duplicate origin `{host}`"),
                    "each origin host is listed once",
                ));
            }
            let ip = self.check(
                self.required(&origin.ip, "ip", "[[origins]]", &header)?,
                ipv4,
            )?;
            origins.push(Origin { host, ip });
        }
        Ok(origins)
    }

    fn network(&self, raw: Option<RawNetwork>) -> Res<Network> {
        let mut n = Network::default();
        let Some(raw) = raw else { return Ok(n) };
        n.host_firewall = self.list(raw.host_firewall, Rule::parse)?;
        n.perimeter_firewall = self.list(raw.perimeter_firewall, Rule::parse)?;
        if let Some(proxy) = &raw.proxy {
            let address = self.required(
                &proxy.get_ref().address,
                "address",
                "network.proxy",
                &proxy.span(),
            )?;
            n.proxy = Some(Proxy {
                address: self.check(address, socket_addr)?,
                discovery: self
                    .opt_word(&proxy.get_ref().discovery, "proxy discovery")?
                    .unwrap_or(ProxyDiscovery::Manual),
            });
        }
        n.pac = raw.pac;
        n.direct_egress = raw.direct_egress.unwrap_or(n.direct_egress);
        Ok(n)
    }

    fn event(
        &self,
        entry: Spanned<RawEvent>,
        duration: Duration,
        hosts: &[String],
        has_proxy: bool,
    ) -> Res<Event> {
        let (header, ev) = (entry.span(), entry.into_inner());
        let at_s = self.required(&ev.at, "at", "[[events]]", &header)?;
        let at = self.check(at_s, parse_duration)?;
        if at > duration {
            let (at, end) = (format_duration(at), format_duration(duration));
            let help = format!("raise `duration` (now \"{end}\") or move the event earlier");
            return Err(self.err(
                at_s.span(),
                format!("event at {at} is after the end of the run"),
                help,
            ));
        }
        let do_s = self.required(&ev.action, "do", "[[events]]", &header)?;
        let word = do_s.get_ref().as_str();
        let Some(&(_, takes)) = EVENT_KEYS.iter().find(|(w, _)| *w == word) else {
            let help = self.did_you_mean(word, EVENT_KEYS.iter().map(|(w, _)| *w));
            return Err(self.err(do_s.span(), format!("unknown event `{word}`"), help));
        };
        let present = [
            ("process", ev.process.as_ref().map(Spanned::span)),
            ("target", ev.target.as_ref().map(Spanned::span)),
            ("via_proxy", ev.via_proxy.as_ref().map(Spanned::span)),
            ("where", ev.place.as_ref().map(Spanned::span)),
            ("rule", ev.rule.as_ref().map(Spanned::span)),
            ("host", ev.host.as_ref().map(Spanned::span)),
        ];
        for (key, span) in present {
            if let Some(span) = span
                && !takes.contains(&key)
            {
                let keys: Vec<&str> = ["at", "do"].iter().chain(takes).copied().collect();
                let help = format!("do = \"{word}\" takes {}; remove `{key}`", keys.join(", "));
                return Err(self.err(
                    span,
                    format!("`{key}` does not apply to do = \"{word}\""),
                    help,
                ));
            }
        }
        let action = match word {
            "start" => EventAction::Start,
            "stop" => EventAction::Stop,
            "connect" => {
                let process =
                    self.required(&ev.process, "process", "this connect event", &header)?;
                let target = self.required(&ev.target, "target", "this connect event", &header)?;
                let (host, port) = self.check(target, connect_target)?;
                let via_proxy = ev.via_proxy.as_ref().is_some_and(|v| *v.get_ref());
                if let Some(v) = ev.via_proxy.as_ref().filter(|_| via_proxy && !has_proxy) {
                    let help = "add `proxy = { address = \"10.10.10.11:8080\" }` under [network]";
                    return Err(self.err(
                        v.span(),
                        "`via_proxy = true` but [network] has no proxy",
                        help,
                    ));
                }
                let process = self.check(process, |s| {
                    text_value(s, "process", "a process name such as \"chrome.exe\"")
                })?;
                EventAction::Connect {
                    process,
                    host,
                    port,
                    via_proxy,
                }
            }
            "rule" => EventAction::Rule {
                place: self.word(
                    self.required(&ev.place, "where", "this rule event", &header)?,
                    "firewall",
                )?,
                rule: self.check(
                    self.required(&ev.rule, "rule", "this rule event", &header)?,
                    Rule::parse,
                )?,
            },
            _ => {
                let host_s = self.required(&ev.host, "host", "this event", &header)?;
                let Some(host) = hosts
                    .iter()
                    .find(|h| h.eq_ignore_ascii_case(host_s.get_ref()))
                else {
                    let help =
                        self.did_you_mean(host_s.get_ref(), hosts.iter().map(String::as_str));
                    return Err(self.err(
                        host_s.span(),
                        format!("unknown host `{}` in {word} event", host_s.get_ref()),
                        help,
                    ));
                };
                let host = host.clone();
                if word == "partition" {
                    EventAction::Partition { host }
                } else {
                    EventAction::Repair { host }
                }
            }
        };
        Ok(Event { at, action })
    }

    fn expect(&self, raw: Option<RawExpect>, pops: &[Pop]) -> Res<Expect> {
        let Some(raw) = raw else {
            return Ok(Expect::default());
        };
        let mut gateway = None;
        if let Some(g) = &raw.gateway {
            let names = pops.iter().map(|p| p.name.as_str()).chain(["backup"]);
            if !names.clone().any(|n| n == g.get_ref()) {
                let help = self.did_you_mean(g.get_ref(), names);
                return Err(self.err(g.span(), format!("unknown gateway `{}`", g.get_ref()), help));
            }
            gateway = Some(g.get_ref().clone());
        }
        let flows = match raw.flows {
            None => None,
            Some(flows) => Some(
                flows
                    .into_iter()
                    .map(|f| {
                        Ok(ExpectFlow {
                            process: f.process.map(Spanned::into_inner),
                            host: f.host.map(Spanned::into_inner),
                            verdict: self.opt_word(&f.verdict, "verdict")?,
                        })
                    })
                    .collect::<Res<Vec<_>>>()?,
            ),
        };
        Ok(Expect {
            resolved_by: self.opt_word(&raw.resolved_by, "resolver")?,
            gateway,
            tunnel: self.opt_word(&raw.tunnel, "tunnel state")?,
            flows,
        })
    }

    // --- helpers: each turns a value error into a LoadError at the value's span ---

    fn err(
        &self,
        span: Range<usize>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> LoadError {
        LoadError::at(self.path, self.text, span, message, Some(help.into()))
    }

    /// A `Result<T, String>` from a value parser; `"what; help"` splits into the two.
    fn at<T>(&self, span: Range<usize>, result: Result<T, String>) -> Res<T> {
        result.map_err(|e| {
            let (message, help) = split_help(&e);
            LoadError::at(self.path, self.text, span, message, help.map(str::to_owned))
        })
    }

    fn check<T>(
        &self,
        s: &Spanned<String>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Res<T> {
        self.at(s.span(), parse(s.get_ref()))
    }

    fn opt<T>(
        &self,
        s: &Option<Spanned<String>>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Res<Option<T>> {
        s.as_ref().map(|s| self.check(s, parse)).transpose()
    }

    fn list<T>(
        &self,
        items: Option<Vec<Spanned<String>>>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Res<Vec<T>> {
        items
            .unwrap_or_default()
            .iter()
            .map(|s| self.check(s, &parse))
            .collect()
    }

    fn word<T: Word>(&self, s: &Spanned<String>, what: &str) -> Res<T> {
        parse_word(s.get_ref()).map_err(|_| {
            let help = self.did_you_mean(s.get_ref(), T::WORDS.iter().map(|(_, w)| *w));
            self.err(s.span(), format!("unknown {what} `{}`", s.get_ref()), help)
        })
    }

    fn opt_word<T: Word>(&self, s: &Option<Spanned<String>>, what: &str) -> Res<Option<T>> {
        s.as_ref().map(|s| self.word(s, what)).transpose()
    }

    /// `did you mean "x"? write one of "a", "b"`.
    fn did_you_mean<'w>(
        &self,
        input: &str,
        words: impl Iterator<Item = &'w str> + Clone,
    ) -> String {
        let list: Vec<String> = words.clone().map(|w| format!("\"{w}\"")).collect();
        let mut help = format!("write one of {}", list.join(", "));
        if let Some(near) = nearest(input, words) {
            help = format!("did you mean \"{near}\"? {help}");
        }
        help
    }

    fn required<'r>(
        &self,
        value: &'r Option<Spanned<String>>,
        key: &str,
        table: &str,
        header: &Range<usize>,
    ) -> Res<&'r Spanned<String>> {
        value.as_ref().ok_or_else(|| {
            self.err(
                header.clone(),
                format!("missing `{key}` in {table}"),
                format!("add `{key} = \"...\"`"),
            )
        })
    }

    fn line_of(&self, offset: usize) -> usize {
        self.text.as_bytes()[..offset.min(self.text.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }
}

/// Splits `"what; help"` at the first `; ` outside backticks.
fn split_help(e: &str) -> (&str, Option<&str>) {
    let mut quoted = false;
    for (i, c) in e.char_indices() {
        match c {
            '`' => quoted = !quoted,
            ';' if !quoted && e[i + 1..].starts_with(' ') => return (&e[..i], Some(&e[i + 2..])),
            _ => {}
        }
    }
    (e, None)
}

fn text_value(s: &str, what: &str, example: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err(format!("empty {what}; write {example}"))
    } else {
        Ok(s.to_owned())
    }
}

fn location(s: &str) -> Result<String, String> {
    text_value(s, "location", "a place such as \"us-east\" or \"eu-west\"")
}

fn ipv4(s: &str) -> Result<Ipv4Addr, String> {
    s.parse().map_err(|_| {
        format!(
            "`{s}` is not an IPv4 address; write four numbers from 0 to 255, e.g. \"10.0.0.10\""
        )
    })
}

fn socket_addr(s: &str) -> Result<SocketAddrV4, String> {
    s.parse().map_err(|_| {
        format!("`{s}` is not an address and port; write \"IP:PORT\", e.g. \"10.10.10.11:8080\"")
    })
}

fn tenant_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "`{s}` cannot be part of a host name; write letters, digits and `-`, e.g. \"acme\""
        ))
    }
}

/// `HOST:PORT` of a connect event.
fn connect_target(s: &str) -> Result<(String, u16), String> {
    const HELP: &str = "write \"HOST:PORT\", e.g. \"www.box.com:443\"";
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("`{s}` has no port; {HELP}"))?;
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("`{port}` is not a port from 1 to 65535; {HELP}"))?;
    let host = match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => check_host(host).map_err(|e| format!("{e}; {HELP}"))?,
    };
    Ok((host, port))
}

/// `answer | servfail | empty | http_NNN | slow_answer[:DURATION]`; `http_NNN` only for DoH.
fn behaviour(s: &str, http: bool) -> Result<ServerBehaviour, String> {
    let words = if http {
        "\"answer\", \"servfail\", \"empty\", \"http_NNN\" (400-599), \"slow_answer[:DURATION]\""
    } else {
        "\"answer\", \"servfail\", \"empty\", \"slow_answer[:DURATION]\""
    };
    match s {
        "answer" => return Ok(ServerBehaviour::Answer),
        "servfail" => return Ok(ServerBehaviour::ServFail),
        "empty" => return Ok(ServerBehaviour::Empty),
        "slow_answer" => return Ok(ServerBehaviour::SlowAnswer(DEFAULT_SLOW_ANSWER)),
        _ => {}
    }
    if let Some(delay) = s.strip_prefix("slow_answer:") {
        return parse_duration(delay)
            .map(ServerBehaviour::SlowAnswer)
            .map_err(|e| format!("bad slow_answer delay: {e}"));
    }
    if let Some(code) = s.strip_prefix("http_") {
        if !http {
            return Err(format!(
                "the local resolver speaks plain DNS, not HTTP; write one of {words}"
            ));
        }
        return match code.parse::<u16>() {
            Ok(c) if (400..=599).contains(&c) => Ok(ServerBehaviour::HttpError(c)),
            _ => Err(format!(
                "`{s}` is not an HTTP error status; write http_400 to http_599, e.g. \"http_503\""
            )),
        };
    }
    Err(format!(
        "unknown server behaviour `{s}`; write one of {words}"
    ))
}
