//! steerlab: a deterministic simulation and test harness for endpoint traffic steering
//! and PoP selection.
//!
//! - [`scenario`]: the scenario file format and its loader (errors with file:line:column).
//! - [`world`]: a turmoil world built from a scenario, running the real agent.
//! - [`report`]: what a run produced and how it is rendered.
//! - [`expect`]: checking a run against the scenario's `[expect]`.
//! - [`logs`]: the nsdebuglog line format and the capture of the agent's log.
//! - [`origin`]: the origin servers apps reach.
//! - [`cli`]: the `steerlab` command.

pub mod cli;
pub mod diagnose;
pub mod expect;
pub mod logs;
pub mod origin;
pub mod pcap;
pub mod real;
pub mod report;
pub mod scenario;
pub mod world;
