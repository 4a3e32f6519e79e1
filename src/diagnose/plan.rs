//! A candidate scenario as plain data, written out as a scenario file (TOML) that the
//! loader reads back: what a hypothesis changes is a field here, never text surgery.

use std::fmt::Write as _;

/// A PoP of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanPop {
    pub name: String,
    pub location: String,
    pub ip: String,
    pub latency_ms: u64,
    pub cert: Option<&'static str>,
}

/// A timed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanEvent {
    Start,
    Partition(String),
    Repair(String),
    Login,
    /// The endpoint moves to a network in this location.
    Move(String),
    /// The tenant's admin sets the default configuration's steering mode (an `admin`
    /// `set_mode` event; clients see it on their next pull).
    SetMode(String),
    /// The tenant's admin moves a user into a group (an `admin` `move_user` event; the
    /// gateway's group policy applies at once).
    MoveUser {
        user: String,
        group: String,
    },
    /// The tenant's admin marks the user's device lost (an `admin` `mark_lost` event:
    /// the lost group's block-all at once, its configuration on the next pull).
    MarkLost(String),
    /// A firewall rule added at run time: (`"host"` | `"perimeter"`, rule).
    Rule(&'static str, String),
    Connect {
        process: String,
        target: String,
        via_proxy: bool,
        /// A UDP flow (`proto = "udp"`).
        udp: bool,
    },
}

/// An `[[expect.flows]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectFlow {
    pub process: String,
    pub host: String,
    pub verdict: String,
}

/// Everything a drafted scenario says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub name: String,
    pub description: String,
    pub seed: u64,
    pub duration_ms: u64,
    /// RFC 3339, the customer's first entry.
    pub clock: Option<String>,
    pub tenant: String,
    pub region: Option<String>,
    pub gslb: bool,
    pub gslb_behaviour: Option<String>,
    pub gslb_order: Vec<String>,
    pub version: Option<String>,
    pub location: String,
    pub tunnel: Option<String>,
    pub fail_close: bool,
    pub doh_behaviour: Option<String>,
    pub doh_cert: Option<&'static str>,
    pub ldns_behaviour: Option<String>,
    pub mode: Option<String>,
    pub managed: Vec<String>,
    pub exceptions: Vec<String>,
    pub bypass_apps: Vec<String>,
    /// `steering.private_apps`: RFC 1918 destinations are steered too.
    pub private_apps: bool,
    /// `steering.sni_check`: a flow to a shared address waits for its ClientHello.
    pub sni_check: bool,
    pub pinned: Vec<(String, String)>,
    pub policy_block: Vec<String>,
    /// `[policy] groups`: group name and its users at the start.
    pub policy_groups: Vec<(String, Vec<String>)>,
    pub host_firewall: Vec<String>,
    pub perimeter_firewall: Vec<String>,
    pub proxy: Option<(String, String)>,
    pub direct_egress: bool,
    pub path_mtu: Option<u32>,
    pub control_plane: bool,
    /// `[control_plane] interval`, in ms, when the log shows it (else the default).
    pub pull_interval_ms: Option<u64>,
    /// `[client] user`: the enrolled user the tenant hands its configuration to.
    pub user: Option<String>,
    pub pops: Vec<PlanPop>,
    pub backup: Option<(String, Option<&'static str>)>,
    pub origins: Vec<(String, String)>,
    /// `(at ms, event)`, written in this order (the loader keeps same-time order).
    pub events: Vec<(u64, PlanEvent)>,
    pub expect_resolved_by: Option<String>,
    pub expect_gateway: Option<String>,
    pub expect_tunnel: Option<String>,
    pub expect_flows: Vec<ExpectFlow>,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            name: String::new(),
            description: String::new(),
            seed: 1,
            duration_ms: 60_000,
            clock: None,
            tenant: "acme".to_string(),
            region: None,
            gslb: false,
            gslb_behaviour: None,
            gslb_order: Vec::new(),
            version: None,
            location: "us-east".to_string(),
            tunnel: None,
            fail_close: false,
            doh_behaviour: None,
            doh_cert: None,
            ldns_behaviour: None,
            mode: None,
            managed: Vec::new(),
            exceptions: Vec::new(),
            bypass_apps: Vec::new(),
            private_apps: false,
            sni_check: false,
            pinned: Vec::new(),
            policy_block: Vec::new(),
            policy_groups: Vec::new(),
            host_firewall: Vec::new(),
            perimeter_firewall: Vec::new(),
            proxy: None,
            direct_egress: true,
            path_mtu: None,
            control_plane: false,
            pull_interval_ms: None,
            user: None,
            pops: Vec::new(),
            backup: None,
            origins: Vec::new(),
            events: Vec::new(),
            expect_resolved_by: None,
            expect_gateway: None,
            expect_tunnel: None,
            expect_flows: Vec::new(),
        }
    }
}

/// A TOML basic string.
pub fn q(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn list(items: &[String]) -> String {
    items.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ")
}

/// `1500ms` as `"1.5s"`-free integer milliseconds: the loader reads `"1500ms"`.
fn ms(v: u64) -> String {
    if v.is_multiple_of(1000) {
        format!("\"{}s\"", v / 1000)
    } else {
        format!("\"{v}ms\"")
    }
}

impl Plan {
    /// The scenario file.
    pub fn to_toml(&self) -> String {
        let mut o = String::new();
        let w = &mut o;
        let _ = writeln!(w, "name = {}", q(&self.name));
        if !self.description.is_empty() {
            let _ = writeln!(w, "description = {}", q(&self.description));
        }
        let _ = writeln!(w, "seed = {}", self.seed);
        let _ = writeln!(w, "duration = {}", ms(self.duration_ms));
        if let Some(clock) = &self.clock {
            let _ = writeln!(w, "clock = {}", q(clock));
        }
        let _ = writeln!(w, "\n[tenant]\nname = {}", q(&self.tenant));
        if let Some(r) = &self.region {
            let _ = writeln!(w, "region = {}", q(r));
        }
        if self.gslb {
            let _ = writeln!(w, "gslb = true");
        }
        if let Some(b) = &self.gslb_behaviour {
            let _ = writeln!(w, "gslb_behaviour = {}", q(b));
        }
        if !self.gslb_order.is_empty() {
            let _ = writeln!(w, "gslb_order = [{}]", list(&self.gslb_order));
        }
        let _ = writeln!(w, "\n[client]\nlocation = {}", q(&self.location));
        if let Some(v) = &self.version {
            let _ = writeln!(w, "version = {}", q(v));
        }
        if let Some(t) = &self.tunnel {
            let _ = writeln!(w, "tunnel = {}", q(t));
        }
        if self.fail_close {
            let _ = writeln!(w, "fail_close = true");
        }
        if let Some(user) = &self.user {
            let _ = writeln!(w, "user = {}", q(user));
        }
        let _ = writeln!(w, "\n[dns]\nldns_location = {}", q(&self.location));
        if let Some(b) = &self.doh_behaviour {
            let _ = writeln!(w, "doh_behaviour = {}", q(b));
        }
        if let Some(c) = self.doh_cert {
            let _ = writeln!(w, "doh_cert = {}", q(c));
        }
        if let Some(b) = &self.ldns_behaviour {
            let _ = writeln!(w, "ldns_behaviour = {}", q(b));
        }
        let steering = self.mode.is_some()
            || !self.managed.is_empty()
            || !self.exceptions.is_empty()
            || !self.bypass_apps.is_empty()
            || !self.pinned.is_empty()
            || self.private_apps
            || self.sni_check;
        if steering {
            let _ = writeln!(w, "\n[steering]");
            if let Some(m) = &self.mode {
                let _ = writeln!(w, "mode = {}", q(m));
            }
            let _ = writeln!(w, "managed = [{}]", list(&self.managed));
            let _ = writeln!(w, "exceptions = [{}]", list(&self.exceptions));
            if !self.bypass_apps.is_empty() {
                let _ = writeln!(w, "bypass_apps = [{}]", list(&self.bypass_apps));
            }
            if self.private_apps {
                let _ = writeln!(w, "private_apps = true");
            }
            if self.sni_check {
                let _ = writeln!(w, "sni_check = true");
            }
            if !self.pinned.is_empty() {
                let items: Vec<String> = self
                    .pinned
                    .iter()
                    .map(|(p, a)| format!("{{ process = {}, action = {} }}", q(p), q(a)))
                    .collect();
                let _ = writeln!(w, "pinned_apps = [{}]", items.join(", "));
            }
        }
        if !self.policy_block.is_empty() {
            let _ = writeln!(w, "\n[policy]\nblock = [{}]", list(&self.policy_block));
            if !self.policy_groups.is_empty() {
                let groups: Vec<String> = self
                    .policy_groups
                    .iter()
                    .map(|(g, users)| format!("{} = [{}]", q(g), list(users)))
                    .collect();
                let _ = writeln!(w, "groups = {{ {} }}", groups.join(", "));
            }
        }
        if self.control_plane {
            let _ = writeln!(w, "\n[control_plane]");
            if let Some(interval) = self.pull_interval_ms {
                let _ = writeln!(w, "interval = {}", ms(interval));
            }
        }
        let network = !self.host_firewall.is_empty()
            || !self.perimeter_firewall.is_empty()
            || self.proxy.is_some()
            || !self.direct_egress
            || self.path_mtu.is_some();
        if network {
            let _ = writeln!(w, "\n[network]");
            if !self.host_firewall.is_empty() {
                let _ = writeln!(w, "host_firewall = [{}]", list(&self.host_firewall));
            }
            if !self.perimeter_firewall.is_empty() {
                let _ = writeln!(
                    w,
                    "perimeter_firewall = [{}]",
                    list(&self.perimeter_firewall)
                );
            }
            if let Some((address, discovery)) = &self.proxy {
                let _ = writeln!(
                    w,
                    "proxy = {{ address = {}, discovery = {} }}",
                    q(address),
                    q(discovery)
                );
            }
            if !self.direct_egress {
                let _ = writeln!(w, "direct_egress = false");
            }
            if let Some(mtu) = self.path_mtu {
                let _ = writeln!(w, "path_mtu = {mtu}");
            }
        }
        for pop in &self.pops {
            let _ = writeln!(
                w,
                "\n[[pops]]\nname = {}\nlocation = {}\nip = {}\nlatency = {}",
                q(&pop.name),
                q(&pop.location),
                q(&pop.ip),
                ms(pop.latency_ms)
            );
            if let Some(c) = pop.cert {
                let _ = writeln!(w, "cert = {}", q(c));
            }
        }
        if let Some((ip, cert)) = &self.backup {
            let _ = writeln!(w, "\n[backup]\nip = {}", q(ip));
            if let Some(c) = cert {
                let _ = writeln!(w, "cert = {}", q(c));
            }
        }
        for (host, ip) in &self.origins {
            let _ = writeln!(w, "\n[[origins]]\nhost = {}\nip = {}", q(host), q(ip));
        }
        for (at, event) in &self.events {
            let _ = writeln!(w, "\n[[events]]\nat = {}", ms(*at));
            match event {
                PlanEvent::Start => {
                    let _ = writeln!(w, "do = \"start\"");
                }
                PlanEvent::Partition(h) => {
                    let _ = writeln!(w, "do = \"partition\"\nhost = {}", q(h));
                }
                PlanEvent::Repair(h) => {
                    let _ = writeln!(w, "do = \"repair\"\nhost = {}", q(h));
                }
                PlanEvent::Login => {
                    let _ = writeln!(w, "do = \"login\"");
                }
                PlanEvent::Move(location) => {
                    let _ = writeln!(w, "do = \"move\"\nlocation = {}", q(location));
                }
                PlanEvent::MarkLost(user) => {
                    let _ = writeln!(
                        w,
                        "do = \"admin\"\naction = \"mark_lost\"\nuser = {}",
                        q(user)
                    );
                }
                PlanEvent::MoveUser { user, group } => {
                    let _ = writeln!(
                        w,
                        "do = \"admin\"\naction = \"move_user\"\nuser = {}\ngroup = {}",
                        q(user),
                        q(group)
                    );
                }
                PlanEvent::SetMode(mode) => {
                    let _ = writeln!(
                        w,
                        "do = \"admin\"\naction = \"set_mode\"\nmode = {}",
                        q(mode)
                    );
                }
                PlanEvent::Rule(place, rule) => {
                    let _ = writeln!(w, "do = \"rule\"\nwhere = {}\nrule = {}", q(place), q(rule));
                }
                PlanEvent::Connect {
                    process,
                    target,
                    via_proxy,
                    udp,
                } => {
                    let _ = writeln!(
                        w,
                        "do = \"connect\"\nprocess = {}\ntarget = {}",
                        q(process),
                        q(target)
                    );
                    if *via_proxy {
                        let _ = writeln!(w, "via_proxy = true");
                    }
                    if *udp {
                        let _ = writeln!(w, "proto = \"udp\"");
                    }
                }
            }
        }
        let _ = writeln!(w, "\n[expect]");
        if let Some(r) = &self.expect_resolved_by {
            let _ = writeln!(w, "resolved_by = {}", q(r));
        }
        if let Some(g) = &self.expect_gateway {
            let _ = writeln!(w, "gateway = {}", q(g));
        }
        if let Some(t) = &self.expect_tunnel {
            let _ = writeln!(w, "tunnel = {}", q(t));
        }
        if self.expect_flows.is_empty() {
            let _ = writeln!(w, "flows = []");
        }
        for f in &self.expect_flows {
            let _ = writeln!(w, "\n[[expect.flows]]");
            // A line that does not name the process (an IP exception's) expects none.
            if !f.process.is_empty() {
                let _ = writeln!(w, "process = {}", q(&f.process));
            }
            let _ = writeln!(w, "host = {}\nverdict = {}", q(&f.host), q(&f.verdict));
        }
        o
    }
}
