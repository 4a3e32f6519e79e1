//! Unit tests: one event at one time, then the actions it produced.
#![allow(
    clippy::disallowed_methods,
    reason = "tests take a base instant; the core itself never reads a clock"
)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, rdata::A};

use super::*;

fn config() -> Config {
    Config {
        tenant: "acme".into(),
        region: Region::Global,
        version: "95.1.0".into(),
        client_ip: Ipv4Addr::new(10, 173, 13, 40),
        doh_name: "dns.google".into(),
        doh_addr: SocketAddr::from(([8, 8, 8, 8], 443)),
        gslb_name: "gateway.gslb.goskope.com".into(),
        gslb_addr: SocketAddr::from(([198, 18, 0, 1], 443)),
        ldns: SocketAddr::from(([10, 0, 0, 53], 53)),
        gateway_port: 443,
        tunnel: TunnelProto::Tls,
        dtls_available: false,
        steering: Default::default(),
        on_prem: None,
        proxy: None,
        proxy_discovery: None,
        portal_check_url: None,
        user: None,
        control: None,
        seed: 1,
    }
}

fn drain(agent: &mut Agent) -> (Vec<Action>, Vec<String>) {
    let mut acts = Vec::new();
    let mut logs = Vec::new();
    while let Some(a) = agent.poll_action() {
        match a {
            Action::Log(l) => logs.push(l.to_string()),
            other => acts.push(other),
        }
    }
    (acts, logs)
}

fn answer(query: &[u8], ips: &[Ipv4Addr], rcode: ResponseCode) -> Vec<u8> {
    let q = Message::from_vec(query).unwrap();
    let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.response_code = rcode;
    for ip in ips {
        let name = Name::from_ascii("gateway-acme.goskope.com.").unwrap();
        m.add_answer(Record::from_rdata(name, 60, RData::A(A(*ip))));
    }
    m.to_vec().unwrap()
}

fn doh_query(actions: &[Action]) -> (OpId, Vec<u8>) {
    actions
        .iter()
        .find_map(|a| match a {
            Action::QueryDoh { op, body, .. } => Some((*op, body.clone())),
            _ => None,
        })
        .expect("a DoH query")
}

#[test]
fn start_asks_doh_with_ecs_for_the_gateway() {
    let now = Instant::now();
    let mut agent = Agent::new(config());
    agent.handle_start(now);
    let (acts, logs) = drain(&mut agent);
    assert!(
        logs.iter()
            .any(|l| l.ends_with("nsTunnel TLS Connecting to gateway-acme.goskope.com:443"))
    );
    let (_, body) = doh_query(&acts);
    let msg = Message::from_vec(&body).unwrap();
    assert_eq!(
        msg.queries[0].name().to_ascii(),
        "gateway-acme.goskope.com."
    );
    let edns = msg.edns.expect("edns");
    assert!(format!("{:?}", edns.options()).contains("10.173.13.0"));
    assert_eq!(
        agent.poll_timeout().unwrap(),
        (now + DOH_TIMEOUT, Timer::DohTimeout)
    );
}

#[test]
fn doh_answer_opens_tunnel_to_the_address() {
    let now = Instant::now();
    let mut agent = Agent::new(config());
    agent.handle_start(now);
    let (acts, _) = drain(&mut agent);
    let (op, body) = doh_query(&acts);
    let ip = Ipv4Addr::new(8, 36, 116, 35);
    let body = answer(&body, &[ip], ResponseCode::NoError);
    agent.handle_doh(op, HttpOutcome::Response { status: 200, body }, now);
    let (acts, logs) = drain(&mut agent);
    assert!(logs.iter().any(|l| l.contains("resolved by EDNS")));
    assert!(
        matches!(&acts[0], Action::OpenTunnel { addr, .. } if *addr == SocketAddr::from((ip, 443)))
    );
}

#[test]
fn doh_timeout_falls_back_to_ldns_then_backup() {
    let now = Instant::now();
    let mut agent = Agent::new(config());
    agent.handle_start(now);
    drain(&mut agent);
    let t1 = now + DOH_TIMEOUT;
    agent.handle_timeout(t1);
    let (acts, logs) = drain(&mut agent);
    assert!(logs.iter().any(|l| l.contains("code 28")));
    assert!(
        logs.iter()
            .any(|l| l.contains("Failed to resolve gateway-acme.goskope.com by EDNS"))
    );
    assert!(matches!(
        acts.last(),
        Some(Action::QueryLdns {
            transport: DnsTransport::Udp,
            ..
        })
    ));
    // All LDNS tries time out: the backup name is tried next, from EDNS again.
    let mut t = t1;
    for _ in 0..LDNS_TRIES {
        t += LDNS_TRY_TIMEOUT;
        agent.handle_timeout(t);
    }
    let (_, logs) = drain(&mut agent);
    assert!(logs.iter().any(|l| l.contains("by LDNS")));
    assert!(
        logs.iter()
            .any(|l| l.contains("Connecting to gateway-backup-acme.goskope.com:443"))
    );
}

#[test]
fn late_answers_are_ignored() {
    let now = Instant::now();
    let mut agent = Agent::new(config());
    agent.handle_start(now);
    let (acts, _) = drain(&mut agent);
    let (op, body) = doh_query(&acts);
    agent.handle_timeout(now + DOH_TIMEOUT);
    drain(&mut agent);
    let body = answer(&body, &[Ipv4Addr::new(1, 2, 3, 4)], ResponseCode::NoError);
    agent.handle_doh(
        op,
        HttpOutcome::Response { status: 200, body },
        now + DOH_TIMEOUT,
    );
    let (acts, _) = drain(&mut agent);
    assert!(acts.is_empty());
}

#[test]
fn servfail_is_an_edns_failure() {
    let now = Instant::now();
    let mut agent = Agent::new(config());
    agent.handle_start(now);
    let (acts, _) = drain(&mut agent);
    let (op, body) = doh_query(&acts);
    let body = answer(&body, &[], ResponseCode::ServFail);
    agent.handle_doh(op, HttpOutcome::Response { status: 200, body }, now);
    let (acts, logs) = drain(&mut agent);
    assert!(logs.iter().any(|l| l.contains("rcode Server Failure")
        || l.contains("SERVFAIL")
        || l.contains("rcode")));
    assert!(matches!(acts.last(), Some(Action::QueryLdns { .. })));
}

#[test]
fn backoff_grows_and_is_capped() {
    assert_eq!(backoff_delay(1, 1.0), BACKOFF_BASE);
    assert_eq!(backoff_delay(2, 1.0), BACKOFF_BASE * 2);
    assert_eq!(backoff_delay(40, 1.0), BACKOFF_CAP);
    assert_eq!(backoff_delay(40, 0.0), BACKOFF_CAP / 2);
}

#[test]
fn silent_tunnel_is_declared_dead_and_reconnected() {
    let now = Instant::now();
    let mut agent = Agent::new(config());
    agent.handle_start(now);
    let (acts, _) = drain(&mut agent);
    let (op, body) = doh_query(&acts);
    let body = answer(
        &body,
        &[Ipv4Addr::new(8, 36, 116, 35)],
        ResponseCode::NoError,
    );
    agent.handle_doh(op, HttpOutcome::Response { status: 200, body }, now);
    let (acts, _) = drain(&mut agent);
    let Action::OpenTunnel { op, .. } = acts[0].clone() else {
        panic!("no tunnel")
    };
    agent.handle_tunnel(op, TunnelEvent::Connected, now);
    assert_eq!(agent.status().tunnel, TunnelStatus::Connected);
    agent.handle_timeout(now + KEEPALIVE_TIMEOUT);
    let (acts, logs) = drain(&mut agent);
    assert!(acts.contains(&Action::CloseTunnel { op }));
    assert!(logs.iter().any(|l| l.contains("Tunnel disconnected")));
    assert_eq!(agent.status().tunnel, TunnelStatus::Disconnected);
    let (at, timer) = agent.poll_timeout().unwrap();
    assert_eq!(timer, Timer::Reconnect);
    assert!(at - (now + KEEPALIVE_TIMEOUT) <= BACKOFF_BASE + Duration::from_millis(1));
}

mod unrelated_events {
    use super::*;
    use crate::core::steer::{DomainSet, Mode, Steering};
    use proptest::prelude::*;

    fn dns_answer(name: &str, ip: Ipv4Addr) -> Vec<u8> {
        let mut m = Message::new(9, MessageType::Response, OpCode::Query);
        let owner = Name::from_ascii(format!("{name}.")).unwrap();
        m.add_answer(Record::from_rdata(owner, 300, RData::A(A(ip))));
        m.to_vec().unwrap()
    }

    fn decide(
        agent: &mut Agent,
        now: Instant,
        process: &str,
        dst: SocketAddr,
    ) -> crate::core::steer::Decision {
        let src = SocketAddr::from(([10, 0, 0, 10], 50_000));
        agent.handle_app_flow(
            crate::core::FlowSeen {
                flow: 1,
                process: process.into(),
                src,
                dst,
                sni: None,
                connect: None,
                proto: Default::default(),
            },
            now,
        );
        let mut decision = None;
        while let Some(a) = agent.poll_action() {
            if let Action::Steer { decision: d, .. } = a {
                decision = Some(d);
            }
        }
        decision.expect("a decision")
    }

    proptest! {
        /// DNS answers for other addresses and flows of other apps never change the
        /// verdict of a flow.
        #[test]
        fn verdicts_ignore_unrelated_answers_and_flows(
            noise in proptest::collection::vec((0u8..4, 1u8..250), 0..12),
            mode in prop::sample::select(vec![Mode::CloudApps, Mode::Web, Mode::All]),
        ) {
            let mut cfg = config();
            cfg.steering = Steering {
                mode,
                managed: DomainSet::new(["box.com", "*.box.com"]),
                ..Steering::default()
            };
            cfg.steering.add_exception("zoom.us");
            let now = Instant::now();
            let target = Ipv4Addr::new(107, 152, 27, 197);
            let dst = SocketAddr::from((target, 443));

            let mut quiet = Agent::new(cfg.clone());
            quiet.handle_app_dns(&dns_answer("www.box.com", target), now);
            let expected = decide(&mut quiet, now, "chrome.exe", dst);

            let mut noisy = Agent::new(cfg);
            noisy.handle_app_dns(&dns_answer("www.box.com", target), now);
            let names = ["zoom.us", "example.org", "a.box.com", "cdn.net"];
            for (kind, last) in noise {
                let ip = Ipv4Addr::new(198, 51, 100, last);
                noisy.handle_app_dns(&dns_answer(names[usize::from(kind)], ip), now);
                decide(&mut noisy, now, "other.exe", SocketAddr::from((ip, 443)));
            }
            prop_assert_eq!(decide(&mut noisy, now, "chrome.exe", dst), expected);
        }
    }
}

mod proxy_discovery {
    use super::*;

    /// Starts an agent, answers DoH with the gateway, and fails the direct TLS connect.
    fn direct_fails(config: Config, now: Instant) -> (Agent, Vec<Action>, Vec<String>) {
        let mut agent = Agent::new(config);
        agent.handle_start(now);
        let (acts, _) = drain(&mut agent);
        let (op, body) = doh_query(&acts);
        let ip = Ipv4Addr::new(8, 36, 116, 35);
        let body = answer(&body, &[ip], ResponseCode::NoError);
        agent.handle_doh(op, HttpOutcome::Response { status: 200, body }, now);
        let (acts, _) = drain(&mut agent);
        let Some(Action::OpenTunnel {
            op, proxy: None, ..
        }) = acts.first().cloned()
        else {
            panic!("a direct tunnel open: {acts:?}")
        };
        agent.handle_tunnel(op, TunnelEvent::Failed(NetError::Refused), now);
        let (acts, logs) = drain(&mut agent);
        (agent, acts, logs)
    }

    fn fetched(script: &str) -> PacFetched {
        PacFetched {
            outcome: HttpOutcome::Response {
                status: 200,
                body: script.as_bytes().to_vec(),
            },
            wall_unix_ms: 1_571_053_240_000,
        }
    }

    fn pac_config() -> Config {
        Config {
            proxy_discovery: Some(ProxyDiscovery::Wpad {
                domain: "corp.internal".into(),
            }),
            ..config()
        }
    }

    #[test]
    fn no_proxy_settings_is_logged_and_the_backup_is_next() {
        let now = Instant::now();
        let (_, acts, logs) = direct_fails(config(), now);
        assert!(logs.iter().any(|l| l.ends_with(
            "Config System proxy configuration Not Detected , System proxy Count 0,Pac Server Host N/A"
        )));
        assert!(logs.iter().any(|l| l.contains("Failing over to backup")));
        assert!(!acts.iter().any(|a| matches!(a, Action::FetchPac { .. })));
    }

    #[test]
    fn wpad_fetches_the_pac_file_and_tunnels_through_its_proxies_in_order() {
        let now = Instant::now();
        let (mut agent, acts, _) = direct_fails(pac_config(), now);
        let Some(Action::FetchPac { op, url }) = acts.first().cloned() else {
            panic!("a PAC fetch: {acts:?}")
        };
        assert_eq!(url, "http://wpad.corp.internal/wpad.dat");
        assert_eq!(
            agent.poll_timeout(),
            Some((now + PAC_FETCH_TIMEOUT, Timer::PacFetch))
        );
        let script = r#"function FindProxyForURL(u, h) {
            return dnsResolve(h) == "8.36.116.35" ? "PROXY 10.10.10.11:8080; SOCKS 1.2.3.4:1080; PROXY 10.10.10.12:3128" : "DIRECT";
        }"#;
        agent.handle_pac(op, fetched(script), now);
        let (acts, logs) = drain(&mut agent);
        assert!(logs.iter().any(|l| l.contains("cannot carry the tunnel")));
        assert!(logs.iter().any(|l| l.contains(
            "System proxy Count 2, Proxy 10.10.10.11:8080, 10.10.10.12:3128,Pac Server Host wpad.corp.internal"
        )));
        let Some(Action::OpenTunnel { op, proxy, .. }) = acts.first().cloned() else {
            panic!("a tunnel open: {acts:?}")
        };
        assert_eq!(proxy, Some(SocketAddr::from(([10, 10, 10, 11], 8080))));
        agent.handle_tunnel(op, TunnelEvent::Failed(NetError::Refused), now);
        let (acts, _) = drain(&mut agent);
        let Some(Action::OpenTunnel { proxy, .. }) = acts.first().cloned() else {
            panic!("a second tunnel open: {acts:?}")
        };
        assert_eq!(proxy, Some(SocketAddr::from(([10, 10, 10, 12], 3128))));
    }

    #[test]
    fn a_broken_pac_file_means_no_proxy() {
        let now = Instant::now();
        let (mut agent, acts, _) = direct_fails(pac_config(), now);
        let Some(Action::FetchPac { op, .. }) = acts.first().cloned() else {
            panic!("a PAC fetch")
        };
        agent.handle_pac(
            op,
            fetched("function FindProxyForURL(u, h) { for (;;) {} }"),
            now,
        );
        let (_, logs) = drain(&mut agent);
        assert!(
            logs.iter().any(|l| l.contains("ran past its budget")),
            "{logs:#?}"
        );
        assert!(logs.iter().any(|l| l.contains("Not Detected")));
        assert!(logs.iter().any(|l| l.contains("Failing over to backup")));
    }

    #[test]
    fn a_pac_download_that_never_ends_times_out() {
        let now = Instant::now();
        let (mut agent, acts, _) = direct_fails(pac_config(), now);
        let Some(Action::FetchPac { op, .. }) = acts.first().cloned() else {
            panic!("a PAC fetch")
        };
        agent.handle_timeout(now + PAC_FETCH_TIMEOUT);
        let (acts, logs) = drain(&mut agent);
        assert!(acts.contains(&Action::Cancel { op }));
        assert!(logs.iter().any(|l| l.contains("timed out after 10s")));
        // A late answer changes nothing.
        agent.handle_pac(
            op,
            fetched("function FindProxyForURL(){return 'PROXY 1.1.1.1:1';}"),
            now,
        );
        let (acts, _) = drain(&mut agent);
        assert!(acts.is_empty(), "{acts:?}");
    }
}

mod portal_and_onprem_http {
    use super::*;
    use crate::core::onprem::{OnPremCheck, OnPremTest};
    use crate::core::steer::Mode;

    fn get_op(acts: &[Action]) -> (OpId, String) {
        acts.iter()
            .find_map(|a| match a {
                Action::HttpGet { op, url } => Some((*op, url.clone())),
                _ => None,
            })
            .expect("an HTTP GET")
    }

    #[test]
    fn onprem_by_http_200_switches_the_mode() {
        let now = Instant::now();
        let url = "http://intranet.acme.corp/alive".to_string();
        let config = Config {
            on_prem: Some(OnPremCheck {
                test: OnPremTest::Http { url: url.clone() },
                mode: Mode::CloudApps,
            }),
            ..config()
        };
        let mut agent = Agent::new(config.clone());
        agent.handle_start(now);
        let (acts, _) = drain(&mut agent);
        let (op, got) = get_op(&acts);
        assert_eq!(got, url);
        let ok = HttpOutcome::Response {
            status: 200,
            body: Vec::new(),
        };
        agent.handle_http_get(op, ok, now);
        let (_, logs) = drain(&mut agent);
        assert!(
            logs.iter().any(|l| l.contains("location is on-prem")),
            "{logs:?}"
        );

        // A 404, or no answer within the timeout: remote.
        let mut agent = Agent::new(config.clone());
        agent.handle_start(now);
        let (acts, _) = drain(&mut agent);
        let (op, _) = get_op(&acts);
        let not_found = HttpOutcome::Response {
            status: 404,
            body: Vec::new(),
        };
        agent.handle_http_get(op, not_found, now);
        let (_, logs) = drain(&mut agent);
        assert!(logs.iter().any(|l| l.contains("location is remote")));

        let mut agent = Agent::new(config);
        agent.handle_start(now);
        drain(&mut agent);
        agent.handle_timeout(now + crate::core::onprem::ONPREM_HTTP_TIMEOUT);
        let (_, logs) = drain(&mut agent);
        assert!(logs.iter().any(|l| l.contains("location is remote")));
    }

    /// Fails every DoH, LDNS and tunnel attempt of one round (primary, then backup).
    fn fail_a_round(agent: &mut Agent, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        for _ in 0..40 {
            let (acts, _) = drain(agent);
            if acts.is_empty() {
                break;
            }
            for a in acts {
                match &a {
                    Action::QueryDoh { op, .. } => {
                        agent.handle_doh(*op, HttpOutcome::Failed(NetError::Refused), now)
                    }
                    Action::QueryLdns { op, query, .. } => {
                        let body = answer(
                            query,
                            &[Ipv4Addr::new(8, 36, 116, 35)],
                            ResponseCode::NoError,
                        );
                        agent.handle_ldns(*op, LdnsOutcome::Response(body), now)
                    }
                    Action::OpenTunnel { op, .. } => agent.handle_tunnel(
                        *op,
                        TunnelEvent::Failed(NetError::Tls(
                            "invalid peer certificate: UnknownIssuer".into(),
                        )),
                        now,
                    ),
                    _ => {}
                }
                out.push(a);
            }
        }
        out
    }

    #[test]
    fn a_failed_round_checks_for_a_captive_portal() {
        let now = Instant::now();
        let url = "http://portal-check.goskope.com/generate_204".to_string();
        let mut agent = Agent::new(Config {
            portal_check_url: Some(url.clone()),
            ..config()
        });
        agent.handle_start(now);
        let acts = fail_a_round(&mut agent, now);
        let (op, got) = get_op(&acts);
        assert_eq!(got, url);
        let redirect = HttpOutcome::Response {
            status: 302,
            body: Vec::new(),
        };
        agent.handle_http_get(op, redirect, now);
        let (_, logs) = drain(&mut agent);
        assert!(
            logs.iter()
                .any(|l| l.contains("Captive Portal Detected") && l.contains("HTTP 302")),
            "{logs:?}"
        );
        // An open network (204) logs nothing.
        let mut agent = Agent::new(Config {
            portal_check_url: Some(url),
            ..config()
        });
        agent.handle_start(now);
        let acts = fail_a_round(&mut agent, now);
        let (op, _) = get_op(&acts);
        let open = HttpOutcome::Response {
            status: 204,
            body: Vec::new(),
        };
        agent.handle_http_get(op, open, now);
        let (_, logs) = drain(&mut agent);
        assert!(!logs.iter().any(|l| l.contains("Captive")), "{logs:?}");
    }
}

mod control_plane {
    use super::*;
    use crate::core::control::{CONFIG_FIRST_RETRY, CONFIG_INTERVAL, ControlPlane};
    use crate::core::steer::Mode;
    use crate::tenant::{ClientConfigDoc, ClientDoc, SteeringDoc};

    fn with_control() -> Config {
        Config {
            user: Some("bob@acme.com".into()),
            control: Some(ControlPlane {
                server_name: "addon-acme.goskope.com".into(),
                addr: SocketAddr::from(([198, 18, 0, 9], 443)),
                device: "dev-1".into(),
                hostname: "LAPTOP 7".into(),
                invite: None,
            }),
            ..config()
        }
    }

    fn fetch(acts: &[Action]) -> (OpId, String) {
        acts.iter()
            .find_map(|a| match a {
                Action::FetchConfig { op, path, .. } => Some((*op, path.clone())),
                _ => None,
            })
            .expect("a configuration download")
    }

    fn doc(version: u64, mode: &str, fail_close: bool) -> Vec<u8> {
        ClientConfigDoc {
            version,
            name: "Lost devices".into(),
            steering: SteeringDoc {
                mode: mode.into(),
                exceptions: vec!["zoom.us".into()],
                steer_dns: true,
                ..SteeringDoc::default()
            },
            client: ClientDoc {
                fail_close,
                config_interval_s: 60,
                ..ClientDoc::default()
            },
        }
        .to_json()
    }

    #[test]
    fn start_downloads_and_applies_a_new_configuration_live() {
        let now = Instant::now();
        let mut agent = Agent::new(with_control());
        agent.handle_start(now);
        let (acts, _) = drain(&mut agent);
        let (op, path) = fetch(&acts);
        assert_eq!(
            path,
            "/config?device=dev-1&user=bob@acme.com&hostname=LAPTOP%207&version=none&client_version=95.1.0"
        );
        let body = doc(4, "all", true);
        agent.handle_config(op, HttpOutcome::Response { status: 200, body }, now);
        let (_, logs) = drain(&mut agent);
        assert!(
            logs.iter().any(|l| l.contains(
                "Applied configuration version 4: steering mode cloud-apps -> all, DNS steering on, fail close on"
            )),
            "{logs:#?}"
        );
        assert_eq!(agent.config().steering.mode, Mode::All);
        assert!(agent.config().steering.fail_close);
        // The configuration's own interval sets the next pull; the same version again
        // changes nothing.
        let pull = now + Duration::from_secs(60);
        assert!(agent.timers.get(&Timer::ConfigPull) == Some(&pull));
        agent.handle_timeout(pull);
        let (acts, _) = drain(&mut agent);
        let (op, path) = fetch(&acts);
        assert!(path.contains("&version=4&"), "{path}");
        let body = doc(4, "all", true);
        agent.handle_config(op, HttpOutcome::Response { status: 200, body }, pull);
        let (_, logs) = drain(&mut agent);
        assert!(!logs.iter().any(|l| l.contains("Applied")), "{logs:#?}");
    }

    #[test]
    fn a_failed_first_download_is_retried_in_ten_minutes_and_bad_documents_are_ignored() {
        let now = Instant::now();
        let mut agent = Agent::new(with_control());
        agent.handle_start(now);
        let (acts, _) = drain(&mut agent);
        let (op, _) = fetch(&acts);
        agent.handle_config(op, HttpOutcome::Failed(NetError::Refused), now);
        let (_, logs) = drain(&mut agent);
        assert!(
            logs.iter().any(|l| l.contains("retrying in 600s")),
            "{logs:#?}"
        );
        assert_eq!(
            agent.timers.get(&Timer::ConfigPull),
            Some(&(now + CONFIG_FIRST_RETRY))
        );
        agent.handle_timeout(now + CONFIG_FIRST_RETRY);
        let (acts, _) = drain(&mut agent);
        let (op, _) = fetch(&acts);
        let body = doc(1, "everything", false);
        agent.handle_config(op, HttpOutcome::Response { status: 200, body }, now);
        let (_, logs) = drain(&mut agent);
        assert!(
            logs.iter()
                .any(|l| l.contains("Ignored client configuration version 1"))
        );
        assert_eq!(agent.config().steering.mode, Mode::CloudApps);
        assert!(CONFIG_INTERVAL > Duration::ZERO);
    }
}
