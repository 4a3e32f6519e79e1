//! One `World`, stepped: advancing in pieces, scheduling an event in place, and idle
//! servers asleep all give the bytes a run of the whole file gives.

use std::path::Path;
use std::time::Duration;

use steerlab::scenario::{Event, EventAction, Scenario, load_file};
use steerlab::world::{self, Captures, World};

fn scenario(path: &str) -> Scenario {
    load_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

#[test]
fn stepping_in_pieces_gives_the_run_in_one_go() {
    let s = scenario("scenarios/failover/gateway-partitioned-mid-session.toml");
    let whole = world::run(&s, None).unwrap();
    let mut w = World::new(&s, None, Captures::default()).unwrap();
    let mut t = Duration::ZERO;
    while t < s.duration {
        t = (t + Duration::from_millis(7_003)).min(s.duration);
        w.advance_to(t).unwrap();
    }
    let stepped = w.report();
    assert!(!whole.log.is_empty());
    assert_eq!(stepped.log, whole.log);
    assert_eq!(stepped.timeline, whole.timeline);
    assert_eq!(stepped.outcome, whole.outcome);
}

#[test]
fn an_event_scheduled_in_place_is_the_event_written_in_the_file() {
    let s = scenario("scenarios/steering/web-exceptions-and-private.toml");
    let at = Duration::from_secs(3);
    let cut = Event {
        at,
        action: EventAction::Partition {
            host: s.pops[0].name.clone(),
        },
    };
    let mut written = s.clone();
    written.events.push(cut.clone());
    written.events.sort_by_key(|e| e.at);
    let from_file = world::run(&written, None).unwrap();

    let mut w = World::new(&s, None, Captures::default()).unwrap();
    w.advance_to(at).unwrap();
    w.schedule([cut]).unwrap();
    w.advance_to(s.duration).unwrap();
    let in_place = w.report();
    assert_eq!(in_place.log, from_file.log);
    assert_eq!(in_place.timeline, from_file.timeline);
    assert_eq!(in_place.flows, from_file.flows);
    // The partition changed the story: the test would see a dropped event.
    assert_ne!(from_file.timeline, world::run(&s, None).unwrap().timeline);
    // An event in the past cannot be applied any more.
    let late = Event {
        at: Duration::from_secs(1),
        action: EventAction::Stop,
    };
    assert!(w.schedule([late]).is_err());
}

#[test]
fn idle_servers_asleep_change_no_byte_of_the_story() {
    for path in [
        "scenarios/failover/dns-down-then-repair.toml",
        "scenarios/steering/web-exceptions-and-private.toml",
        "scenarios/tunnel/dtls-then-udp-blocked.toml",
    ] {
        let s = scenario(path);
        let mut asleep = World::new(&s, None, Captures::default()).unwrap();
        asleep.advance_to(s.duration).unwrap();
        let mut awake = World::new(&s, None, Captures::default()).unwrap();
        awake.keep_awake();
        awake.advance_to(s.duration).unwrap();
        assert!(asleep.naps() > 0, "{path}: no server slept");
        assert_eq!(awake.naps(), 0, "{path}");
        let (a, b) = (asleep.report(), awake.report());
        assert_eq!(a.log, b.log, "{path}");
        assert_eq!(a.timeline, b.timeline, "{path}");
        assert_eq!(a.flows, b.flows, "{path}");
        assert_eq!(a.outcome, b.outcome, "{path}");
    }
}

#[test]
fn the_gslb_api_runs_only_where_something_can_ask_it() {
    let hosts = |s: &Scenario| {
        let w = World::new(s, None, Captures::default()).unwrap();
        let gslb = w.report().hosts.by_label("gslb").expect("GSLB is planned");
        w.sim_hosts().contains(&gslb)
    };
    // Client 95.1 resolves by DoH, then the local resolver: no GSLB host.
    let mut s = scenario("scenarios/failover/everything-down.toml");
    assert!(!hosts(&s));
    // An app that names the API reaches it whatever the client's version.
    s.events.push(Event {
        at: Duration::from_secs(1),
        action: EventAction::Connect {
            process: "curl".to_string(),
            host: "GATEWAY.gslb.goskope.com".to_string(),
            port: 443,
            via_proxy: false,
            dns: steerlab::scenario::AppDns::Os,
            proto: steerlab::scenario::AppProto::Tcp,
        },
    });
    assert!(hosts(&s));
    // Client 96.1 asks GSLB first.
    assert!(hosts(&scenario("scenarios/gslb/best-rtt-not-first.toml")));
}
