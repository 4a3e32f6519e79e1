//! From facts to candidate scenarios: the parts the evidence fixes (tenant, version,
//! tunnel preference, PoPs, steering from the flows) and, for each way the failures can
//! be explained, a candidate with its cause ids, the world's conditions that produce them
//! and the repairs anchored to the customer's lines (a resolver that comes back, a
//! portal login).

use std::net::{IpAddr, SocketAddr};

use agent::core::KEEPALIVE_TIMEOUT;

use super::evidence::Evidence;
use super::facts::{Facts, Flow, connect_through_proxy, is_backup};
use super::plan::{ExpectFlow, Plan, PlanEvent, PlanPop};
use crate::scenario::Scenario;

/// Every cause id, with its words (contract v2; extend, never rename).
pub const CAUSES: &[(&str, &str)] = &[
    ("doh-blocked", "DNS over HTTPS to the DoH server is blocked"),
    ("gslb-blocked", "the GSLB API is unreachable"),
    ("ldns-failing", "the local DNS server does not answer"),
    (
        "udp-443-blocked",
        "UDP 443 is blocked, so DTLS fails and the client falls back to TLS",
    ),
    ("dtls-mtu", "the path MTU drops DTLS handshake datagrams"),
    (
        "tls-inspection",
        "an SSL-inspecting firewall re-signs the pinned tunnel",
    ),
    (
        "gateway-untrusted-cert",
        "the gateway presents a certificate the client does not trust",
    ),
    (
        "gateway-unreachable",
        "the primary gateway cannot be reached",
    ),
    (
        "backup-unreachable",
        "the backup gateway cannot be reached either",
    ),
    ("proxy-only", "only the explicit proxy reaches the internet"),
    (
        "connect-interception",
        "apps' CONNECTs to the on-prem proxy are taken into the tunnel",
    ),
    (
        "captive-portal",
        "a captive portal holds the network until the user logs in",
    ),
    (
        "vpn-capture",
        "a third-party VPN captures the gateway's traffic",
    ),
    (
        "config-unreachable",
        "the client cannot download its configuration",
    ),
];

/// The words of a cause id.
pub fn words(id: &str) -> &'static str {
    CAUSES.iter().find(|(c, _)| *c == id).map_or("", |(_, w)| w)
}

/// A repair or login that happens right after the simulated step matching a customer
/// entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchored {
    /// Index of the customer's entry.
    pub after_entry: usize,
    /// What happens then.
    pub event: PlanEvent,
    /// How long after that step (at least 1 ms).
    pub delay_ms: u64,
}

/// One candidate explanation.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Cause ids, in list order.
    pub causes: Vec<&'static str>,
    /// What this candidate assumes, in words (e.g. "UDP 443 blocked at the perimeter").
    pub assumptions: Vec<String>,
    /// The scenario without its anchored events and flows.
    pub plan: Plan,
    /// Repairs and logins, anchored to customer entries.
    pub anchored: Vec<Anchored>,
    /// The app flows, to place on the simulated timeline.
    pub flows: Vec<FlowPlan>,
}

/// A flow to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowPlan {
    /// The customer's entry.
    pub entry: usize,
    /// Its time in the customer's log (ms from the first entry).
    pub offset_ms: i64,
    pub process: String,
    pub target: String,
    pub via_proxy: bool,
    /// Sent as UDP: a media port (STUN/TURN, Zoom, Meet) that apps use over UDP.
    pub udp: bool,
}

/// Candidates for `facts`, most likely first.
pub fn candidates(facts: &Facts, ev: &Evidence, base: Option<&Scenario>) -> Vec<Candidate> {
    let plan = base_plan(facts, ev, base);
    let flows = flow_plans(facts, &plan);
    let mut out = Vec::new();
    let mut start = Candidate {
        causes: Vec::new(),
        assumptions: Vec::new(),
        plan,
        anchored: Vec::new(),
        flows,
    };
    resolution(facts, &mut start);
    roaming(facts, &mut start);
    // The user a refusal names first: a mode change needs a user, any user.
    group_moves(facts, &mut start);
    mode_changes(facts, &mut start);
    for variant in tunnel_variants(facts) {
        let mut c = start.clone();
        for apply in variant {
            apply(facts, &mut c);
        }
        c.causes
            .sort_by_key(|id| CAUSES.iter().position(|(c, _)| c == id));
        c.causes.dedup();
        // The network's state at 0 s is set before the agent starts.
        c.plan
            .events
            .sort_by_key(|(t, e)| (*t, matches!(e, PlanEvent::Start)));
        out.push(c);
    }
    out
}

type Apply = fn(&Facts, &mut Candidate);

fn cause(c: &mut Candidate, id: &'static str, assumption: &str) {
    c.causes.push(id);
    c.assumptions.push(assumption.to_string());
}

/// The entry of the last of `seen` before the first entry `>= success`.
fn last_before(seen: &[usize], success: usize) -> Option<usize> {
    seen.iter().copied().filter(|&e| e < success).max()
}

/// Whether the laptop roamed: a network change with another primary address resolved
/// after it (without GSLB, whose list names the PoPs). Each later address is a PoP of a
/// location of its own ([`roamed_location`], drafted with the PoPs).
fn roams(f: &Facts) -> bool {
    !f.network_changes.is_empty() && f.primary_ips.len() >= 2 && !f.gslb_asked
}

/// The location of the `k`-th network the laptop roamed to (1-based).
fn roamed_location(k: usize) -> String {
    format!("roamed-{k}")
}

/// The tenant's admin changed the steering mode when a pulled configuration changed it:
/// the drafted tenant starts in the first change's old mode, pulls as often as the log's
/// downloads are apart, and the admin sets each new mode right after the pull before the
/// one that applied it.
fn mode_changes(f: &Facts, c: &mut Candidate) {
    let Some((_, first, _)) = f.mode_changes.first() else {
        return;
    };
    c.plan.mode = Some(first.clone());
    for (entry, from, to) in &f.mode_changes {
        // The download the change came with, and the pull before it.
        let pulled = f.config_downloads.iter().copied().rfind(|d| d <= entry);
        let before = pulled.and_then(|p| f.config_downloads.iter().copied().rfind(|d| *d < p));
        let (Some(pulled), Some(before)) = (pulled, before) else {
            // The first configuration's mode: the tenant's from the start.
            c.plan.mode = Some(to.clone());
            continue;
        };
        c.plan.control_plane = true;
        enrolled_user(c);
        let apart = f.offsets_ms[pulled].saturating_sub(f.offsets_ms[before]);
        if c.plan.pull_interval_ms.is_none() && apart >= 1000 {
            // Pulls are whole seconds apart; the log's stamps carry the steps' delays.
            let apart = u64::try_from(apart).unwrap_or(0);
            c.plan.pull_interval_ms = Some(apart / 1000 * 1000);
        }
        c.assumptions.push(format!(
            "the tenant's admin changes the steering mode from {from} to {to}; the client applies it on its next pull"
        ));
        c.anchored.push(Anchored {
            after_entry: before,
            event: PlanEvent::SetMode(to.clone()),
            delay_ms: 1,
        });
    }
}

/// An enrolled user the tenant knows, when the log names none: the tenant refuses its
/// configuration to an unknown user.
fn enrolled_user(c: &mut Candidate) {
    let user = format!("user@{}.com", c.plan.tenant);
    c.plan.user.get_or_insert(user);
}

/// The group and user a gateway's refusal names (`blocked by policy: ... for group
/// contractors (bob@acme.com)`).
fn policy_group(reason: &str) -> Option<(String, String)> {
    let (_, rest) = reason.rsplit_once(" for group ")?;
    let (group, user) = rest.split_once(" (")?;
    let user = user.strip_suffix(')')?;
    let ok = |s: &str| !s.is_empty() && !s.contains(char::is_whitespace);
    (ok(group) && ok(user)).then(|| (group.to_string(), user.to_string()))
}

/// The lost-device group's default name (`[control_plane] lost_group`).
const LOST_GROUP: &str = "lost-devices";

/// Whether a gateway's refusal is its block-all policy (a lost device's group).
fn blocks_all(reason: &str) -> bool {
    reason.contains("policy: every destination")
}

/// The user in the group a gateway's refusal names: in it from the start, or moved into
/// it by the tenant's admin halfway between the last flow to that host the gateway let
/// through and the refused one.
fn group_moves(f: &Facts, c: &mut Candidate) {
    for (k, flow) in f.flows.iter().enumerate() {
        if flow.why != "policy" {
            continue;
        }
        let Some((group, user)) = policy_group(&flow.reason) else {
            continue;
        };
        c.plan.user.get_or_insert(user.clone());
        if !c.plan.policy_groups.iter().any(|(g, _)| *g == group) {
            c.plan.policy_groups.push((group.clone(), Vec::new()));
        }
        let every = blocks_all(&flow.reason);
        let let_through = f.flows[..k]
            .iter()
            .rfind(|x| (every || x.host == flow.host) && x.verdict == "tunneled");
        let Some(earlier) = let_through else {
            if let Some((_, users)) = c.plan.policy_groups.iter_mut().find(|(g, _)| *g == group) {
                push_unique(users, &user);
            }
            continue;
        };
        let in_group = c
            .plan
            .policy_groups
            .iter()
            .any(|(g, users)| *g == group && users.contains(&user));
        let moved = c.anchored.iter().any(|a| match &a.event {
            PlanEvent::MoveUser { user: u, group: g } => *u == user && *g == group,
            PlanEvent::MarkLost(u) => *u == user,
            _ => false,
        });
        if in_group || moved {
            continue;
        }
        c.plan.control_plane = true;
        // The tenant's lost group (by its default name) is what marking a device lost
        // does: the block-all now, the lost-device configuration on the next pull.
        let lost = every && group == LOST_GROUP;
        c.assumptions.push(if lost {
            format!(
                "the tenant's admin marks {user}'s device lost (group {group}) between two flows"
            )
        } else if every {
            format!("the tenant's admin moves {user} into group {group} between two flows")
        } else {
            format!(
                "the tenant's admin moves {user} into group {group} between two flows to {}",
                flow.host
            )
        });
        let gap = u64::try_from(flow.offset_ms.saturating_sub(earlier.offset_ms)).unwrap_or(0);
        let event = if lost {
            PlanEvent::MarkLost(user)
        } else {
            PlanEvent::MoveUser { user, group }
        };
        c.anchored.push(Anchored {
            after_entry: earlier.entry,
            event,
            delay_ms: (gap / 2).max(1),
        });
    }
}

/// Whether a flow at `entry` tells of managed domains: the steering mode in force then
/// (the last change before it, else the first change's old mode) is cloud-apps, or the
/// log shows no change of mode.
fn steers_by_managed(f: &Facts, entry: usize) -> bool {
    let Some((_, first, _)) = f.mode_changes.first() else {
        return true;
    };
    let last = f.mode_changes.iter().rfind(|(at, _, _)| *at < entry);
    last.map_or(first, |(_, _, to)| to) == "cloud-apps"
}

#[cfg(test)]
mod admin_tests {
    use super::policy_group;

    #[test]
    fn a_refusal_names_its_group_and_user() {
        assert_eq!(
            policy_group(
                "blocked by policy: category file-sharing for group contractors (bob@acme.com)"
            ),
            Some(("contractors".into(), "bob@acme.com".into()))
        );
        assert_eq!(policy_group("blocked by policy: www.dropbox.com"), None);
        assert_eq!(policy_group("blocked by policy: x for group  (bob)"), None);
        assert_eq!(policy_group("for group a b (c)"), None);
    }
}

/// The endpoint moves to the next network when the client saw its network change. A
/// move leaves the office's perimeter firewall behind, as the real move does.
fn roaming(f: &Facts, c: &mut Candidate) {
    if !roams(f) {
        return;
    }
    let moves = f.primary_ips.len() - 1;
    for (k, change) in f.network_changes.iter().take(moves).enumerate() {
        let location = roamed_location(k + 1);
        c.assumptions.push(format!(
            "the laptop moves to another network ({location}), where the gateway's name resolves to another PoP"
        ));
        c.anchored.push(Anchored {
            after_entry: *change,
            event: PlanEvent::Move(location),
            delay_ms: 0,
        });
    }
}

/// How the gateway was found: GSLB, DoH and LDNS conditions, with their repairs.
fn resolution(f: &Facts, c: &mut Candidate) {
    let proxy_only = f.proxy_only();
    let captive = f.captive_portal.is_some();
    let inspected = !f.cert_failures.is_empty();
    if f.gslb_asked {
        let flag_off = f
            .gslb_failures
            .iter()
            .any(|s| s.text.contains("not enabled") || s.text.contains("403"));
        c.plan.gslb = !flag_off;
        if let Some(first) = f.gslb_failures.first().filter(|_| !flag_off) {
            let t = first.text.to_ascii_lowercase();
            if let Some(code) = t.split("http status ").nth(1).and_then(|r| r.get(..3)) {
                c.plan.gslb_behaviour = Some(format!("http_{code}"));
                c.assumptions
                    .push(format!("the GSLB API answers HTTP {code}"));
            } else if t.contains("malformed") || t.contains("json") {
                c.plan.gslb_behaviour = Some("malformed".into());
                c.assumptions
                    .push("the GSLB API answers a body that is not JSON".into());
            } else if t.contains("certificate") || t.contains("unknownissuer") {
                // Inspected like every TLS connection: the inspection explains it.
            } else if !proxy_only && !captive {
                c.plan.events.push((0, PlanEvent::Partition("gslb".into())));
                cause(c, "gslb-blocked", "GSLB requests get no answer");
            }
        }
    }
    let doh: Vec<usize> = f.doh_failures.iter().map(|(s, _)| s.entry).collect();
    if let Some(answer) = &f.doh_answer {
        c.plan.doh_behaviour = Some(answer.clone());
        if let Some(code) = answer.strip_prefix("http_").filter(|c| c.starts_with('4')) {
            cause(
                c,
                "doh-blocked",
                &format!("DoH to dns.google is answered HTTP {code} (a filter on the way)"),
            );
        } else {
            let what = match answer.as_str() {
                "servfail" => "SERVFAIL".to_string(),
                "empty" => "no address".to_string(),
                "malformed" => "a body that is not a DNS message".to_string(),
                other => other.replace("http_", "HTTP "),
            };
            c.assumptions
                .push(format!("dns.google answers the gateway's name with {what}"));
        }
    } else if let Some((first, code)) = f.doh_failures.first() {
        let _ = first;
        let natural = proxy_only || captive || inspected && code == "60";
        if !natural {
            match code.as_str() {
                "7" => {
                    c.plan
                        .perimeter_firewall
                        .push("reset tcp/443 to dns.google".into());
                    cause(
                        c,
                        "doh-blocked",
                        "the perimeter resets TCP 443 to dns.google",
                    );
                }
                "60" => {
                    c.plan.doh_cert = Some("untrusted");
                    c.assumptions
                        .push("dns.google's certificate is not trusted (inspected)".into());
                    c.causes.push("tls-inspection");
                }
                _ => {
                    let repaired = f.doh_worked_after(&doh);
                    c.plan.events.push((0, PlanEvent::Partition("doh".into())));
                    cause(c, "doh-blocked", "DoH to dns.google gets no answer");
                    if let Some(after) = repaired {
                        c.anchored.push(Anchored {
                            after_entry: after,
                            event: PlanEvent::Repair("doh".into()),
                            delay_ms: 1,
                        });
                    }
                }
            }
        }
    }
    let ldns: Vec<usize> = f.ldns_failures.iter().map(|s| s.entry).collect();
    if !ldns.is_empty() && !proxy_only {
        let timeouts = f.ldns_failures.iter().any(|s| s.text.contains("timed out"));
        if timeouts {
            c.plan.events.push((0, PlanEvent::Partition("ldns".into())));
            cause(c, "ldns-failing", "the local DNS server does not answer");
        } else {
            c.plan.ldns_behaviour = Some("servfail".into());
            cause(c, "ldns-failing", "the local DNS server answers SERVFAIL");
        }
        if let Some(after) = f.ldns_worked_after(&ldns) {
            c.anchored.push(Anchored {
                after_entry: after,
                event: PlanEvent::Repair("ldns".into()),
                delay_ms: 1,
            });
        }
    }
    if !f.config_failures.is_empty() {
        c.plan.control_plane = true;
        enrolled_user(c);
        c.plan
            .events
            .push((0, PlanEvent::Partition("tenant".into())));
        cause(c, "config-unreachable", "addon-<tenant> does not answer");
        // A download that worked later: the tenant answers again after the last failure.
        let failures: Vec<usize> = f.config_failures.iter().map(|s| s.entry).collect();
        if let Some(after) = f
            .config_downloads
            .iter()
            .find_map(|&ok| last_before(&failures, ok))
        {
            c.anchored.push(Anchored {
                after_entry: after,
                event: PlanEvent::Repair("tenant".into()),
                delay_ms: 1,
            });
        }
    }
}

impl Facts {
    /// The last failure entry before a later success of the same resolver, if the
    /// evidence shows one (a repair to anchor).
    fn doh_worked_after(&self, failures: &[usize]) -> Option<usize> {
        let success = self.success_entry("EDNS")?;
        last_before(failures, success)
    }

    fn ldns_worked_after(&self, failures: &[usize]) -> Option<usize> {
        let success = self.success_entry("LDNS")?;
        last_before(failures, success)
    }
}

/// The tunnel's conditions: every way of explaining its failures, most likely first.
fn tunnel_variants(f: &Facts) -> Vec<Vec<Apply>> {
    let mut base: Vec<Apply> = Vec::new();
    if f.proxy_only() {
        base.push(proxy_only);
    } else if f.tunnel_via_proxy {
        base.push(proxy_fallback);
    }
    if f.captive_portal.is_some() {
        base.push(captive_portal);
    }
    if f.flows.iter().any(connect_through_proxy) {
        base.push(connect_interception);
    }
    let primary_tls_failed = f.tls_failures.iter().any(|(_, host)| !is_backup(host));
    let backup_failed = f.tls_failures.iter().any(|(_, host)| is_backup(host))
        || f.dtls_failures.iter().any(|(_, host)| is_backup(host)) && f.tunnel == "down";
    let natural = f.proxy_only() || f.captive_portal.is_some();
    let mut variants: Vec<Vec<Apply>> = vec![base.clone()];
    if !natural {
        if primary_tls_failed {
            for v in &mut variants {
                v.push(gateway_unreachable);
            }
        } else if !f.dtls_failures.is_empty() {
            let mut mtu = base.clone();
            mtu.push(dtls_mtu);
            for v in &mut variants {
                v.push(udp_blocked);
            }
            if f.mtu_hint {
                variants.insert(0, mtu);
            } else {
                variants.push(mtu);
            }
        }
        if backup_failed && f.failover {
            for v in &mut variants {
                v.push(backup_unreachable);
            }
        }
        if !f.cert_failures.is_empty() {
            let vendor = f.cert_failures.iter().any(|(s, _)| {
                let t = s.text.to_ascii_lowercase();
                t.contains("expired") || t.contains("goskope") || t.contains("netskope")
            });
            let mut out = Vec::new();
            for v in &variants {
                let mut perimeter = v.clone();
                perimeter.push(inspect_perimeter);
                let mut host = v.clone();
                host.push(inspect_host);
                let mut untrusted = v.clone();
                untrusted.push(untrusted_cert);
                if vendor && !f.doh_cert_failed {
                    out.extend([untrusted, perimeter, host]);
                } else if f.doh_cert_failed {
                    out.extend([perimeter, host]);
                } else {
                    out.extend([perimeter, host, untrusted]);
                }
            }
            variants = out;
        }
    }
    variants
}

fn udp_blocked(f: &Facts, c: &mut Candidate) {
    let refused = f
        .dtls_failures
        .iter()
        .any(|(s, _)| s.text.contains("refused"));
    let rule = if refused {
        "reset udp/443"
    } else {
        "block udp/443"
    };
    let failed: Vec<usize> = f.dtls_failures.iter().map(|(s, _)| s.entry).collect();
    let faults = fault_entries(f, Cut::Dtls, &failed);
    match onset(f, Cut::Dtls, &faults) {
        None => c.plan.perimeter_firewall.push(rule.into()),
        at => begin(c, at, vec![PlanEvent::Rule("perimeter", rule.into())]),
    }
    cause(
        c,
        "udp-443-blocked",
        &format!("the perimeter firewall has `{rule}`"),
    );
}

fn dtls_mtu(_: &Facts, c: &mut Candidate) {
    c.plan.path_mtu = Some(1000);
    cause(c, "dtls-mtu", "the path carries at most 1000-byte packets");
}

/// Which tunnels a fault cuts: the primary's or gateway-backup's (by host), or DTLS.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cut {
    Primary,
    Backup,
    Dtls,
}

impl Cut {
    fn covers(self, host: &str, proto: &str) -> bool {
        match self {
            Cut::Primary => !is_backup(host),
            Cut::Backup => is_backup(host),
            Cut::Dtls => proto == "DTLS",
        }
    }
}

/// The entries showing a fault on `cut`: its failed connects (`failures`), and the
/// keepalive timeouts of tunnels it covers that were up.
fn fault_entries(f: &Facts, cut: Cut, failures: &[usize]) -> Vec<usize> {
    let mut out = failures.to_vec();
    for d in &f.disconnects {
        let up = f.connects.iter().rposition(|&e| e < d.entry);
        if let Some((host, proto)) = up.and_then(|k| f.connected_to.get(k))
            && cut.covers(host, proto)
        {
            out.push(d.entry);
        }
    }
    out.sort_unstable();
    out
}

/// When a fault begins. `None`: before the agent starts (the evidence never shows the
/// path working). Otherwise the tunnel the fault cuts was up before the fault's first
/// evidence: the fault begins after that connect (its entry), as long after it as the
/// evidence says — a keepalive timeout shows up [`KEEPALIVE_TIMEOUT`] after the last
/// answered keepalive.
fn onset(f: &Facts, cut: Cut, faults: &[usize]) -> Option<(usize, u64)> {
    let &first = faults.first()?;
    let k = f.connects.iter().rposition(|&e| e < first)?;
    let (host, proto) = f.connected_to.get(k)?;
    if !cut.covers(host, proto) {
        return None;
    }
    let up = f.connects[k];
    let time = |e: usize| f.offsets_ms.get(e).copied().unwrap_or(0);
    let keepalive = f.disconnects.iter().any(|d| d.entry == first);
    let lead = if keepalive {
        i64::try_from(KEEPALIVE_TIMEOUT.as_millis()).unwrap_or(i64::MAX)
    } else {
        0
    };
    let delay = (time(first) - time(up)).saturating_sub(lead).max(1);
    Some((up, u64::try_from(delay).unwrap_or(1)))
}

/// Adds `events` at 0, or anchored at the fault's onset.
fn begin(c: &mut Candidate, at: Option<(usize, u64)>, events: Vec<PlanEvent>) {
    for event in events {
        match at {
            None => c.plan.events.push((0, event)),
            Some((after_entry, delay_ms)) => c.anchored.push(Anchored {
                after_entry,
                event,
                delay_ms,
            }),
        }
    }
}

/// The repair of a fault on `cut`: when a tunnel it covers comes up after the fault's
/// first evidence, right after the last evidence before that.
fn repair_after(f: &Facts, cut: Cut, faults: &[usize]) -> Option<usize> {
    let &first = faults.first()?;
    let back = f
        .connects
        .iter()
        .zip(&f.connected_to)
        .find(|&(&e, (host, proto))| e > first && cut.covers(host, proto))
        .map(|(&e, _)| e)?;
    last_before(faults, back)
}

fn gateway_unreachable(f: &Facts, c: &mut Candidate) {
    let refused = f
        .tls_failures
        .iter()
        .any(|(s, h)| !is_backup(h) && s.text.contains("refused"));
    let pop = c.plan.pops.first().map(|p| (p.name.clone(), p.ip.clone()));
    let Some((name, ip)) = pop else { return };
    let failed: Vec<usize> = f
        .tls_failures
        .iter()
        .filter(|(_, h)| !is_backup(h))
        .map(|(s, _)| s.entry)
        .collect();
    let faults = fault_entries(f, Cut::Primary, &failed);
    let at = onset(f, Cut::Primary, &faults);
    if refused {
        let rules = [
            format!("reset tcp/443 to {ip}"),
            format!("reset udp/443 to {ip}"),
        ];
        if at.is_none() {
            c.plan.perimeter_firewall.extend(rules);
        } else {
            let events = rules
                .into_iter()
                .map(|r| PlanEvent::Rule("perimeter", r))
                .collect();
            begin(c, at, events);
        }
        cause(
            c,
            "gateway-unreachable",
            &format!("the perimeter refuses {ip}"),
        );
    } else {
        begin(c, at, vec![PlanEvent::Partition(name.clone())]);
        let when = if at.is_some() {
            " from mid-session"
        } else {
            ""
        };
        cause(
            c,
            "gateway-unreachable",
            &format!("{ip} does not answer{when}"),
        );
        if let Some(after) = repair_after(f, Cut::Primary, &faults) {
            c.anchored.push(Anchored {
                after_entry: after,
                event: PlanEvent::Repair(name),
                delay_ms: 1,
            });
        }
    }
}

fn backup_unreachable(f: &Facts, c: &mut Candidate) {
    let refused = f
        .tls_failures
        .iter()
        .any(|(s, h)| is_backup(h) && s.text.contains("refused"));
    let failed: Vec<usize> = f
        .tls_failures
        .iter()
        .filter(|(_, h)| is_backup(h))
        .map(|(s, _)| s.entry)
        .collect();
    let faults = fault_entries(f, Cut::Backup, &failed);
    let at = onset(f, Cut::Backup, &faults);
    if refused {
        if let Some((ip, _)) = &c.plan.backup {
            let rule = format!("reset tcp/443 to {ip}");
            if at.is_none() {
                c.plan.perimeter_firewall.push(rule);
            } else {
                begin(c, at, vec![PlanEvent::Rule("perimeter", rule)]);
            }
        }
    } else {
        begin(c, at, vec![PlanEvent::Partition("backup".into())]);
    }
    cause(
        c,
        "backup-unreachable",
        "gateway-backup does not answer either",
    );
}

fn inspect_perimeter(f: &Facts, c: &mut Candidate) {
    let rules = inspect_rules(f, c);
    let shown = rules.join("`, `");
    for (k, rule) in rules.into_iter().enumerate() {
        c.plan.perimeter_firewall.insert(k, rule);
    }
    cause(
        c,
        "tls-inspection",
        &format!("the perimeter firewall has `{shown}`"),
    );
}

fn inspect_host(f: &Facts, c: &mut Candidate) {
    let rules = inspect_rules(f, c);
    let shown = rules.join("`, `");
    for (k, rule) in rules.into_iter().enumerate() {
        c.plan.host_firewall.insert(k, rule);
    }
    cause(
        c,
        "tls-inspection",
        &format!("the host firewall (antivirus, EDR) has `{shown}`"),
    );
}

/// What an inspecting firewall inspects: everything when DoH was inspected too, the
/// failing PoPs' addresses when another PoP's tunnel came up, else every gateway.
fn inspect_rules(f: &Facts, c: &Candidate) -> Vec<String> {
    if f.doh_cert_failed {
        return vec!["inspect tcp/443".into()];
    }
    let failed = failed_pops(f, c);
    if failed.is_empty() {
        return vec!["inspect tcp/443 to *.goskope.com".into()];
    }
    c.plan
        .pops
        .iter()
        .filter(|p| failed.contains(&p.name))
        .map(|p| format!("inspect tcp/443 to {}", p.ip))
        .collect()
}

/// The PoPs of the plan whose handshakes failed, when the evidence names them (their
/// `gateway-<pop>` host or their address) and another PoP's tunnel came up: the fault
/// is theirs alone. Empty: every PoP's.
fn failed_pops(f: &Facts, c: &Candidate) -> Vec<String> {
    let up = f
        .connected_host
        .as_deref()
        .filter(|h| f.tunnel != "down" && !is_backup(h));
    let Some(up) = up else { return Vec::new() };
    let names = |pop: &PlanPop, text: &str| {
        text.contains(&format!("gateway-{}.", pop.name)) || text.contains(&pop.ip)
    };
    let failed: Vec<String> = c
        .plan
        .pops
        .iter()
        .filter(|pop| {
            f.cert_failures
                .iter()
                .any(|(s, h)| !is_backup(h) && (names(pop, h) || names(pop, &s.text)))
        })
        .map(|pop| pop.name.clone())
        .collect();
    let up_failed = c
        .plan
        .pops
        .iter()
        .any(|pop| failed.contains(&pop.name) && names(pop, up));
    if up_failed { Vec::new() } else { failed }
}

fn untrusted_cert(f: &Facts, c: &mut Candidate) {
    let expired = f
        .cert_failures
        .iter()
        .any(|(s, _)| s.text.to_ascii_lowercase().contains("expired"));
    let word = if expired { "expired" } else { "untrusted" };
    let failed = failed_pops(f, c);
    for pop in &mut c.plan.pops {
        if failed.is_empty() || failed.contains(&pop.name) {
            pop.cert = Some(word);
        }
    }
    if f.cert_failures.iter().any(|(_, h)| is_backup(h)) {
        let ip = c.plan.backup.as_ref().map(|b| b.0.clone());
        c.plan.backup = Some((ip.unwrap_or_else(|| "8.36.118.35".into()), Some(word)));
    }
    cause(
        c,
        "gateway-untrusted-cert",
        &format!("the gateway's certificate is {word}"),
    );
}

/// The proxy the evidence shows (the site's usual one when a line names none), with how
/// it was found, set on the plan; returned for the words.
fn use_proxy(f: &Facts, c: &mut Candidate) -> (String, String) {
    let address = f.proxy.clone().unwrap_or_else(|| "10.10.10.11:8080".into());
    let discovery = f.proxy_discovery.clone().unwrap_or_else(|| "manual".into());
    c.plan.proxy = Some((address.clone(), discovery.clone()));
    (address, discovery)
}

fn proxy_only(f: &Facts, c: &mut Candidate) {
    let (address, discovery) = use_proxy(f, c);
    c.plan.direct_egress = false;
    cause(
        c,
        "proxy-only",
        &format!("only the proxy {address} ({discovery}) reaches the internet"),
    );
    pac_server_down(f, c);
}

/// The PAC file could not be downloaded: the PAC server is cut off from the start, and
/// comes back after the last failed download when the tunnel later came up through
/// the proxy.
fn pac_server_down(f: &Facts, c: &mut Candidate) {
    let Some(&last) = f.pac_failures.last() else {
        return;
    };
    c.plan.events.push((0, PlanEvent::Partition("pac".into())));
    c.assumptions
        .push("the PAC server does not answer".to_string());
    if f.tunnel_via_proxy && f.tunnel != "down" {
        c.anchored.push(Anchored {
            after_entry: last,
            event: PlanEvent::Repair("pac".into()),
            delay_ms: 1,
        });
        c.assumptions
            .push("the PAC server answers again after the last failed download".to_string());
    }
}

/// The tunnel went through the proxy after the direct handshakes failed on a certificate
/// (the direct path reaches something, an inspector): the proxy is the agent's way
/// around, not the only way out.
fn proxy_fallback(f: &Facts, c: &mut Candidate) {
    let (address, discovery) = use_proxy(f, c);
    c.assumptions.push(format!(
        "the direct path is inspected; the proxy {address} ({discovery}) is not, and the tunnel goes through it"
    ));
}

fn connect_interception(f: &Facts, c: &mut Candidate) {
    if c.plan.proxy.is_none() {
        let address = f.proxy.clone().unwrap_or_default();
        c.plan.proxy = Some((address, "manual".into()));
    }
    if f.flows
        .iter()
        .any(|x| connect_through_proxy(x) && x.verdict == "tunneled")
    {
        cause(
            c,
            "connect-interception",
            "apps send HTTP CONNECT to the on-prem proxy; managed hosts are taken into the tunnel",
        );
    }
}

fn captive_portal(f: &Facts, c: &mut Candidate) {
    c.plan.perimeter_firewall = vec!["allow dns".into(), "redirect any".into()];
    cause(
        c,
        "captive-portal",
        "the network redirects the web to a login portal",
    );
    // The user logged in after the last failed attempt before the tunnel came up.
    if let (Some(portal), Some(up)) = (f.captive_portal, f.connected_after(f.captive_portal)) {
        let failures = f
            .tls_failures
            .iter()
            .chain(&f.cert_failures)
            .chain(&f.dtls_failures)
            .map(|(s, _)| s.entry)
            .chain(f.disconnects.iter().map(|s| s.entry))
            .filter(|&e| e < up);
        let last = failures.max().unwrap_or(portal).max(portal);
        c.anchored.push(Anchored {
            after_entry: last,
            event: PlanEvent::Login,
            delay_ms: 1,
        });
    }
}

impl Facts {
    /// The entry of the first success of `method` (`resolved by`), from the log.
    fn success_entry(&self, method: &str) -> Option<usize> {
        self.successes
            .iter()
            .find(|(m, _)| m == method)
            .map(|&(_, e)| e)
    }

    /// The tunnel came up after `entry`.
    fn connected_after(&self, entry: Option<usize>) -> Option<usize> {
        let entry = entry?;
        self.connects.iter().copied().find(|&e| e > entry)
    }
}

/// The parts of the scenario the evidence fixes.
fn base_plan(f: &Facts, ev: &Evidence, base: Option<&Scenario>) -> Plan {
    let mut p = Plan {
        name: format!(
            "Diagnosed from {}",
            ev.files
                .first()
                .or(ev.captures.first().map(|c| &c.0))
                .map_or("evidence", |s| s)
        ),
        description: "Written by steerlab diagnose: the customer's evidence as a scenario.".into(),
        ..Plan::default()
    };
    if let Some(first) = ev.entries.first() {
        p.clock = Some(format!(
            "{}Z",
            first.time.replacen('/', "-", 2).replacen(' ', "T", 1)
        ))
        .filter(|c| crate::scenario::parse_clock(c).is_ok());
    }
    let tenant = ev.config.tenant.clone().or(f.tenant.clone());
    if let Some(t) =
        tenant.filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        p.tenant = t.to_ascii_lowercase();
    }
    p.region = f.region.clone();
    p.version = f.version.clone().map(|v| {
        if f.gslb_asked && version_below(&v, 96, 1) {
            "96.1".to_string()
        } else {
            v
        }
    });
    p.tunnel = f.first_proto.as_ref().map(|t| t.to_ascii_lowercase());
    p.fail_close = ev.config.fail_close.unwrap_or(false)
        || f.flows.iter().any(|x| x.reason.contains("fail close"));
    // PoPs: GSLB's list with the probed RTTs, or the address the client resolved.
    if f.gslb_asked && !f.rtt_probes.is_empty() {
        for (pop, ip, rtt) in &f.rtt_probes {
            p.pops.push(PlanPop {
                name: pop_name(pop, p.pops.len()),
                location: p.location.clone(),
                ip: ip.clone(),
                latency_ms: u64::from((*rtt / 2).max(1)),
                cert: None,
            });
        }
        p.gslb_order = f
            .gslb_pops
            .iter()
            .filter(|n| p.pops.iter().any(|x| x.name == **n))
            .cloned()
            .collect();
    } else if roams(f) {
        // The office's PoP first, then one per network roamed to.
        for (k, ip) in f.primary_ips.iter().enumerate() {
            p.pops.push(PlanPop {
                name: format!("pop{}", k + 1),
                location: if k == 0 {
                    p.location.clone()
                } else {
                    roamed_location(k)
                },
                ip: ip.clone(),
                latency_ms: 20,
                cert: None,
            });
        }
    } else {
        let ip = f
            .gateway_ip
            .clone()
            .filter(|ip| ip.parse::<std::net::Ipv4Addr>().is_ok())
            .unwrap_or_else(|| "8.36.116.35".into());
        let name = f
            .connected_host
            .as_deref()
            .filter(|_| f.gslb_asked)
            .and_then(|h| h.strip_prefix("gateway-"))
            .and_then(|h| h.split('.').next())
            .map_or("pop1".to_string(), |n| pop_name(n, 0));
        p.pops.push(PlanPop {
            name,
            location: p.location.clone(),
            ip,
            latency_ms: 20,
            cert: None,
        });
    }
    if let Some(ip) = f.backup_ip.clone().filter(|ip| {
        ip.parse::<std::net::Ipv4Addr>().is_ok() && !p.pops.iter().any(|x| x.ip == *ip)
    }) {
        p.backup = Some((ip, None));
    }
    if let Some(b) = base {
        adopt_base(&mut p, b);
    }
    steering_from_flows(f, ev, &mut p);
    p.events.push((0, PlanEvent::Start));
    // What the evidence shows at its end.
    p.expect_tunnel = Some(f.tunnel.clone());
    if f.tunnel != "down" {
        p.expect_resolved_by = f.resolved_by.clone();
        let on_backup = f.connected_host.as_deref().is_some_and(is_backup)
            || f.failover && f.connected_host.as_deref().is_none_or(str::is_empty);
        p.expect_gateway = if on_backup {
            Some("backup".into())
        } else {
            let ip = f.connected_ip.clone().or(f.gateway_ip.clone());
            p.pops
                .iter()
                .find(|x| Some(&x.ip) == ip.as_ref())
                .or(p.pops.first().filter(|_| p.pops.len() == 1))
                .map(|x| x.name.clone())
        };
    }
    p.expect_flows = f
        .flows
        .iter()
        .map(|x| ExpectFlow {
            process: x.process.clone(),
            host: x.host.clone(),
            verdict: x.verdict.clone(),
        })
        .collect();
    p
}

/// What `--scenario` already knows: its steering, PoPs, backup, origins, tenant and
/// client location (the evidence fills in the rest).
fn adopt_base(p: &mut Plan, s: &Scenario) {
    p.tenant = s.tenant.name.clone();
    p.location = s.client.location.clone();
    p.seed = s.seed;
    p.mode = Some(s.steering.mode.as_str().to_string());
    p.managed = s.steering.managed.clone();
    p.exceptions = s.steering.exceptions.clone();
    p.bypass_apps = s.steering.bypass_apps.clone();
    if !s.pops.is_empty() {
        p.pops = s
            .pops
            .iter()
            .map(|x| PlanPop {
                name: x.name.clone(),
                location: x.location.clone(),
                ip: x.ip.to_string(),
                latency_ms: u64::try_from(x.latency.as_millis()).unwrap_or(20),
                cert: None,
            })
            .collect();
    }
    for o in &s.origins {
        p.origins.push((o.host.clone(), o.ip.to_string()));
    }
}

fn version_below(v: &str, major: u32, minor: u32) -> bool {
    let mut parts = v.split('.').map(|x| x.parse::<u32>().unwrap_or(0));
    let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a, b) < (major, minor)
}

/// A PoP name the loader takes (not reserved, not empty).
fn pop_name(name: &str, index: usize) -> String {
    let clean: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    if clean.is_empty()
        || matches!(
            clean.as_str(),
            "backup" | "doh" | "ldns" | "gslb" | "proxy" | "pac"
        )
    {
        format!("pop{}", index + 1)
    } else {
        clean
    }
}

fn push_unique(v: &mut Vec<String>, item: &str) {
    if !item.is_empty() && !v.iter().any(|x| x.eq_ignore_ascii_case(item)) {
        v.push(item.to_string());
    }
}

/// Steering that gives every flow its verdict: tunneled and fail-close-blocked hosts are
/// managed, bypassed ones managed and excepted (or their app pinned), policy blocks at
/// the gateway.
fn steering_from_flows(f: &Facts, ev: &Evidence, p: &mut Plan) {
    for e in &ev.exceptions {
        push_unique(&mut p.exceptions, e);
    }
    for (process, action) in &ev.pinned_apps {
        let action = match action.as_str() {
            "block" => "block",
            "tunnel" => "tunnel",
            _ => "bypass",
        };
        if !p.pinned.iter().any(|(x, _)| x == process) {
            p.pinned.push((process.clone(), action.to_string()));
        }
    }
    let mut synthetic = 0u8;
    for flow in &f.flows {
        let name_host = flow.host.parse::<IpAddr>().is_err() && !flow.host.is_empty();
        match (flow.verdict.as_str(), flow.why.as_str()) {
            ("bypassed", "pinned") => {
                push_unique(&mut p.bypass_apps, &flow.process);
                if name_host {
                    push_unique(&mut p.managed, &flow.host);
                }
            }
            ("blocked", "pinned") => {
                if !p.pinned.iter().any(|(x, _)| *x == flow.process) {
                    p.pinned.push((flow.process.clone(), "block".into()));
                }
                if name_host {
                    push_unique(&mut p.managed, &flow.host);
                }
            }
            ("bypassed", "exception") => {
                push_unique(&mut p.managed, &flow.host);
                push_unique(&mut p.exceptions, &flow.host);
            }
            ("bypassed", "ip-exception") => push_unique(&mut p.exceptions, &flow.host),
            ("bypassed", "private") => {}
            ("blocked", "policy") => {
                if steers_by_managed(f, flow.entry) {
                    push_unique(&mut p.managed, &flow.host);
                }
                match policy_group(&flow.reason) {
                    Some((group, _)) => {
                        let target = if blocks_all(&flow.reason) {
                            "any"
                        } else {
                            &flow.host
                        };
                        let rule = format!("{target} for group:{group}");
                        push_unique(&mut p.policy_block, &rule);
                    }
                    None => push_unique(&mut p.policy_block, &flow.host),
                }
            }
            ("direct", _) if flow.reason.contains("not a managed") => {}
            // Outside cloud-apps mode, a tunneled flow says nothing of managed domains.
            _ if !steers_by_managed(f, flow.entry) => {}
            _ => {
                if name_host {
                    push_unique(&mut p.managed, &flow.host);
                }
            }
        }
        if !name_host {
            continue;
        }
        if p.origins
            .iter()
            .any(|(h, _)| h.eq_ignore_ascii_case(&flow.host))
        {
            continue;
        }
        let addr = flow.addr.parse::<SocketAddr>().ok();
        let ip = match addr {
            Some(a) if !connect_through_proxy(flow) => a.ip().to_string(),
            _ => {
                synthetic = synthetic.saturating_add(1);
                format!("198.51.100.{}", 9 + synthetic)
            }
        };
        if ip.parse::<std::net::Ipv4Addr>().is_ok() {
            p.origins.push((flow.host.clone(), ip));
        }
    }
    if f.flows.iter().any(|x| {
        x.verdict == "tunneled" && !connect_through_proxy(x) && flow_ip(x).is_some_and(is_private)
    }) {
        p.private_apps = true;
    }
    p.sni_check |= f.sni_check;
    if p.mode.is_none() {
        p.mode = ev
            .config
            .mode
            .clone()
            .or_else(|| mode_from_flows(&f.flows).map(str::to_string));
    }
}

/// The destination address a flow line shows.
fn flow_ip(flow: &Flow) -> Option<IpAddr> {
    match flow.addr.parse::<SocketAddr>() {
        Ok(a) => Some(a.ip()),
        Err(_) => flow.host.parse().ok(),
    }
}

fn is_private(ip: IpAddr) -> bool {
    agent::core::steer::is_private(ip)
}

/// The steering mode the flows show: `cloud-apps` when a flow went direct for not being
/// managed; `all` when a flow on a port other than 80 and 443 was tunneled or DNS was
/// not steered; else `web` (ports 80 and 443, by name or address alike).
fn mode_from_flows(flows: &[Flow]) -> Option<&'static str> {
    if flows.is_empty() {
        return None;
    }
    if flows.iter().any(|x| x.reason.contains("not a managed")) {
        return Some("cloud-apps");
    }
    let other_port = |x: &Flow| {
        x.addr
            .parse::<SocketAddr>()
            .is_ok_and(|a| a.port() != 80 && a.port() != 443)
    };
    let all = flows.iter().any(|x| {
        x.verdict == "tunneled" && !connect_through_proxy(x) && other_port(x)
            || x.reason.contains("DNS is not steered")
    });
    Some(if all { "all" } else { "web" })
}

/// The flows as connect events to place: host and port from the log (a CONNECT through
/// the proxy targets port 443 of its host).
fn flow_plans(f: &Facts, _plan: &Plan) -> Vec<FlowPlan> {
    f.flows
        .iter()
        .filter_map(|flow| {
            let through = connect_through_proxy(flow);
            let port = flow
                .addr
                .parse::<SocketAddr>()
                .map(|a| a.port())
                .ok()
                .filter(|_| !through)
                .unwrap_or(443);
            if flow.host.is_empty() {
                return None;
            }
            let process = if flow.process.is_empty() {
                "app.exe".to_string()
            } else {
                flow.process.clone()
            };
            Some(FlowPlan {
                entry: flow.entry,
                offset_ms: flow.offset_ms,
                process,
                target: format!("{}:{port}", flow.host),
                via_proxy: through,
                udp: !through && is_media_port(port),
            })
        })
        .collect()
}

/// Ports real-time media uses over UDP: STUN/TURN (3478-3481, also Teams), Zoom
/// (8801-8810), Google Meet (19302-19309). A flow on one is replayed as UDP.
fn is_media_port(port: u16) -> bool {
    matches!(port, 3478..=3481 | 8801..=8810 | 19302..=19309)
}
