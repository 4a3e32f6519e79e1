//! Router and admin-operation tests, without sockets.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;
use agent::tenant::ClientConfigDoc;

const TOKEN: &str = "s3cret";

/// A tenant with john (no group), jane (engineering, own configuration) and james, and
/// a clock the test moves.
fn tenant(enrollment: Enrollment) -> (TenantState, Arc<AtomicI64>) {
    let mut spec = TenantSpec::new("acme", TOKEN);
    spec.enrollment = enrollment;
    let mut eng = spec.configs[DEFAULT_CONFIG].clone();
    eng.steering.mode = "cloud-apps".into();
    eng.steering.managed = vec!["box.com".into()];
    spec.configs.insert("Engineering".into(), eng);
    spec.groups
        .insert("engineering".into(), "Engineering".into());
    spec.users.insert("john@acme.example".into(), None);
    spec.users
        .insert("jane@acme.example".into(), Some("engineering".into()));
    spec.users.insert("james@acme.example".into(), None);
    spec.lost_exceptions = vec!["edr.example.com".into()];
    let now = Arc::new(AtomicI64::new(1_724_829_000));
    let clock = now.clone();
    let state = TenantState::new(spec, Arc::new(move || clock.load(Ordering::SeqCst))).unwrap();
    (state, now)
}

async fn send(
    state: &TenantState,
    service: Service,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    let response = router(state.clone(), service).oneshot(req).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json = if body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::String(
            String::from_utf8_lossy(&body).into_owned(),
        ))
    };
    (status, headers, json)
}

async fn get(state: &TenantState, service: Service, uri: &str) -> (StatusCode, serde_json::Value) {
    let (s, _, b) = send(
        state,
        service,
        Request::get(uri).body(Body::empty()).unwrap(),
    )
    .await;
    (s, b)
}

async fn pull(
    state: &TenantState,
    device: &str,
    user: &str,
    host: &str,
) -> (StatusCode, serde_json::Value) {
    get(
        state,
        Service::Addon,
        &format!(
            "/config?device={device}&user={user}&hostname={host}&version=none&client_version=96.1.0.900&os=Windows"
        ),
    )
    .await
}

fn doc(v: &serde_json::Value) -> ClientConfigDoc {
    ClientConfigDoc::from_json(v.to_string().as_bytes()).unwrap()
}

async fn api(state: &TenantState, query: &str) -> (StatusCode, serde_json::Value) {
    get(
        state,
        Service::Api,
        &format!("/api/v1/clients?token={TOKEN}&query={}", encode(query)),
    )
    .await
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'_' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn config_download_serves_the_group_configuration_and_records_the_device() {
    let (state, _) = tenant(Enrollment::Upn);
    let (status, body) = pull(&state, "dev-1", "john@acme.example", "JOHN-LAPTOP").await;
    assert_eq!(status, StatusCode::OK);
    let d = doc(&body);
    assert_eq!(d.name, DEFAULT_CONFIG);
    assert_eq!(d.steering.mode, "web");

    let (status, body) = pull(&state, "dev-2", "jane@acme.example", "JANE-MAC").await;
    assert_eq!(status, StatusCode::OK);
    let d = doc(&body);
    assert_eq!(d.name, "Engineering");
    assert_eq!(d.steering.managed, vec!["box.com".to_string()]);

    let device = state.device("dev-1").unwrap();
    assert_eq!(device.hostname, "JOHN-LAPTOP");
    assert_eq!(device.os, "Windows");
    assert_eq!(device.client_version, "96.1.0.900");
    assert_eq!(device.last_event.kind, "config_download");
    assert_eq!(device.last_event.timestamp, 1_724_829_000);
    assert_eq!(device.users[0].username, "john@acme.example");
    assert_eq!(device.users[0].source, Enrollment::Upn);
    assert_eq!(
        device.config,
        Some((DEFAULT_CONFIG.to_string(), d.version - 1))
    );
    assert_eq!(device.running_version, None);

    // The agent says which configuration version it runs; the tenant answers the
    // current document anyway (the agent compares).
    let default_version = d.version - 1;
    let uri = format!(
        "/config?device=dev-1&user=john%40acme.example&hostname=JOHN-LAPTOP&version={default_version}"
    );
    let (status, body) = get(&state, Service::Addon, &uri).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc(&body).version, default_version);
    let device = state.device("dev-1").unwrap();
    assert_eq!(device.running_version, Some(default_version));
    assert_eq!(device.client_version, "96.1.0.900", "kept when not sent");
}

#[tokio::test]
async fn config_download_refuses_unknown_users_and_bad_requests() {
    let (state, _) = tenant(Enrollment::Upn);
    let (status, body) = pull(&state, "dev-1", "mallory@evil.example", "X").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["error"].as_str().unwrap().contains("mallory"));
    let (status, body) = get(&state, Service::Addon, "/config?device=dev-1&hostname=X").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["error"].as_str().unwrap().contains("needs `user`"));
    let (status, _) = get(&state, Service::Addon, "/config?user=john@acme.example").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = get(
        &state,
        Service::Addon,
        "/config?device=&hostname=X&user=john@acme.example",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = get(
        &state,
        Service::Addon,
        "/config?device=%0a&hostname=X&user=john@acme.example",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = get(
        &state,
        Service::Addon,
        &format!(
            "/config?device=a&hostname={}&user=john@acme.example",
            "h".repeat(300)
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = get(
        &state,
        Service::Addon,
        "/config?device=a&hostname=H&user=john@acme.example&version=v2",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("configuration version")
    );
    let (status, _) = get(
        &state,
        Service::Addon,
        "/config?device=a&hostname=H&user=&version=none",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an empty user is no user");
    let (status, _) = get(&state, Service::Addon, "/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(state.devices().is_empty());
}

#[tokio::test]
async fn config_download_misbehaves_as_told() {
    let (state, _) = tenant(Enrollment::Upn);
    state.set_behaviour(Behaviour::HttpError(503));
    let (status, _) = pull(&state, "dev-1", "john@acme.example", "H").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        state.devices().is_empty(),
        "a failed pull is not a last event"
    );
    state.set_behaviour(Behaviour::Malformed);
    let (status, body) = pull(&state, "dev-1", "john@acme.example", "H").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ClientConfigDoc::from_json(body.as_str().unwrap().as_bytes()).is_err());
    state.set_behaviour(Behaviour::Answer);
    let (status, _) = pull(&state, "dev-1", "john@acme.example", "H").await;
    assert_eq!(status, StatusCode::OK);
}

/// Seed 001: the admin invites john by email; james clicks the invite on his own laptop
/// and installs the client. The device is john's in the tenant's eyes, for good.
#[tokio::test]
async fn email_invite_attributes_the_device_to_the_addressee() {
    let (state, _) = tenant(Enrollment::Email);
    let (status, body) = get(
        &state,
        Service::Addon,
        "/config?device=dev-9&user=james@acme.example&hostname=JAMES-LAPTOP&invite=john@acme.example",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let device = state.device("dev-9").unwrap();
    assert_eq!(device.users.len(), 1);
    assert_eq!(device.users[0].username, "john@acme.example");
    assert_eq!(device.users[0].os_user, "james@acme.example");
    assert_eq!(device.users[0].source, Enrollment::Email);

    // Later pulls carry no invite; the client stays tied to john.
    let (status, _) = pull(&state, "dev-9", "james@acme.example", "JAMES-LAPTOP").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state.device("dev-9").unwrap().users.len(), 1);

    // The API shows james's laptop as john's.
    let (_, body) = api(&state, "users.username eq john@acme.example").await;
    assert_eq!(body["total"], 1);
    assert_eq!(body["data"][0]["host_info"]["hostname"], "JAMES-LAPTOP");
    assert_eq!(body["data"][0]["users"][0]["user_source"], "Email invite");
    assert_eq!(body["data"][0]["users"][0]["os_user"], "james@acme.example");
    let (_, body) = api(&state, "users.username eq james@acme.example").await;
    assert_eq!(body["total"], 0);

    // Marking john's devices lost catches james's laptop.
    state.mark_lost("john@acme.example").unwrap();
    let (_, body) = pull(&state, "dev-9", "james@acme.example", "JAMES-LAPTOP").await;
    assert_eq!(doc(&body).name, LOST_GROUP);

    // A new device without an invite cannot enroll.
    let (status, body) = pull(&state, "dev-10", "james@acme.example", "OTHER").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["error"].as_str().unwrap().contains("invite"));
}

#[tokio::test]
async fn upn_attributes_to_the_logged_in_user() {
    let (state, _) = tenant(Enrollment::Idp);
    let (status, _) = get(
        &state,
        Service::Addon,
        "/config?device=dev-9&user=james@acme.example&hostname=JAMES-LAPTOP&invite=john@acme.example",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let device = state.device("dev-9").unwrap();
    assert_eq!(device.users[0].username, "james@acme.example");
    assert_eq!(device.users[0].source, Enrollment::Idp);
}

#[tokio::test]
async fn events_move_last_event() {
    let (state, now) = tenant(Enrollment::Upn);
    pull(&state, "dev-1", "john@acme.example", "H").await;
    now.store(1_724_829_500, Ordering::SeqCst);
    let post = |body: &'static str| {
        Request::post("/events")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    let (status, _, _) = send(
        &state,
        Service::Addon,
        post(r#"{"device":"dev-1","user":"john@acme.example","type":"tunnel_up"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let d = state.device("dev-1").unwrap();
    assert_eq!(d.last_event.kind, "tunnel_up");
    assert_eq!(d.last_event.timestamp, 1_724_829_500);

    let (status, _, _) = send(
        &state,
        Service::Addon,
        post(r#"{"device":"dev-1","user":"john@acme.example","type":"client_disabled"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        state.device("dev-1").unwrap().status,
        DeviceStatus::Disabled
    );

    let (status, _, _) = send(
        &state,
        Service::Addon,
        post(r#"{"device":"dev-1","user":"","type":"tunnel_down"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let d = state.device("dev-1").unwrap();
    assert_eq!(d.last_event.kind, "tunnel_down");
    assert_eq!(d.last_event.actor, "john@acme.example");

    let (status, _, body) = send(&state, Service::Addon, post("{not json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("expected"));
    let (status, _, _) = send(&state, Service::Addon, post(r#"{"device":"dev-1"}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = send(
        &state,
        Service::Addon,
        post(r#"{"device":"dev-1","user":"u","type":""}"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = send(
        &state,
        Service::Addon,
        post(r#"{"device":"nope","user":"u","type":"tunnel_up"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn update_check_by_channel() {
    let (state, _) = tenant(Enrollment::Upn);
    let (status, body) = get(
        &state,
        Service::Download,
        "/update?version=96.1.0.900&channel=latest",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["latest"], "123.0.0.2101");
    assert_eq!(body["upgrade"], true);
    let (_, body) = get(
        &state,
        Service::Download,
        "/update?version=122.1.0.1954&channel=golden",
    )
    .await;
    assert_eq!(body["latest"], "122.1.0.1954");
    assert_eq!(body["upgrade"], false);
    let (_, body) = get(
        &state,
        Service::Download,
        "/update?version=123.0.0.2101&channel=golden",
    )
    .await;
    assert_eq!(body["upgrade"], false, "newer than golden: no downgrade");
    let (_, body) = get(
        &state,
        Service::Download,
        "/update?version=122.1&channel=golden",
    )
    .await;
    assert_eq!(body["upgrade"], true);
    for bad in [
        "/update?version=96.x&channel=latest",
        "/update?version=96.1&channel=beta",
        "/update?version=96.1",
        "/update?channel=latest",
        "/update?version=99999999999999999999999&channel=latest",
        "/update?version=&channel=latest",
    ] {
        let (status, body) = get(&state, Service::Download, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(body["error"].is_string(), "{bad}");
    }
}

#[tokio::test]
async fn achecker_redirects_devices_without_the_client() {
    let (state, _) = tenant(Enrollment::Upn);
    let (status, _, body) = send(
        &state,
        Service::Achecker,
        Request::get("/check")
            .header("X-Steering-Client", "96.1.0.900")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["client"], "present");
    assert_eq!(body["version"], "96.1.0.900");
    let (status, headers, _) = send(
        &state,
        Service::Achecker,
        Request::get("/check").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(
        headers[header::LOCATION],
        "https://acme.goskope.example/install"
    );
    let (status, body) = get(&state, Service::Sfchecker, "/check").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["tenant"], "acme");
}

#[tokio::test]
async fn clients_api_filters_and_orders() {
    let (state, now) = tenant(Enrollment::Upn);
    pull(&state, "dev-2", "jane@acme.example", "JANE-MAC").await;
    now.store(1_724_829_100, Ordering::SeqCst);
    pull(&state, "dev-1", "john@acme.example", "JOHN-LAPTOP").await;

    let (status, body) = api(&state, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "success");
    assert_eq!(body["total"], 2);
    assert_eq!(body["data"][0]["device_id"], "dev-1");
    assert_eq!(body["data"][1]["device_id"], "dev-2");
    let rec: ClientRecord = serde_json::from_value(body["data"][1].clone()).unwrap();
    assert_eq!(rec.users[0].user_groups, vec!["engineering".to_string()]);
    assert_eq!(rec.last_event.event, "config_download");
    assert_eq!(rec.last_event.status, "Enabled");

    // Seed 004's query.
    let (_, body) = api(&state, "last_event.timestamp gt 1724829057").await;
    assert_eq!(body["total"], 1);
    assert_eq!(body["data"][0]["host_info"]["hostname"], "JOHN-LAPTOP");
    let (_, body) = api(&state, "host_info.hostname eq 'jane-mac'").await;
    assert_eq!(body["data"][0]["device_id"], "dev-2");
    let (_, body) = api(
        &state,
        "user_groups eq engineering and last_event.timestamp lt 1724829057",
    )
    .await;
    assert_eq!(body["total"], 1);
    let (_, body) = get(
        &state,
        Service::Api,
        &format!("/api/v1/clients?token={TOKEN}&limit=1&skip=1"),
    )
    .await;
    assert_eq!(body["total"], 2);
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(body["data"][0]["device_id"], "dev-2");

    // v2: the token in a header.
    let v2 = |token: Option<&str>, q: &str| {
        let mut r = Request::get(format!("/api/v2/clients?query={}", encode(q)));
        if let Some(t) = token {
            r = r.header("Netskope-Api-Token", t);
        }
        r.body(Body::empty()).unwrap()
    };
    let (status, _, body) = send(
        &state,
        Service::Api,
        v2(Some(TOKEN), "users.username eq jane@acme.example"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"][0]["device_id"], "dev-2");
    let (status, _, _) = send(&state, Service::Api, v2(Some("wrong"), "")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = send(&state, Service::Api, v2(None, "")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("missing"));
}

#[tokio::test]
async fn clients_api_errors() {
    let (state, _) = tenant(Enrollment::Upn);
    let (status, body) = get(&state, Service::Api, "/api/v1/clients?query=").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("missing"));
    let (status, body) = get(&state, Service::Api, "/api/v1/clients?token=nope").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("invalid"));
    let (status, body) = api(&state, "last_event.timestamp gt yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"],
        "query column 25: expected a whole number of unix seconds, found `yesterday`"
    );
    let (status, _) = get(
        &state,
        Service::Api,
        &format!("/api/v1/clients?token={TOKEN}&limit=many"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = get(&state, Service::Api, "/api/v1/clients?token=%ZZ").await;
    assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::UNAUTHORIZED);
}

#[test]
fn admin_operations_bump_versions() {
    let (state, _) = tenant(Enrollment::Upn);
    let before = state.config_for("john@acme.example").unwrap();
    let eng = state.config_for("jane@acme.example").unwrap();
    assert_ne!(
        before.version, eng.version,
        "versions are unique across configurations"
    );

    let v = state
        .set_config(None, ConfigChange::AddException("zoom.us".into()))
        .unwrap();
    let after = state.config_for("john@acme.example").unwrap();
    assert_eq!(after.version, v);
    assert!(after.version > before.version);
    assert!(after.version > eng.version);
    assert_eq!(after.steering.exceptions, vec!["zoom.us".to_string()]);
    assert_eq!(
        state.config_for("jane@acme.example").unwrap(),
        eng,
        "other groups unchanged"
    );

    let v2 = state
        .set_config(Some("engineering"), ConfigChange::SetFailClose(true))
        .unwrap();
    assert!(v2 > v);
    assert!(
        state
            .config_for("jane@acme.example")
            .unwrap()
            .client
            .fail_close
    );
    let v3 = state
        .update_config(Some("engineering"), |d| {
            d.version = 1;
            d.name = "renamed".into();
            d.steering.mode = "all".into();
        })
        .unwrap();
    let eng = state.config_for("jane@acme.example").unwrap();
    assert_eq!(
        (eng.version, eng.name.as_str(), eng.steering.mode.as_str()),
        (v3, "Engineering", "all")
    );

    assert_eq!(
        state.set_config(Some("nope"), ConfigChange::SetFailClose(true)),
        Err(TenantError::UnknownGroup("nope".into()))
    );
    assert_eq!(
        state.move_user("nobody", Some("engineering")),
        Err(TenantError::UnknownUser("nobody".into()))
    );
    assert_eq!(
        state.move_user("john@acme.example", Some("nope")),
        Err(TenantError::UnknownGroup("nope".into()))
    );
    state
        .move_user("john@acme.example", Some("engineering"))
        .unwrap();
    assert_eq!(
        state.group_of("john@acme.example").as_deref(),
        Some("engineering")
    );
    assert_eq!(
        state.config_for("john@acme.example").unwrap().name,
        "Engineering"
    );
    let spec = state.spec();
    assert_eq!(
        spec.users["john@acme.example"].as_deref(),
        Some("engineering")
    );
    assert_eq!(spec.configs["Engineering"].version, v3);
    assert_eq!(spec.groups[LOST_GROUP], LOST_GROUP);
    state.move_user("john@acme.example", None).unwrap();
    assert_eq!(
        state.config_for("john@acme.example").unwrap().name,
        DEFAULT_CONFIG
    );
}

/// Seed 004: the lost-device group's configuration.
#[tokio::test]
async fn lost_device_configuration() {
    let (state, now) = tenant(Enrollment::Upn);
    let (_, body) = pull(&state, "dev-1", "john@acme.example", "JOHN-LAPTOP").await;
    let before = doc(&body);
    assert!(!state.is_lost("john@acme.example"));

    now.store(1_724_900_000, Ordering::SeqCst);
    state.mark_lost("john@acme.example").unwrap();
    assert!(state.is_lost("john@acme.example"));
    assert_eq!(
        state.group_of("john@acme.example").as_deref(),
        Some(LOST_GROUP)
    );
    // Nothing reaches the device until it pulls: the tenant still shows the old pull.
    assert_eq!(
        state.device("dev-1").unwrap().last_event.timestamp,
        1_724_829_000
    );

    let (_, body) = pull(&state, "dev-1", "john@acme.example", "JOHN-LAPTOP").await;
    let lost = doc(&body);
    assert_ne!(lost.version, before.version);
    assert_eq!(lost.name, LOST_GROUP);
    assert_eq!(lost.steering.mode, "all");
    assert!(lost.steering.steer_dns);
    assert!(!lost.steering.private_apps);
    assert_eq!(
        lost.steering.exceptions,
        vec!["edr.example.com".to_string()]
    );
    assert!(lost.steering.bypass_apps.is_empty());
    assert!(lost.client.fail_close);
    assert_eq!(lost.client.device_classification_interval_s, 60);
    assert_eq!(lost.client.reauth_interval_s, 180);
    assert_eq!(lost.client.upgrade_channel, "golden");

    // The API shows when it was last seen, and finds it by group.
    let (_, body) = api(
        &state,
        "user_groups eq 'Lost devices' and last_event.timestamp gt 1724829057",
    )
    .await;
    assert_eq!(body["total"], 1);
    assert_eq!(body["data"][0]["last_event"]["timestamp"], 1_724_900_000);
}

#[test]
fn spec_is_checked() {
    let clock: Clock = Arc::new(|| 0);
    let mut spec = TenantSpec::new("acme", TOKEN);
    spec.users.insert("u".into(), Some("ghosts".into()));
    assert_eq!(
        TenantState::new(spec, clock.clone()).unwrap_err(),
        TenantError::UnknownGroup("ghosts".into())
    );
    let mut spec = TenantSpec::new("acme", TOKEN);
    spec.groups.insert("g".into(), "Missing".into());
    assert_eq!(
        TenantState::new(spec, clock.clone()).unwrap_err(),
        TenantError::UnknownConfig("Missing".into())
    );
    let mut spec = TenantSpec::new("acme", TOKEN);
    spec.default_config = "Missing".into();
    assert!(TenantState::new(spec, clock.clone()).is_err());
    assert!(TenantState::new(TenantSpec::new("acme", ""), clock.clone()).is_err());

    // Colliding versions are renumbered; names follow the keys.
    let mut spec = TenantSpec::new("acme", TOKEN);
    let mut other = spec.configs[DEFAULT_CONFIG].clone();
    other.name = "whatever".into();
    spec.configs.insert("Other".into(), other);
    spec.groups.insert("g".into(), "Other".into());
    spec.users.insert("a".into(), None);
    spec.users.insert("b".into(), Some("g".into()));
    let state = TenantState::new(spec, clock).unwrap();
    let a = state.config_for("a").unwrap();
    let b = state.config_for("b").unwrap();
    assert_eq!(b.name, "Other");
    assert_ne!(a.version, b.version);
    assert!(a.version > 0 && b.version > 0);
    assert!(state.config_for("nobody").is_none());
}

#[test]
fn enrollment_and_services_spell() {
    for e in [Enrollment::Upn, Enrollment::Idp, Enrollment::Email] {
        assert_eq!(Enrollment::parse(e.as_str()), Some(e));
    }
    assert_eq!(Enrollment::parse("saml"), None);
    let prefixes: Vec<&str> = Service::ALL.iter().map(|s| s.prefix()).collect();
    assert_eq!(prefixes, ["addon", "download", "achecker", "sfchecker", ""]);
}

#[tokio::test]
async fn clients_api_takes_the_token_in_a_json_body() {
    let (state, _) = tenant(Enrollment::Upn);
    pull(&state, "dev-1", "john@acme.example", "JOHN-LAPTOP").await;
    let post = |body: String| {
        Request::post("/api/v1/clients")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    let body = serde_json::json!({
        "token": TOKEN,
        "query": "host_info.hostname eq JOHN-LAPTOP",
        "limit": 10,
    });
    let (status, _, answer) = send(&state, Service::Api, post(body.to_string())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["total"], 1);
    let (status, _, _) = send(&state, Service::Api, post(r#"{"query":""}"#.into())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = send(&state, Service::Api, post("[1]".into())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, answer) = send(
        &state,
        Service::Api,
        post(format!(r#"{{"token":"{TOKEN}","limit":[1]}}"#)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer["error"].as_str().unwrap().contains("limit"));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

    /// Whatever the query, the API answers 200 or 400 with a JSON body.
    #[test]
    fn api_answers_any_query(q in proptest::prelude::any::<String>()) {
        let rt = runtime();
        let (status, body) = rt.block_on(async {
            let (state, _) = tenant(Enrollment::Upn);
            pull(&state, "dev-1", "john@acme.example", "JOHN-LAPTOP").await;
            api(&state, &q).await
        });
        proptest::prop_assert!(status == StatusCode::OK || status == StatusCode::BAD_REQUEST);
        proptest::prop_assert!(body.is_object());
    }

    /// Whatever the parameters, the configuration download answers 200, 400 or 403.
    #[test]
    fn config_answers_any_parameters(
        device in "[a-z0-9%&= \\x00-\\x1f\u{e9}-]{0,12}",
        user in proptest::prelude::any::<String>(),
        version in "[0-9a-z%]{0,6}",
        mode in 0u8..3,
    ) {
        let enrollment = [Enrollment::Upn, Enrollment::Idp, Enrollment::Email][usize::from(mode)];
        let rt = runtime();
        let status = rt.block_on(async {
            let (state, _) = tenant(enrollment);
            let uri = format!(
                "/config?device={device}&user={}&hostname=H&version={version}&invite={}",
                encode(&user),
                encode(&user),
            );
            match Request::get(uri).body(Body::empty()) {
                Ok(req) => Some(send(&state, Service::Addon, req).await.0),
                Err(_) => None,
            }
        });
        if let Some(status) = status {
            proptest::prop_assert!(
                [StatusCode::OK, StatusCode::BAD_REQUEST, StatusCode::FORBIDDEN].contains(&status),
                "{status}"
            );
        }
    }
}
