//! DNS answer capture: `DnsMap::learn` on any bytes (the answers the agent's driver
//! sees going to apps). Every recorded pair must be readable back, names lower case,
//! and nothing may outlive the largest TTL.
#![no_main]

use std::time::{Duration, Instant};

use agent::core::steer::DnsMap;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let mut map = DnsMap::default();
    let Ok(count) = map.learn(data, now) else {
        return;
    };
    let pairs: Vec<(String, std::net::IpAddr)> = map
        .live_pairs(now)
        .map(|(n, ip)| (n.to_string(), ip))
        .collect();
    assert!(pairs.len() <= count);
    for (name, ip) in &pairs {
        assert!(map.names(*ip, now).contains(&name.as_str()));
        assert_eq!(&name.to_ascii_lowercase(), name);
    }
    let later = now + Duration::from_secs(u64::from(u32::MAX) + 1);
    map.expire(later);
    assert_eq!(map.live_pairs(later).count(), 0);
});
