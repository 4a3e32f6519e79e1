//! sim-gslb: the GSLB REST API (`gateway.gslb.goskope.com`) that clients 96.1 and later
//! ask for the PoPs nearest them.
//!
//! `GET /v1/pops?tenant=<name>` answers a JSON list of PoPs ranked best first, or `403`
//! with a JSON error when the tenant's GSLB flag is off. The ranking for the calling
//! client's address and the agent side land with the GSLB issue; this crate already
//! serves the list the world gives it.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

/// One PoP in the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PopEntry {
    /// PoP name, e.g. `nyc1`; the client connects to `gateway-<name>.goskope.com`.
    pub name: String,
    /// The PoP's gateway address.
    pub ip: String,
}

/// What the service knows.
#[derive(Debug, Clone)]
pub struct GslbState {
    /// The tenant this world serves.
    pub tenant: String,
    /// The backend flag that enables GSLB for the tenant.
    pub enabled: bool,
    /// PoPs, best first.
    pub pops: Arc<Vec<PopEntry>>,
}

#[derive(Debug, Deserialize)]
struct PopsQuery {
    tenant: Option<String>,
}

/// The service's router.
pub fn router(state: GslbState) -> Router {
    Router::new().route("/v1/pops", get(pops)).with_state(state)
}

async fn pops(State(state): State<GslbState>, Query(q): Query<PopsQuery>) -> Response {
    let error = |status: StatusCode, text: &str| {
        (status, Json(serde_json::json!({ "error": text }))).into_response()
    };
    let Some(tenant) = q.tenant else {
        return error(StatusCode::BAD_REQUEST, "missing query parameter `tenant`");
    };
    if tenant != state.tenant {
        return error(StatusCode::NOT_FOUND, "unknown tenant");
    }
    if !state.enabled {
        return error(StatusCode::FORBIDDEN, "GSLB is not enabled for this tenant");
    }
    Json(serde_json::json!({ "pops": state.pops.as_ref() })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn state(enabled: bool) -> GslbState {
        GslbState {
            tenant: "acme".into(),
            enabled,
            pops: Arc::new(vec![PopEntry {
                name: "nyc1".into(),
                ip: "8.36.116.35".into(),
            }]),
        }
    }

    async fn get(state: GslbState, uri: &str) -> (StatusCode, serde_json::Value) {
        let response = router(state)
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn lists_pops_or_refuses_by_flag() {
        let (status, body) = get(state(true), "/v1/pops?tenant=acme").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["pops"][0]["name"], "nyc1");
        let (status, body) = get(state(false), "/v1/pops?tenant=acme").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body["error"].as_str().unwrap().contains("not enabled"));
        let (status, _) = get(state(true), "/v1/pops").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}
