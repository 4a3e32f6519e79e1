//! Captures: reading customer captures (pcap and pcapng, Ethernet, raw IP, Linux SLL and
//! SLL2, BSD loopback) and replaying them through the agent's steering logic.
//!
//! - [`read`]: capture files to decoded IP packets, with correct timestamps.
//! - [`replay`]: DNS answers into the domain map, SYNs into verdicts, and what the
//!   capture shows of the agent's own control traffic.

pub mod export;
pub mod read;
pub mod replay;

pub use read::{CaptureError, Packet, Transport, read_capture};
pub use replay::{ReplayReport, replay};
