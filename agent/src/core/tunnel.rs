//! The tunnel's life: connect (falling back from DTLS to TLS, then the next-best PoP, then
//! the backup), up with keepalives, down, and the backoff before the next attempt.

use std::time::Instant;

use super::*;

impl Agent {
    /// Opens the tunnel to `target`; `rest` are the next-best targets.
    pub(super) fn connect(&mut self, target: Target, rest: Vec<Target>, now: Instant) {
        let proto = self.proto.as_str();
        self.log(
            Level::Info,
            "nsssl",
            format!(
                "{proto} remote host {} resolved to {}, port {}",
                target.name,
                target.addr.ip(),
                target.addr.port()
            ),
        );
        let op = self.new_op();
        let proxy = target.proxy;
        self.push(Action::OpenTunnel {
            op,
            server_name: target.name.clone(),
            addr: target.addr,
            proto: self.proto,
            proxy,
        });
        self.phase = Phase::Connecting { target, op, rest };
        self.timers
            .insert(Timer::TunnelConnect, now + TUNNEL_CONNECT_TIMEOUT);
    }
    pub(super) fn connect_failed(&mut self, err: &NetError, now: Instant) {
        let Phase::Connecting { target, rest, .. } =
            std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return;
        };
        let proto = self.proto.as_str();
        let (name, addr) = (&target.name, target.addr);
        let line = match err {
            NetError::Tls(reason) => {
                format!("{proto} handshake with {name}({addr}) failed: {reason}")
            }
            other => format!(
                "{proto} failed to connect to {name}:{}, err: {other}",
                addr.port()
            ),
        };
        self.log(Level::Error, "nsssl", line);
        if self.proto == TunnelProto::Dtls {
            // DTLS failed: the client moves to TLS and stays there until it restarts.
            self.log(
                Level::Error,
                "nsTunnel",
                "DTLS nsssl_connect failed, err: -1".to_string(),
            );
            self.log(
                Level::Warning,
                "nsTunnel",
                format!("DTLS to {name} failed, falling back to TLS"),
            );
            self.proto = TunnelProto::Tls;
            return self.connect(target, rest, now);
        }
        // Over TLS: the next proxy (the system's, after a direct connect), then the
        // next gateway.
        self.after_connect_failure(target, rest, now);
    }
    /// Every way to reach the gateway in `role` failed.
    pub(super) fn role_failed(&mut self, role: Role, now: Instant) {
        match role {
            Role::Primary => {
                let backup = self.names.backup.clone();
                self.log(
                    Level::Warning,
                    "nsTunnel",
                    format!(
                        "{} Failing over to backup gateway {backup}",
                        self.proto.as_str()
                    ),
                );
                self.begin_attempt(Role::Backup, now);
            }
            Role::Backup => {
                self.check_portal(now);
                self.log(
                    Level::Error,
                    "nsTunnel",
                    format!(
                        "{} Unable to connect to {} or {}",
                        self.proto.as_str(),
                        self.names.gateway,
                        self.names.backup
                    ),
                );
                self.schedule_reconnect(now);
            }
        }
    }
    pub(super) fn tunnel_up(&mut self, now: Instant) {
        let Phase::Connecting { target, op, .. } = std::mem::replace(&mut self.phase, Phase::Idle)
        else {
            return;
        };
        self.timers.remove(&Timer::TunnelConnect);
        self.session += 1;
        self.failures = 0;
        self.resolved_by = Some(target.method);
        let line = if target.method == Method::Gslb {
            format!(
                "{} SSL connected to the gslbgw server: {}({}):{} successfully",
                self.proto.as_str(),
                target.name,
                target.addr.ip(),
                target.addr.port()
            )
        } else {
            format!(
                "{} [sessId {}] SSL connected to the server: {}:{} successfully",
                self.proto.as_str(),
                self.session,
                target.name,
                target.addr.port()
            )
        };
        self.phase = Phase::Connected { target, op };
        self.log(Level::Info, "nsTunnel", line);
        self.set_status(TunnelStatus::Connected);
        self.portal_passed();
        self.report_event("tunnel_up");
        // The enrolled identity: with email enrollment, the invite's addressee.
        let invite = self.config.control.as_ref().and_then(|c| c.invite.clone());
        if let Some(user) = invite.or_else(|| self.config.user.clone()) {
            self.push(Action::SendHello { op, user });
        }
        self.timers
            .insert(Timer::KeepaliveSend, now + KEEPALIVE_INTERVAL);
        self.timers
            .insert(Timer::KeepaliveDeadline, now + KEEPALIVE_TIMEOUT);
    }
    pub(super) fn tunnel_down(&mut self, why: &str, now: Instant) {
        let Phase::Connected { op, .. } = self.phase else {
            return;
        };
        self.timers.remove(&Timer::KeepaliveSend);
        self.timers.remove(&Timer::KeepaliveDeadline);
        self.push(Action::CloseTunnel { op });
        for flow in std::mem::take(&mut self.pending_flows) {
            self.push(Action::FlowResult {
                flow,
                result: Err("tunnel closed".to_string()),
            });
        }
        self.log(
            Level::Error,
            "nsTunnel",
            format!(
                "{} [sessId {}] Tunnel disconnected: {why}",
                self.proto.as_str(),
                self.session
            ),
        );
        self.schedule_reconnect(now);
    }
    pub(super) fn schedule_reconnect(&mut self, now: Instant) {
        self.failures += 1;
        let delay = backoff_delay(self.failures, self.rng.f64());
        self.phase = Phase::WaitingToReconnect;
        self.set_status(TunnelStatus::Disconnected);
        self.log(
            Level::Info,
            "nsTunnel",
            format!(
                "Reconnecting in {}.{:03}s (attempt {})",
                delay.as_secs(),
                delay.subsec_millis(),
                self.failures + 1
            ),
        );
        self.timers.insert(Timer::Reconnect, now + delay);
    }
}
