//! Origin servers: what apps reach, directly or through a gateway. Each answers real HTTP
//! with a short page naming itself.

use axum::Router;
use axum::routing::get;

/// The router of the origin `host`.
pub fn router(host: &str) -> Router {
    let body = format!("origin {host}\n");
    Router::new().fallback(get(move || {
        let body = body.clone();
        async move { body }
    }))
}
