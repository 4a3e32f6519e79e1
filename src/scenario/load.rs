//! [`load_file`] and [`load_str`]: TOML to the raw shape with serde (syntax, unknown
//! keys, value types), then to [`Scenario`] with every semantic check, each error at
//! the offending value.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::clock::parse_clock;
use super::duration::{format_duration, parse_duration};
use super::files;
use super::model::*;
use super::raw::*;
use super::rule::{
    client_version, connect_target, host_name, http_url, ipv4, location, socket_addr, tenant_name,
    text_value,
};
use super::{LoadError, Res, Source, did_you_mean};

/// Reads and loads one scenario file.
pub fn load_file(path: &Path) -> Result<Scenario, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError::io(path, &e))?;
    load_str(&text, path)
}

/// Loads a scenario from its text; `path` is recorded and used in error messages.
pub fn load_str(text: &str, path: &Path) -> Result<Scenario, LoadError> {
    let raw = super::raw::parse(path, text)?;
    Source { path, text }.scenario(raw)
}

/// What partition and repair may cut off besides PoPs and origins; no PoP may be
/// named like these.
const SERVICE_HOSTS: [&str; 7] = ["backup", "doh", "ldns", "gslb", "proxy", "pac", "tenant"];
/// `do` words and the keys each takes besides `at` and `do`.
pub(super) const EVENT_KEYS: [(&str, &[&str]); 9] = [
    ("start", &[]),
    ("stop", &[]),
    (
        "connect",
        &["process", "target", "via_proxy", "dns", "proto"],
    ),
    ("rule", &["where", "rule"]),
    ("partition", &["host"]),
    ("repair", &["host"]),
    ("move", &["location"]),
    ("login", &[]),
    ("admin", &["action", "user", "group", "mode"]),
];
/// The most endpoints one world runs.
pub(super) const MAX_ENDPOINTS: u32 = 5_000;

/// What the scenario has that some events need.
#[derive(Debug, Clone, Copy)]
struct Has {
    /// A proxy or a PAC script (`via_proxy`).
    proxy: bool,
    /// A `[control_plane]` (`admin`).
    control_plane: bool,
}

/// A scenario's `duration`: a duration of at most [`MAX_DURATION`].
fn run_duration(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d > MAX_DURATION {
        return Err(format!(
            "duration `{text}` is longer than {}, the longest run a scenario may ask for; \
             write at most \"{}\" (split a longer story into several scenarios)",
            format_duration(MAX_DURATION),
            format_duration(MAX_DURATION)
        ));
    }
    Ok(d)
}

/// `2019-10-14T11:40:40Z`, the default `clock`.
const DEFAULT_CLOCK_UNIX_MS: i64 = 1_571_053_240_000;

impl Source<'_> {
    fn scenario(&self, raw: RawScenario) -> Res<Scenario> {
        let Some(name) = &raw.name else {
            let help = "add `name = \"...\"` at the top of the file";
            return Err(self.err(0..0, "missing required key `name`", help));
        };
        let name = self.check(name, |s| text_value(s, "name", "a short title"))?;
        let duration = self
            .opt(&raw.duration, run_duration)?
            .unwrap_or(DEFAULT_DURATION);
        let clock_unix_ms = match &raw.clock {
            None => DEFAULT_CLOCK_UNIX_MS,
            Some(v) => match v.get_ref() {
                toml::Value::String(s) => self.at(v.span(), parse_clock(s))?,
                toml::Value::Datetime(dt) => self.at(v.span(), parse_clock(&dt.to_string()))?,
                _ => return Err(self.err(v.span(), "`clock` is not a date-time", CLOCK_HELP)),
            },
        };
        // Checked in file order, so the first error reported is the first in the file.
        let mut raw_tenant = raw.tenant;
        let gslb_order = raw_tenant.as_mut().and_then(|t| t.gslb_order.take());
        let mut tenant = self.tenant(raw_tenant)?;
        let client = self.client(raw.client)?;
        let dns = self.dns(raw.dns, &client)?;
        let steering = self.steering(raw.steering)?;
        let pops = self.pops(raw.pops.unwrap_or_default())?;
        for name in gslb_order.unwrap_or_default() {
            if !pops.iter().any(|p| p.name == *name.get_ref()) {
                let known: Vec<&str> = pops.iter().map(|p| p.name.as_str()).collect();
                let help = format!("`tenant.gslb_order` lists PoP names: {}", known.join(", "));
                return Err(self.err(
                    name.span(),
                    format!("no PoP named `{}`", name.get_ref()),
                    help,
                ));
            }
            tenant.gslb_order.push(name.into_inner());
        }
        let backup = self.backup(raw.backup)?;
        let origins = self.origins(raw.origins.unwrap_or_default())?;
        let network = self.network(raw.network)?;
        let mut hosts: Vec<String> = pops.iter().map(|p| p.name.clone()).collect();
        hosts.extend(SERVICE_HOSTS.map(String::from));
        hosts.extend(origins.iter().map(|o| o.host.clone()));
        let control_plane = self.control_plane(raw.control_plane)?;
        let mut events = Vec::new();
        for event in raw.events.unwrap_or_default() {
            let has = Has {
                proxy: network.proxy.is_some() || network.pac.is_some(),
                control_plane: control_plane.is_some(),
            };
            events.push(self.event(event, duration, &hosts, has)?);
        }
        events.sort_by_key(|e| e.at);
        Ok(Scenario {
            path: self.path.to_owned(),
            name,
            description: raw.description.unwrap_or_default(),
            seed: raw.seed.unwrap_or(0),
            duration,
            clock_unix_ms,
            tenant,
            client,
            dns,
            steering,
            expect: self.expect(raw.expect, &pops)?,
            pops,
            backup,
            origins,
            network,
            policy: self.policy(raw.policy)?,
            control_plane,
            events,
        })
    }

    fn control_plane(&self, raw: Option<RawControlPlane>) -> Res<Option<ControlPlane>> {
        let Some(raw) = raw else { return Ok(None) };
        let text =
            |what: &'static str, example: &'static str| move |s: &str| text_value(s, what, example);
        Ok(Some(ControlPlane {
            interval: self
                .opt(&raw.interval, parse_duration)?
                .unwrap_or(Duration::from_secs(300)),
            enrollment: self
                .opt_word(&raw.enrollment, "enrollment")?
                .unwrap_or(Enrollment::Upn),
            hostname: self
                .opt(&raw.hostname, text("hostname", "e.g. \"LAPTOP-7\""))?
                .unwrap_or_else(|| "LAPTOP-1".to_string()),
            device: self
                .opt(&raw.device, text("device", "e.g. \"device-1\""))?
                .unwrap_or_else(|| "device-1".to_string()),
            lost_group: self
                .opt(&raw.lost_group, text("group", "e.g. \"lost-devices\""))?
                .unwrap_or_else(|| "lost-devices".to_string()),
            invite: self.opt(&raw.invite, text("invite", "e.g. \"john@acme.com\""))?,
        }))
    }

    fn tenant(&self, raw: Option<RawTenant>) -> Res<Tenant> {
        let mut t = Tenant::default();
        let Some(raw) = raw else { return Ok(t) };
        t.name = self.opt(&raw.name, tenant_name)?.unwrap_or(t.name);
        t.region = self.opt_word(&raw.region, "region")?.unwrap_or(t.region);
        t.gslb = raw.gslb.unwrap_or(t.gslb);
        let behaviour = self.opt(&raw.gslb_behaviour, |s| ServerBehaviour::parse(s, true))?;
        t.gslb_behaviour = behaviour.unwrap_or(t.gslb_behaviour);
        Ok(t)
    }

    fn client(&self, raw: Option<RawClient>) -> Res<Client> {
        let mut c = Client::default();
        let Some(raw) = raw else { return Ok(c) };
        c.version = self.opt(&raw.version, client_version)?.unwrap_or(c.version);
        c.ip = self.opt(&raw.ip, ipv4)?.unwrap_or(c.ip);
        c.location = self.opt(&raw.location, location)?.unwrap_or(c.location);
        c.tunnel = self.opt_word(&raw.tunnel, "tunnel")?.unwrap_or(c.tunnel);
        c.fail_close = raw.fail_close.unwrap_or(c.fail_close);
        c.user = self.opt(&raw.user, |u| {
            text_value(u, "user", "e.g. \"bob@acme.com\"")
        })?;
        for (key, raw, field) in [
            ("endpoints", raw.endpoints, &mut c.endpoints),
            (
                "endpoints_per_host",
                raw.endpoints_per_host,
                &mut c.endpoints_per_host,
            ),
        ] {
            let Some(n) = raw else { continue };
            if !(1..=MAX_ENDPOINTS).contains(n.get_ref()) {
                let help = format!("write a number from 1 to {MAX_ENDPOINTS}");
                let message = format!("{key} = {} is out of range", n.get_ref());
                return Err(self.err(n.span(), message, help));
            }
            *field = n.into_inner();
        }
        Ok(c)
    }

    fn dns(&self, raw: Option<RawDns>, client: &Client) -> Res<Dns> {
        let mut d = Dns {
            ldns_location: client.location.clone(),
            ..Dns::default()
        };
        let Some(raw) = raw else { return Ok(d) };
        d.doh = self.opt(&raw.doh, host_name)?.unwrap_or(d.doh);
        d.ldns = self.opt(&raw.ldns, ipv4)?.unwrap_or(d.ldns);
        d.ldns_location = self
            .opt(&raw.ldns_location, location)?
            .unwrap_or(d.ldns_location);
        let doh = self.opt(&raw.doh_behaviour, |s| ServerBehaviour::parse(s, true))?;
        d.doh_behaviour = doh.unwrap_or(d.doh_behaviour);
        let ldns = self.opt(&raw.ldns_behaviour, |s| ServerBehaviour::parse(s, false))?;
        d.ldns_behaviour = ldns.unwrap_or(d.ldns_behaviour);
        d.doh_cert = self
            .opt_word(&raw.doh_cert, "certificate kind")?
            .unwrap_or(d.doh_cert);
        d.search_domain = self
            .opt(&raw.search_domain, host_name)?
            .unwrap_or(d.search_domain);
        Ok(d)
    }

    fn steering(&self, raw: Option<RawSteering>) -> Res<Steering> {
        let mut s = Steering::default();
        let Some(raw) = raw else { return Ok(s) };
        if let Some(ports) = raw.ports {
            s.ports = Vec::new();
            for port in ports {
                if *port.get_ref() == 0 {
                    let help = "write a port number from 1 to 65535";
                    return Err(self.err(port.span(), "port 0 cannot be steered", help));
                }
                s.ports.push(port.into_inner());
            }
        }
        let target = |t: &str| RuleTarget::parse(t).map(|_| t.to_owned());
        let app = |t: &str| text_value(t, "bypass app", "a process name or a domain");
        s.mode = self.opt_word(&raw.mode, "steering mode")?.unwrap_or(s.mode);
        s.managed = self.list(raw.managed, target)?;
        s.exceptions = self.list(raw.exceptions, target)?;
        s.bypass_apps = self.list(raw.bypass_apps, app)?;
        for entry in raw.pinned_apps.unwrap_or_default() {
            let table = entry.span();
            let entry = entry.into_inner();
            let process = self.required(
                &entry.process,
                "process",
                "[[steering.pinned_apps]]",
                &table,
            )?;
            let action =
                self.required(&entry.action, "action", "[[steering.pinned_apps]]", &table)?;
            s.pinned_apps.push(PinnedApp {
                process: self.check(process, app)?,
                action: self.word(action, "pinned app action")?,
            });
        }
        if let Some(file) = &raw.exceptions_file {
            let text = self.read_beside(file)?;
            let list = self.at(file.span(), files::exceptions(file.get_ref(), &text))?;
            s.exceptions.extend(list);
        }
        if let Some(file) = &raw.bypass_file {
            let text = self.read_beside(file)?;
            let apps = self.at(file.span(), files::bypass_apps(file.get_ref(), &text))?;
            s.pinned_apps.extend(apps);
        }
        s.steer_dns = raw.steer_dns.unwrap_or(s.steer_dns);
        s.private_apps = raw.private_apps.unwrap_or(s.private_apps);
        s.sni_check = raw.sni_check.unwrap_or(s.sni_check);
        if let Some(on_prem) = &raw.on_prem {
            let (span, o) = (on_prem.span(), on_prem.get_ref());
            let table = "steering.on_prem";
            let test = match &o.http_url {
                Some(url) if o.dns_host.is_none() && o.dns_ip.is_none() => OnPremTest::Http {
                    url: self.check(url, http_url)?,
                },
                Some(url) => {
                    let help = "use either `http_url`, or `dns_host` with `dns_ip`";
                    return Err(self.err(
                        url.span(),
                        "on-prem detection by both HTTP and DNS",
                        help,
                    ));
                }
                None => OnPremTest::Dns {
                    host: self.check(
                        self.required(&o.dns_host, "dns_host", table, &span)?,
                        host_name,
                    )?,
                    ip: self.check(self.required(&o.dns_ip, "dns_ip", table, &span)?, ipv4)?,
                },
            };
            s.on_prem = Some(OnPrem {
                test,
                mode: self.word(
                    self.required(&o.mode, "mode", table, &span)?,
                    "steering mode",
                )?,
            });
        }
        Ok(s)
    }

    fn pops(&self, raw: Vec<Spanned<RawPop>>) -> Res<Vec<Pop>> {
        if raw.is_empty() {
            let message = "no [[pops]]: a scenario needs at least one gateway PoP";
            let help = "add a [[pops]] table with name, location and ip";
            return Err(self.err(0..0, message, help));
        }
        let mut pops = Vec::new();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for entry in raw {
            let (header, pop) = (entry.span(), entry.into_inner());
            let required = |value, key| self.required(value, key, "[[pops]]", &header);
            let name_s = required(&pop.name, "name")?;
            let name = self.check(name_s, |s| {
                text_value(s, "PoP name", "a name such as \"nyc1\"")
            })?;
            if SERVICE_HOSTS.contains(&name.as_str()) {
                let help = format!(
                    "PoP names may not be {}; rename it",
                    SERVICE_HOSTS.join(", ")
                );
                return Err(self.err(name_s.span(), format!("`{name}` is reserved"), help));
            }
            if let Some(line) = seen.insert(name.clone(), self.line_of(name_s.span().start)) {
                let help =
                    format!("the first `{name}` is on line {line}; PoP names must be unique");
                return Err(self.err(name_s.span(), format!("duplicate PoP name `{name}`"), help));
            }
            let location = self.check(required(&pop.location, "location")?, location)?;
            let ip = self.check(required(&pop.ip, "ip")?, ipv4)?;
            let latency = self
                .opt(&pop.latency, parse_duration)?
                .unwrap_or(DEFAULT_LATENCY);
            let cert = self
                .opt_word(&pop.cert, "certificate kind")?
                .unwrap_or(CertKind::Trusted);
            pops.push(Pop {
                name,
                location,
                ip,
                latency,
                cert,
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
            let host = self.check(host_s, host_name)?;
            if origins.iter().any(|o| o.host == host) {
                let help = "list each origin host once";
                return Err(self.err(host_s.span(), format!("duplicate origin `{host}`"), help));
            }
            let ip = self.check(
                self.required(&origin.ip, "ip", "[[origins]]", &header)?,
                ipv4,
            )?;
            let category = self.opt(&origin.category, |s| {
                text_value(s, "category", "e.g. \"file-sharing\"")
            })?;
            let aliases = self.list(origin.aliases, host_name)?;
            origins.push(Origin {
                host,
                ip,
                category,
                aliases,
            });
        }
        Ok(origins)
    }

    fn policy(&self, raw: Option<RawPolicy>) -> Res<Policy> {
        let Some(raw) = raw else {
            return Ok(Policy::default());
        };
        let entry = |s: &str| {
            let (target, group) = match s.split_once(" for ") {
                Some((t, g)) => (t.trim(), Some(g.trim())),
                None => (s.trim(), None),
            };
            if let Some(group) = group {
                match group.strip_prefix("group:") {
                    Some(g) if !g.trim().is_empty() => {}
                    _ => {
                        return Err(format!(
                            "`for {group}` names no group; write e.g. \"category:social for group:contractors\""
                        ));
                    }
                }
            }
            match target.strip_prefix("category:") {
                Some(c) if !c.trim().is_empty() => Ok(s.trim().to_string()),
                Some(_) => Err("empty category; write e.g. \"category:file-sharing\"".to_string()),
                None => RuleTarget::parse(target).map(|_| s.trim().to_string()),
            }
        };
        let mut groups = BTreeMap::new();
        for (group, users) in raw.groups.unwrap_or_default() {
            let users = self.list(Some(users), |u: &str| {
                text_value(u, "user", "e.g. \"bob@acme.com\"")
            })?;
            groups.insert(group, users);
        }
        Ok(Policy {
            block: self.list(raw.block, entry)?,
            allow: self.list(raw.allow, entry)?,
            groups,
        })
    }

    fn network(&self, raw: Option<RawNetwork>) -> Res<Network> {
        let mut n = Network::default();
        let Some(raw) = raw else { return Ok(n) };
        n.host_firewall = self.list(raw.host_firewall, Rule::parse)?;
        n.perimeter_firewall = self.list(raw.perimeter_firewall, Rule::parse)?;
        if let Some(proxy) = &raw.proxy {
            let (span, proxy) = (proxy.span(), proxy.get_ref());
            let address = self.required(&proxy.address, "address", "network.proxy", &span)?;
            let address = self.check(address, socket_addr)?;
            let discovery = self.opt_word(&proxy.discovery, "proxy discovery")?;
            let discovery = discovery.unwrap_or(ProxyDiscovery::Manual);
            n.proxy = Some(Proxy { address, discovery });
        }
        n.pac = raw.pac;
        n.direct_egress = raw.direct_egress.unwrap_or(n.direct_egress);
        if let Some(mtu) = raw.path_mtu {
            if !(68..=65_535).contains(mtu.get_ref()) {
                let help = "an IPv4 path MTU is between 68 and 65535 bytes, e.g. 1400";
                return Err(self.err(
                    mtu.span(),
                    format!("path_mtu {} is out of range", mtu.get_ref()),
                    help,
                ));
            }
            n.path_mtu = Some(mtu.into_inner());
        }
        if let Some(loss) = raw.udp_loss {
            if !(0.0..=1.0).contains(loss.get_ref()) {
                let help = "write a share between 0.0 and 1.0, e.g. 0.3 for 30%";
                return Err(self.err(
                    loss.span(),
                    format!("udp_loss {} is out of range", loss.get_ref()),
                    help,
                ));
            }
            n.udp_loss = loss.into_inner();
        }
        if let Some(vpn) = &raw.vpn {
            let (span, vpn) = (vpn.span(), vpn.get_ref());
            let egress = self.required(&vpn.egress, "egress", "network.vpn", &span)?;
            let egress = self.check(egress, location)?;
            let latency = self
                .opt(&vpn.latency, parse_duration)?
                .unwrap_or(Duration::from_millis(80));
            n.vpn = Some(Vpn { egress, latency });
        }
        Ok(n)
    }

    fn event(
        &self,
        entry: Spanned<RawEvent>,
        end: Duration,
        hosts: &[String],
        has: Has,
    ) -> Res<Event> {
        let (header, ev) = (entry.span(), entry.into_inner());
        let required = |value, key| self.required(value, key, "[[events]]", &header);
        let at_s = required(&ev.at, "at")?;
        let at = self.check(at_s, parse_duration)?;
        if at > end {
            let message = format!(
                "event at {} is after the end of the run",
                format_duration(at)
            );
            let help = format!(
                "raise `duration` (now \"{}\") or move the event",
                format_duration(end)
            );
            return Err(self.err(at_s.span(), message, help));
        }
        let do_s = required(&ev.action, "do")?;
        let word = do_s.get_ref().as_str();
        let Some(&(_, takes)) = EVENT_KEYS.iter().find(|(w, _)| *w == word) else {
            let help = did_you_mean(word, EVENT_KEYS.iter().map(|(w, _)| *w));
            return Err(self.err(do_s.span(), format!("unknown event `{word}`"), help));
        };
        let present = [
            ("process", ev.process.as_ref().map(Spanned::span)),
            ("target", ev.target.as_ref().map(Spanned::span)),
            ("via_proxy", ev.via_proxy.as_ref().map(Spanned::span)),
            ("where", ev.place.as_ref().map(Spanned::span)),
            ("rule", ev.rule.as_ref().map(Spanned::span)),
            ("host", ev.host.as_ref().map(Spanned::span)),
            ("location", ev.location.as_ref().map(Spanned::span)),
            ("dns", ev.dns.as_ref().map(Spanned::span)),
            ("proto", ev.proto.as_ref().map(Spanned::span)),
            ("action", ev.action_key.as_ref().map(Spanned::span)),
            ("user", ev.user.as_ref().map(Spanned::span)),
            ("group", ev.group.as_ref().map(Spanned::span)),
            ("mode", ev.mode.as_ref().map(Spanned::span)),
        ];
        for (key, span) in present {
            if let Some(span) = span.filter(|_| !takes.contains(&key)) {
                let keys: Vec<&str> = ["at", "do"].iter().chain(takes).copied().collect();
                let message = format!("`{key}` does not apply to do = \"{word}\"");
                let help = format!("do = \"{word}\" takes {}; remove `{key}`", keys.join(", "));
                return Err(self.err(span, message, help));
            }
        }
        let action = match word {
            "start" => EventAction::Start,
            "stop" => EventAction::Stop,
            "connect" => {
                let process = required(&ev.process, "process")?;
                let process =
                    self.check(process, |s| text_value(s, "process", "e.g. \"chrome.exe\""))?;
                let (host, port) = self.check(required(&ev.target, "target")?, connect_target)?;
                let via_proxy = ev.via_proxy.as_ref().is_some_and(|v| *v.get_ref());
                if let Some(v) = ev.via_proxy.clone().filter(|_| via_proxy && !has.proxy) {
                    let help = "add `proxy = { address = \"10.10.10.11:8080\" }` under [network]";
                    return Err(self.err(
                        v.span(),
                        "`via_proxy = true` but [network] has no proxy",
                        help,
                    ));
                }
                let dns = self
                    .opt_word(&ev.dns, "app resolver")?
                    .unwrap_or(AppDns::Os);
                let proto = self
                    .opt_word(&ev.proto, "transport")?
                    .unwrap_or(AppProto::Tcp);
                if let (AppProto::Udp, true, Some(v)) = (proto, via_proxy, &ev.via_proxy) {
                    let help = "a proxy carries TCP only: remove `via_proxy` or `proto`";
                    return Err(self.err(v.span(), "a UDP flow cannot go through the proxy", help));
                }
                EventAction::Connect {
                    process,
                    host,
                    port,
                    via_proxy,
                    dns,
                    proto,
                }
            }
            "login" => EventAction::Login,
            "admin" => {
                let action = required(&ev.action_key, "action")?;
                if !has.control_plane {
                    let help = "add a [control_plane] table (it may be empty)";
                    return Err(self.err(
                        do_s.span(),
                        "an admin event needs the tenant's control plane",
                        help,
                    ));
                }
                let user = || -> Res<String> {
                    self.check(required(&ev.user, "user")?, |u| {
                        text_value(u, "user", "e.g. \"bob@acme.com\"")
                    })
                };
                EventAction::Admin(match action.get_ref().as_str() {
                    "move_user" => AdminAction::MoveUser {
                        user: user()?,
                        group: self.check(required(&ev.group, "group")?, |g| {
                            text_value(g, "group", "e.g. \"contractors\"")
                        })?,
                    },
                    "mark_lost" => AdminAction::MarkLost { user: user()? },
                    "set_mode" => AdminAction::SetMode {
                        mode: self.word(required(&ev.mode, "mode")?, "steering mode")?,
                    },
                    other => {
                        let help = format!(
                            "write one of \"move_user\", \"mark_lost\", \"set_mode\" (not {other:?})"
                        );
                        return Err(self.err(action.span(), "unknown admin action", help));
                    }
                })
            }
            "move" => {
                let location = self.check(required(&ev.location, "location")?, location)?;
                EventAction::Move { location }
            }
            "rule" => {
                let place = self.word(required(&ev.place, "where")?, "firewall")?;
                let rule = self.check(required(&ev.rule, "rule")?, Rule::parse)?;
                EventAction::Rule { place, rule }
            }
            _ => {
                let host_s = required(&ev.host, "host")?;
                let Some(host) = hosts
                    .iter()
                    .find(|h| h.eq_ignore_ascii_case(host_s.get_ref()))
                else {
                    let help = did_you_mean(host_s.get_ref(), hosts.iter().map(String::as_str));
                    let message = format!("unknown host `{}` in {word} event", host_s.get_ref());
                    return Err(self.err(host_s.span(), message, help));
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
                let help = did_you_mean(g.get_ref(), names);
                return Err(self.err(g.span(), format!("unknown gateway `{}`", g.get_ref()), help));
            }
            gateway = Some(g.get_ref().clone());
        }
        let flows = raw
            .flows
            .map(|flows| flows.into_iter().map(|f| self.flow(f)).collect());
        let flows = flows.transpose()?;
        Ok(Expect {
            resolved_by: self.opt_word(&raw.resolved_by, "resolver")?,
            gateway,
            tunnel: self.opt_word(&raw.tunnel, "tunnel state")?,
            flows,
        })
    }

    fn flow(&self, flow: RawFlow) -> Res<ExpectFlow> {
        let verdict = self.opt_word(&flow.verdict, "verdict")?;
        let process = flow.process.map(Spanned::into_inner);
        Ok(ExpectFlow {
            process,
            host: flow.host.map(Spanned::into_inner),
            verdict,
        })
    }
}

const CLOCK_HELP: &str = "write e.g. \"2019-10-14T11:40:40Z\"";
