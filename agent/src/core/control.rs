//! The tenant's control plane, seen from the client: download the client configuration
//! (`addon-<tenant>`) at start and on an interval, apply what changed live (steering
//! mode, managed domains, exceptions, bypass apps, DNS steering, private apps, fail
//! close) and log it. The first download is retried every [`CONFIG_FIRST_RETRY`] until it
//! succeeds; later failures are retried after [`CONFIG_RETRY`].

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::steer::{DomainSet, Mode, PinnedAction, Steering};
use super::{Action, Agent, HttpOutcome, Level, OpId, Timer};
use crate::tenant::ClientConfigDoc;

/// How often the client checks for a new configuration (the vendor's "fast sync" is
/// 5 minutes; a configuration may set its own interval).
pub const CONFIG_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// How long one configuration download may take (the vendor's API timeout).
pub const CONFIG_TIMEOUT: Duration = Duration::from_secs(10);
/// How soon a first download that failed is tried again (the vendor's figure).
pub const CONFIG_FIRST_RETRY: Duration = Duration::from_secs(10 * 60);
/// How soon a later download that failed is tried again (the low end of the vendor's
/// 3..10 minute download backoff).
pub const CONFIG_RETRY: Duration = Duration::from_secs(3 * 60);

/// Where the client's configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlPlane {
    /// `addon-<tenant>.goskope.com` (TLS server name and HTTP host).
    pub server_name: String,
    /// Its address.
    pub addr: SocketAddr,
    /// This device's id at the tenant.
    pub device: String,
    /// This device's host name.
    pub hostname: String,
    /// With email enrollment: the address the client's invite was sent to.
    pub invite: Option<String>,
}

/// What the agent knows of its configuration.
#[derive(Debug, Clone, Default)]
pub(super) struct ConfigState {
    /// The version it runs (`None`: the one it started with).
    version: Option<u64>,
    /// The download in flight.
    pending: Option<OpId>,
    /// The interval the running configuration asks for.
    interval: Option<Duration>,
}

impl Agent {
    /// Downloads the configuration now, if a control plane is configured.
    pub(super) fn pull_config(&mut self, now: Instant) {
        let Some(cp) = self.config.control.clone() else {
            return;
        };
        if let Some(op) = self.config_state.pending.take() {
            self.push(Action::Cancel { op });
        }
        let op = self.new_op();
        self.config_state.pending = Some(op);
        let user = self.config.user.clone().unwrap_or_default();
        let version = self
            .config_state
            .version
            .map_or_else(|| "none".to_string(), |v| v.to_string());
        let mut path = format!(
            "/config?device={}&user={}&hostname={}&version={version}&client_version={}",
            query_escape(&cp.device),
            query_escape(&user),
            query_escape(&cp.hostname),
            query_escape(&self.config.version)
        );
        if let Some(invite) = &cp.invite {
            path.push_str(&format!("&invite={}", query_escape(invite)));
        }
        self.push(Action::FetchConfig {
            op,
            server_name: cp.server_name,
            addr: cp.addr,
            path,
        });
        self.timers
            .insert(Timer::ConfigTimeout, now + CONFIG_TIMEOUT);
    }

    /// Tells the control plane what happened (`tunnel_up`, `tunnel_down`), which moves
    /// the device's `last_event`.
    pub(super) fn report_event(&mut self, kind: &str) {
        let Some(cp) = self.config.control.clone() else {
            return;
        };
        let body = serde_json::json!({
            "device": cp.device,
            "user": self.config.user.clone().unwrap_or_default(),
            "type": kind,
        });
        self.push(Action::PostEvent {
            server_name: cp.server_name,
            addr: cp.addr,
            body: body.to_string().into_bytes(),
        });
    }

    /// The configuration download answered (or failed).
    pub fn handle_config(&mut self, op: OpId, outcome: HttpOutcome, now: Instant) {
        if self.config_state.pending != Some(op) {
            return;
        }
        self.config_state.pending = None;
        self.timers.remove(&Timer::ConfigTimeout);
        let doc = match outcome {
            HttpOutcome::Response { status: 200, body } => ClientConfigDoc::from_json(&body)
                .map_err(|e| format!("unreadable configuration: {e}")),
            HttpOutcome::Response { status, .. } => Err(format!("HTTP status {status}")),
            HttpOutcome::Failed(err) => Err(err.to_string()),
        };
        match doc {
            Ok(doc) => {
                self.apply_config(doc);
                let next = self.config_state.interval.unwrap_or(CONFIG_INTERVAL);
                self.timers.insert(Timer::ConfigPull, now + next);
            }
            Err(why) => self.config_failed(&why, now),
        }
    }

    /// The download took too long.
    pub(super) fn config_timed_out(&mut self, now: Instant) {
        if let Some(op) = self.config_state.pending.take() {
            self.push(Action::Cancel { op });
            let why = format!("timed out after {}s", CONFIG_TIMEOUT.as_secs());
            self.config_failed(&why, now);
        }
    }

    fn config_failed(&mut self, why: &str, now: Instant) {
        let server = self
            .config
            .control
            .as_ref()
            .map(|c| c.server_name.clone())
            .unwrap_or_default();
        let retry = if self.config_state.version.is_none() {
            CONFIG_FIRST_RETRY
        } else {
            CONFIG_RETRY
        };
        self.log(
            Level::Error,
            "Config",
            format!(
                "Failed to download client configuration from {server}: {why}; retrying in {}s",
                retry.as_secs()
            ),
        );
        self.timers.insert(Timer::ConfigPull, now + retry);
    }

    /// Applies a downloaded configuration when its version differs, logging what changed.
    fn apply_config(&mut self, doc: ClientConfigDoc) {
        if self.config_state.version == Some(doc.version) {
            return;
        }
        let mode = match parse_mode(&doc.steering.mode) {
            Ok(mode) => mode,
            Err(why) => {
                self.log(
                    Level::Error,
                    "Config",
                    format!(
                        "Ignored client configuration version {}: {why}",
                        doc.version
                    ),
                );
                return;
            }
        };
        self.log(
            Level::Info,
            "Config",
            format!(
                "Downloaded client configuration \"{}\" version {}",
                doc.name, doc.version
            ),
        );
        let old = &self.config.steering;
        let mut new = Steering {
            mode,
            ports: old.ports.clone(),
            managed: DomainSet::new(doc.steering.managed.iter().map(String::as_str)),
            steer_dns: doc.steering.steer_dns,
            private_apps: doc.steering.private_apps,
            sni_check: old.sni_check,
            fail_close: doc.client.fail_close,
            ..Steering::default()
        };
        for entry in &doc.steering.exceptions {
            new.add_exception(entry);
        }
        for app in &doc.steering.bypass_apps {
            new.pinned_apps
                .insert(app.to_ascii_lowercase(), PinnedAction::Bypass);
        }
        let mut changes = Vec::new();
        if old.mode != new.mode {
            changes.push(format!(
                "steering mode {} -> {}",
                mode_word(old.mode),
                mode_word(new.mode)
            ));
        }
        for (what, was, is) in [
            ("DNS steering", old.steer_dns, new.steer_dns),
            ("private apps", old.private_apps, new.private_apps),
            ("fail close", old.fail_close, new.fail_close),
        ] {
            if was != is {
                changes.push(format!("{what} {}", if is { "on" } else { "off" }));
            }
        }
        changes.push(format!(
            "{} managed domain(s), {} exception(s), {} bypass app(s)",
            doc.steering.managed.len(),
            doc.steering.exceptions.len(),
            doc.steering.bypass_apps.len()
        ));
        self.log(
            Level::Info,
            "Config",
            format!(
                "Applied configuration version {}: {}",
                doc.version,
                changes.join(", ")
            ),
        );
        if doc.client.device_classification_interval_s > 0 {
            self.log(
                Level::Info,
                "Config",
                format!(
                    "Device classification every {}s, re-authentication every {}s, upgrades from the {} channel",
                    doc.client.device_classification_interval_s,
                    doc.client.reauth_interval_s,
                    if doc.client.upgrade_channel.is_empty() {
                        "default"
                    } else {
                        doc.client.upgrade_channel.as_str()
                    }
                ),
            );
        }
        self.config.steering = new;
        self.config_state.version = Some(doc.version);
        self.config_state.interval = (doc.client.config_interval_s > 0)
            .then(|| Duration::from_secs(doc.client.config_interval_s));
    }
}

fn parse_mode(word: &str) -> Result<Mode, String> {
    match word {
        "cloud-apps" => Ok(Mode::CloudApps),
        "web" => Ok(Mode::Web),
        "all" => Ok(Mode::All),
        other => Err(format!(
            "steering mode {other:?} is not cloud-apps, web or all"
        )),
    }
}

fn mode_word(mode: Mode) -> &'static str {
    match mode {
        Mode::CloudApps => "cloud-apps",
        Mode::Web => "web",
        Mode::All => "all",
    }
}

/// Percent-encodes what is not a URL-safe query character.
fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
