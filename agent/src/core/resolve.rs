//! Resolving the gateway: the method chain (GSLB is in `gslb.rs`), DNS over HTTPS with
//! ECS, the local resolver with retries and TCP on truncation, and the failures the real
//! client logs for each.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use super::dns::{self, Answer};
use super::*;

impl Agent {
    /// A DNS-over-HTTPS exchange finished.
    pub fn handle_doh(&mut self, op: OpId, outcome: HttpOutcome, now: Instant) {
        let Phase::Resolving(r) = &self.phase else {
            return;
        };
        if r.op != op || self.methods[r.method_index] != Method::Edns {
            return;
        }
        let query_id = r.query_id;
        self.timers.remove(&Timer::DohTimeout);
        match outcome {
            HttpOutcome::Failed(err) => {
                let (code, text) = curl_error(&err);
                self.log(
                    Level::Error,
                    "downloader",
                    format!("curl_easy_perform failed, code {code}, error {text}"),
                );
                self.edns_failed(now);
            }
            HttpOutcome::Response { status, .. } if status != 200 => {
                self.log(
                    Level::Error,
                    "downloader",
                    format!("SSL resolve EDNS request returned HTTP status {status}"),
                );
                self.edns_failed(now);
            }
            HttpOutcome::Response { body, .. } => match dns::read_answer(query_id, &body) {
                Ok(Answer::Addresses(ips)) => {
                    self.log(
                        Level::Info,
                        "restapi",
                        "SSL resolve EDNS downloaded successfully".to_string(),
                    );
                    self.resolved(Method::Edns, ips[0], now);
                }
                Ok(other) => {
                    let name = self.target_name().to_string();
                    self.log(
                        Level::Error,
                        "dnsResolver",
                        format!("EDNS answer for {name}: {}", describe_answer(&other)),
                    );
                    self.edns_failed(now);
                }
                Err(e) => {
                    self.log(
                        Level::Error,
                        "dnsResolver",
                        format!("EDNS answer unusable: {e}"),
                    );
                    self.edns_failed(now);
                }
            },
        }
    }
    /// A local resolver query finished.
    pub fn handle_ldns(&mut self, op: OpId, outcome: LdnsOutcome, now: Instant) {
        if self.onprem_answer(op, &outcome) {
            return;
        }
        let Phase::Resolving(r) = &self.phase else {
            return;
        };
        if r.op != op || self.methods[r.method_index] != Method::Ldns {
            return;
        }
        let query_id = r.query_id;
        let transport = r.transport;
        self.timers.remove(&Timer::LdnsTry);
        let name = self.target_name().to_string();
        match outcome {
            LdnsOutcome::Failed(err) => {
                self.log(
                    Level::Error,
                    "dnsResolver",
                    format!(
                        "LDNS query for {name} to {} failed: {err}",
                        self.config.ldns
                    ),
                );
                self.ldns_try_failed(now);
            }
            LdnsOutcome::Response(bytes) => match dns::read_answer(query_id, &bytes) {
                Ok(Answer::Addresses(ips)) => self.resolved(Method::Ldns, ips[0], now),
                Ok(Answer::Truncated) if transport == DnsTransport::Udp => {
                    self.log(
                        Level::Info,
                        "dnsResolver",
                        format!("LDNS answer for {name} truncated, retrying over TCP"),
                    );
                    self.send_ldns(DnsTransport::Tcp, now);
                }
                Ok(other) => {
                    self.log(
                        Level::Error,
                        "dnsResolver",
                        format!("LDNS answer for {name}: {}", describe_answer(&other)),
                    );
                    self.method_failed(now);
                }
                Err(e) => {
                    self.log(
                        Level::Error,
                        "dnsResolver",
                        format!("LDNS answer unusable: {e}"),
                    );
                    self.ldns_try_failed(now);
                }
            },
        }
    }
    pub(super) fn begin_attempt(&mut self, role: Role, now: Instant) {
        if role == Role::Primary {
            // A new round: read the system proxy settings again when needed.
            self.proxies = None;
        }
        self.set_status(TunnelStatus::Connecting);
        let name = self.name_for(role).to_string();
        self.log(
            Level::Info,
            "nsTunnel",
            format!(
                "{} Connecting to {name}:{}",
                self.proto.as_str(),
                self.config.gateway_port
            ),
        );
        self.start_method(role, 0, now);
    }
    pub(super) fn start_method(&mut self, role: Role, method_index: usize, now: Instant) {
        let query_id = self.rng.u16(..);
        let op = self.new_op();
        self.phase = Phase::Resolving(Resolving {
            role,
            method_index,
            op,
            query_id,
            tries: 0,
            transport: DnsTransport::Udp,
        });
        match self.methods[method_index] {
            Method::Edns => {
                let name = self.name_for(role).to_string();
                let body = dns::build_query(query_id, &name, Some(self.config.client_ip));
                self.push(Action::QueryDoh {
                    op,
                    server_name: self.config.doh_name.clone(),
                    addr: self.config.doh_addr,
                    body,
                });
                self.timers.insert(Timer::DohTimeout, now + DOH_TIMEOUT);
            }
            Method::Ldns => self.send_ldns(DnsTransport::Udp, now),
            // GSLB picks PoPs for the primary gateway only; the backup has one name.
            Method::Gslb if role == Role::Backup => self.start_method(role, method_index + 1, now),
            Method::Gslb => self.start_gslb(op, now),
        }
    }
    /// Sends the next local resolver try of the current resolution.
    pub(super) fn send_ldns(&mut self, transport: DnsTransport, now: Instant) {
        let op = self.new_op();
        let Phase::Resolving(r) = &mut self.phase else {
            return;
        };
        r.op = op;
        r.tries += 1;
        r.transport = transport;
        let (query_id, role) = (r.query_id, r.role);
        let name = self.name_for(role).to_string();
        let query = dns::build_query(query_id, &name, None);
        self.push(Action::QueryLdns {
            op,
            addr: self.config.ldns,
            transport,
            query,
        });
        self.timers.insert(Timer::LdnsTry, now + LDNS_TRY_TIMEOUT);
    }
    pub(super) fn ldns_try_failed(&mut self, now: Instant) {
        let Phase::Resolving(r) = &self.phase else {
            return;
        };
        if r.tries < LDNS_TRIES {
            let transport = r.transport;
            self.send_ldns(transport, now);
        } else {
            self.method_failed(now);
        }
    }
    pub(super) fn edns_failed(&mut self, now: Instant) {
        self.log(
            Level::Error,
            "restapi",
            "Failed to download SSL resolve EDNS, Error: -2".to_string(),
        );
        self.method_failed(now);
    }
    /// The current resolution method failed: log it and try the next one.
    pub(super) fn method_failed(&mut self, now: Instant) {
        let Phase::Resolving(r) = &self.phase else {
            return;
        };
        let (role, index) = (r.role, r.method_index);
        self.timers.remove(&Timer::LdnsTry);
        self.timers.remove(&Timer::DohTimeout);
        self.timers.remove(&Timer::GslbTimeout);
        let name = self.name_for(role).to_string();
        let method = self.methods[index];
        self.log(
            Level::Error,
            "dnsResolver",
            format!("Failed to resolve {name} by {}", method.as_str()),
        );
        if index + 1 < self.methods.len() {
            self.start_method(role, index + 1, now);
        } else {
            self.role_failed(role, now);
        }
    }
    pub(super) fn resolved(&mut self, method: Method, ip: Ipv4Addr, now: Instant) {
        let Phase::Resolving(r) = &self.phase else {
            return;
        };
        let role = r.role;
        self.timers.remove(&Timer::LdnsTry);
        self.timers.remove(&Timer::DohTimeout);
        let name = self.name_for(role).to_string();
        self.log(
            Level::Info,
            "dnsResolver",
            format!("Hostname {name} resolved by {}", method.as_str()),
        );
        let addr = SocketAddr::from((ip, self.config.gateway_port));
        let target = Target {
            proxy: None,
            role,
            method,
            name,
            addr,
        };
        self.connect(target, Vec::new(), now);
    }
}

/// The curl error code and text the real client logs for a failed download.
fn curl_error(err: &NetError) -> (u32, String) {
    match err {
        NetError::Refused => (7, "Couldn't connect to server".to_string()),
        NetError::Reset => (56, "Failure when receiving data from the peer".to_string()),
        NetError::Closed => (
            52,
            "Server returned nothing (no headers, no data)".to_string(),
        ),
        NetError::Tls(reason) => (
            60,
            format!("SSL peer certificate or SSH remote key was not OK ({reason})"),
        ),
        NetError::Other(text) => (55, format!("Failed sending data to the peer ({text})")),
    }
}

fn describe_answer(answer: &Answer) -> String {
    match answer {
        Answer::Addresses(ips) => format!("{} address(es)", ips.len()),
        Answer::Truncated => "truncated".to_string(),
        Answer::Rcode(rcode) => format!("rcode {rcode}"),
        Answer::Empty => "no address in the answer".to_string(),
    }
}
