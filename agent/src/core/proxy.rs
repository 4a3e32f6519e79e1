//! Finding a proxy when the gateway cannot be reached directly: the manual setting, or
//! proxy auto-configuration (a PAC URL, or WPAD), run through [`crate::pac`].
//!
//! The proxies found are kept for the rest of the round of connection attempts (until
//! the agent starts again from the primary gateway), and tried in the PAC file's order
//! for every gateway address before the agent moves on to the next one.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::*;
use crate::pac::{self, PacEnv, ProxyChoice};

impl Agent {
    /// The PAC file arrived (or did not).
    pub fn handle_pac(&mut self, op: OpId, fetched: PacFetched, now: Instant) {
        let Phase::FindingProxy { op: cur, .. } = &self.phase else {
            return;
        };
        if *cur != op {
            return;
        }
        self.timers.remove(&Timer::PacFetch);
        let Phase::FindingProxy { target, rest, .. } =
            std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return;
        };
        let url = self.pac_url();
        let proxies = match fetched.outcome {
            HttpOutcome::Response { status: 200, body } => {
                let script = String::from_utf8_lossy(&body);
                self.log(
                    Level::Info,
                    "Config",
                    format!("PAC file {url} downloaded, {} bytes", body.len()),
                );
                self.proxies_from_pac(&script, &target, fetched.wall_unix_ms, now)
            }
            HttpOutcome::Response { status, .. } => {
                self.log(
                    Level::Error,
                    "Config",
                    format!("Failed to download PAC file {url}: HTTP status {status}"),
                );
                Vec::new()
            }
            HttpOutcome::Failed(err) => {
                self.log(
                    Level::Error,
                    "Config",
                    format!("Failed to download PAC file {url}: {err}"),
                );
                Vec::new()
            }
        };
        self.proxies_found(proxies, target, rest, now);
    }

    /// A TLS connect to `target` failed: the next proxy for it, else the next gateway.
    pub(super) fn after_connect_failure(
        &mut self,
        target: Target,
        rest: Vec<Target>,
        now: Instant,
    ) {
        if target.proxy.is_none() && self.proxies.is_none() {
            return self.find_proxies(target, rest, now);
        }
        match self.next_proxy(target.proxy) {
            Some(proxy) => self.connect_via(proxy, target, rest, now),
            None => self.next_target(target, rest, now),
        }
    }

    /// The gateway at `target` is out of reach by every route: the next-best PoP, or the
    /// role's failure.
    fn next_target(&mut self, target: Target, rest: Vec<Target>, now: Instant) {
        let mut rest = rest.into_iter();
        match rest.next() {
            Some(next) => {
                self.log(
                    Level::Warning,
                    "nsTunnel",
                    format!("{} Trying the next PoP: {}", self.proto.as_str(), next.name),
                );
                self.connect(next, rest.collect(), now);
            }
            None => self.role_failed(target.role, now),
        }
    }

    /// Reads the system proxy settings, as the client does once a direct connect fails.
    fn find_proxies(&mut self, target: Target, rest: Vec<Target>, now: Instant) {
        if let Some(proxy) = self.config.proxy {
            self.log(
                Level::Info,
                "Config",
                format!(
                    "System proxy configuration Detected , System proxy Count 1, Proxy {proxy}"
                ),
            );
            return self.proxies_found(vec![proxy], target, rest, now);
        }
        let Some(discovery) = self.config.proxy_discovery.clone() else {
            self.log(
                Level::Info,
                "Config",
                "System proxy configuration Not Detected , System proxy Count 0,Pac Server Host N/A"
                    .to_string(),
            );
            return self.proxies_found(Vec::new(), target, rest, now);
        };
        let url = discovery.url();
        let how = match discovery {
            ProxyDiscovery::Pac { .. } => "PAC URL",
            ProxyDiscovery::Wpad { .. } => "WPAD (auto-detect)",
        };
        self.log(
            Level::Info,
            "Config",
            format!("System proxy configuration by {how}, downloading {url}"),
        );
        let op = self.new_op();
        self.push(Action::FetchPac { op, url });
        self.timers.insert(Timer::PacFetch, now + PAC_FETCH_TIMEOUT);
        self.phase = Phase::FindingProxy { target, op, rest };
    }

    /// The PAC file did not arrive in time.
    pub(super) fn pac_timed_out(&mut self, now: Instant) {
        let Phase::FindingProxy { op, .. } = self.phase else {
            return;
        };
        self.push(Action::Cancel { op });
        let Phase::FindingProxy { target, rest, .. } =
            std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return;
        };
        let url = self.pac_url();
        self.log(
            Level::Error,
            "Config",
            format!(
                "Failed to download PAC file {url}: timed out after {}s",
                PAC_FETCH_TIMEOUT.as_secs()
            ),
        );
        self.proxies_found(Vec::new(), target, rest, now);
    }

    /// Runs the PAC file for the gateway's URL and keeps the HTTP proxies it names.
    fn proxies_from_pac(
        &mut self,
        script: &str,
        target: &Target,
        wall_unix_ms: i64,
        now: Instant,
    ) -> Vec<SocketAddr> {
        let env = self.pac_env(target, wall_unix_ms, now);
        let url = format!("https://{}/", target.name);
        let answer = match pac::find_proxy(script, &url, &target.name, &env) {
            Ok(answer) => answer,
            Err(err) => {
                self.log(Level::Error, "Config", format!("PAC file failed: {err}"));
                return Vec::new();
            }
        };
        for alert in &answer.alerts {
            self.log(Level::Info, "Config", format!("PAC alert: {alert}"));
        }
        self.log(
            Level::Info,
            "Config",
            format!("PAC FindProxyForURL({url}) returned {:?}", answer.returned),
        );
        let mut proxies = Vec::new();
        for choice in answer.choices {
            match choice {
                ProxyChoice::Direct => self.log(
                    Level::Info,
                    "Config",
                    format!("PAC chose DIRECT for {}, which already failed", target.name),
                ),
                ProxyChoice::Http { host, port } => match env.resolve(&host) {
                    Some(ip) => {
                        let proxy = SocketAddr::new(ip, port);
                        if !proxies.contains(&proxy) {
                            proxies.push(proxy);
                        }
                    }
                    None => self.log(
                        Level::Warning,
                        "Config",
                        format!("PAC proxy {host}:{port} does not resolve, skipped"),
                    ),
                },
                ProxyChoice::Other { kind, target } => self.log(
                    Level::Warning,
                    "Config",
                    format!("PAC proxy {kind} {target} cannot carry the tunnel, skipped"),
                ),
            }
        }
        proxies
    }

    /// What the PAC script may know: this endpoint's address, the wall clock, the
    /// gateway's address, and the names apps resolved.
    fn pac_env(&self, target: &Target, wall_unix_ms: i64, now: Instant) -> PacEnv {
        let mut names: BTreeMap<String, IpAddr> = self
            .dns_map
            .live_pairs(now)
            .map(|(n, ip)| (n.to_string(), ip))
            .collect();
        names.insert(target.name.to_ascii_lowercase(), target.addr.ip());
        PacEnv {
            my_ip: IpAddr::V4(self.config.client_ip),
            now_unix_ms: wall_unix_ms,
            names,
        }
    }

    /// Keeps `proxies` for this round and goes on with the first, or the next gateway.
    fn proxies_found(
        &mut self,
        proxies: Vec<SocketAddr>,
        target: Target,
        rest: Vec<Target>,
        now: Instant,
    ) {
        if self.config.proxy.is_none() && self.config.proxy_discovery.is_some() {
            let host = self.pac_host();
            let line = if proxies.is_empty() {
                format!(
                    "System proxy configuration Not Detected , System proxy Count 0,Pac Server Host {host}"
                )
            } else {
                let list: Vec<String> = proxies.iter().map(ToString::to_string).collect();
                format!(
                    "System proxy configuration Detected , System proxy Count {}, Proxy {},Pac Server Host {host}",
                    proxies.len(),
                    list.join(", ")
                )
            };
            self.log(Level::Info, "Config", line);
        }
        self.proxies = Some(proxies);
        self.after_connect_failure(target, rest, now);
    }

    /// The proxy to try after `after` (after a direct connect: the first).
    fn next_proxy(&self, after: Option<SocketAddr>) -> Option<SocketAddr> {
        let list = self.proxies.as_deref().unwrap_or_default();
        match after {
            None => list.first().copied(),
            Some(p) => {
                let i = list.iter().position(|x| *x == p)?;
                list.get(i + 1).copied()
            }
        }
    }

    fn connect_via(&mut self, proxy: SocketAddr, target: Target, rest: Vec<Target>, now: Instant) {
        self.log(
            Level::Info,
            "nsTunnel",
            format!(
                "{} Connecting to {}:{} through proxy {proxy}",
                self.proto.as_str(),
                target.name,
                target.addr.port()
            ),
        );
        let target = Target {
            proxy: Some(proxy),
            ..target
        };
        self.connect(target, rest, now);
    }

    fn pac_url(&self) -> String {
        self.config
            .proxy_discovery
            .as_ref()
            .map(ProxyDiscovery::url)
            .unwrap_or_default()
    }

    /// The PAC server's host, as the client's proxy line names it.
    fn pac_host(&self) -> String {
        let url = self.pac_url();
        let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
        let host = rest.split(['/', '?']).next().unwrap_or_default();
        host.rsplit_once(':')
            .filter(|(h, p)| !h.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host, |(h, _)| h)
            .to_string()
    }
}
