//! Real mode: a scenario's servers (DoH, the local resolver, GSLB, gateways, origins, the
//! proxy, the PAC server, the portal check, the tenant's control plane) as real services
//! on 127.0.0.0/8, for real tools (dig, kdig, curl, openssl, a browser) and for the
//! agent's tokio shell.
//!
//! - [`topology`]: one loopback address per host, the zone answering with them, which
//!   hosts the scenario silences at t = 0, and what real mode does not apply.
//! - [`bind`]: binding on the real ports, with ephemeral ports when a privileged port
//!   cannot be bound, and silent sockets (a partitioned host).
//! - [`dial`]: how servers reach each other: names and scenario addresses to loopback.
//! - [`proxy`]: the site's CONNECT proxy on tokio sockets.
//! - [`serve`]: starting every service and writing the CA certificates and `serve.json`.
//! - [`info`]: what `serve.json` says.
//! - [`clients`]: the ready-to-paste command lines of real clients.
//! - [`pem`]: writing PEM files.
//! - [`agent`]: the agent's configuration from `serve.json`, on [`net::LoopbackNet`].
//! - [`net`]: tokio sockets that refuse any address outside 127.0.0.0/8.
//!
//! Nothing here sends a packet to an address outside 127.0.0.0/8.

pub mod agent;
pub mod bind;
pub mod clients;
pub mod dial;
pub mod info;
pub mod net;
pub mod pem;
pub mod proxy;
pub mod serve;
pub mod topology;

pub use info::ServeInfo;
pub use serve::{ServeError, ServeOptions, Served, start};
pub use topology::Topology;
