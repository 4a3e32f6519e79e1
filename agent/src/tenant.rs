//! The tenant's client configuration as the control plane serves it (the `addon-<tenant>`
//! download) and the agent reads it: one JSON document with a version, the steering
//! configuration and the client settings. Shared by the agent and `sim-tenant`, like
//! [`crate::wire`] is shared with the gateway.

use serde::{Deserialize, Serialize};

/// One configuration document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfigDoc {
    /// Grows with every change the admin makes; the agent applies a document only when
    /// its version differs from the one it runs.
    pub version: u64,
    /// The configuration's name in the admin console (`Default`, `Lost devices`).
    pub name: String,
    /// How traffic is steered.
    pub steering: SteeringDoc,
    /// Client behaviour.
    pub client: ClientDoc,
}

/// The steering part (nsdomain.json, nsexception.json, nsbypass.json in the real client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SteeringDoc {
    /// `cloud-apps` | `web` | `all`.
    pub mode: String,
    /// Managed domains (cloud-apps mode).
    pub managed: Vec<String>,
    /// Domain, IP and CIDR exceptions.
    pub exceptions: Vec<String>,
    /// Certificate-pinned apps sent direct, by process name.
    pub bypass_apps: Vec<String>,
    /// Mode `all`: DNS through the tunnel too.
    pub steer_dns: bool,
    /// Steer RFC 1918 destinations.
    pub private_apps: bool,
}

/// The client configuration part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ClientDoc {
    /// Block steered flows while no tunnel is up.
    pub fail_close: bool,
    /// How often the client classifies the device (seconds; 0: never).
    pub device_classification_interval_s: u64,
    /// How often the user must re-authenticate (seconds; 0: never).
    pub reauth_interval_s: u64,
    /// `latest` | `golden` | ... : which releases the client upgrades to.
    pub upgrade_channel: String,
    /// How often the client pulls its configuration (seconds; 0: the agent's default).
    pub config_interval_s: u64,
}

impl ClientConfigDoc {
    /// Reads a document; the error says what is wrong, for the log.
    pub fn from_json(bytes: &[u8]) -> Result<ClientConfigDoc, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    /// The document as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let doc = ClientConfigDoc {
            version: 3,
            name: "Lost devices".into(),
            steering: SteeringDoc {
                mode: "all".into(),
                steer_dns: true,
                ..SteeringDoc::default()
            },
            client: ClientDoc {
                fail_close: true,
                ..ClientDoc::default()
            },
        };
        assert_eq!(ClientConfigDoc::from_json(&doc.to_json()), Ok(doc));
        assert!(ClientConfigDoc::from_json(b"{}").is_err());
        assert!(ClientConfigDoc::from_json(b"not json").is_err());
        let extra = br#"{"version":1,"name":"x","steering":{},"client":{},"zzz":1}"#;
        assert!(
            ClientConfigDoc::from_json(extra)
                .unwrap_err()
                .contains("zzz")
        );
    }
}
