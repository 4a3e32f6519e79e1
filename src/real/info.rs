//! `serve.json`: what `steerlab serve` runs where, for `steerlab agent --connect` and for
//! scripts; and the ready-to-paste command line of each real client.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file name of the serve information in the output folder.
pub const FILE: &str = "serve.json";

/// Everything `steerlab serve` started.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServeInfo {
    /// The scenario file (absolute).
    pub scenario: PathBuf,
    /// The scenario's name.
    pub name: String,
    /// The scenario's seed (the certificates' keys derive from it).
    pub seed: u64,
    /// The tenant.
    pub tenant: String,
    /// `gateway-<tenant>.<domain>`.
    pub gateway_name: String,
    /// `gateway-backup-<tenant>.<domain>`.
    pub backup_name: String,
    /// The scenario's client address: what the agent puts in its ECS option.
    pub client_ip: Ipv4Addr,
    /// DNS over HTTPS.
    pub doh: Service,
    /// The GSLB API.
    pub gslb: Service,
    /// The local resolver (UDP and TCP on one port).
    pub ldns: SocketAddr,
    /// The port every gateway listens on (TLS on TCP, DTLS on UDP).
    pub gateway_port: u16,
    /// The site's CONNECT proxy.
    pub proxy: Option<SocketAddr>,
    /// The PAC file's URL, when the scenario configures one (or WPAD).
    pub pac_url: Option<String>,
    /// The captive-portal check URL.
    pub portal_check_url: String,
    /// The tenant's control plane (`addon-<tenant>.<domain>` and the other names of its
    /// host), when the scenario has `[control_plane]`.
    #[serde(default)]
    pub control_plane: Option<Service>,
    /// CA certificates (PEM).
    pub ca: CaFiles,
    /// The enrolled endpoint's DTLS identity (PEM), signed by the tenant CA.
    pub endpoint: Identity,
    /// Every host.
    pub hosts: Vec<HostInfo>,
    /// Whether some service got an ephemeral port instead of its real one.
    pub ephemeral_ports: bool,
    /// What real mode leaves out of this scenario.
    pub not_applied: Vec<String>,
    /// Ready-to-paste client command lines.
    pub clients: Vec<ClientLine>,
}

/// A named HTTPS service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Service {
    /// The name its certificate carries.
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Whether it never answers (partitioned at t = 0).
    pub silent: bool,
}

/// The CA certificate files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaFiles {
    /// The public CA: DoH, GSLB, origins.
    pub public: PathBuf,
    /// The tenant CA: gateways.
    pub tenant: PathBuf,
}

/// A certificate and its key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its PKCS#8 key (PEM).
    pub key: PathBuf,
}

/// One host.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostInfo {
    /// The scenario's name for it.
    pub label: String,
    /// What it is (`doh`, `ldns`, `gslb`, `gateway`, `backup`, `origin`, `proxy`, `pac`,
    /// `portal-check`, `tenant`).
    pub kind: String,
    /// Its loopback address.
    pub ip: Ipv4Addr,
    /// Its address in the simulated world, if the scenario gives one.
    pub sim_ip: Option<Ipv4Addr>,
    /// Names that resolve to it.
    pub names: Vec<String>,
    /// What it listens on.
    pub services: Vec<Listening>,
    /// Partitioned at t = 0: it never answers.
    pub silent: bool,
}

/// One listening socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Listening {
    /// `https`, `http`, `dns`, `tls`, `dtls`, `connect`.
    pub what: String,
    /// `tcp` or `udp`.
    pub proto: String,
    /// The port.
    pub port: u16,
}

/// A real client's command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientLine {
    /// The tool (`dig`, `kdig`, `curl`, `openssl`, `steerlab`).
    pub tool: String,
    /// What it shows.
    pub about: String,
    /// The arguments, program first.
    pub argv: Vec<String>,
    /// The line to paste into a shell.
    pub line: String,
}

/// Why `serve.json` could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InfoError {
    /// The file could not be read.
    #[error("cannot read {path}: {source} (start `steerlab serve` first; it writes {FILE})")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a serve.json.
    #[error("{path}: not a steerlab serve.json: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// An address is off loopback.
    #[error("{path}: {addr} is not a loopback address; real mode stays on 127.0.0.0/8")]
    NotLoopback {
        /// The file.
        path: PathBuf,
        /// The address.
        addr: String,
    },
}

impl ServeInfo {
    /// Reads and checks `path`: every address in it must be on loopback.
    pub fn read(path: &Path) -> Result<ServeInfo, InfoError> {
        let text = std::fs::read_to_string(path).map_err(|source| InfoError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let info: ServeInfo = serde_json::from_str(&text).map_err(|source| InfoError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        let addrs = [info.doh.addr, info.gslb.addr, info.ldns]
            .into_iter()
            .chain(info.proxy)
            .chain(info.control_plane.as_ref().map(|c| c.addr))
            .map(|a| a.ip())
            .chain(info.hosts.iter().map(|h| h.ip.into()));
        for ip in addrs {
            if !ip.is_loopback() {
                return Err(InfoError::NotLoopback {
                    path: path.to_path_buf(),
                    addr: ip.to_string(),
                });
            }
        }
        Ok(info)
    }

    /// The loopback address of a scenario address, if a host has it.
    pub fn translate(&self, sim: Ipv4Addr) -> Option<Ipv4Addr> {
        self.hosts
            .iter()
            .find(|h| h.sim_ip == Some(sim))
            .map(|h| h.ip)
    }

    /// The host at a loopback address.
    pub fn host_at(&self, ip: Ipv4Addr) -> Option<&HostInfo> {
        self.hosts.iter().find(|h| h.ip == ip)
    }

    /// The tenant's REST API name: `<tenant>.<domain>`, on the control plane's host.
    pub fn tenant_api_name(&self) -> String {
        let domain = self
            .control_plane
            .as_ref()
            .and_then(|c| c.name.split_once('.'))
            .map_or("goskope.com", |(_, d)| d);
        format!("{}.{domain}", self.tenant)
    }

    /// The command line of `tool` (the first, if several).
    pub fn client(&self, tool: &str) -> Option<&ClientLine> {
        self.clients.iter().find(|c| c.tool == tool)
    }
}

impl ClientLine {
    /// A line from its arguments; `stdin_null` appends `< /dev/null` (for tools that
    /// would otherwise wait for input).
    pub fn new(tool: &str, about: &str, argv: Vec<String>, stdin_null: bool) -> ClientLine {
        let mut line = argv
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ");
        if stdin_null {
            line.push_str(" < /dev/null");
        }
        ClientLine {
            tool: tool.to_string(),
            about: about.to_string(),
            argv,
            line,
        }
    }
}

/// `word` quoted for a POSIX shell when it needs to be.
pub fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./:=@+,%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_what_a_shell_would_expand() {
        assert_eq!(shell_quote("127.0.0.10:443"), "127.0.0.10:443");
        assert_eq!(
            shell_quote("https://g/v1/pops?tenant=acme"),
            "'https://g/v1/pops?tenant=acme'"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
