//! PoP selection through the GSLB REST API (clients 96.1 and later): ask for the PoPs
//! near the client, TCP-probe up to [`MAX_PROBES`] of them, post the RTTs back, and
//! connect to the lowest-RTT PoP under its own name `gateway-<pop>.<domain>`; on connect
//! failure the next-best PoP, then the backup. Any failure of the API (timeout, reset,
//! HTTP error, malformed JSON, empty list) falls back to EDNS, then LDNS.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::{
    Action, Agent, HttpOutcome, Level, Method, NetError, OpId, Phase, Role, Target, Timer,
};
use super::{GSLB_TIMEOUT, MAX_PROBES, PROBE_TIMEOUT};

/// Probes in flight for one GSLB answer.
#[derive(Debug)]
pub(super) struct Probing {
    role: Role,
    candidates: Vec<Candidate>,
}

#[derive(Debug)]
struct Candidate {
    pop: String,
    ip: Ipv4Addr,
    op: OpId,
    sent: Instant,
    rtt: Option<Duration>,
    done: bool,
}

impl Probing {
    /// Probes still waiting for an answer.
    pub(super) fn pending_ops(&self) -> Vec<OpId> {
        self.candidates
            .iter()
            .filter(|c| !c.done)
            .map(|c| c.op)
            .collect()
    }
}

/// Reads the API's answer: `{"pops": [{"name": "nyc1", "ip": "8.36.116.35"}, ...]}`.
pub fn parse_pop_list(body: &[u8]) -> Result<Vec<(String, Ipv4Addr)>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}"))?;
    let pops = value
        .get("pops")
        .and_then(|p| p.as_array())
        .ok_or("no `pops` list in the answer")?;
    let mut out = Vec::new();
    for (i, pop) in pops.iter().enumerate() {
        let name = pop
            .get("name")
            .and_then(|n| n.as_str())
            .ok_or(format!("pops[{i}] has no name"))?;
        let ip = pop
            .get("ip")
            .and_then(|n| n.as_str())
            .and_then(|s| s.parse::<Ipv4Addr>().ok())
            .ok_or(format!("pops[{i}] has no IPv4 address"))?;
        out.push((name.to_string(), ip));
    }
    if out.is_empty() {
        return Err("empty PoP list".to_string());
    }
    Ok(out)
}

impl Agent {
    /// Asks the GSLB API for the PoP list.
    pub(super) fn start_gslb(&mut self, op: OpId, now: Instant) {
        let name = self.config.gslb_name.clone();
        self.log(
            Level::Info,
            "restapi",
            format!("Requesting the PoP list from {name}"),
        );
        self.push(Action::QueryGslb {
            op,
            server_name: name,
            addr: self.config.gslb_addr,
            path: format!("/v1/pops?tenant={}", self.config.tenant),
        });
        self.timers.insert(Timer::GslbTimeout, now + GSLB_TIMEOUT);
    }

    /// The GSLB API answered (or failed).
    pub fn handle_gslb(&mut self, op: OpId, outcome: HttpOutcome, now: Instant) {
        let Phase::Resolving(r) = &self.phase else {
            return;
        };
        if r.op != op || self.methods[r.method_index] != Method::Gslb {
            return;
        }
        let role = r.role;
        self.timers.remove(&Timer::GslbTimeout);
        let list = match outcome {
            HttpOutcome::Failed(err) => Err(err.to_string()),
            HttpOutcome::Response { status, body } if status != 200 => {
                let text = String::from_utf8_lossy(&body)
                    .chars()
                    .take(120)
                    .collect::<String>();
                Err(format!("HTTP status {status}: {}", text.trim()))
            }
            HttpOutcome::Response { body, .. } => parse_pop_list(&body),
        };
        match list {
            Ok(pops) => self.start_probes(role, pops, now),
            Err(why) => self.gslb_failed(&why, now),
        }
    }

    /// A probe connected (`Ok`) or failed.
    pub fn handle_probe(&mut self, op: OpId, result: Result<(), NetError>, now: Instant) {
        let Phase::Probing(p) = &mut self.phase else {
            return;
        };
        let Some(c) = p.candidates.iter_mut().find(|c| c.op == op && !c.done) else {
            return;
        };
        c.done = true;
        let line = match result {
            Ok(()) => {
                let rtt = now.saturating_duration_since(c.sent);
                c.rtt = Some(rtt);
                format!(
                    "post client rtt pop:{} ip:{} rtt:{}",
                    c.pop,
                    c.ip,
                    rtt.as_millis()
                )
            }
            Err(err) => format!("RTT probe of pop:{} ip:{} failed: {err}", c.pop, c.ip),
        };
        let all_done = p.candidates.iter().all(|c| c.done);
        self.log(Level::Info, "restapi", line);
        if all_done {
            self.probes_done(now);
        }
    }

    /// The GSLB request timed out.
    pub(super) fn gslb_timed_out(&mut self, now: Instant) {
        if let Phase::Resolving(r) = &self.phase {
            let op = r.op;
            self.push(Action::Cancel { op });
            self.gslb_failed(&format!("no answer in {}s", GSLB_TIMEOUT.as_secs()), now);
        }
    }

    /// Probing time is over: use what answered.
    pub(super) fn probes_done(&mut self, now: Instant) {
        self.timers.remove(&Timer::ProbeDeadline);
        let Phase::Probing(p) = std::mem::replace(&mut self.phase, Phase::Idle) else {
            return;
        };
        for op in p.pending_ops() {
            self.push(Action::Cancel { op });
        }
        let mut measured: Vec<&Candidate> =
            p.candidates.iter().filter(|c| c.rtt.is_some()).collect();
        // Lowest RTT first; GSLB's own order breaks ties (a stable sort keeps it).
        measured.sort_by_key(|c| c.rtt);
        if measured.is_empty() {
            // Nothing answered: back to the resolution chain after GSLB.
            self.phase = Phase::Resolving(super::Resolving {
                role: p.role,
                method_index: 0,
                op: OpId(0),
                query_id: 0,
                tries: 0,
                transport: super::DnsTransport::Udp,
            });
            return self.gslb_failed("no PoP answered the RTT probe", now);
        }
        let rtts: Vec<String> = measured
            .iter()
            .map(|c| {
                format!(
                    "{{\"pop\":\"{}\",\"ip\":\"{}\",\"rtt_ms\":{}}}",
                    c.pop,
                    c.ip,
                    c.rtt.unwrap_or_default().as_millis()
                )
            })
            .collect();
        self.push(Action::PostGslbRtt {
            server_name: self.config.gslb_name.clone(),
            addr: self.config.gslb_addr,
            path: format!("/v1/rtt?tenant={}", self.config.tenant),
            body: format!("{{\"rtts\":[{}]}}", rtts.join(",")).into_bytes(),
        });
        let port = self.config.gateway_port;
        let domain = self.names.domain.clone();
        let mut targets = measured.iter().map(|c| Target {
            role: p.role,
            method: Method::Gslb,
            name: format!("gateway-{}.{domain}", c.pop),
            addr: SocketAddr::from((c.ip, port)),
            proxy: None,
        });
        let Some(best) = targets.next() else { return };
        let rest = targets.collect();
        self.log(
            Level::Info,
            "dnsResolver",
            format!("Hostname {} resolved by GSLB", best.name),
        );
        self.connect(best, rest, now);
    }

    fn start_probes(&mut self, role: Role, pops: Vec<(String, Ipv4Addr)>, now: Instant) {
        let names: Vec<&str> = pops.iter().map(|(n, _)| n.as_str()).collect();
        self.log(
            Level::Info,
            "restapi",
            format!("GSLB returned {} PoP(s): {}", pops.len(), names.join(", ")),
        );
        let mut candidates = Vec::new();
        for (pop, ip) in pops.into_iter().take(MAX_PROBES) {
            let op = self.new_op();
            let addr = SocketAddr::from((ip, self.config.gateway_port));
            self.push(Action::Probe { op, addr });
            candidates.push(Candidate {
                pop,
                ip,
                op,
                sent: now,
                rtt: None,
                done: false,
            });
        }
        self.phase = Phase::Probing(Probing { role, candidates });
        self.timers
            .insert(Timer::ProbeDeadline, now + PROBE_TIMEOUT);
    }

    fn gslb_failed(&mut self, why: &str, now: Instant) {
        self.log(
            Level::Error,
            "restapi",
            format!("Failed to get the PoP list from GSLB, Error: {why}"),
        );
        self.method_failed(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pop_lists_parse_or_say_why_not() {
        let ok =
            br#"{"pops":[{"name":"nyc1","ip":"8.36.116.35"},{"name":"fra1","ip":"8.36.117.35"}]}"#;
        assert_eq!(parse_pop_list(ok).unwrap().len(), 2);
        assert!(parse_pop_list(b"{").unwrap_err().contains("malformed JSON"));
        assert_eq!(
            parse_pop_list(br#"{"pops":[]}"#).unwrap_err(),
            "empty PoP list"
        );
        assert!(
            parse_pop_list(br#"{"pops":[{"name":"x"}]}"#)
                .unwrap_err()
                .contains("no IPv4")
        );
        assert!(
            parse_pop_list(br#"[1,2]"#)
                .unwrap_err()
                .contains("no `pops`")
        );
    }
}
