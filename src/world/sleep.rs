//! Idle servers cost nothing: a server host nobody talks to stops being ticked, and
//! wakes before a message reaches it.
//!
//! turmoil ticks every running host on every 1 ms step, whether anything happens on it
//! or not: that is the whole cost of a quiet world (docs/performance.md). Between steps,
//! [`Sleeper::observe`] reads the messages in flight on turmoil's links (as the host
//! capture does) and keeps, per server host, its open TCP connections (a SYN opens one,
//! a FIN from each end or a reset closes it), when it last sent or received anything,
//! and when it last saw a datagram. A server host with no open connection, nothing in
//! flight to or from it, quiet for [`QUIET`] and with no datagram for the UDP linger,
//! has no state a peer could notice, so it is crashed (turmoil stops ticking it). A
//! message in flight to a sleeping host bounces it (turmoil starts its software again,
//! which binds its sockets on the next tick), before the message is due: every link of a
//! sleeping host is at least two ticks long. When the shortest such link is longer, the
//! links are read every `shortest - 1` ticks rather than on every one: a message is in
//! flight for its link's whole latency, so it is still seen in time to wake its host,
//! and every TCP segment to or from a sleeping host is still seen at least once. Servers keep what outlives a connection
//! (zones, GSLB and tenant state, policies, TLS configurations and their seeded
//! randomness) outside their software, so a bounced server answers as before.
//!
//! Gateways that have seen a datagram stay awake for good: a DTLS session lives inside
//! the gateway's software. Endpoints never sleep.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use turmoil::{Protocol, Segment};

/// How long a server host must have been silent before it sleeps.
pub const QUIET: Duration = Duration::from_millis(100);

/// One server host's activity.
#[derive(Debug, Default)]
struct Host {
    asleep: bool,
    /// When it last sent or received a message.
    last_seen: Duration,
    /// When it last sent or received a datagram.
    last_datagram: Option<Duration>,
    /// Never sleeps again (a gateway that saw a datagram: its DTLS sessions).
    awake_for_good: bool,
    /// Datagrams make it stay awake for good rather than for the linger.
    keeps_datagram_state: bool,
}

/// The sleeping and waking of a world's server hosts.
#[derive(Debug, Default)]
pub struct Sleeper {
    hosts: BTreeMap<Ipv4Addr, Host>,
    /// Open TCP connections, each pair ordered, with whether each end (lower address,
    /// higher address) has sent its FIN.
    open: BTreeMap<(SocketAddr, SocketAddr), (bool, bool)>,
    /// How long after a datagram a host stays awake (the longest a server may take to
    /// answer one, with a margin).
    linger: Duration,
    /// The hosts at either end of an open connection (kept with `open`).
    connected: BTreeSet<Ipv4Addr>,
    /// Hosts with a message in flight after the last step, and whether it was to them
    /// (a buffer kept between steps).
    busy: Vec<(Ipv4Addr, bool)>,
    /// Hosts crashed and bounced so far (for the figures).
    naps: u64,
    /// The links are read on every `stride`-th step.
    stride: u32,
    /// Steps since they were last read.
    since: u32,
}

impl Sleeper {
    /// A sleeper for `hosts` (each server host, with whether a datagram to it carries
    /// state its software keeps, as a gateway's DTLS does); hosts not listed never
    /// sleep. `linger`: how long a host stays awake after a datagram. `shortest`: the
    /// shortest link any of those hosts has, in ticks (at least 2).
    pub fn new(
        hosts: impl IntoIterator<Item = (Ipv4Addr, bool)>,
        linger: Duration,
        shortest: u32,
    ) -> Sleeper {
        Sleeper {
            hosts: hosts
                .into_iter()
                .map(|(ip, keeps)| {
                    let host = Host {
                        keeps_datagram_state: keeps,
                        ..Host::default()
                    };
                    (ip, host)
                })
                .collect(),
            linger,
            stride: shortest.saturating_sub(1).max(1),
            ..Sleeper::default()
        }
    }

    /// No host sleeps (the baseline the benchmarks compare against).
    pub fn never() -> Sleeper {
        Sleeper::default()
    }

    /// The hosts asleep now.
    pub fn asleep(&self) -> Vec<Ipv4Addr> {
        self.hosts
            .iter()
            .filter(|(_, h)| h.asleep)
            .map(|(ip, _)| *ip)
            .collect()
    }

    /// How many times a host went to sleep.
    pub fn naps(&self) -> u64 {
        self.naps
    }

    /// Reads the messages in flight after a step at `now`; wakes the sleeping hosts a
    /// message is on its way to, and puts to sleep the hosts that have nothing going on.
    pub fn observe(&mut self, sim: &mut turmoil::Sim<'_>, now: Duration) {
        if self.hosts.is_empty() {
            return;
        }
        self.since += 1;
        if self.since < self.stride {
            return;
        }
        self.since = 0;
        // Most steps have nothing in flight to or from a server: no allocation then.
        self.busy.clear();
        let hosts = &mut self.hosts;
        let open = &mut self.open;
        let busy = &mut self.busy;
        let mut opened_or_closed = false;
        sim.links(|links| {
            for link in links {
                for sent in link {
                    let (src, dst) = sent.pair();
                    let datagram = matches!(sent.protocol(), Protocol::Udp(_));
                    for (addr, inbound) in [(src, false), (dst, true)] {
                        let IpAddr::V4(ip) = addr.ip() else {
                            continue;
                        };
                        let Some(host) = hosts.get_mut(&ip) else {
                            continue;
                        };
                        busy.push((ip, inbound));
                        host.last_seen = now;
                        if datagram {
                            host.last_datagram = Some(now);
                            host.awake_for_good |= host.keeps_datagram_state;
                        }
                    }
                    if let Protocol::Tcp(segment) = sent.protocol() {
                        opened_or_closed |= track(open, src, dst, segment);
                    }
                }
            }
        });
        if opened_or_closed {
            self.connected = self
                .open
                .keys()
                .flat_map(|(a, b)| [a.ip(), b.ip()])
                .filter_map(|ip| match ip {
                    IpAddr::V4(v4) => Some(v4),
                    IpAddr::V6(_) => None,
                })
                .collect();
        }
        for (ip, host) in &mut self.hosts {
            if host.asleep {
                if self.busy.iter().any(|(b, inbound)| b == ip && *inbound) {
                    sim.bounce(IpAddr::V4(*ip));
                    host.asleep = false;
                }
                continue;
            }
            if host.awake_for_good || now.saturating_sub(host.last_seen) < QUIET {
                continue;
            }
            let no_datagram = host
                .last_datagram
                .is_none_or(|at| now.saturating_sub(at) >= self.linger);
            if no_datagram
                && !self.busy.iter().any(|(b, _)| b == ip)
                && !self.connected.contains(ip)
            {
                sim.crash(IpAddr::V4(*ip));
                host.asleep = true;
                self.naps += 1;
            }
        }
    }
}

/// Keeps `open` up to date with one TCP segment from `src` to `dst` (seen once or more
/// while in flight: every update is idempotent); says whether a connection opened or
/// closed.
fn track(
    open: &mut BTreeMap<(SocketAddr, SocketAddr), (bool, bool)>,
    src: SocketAddr,
    dst: SocketAddr,
    segment: &Segment,
) -> bool {
    let key = if src <= dst { (src, dst) } else { (dst, src) };
    let from_low = src <= dst;
    match segment {
        Segment::Syn(_) => open
            .insert(key, open.get(&key).copied().unwrap_or_default())
            .is_none(),
        Segment::Data(..) => false,
        Segment::Fin(_) => {
            let Some(fins) = open.get_mut(&key) else {
                return false;
            };
            if from_low {
                fins.0 = true;
            } else {
                fins.1 = true;
            }
            let closed = fins.0 && fins.1;
            if closed {
                open.remove(&key);
            }
            closed
        }
        Segment::Rst => open.remove(&key).is_some(),
    }
}
