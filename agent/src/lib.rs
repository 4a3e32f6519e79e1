//! The steering agent: the system under test.
//!
//! The agent is the same code in the simulator and on real sockets. It has two halves:
//!
//! - [`core`]: a sans-IO state machine. Events go in through `handle_*` methods, actions
//!   (DNS queries, tunnel opens, log lines) come out of [`core::Agent::poll_action`], and
//!   the next deadline out of [`core::Agent::poll_timeout`]. No clock, no sockets, no
//!   randomness of its own: time is passed in, randomness comes from a seeded RNG.
//! - [`shell`]: a thin async loop that turns actions into IO over a [`shell::Net`]
//!   (real tokio sockets, or the simulator's sockets) and IO results back into events.
//!
//! [`wire`] is the tunnel's framing, shared with the gateway.

pub mod core;
pub mod pac;
pub mod shell;
pub mod tenant;
pub mod wire;
