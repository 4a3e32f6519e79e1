//! The site proxy's CONNECT request parser (`steerlab::world::proxy`), in a small turmoil
//! world: the proxy, one origin listening on 443, the endpoint sending the input. The
//! answer is nothing (an incomplete head) or exactly one status line; a complete head
//! with nothing after it always gets one; 405 exactly when the method is not CONNECT;
//! 200 only for a known name or address on the listening port. The same bytes also go
//! to the replay's CONNECT reader (`steerlab::pcap::sniff`), which must not panic and
//! reports a CONNECT only for a request that starts with one.
#![no_main]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ANSWERS: [&str; 4] = [
    "HTTP/1.1 200 Connection established\r\n\r\n",
    "HTTP/1.1 400 Bad Request\r\n\r\n",
    "HTTP/1.1 405 Method Not Allowed\r\n\r\n",
    "HTTP/1.1 502 Bad Gateway\r\n\r\n",
];

fuzz_target!(|request: &[u8]| {
    sniffed_connect(request);
    let answer = proxy_answer(request);
    let head = request
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| &request[..i + 4])
        .filter(|h| h.len() <= 8 * 1024);
    let status = ANSWERS.iter().find(|a| answer == a.as_bytes());
    assert!(
        answer.is_empty() || status.is_some(),
        "unexpected answer {answer:?}"
    );
    let Some(head) = head else {
        assert!(answer.is_empty(), "an answer to an incomplete head");
        return;
    };
    // Known (tests/fuzz_parsers.rs, proxy_error_answer_survives_bytes_after_the_head):
    // bytes after the head make the proxy's error answer get lost. Only a head with
    // nothing after it must get an answer.
    let Some(status) = status else {
        assert!(request.len() > head.len(), "a complete head got no answer");
        return;
    };
    let text = String::from_utf8_lossy(head);
    let mut words = text.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    assert_eq!(status.contains(" 405 "), method != "CONNECT");
    if status.contains(" 200 ") {
        let (host, port) = target.rsplit_once(':').unwrap_or_default();
        assert_eq!(port.parse::<u16>(), Ok(443));
        assert!(host.eq_ignore_ascii_case("www.box.com") || host == "107.152.27.197");
    }
});

fn sniffed_connect(request: &[u8]) {
    use steerlab::pcap::sniff::{Sniffed, sniff};
    let _ = sniff(request, false);
    if let Sniffed::Http(http) = sniff(request, true) {
        assert!(http.head_len <= request.len());
        if let Some((host, _port)) = &http.connect {
            assert!(request.starts_with(b"CONNECT "));
            assert_eq!(&host.to_ascii_lowercase(), host);
            assert!(!host.is_empty() && host.bytes().all(|b| b.is_ascii_graphic()));
        }
    }
}

fn proxy_answer(request: &[u8]) -> Vec<u8> {
    let proxy = Ipv4Addr::new(10, 10, 10, 11);
    let origin = Ipv4Addr::new(107, 152, 27, 197);
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(30))
        .rng_seed(1)
        .build();
    let names = Arc::new(BTreeMap::from([("www.box.com".to_string(), origin)]));
    sim.host(IpAddr::V4(proxy), move || {
        steerlab::world::proxy::Proxy {
            names: names.clone(),
        }
        .serve(8080)
    });
    sim.host(IpAddr::V4(origin), || async {
        let listener = turmoil::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, 443)).await?;
        let mut held = Vec::new();
        loop {
            held.push(listener.accept().await?.0);
        }
    });
    let answer = Arc::new(Mutex::new(Vec::new()));
    let out = answer.clone();
    let request = request.to_vec();
    sim.client(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 10)), async move {
        let mut stream = turmoil::net::TcpStream::connect((proxy, 8080)).await?;
        stream.write_all(&request).await?;
        let mut got = Vec::new();
        let read = async {
            let mut buf = [0u8; 512];
            while let Ok(n @ 1..) = stream.read(&mut buf).await {
                got.extend_from_slice(&buf[..n]);
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
        if let Ok(mut out) = out.lock() {
            *out = got;
        }
        Ok(())
    });
    sim.run().expect("the proxy world runs");
    let mut got = Vec::new();
    if let Ok(mut answer) = answer.lock() {
        got = std::mem::take(&mut *answer);
    }
    got
}
