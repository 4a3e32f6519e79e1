//! Firewall rules (`ACTION [PROTO[/PORT]] [to TARGET]`, e.g. `allow tcp/443 to
//! *.goskope.com`) and the host, address and name grammars the rest of the file shares.
//! Value parsers return `Err("what is wrong; what to write")`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};

use super::model::{ClientVersion, Rule, RuleAction, RuleProto, RuleTarget};
use super::raw::{Word, one_of, parse_word};

impl Rule {
    /// Parses one rule. Keywords are lowercase; host targets are stored lowercase.
    ///
    /// A port needs `tcp` or `udp`; `dns` means UDP and TCP port 53 and takes no port;
    /// `any` takes no port. Without a protocol the rule matches any.
    pub fn parse(text: &str) -> Result<Rule, String> {
        let text = text.trim();
        let mut words = text.split_whitespace();
        let Some(first) = words.next() else {
            return Err(format!("empty rule; {GRAMMAR}"));
        };
        let action: RuleAction = parse_word(first).map_err(|_| {
            format!(
                "unknown rule action `{first}`; {}",
                one_of(RuleAction::WORDS)
            )
        })?;
        let mut rule = Rule {
            action,
            proto: RuleProto::Any,
            port: None,
            target: None,
            text: text.to_owned(),
        };
        let mut next = words.next();
        if let Some(word) = next.filter(|w| *w != "to") {
            (rule.proto, rule.port) = parse_proto(word, first)?;
            next = words.next();
        }
        match next {
            None => {}
            Some("to") => {
                let target = words
                    .next()
                    .ok_or_else(|| format!("`to` needs a target; {TARGETS}"))?;
                rule.target = Some(parse_target(target)?);
            }
            Some(other) => {
                return Err(format!(
                    "expected `to TARGET` after the protocol, found `{other}`; {GRAMMAR}"
                ));
            }
        }
        if let Some(extra) = words.next() {
            return Err(format!(
                "unexpected `{extra}` after the target; a rule has one target"
            ));
        }
        Ok(rule)
    }
}

impl ClientVersion {
    /// Parses `MAJOR.MINOR[.PATCH[.BUILD]]`.
    pub fn parse(text: &str) -> Result<ClientVersion, String> {
        let parts: Result<Vec<u32>, _> = text.split('.').map(str::parse::<u32>).collect();
        match parts {
            Ok(parts) if (2..=4).contains(&parts.len()) => Ok(ClientVersion {
                text: text.to_owned(),
                parts,
            }),
            _ => Err(format!("`{text}` is not a client version")),
        }
    }
}

impl fmt::Display for Rule {
    /// The canonical text: the protocol is always written (`block any`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.action, self.proto)?;
        if let Some(port) = self.port {
            write!(f, "/{port}")?;
        }
        if let Some(target) = &self.target {
            write!(f, " to {target}")?;
        }
        Ok(())
    }
}

impl fmt::Display for RuleTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleTarget::Host(host) => f.write_str(host),
            RuleTarget::Wildcard(domain) => write!(f, "*.{domain}"),
            RuleTarget::Ip(ip) => write!(f, "{ip}"),
            RuleTarget::Cidr(net) => write!(f, "{net}"),
        }
    }
}

impl RuleTarget {
    /// Parses a host name, `*.domain`, an IP address or a CIDR block.
    pub fn parse(text: &str) -> Result<RuleTarget, String> {
        parse_target(text)
    }
}

const GRAMMAR: &str =
    "write ACTION [PROTO[/PORT]] [to TARGET], e.g. \"allow tcp/443 to *.goskope.com\"";
const TARGETS: &str = "write a host name, \"*.domain\", an IP address or a CIDR block";

/// `tcp`, `udp/443`, `dns`, `any`.
fn parse_proto(word: &str, action: &str) -> Result<(RuleProto, Option<u16>), String> {
    let (name, port) = match word.split_once('/') {
        Some((name, port)) => (name, Some(port)),
        None => (word, None),
    };
    let Ok(proto) = parse_word::<RuleProto>(name) else {
        if name.is_empty() || name.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "a port needs a protocol: write \"tcp/{}\" or \"udp/{0}\"",
                port.unwrap_or(name)
            ));
        }
        return Err(format!(
            "unknown protocol `{name}`; {} (for a destination write \"{action} to {word}\")",
            one_of(RuleProto::WORDS)
        ));
    };
    let Some(port) = port else {
        return Ok((proto, None));
    };
    match proto {
        RuleProto::Dns => {
            Err("`dns` already means UDP and TCP port 53; write \"dns\" without a port".into())
        }
        RuleProto::Any => Err(format!(
            "`any` takes no port; write \"tcp/{port}\" or \"udp/{port}\""
        )),
        RuleProto::Tcp | RuleProto::Udp => match port.parse::<u16>() {
            Ok(p) if p != 0 => Ok((proto, Some(p))),
            _ => Err(format!(
                "`{port}` is not a port; write a number from 1 to 65535"
            )),
        },
    }
}

/// A host name, `*.domain`, an IP address or a CIDR block.
fn parse_target(text: &str) -> Result<RuleTarget, String> {
    if let Some(domain) = text.strip_prefix("*.") {
        return check_host(domain)
            .map(RuleTarget::Wildcard)
            .map_err(|e| format!("{e}; {TARGETS}"));
    }
    if text.contains('/') {
        return text
            .parse::<ipnet::IpNet>()
            .map(RuleTarget::Cidr)
            .map_err(|_| format!("`{text}` is not a CIDR block; write e.g. \"203.0.113.0/24\""));
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(RuleTarget::Ip(ip));
    }
    check_host(text)
        .map(RuleTarget::Host)
        .map_err(|e| format!("{e}; {TARGETS}"))
}

/// A DNS name (letters, digits, `-`, `_`, dots between non-empty labels), lowercased.
/// All-numeric names are rejected as they are mistyped IP addresses.
pub(super) fn check_host(text: &str) -> Result<String, String> {
    let name = text.strip_suffix('.').unwrap_or(text);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!("`{text}` is not a host name"));
    }
    if name.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!("`{text}` is not a valid IP address"));
    }
    Ok(name.to_ascii_lowercase())
}

pub(super) fn text_value(s: &str, what: &str, example: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err(format!("empty {what}; write {example}"))
    } else {
        Ok(s.to_owned())
    }
}

pub(super) fn location(s: &str) -> Result<String, String> {
    text_value(s, "location", "a place such as \"us-east\" or \"eu-west\"")
}

pub(super) fn host_name(s: &str) -> Result<String, String> {
    check_host(s).map_err(|e| format!("{e}; write e.g. \"www.box.com\""))
}

pub(super) fn client_version(s: &str) -> Result<ClientVersion, String> {
    ClientVersion::parse(s).map_err(|e| format!("{e}; write e.g. \"95.1.0\" or \"96.1\""))
}

pub(super) fn ipv4(s: &str) -> Result<Ipv4Addr, String> {
    s.parse()
        .map_err(|_| format!("`{s}` is not an IPv4 address; write e.g. \"10.0.0.10\""))
}

/// An `http://host[:port][/path]` URL (on-prem probes are plain HTTP).
pub(super) fn http_url(s: &str) -> Result<String, String> {
    let help = "write e.g. \"http://intranet.acme.corp/alive\"";
    let rest = s
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{s}` is not an http:// URL; {help}"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((host, port)) => {
            port.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("`{port}` in `{s}` is not a port; {help}"))?;
            host
        }
        None => authority,
    };
    if host.parse::<Ipv4Addr>().is_err() {
        check_host(host).map_err(|e| format!("{e} in `{s}`; {help}"))?;
    }
    Ok(s.to_string())
}

pub(super) fn socket_addr(s: &str) -> Result<SocketAddrV4, String> {
    let help = "write \"IP:PORT\", e.g. \"10.10.10.11:8080\"";
    s.parse()
        .map_err(|_| format!("`{s}` is not an address and port; {help}"))
}

/// Letters, digits and `-`: it becomes part of `gateway-<tenant>.goskope.com`.
pub(super) fn tenant_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let help = "write letters, digits and `-`, e.g. \"acme\"";
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!("`{s}` cannot be part of a host name; {help}"))
    }
}

/// `HOST:PORT` of a connect event; HOST is a name or an IPv4 address.
pub(super) fn connect_target(s: &str) -> Result<(String, u16), String> {
    const HELP: &str = "write \"HOST:PORT\", e.g. \"www.box.com:443\"";
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("`{s}` has no port; {HELP}"))?;
    let Some(port) = port.parse::<u16>().ok().filter(|p| *p != 0) else {
        return Err(format!("`{port}` is not a port from 1 to 65535; {HELP}"));
    };
    let host = match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => check_host(host).map_err(|e| format!("{e}; {HELP}"))?,
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BAD_RULES: &str = "|deny any|block 443|block dns/53|block any/443|block tcp/0|\
        block tcp/70000|block tcp to|block to a b|block 8.8.8.8|block to *.|block to 300.1.1.1|\
        block to 10.0.0.0/33|Block any|block tcp/443 from x";

    #[test]
    fn rejects_bad_rules() {
        for text in BAD_RULES.split('|') {
            assert!(Rule::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn fills_the_fields() -> Result<(), String> {
        let dns = Rule::parse("allow dns")?;
        let want =
            r#"Rule { action: Allow, proto: Dns, port: None, target: None, text: "allow dns" }"#;
        assert_eq!(format!("{dns:?}"), want);
        let ip = Rule::parse("block to 1.2.3.4")?.target;
        assert_eq!(ip, Some(RuleTarget::Ip([1, 2, 3, 4].into())));
        let rule = Rule::parse("  block   to  *.Example.COM ")?;
        assert_eq!(
            rule.target,
            Some(RuleTarget::Wildcard("example.com".into()))
        );
        assert_eq!(rule.text, "block   to  *.Example.COM");
        Ok(())
    }
}
