use super::*;
use proptest::prelude::*;

fn steering(mode: Mode) -> Steering {
    let mut s = Steering {
        mode,
        ports: vec![80, 443],
        managed: DomainSet::new(["box.com", "*.box.com"]),
        exception_domains: DomainSet::default(),
        exception_nets: NetSet::default(),
        pinned_apps: [
            ("zoom.us", PinnedAction::Bypass),
            ("teams.exe", PinnedAction::Bypass),
        ]
        .into_iter()
        .map(|(p, a)| (p.to_string(), a))
        .collect(),
        steer_dns: false,
        private_apps: false,
        sni_check: false,
        fail_close: false,
    };
    for e in ["zoom.us", "*.zoom.us", "203.0.113.0/24", "198.51.100.7"] {
        s.add_exception(e);
    }
    s
}

fn flow(process: &str, name: Option<&str>, dst: &str) -> FlowInfo {
    FlowInfo {
        process: process.into(),
        names: name.map(|n| vec![n.to_string()]).unwrap_or_default(),
        dst: dst.parse().unwrap(),
    }
}

#[test]
fn cloud_apps_tunnels_managed_and_sends_the_rest_direct() {
    let s = steering(Mode::CloudApps);
    let d = s.decide(
        &flow("chrome.exe", Some("www.box.com"), "107.152.27.197:443"),
        true,
    );
    assert_eq!(
        (d.verdict, d.host.as_str()),
        (Verdict::Tunneled, "www.box.com")
    );
    let d = s.decide(
        &flow("chrome.exe", Some("example.org"), "93.184.216.34:443"),
        true,
    );
    assert_eq!((d.verdict, d.reason), (Verdict::Direct, Reason::NotManaged));
    let d = s.decide(
        &flow("chrome.exe", Some("www.box.com"), "107.152.27.197:8443"),
        true,
    );
    assert_eq!(d.reason, Reason::PortNotSteered(8443));
}

#[test]
fn web_mode_bypasses_exceptions_apps_and_private_addresses() {
    let s = steering(Mode::Web);
    let d = s.decide(
        &flow("zoom.us", Some("us04web.zoom.us"), "170.114.52.2:443"),
        true,
    );
    assert_eq!(d.verdict, Verdict::Bypassed);
    assert!(matches!(d.reason, Reason::BypassApp(_)));
    let d = s.decide(
        &flow("chrome.exe", Some("zoom.us"), "170.114.52.2:443"),
        true,
    );
    assert_eq!(d.reason, Reason::DomainException("zoom.us".into()));
    let d = s.decide(&flow("chrome.exe", None, "203.0.113.9:443"), true);
    assert_eq!(d.reason, Reason::IpException("203.0.113.0/24".into()));
    let d = s.decide(&flow("chrome.exe", None, "10.1.2.3:443"), true);
    assert_eq!(d.reason, Reason::PrivateAddress);
    let mut p = steering(Mode::Web);
    p.private_apps = true;
    assert_eq!(
        p.decide(&flow("chrome.exe", None, "10.1.2.3:443"), true)
            .verdict,
        Verdict::Tunneled
    );
}

#[test]
fn pinned_app_actions() {
    let mut s = steering(Mode::Web);
    s.pinned_apps
        .insert("slack.exe".into(), PinnedAction::Block);
    s.pinned_apps
        .insert("dropbox.exe".into(), PinnedAction::Tunnel);
    let f = |p: &str| flow(p, Some("example.org"), "93.184.216.34:443");
    assert_eq!(s.decide(&f("Slack.exe"), true).verdict, Verdict::Blocked);
    assert_eq!(
        s.decide(&f("Dropbox.exe"), true).reason,
        Reason::PinnedTunnel("Dropbox.exe".into())
    );
    assert_eq!(s.decide(&f("Teams.exe"), true).verdict, Verdict::Bypassed);
}

#[test]
fn tunnel_down_blocks_with_fail_close_and_goes_direct_without() {
    let mut s = steering(Mode::All);
    let f = flow("chrome.exe", Some("www.box.com"), "107.152.27.197:443");
    assert_eq!(s.decide(&f, false).reason, Reason::FailOpen);
    s.fail_close = true;
    assert_eq!(s.decide(&f, false).verdict, Verdict::Blocked);
    // Exceptions still go direct under fail close.
    let e = flow("chrome.exe", Some("zoom.us"), "170.114.52.2:443");
    assert_eq!(s.decide(&e, false).verdict, Verdict::Bypassed);
}

#[test]
fn mode_all_leaves_dns_alone_unless_steered() {
    let mut s = steering(Mode::All);
    let f = flow("svchost.exe", None, "8.8.4.4:53");
    assert_eq!(s.decide(&f, true).reason, Reason::DnsNotSteered);
    s.steer_dns = true;
    assert_eq!(s.decide(&f, true).verdict, Verdict::Tunneled);
}

#[test]
fn udp_is_steered_only_in_mode_all() {
    let f = flow("zoom.exe", Some("www.box.com"), "107.152.27.197:8801");
    for mode in [Mode::CloudApps, Mode::Web] {
        let d = steering(mode).decide_proto(mode, &f, FlowProto::Udp, true);
        assert_eq!(
            (d.verdict, d.reason),
            (Verdict::Direct, Reason::UdpNotSteered)
        );
    }
    let mut s = steering(Mode::All);
    let d = s.decide_proto(Mode::All, &f, FlowProto::Udp, true);
    assert_eq!(d.verdict, Verdict::Tunneled);
    // Exceptions, DNS and fail close apply to UDP as to TCP.
    let e = flow("zoom.exe", Some("zoom.us"), "170.114.52.2:8801");
    let d = s.decide_proto(Mode::All, &e, FlowProto::Udp, true);
    assert_eq!(d.verdict, Verdict::Bypassed);
    let dns = flow("svchost.exe", None, "8.8.4.4:53");
    let d = s.decide_proto(Mode::All, &dns, FlowProto::Udp, true);
    assert_eq!(d.reason, Reason::DnsNotSteered);
    s.fail_close = true;
    let d = s.decide_proto(Mode::All, &f, FlowProto::Udp, false);
    assert_eq!(d.verdict, Verdict::Blocked);
}

fn any_flow() -> impl Strategy<Value = FlowInfo> {
    (
        prop::sample::select(vec!["chrome.exe", "zoom.us", "Teams.exe", "curl"]),
        prop::option::of(prop::sample::select(vec![
            "www.box.com",
            "box.com",
            "zoom.us",
            "a.zoom.us",
            "example.org",
        ])),
        prop::sample::select(vec![
            "107.152.27.197",
            "10.0.0.5",
            "203.0.113.4",
            "198.51.100.7",
            "8.8.8.8",
        ]),
        prop::sample::select(vec![80u16, 443, 53, 8443]),
    )
        .prop_map(|(p, n, ip, port)| flow(p, n, &format!("{ip}:{port}")))
}

proptest! {
    #[test]
    fn fail_close_never_lets_a_steered_flow_out(f in any_flow(), mode in prop::sample::select(vec![Mode::CloudApps, Mode::Web, Mode::All])) {
        let mut s = steering(mode);
        s.fail_close = true;
        let up = s.decide(&f, true);
        let down = s.decide(&f, false);
        if up.verdict == Verdict::Tunneled {
            prop_assert_eq!(down.verdict, Verdict::Blocked);
        } else {
            prop_assert_eq!(down, up);
        }
    }

    #[test]
    fn an_exception_always_wins_over_managed(f in any_flow()) {
        let mut s = steering(Mode::CloudApps);
        for n in &f.names {
            s.add_exception(n);
        }
        prop_assert_ne!(s.decide(&f, true).verdict, Verdict::Tunneled);
    }
}
