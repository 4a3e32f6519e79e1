//! On-prem detection for dynamic steering: at start and after every network change the
//! client either asks the local resolver for a name that only resolves (to a known
//! address) inside the corporate network, or GETs an intranet URL that only answers 200
//! there. On-prem, the on-prem steering mode applies; remote (or no answer in
//! [`ONPREM_TIMEOUT`] for DNS, [`ONPREM_HTTP_TIMEOUT`] for HTTP), the configured mode.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::dns::{self, Answer};
use super::steer::Mode;
use super::{Action, Agent, DnsTransport, HttpOutcome, LdnsOutcome, Level, OpId, Timer};

/// How long the client waits for the on-prem DNS answer before it decides it is remote.
pub const ONPREM_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the client waits for the on-prem HTTP probe's 200 (the vendor's default;
/// configurable up to 60 s in the real client).
pub const ONPREM_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The on-prem check of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnPremCheck {
    /// How the client tells.
    pub test: OnPremTest,
    /// The steering mode on-prem.
    pub mode: Mode,
}

/// How the client tells it is on-prem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnPremTest {
    /// `host` resolves to `expect` through the local resolver.
    Dns {
        /// The name to ask for.
        host: String,
        /// The address it has on-prem.
        expect: Ipv4Addr,
    },
    /// A GET of `url` answers HTTP 200.
    Http {
        /// An `http://` URL reachable only on-prem.
        url: String,
    },
}

/// Where the client believes it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// Not checked yet, or no check configured: the configured mode applies.
    Unknown,
    /// Inside the corporate network.
    OnPrem,
    /// Outside it.
    Remote,
}

/// The check in flight.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pending {
    op: OpId,
    query_id: u16,
}

impl Agent {
    /// The steering mode that applies now.
    pub(super) fn mode_now(&self) -> Mode {
        match (&self.config.on_prem, self.location) {
            (Some(check), Location::OnPrem) => check.mode,
            _ => self.config.steering.mode,
        }
    }

    /// Starts the on-prem check, if one is configured.
    pub(super) fn start_onprem_check(&mut self, now: Instant) {
        let Some(check) = self.config.on_prem.clone() else {
            return;
        };
        if let Some(old) = self.onprem.take() {
            self.push(Action::Cancel { op: old.op });
        }
        let op = self.new_op();
        match check.test {
            OnPremTest::Dns { host, .. } => {
                let query_id = self.rng.u16(..);
                self.onprem = Some(Pending { op, query_id });
                self.push(Action::QueryLdns {
                    op,
                    addr: self.config.ldns,
                    transport: DnsTransport::Udp,
                    query: dns::build_query(query_id, &host, None),
                });
                self.timers.insert(Timer::OnPremCheck, now + ONPREM_TIMEOUT);
            }
            OnPremTest::Http { url } => {
                self.onprem = Some(Pending { op, query_id: 0 });
                self.push(Action::HttpGet { op, url });
                self.timers
                    .insert(Timer::OnPremCheck, now + ONPREM_HTTP_TIMEOUT);
            }
        }
    }

    /// Whether `op` is the on-prem HTTP probe; if so, takes its answer.
    pub(super) fn onprem_http_answer(&mut self, op: OpId, outcome: &HttpOutcome) -> bool {
        if self.onprem.is_none_or(|p| p.op != op) {
            return false;
        }
        self.onprem = None;
        self.timers.remove(&Timer::OnPremCheck);
        let on_prem = matches!(outcome, HttpOutcome::Response { status: 200, .. });
        self.set_location(if on_prem {
            Location::OnPrem
        } else {
            Location::Remote
        });
        true
    }

    /// Whether `op` is the on-prem check; if so, takes its answer.
    pub(super) fn onprem_answer(&mut self, op: OpId, outcome: &LdnsOutcome) -> bool {
        let Some(pending) = self.onprem.filter(|p| p.op == op) else {
            return false;
        };
        self.onprem = None;
        self.timers.remove(&Timer::OnPremCheck);
        let Some(check) = self.config.on_prem.clone() else {
            return true;
        };
        let OnPremTest::Dns { expect, .. } = check.test else {
            return true;
        };
        let on_prem = match outcome {
            LdnsOutcome::Response(bytes) => matches!(
                dns::read_answer(pending.query_id, bytes),
                Ok(Answer::Addresses(ips)) if ips.contains(&expect)
            ),
            LdnsOutcome::Failed(_) => false,
        };
        self.set_location(if on_prem {
            Location::OnPrem
        } else {
            Location::Remote
        });
        true
    }

    /// No answer in time: remote.
    pub(super) fn onprem_timed_out(&mut self) {
        if let Some(pending) = self.onprem.take() {
            self.push(Action::Cancel { op: pending.op });
            self.set_location(Location::Remote);
        }
    }

    fn set_location(&mut self, location: Location) {
        self.location = location;
        let mode = self.mode_now();
        let dns = if self.config.steering.steer_dns { 1 } else { 0 };
        let place = match location {
            Location::OnPrem => "on-prem",
            Location::Remote | Location::Unknown => "remote",
        };
        self.log(
            Level::Info,
            "CTunnelMgr",
            format!(
                "Client location is {place} and traffic mode is {}, DNS {dns}",
                mode_name(mode)
            ),
        );
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::CloudApps => "cloud-apps",
        Mode::Web => "web",
        Mode::All => "all",
    }
}
