use super::*;
use crate::pcap::synth::client_hello;

#[test]
fn a_client_hello_names_its_server_however_it_is_cut() {
    let hello = client_hello("WWW.Box.com");
    for cut in 0..hello.len() {
        assert_eq!(
            sniff(&hello[..cut], false),
            Sniffed::NeedMore,
            "cut at {cut}"
        );
    }
    assert_eq!(
        sniff(&hello, false),
        Sniffed::ClientHello {
            sni: Some("www.box.com".into())
        }
    );
}

#[test]
fn a_client_hello_over_two_records() {
    let hello = client_hello("www.box.com");
    let hs = &hello[5..];
    let (a, b) = hs.split_at(30);
    let mut two = vec![0x16, 0x03, 0x01];
    two.extend_from_slice(&(a.len() as u16).to_be_bytes());
    two.extend_from_slice(a);
    two.extend_from_slice(&[0x16, 0x03, 0x01]);
    two.extend_from_slice(&(b.len() as u16).to_be_bytes());
    two.extend_from_slice(b);
    assert_eq!(sniff(&two[..40], false), Sniffed::NeedMore);
    assert_eq!(
        sniff(&two, false),
        Sniffed::ClientHello {
            sni: Some("www.box.com".into())
        }
    );
}

#[test]
fn a_client_hello_without_sni_and_a_cut_one() {
    let mut hello = client_hello("x");
    // Rename the server_name extension (type 0) so it is not one.
    let at = hello
        .windows(6)
        .position(|w| w == [0x00, 0x00, 0x00, 0x06, 0x00, 0x04])
        .unwrap();
    hello[at + 1] = 0x99;
    assert_eq!(sniff(&hello, false), Sniffed::ClientHello { sni: None });
    let full = client_hello("www.box.com");
    assert_eq!(
        sniff(&full[..full.len() - 2], true),
        Sniffed::ClientHello { sni: None },
        "a cut name is no name"
    );
}

#[test]
fn http_requests_and_connect() {
    let get = b"GET / HTTP/1.1\r\nUser-Agent: x\r\nhost: Example.COM:8080\r\n\r\n";
    assert_eq!(sniff(&get[..20], false), Sniffed::NeedMore);
    assert_eq!(
        sniff(get, false),
        Sniffed::Http(HttpRequest {
            connect: None,
            host: Some("example.com".into()),
            head_len: get.len()
        })
    );
    let connect = b"CONNECT www.box.com:443 HTTP/1.1\r\n";
    match sniff(connect, false) {
        Sniffed::Http(r) => {
            assert_eq!(r.connect, Some(("www.box.com".into(), 443)));
            assert_eq!(r.host.as_deref(), Some("www.box.com"));
        }
        other => panic!("{other:?}"),
    }
    let v6 = b"CONNECT [2001:db8::1]:8443 HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n\r\n";
    match sniff(v6, false) {
        Sniffed::Http(r) => {
            assert_eq!(r.connect, Some(("2001:db8::1".into(), 8443)));
            assert_eq!(r.host.as_deref(), Some("2001:db8::1"));
        }
        other => panic!("{other:?}"),
    }
    let proxy = b"GET http://Plain.example/x HTTP/1.1\r\n\r\n";
    match sniff(proxy, false) {
        Sniffed::Http(r) => assert_eq!(r.host.as_deref(), Some("plain.example")),
        other => panic!("{other:?}"),
    }
    assert_eq!(sniff(b"GE", false), Sniffed::NeedMore);
    assert_eq!(sniff(b"SSH-2.0-OpenSSH_9.6\r\n", false), Sniffed::Unknown);
    assert_eq!(sniff(b"", true), Sniffed::Unknown);
    assert_eq!(
        sniff(&[0x16, 0x03, 0x01, 0x00, 0x05, 0x02, 0, 0, 1, 0], false),
        Sniffed::Unknown
    );
}

#[test]
fn garbage_never_panics() {
    let mut rng = fastrand::Rng::with_seed(3);
    for _ in 0..20_000 {
        let len = rng.usize(..200);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
        if rng.bool() && !bytes.is_empty() {
            bytes[0] = 0x16;
        }
        let _ = sniff(&bytes, rng.bool());
    }
}

#[test]
fn needed_points_past_the_incomplete_record() {
    let hello = client_hello("www.box.com");
    assert_eq!(needed(&hello[..3]), 5, "a whole header first");
    assert_eq!(needed(&hello[..10]), hello.len());
    let mut two = hello.clone();
    two.extend_from_slice(&hello[..2]);
    assert_eq!(needed(&hello), hello.len() + 5);
    assert_eq!(needed(&two), hello.len() + 5);
    assert_eq!(needed(b"GET / HTTP/1.1\r\n"), 16 + 2 + 1);
}
