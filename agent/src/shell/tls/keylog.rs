//! TLS session secrets in the SSLKEYLOGFILE form (`LABEL <client random> <secret>`, hex),
//! so that Wireshark and tshark can decrypt what the agent and the servers sent.
//!
//! [`KeyLogLines`] keeps them in memory (one per simulated run: the capture export writes
//! them into the pcapng file); [`KeyLogFile`] appends them to a file as they come (real
//! mode's `--keylog FILE`). Both ends of a session log the same secrets: each line is
//! kept once, in the order it first came.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;

use rustls::KeyLog;

/// One SSLKEYLOGFILE line, with its line break.
fn line(label: &str, client_random: &[u8], secret: &[u8]) -> String {
    let mut out = String::with_capacity(label.len() + 2 * (client_random.len() + secret.len()) + 3);
    out.push_str(label);
    out.push(' ');
    for b in client_random {
        let _ = write!(out, "{b:02x}");
    }
    out.push(' ');
    for b in secret {
        let _ = write!(out, "{b:02x}");
    }
    out.push('\n');
    out
}

/// Secrets collected in memory, in the order they were first logged.
#[derive(Debug, Default)]
pub struct KeyLogLines {
    inner: Mutex<Lines>,
}

#[derive(Debug, Default)]
struct Lines {
    seen: BTreeSet<String>,
    text: String,
}

impl KeyLogLines {
    /// An empty collector.
    pub fn new() -> KeyLogLines {
        KeyLogLines::default()
    }

    /// Every line so far, as an SSLKEYLOGFILE's text.
    pub fn text(&self) -> String {
        self.inner
            .lock()
            .map(|l| l.text.clone())
            .unwrap_or_default()
    }

    /// Whether nothing was logged.
    pub fn is_empty(&self) -> bool {
        self.inner.lock().map(|l| l.text.is_empty()).unwrap_or(true)
    }
}

impl KeyLog for KeyLogLines {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let line = line(label, client_random, secret);
        if let Ok(mut lines) = self.inner.lock()
            && lines.seen.insert(line.clone())
        {
            lines.text.push_str(&line);
        }
    }
}

/// Secrets appended to a file, one flushed line at a time (so a capture can be decrypted
/// while the process still runs).
#[derive(Debug)]
pub struct KeyLogFile {
    file: Mutex<std::fs::File>,
    seen: Mutex<BTreeSet<String>>,
}

impl KeyLogFile {
    /// Opens `path` for appending (creating it), as SSLKEYLOGFILE writers do.
    pub fn create(path: &Path) -> std::io::Result<KeyLogFile> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(KeyLogFile {
            file: Mutex::new(file),
            seen: Mutex::default(),
        })
    }
}

impl KeyLog for KeyLogFile {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let line = line(label, client_random, secret);
        let new = self
            .seen
            .lock()
            .map(|mut seen| seen.insert(line.clone()))
            .unwrap_or(false);
        if new && let Ok(mut file) = self.file.lock() {
            // A key log is a debugging aid: a failed write must not break the session.
            let _ = file.write_all(line.as_bytes()).and_then(|()| file.flush());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_hex_in_first_seen_order_without_repeats() {
        let log = KeyLogLines::new();
        assert!(log.is_empty());
        log.log("CLIENT_TRAFFIC_SECRET_0", &[0xab, 0x01], &[0xff]);
        log.log("SERVER_TRAFFIC_SECRET_0", &[0xab, 0x01], &[0x00, 0x10]);
        log.log("CLIENT_TRAFFIC_SECRET_0", &[0xab, 0x01], &[0xff]);
        assert_eq!(
            log.text(),
            "CLIENT_TRAFFIC_SECRET_0 ab01 ff\nSERVER_TRAFFIC_SECRET_0 ab01 0010\n"
        );
    }

    #[test]
    fn the_file_gets_each_line_once() {
        let path = std::env::temp_dir().join(format!("steerlab-keylog-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let log = KeyLogFile::create(&path).unwrap();
        log.log("CLIENT_HANDSHAKE_TRAFFIC_SECRET", &[1], &[2]);
        log.log("CLIENT_HANDSHAKE_TRAFFIC_SECRET", &[1], &[2]);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(text, "CLIENT_HANDSHAKE_TRAFFIC_SECRET 01 02\n");
    }
}
