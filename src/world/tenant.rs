//! The tenant's control plane in the world (`[control_plane]`): one host answering as
//! `addon-`, `download-`, `achecker-`, `sfchecker-<tenant>` and the REST API
//! (`<tenant>.<domain>`), each name served by its `sim_tenant` router; the admin events;
//! and the gateway's directory, so group changes reach the gateway's policy at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use agent::tenant::{ClientConfigDoc, ClientDoc, SteeringDoc};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sim_gateway::policy::Directory;
use sim_tenant::{ConfigChange, Service, TenantSpec, TenantState};
use tower::ServiceExt;

use crate::scenario::{AdminAction, ControlPlane, Enrollment, Scenario, SteeringMode};

/// The API token of every simulated tenant (`[control_plane]` has none to set).
pub const API_TOKEN: &str = "steerlab-api-token";

/// The control plane's host names for a tenant in `domain`, each with its service.
pub fn names(tenant: &str, domain: &str) -> Vec<(String, Service)> {
    let mut out: Vec<(String, Service)> = [
        Service::Addon,
        Service::Download,
        Service::Achecker,
        Service::Sfchecker,
    ]
    .into_iter()
    .map(|s| (format!("{}-{tenant}.{domain}", s.prefix()), s))
    .collect();
    out.push((format!("{tenant}.{domain}"), Service::Api));
    out
}

/// The tenant as the scenario describes it: the scenario's `[steering]` and
/// `client.fail_close` are the default configuration, `[policy] groups` the directory
/// (every group gets the default configuration), `client.user` an enrolled user.
pub fn spec(s: &Scenario, cp: &ControlPlane) -> TenantSpec {
    let mut spec = TenantSpec::new(&s.tenant.name, API_TOKEN);
    spec.enrollment = match cp.enrollment {
        Enrollment::Upn => sim_tenant::Enrollment::Upn,
        Enrollment::Idp => sim_tenant::Enrollment::Idp,
        Enrollment::Email => sim_tenant::Enrollment::Email,
    };
    let default = ClientConfigDoc {
        version: 1,
        name: sim_tenant::DEFAULT_CONFIG.to_string(),
        steering: SteeringDoc {
            mode: s.steering.mode.as_str().to_string(),
            managed: s.steering.managed.clone(),
            exceptions: s.steering.exceptions.clone(),
            bypass_apps: s.steering.bypass_apps.clone(),
            steer_dns: s.steering.steer_dns,
            private_apps: s.steering.private_apps,
        },
        client: ClientDoc {
            fail_close: s.client.fail_close,
            upgrade_channel: "latest".to_string(),
            config_interval_s: cp.interval.as_secs(),
            ..ClientDoc::default()
        },
    };
    spec.configs = BTreeMap::from([(spec.default_config.clone(), default)]);
    spec.lost_group = cp.lost_group.clone();
    for (group, users) in &s.policy.groups {
        spec.groups
            .insert(group.clone(), sim_tenant::DEFAULT_CONFIG.to_string());
        for user in users {
            spec.users.insert(user.clone(), Some(group.clone()));
        }
    }
    if let Some(user) = &s.client.user {
        spec.users.entry(user.clone()).or_insert(None);
    }
    if let Some(invitee) = &cp.invite {
        spec.users.entry(invitee.clone()).or_insert(None);
    }
    spec
}

/// One router for every control-plane name, choosing by the request's `Host`.
pub fn router(state: TenantState, names: &[(String, Service)]) -> Router {
    let routers: BTreeMap<String, Router> = names
        .iter()
        .map(|(name, service)| {
            (
                name.to_ascii_lowercase(),
                sim_tenant::router(state.clone(), *service),
            )
        })
        .collect();
    Router::new()
        .fallback(dispatch)
        .with_state(Arc::new(routers))
}

async fn dispatch(
    State(routers): State<Arc<BTreeMap<String, Router>>>,
    request: Request<Body>,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.split(':').next().unwrap_or(h).to_ascii_lowercase())
        .unwrap_or_default();
    match routers.get(&host) {
        Some(router) => match router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        None => (
            StatusCode::NOT_FOUND,
            format!("no control-plane service named {host:?}\n"),
        )
            .into_response(),
    }
}

/// Carries out an admin event on the tenant and the gateway's directory; returns the
/// timeline line.
pub fn admin(state: &TenantState, directory: &Directory, action: &AdminAction) -> String {
    let result = match action {
        AdminAction::MoveUser { user, group } => state.move_user(user, Some(group)).map(|()| {
            directory.set_groups(user, std::slice::from_ref(group));
            format!("admin: {user} moved to group {group}")
        }),
        AdminAction::MarkLost { user } => state.mark_lost(user).map(|()| {
            let lost = state.lost_group();
            directory.set_groups(user, std::slice::from_ref(&lost));
            format!("admin: {user}'s device marked lost (group {lost})")
        }),
        AdminAction::SetMode { mode } => state
            .set_config(None, ConfigChange::SetMode(mode_word(*mode).to_string()))
            .map(|version| {
                format!(
                    "admin: default configuration set to mode {} (version {version})",
                    mode_word(*mode)
                )
            }),
    };
    result.unwrap_or_else(|e| format!("admin: refused: {e}"))
}

/// What the tenant knows of every device at the end of the run, one timeline line each.
pub fn device_lines(state: &TenantState) -> Vec<String> {
    state
        .devices()
        .into_iter()
        .map(|d| {
            let when = crate::scenario::format_clock(d.last_event.timestamp.saturating_mul(1000));
            let user = d
                .users
                .first()
                .map(|u| u.username.clone())
                .unwrap_or_default();
            format!(
                "tenant: device {} ({}) of {user}: last event {} at {when}, status {}",
                d.device_id,
                d.hostname,
                d.last_event.kind,
                d.status.as_str()
            )
        })
        .collect()
}

fn mode_word(mode: SteeringMode) -> &'static str {
    mode.as_str()
}
