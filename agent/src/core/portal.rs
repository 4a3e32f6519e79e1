//! Captive-portal detection: when a whole round of connection attempts fails, the
//! client GETs a check URL that answers `204 No Content` on an open network. Anything
//! else (a portal's `302` to its login page, a `200` login form) means a captive portal
//! holds the endpoint until the user logs in. Detection is logged; the client keeps
//! retrying on its backoff, and the next round after login succeeds.

use std::time::{Duration, Instant};

use super::{Action, Agent, HttpOutcome, Level, OpId, Timer};

/// How long the client waits for the check URL's answer.
pub const PORTAL_CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// What the last check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Portal {
    /// No check yet, or it got no answer.
    #[default]
    Unknown,
    /// The check URL answered 204.
    Open,
    /// Something answered in its place.
    Captive,
}

impl Agent {
    /// Starts a captive-portal check, if one is configured and none is in flight.
    pub(super) fn check_portal(&mut self, now: Instant) {
        let Some(url) = self.config.portal_check_url.clone() else {
            return;
        };
        if self.portal_check.is_some() {
            return;
        }
        let op = self.new_op();
        self.portal_check = Some(op);
        self.push(Action::HttpGet { op, url });
        self.timers
            .insert(Timer::PortalCheck, now + PORTAL_CHECK_TIMEOUT);
    }

    /// Whether `op` is the portal check; if so, takes its answer.
    pub(super) fn portal_answer(&mut self, op: OpId, outcome: &HttpOutcome) -> bool {
        if self.portal_check != Some(op) {
            return false;
        }
        self.portal_check = None;
        self.timers.remove(&Timer::PortalCheck);
        let url = self.config.portal_check_url.clone().unwrap_or_default();
        let found = match outcome {
            HttpOutcome::Response { status: 204, .. } => Portal::Open,
            HttpOutcome::Response { .. } => Portal::Captive,
            HttpOutcome::Failed(_) => Portal::Unknown,
        };
        match (self.portal, found) {
            (Portal::Captive, Portal::Captive) | (_, Portal::Unknown) => {}
            (_, Portal::Captive) => {
                let HttpOutcome::Response { status, .. } = outcome else {
                    return true;
                };
                self.log(
                    Level::Warning,
                    "CTunnelMgr",
                    format!(
                        "Captive Portal Detected: {url} answered HTTP {status} instead of 204; waiting for the user to log in"
                    ),
                );
            }
            (Portal::Captive, Portal::Open) => self.log(
                Level::Info,
                "CTunnelMgr",
                format!("Captive portal cleared: {url} answered HTTP 204"),
            ),
            (_, Portal::Open) => {}
        }
        if found != Portal::Unknown {
            self.portal = found;
        }
        true
    }

    /// The tunnel came up: a portal that held the endpoint has let it go.
    pub(super) fn portal_passed(&mut self) {
        if self.portal == Portal::Captive {
            self.log(
                Level::Info,
                "CTunnelMgr",
                "Captive portal cleared: the tunnel connected".to_string(),
            );
        }
        self.portal = Portal::Unknown;
    }

    /// The check got no answer in time.
    pub(super) fn portal_timed_out(&mut self) {
        if let Some(op) = self.portal_check.take() {
            self.push(Action::Cancel { op });
        }
    }
}
