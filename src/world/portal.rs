//! A captive portal (`redirect` rules): every HTTP request gets a 302 to the login page;
//! on 443 the portal presents its own certificate (the world's rogue CA), so TLS clients
//! that check certificates, the agent among them, fail there. Nothing else gets out.

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

/// The host of the client's captive-portal check.
pub const CHECK_HOST: &str = "portal-check.goskope.com";

/// The URL the client GETs to tell an open network (204) from a captive portal.
pub const CHECK_URL: &str = "http://portal-check.goskope.com/generate_204";

/// The check host's router: `204 No Content` at `/generate_204`, 404 elsewhere.
pub fn check_router() -> Router {
    Router::new().route(
        "/generate_204",
        axum::routing::get(|| async { StatusCode::NO_CONTENT }),
    )
}

/// Where the portal sends every request.
pub const LOGIN_URL: &str = "http://portal.captive.example/login";

/// The portal's router: a 302 to [`LOGIN_URL`] for any request.
pub fn router() -> Router {
    Router::new().fallback(|| async {
        (
            StatusCode::FOUND,
            [(header::LOCATION, LOGIN_URL)],
            "log in to use this network\n",
        )
            .into_response()
    })
}
