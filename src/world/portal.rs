//! A captive portal (`redirect` rules): every HTTP request gets a 302 to the login page;
//! on 443 the portal presents its own certificate (the world's rogue CA), so TLS clients
//! that check certificates, the agent among them, fail there. Nothing else gets out.

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

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
