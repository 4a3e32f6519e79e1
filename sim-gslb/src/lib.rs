//! sim-gslb: the GSLB REST API (`gateway.gslb.goskope.com`) that clients 96.1 and later
//! ask for the PoPs nearest them.
//!
//! - `GET /v1/pops?tenant=<name>` answers `{"pops": [{"name", "ip"}, ...]}`, ranked as
//!   the world decided (by latency from the client unless a scenario says otherwise;
//!   it need not match what the client measures), or `403`
//!   with a JSON error when the tenant's GSLB flag is off.
//! - `POST /v1/rtt?tenant=<name>` takes the client's measured RTTs (`{"rtts": [...]}`)
//!   and answers `204`.
//!
//! Misbehaviours are data ([`Behaviour`]): HTTP errors, malformed JSON, an empty list,
//! a slow answer.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
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

/// How the service treats requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Behaviour {
    /// Answer from the state.
    #[default]
    Answer,
    /// Answer 200 with a body that is not JSON.
    Malformed,
    /// Answer 200 with an empty PoP list.
    Empty,
    /// Answer this HTTP status.
    HttpError(u16),
    /// Wait this long (on the tokio clock), then answer.
    SlowAnswer(std::time::Duration),
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
    /// How it misbehaves.
    pub behaviour: Behaviour,
}

#[derive(Debug, Deserialize)]
struct PopsQuery {
    tenant: Option<String>,
}

/// The service's router.
pub fn router(state: GslbState) -> Router {
    Router::new()
        .route("/v1/pops", get(pops))
        .route("/v1/rtt", post(rtt))
        .with_state(state)
}

fn error(status: StatusCode, text: &str) -> Response {
    (status, Json(serde_json::json!({ "error": text }))).into_response()
}

async fn rtt(
    State(state): State<GslbState>,
    Query(q): Query<PopsQuery>,
    body: axum::body::Bytes,
) -> Response {
    if q.tenant.as_deref() != Some(state.tenant.as_str()) {
        return error(StatusCode::NOT_FOUND, "unknown tenant");
    }
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(v) if v.get("rtts").is_some_and(|r| r.is_array()) => {
            StatusCode::NO_CONTENT.into_response()
        }
        _ => error(
            StatusCode::BAD_REQUEST,
            "expected a JSON body {\"rtts\": [...]}",
        ),
    }
}

async fn pops(State(state): State<GslbState>, Query(q): Query<PopsQuery>) -> Response {
    match state.behaviour {
        Behaviour::HttpError(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error(status, "simulated error");
        }
        Behaviour::Malformed => {
            return (StatusCode::OK, "{\"pops\": [ this is not json").into_response();
        }
        Behaviour::SlowAnswer(d) => tokio::time::sleep(d).await,
        Behaviour::Answer | Behaviour::Empty => {}
    }
    let Some(tenant) = q.tenant else {
        return error(StatusCode::BAD_REQUEST, "missing query parameter `tenant`");
    };
    if tenant != state.tenant {
        return error(StatusCode::NOT_FOUND, "unknown tenant");
    }
    if !state.enabled {
        return error(StatusCode::FORBIDDEN, "GSLB is not enabled for this tenant");
    }
    if state.behaviour == Behaviour::Empty {
        return Json(serde_json::json!({ "pops": [] })).into_response();
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
            behaviour: Behaviour::Answer,
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
