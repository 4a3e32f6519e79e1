//! Captures: reading customer captures (pcap and pcapng, Ethernet, raw IP, Linux SLL and
//! SLL2, BSD loopback) and replaying them through the agent's steering logic.
//!
//! - [`read`]: capture files to frames, streaming, with correct timestamps; damage is a
//!   [`read::Damage`] naming the packet.
//! - [`decode`]: a frame to its TCP or UDP segment.
//! - [`control`]: how the agent's own connections (DoH, the tunnel) ended.
//! - [`tcp`]: one direction of a TCP connection put back in order.
//! - [`sniff`]: a stream's first words: TLS ClientHello SNI, HTTP Host, CONNECT.
//! - [`replay`]: DNS answers into the domain map, flows into verdicts, and what the
//!   capture shows of the agent's own control traffic.
//! - [`warn`]: warnings about a capture, grouped, each naming a packet.
//! - [`synth`]: a deterministic mixed capture of any size, for the benchmark.
//! - [`export`]: a simulated run as a capture.
//! - [`secrets`]: the pcapng Decryption Secrets Block (TLS keys inside the capture).

pub mod control;
pub mod decode;
pub mod export;
pub mod read;
pub mod replay;
pub mod secrets;
pub mod sniff;
pub mod synth;
pub mod tcp;
pub mod warn;

pub use read::{CaptureError, CaptureReader, Packet, Transport, read_capture};
pub use replay::{ReplayReport, Replayer, replay};
