//! What an app says first on a TCP flow, read from the start of its reassembled stream:
//! a TLS ClientHello's server name (RFC 8446 section 4.1.2, RFC 6066 section 3), over as
//! many records and segments as it takes, or an HTTP request's Host, or an HTTP CONNECT's
//! `host:port` (RFC 9110 section 9.3.6).

/// Bytes of a stream's start kept to read it.
pub const MAX_PREFIX: usize = 32 * 1024;

/// What the start of a stream is, so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniffed {
    /// Not enough bytes yet.
    NeedMore,
    /// A TLS ClientHello, with its server name if it has one.
    ClientHello {
        /// The `server_name` extension's host name, lower case.
        sni: Option<String>,
    },
    /// An HTTP request.
    Http(HttpRequest),
    /// Something else.
    Unknown,
}

/// An HTTP request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The host and port of a CONNECT.
    pub connect: Option<(String, u16)>,
    /// The Host header (or an absolute URL's host), lower case, without its port.
    pub host: Option<String>,
    /// Where the head ends in the stream (the tunneled bytes of a CONNECT start there).
    pub head_len: usize,
}

/// Reads the start of a client's stream. `complete` says no more bytes will come (the
/// flow closed or the prefix is full): then a partial head is read as far as it goes.
pub fn sniff(buf: &[u8], complete: bool) -> Sniffed {
    match buf.first() {
        None if complete => Sniffed::Unknown,
        None => Sniffed::NeedMore,
        Some(22) => client_hello(buf, complete),
        Some(_) => http(buf, complete),
    }
}

/// The length the stream must reach before [`sniff`] can answer differently than
/// `NeedMore` on `buf`: the end of its first incomplete TLS record, or for anything else
/// an eighth more, so a stream arriving a byte at a time is read O(n log n), not O(n²).
pub fn needed(buf: &[u8]) -> usize {
    if buf.first() != Some(&22) {
        return buf.len() + buf.len() / 8 + 1;
    }
    let mut at = 0;
    while let Some(header) = buf.get(at..at + 5) {
        at += 5 + usize::from(u16::from_be_bytes([header[3], header[4]]));
        if at > buf.len() {
            return at;
        }
    }
    // Between records: the next header.
    (at + 5).max(buf.len() + 1)
}

fn client_hello(buf: &[u8], complete: bool) -> Sniffed {
    // The handshake bytes of the records so far (the last one may be partial).
    let mut handshake: Vec<u8> = Vec::new();
    let mut at = 0;
    while let Some(header) = buf.get(at..at + 5) {
        if header[0] != 22 || header[1] != 3 {
            break;
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        let body = buf.get(at + 5..).unwrap_or_default();
        handshake.extend_from_slice(&body[..len.min(body.len())]);
        at += 5 + len;
        if handshake.len() >= 4 {
            let hs_len = usize::from(handshake[1]) << 16
                | usize::from(handshake[2]) << 8
                | usize::from(handshake[3]);
            if handshake[0] != 1 {
                return Sniffed::Unknown;
            }
            if handshake.len() >= 4 + hs_len {
                return Sniffed::ClientHello {
                    sni: server_name(&handshake[4..4 + hs_len]),
                };
            }
        }
    }
    if at == 0 && buf.len() >= 5 {
        // The first record is not a TLS handshake record.
        return Sniffed::Unknown;
    }
    if complete {
        // Cut short: the server name may already be there.
        if handshake.first() == Some(&1) {
            return Sniffed::ClientHello {
                sni: server_name(handshake.get(4..).unwrap_or_default()),
            };
        }
        return Sniffed::Unknown;
    }
    Sniffed::NeedMore
}

/// The host name of a TLS ClientHello body's `server_name` extension.
fn server_name(body: &[u8]) -> Option<String> {
    hello_server_name(body, false)
}

/// The host name (lower case) of a ClientHello body's `server_name` extension; a DTLS
/// ClientHello (`dtls`) carries a cookie after the session id.
pub fn hello_server_name(body: &[u8], dtls: bool) -> Option<String> {
    let mut r = Reader(body);
    r.skip(2 + 32)?; // version, random
    let session = r.u8()?;
    r.skip(usize::from(session))?;
    if dtls {
        let cookie = r.u8()?;
        r.skip(usize::from(cookie))?;
    }
    let suites = r.u16()?;
    r.skip(usize::from(suites))?;
    let compression = r.u8()?;
    r.skip(usize::from(compression))?;
    let total = usize::from(r.u16()?);
    let mut ext = Reader(r.0.get(..total.min(r.0.len()))?);
    while let (Some(kind), Some(len)) = (ext.u16(), ext.u16()) {
        let data = ext.take(usize::from(len))?;
        if kind != 0 {
            continue;
        }
        let mut list = Reader(data);
        let list_len = usize::from(list.u16()?);
        let mut names = Reader(list.take(list_len.min(list.0.len()))?);
        while let (Some(name_type), Some(name_len)) = (names.u8(), names.u16()) {
            let name = names.take(usize::from(name_len))?;
            if name_type == 0 {
                return host_text(name);
            }
        }
        return None;
    }
    None
}

fn http(buf: &[u8], complete: bool) -> Sniffed {
    const METHODS: [&[u8]; 9] = [
        b"GET ",
        b"POST ",
        b"HEAD ",
        b"PUT ",
        b"DELETE ",
        b"OPTIONS ",
        b"PATCH ",
        b"CONNECT ",
        b"TRACE ",
    ];
    let Some(method) = METHODS.iter().find(|m| buf.starts_with(m)) else {
        let could_be = METHODS
            .iter()
            .any(|m| buf.len() < m.len() && m.starts_with(buf));
        return if could_be && !complete {
            Sniffed::NeedMore
        } else {
            Sniffed::Unknown
        };
    };
    let head_end = find(buf, b"\r\n\r\n").map(|i| i + 4);
    let line_end = find(buf, b"\r\n");
    let is_connect = *method == b"CONNECT ";
    // A CONNECT is known from its request line; other requests need their headers.
    let ready = head_end.is_some() || complete || (is_connect && line_end.is_some());
    if !ready {
        return Sniffed::NeedMore;
    }
    let head = &buf[..head_end.unwrap_or(buf.len())];
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let target = request_line.split(' ').nth(1).unwrap_or_default();
    let connect = if is_connect {
        split_host_port(target)
    } else {
        None
    };
    let mut host = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("host")
            .then(|| strip_port(value.trim()))
    });
    if host.is_none() {
        // An absolute URL, as sent to a forward proxy.
        host = target
            .split_once("://")
            .map(|(_, rest)| strip_port(rest.split('/').next().unwrap_or_default()));
    }
    if is_connect && host.is_none() {
        host = connect.as_ref().map(|(h, _)| h.clone());
    }
    Sniffed::Http(HttpRequest {
        connect,
        host: host.and_then(|h| host_text(h.as_bytes())),
        head_len: head_end.unwrap_or(buf.len()),
    })
}

/// `host:port` or `[v6]:port`.
fn split_host_port(target: &str) -> Option<(String, u16)> {
    let (host, port) = match target.strip_prefix('[') {
        Some(rest) => {
            let (h, p) = rest.split_once("]:")?;
            (h, p)
        }
        None => target.rsplit_once(':')?,
    };
    let port = port.parse().ok()?;
    let host = host_text(host.as_bytes())?;
    Some((host, port))
}

fn strip_port(value: &str) -> String {
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default().to_string();
    }
    match value.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h.to_string(),
        _ => value.to_string(),
    }
}

/// A host name as text: printable ASCII without spaces, lower case; else nothing.
fn host_text(bytes: &[u8]) -> Option<String> {
    let ok = !bytes.is_empty() && bytes.len() <= 255 && bytes.iter().all(|b| b.is_ascii_graphic());
    ok.then(|| String::from_utf8_lossy(bytes).to_ascii_lowercase())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(|_| ())
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
}

#[cfg(test)]
mod tests;
