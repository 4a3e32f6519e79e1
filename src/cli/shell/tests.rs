//! Unit tests of the shell: the command parser (examples and arbitrary input), the
//! completion, and sessions over a small scenario.

use std::path::PathBuf;
use std::time::Duration;

use proptest::prelude::*;

use super::command::{self, Command, LogCount, RuleChange, Until};
use super::complete::{self, Vocabulary};
use super::session::Session;
use crate::scenario::FirewallPlace;

#[test]
fn parses_the_commands() -> Result<(), String> {
    let ok = |line: &str| -> Result<Command, String> {
        command::parse(line)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("`{line}` parsed to nothing"))
    };
    assert_eq!(ok("step 10s")?, Command::Step(Duration::from_secs(10)));
    assert_eq!(
        ok("  STEP   250ms ")?,
        Command::Step(Duration::from_millis(250))
    );
    assert_eq!(
        ok("run until flow www.box.com within 2m")?,
        Command::RunUntil {
            until: Until::Flow("www.box.com".into()),
            within: Some(Duration::from_secs(120))
        }
    );
    assert_eq!(
        ok("run until tunnel-up")?,
        Command::RunUntil {
            until: Until::TunnelUp,
            within: None
        }
    );
    assert_eq!(
        ok(r#"connect "Microsoft Teams.exe" teams.microsoft.com:443 via-proxy"#)?,
        Command::Connect {
            process: "Microsoft Teams.exe".into(),
            target: "teams.microsoft.com:443".into(),
            via_proxy: true,
            app_doh: false
        }
    );
    assert_eq!(
        ok("rule remove perimeter block udp/443")?,
        Command::Rule {
            change: RuleChange::Remove,
            place: FirewallPlace::Perimeter,
            rule: "block udp/443".into()
        }
    );
    assert_eq!(
        ok("explain www.box.com:80 curl")?,
        Command::Explain {
            host: "www.box.com".into(),
            port: 80,
            process: Some("curl".into())
        }
    );
    assert_eq!(ok("log all")?, Command::Log(LogCount::All));
    assert_eq!(
        ok("save out.toml The POC, fixed")?,
        Command::Save {
            path: "out.toml".into(),
            name: Some("The POC, fixed".into())
        }
    );
    assert_eq!(ok("log")?, Command::Log(LogCount::Last(20)));
    assert_eq!(ok("exit")?, Command::Quit);
    assert_eq!(command::parse("   ").map_err(|e| e.to_string())?, None);
    assert_eq!(
        command::parse("# a comment").map_err(|e| e.to_string())?,
        None
    );
    Ok(())
}

#[test]
fn errors_name_the_command_and_what_to_write() {
    let err = |line: &str| match command::parse(line) {
        Err(e) => e.to_string(),
        Ok(c) => format!("parsed: {c:?}"),
    };
    assert_eq!(err("step"), "step: missing duration; write `step DURATION`");
    assert!(
        err("step ten").starts_with("step: `ten` has no number;"),
        "{}",
        err("step ten")
    );
    assert_eq!(
        err("stpe 1s"),
        "stpe: unknown command; did you mean `step`? write `help` for the list of commands"
    );
    assert!(err("run until sunrise").contains("unknown condition `sunrise`"));
    assert!(err("connect chrome.exe www.box.com").contains("has no port"));
    assert!(err("rule add firewall block any").contains("expected `host` or `perimeter`"));
    assert_eq!(
        err("status now"),
        "status: `status` takes nothing, found `now`; write `status`"
    );
    assert!(err("connect \"chrome").contains("not closed"));
    for line in err("explain x:0").lines() {
        assert!(line.starts_with("explain: "), "{line}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parse_never_panics(line in "\\PC{0,80}") {
        let _ = command::parse(&line);
    }

    #[test]
    fn parse_never_panics_on_command_shapes(
        word in prop::sample::select(vec![
            "step", "run", "connect", "rule", "partition", "repair", "start", "stop", "move",
            "status", "pops", "flows", "explain", "log", "save", "help", "quit", "undo",
        ]),
        rest in prop::collection::vec("[a-z0-9:./\"* -]{0,12}", 0..6),
    ) {
        let line = format!("{word} {}", rest.join(" "));
        match command::parse(&line) {
            Ok(_) => {}
            Err(e) => {
                let text = e.to_string();
                prop_assert!(!text.contains('\n'), "one line: {text}");
                prop_assert!(text.starts_with(word) || text.starts_with("shell"), "{text}");
            }
        }
    }

    #[test]
    fn completion_never_panics(line in "\\PC{0,40}") {
        let _ = complete::complete(&vocabulary(), &line);
    }
}

fn vocabulary() -> Vocabulary {
    Vocabulary {
        pops: vec!["nyc1".into(), "fra1".into()],
        hosts: vec![
            "nyc1".into(),
            "fra1".into(),
            "backup".into(),
            "www.box.com".into(),
        ],
        origins: vec!["www.box.com".into()],
        processes: vec!["chrome.exe".into()],
        host_rules: vec!["inspect tcp/443".into(), "block udp/443".into()],
        perimeter_rules: vec![],
    }
}

#[test]
fn completes_commands_hosts_processes_and_rules() {
    let v = vocabulary();
    assert_eq!(
        complete::complete(&v, "st"),
        (
            0,
            vec![
                "step".into(),
                "start".into(),
                "stop".into(),
                "status".into()
            ]
        )
    );
    assert_eq!(
        complete::complete(&v, "partition ny"),
        (10, vec!["nyc1".into()])
    );
    assert_eq!(
        complete::complete(&v, "connect ch"),
        (8, vec!["chrome.exe".into()])
    );
    assert_eq!(
        complete::complete(&v, "connect chrome.exe www"),
        (19, vec!["www.box.com:443".into(), "www.box.com:80".into()])
    );
    assert_eq!(
        complete::complete(&v, "rule remove host block u"),
        (17, vec!["block udp/443".into()])
    );
    assert_eq!(
        complete::complete(&v, "run until t").1,
        vec!["tunnel-up", "tunnel-down"]
    );
    assert_eq!(
        complete::complete(&v, "run until flow w").1,
        vec!["www.box.com"]
    );
}

fn scenario_file(name: &str, text: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("steerlab-shell-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    Ok(path)
}

const SMALL: &str = r#"name = "small"   # a comment that must survive
seed = 3
duration = "20s"

[client]
location = "us-east"
tunnel = "tls"

[steering]
managed = ["*.box.com"]

[[pops]]
name = "nyc1"
location = "us-east"
ip = "8.36.116.35"

[[origins]]
host = "www.box.com"
ip = "107.152.27.197"

[network]
host_firewall = ["block udp/443", "reset tcp/80"]

[[events]]
at = "0s"
do = "start"
[[events]]
at = "15s"
do = "partition"
host = "nyc1"

[expect]
tunnel = "TLS"
"#;

#[test]
fn a_session_steps_adds_events_and_saves_what_reproduces_its_log() -> Result<(), String> {
    let path = scenario_file("small.toml", SMALL)?;
    let mut s = Session::open(&path).map_err(|e| e.to_string())?;
    let first = s.run_until(&Until::TunnelUp, None)?;
    assert!(first.contains("tunnel up (TLS to nyc1) at +"), "{first}");
    assert!(first.contains("+0.000s start agent"), "{first}");
    s.connect("chrome.exe", "www.box.com:443", false, false)?;
    s.rule(RuleChange::Remove, FirewallPlace::Host, "reset tcp/80")?;
    let step = s.step(Duration::from_secs(5))?;
    assert!(
        step.contains("flow chrome.exe www.box.com:443 tunneled"),
        "{step}"
    );
    assert!(
        !step.contains("start agent"),
        "lines are shown once: {step}"
    );
    let explain = super::explain::explain(&s, "www.box.com", 443, None)?;
    assert!(
        explain.contains("`*.box.com` in steering.managed"),
        "{explain}"
    );
    assert!(explain.contains("verdict       tunneled"), "{explain}");
    let out = path.with_file_name("small-saved.toml");
    let msg = s.save(&out, Some("small, saved"))?;
    assert!(msg.contains("1 later event(s)"), "{msg}");
    let text = std::fs::read_to_string(&out).map_err(|e| e.to_string())?;
    assert!(
        text.contains("name = \"small, saved\"   # a comment that must survive"),
        "{text}"
    );
    assert!(!text.contains("do = \"partition\""), "{text}");
    let saved = crate::scenario::load_file(&out).map_err(|e| e.to_string())?;
    let report = crate::world::run(&saved, None).map_err(|e| e.to_string())?;
    assert_eq!(report.log, s.report().log);
    assert!(crate::expect::check(&saved.expect, &report).is_empty());
    Ok(())
}

#[test]
fn bad_session_commands_say_why_and_change_nothing() -> Result<(), String> {
    let path = scenario_file("bad.toml", SMALL)?;
    let mut s = Session::open(&path).map_err(|e| e.to_string())?;
    let before = s.scenario().events.len();
    let e = s.partition("nyc2", true).err().unwrap_or_default();
    assert!(e.contains("did you mean \"nyc1\""), "{e}");
    let e = s.partition("proxy", true).err().unwrap_or_default();
    assert!(e.contains("no proxy"), "{e}");
    let e = s
        .connect("chrome.exe", "www.box.com:99999", false, false)
        .err()
        .unwrap_or_default();
    assert!(e.contains("not a port"), "{e}");
    let e = s
        .connect("chrome.exe", "www.box.com:443", true, false)
        .err()
        .unwrap_or_default();
    assert!(e.contains("no proxy"), "{e}");
    let e = s
        .rule(RuleChange::Remove, FirewallPlace::Perimeter, "block any")
        .err()
        .unwrap_or_default();
    assert!(
        e.contains("has no rule `block any`: it has no rules"),
        "{e}"
    );
    let e = s
        .rule(RuleChange::Add, FirewallPlace::Host, "deny all")
        .err()
        .unwrap_or_default();
    assert!(e.contains("unknown rule action `deny`"), "{e}");
    let e = s
        .step(Duration::from_micros(1500))
        .err()
        .unwrap_or_default();
    assert!(e.contains("not a whole number of milliseconds"), "{e}");
    let e = s.step(Duration::from_secs(7200)).err().unwrap_or_default();
    assert!(e.contains("at most 1h at a time"), "{e}");
    let e = s
        .run_until(&Until::Flow("nowhere.example".into()), None)
        .err()
        .unwrap_or_default();
    assert!(
        e.contains("not an origin of this scenario (www.box.com)"),
        "{e}"
    );
    assert_eq!(s.scenario().events.len(), before);
    assert_eq!(s.now(), Duration::ZERO);

    // `undo` takes back changes until time moves.
    s.connect("chrome.exe", "www.box.com:443", false, false)?;
    s.rule(RuleChange::Remove, FirewallPlace::Host, "reset tcp/80")?;
    assert_eq!(s.scenario().events.len(), before + 3);
    assert!(s.undo()?.contains("(2 event(s))"));
    assert_eq!(s.scenario().events.len(), before + 1);
    s.step(Duration::from_millis(10))?;
    let e = s.undo().err().unwrap_or_default();
    assert!(e.contains("changes are final once time moves"), "{e}");
    assert_eq!(s.scenario().events.len(), before + 1);
    Ok(())
}

proptest! {
    // Each case loads the scenario (no world run): commands that do not move time.
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn commands_that_do_not_move_time_never_panic(
        lines in prop::collection::vec(
            (
                prop::sample::select(vec![
                    "connect", "rule add host", "rule remove host", "rule add perimeter",
                    "rule remove perimeter", "partition", "repair", "start", "stop", "move",
                    "status", "pops", "flows", "explain", "log", "help", "undo",
                ]),
                prop::collection::vec("[a-zA-Z0-9:./*\"_ -]{0,14}", 0..4),
            ),
            1..8,
        ),
    ) {
        let path = scenario_file("fuzz.toml", SMALL).map_err(TestCaseError::fail)?;
        let mut s = Session::open(&path).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (word, rest) in lines {
            let line = format!("{word} {}", rest.join(" "));
            if let Ok(Some(command)) = command::parse(&line) {
                let _ = super::execute(&mut s, command);
            }
        }
    }
}
