//! The world: a turmoil simulation built from a scenario.
//!
//! Hosts: the endpoint (the real agent through its shell, on [`net::SimNet`]), the DoH
//! server, the local resolver, every PoP's gateway, gateway-backup, and the origins. The
//! driver ([`World`]) steps the simulation one tick at a time and applies the scenario's events
//! (start, stop, partitions, rule changes) between ticks.
//!
//! - [`registry`]: addresses and names of hosts.
//! - [`path`]: the endpoint's firewalls and partitions.
//! - [`net`]: the endpoint's sockets behind the path.
//! - [`pki`]: the world's CAs and certificates.
//! - [`serve`]: serving routers, the resolver and gateways on turmoil hosts.
//! - [`plan`]: every host's address and names, decided before anything runs.
//! - [`build`]: the scenario in the agent's and the servers' terms.
//! - [`servers`]: the server hosts (DoH, GSLB, resolvers, gateways, origins, middleboxes).
//! - [`endpoint`]: one endpoint: its path, the real agent and its apps.
//! - [`engine`]: the [`World`] you step: built from a scenario, advanced in time.
//! - [`sleep`]: idle server hosts stop being ticked and wake before a message reaches them.
//! - [`tap`]: the capture at every host, read off turmoil's links between steps.
//! - [`parallel`]: several worlds at once, results in order (`run --jobs`).

pub mod apps;
pub mod build;
pub mod endpoint;
pub mod engine;
pub mod inspect;
pub mod net;
pub mod pac;
pub mod parallel;
pub mod path;
pub mod pki;
pub mod plan;
pub mod portal;
pub mod proxy;
pub mod registry;
pub mod serve;
pub mod servers;
pub mod sleep;
pub mod tap;
pub mod tenant;
pub mod timeline;
pub mod udp;

use std::time::Duration;

pub use parallel::{default_jobs, run_many, run_many_each};

pub use build::{WorldError, steering as agent_steering};
pub use engine::{Captures, World, run, run_capturing, run_with};
pub use plan::proxy_resolution;

/// How far simulated time moves per step. Messages are delivered on ticks, so latencies
/// are multiples of this.
pub const TICK: Duration = Duration::from_millis(1);

/// One-way latency of every link a scenario gives no latency for.
pub const DEFAULT_LINK_LATENCY: Duration = Duration::from_millis(5);
