//! The handlers behind [`crate::router`], and the client record the REST API answers.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::Behaviour;
use crate::query::{self, Subject};
use crate::state::{ConfigRequest, Device, Inner, Refusal, TenantState};

/// The header a device with the client carries to `achecker-<tenant>`, with its version.
pub const STEERING_CLIENT_HEADER: &str = "x-steering-client";

/// The v2 API's token header.
pub const TOKEN_HEADER: &str = "netskope-api-token";

/// Where `achecker` sends a device without the client: `https://<tenant>.goskope.example`
/// followed by this path.
pub const INSTALL_URL_PATH: &str = "/install";

/// The most records one API answer carries (the vendor documents 5000 to 10000).
pub const LIMIT_MAX: usize = 5000;

/// One client in the REST API's answer (the shape of the vendor's `/api/v1/clients`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRecord {
    /// The client's device id.
    pub device_id: String,
    /// When the tenant first heard from the device (unix seconds).
    pub client_install_time: i64,
    /// Client software version.
    pub client_version: String,
    /// The host.
    pub host_info: HostInfo,
    /// The last thing the tenant heard.
    pub last_event: LastEventRecord,
    /// The device's users.
    pub users: Vec<UserRecord>,
}

/// `host_info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    /// Host name.
    pub hostname: String,
    /// Operating system.
    pub os: String,
}

/// `last_event`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastEventRecord {
    /// Unix seconds.
    pub timestamp: i64,
    /// The event's type (`config_download`, or what the client reported).
    pub event: String,
    /// The user it is attributed to.
    pub actor: String,
    /// The device's status: `Enabled` | `Disabled` | `Uninstalled`.
    pub status: String,
}

/// One entry of `users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// The tenant user the device is attributed to.
    pub username: String,
    /// `UPN` | `IdP` | `Email invite`.
    pub user_source: String,
    /// The account the client said was logged in.
    pub os_user: String,
    /// The user's groups now.
    pub user_groups: Vec<String>,
}

type Params = Result<Query<BTreeMap<String, String>>, QueryRejection>;

fn error(status: StatusCode, text: &str) -> Response {
    (status, Json(serde_json::json!({ "error": text }))).into_response()
}

/// An error answer, small enough to travel in a `Result`.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.0, &self.1)
    }
}

fn params(p: Params) -> Result<BTreeMap<String, String>, ApiError> {
    p.map(|Query(m)| m).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("bad query string: {}", e.body_text()),
        )
    })
}

fn refusal(r: Refusal) -> Response {
    let status = match r {
        Refusal::BadRequest(_) => StatusCode::BAD_REQUEST,
        Refusal::Forbidden(_) => StatusCode::FORBIDDEN,
        Refusal::NotFound(_) => StatusCode::NOT_FOUND,
    };
    error(status, &r.to_string())
}

pub(crate) async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such route")
}

pub(crate) async fn config(State(state): State<TenantState>, p: Params) -> Response {
    let behaviour = state.lock().behaviour;
    match behaviour {
        Behaviour::Answer => {}
        Behaviour::HttpError(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error(status, "simulated error");
        }
        Behaviour::Malformed => {
            return (StatusCode::OK, "{\"version\": 1, \"steering\": [ not json").into_response();
        }
        Behaviour::SlowAnswer(d) => tokio::time::sleep(d).await,
    }
    let mut p = match params(p) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let (Some(device), Some(hostname)) = (p.remove("device"), p.remove("hostname")) else {
        return error(
            StatusCode::BAD_REQUEST,
            "`device` and `hostname` are required",
        );
    };
    let config_version = match p.remove("version").as_deref() {
        None | Some("" | "none") => None,
        Some(v) => match v.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "`version` is the configuration version the client runs: a number, or none",
                );
            }
        },
    };
    // An empty parameter is an absent one (the agent sends `user=` when it has none).
    let mut take = |key: &str| p.remove(key).filter(|v| !v.is_empty());
    let req = ConfigRequest {
        device,
        hostname,
        user: take("user"),
        os: take("os"),
        config_version,
        client_version: take("client_version"),
        invite: take("invite"),
    };
    match state.download_config(&req) {
        Ok(doc) => Json(doc).into_response(),
        Err(r) => refusal(r),
    }
}

#[derive(Deserialize)]
struct EventBody {
    device: String,
    user: String,
    #[serde(rename = "type")]
    kind: String,
}

pub(crate) async fn events(State(state): State<TenantState>, body: Bytes) -> Response {
    let event: EventBody = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("expected {{\"device\", \"user\", \"type\"}}: {e}"),
            );
        }
    };
    match state.record_event(&event.device, &event.user, &event.kind) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => refusal(r),
    }
}

pub(crate) async fn update(State(state): State<TenantState>, p: Params) -> Response {
    let p = match params(p) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let (Some(version), Some(channel)) = (p.get("version"), p.get("channel")) else {
        return error(
            StatusCode::BAD_REQUEST,
            "`version` and `channel` are required",
        );
    };
    let latest = {
        let inner = state.lock();
        match channel.as_str() {
            "latest" => inner.spec.releases.latest.clone(),
            "golden" => inner.spec.releases.golden.clone(),
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "unknown `channel`: use latest or golden",
                );
            }
        }
    };
    let Some(running) = parse_version(version) else {
        return error(
            StatusCode::BAD_REQUEST,
            "`version` must be dotted numbers, like 96.1.0.900",
        );
    };
    let upgrade = parse_version(&latest).is_some_and(|l| compare_versions(&running, &l).is_lt());
    Json(serde_json::json!({ "latest": latest, "upgrade": upgrade })).into_response()
}

/// `96.1.0.900` as numbers; `None` unless every part is a number.
fn parse_version(text: &str) -> Option<Vec<u64>> {
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    text.split('.').map(|p| p.parse::<u64>().ok()).collect()
}

/// Compares dotted versions, missing parts counting as 0.
fn compare_versions(a: &[u64], b: &[u64]) -> Ordering {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| {
            a.get(i)
                .copied()
                .unwrap_or(0)
                .cmp(&b.get(i).copied().unwrap_or(0))
        })
        .find(|o| o.is_ne())
        .unwrap_or(Ordering::Equal)
}

pub(crate) async fn achecker(State(state): State<TenantState>, headers: HeaderMap) -> Response {
    let version = headers
        .get(STEERING_CLIENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    match version {
        Some(v) => Json(serde_json::json!({ "client": "present", "version": v })).into_response(),
        None => {
            let location = format!(
                "https://{}.goskope.example{INSTALL_URL_PATH}",
                state.tenant()
            );
            (
                StatusCode::FOUND,
                [(header::LOCATION, location)],
                Json(serde_json::json!({ "client": "absent" })),
            )
                .into_response()
        }
    }
}

pub(crate) async fn sfchecker(State(state): State<TenantState>) -> Response {
    Json(serde_json::json!({
        "status": "ok",
        "service": "sfchecker",
        "tenant": state.tenant(),
    }))
    .into_response()
}

pub(crate) async fn clients_v1(State(state): State<TenantState>, p: Params) -> Response {
    let p = match params(p) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let token = p.get("token").cloned();
    clients(&state, token.as_deref(), &p)
}

/// `POST /api/v1/clients` with `{"token", "query", "limit", "skip"}` in a JSON body, as
/// the vendor recommends (keeps the token out of URLs and logs).
pub(crate) async fn clients_v1_post(State(state): State<TenantState>, body: Bytes) -> Response {
    let object = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(o)) => o,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "expected a JSON object {\"token\", \"query\", \"limit\", \"skip\"}",
            );
        }
    };
    let mut p = BTreeMap::new();
    for (key, value) in object {
        let text = match value {
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("`{key}` must be a string or a number"),
                );
            }
        };
        p.insert(key, text);
    }
    let token = p.get("token").cloned();
    clients(&state, token.as_deref(), &p)
}

pub(crate) async fn clients_v2(
    State(state): State<TenantState>,
    headers: HeaderMap,
    p: Params,
) -> Response {
    let p = match params(p) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let token = headers
        .get(TOKEN_HEADER)
        .map(|v| v.to_str().unwrap_or("\u{fffd}").to_string());
    clients(&state, token.as_deref(), &p)
}

fn clients(state: &TenantState, token: Option<&str>, p: &BTreeMap<String, String>) -> Response {
    let inner = state.lock();
    match token {
        None => return error(StatusCode::UNAUTHORIZED, "missing API token"),
        Some(t) if t != inner.spec.api_token => {
            return error(StatusCode::UNAUTHORIZED, "invalid API token");
        }
        Some(_) => {}
    }
    let q = match query::parse(p.get("query").map_or("", String::as_str)) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let number = |key: &str, default: usize| -> Result<usize, ApiError> {
        match p.get(key) {
            None => Ok(default),
            Some(v) => v.parse::<usize>().map_err(|_| {
                ApiError(
                    StatusCode::BAD_REQUEST,
                    format!("`{key}` must be a whole number"),
                )
            }),
        }
    };
    let limit = match number("limit", LIMIT_MAX) {
        Ok(n) => n.min(LIMIT_MAX),
        Err(e) => return e.into_response(),
    };
    let skip = match number("skip", 0) {
        Ok(n) => n,
        Err(e) => return e.into_response(),
    };
    let matching: Vec<ClientRecord> = inner
        .devices
        .values()
        .map(|d| record(&inner, d))
        .filter(|r| matches(&q, r))
        .collect();
    let total = matching.len();
    let data: Vec<ClientRecord> = matching.into_iter().skip(skip).take(limit).collect();
    Json(serde_json::json!({
        "status": "success",
        "msg": "",
        "total": total,
        "data": data,
    }))
    .into_response()
}

fn record(inner: &Inner, d: &Device) -> ClientRecord {
    ClientRecord {
        device_id: d.device_id.clone(),
        client_install_time: d.install_time,
        client_version: d.client_version.clone(),
        host_info: HostInfo {
            hostname: d.hostname.clone(),
            os: d.os.clone(),
        },
        last_event: LastEventRecord {
            timestamp: d.last_event.timestamp,
            event: d.last_event.kind.clone(),
            actor: d.last_event.actor.clone(),
            status: d.status.as_str().to_string(),
        },
        users: d
            .users
            .iter()
            .map(|u| UserRecord {
                username: u.username.clone(),
                user_source: u.source.user_source().to_string(),
                os_user: u.os_user.clone(),
                user_groups: inner
                    .spec
                    .users
                    .get(&u.username)
                    .cloned()
                    .flatten()
                    .into_iter()
                    .collect(),
            })
            .collect(),
    }
}

fn matches(q: &query::Query, r: &ClientRecord) -> bool {
    let usernames: Vec<&str> = r.users.iter().map(|u| u.username.as_str()).collect();
    let groups: Vec<&str> = r
        .users
        .iter()
        .flat_map(|u| u.user_groups.iter().map(String::as_str))
        .collect();
    q.matches(&Subject {
        device_id: &r.device_id,
        hostname: &r.host_info.hostname,
        os: &r.host_info.os,
        client_version: &r.client_version,
        last_event_timestamp: r.last_event.timestamp,
        last_event: &r.last_event.event,
        usernames: &usernames,
        groups: &groups,
    })
}
