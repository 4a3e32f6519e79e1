//! Reading what `FindProxyForURL` returns: `"PROXY host:port; SOCKS host:port; DIRECT"`.

use std::fmt;

/// One way to reach a URL, as a PAC answer lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyChoice {
    /// Connect directly.
    Direct,
    /// An HTTP proxy (`PROXY host:port`, or `HTTP host:port`), used with CONNECT.
    Http {
        /// A name or an address.
        host: String,
        /// The proxy's port.
        port: u16,
    },
    /// A kind the agent does not use (`SOCKS`, `SOCKS5`, `HTTPS`, ...), kept for the log.
    Other {
        /// The keyword as written.
        kind: String,
        /// `host:port` as written.
        target: String,
    },
}

impl fmt::Display for ProxyChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyChoice::Direct => f.write_str("DIRECT"),
            ProxyChoice::Http { host, port } => write!(f, "PROXY {host}:{port}"),
            ProxyChoice::Other { kind, target } => write!(f, "{kind} {target}"),
        }
    }
}

/// Reads a PAC answer. An empty answer is an error (browsers treat it as DIRECT, but an
/// empty answer is almost always a script bug worth showing).
pub fn parse_choices(answer: &str) -> Result<Vec<ProxyChoice>, String> {
    let mut out = Vec::new();
    for (i, item) in answer.split(';').enumerate() {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let mut words = item.split_whitespace();
        let kind = words.next().unwrap_or_default();
        let target = words.next();
        if words.next().is_some() {
            return Err(format!(
                "entry {} ({item:?}) has more than two words",
                i + 1
            ));
        }
        let choice = match (kind.to_ascii_uppercase().as_str(), target) {
            ("DIRECT", None) => ProxyChoice::Direct,
            ("DIRECT", Some(_)) => {
                return Err(format!(
                    "entry {} ({item:?}): DIRECT takes no address",
                    i + 1
                ));
            }
            (_, None) => {
                return Err(format!(
                    "entry {} ({item:?}) names no host:port; write e.g. \"PROXY 10.10.10.11:8080\"",
                    i + 1
                ));
            }
            ("PROXY" | "HTTP", Some(target)) => {
                let (host, port) = split_host_port(target).ok_or_else(|| {
                    format!(
                        "entry {} ({item:?}): {target:?} is not host:port with a port 1..65535",
                        i + 1
                    )
                })?;
                ProxyChoice::Http { host, port }
            }
            (_, Some(target)) => ProxyChoice::Other {
                kind: kind.to_string(),
                target: target.to_string(),
            },
        };
        out.push(choice);
    }
    if out.is_empty() {
        return Err("no proxy and no DIRECT in the answer".to_string());
    }
    Ok(out)
}

/// `host:port`, `[v6]:port`.
fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|&p| p != 0)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    Some((host.to_string(), port))
}
