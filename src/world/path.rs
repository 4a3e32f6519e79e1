//! The network path between the endpoint and everything else: the host firewall, then
//! the perimeter firewall, then partitions. turmoil has no per-port filtering and refuses
//! TCP at once across a partition, so these rules live here, around the endpoint's
//! sockets.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use crate::scenario::{FirewallPlace, Rule, RuleAction, RuleProto, RuleTarget};

use super::registry::Registry;

/// The transport of a packet or connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// What the path does with a connection or datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through.
    Pass,
    /// Drop it silently: a TCP connect hangs until the caller's timeout.
    Drop {
        /// Which rule, for the timeline.
        why: String,
    },
    /// Refuse it: TCP RST or ICMP unreachable.
    Refuse {
        /// Which rule, for the timeline.
        why: String,
    },
    /// Capture it (a captive portal): TCP 80 and 443 go to the portal, which answers
    /// HTTP with a 302 to its login page and presents its own certificate on 443.
    Redirect {
        /// Which rule, for the timeline.
        why: String,
    },
    /// Intercept it: TLS on TCP 443 goes to the firewall's inspection proxy, which
    /// re-signs with its own CA and re-originates. Anything else passes.
    Inspect {
        /// Which rule, for the timeline.
        why: String,
    },
    /// DNS (port 53) goes to the site's own resolver, which answers in the name of the
    /// server it was sent to.
    InterceptDns {
        /// Which rule, for the timeline.
        why: String,
    },
}

/// The endpoint's network path.
#[derive(Debug, Clone, Default)]
pub struct Path {
    host_rules: Vec<Rule>,
    perimeter_rules: Vec<Rule>,
    partitioned: BTreeSet<Ipv4Addr>,
    /// The largest IPv4 packet the path carries (UDP datagrams above it are dropped).
    mtu: Option<u32>,
    /// Share of UDP datagrams lost, and the seeded RNG that draws the losses.
    udp_loss: f64,
    rng: Option<fastrand::Rng>,
    /// Without direct egress, only private addresses and this proxy are reachable.
    proxy_only: Option<Ipv4Addr>,
    /// The user logged in at the captive portal: `redirect` rules no longer apply.
    logged_in: bool,
}

/// IPv4 plus UDP headers, added to a payload to compare it with the path MTU.
const UDP_OVERHEAD: usize = 28;

impl Path {
    /// A path with the scenario's rule lists.
    pub fn new(host_rules: Vec<Rule>, perimeter_rules: Vec<Rule>) -> Path {
        Path {
            host_rules,
            perimeter_rules,
            partitioned: BTreeSet::new(),
            mtu: None,
            udp_loss: 0.0,
            rng: None,
            proxy_only: None,
            logged_in: false,
        }
    }

    /// No direct egress: only private addresses and `proxy` are reachable.
    pub fn with_proxy_only(mut self, proxy: Ipv4Addr) -> Path {
        self.proxy_only = Some(proxy);
        self
    }

    /// Sets the path MTU and the UDP loss rate (drawn from an RNG seeded with `seed`).
    pub fn with_udp_limits(mut self, mtu: Option<u32>, udp_loss: f64, seed: u64) -> Path {
        self.mtu = mtu;
        self.udp_loss = udp_loss;
        self.rng = Some(fastrand::Rng::with_seed(seed ^ 0x0D0B_1E55));
        self
    }

    /// Whether a UDP datagram with `payload` bytes is lost on the way (too big for the
    /// path MTU, or drawn as lost).
    pub fn udp_lost(&mut self, payload: usize) -> Option<&'static str> {
        if self
            .mtu
            .is_some_and(|mtu| payload + UDP_OVERHEAD > mtu as usize)
        {
            return Some("larger than the path MTU");
        }
        if self.udp_loss > 0.0 && self.rng.as_mut().is_some_and(|r| r.f64() < self.udp_loss) {
            return Some("lost");
        }
        None
    }

    /// Adds a rule at run time; it goes first, so it wins over the scenario's rules.
    pub fn add_rule(&mut self, place: FirewallPlace, rule: Rule) {
        match place {
            FirewallPlace::Host => self.host_rules.insert(0, rule),
            FirewallPlace::Perimeter => self.perimeter_rules.insert(0, rule),
        }
    }

    /// The endpoint left its network: the old perimeter's rules no longer apply (its own
    /// host firewall stays).
    pub fn leave_perimeter(&mut self) {
        self.perimeter_rules.clear();
    }

    /// The user logged in at the captive portal: from now on `redirect` rules are
    /// skipped (the next rule, or none, decides).
    pub fn log_in(&mut self) {
        self.logged_in = true;
    }

    /// Cuts `ip` off (or heals it).
    pub fn set_partitioned(&mut self, ip: Ipv4Addr, cut: bool) {
        if cut {
            self.partitioned.insert(ip);
        } else {
            self.partitioned.remove(&ip);
        }
    }

    /// Whether `ip` is cut off.
    pub fn is_partitioned(&self, ip: Ipv4Addr) -> bool {
        self.partitioned.contains(&ip)
    }

    /// What happens to traffic from the endpoint to `dst:port` over `transport`.
    pub fn check(
        &self,
        registry: &Registry,
        transport: Transport,
        dst: Ipv4Addr,
        port: u16,
    ) -> Verdict {
        for (place, rules) in [
            ("host firewall", &self.host_rules),
            ("perimeter firewall", &self.perimeter_rules),
        ] {
            if let Some(rule) = rules.iter().find(|r| {
                !(self.logged_in && r.action == RuleAction::Redirect)
                    && matches(r, registry, transport, dst, port)
            }) {
                let why = format!("{place} rule `{rule}`");
                match rule.action {
                    RuleAction::Allow => {}
                    RuleAction::Block => return Verdict::Drop { why },
                    RuleAction::Reset => return Verdict::Refuse { why },
                    RuleAction::Inspect if transport == Transport::Tcp && port == 443 => {
                        if self.partitioned.contains(&dst) {
                            return Verdict::Drop {
                                why: "partition".to_string(),
                            };
                        }
                        return Verdict::Inspect { why };
                    }
                    // UDP (DTLS) cannot be intercepted: it passes on to the next rule.
                    RuleAction::Inspect => {}
                    RuleAction::Redirect
                        if transport == Transport::Tcp && matches!(port, 80 | 443) =>
                    {
                        return Verdict::Redirect { why };
                    }
                    // A portal lets nothing else out until the user logs in.
                    RuleAction::Redirect => return Verdict::Drop { why },
                    RuleAction::Intercept if port == 53 => {
                        return Verdict::InterceptDns { why };
                    }
                    // Only DNS is intercepted: anything else goes on to the next rule.
                    RuleAction::Intercept => {}
                }
            }
        }
        if self.partitioned.contains(&dst) {
            return Verdict::Drop {
                why: "partition".to_string(),
            };
        }
        if let Some(proxy) = self.proxy_only
            && dst != proxy
            && !dst.is_private()
        {
            return Verdict::Drop {
                why: "no direct egress".to_string(),
            };
        }
        Verdict::Pass
    }
}

/// Whether `rule` covers this traffic.
pub fn matches(
    rule: &Rule,
    registry: &Registry,
    transport: Transport,
    dst: Ipv4Addr,
    port: u16,
) -> bool {
    let proto_ok = match rule.proto {
        RuleProto::Any => true,
        RuleProto::Tcp => transport == Transport::Tcp,
        RuleProto::Udp => transport == Transport::Udp,
        RuleProto::Dns => port == 53,
    };
    let port_ok = rule.port.is_none_or(|p| p == port);
    let target_ok = match &rule.target {
        None => true,
        Some(RuleTarget::Ip(IpAddr::V4(ip))) => *ip == dst,
        Some(RuleTarget::Ip(IpAddr::V6(_))) => false,
        Some(RuleTarget::Cidr(net)) => net.contains(&IpAddr::V4(dst)),
        Some(RuleTarget::Host(name)) => {
            names_of(registry, dst).any(|n| n.eq_ignore_ascii_case(name))
        }
        Some(RuleTarget::Wildcard(suffix)) => names_of(registry, dst).any(|n| is_under(n, suffix)),
    };
    proto_ok && port_ok && target_ok
}

fn names_of(registry: &Registry, ip: Ipv4Addr) -> impl Iterator<Item = &str> {
    registry
        .at(ip)
        .into_iter()
        .flat_map(|h| h.dns_names.iter().map(String::as_str))
}

/// `*.suffix` matches names strictly below `suffix`, not `suffix` itself.
fn is_under(name: &str, suffix: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let suffix = suffix.trim_end_matches('.').to_ascii_lowercase();
    name.len() > suffix.len() + 1
        && name.ends_with(&suffix)
        && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::registry::{HostEntry, Role};

    fn registry() -> Registry {
        let mut r = Registry::default();
        r.add(
            Ipv4Addr::new(8, 36, 116, 35),
            HostEntry {
                role: Role::Pop("nyc1".into()),
                label: "nyc1".into(),
                dns_names: vec!["gateway-acme.goskope.com".into()],
            },
        )
        .unwrap();
        r.add(
            Ipv4Addr::new(8, 8, 8, 8),
            HostEntry {
                role: Role::Doh,
                label: "doh".into(),
                dns_names: vec!["dns.google".into()],
            },
        )
        .unwrap();
        r
    }

    fn rule(text: &str) -> Rule {
        Rule::parse(text).unwrap()
    }

    #[test]
    fn first_match_wins_and_default_is_pass() {
        let path = Path::new(
            vec![rule("allow tcp/443 to *.goskope.com"), rule("block any")],
            vec![],
        );
        let r = registry();
        assert_eq!(
            path.check(&r, Transport::Tcp, Ipv4Addr::new(8, 36, 116, 35), 443),
            Verdict::Pass
        );
        assert!(matches!(
            path.check(&r, Transport::Tcp, Ipv4Addr::new(8, 8, 8, 8), 443),
            Verdict::Drop { .. }
        ));
        assert_eq!(
            Path::default().check(&r, Transport::Udp, Ipv4Addr::new(8, 8, 8, 8), 53),
            Verdict::Pass
        );
    }

    #[test]
    fn wildcard_does_not_match_the_bare_domain() {
        assert!(is_under("gateway-acme.goskope.com", "goskope.com"));
        assert!(!is_under("goskope.com", "goskope.com"));
        assert!(!is_under("evilgoskope.com", "goskope.com"));
    }

    #[test]
    fn reset_refuses_and_dns_means_port_53() {
        let path = Path::new(vec![], vec![rule("reset dns")]);
        let r = registry();
        assert!(matches!(
            path.check(&r, Transport::Udp, Ipv4Addr::new(8, 8, 8, 8), 53),
            Verdict::Refuse { .. }
        ));
        assert_eq!(
            path.check(&r, Transport::Tcp, Ipv4Addr::new(8, 8, 8, 8), 443),
            Verdict::Pass
        );
    }
}
