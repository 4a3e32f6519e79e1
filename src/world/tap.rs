//! A capture at every host: what crossed turmoil's network, read between steps.
//!
//! The endpoint's own capture ([`crate::pcap::export::Recorder`] on its sockets) shows
//! what the laptop did, firewall drops included. This tap shows the network from the
//! other side: after every step the driver shows it the messages in flight on every
//! link, and each message seen for the first time is recorded at both of its hosts
//! (the gateway's relay to origins, the proxy's upstream connections, the resolver's
//! answers...). One file per host.
//!
//! What turmoil carries is a simplification of TCP: a SYN (its answer is not a message,
//! so the tap writes the handshake when it sees the SYN), data segments, FIN and RST. A
//! connect refused by a host with no listener therefore looks accepted here; the
//! endpoint's capture has the truth for the endpoint. A message is new when it was not
//! in flight after the previous step: data segments and FINs by their sequence numbers,
//! SYNs and RSTs by their addresses, datagrams by their buffer. Every link has at least
//! one tick of latency, so every message is in flight after at least one step.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent::shell::KeyLogLines;
use turmoil::{Protocol, Segment};

use crate::pcap::export::Recorder;

/// One message's identity while it is in flight.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Seen {
    Syn(SocketAddr, SocketAddr),
    Data(SocketAddr, SocketAddr, u64),
    Fin(SocketAddr, SocketAddr, u64),
    Rst(SocketAddr, SocketAddr),
    /// A datagram: its addresses, length and buffer address (unique while in flight).
    Udp(SocketAddr, SocketAddr, usize, usize),
}

/// The recorders of every host, filled while the world runs.
#[derive(Debug, Clone, Default)]
pub struct HostTap(Arc<Mutex<TapState>>);

#[derive(Debug, Default)]
struct TapState {
    /// A recorder per host address, with the host's name.
    hosts: BTreeMap<Ipv4Addr, (String, Recorder)>,
    /// Messages in flight after the previous step.
    in_flight: BTreeSet<Seen>,
    /// Which side of each TCP connection sent the SYN: (client, server).
    clients: BTreeSet<(SocketAddr, SocketAddr)>,
    /// The run's TLS secrets, shared by every host's recorder (each file keeps the
    /// sessions it shows).
    keys: Arc<KeyLogLines>,
}

impl HostTap {
    /// An empty tap; the world names its hosts when it starts.
    pub fn new() -> HostTap {
        HostTap::default()
    }

    /// Gives every host (address, file name, comment names) its recorder.
    pub(crate) fn name_hosts(
        &self,
        hosts: &[(Ipv4Addr, String)],
        names: &BTreeMap<Ipv4Addr, String>,
    ) {
        if let Ok(mut state) = self.0.lock() {
            for (ip, label) in hosts {
                let recorder = Recorder::new(*ip).with_key_log(state.keys.clone());
                recorder.name_hosts(names.clone());
                state.hosts.insert(*ip, (label.clone(), recorder));
            }
        }
    }

    /// Where the world's TLS ends log their secrets for the hosts' captures.
    pub fn key_log(&self) -> Arc<dyn rustls::KeyLog> {
        match self.0.lock() {
            Ok(state) => state.keys.clone(),
            Err(_) => Arc::new(KeyLogLines::new()),
        }
    }

    /// Records what is newly in flight in `sim` at simulated time `at`.
    pub(crate) fn observe(&self, sim: &turmoil::Sim<'_>, at: Duration) {
        let Ok(mut state) = self.0.lock() else {
            return;
        };
        let mut now = BTreeSet::new();
        let mut fresh = Vec::new();
        sim.links(|links| {
            for link in links {
                for sent in link {
                    let (src, dst) = sent.pair();
                    let seen = identity(src, dst, sent.protocol());
                    if !state.in_flight.contains(&seen) {
                        fresh.push((seen.clone(), payload(sent.protocol())));
                    }
                    now.insert(seen);
                }
            }
        });
        // In the order walked: links as registered, messages as sent (deterministic).
        for (seen, bytes) in fresh {
            state.record(at, &seen, &bytes);
        }
        state.in_flight = now;
    }

    /// Every host's label and its capture as pcapng, timestamps `epoch` + offset.
    pub fn to_pcapng(&self, epoch: Duration) -> Vec<(String, Vec<u8>)> {
        let Ok(state) = self.0.lock() else {
            return Vec::new();
        };
        state
            .hosts
            .values()
            .map(|(label, rec)| (label.clone(), rec.to_pcapng(epoch)))
            .collect()
    }
}

impl TapState {
    fn record(&mut self, at: Duration, seen: &Seen, bytes: &[u8]) {
        let note = |src: &SocketAddr, dst: &SocketAddr, hosts: &BTreeMap<_, (String, _)>| {
            let name = |a: &SocketAddr| match a.ip() {
                IpAddr::V4(v4) => hosts
                    .get(&v4)
                    .map_or_else(|| a.to_string(), |(l, _): &(String, Recorder)| l.clone()),
                IpAddr::V6(_) => a.to_string(),
            };
            Some(Arc::from(format!(
                "{} to {}, as the network carried it",
                name(src),
                name(dst)
            )))
        };
        match seen {
            Seen::Syn(c, s) => {
                self.clients.insert((*c, *s));
                let n = note(c, s, &self.hosts);
                for rec in self.at_both(c, s) {
                    rec.connected(at, *c, *s, n.clone());
                }
            }
            Seen::Data(src, dst, _) => {
                let (c, s, outbound) = self.orient(src, dst);
                for rec in self.at_both(src, dst) {
                    rec.data(at, c, s, outbound, bytes);
                }
            }
            Seen::Fin(src, dst, _) => {
                let (c, s, outbound) = self.orient(src, dst);
                // The capture's TCP story closes when the client does.
                if outbound {
                    for rec in self.at_both(src, dst) {
                        rec.closed(at, c, s);
                    }
                    self.clients.remove(&(c, s));
                }
            }
            Seen::Rst(src, dst) => {
                let (c, s, _) = self.orient(src, dst);
                for rec in self.at_both(src, dst) {
                    rec.closed(at, c, s);
                }
                self.clients.remove(&(c, s));
            }
            Seen::Udp(src, dst, _, _) => {
                let n = note(src, dst, &self.hosts);
                for rec in self.at_both(src, dst) {
                    rec.datagram(at, *src, *dst, bytes, n.clone());
                }
            }
        }
    }

    /// (client, server, whether `src` is the client) for a segment from `src` to `dst`.
    fn orient(&self, src: &SocketAddr, dst: &SocketAddr) -> (SocketAddr, SocketAddr, bool) {
        if self.clients.contains(&(*dst, *src)) {
            (*dst, *src, false)
        } else {
            (*src, *dst, true)
        }
    }

    /// The recorders of the two hosts (one when both ends are the same host).
    fn at_both(&self, a: &SocketAddr, b: &SocketAddr) -> Vec<Recorder> {
        let mut out = Vec::new();
        for addr in [a, b] {
            if let IpAddr::V4(v4) = addr.ip()
                && let Some((_, rec)) = self.hosts.get(&v4)
                && !out.iter().any(|r: &Recorder| r.same_as(rec))
            {
                out.push(rec.clone());
            }
        }
        out
    }
}

fn identity(src: SocketAddr, dst: SocketAddr, protocol: &Protocol) -> Seen {
    match protocol {
        Protocol::Tcp(Segment::Syn(_)) => Seen::Syn(src, dst),
        Protocol::Tcp(Segment::Data(seq, _)) => Seen::Data(src, dst, *seq),
        Protocol::Tcp(Segment::Fin(seq)) => Seen::Fin(src, dst, *seq),
        Protocol::Tcp(Segment::Rst) => Seen::Rst(src, dst),
        Protocol::Udp(d) => Seen::Udp(src, dst, d.0.len(), d.0.as_ptr() as usize),
    }
}

fn payload(protocol: &Protocol) -> Vec<u8> {
    match protocol {
        Protocol::Tcp(Segment::Data(_, bytes)) => bytes.to_vec(),
        Protocol::Udp(d) => d.0.to_vec(),
        Protocol::Tcp(_) => Vec::new(),
    }
}
