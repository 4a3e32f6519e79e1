use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;

use super::*;

/// 2019-10-14 11:40:40 UTC, a Monday.
const NOW: i64 = 1_571_053_240_000;

fn env() -> PacEnv {
    let mut names = BTreeMap::new();
    names.insert(
        "gateway-acme.goskope.com".to_string(),
        IpAddr::V4(Ipv4Addr::new(8, 36, 116, 35)),
    );
    names.insert(
        "intranet.corp.internal".to_string(),
        IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
    );
    PacEnv {
        my_ip: IpAddr::V4(Ipv4Addr::new(10, 173, 13, 40)),
        now_unix_ms: NOW,
        names,
    }
}

fn answer(script: &str, host: &str) -> Result<String, PacError> {
    engine::run(script, &format!("https://{host}/"), host, &env()).map(|(r, _)| r)
}

const CORPORATE: &str = r#"
function FindProxyForURL(url, host) {
  if (isPlainHostName(host) || dnsDomainIs(host, ".corp.internal")) return "DIRECT";
  if (shExpMatch(host, "*.goskope.com")) return "DIRECT";
  if (isInNet(dnsResolve(host), "10.0.0.0", "255.0.0.0")) return "DIRECT";
  return "PROXY 10.10.10.11:8080; DIRECT";
}
"#;

#[test]
fn a_corporate_pac_file() {
    assert_eq!(answer(CORPORATE, "intranet").unwrap(), "DIRECT");
    assert_eq!(
        answer(CORPORATE, "gateway-acme.goskope.com").unwrap(),
        "DIRECT"
    );
    assert_eq!(
        answer(CORPORATE, "www.box.com").unwrap(),
        "PROXY 10.10.10.11:8080; DIRECT"
    );
    let a = find_proxy(CORPORATE, "https://www.box.com/", "www.box.com", &env()).unwrap();
    assert_eq!(
        a.choices,
        vec![
            ProxyChoice::Http {
                host: "10.10.10.11".into(),
                port: 8080
            },
            ProxyChoice::Direct
        ]
    );
}

#[test]
fn helpers_are_bound() {
    let s = r#"function FindProxyForURL(u, h) {
        return [myIpAddress(), dnsDomainLevels(h), isResolvable(h), isResolvable("nope.example"),
                dnsResolve("nope.example"), localHostOrDomainIs("www", "www.box.com"),
                weekdayRange("MON"), dateRange("OCT"), timeRange(11), timeRange(9, 17, "GMT")].join(",");
    }"#;
    assert_eq!(
        answer(s, "gateway-acme.goskope.com").unwrap(),
        "10.173.13.40,2,true,false,,true,true,true,true,true"
    );
}

#[test]
fn date_and_random_are_deterministic() {
    let s = r#"function FindProxyForURL(u, h) {
        var d = new Date();
        return "DIRECT; " + d.getFullYear() + "-" + (d.getMonth() + 1) + "-" + d.getDate()
            + " " + d.getHours() + ":" + d.getMinutes() + " " + Date.now() + " " + Math.random();
    }"#;
    let one = find_proxy(s, "u", "h", &env()).unwrap_err().to_string();
    let two = find_proxy(s, "u", "h", &env()).unwrap_err().to_string();
    assert_eq!(one, two);
    assert!(one.contains("2019-10-14 11:40 1571053240000"), "{one}");
}

#[test]
fn failures_are_errors_with_messages() {
    assert!(matches!(
        answer("function FindProxyForURL(u, h) {", "x"),
        Err(PacError::Load(_))
    ));
    assert_eq!(answer("var x = 1;", "x"), Err(PacError::NoFunction));
    let threw = answer(
        "function FindProxyForURL(u, h) { throw new Error('no proxy for you'); }",
        "x",
    )
    .unwrap_err();
    assert!(
        matches!(&threw, PacError::Threw(m) if m.contains("no proxy for you")),
        "{threw:?}"
    );
    let undefined_ref = answer("function FindProxyForURL(u, h) { return nosuch(h); }", "x");
    assert!(
        matches!(&undefined_ref, Err(PacError::Threw(m)) if m.contains("nosuch")),
        "{undefined_ref:?}"
    );
    assert_eq!(
        answer("function FindProxyForURL(u, h) { return 42; }", "x"),
        Err(PacError::NotAString("number \"42\"".into()))
    );
    assert_eq!(
        answer("function FindProxyForURL(u, h) { }", "x"),
        Err(PacError::NotAString("undefined".into()))
    );
    assert!(matches!(
        find_proxy(
            "function FindProxyForURL(u, h) { return 'PROXY nowhere'; }",
            "u",
            "x",
            &env()
        ),
        Err(PacError::BadAnswer { .. })
    ));
}

#[test]
fn hostile_scripts_are_stopped() {
    assert_eq!(
        answer("function FindProxyForURL(u, h) { for (;;) {} }", "x"),
        Err(PacError::Budget(engine::STEP_BUDGET))
    );
    assert_eq!(
        answer(
            "while (true) {} function FindProxyForURL(u, h) { return 'DIRECT'; }",
            "x"
        ),
        Err(PacError::Budget(engine::STEP_BUDGET))
    );
    let deep = answer(
        "function f(n) { return f(n + 1) + 1; } function FindProxyForURL(u, h) { return f(0); }",
        "x",
    );
    assert!(matches!(deep, Err(PacError::Exhausted(_))), "{deep:?}");
    let big = answer(
        "function FindProxyForURL(u, h) { var a = []; for (;;) { a.push(new Array(100000).fill(1)); } }",
        "x",
    );
    assert!(
        matches!(big, Err(PacError::Exhausted(_) | PacError::Budget(_))),
        "{big:?}"
    );
}

#[test]
fn answers_are_read() {
    assert_eq!(
        parse_choices("PROXY a.corp:3128; SOCKS5 b:1080;DIRECT").unwrap(),
        vec![
            ProxyChoice::Http {
                host: "a.corp".into(),
                port: 3128
            },
            ProxyChoice::Other {
                kind: "SOCKS5".into(),
                target: "b:1080".into()
            },
            ProxyChoice::Direct,
        ]
    );
    assert!(parse_choices("").is_err());
    assert!(parse_choices("PROXY a:0").is_err());
    assert!(parse_choices("PROXY a:99999").is_err());
    assert!(parse_choices("DIRECT now").is_err());
    assert!(parse_choices("PROXY a b c").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_script_gives_an_answer_or_an_error(script in ".{0,200}") {
        let _ = find_proxy(&script, "https://x/", "x", &env());
    }

    #[test]
    fn any_returned_string_parses_or_errors(s in ".{0,100}") {
        let _ = parse_choices(&s);
    }
}
