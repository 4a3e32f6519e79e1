//! The PAC evaluator: `find_proxy` with an arbitrary script, URL and host (the input
//! split at its first two NUL bytes). It must answer or fail within its budgets, and an
//! answer's choices are the returned string read as a proxy list.
#![no_main]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use agent::pac::{MAX_ALERTS, PacEnv, find_proxy, parse_choices};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\0');
    let script = parts.next().unwrap_or("");
    let url = parts.next().unwrap_or("https://gateway-acme.goskope.com/");
    let host = parts.next().unwrap_or("gateway-acme.goskope.com");
    let env = PacEnv {
        my_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 10)),
        now_unix_ms: 1_571_053_240_000,
        names: BTreeMap::from([(
            "gateway-acme.goskope.com".to_string(),
            IpAddr::V4(Ipv4Addr::new(8, 36, 116, 35)),
        )]),
    };
    if let Ok(answer) = find_proxy(script, url, host, &env) {
        assert_eq!(parse_choices(&answer.returned), Ok(answer.choices.clone()));
        assert!(answer.alerts.len() <= MAX_ALERTS);
    }
});
