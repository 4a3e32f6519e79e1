//! sim-doh: the DNS servers of the simulated world.
//!
//! - [`zone`]: [`Zone`], names to A answers, some of them depending on where the asking
//!   client is (the GSLB behaviour the agent steers by).
//! - [`doh`]: [`router`], DNS over HTTPS (RFC 8484) with EDNS Client Subnet (RFC 7871).
//! - [`ldns`]: [`Ldns`], the local resolver (RFC 1035 over UDP and TCP), a hickory-server
//!   `RequestHandler` driven per datagram and per stream.
//! - [`Behaviour`]: misbehaviours as data, shared by both servers.
//!
//! Everything here is IO-agnostic: the world owns sockets and TLS and hands bytes,
//! HTTP requests and streams in.

mod behaviour;
pub mod doh;
pub mod ldns;
pub mod zone;

pub use behaviour::Behaviour;
pub use doh::{DohState, router};
pub use ldns::Ldns;
pub use zone::Zone;
