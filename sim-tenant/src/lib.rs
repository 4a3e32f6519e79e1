//! sim-tenant: the tenant's control plane on the simulated internet. It does no IO: the
//! world serves each [`Service`]'s router under its host name (over turmoil, or tokio in
//! real mode) and calls the admin operations on [`TenantState`] when a scenario's events
//! say so. Time comes from the [`Clock`] the world passes (unix seconds).
//!
//! Routes, by service (JSON bodies; errors are `{"error": "..."}`):
//!
//! - [`Service::Addon`] (`addon-<tenant>`):
//!   - `GET /config?device=ID&user=U&hostname=H&version=V[&os=OS][&client_version=CV]
//!     [&invite=ADDR]` answers the [`agent::tenant::ClientConfigDoc`] of the user's group
//!     (the default configuration for users in no group), always with `200` (the agent
//!     compares versions), and records the device with last event `config_download`.
//!     `version` is the configuration version the client runs (a number, or `none`);
//!     `client_version` its software version. Empty parameters count as absent. Who the
//!     device is
//!     attributed to depends on the [`Enrollment`] mode: `upn` and `idp` take `user`;
//!     `email` takes the invite's addressee (`invite`) and keeps it, whoever clicked the
//!     invite (`user`) — seed 001's attribution problem. `400` for a missing or bad
//!     parameter, `403` for an unknown user or an email enrollment without invite.
//!     Misbehaviours are data ([`Behaviour`], set with [`TenantState::set_behaviour`]).
//!   - `POST /events` with `{"device", "user", "type"}` records the device's last event
//!     and answers `204`; `400` for bad JSON, `404` for a device that never downloaded
//!     its configuration.
//! - [`Service::Download`] (`download-<tenant>`): `GET /update?version=V&channel=C`
//!   (`latest` | `golden`) answers `{"latest": "...", "upgrade": bool}`.
//! - [`Service::Achecker`] (`achecker-<tenant>`): `GET /check` answers `200
//!   {"client": "present", "version": V}` when the request carries `X-Steering-Client: V`,
//!   else `302` to `https://<tenant>.goskope.example/install`.
//! - [`Service::Sfchecker`] (`sfchecker-<tenant>`): `GET /check` answers `200
//!   {"status": "ok", "service": "sfchecker", "tenant": T}`.
//! - [`Service::Api`] (`<tenant>.goskope.com`): `GET /api/v1/clients?token=T&query=Q`
//!   and `GET /api/v2/clients?query=Q` with header `Netskope-Api-Token: T` (optional
//!   `limit`, `skip`) answer `{"status": "success", "msg": "", "total": n, "data":
//!   [client record, ...]}` by device id; `401` for a missing or wrong token, `400` with
//!   the parser's message for a bad query ([`query`] describes the language).
//!   `POST /api/v1/clients` takes the same parameters in a JSON body
//!   (`{"token": T, "query": Q}`), as the vendor recommends.
//!
//! Modules: [`state`] (spec, state, devices, admin operations, the lost-device
//! configuration), [`query`] (the clients API filter language), `routes` (handlers).

pub mod query;
pub mod state;

mod routes;

pub use routes::{
    ClientRecord, HostInfo, INSTALL_URL_PATH, LastEventRecord, STEERING_CLIENT_HEADER,
    TOKEN_HEADER, UserRecord,
};
pub use state::{
    Clock, ConfigChange, ConfigRequest, DEFAULT_CONFIG, Device, DeviceStatus, DeviceUser,
    Enrollment, LOST_GROUP, LastEvent, Refusal, Releases, TenantError, TenantSpec, TenantState,
    lost_device_config,
};

use axum::Router;
use axum::routing::{get, post};

/// How the configuration download (`GET /config`) treats requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Behaviour {
    /// Answer from the state.
    #[default]
    Answer,
    /// Answer this HTTP status (a config pull that fails).
    HttpError(u16),
    /// Answer 200 with a body that is not JSON.
    Malformed,
    /// Wait this long (on the tokio clock), then answer.
    SlowAnswer(std::time::Duration),
}

/// The tenant's control-plane services, each served under its own host name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    /// `addon-<tenant>`: configuration download and client events.
    Addon,
    /// `download-<tenant>`: the update check.
    Download,
    /// `achecker-<tenant>`: client enforcement.
    Achecker,
    /// `sfchecker-<tenant>`: the secure forwarder check.
    Sfchecker,
    /// `<tenant>`: the REST API.
    Api,
}

impl Service {
    /// Every service.
    pub const ALL: [Service; 5] = [
        Service::Addon,
        Service::Download,
        Service::Achecker,
        Service::Sfchecker,
        Service::Api,
    ];

    /// The host-name prefix (`addon` for `addon-<tenant>`); empty for the API, which is
    /// served under the tenant's own name.
    pub fn prefix(self) -> &'static str {
        match self {
            Service::Addon => "addon",
            Service::Download => "download",
            Service::Achecker => "achecker",
            Service::Sfchecker => "sfchecker",
            Service::Api => "",
        }
    }
}

/// The router of one service.
pub fn router(state: TenantState, service: Service) -> Router {
    let r = Router::new();
    let r = match service {
        Service::Addon => r
            .route("/config", get(routes::config))
            .route("/events", post(routes::events)),
        Service::Download => r.route("/update", get(routes::update)),
        Service::Achecker => r.route("/check", get(routes::achecker)),
        Service::Sfchecker => r.route("/check", get(routes::sfchecker)),
        Service::Api => r
            .route(
                "/api/v1/clients",
                get(routes::clients_v1).post(routes::clients_v1_post),
            )
            .route("/api/v2/clients", get(routes::clients_v2)),
    };
    r.fallback(routes::not_found).with_state(state)
}

#[cfg(test)]
mod tests;
