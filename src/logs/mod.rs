//! The agent's log in the nsdebuglog shape support engineers know:
//!
//! ```text
//! 2019/10/14 11:40:49.871 stAgentSvc p1 t1 2 dnsResolver Failed to resolve gateway-acme.goskope.com by EDNS
//! ```
//!
//! [`format`] renders lines, [`capture`] collects the agent's `tracing` events as lines on
//! the simulated clock, [`parse`] reads customer (or simulated) logs back, and [`events`]
//! says what each entry means, so logs compare on meaning.

pub mod capture;
pub mod events;
pub mod format;
pub mod parse;

pub use capture::{Capture, CaptureLayer};
pub use format::{format_line, format_timestamp};
