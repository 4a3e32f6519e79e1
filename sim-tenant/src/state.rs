//! What the tenant knows: configurations, groups, users, enrollment, devices, and the
//! admin operations the world's events call.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use agent::tenant::{ClientConfigDoc, ClientDoc, SteeringDoc};

/// Unix seconds, now. The world passes the simulated clock; nothing here reads the real one.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The name of the group (and of its configuration) for lost or stolen devices, unless the
/// spec names another.
pub const LOST_GROUP: &str = "Lost devices";

/// The configuration for users in no group, as the admin console names it.
pub const DEFAULT_CONFIG: &str = "Default tenant config";

/// How a client is tied to a user (seed 001).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Enrollment {
    /// The user is the logged-in account's UPN, validated against the directory.
    #[default]
    Upn,
    /// The user logged in to the identity provider.
    Idp,
    /// The client was installed from an email invite and is tied to the invite's
    /// addressee, whoever clicked it and whoever uses the device.
    Email,
}

impl Enrollment {
    /// `upn` | `idp` | `email`.
    pub fn parse(text: &str) -> Option<Enrollment> {
        match text {
            "upn" => Some(Enrollment::Upn),
            "idp" => Some(Enrollment::Idp),
            "email" => Some(Enrollment::Email),
            _ => None,
        }
    }

    /// The scenario spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Enrollment::Upn => "upn",
            Enrollment::Idp => "idp",
            Enrollment::Email => "email",
        }
    }

    /// The `user_source` the clients API shows.
    pub fn user_source(self) -> &'static str {
        match self {
            Enrollment::Upn => "UPN",
            Enrollment::Idp => "IdP",
            Enrollment::Email => "Email invite",
        }
    }
}

/// Client releases the `download-<tenant>` service offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Releases {
    /// The newest release (channel `latest`).
    pub latest: String,
    /// The newest golden release (channel `golden`), older and more stable.
    pub golden: String,
}

impl Default for Releases {
    fn default() -> Releases {
        Releases {
            latest: "123.0.0.2101".into(),
            golden: "122.1.0.1954".into(),
        }
    }
}

/// The tenant as a scenario describes it; [`TenantState::new`] checks it.
#[derive(Debug, Clone)]
pub struct TenantSpec {
    /// The tenant's name (`acme` in `addon-acme.goskope.com`).
    pub tenant: String,
    /// The REST API token (v1 query parameter and v2 header).
    pub api_token: String,
    /// How clients are tied to users.
    pub enrollment: Enrollment,
    /// Client configurations by name. A document's `name` is set to its key and its
    /// `version` kept when it is above 0 and unique, else renumbered.
    pub configs: BTreeMap<String, ClientConfigDoc>,
    /// The configuration users in no group (or in a group without one) get.
    pub default_config: String,
    /// User groups and the configuration each gets.
    pub groups: BTreeMap<String, String>,
    /// Users and the group each is in (`None`: no group).
    pub users: BTreeMap<String, Option<String>>,
    /// The lost or stolen device group. Added with [`lost_device_config`] if `groups`
    /// lacks it (and `configs` lacks a configuration of the same name).
    pub lost_group: String,
    /// Exceptions the lost-device configuration keeps: only what EDR and MDM need.
    pub lost_exceptions: Vec<String>,
    /// Releases for the update check.
    pub releases: Releases,
}

impl TenantSpec {
    /// A tenant with one default configuration (web mode), no users, the lost-device group
    /// and the default releases.
    pub fn new(tenant: &str, api_token: &str) -> TenantSpec {
        let default = ClientConfigDoc {
            version: 1,
            name: DEFAULT_CONFIG.into(),
            steering: SteeringDoc {
                mode: "web".into(),
                ..SteeringDoc::default()
            },
            client: ClientDoc {
                upgrade_channel: "latest".into(),
                ..ClientDoc::default()
            },
        };
        TenantSpec {
            tenant: tenant.into(),
            api_token: api_token.into(),
            enrollment: Enrollment::Upn,
            configs: BTreeMap::from([(DEFAULT_CONFIG.to_string(), default)]),
            default_config: DEFAULT_CONFIG.into(),
            groups: BTreeMap::new(),
            users: BTreeMap::new(),
            lost_group: LOST_GROUP.into(),
            lost_exceptions: Vec::new(),
            releases: Releases::default(),
        }
    }
}

/// The configuration seed 004 recommends for lost or stolen devices: all traffic with DNS
/// steered, private apps off, no exceptions but those given (EDR, MDM), fail close,
/// device classification every minute, private-app re-authentication every 3 minutes,
/// upgrades to the golden release. (Endpoint DLP, tamper protection and the uninstall
/// password are not in the document the agent reads.) Version 0: the tenant numbers it.
pub fn lost_device_config(name: &str, exceptions: &[String]) -> ClientConfigDoc {
    ClientConfigDoc {
        version: 0,
        name: name.into(),
        steering: SteeringDoc {
            mode: "all".into(),
            managed: Vec::new(),
            exceptions: exceptions.to_vec(),
            bypass_apps: Vec::new(),
            steer_dns: true,
            private_apps: false,
        },
        client: ClientDoc {
            fail_close: true,
            device_classification_interval_s: 60,
            reauth_interval_s: 180,
            upgrade_channel: "golden".into(),
            config_interval_s: 0,
        },
    }
}

/// An admin's change to a configuration (a scenario's "change a policy" event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    /// Steering mode: `cloud-apps` | `web` | `all`.
    SetMode(String),
    /// Add a domain, IP or CIDR exception (no effect if present).
    AddException(String),
    /// Remove an exception (no effect if absent).
    RemoveException(String),
    /// Add a managed domain.
    AddManaged(String),
    /// Remove a managed domain.
    RemoveManaged(String),
    /// Add a certificate-pinned app (by process name).
    AddBypassApp(String),
    /// Remove a certificate-pinned app.
    RemoveBypassApp(String),
    /// Steer DNS (mode `all`).
    SetSteerDns(bool),
    /// Steer private apps.
    SetPrivateApps(bool),
    /// Fail close.
    SetFailClose(bool),
    /// Device classification interval.
    SetDeviceClassificationInterval(u64),
    /// Re-authentication interval.
    SetReauthInterval(u64),
    /// Upgrade channel: `latest` | `golden`.
    SetUpgradeChannel(String),
    /// How often clients pull the configuration.
    SetConfigInterval(u64),
    /// Replace steering and client parts (name and version stay the tenant's).
    Replace(ClientConfigDoc),
}

impl ConfigChange {
    /// Applies the change to a document.
    pub fn apply(self, doc: &mut ClientConfigDoc) {
        fn add(list: &mut Vec<String>, item: String) {
            if !list.contains(&item) {
                list.push(item);
            }
        }
        fn remove(list: &mut Vec<String>, item: &str) {
            list.retain(|x| x != item);
        }
        match self {
            ConfigChange::SetMode(m) => doc.steering.mode = m,
            ConfigChange::AddException(x) => add(&mut doc.steering.exceptions, x),
            ConfigChange::RemoveException(x) => remove(&mut doc.steering.exceptions, &x),
            ConfigChange::AddManaged(x) => add(&mut doc.steering.managed, x),
            ConfigChange::RemoveManaged(x) => remove(&mut doc.steering.managed, &x),
            ConfigChange::AddBypassApp(x) => add(&mut doc.steering.bypass_apps, x),
            ConfigChange::RemoveBypassApp(x) => remove(&mut doc.steering.bypass_apps, &x),
            ConfigChange::SetSteerDns(b) => doc.steering.steer_dns = b,
            ConfigChange::SetPrivateApps(b) => doc.steering.private_apps = b,
            ConfigChange::SetFailClose(b) => doc.client.fail_close = b,
            ConfigChange::SetDeviceClassificationInterval(s) => {
                doc.client.device_classification_interval_s = s;
            }
            ConfigChange::SetReauthInterval(s) => doc.client.reauth_interval_s = s,
            ConfigChange::SetUpgradeChannel(c) => doc.client.upgrade_channel = c,
            ConfigChange::SetConfigInterval(s) => doc.client.config_interval_s = s,
            ConfigChange::Replace(new) => {
                doc.steering = new.steering;
                doc.client = new.client;
            }
        }
    }
}

/// What went wrong with a spec or an admin operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TenantError {
    /// The spec or the operation names a user the tenant does not have.
    #[error("unknown user `{0}`: add it to the tenant's users")]
    UnknownUser(String),
    /// The spec or the operation names a group the tenant does not have.
    #[error("unknown group `{0}`: add it to the tenant's groups")]
    UnknownGroup(String),
    /// A group (or the default) points at a configuration that does not exist.
    #[error("unknown configuration `{0}`: add it to the tenant's configurations")]
    UnknownConfig(String),
    /// The tenant's name or token is empty.
    #[error("the tenant's {0} is empty")]
    Empty(&'static str),
}

/// The tenant's status of a device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeviceStatus {
    /// The client runs.
    #[default]
    Enabled,
    /// The client was disabled (by the user or an admin).
    Disabled,
    /// The client was uninstalled.
    Uninstalled,
}

impl DeviceStatus {
    /// As the API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Enabled => "Enabled",
            DeviceStatus::Disabled => "Disabled",
            DeviceStatus::Uninstalled => "Uninstalled",
        }
    }
}

/// The last thing the tenant heard from a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastEvent {
    /// Unix seconds (the world's clock).
    pub timestamp: i64,
    /// `config_download`, or what the client reported (`tunnel_up`, ...).
    pub kind: String,
    /// The user the event is attributed to.
    pub actor: String,
}

/// One user of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceUser {
    /// The tenant user the device is attributed to.
    pub username: String,
    /// How the attribution was made.
    pub source: Enrollment,
    /// The account the request said is logged in (with email enrollment it can differ
    /// from `username`: the invite's addressee is not who clicked it).
    pub os_user: String,
}

/// A device the tenant has heard from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The client's device id.
    pub device_id: String,
    /// Host name.
    pub hostname: String,
    /// Operating system.
    pub os: String,
    /// Client software version.
    pub client_version: String,
    /// When the tenant first heard from it.
    pub install_time: i64,
    /// Its users, first seen first.
    pub users: Vec<DeviceUser>,
    /// The last event.
    pub last_event: LastEvent,
    /// Its status.
    pub status: DeviceStatus,
    /// The configuration it downloaded last: (name, version).
    pub config: Option<(String, u64)>,
    /// The configuration version it said it ran when it last asked (`None`: the one it
    /// was installed with).
    pub running_version: Option<u64>,
}

/// What a configuration request carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigRequest {
    /// Device id.
    pub device: String,
    /// The logged-in user (UPN or IdP identity; with email enrollment, who clicked).
    pub user: Option<String>,
    /// Host name.
    pub hostname: String,
    /// Operating system.
    pub os: Option<String>,
    /// The configuration version the client runs (`None`: the one it was installed with).
    pub config_version: Option<u64>,
    /// Client software version.
    pub client_version: Option<String>,
    /// With email enrollment: the address the invite the client was installed from was
    /// sent to.
    pub invite: Option<String>,
}

/// Why a configuration or event request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The request lacks something (HTTP 400).
    #[error("{0}")]
    BadRequest(String),
    /// The user is not the tenant's, or cannot be identified (HTTP 403).
    #[error("{0}")]
    Forbidden(String),
    /// The device is unknown (HTTP 404).
    #[error("{0}")]
    NotFound(String),
}

/// The tenant, shared by its routers and the world (a cheap handle).
#[derive(Clone)]
pub struct TenantState {
    inner: Arc<Mutex<Inner>>,
    clock: Clock,
}

impl std::fmt::Debug for TenantState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantState")
            .field("tenant", &self.lock().spec.tenant)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) spec: TenantSpec,
    pub(crate) devices: BTreeMap<String, Device>,
    pub(crate) behaviour: crate::Behaviour,
    last_version: u64,
}

impl TenantState {
    /// Checks the spec (every group's configuration, every user's group and the default
    /// configuration exist), adds the lost-device group if missing, and numbers the
    /// configurations' versions from one tenant-wide counter so that two documents never
    /// share a version: a client moved to another configuration always sees a new one.
    pub fn new(mut spec: TenantSpec, clock: Clock) -> Result<TenantState, TenantError> {
        if spec.tenant.is_empty() {
            return Err(TenantError::Empty("name"));
        }
        if spec.api_token.is_empty() {
            return Err(TenantError::Empty("API token"));
        }
        if !spec.groups.contains_key(&spec.lost_group) {
            let name = spec.lost_group.clone();
            spec.configs
                .entry(name.clone())
                .or_insert_with(|| lost_device_config(&name, &spec.lost_exceptions));
            spec.groups.insert(name.clone(), name);
        }
        if !spec.configs.contains_key(&spec.default_config) {
            return Err(TenantError::UnknownConfig(spec.default_config.clone()));
        }
        for config in spec.groups.values() {
            if !spec.configs.contains_key(config) {
                return Err(TenantError::UnknownConfig(config.clone()));
            }
        }
        for group in spec.users.values().flatten() {
            if !spec.groups.contains_key(group) {
                return Err(TenantError::UnknownGroup(group.clone()));
            }
        }
        let mut last_version = 0;
        let mut seen = std::collections::BTreeSet::new();
        let mut renumber = Vec::new();
        for (name, doc) in spec.configs.iter_mut() {
            doc.name = name.clone();
            if doc.version == 0 || !seen.insert(doc.version) {
                renumber.push(name.clone());
            }
            last_version = last_version.max(doc.version);
        }
        for name in renumber {
            if let Some(doc) = spec.configs.get_mut(&name) {
                last_version += 1;
                doc.version = last_version;
            }
        }
        Ok(TenantState {
            inner: Arc::new(Mutex::new(Inner {
                spec,
                devices: BTreeMap::new(),
                behaviour: crate::Behaviour::Answer,
                last_version,
            })),
            clock,
        })
    }

    /// The tenant as it is now: configurations with their current versions, users in
    /// their current groups (for `steerlab serve` and the world's timeline).
    pub fn spec(&self) -> TenantSpec {
        self.lock().spec.clone()
    }

    /// The tenant's name.
    pub fn tenant(&self) -> String {
        self.lock().spec.tenant.clone()
    }

    /// Now, by the clock the world gave.
    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    /// Makes the configuration download misbehave (or behave again).
    pub fn set_behaviour(&self, behaviour: crate::Behaviour) {
        self.lock().behaviour = behaviour;
    }

    /// Moves a user to a group (`None`: out of every group). The user's next configuration
    /// download gets that group's configuration.
    pub fn move_user(&self, user: &str, group: Option<&str>) -> Result<(), TenantError> {
        let mut inner = self.lock();
        if let Some(g) = group
            && !inner.spec.groups.contains_key(g)
        {
            return Err(TenantError::UnknownGroup(g.to_string()));
        }
        let slot = inner
            .spec
            .users
            .get_mut(user)
            .ok_or_else(|| TenantError::UnknownUser(user.to_string()))?;
        *slot = group.map(str::to_string);
        Ok(())
    }

    /// Marks the user's devices lost or stolen: moves the user to the lost-device group.
    pub fn mark_lost(&self, user: &str) -> Result<(), TenantError> {
        let group = self.lost_group();
        self.move_user(user, Some(&group))
    }

    /// Whether the user is in the lost-device group (the gateway's block-all policy
    /// applies to it).
    pub fn is_lost(&self, user: &str) -> bool {
        let inner = self.lock();
        inner.spec.users.get(user).and_then(Option::as_deref)
            == Some(inner.spec.lost_group.as_str())
    }

    /// The lost-device group's name.
    pub fn lost_group(&self) -> String {
        self.lock().spec.lost_group.clone()
    }

    /// The user's group, if any (`None` also for unknown users).
    pub fn group_of(&self, user: &str) -> Option<String> {
        self.lock().spec.users.get(user).cloned().flatten()
    }

    /// Changes the configuration a group gets (`None`: the default configuration) and
    /// gives it a new version. Groups sharing the configuration all see the change.
    /// Returns the new version.
    pub fn set_config(
        &self,
        group: Option<&str>,
        change: ConfigChange,
    ) -> Result<u64, TenantError> {
        self.update_config(group, |doc| change.apply(doc))
    }

    /// Like [`TenantState::set_config`] with any edit; the document's name and version
    /// stay the tenant's.
    pub fn update_config(
        &self,
        group: Option<&str>,
        edit: impl FnOnce(&mut ClientConfigDoc),
    ) -> Result<u64, TenantError> {
        let mut inner = self.lock();
        let name = match group {
            None => inner.spec.default_config.clone(),
            Some(g) => inner
                .spec
                .groups
                .get(g)
                .cloned()
                .ok_or_else(|| TenantError::UnknownGroup(g.to_string()))?,
        };
        inner.last_version += 1;
        let version = inner.last_version;
        let doc = inner
            .spec
            .configs
            .get_mut(&name)
            .ok_or_else(|| TenantError::UnknownConfig(name.clone()))?;
        edit(doc);
        doc.name = name;
        doc.version = version;
        Ok(version)
    }

    /// The configuration the user gets now (`None` for an unknown user).
    pub fn config_for(&self, user: &str) -> Option<ClientConfigDoc> {
        self.lock().config_for(user).cloned()
    }

    /// A device, as the tenant last heard from it.
    pub fn device(&self, device_id: &str) -> Option<Device> {
        self.lock().devices.get(device_id).cloned()
    }

    /// Every device, by device id.
    pub fn devices(&self) -> Vec<Device> {
        self.lock().devices.values().cloned().collect()
    }

    /// Serves a configuration request: attributes the device to a user by the enrollment
    /// mode, records the device and its `config_download` event, and returns the user's
    /// configuration.
    pub fn download_config(&self, req: &ConfigRequest) -> Result<ClientConfigDoc, Refusal> {
        check_text("device", &req.device)?;
        check_text("hostname", &req.hostname)?;
        for (what, v) in [
            ("user", &req.user),
            ("os", &req.os),
            ("client_version", &req.client_version),
            ("invite", &req.invite),
        ] {
            if let Some(v) = v {
                check_text(what, v)?;
            }
        }
        let now = self.now();
        let mut inner = self.lock();
        let mode = inner.spec.enrollment;
        let (username, source) = attribute(mode, inner.devices.get(&req.device), req)?;
        if !inner.spec.users.contains_key(&username) {
            return Err(Refusal::Forbidden(format!(
                "user `{username}` is not a user of this tenant"
            )));
        }
        let doc = inner
            .config_for(&username)
            .cloned()
            .ok_or_else(|| Refusal::Forbidden(format!("no configuration for `{username}`")))?;
        let os_user = req.user.clone().unwrap_or_default();
        let device = inner
            .devices
            .entry(req.device.clone())
            .or_insert_with(|| Device {
                device_id: req.device.clone(),
                hostname: String::new(),
                os: String::new(),
                client_version: String::new(),
                install_time: now,
                users: Vec::new(),
                last_event: LastEvent {
                    timestamp: now,
                    kind: String::new(),
                    actor: String::new(),
                },
                status: DeviceStatus::Enabled,
                config: None,
                running_version: None,
            });
        device.hostname = req.hostname.clone();
        if let Some(os) = &req.os {
            device.os = os.clone();
        }
        if let Some(v) = &req.client_version {
            device.client_version = v.clone();
        }
        device.running_version = req.config_version;
        match device.users.iter_mut().find(|u| u.username == username) {
            Some(u) => u.os_user = os_user,
            None => device.users.push(DeviceUser {
                username: username.clone(),
                source,
                os_user,
            }),
        }
        device.last_event = LastEvent {
            timestamp: now,
            kind: "config_download".into(),
            actor: username,
        };
        device.config = Some((doc.name.clone(), doc.version));
        Ok(doc)
    }

    /// Records an event a client reported. `client_disabled`, `client_enabled` and
    /// `client_uninstalled` also set the device's status. An empty `user` is the device's
    /// first user (the one it is attributed to).
    pub fn record_event(&self, device: &str, user: &str, kind: &str) -> Result<(), Refusal> {
        check_text("device", device)?;
        if !user.is_empty() {
            check_text("user", user)?;
        }
        check_text("type", kind)?;
        let now = self.now();
        let mut inner = self.lock();
        let d = inner.devices.get_mut(device).ok_or_else(|| {
            Refusal::NotFound(format!(
                "unknown device `{device}`: a device registers by downloading its configuration"
            ))
        })?;
        d.status = match kind {
            "client_disabled" => DeviceStatus::Disabled,
            "client_enabled" => DeviceStatus::Enabled,
            "client_uninstalled" => DeviceStatus::Uninstalled,
            _ => d.status,
        };
        let actor = if user.is_empty() {
            d.users
                .first()
                .map(|u| u.username.clone())
                .unwrap_or_default()
        } else {
            user.to_string()
        };
        d.last_event = LastEvent {
            timestamp: now,
            kind: kind.to_string(),
            actor,
        };
        Ok(())
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    pub(crate) fn config_for(&self, user: &str) -> Option<&ClientConfigDoc> {
        let group = self.spec.users.get(user)?;
        let name = group
            .as_ref()
            .and_then(|g| self.spec.groups.get(g))
            .unwrap_or(&self.spec.default_config);
        self.spec.configs.get(name)
    }
}

/// The longest text a request field may carry.
pub const FIELD_CHARS_MAX: usize = 256;

fn check_text(what: &str, value: &str) -> Result<(), Refusal> {
    if value.is_empty() {
        return Err(Refusal::BadRequest(format!("`{what}` is empty")));
    }
    if value.chars().count() > FIELD_CHARS_MAX || value.chars().any(char::is_control) {
        return Err(Refusal::BadRequest(format!(
            "`{what}` must be at most {FIELD_CHARS_MAX} characters without control characters"
        )));
    }
    Ok(())
}

/// Who a configuration request is attributed to (seed 001). With UPN and IdP enrollment,
/// the logged-in user. With email enrollment, the client is tied to the invite's
/// addressee: a device already enrolled by invite stays with that user, a new one takes
/// the address the invite was sent to — whoever clicked it and whoever is logged in.
pub fn attribute(
    mode: Enrollment,
    device: Option<&Device>,
    req: &ConfigRequest,
) -> Result<(String, Enrollment), Refusal> {
    match mode {
        Enrollment::Upn | Enrollment::Idp => req.user.clone().map(|u| (u, mode)).ok_or_else(|| {
            Refusal::Forbidden(format!("{} enrollment needs `user`", mode.as_str()))
        }),
        Enrollment::Email => {
            let tied = device.and_then(|d| d.users.iter().find(|u| u.source == Enrollment::Email));
            match (tied, &req.invite) {
                (Some(u), _) => Ok((u.username.clone(), Enrollment::Email)),
                (None, Some(addressee)) => Ok((addressee.clone(), Enrollment::Email)),
                (None, None) => Err(Refusal::Forbidden(
                    "email enrollment: the client carries no invite (`invite`)".into(),
                )),
            }
        }
    }
}
