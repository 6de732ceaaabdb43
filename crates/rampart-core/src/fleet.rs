//! The agent ↔ server protocol: what crosses the wire, shared by both ends so they cannot
//! disagree. Plain data; JSON over HTTPS (mTLS on the agent port).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ScanReport;

/// Text without control characters, as JSON Schema says it (the server's own check).
const PRINTABLE: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$";

/// `POST /api/v1/enrol`: a one-time token and a CSR for a key the agent generated itself.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct EnrolRequest {
    /// The enrolment token (a JWT).
    pub token: String,
    /// PKCS#10 certificate signing request, PEM.
    pub csr_pem: String,
    /// Host name.
    #[schemars(length(min = 1, max = 255), regex(pattern = PRINTABLE))]
    pub hostname: String,
    /// Operating system.
    #[schemars(length(min = 1, max = 255), regex(pattern = PRINTABLE))]
    pub os: String,
    /// CPU architecture.
    #[schemars(length(min = 1, max = 255), regex(pattern = PRINTABLE))]
    pub arch: String,
    /// Agent software version.
    #[schemars(length(min = 1, max = 255), regex(pattern = PRINTABLE))]
    pub agent_version: String,
}

/// What an enrolled agent needs to talk to the agent port.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct EnrolResponse {
    /// The agent's id.
    pub agent_id: String,
    /// Its certificate then the intermediate, PEM.
    pub certificate_chain_pem: String,
    /// The root CA, PEM (the agent checks it against the token's `sha`).
    pub root_pem: String,
    /// Base URL of the mTLS agent API, e.g. `https://rampart.example:8444`.
    pub agent_url: String,
    /// Heartbeat interval, seconds.
    pub heartbeat_secs: u64,
}

/// `POST /agent/v1/renew`: a fresh CSR (the agent may rotate its key).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct RenewRequest {
    /// PKCS#10 certificate signing request, PEM.
    pub csr_pem: String,
}

/// A renewed certificate.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct RenewResponse {
    /// The new certificate then the intermediate, PEM.
    pub certificate_chain_pem: String,
}

/// What the agent holds of one policy.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct HeldPolicy {
    /// Policy id.
    pub policy_id: String,
    /// SHA-256 of the content the agent has.
    pub digest: String,
}

/// `POST /agent/v1/heartbeat`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Heartbeat {
    /// What the agent is doing (`idle`, `scanning`, `spooling`).
    pub state: String,
    /// Results waiting in the spool.
    pub spooled_runs: u64,
    /// Agent software version.
    pub agent_version: String,
}

/// A policy version the agent must run, and when.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct AssignedPolicy {
    /// Policy id.
    pub policy_id: String,
    /// Version.
    pub version: i64,
    /// SHA-256 of the content; fetch only when it differs from what is held.
    pub digest: String,
    /// Cron expression (5 fields, or `@hourly`/`@daily`…), evaluated in UTC.
    pub schedule: String,
}

/// The server's answer to a heartbeat.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct HeartbeatResponse {
    /// Server time, RFC 3339: agents log a warning when their clock is far off.
    pub server_time: String,
    /// Heartbeat interval, seconds.
    pub heartbeat_secs: u64,
    /// What to run.
    pub assignments: Vec<AssignedPolicy>,
    /// Run every assigned policy now ("scan now" from an operator).
    pub scan_now: bool,
}

/// `POST /agent/v1/runs` (body gzip-compressed): one policy's results.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct RunSubmission {
    /// Chosen by the agent when the scan finishes; a resend carries the same id.
    #[schemars(regex(pattern = "^[A-Za-z0-9_-]{8,128}$"))]
    pub run_id: String,
    /// Policy version the scan used (none for ad-hoc scans).
    pub policy_version: Option<i64>,
    /// SHA-256 of the policy content scanned.
    pub policy_digest: String,
    /// `schedule`, `on_demand` or `manual`.
    pub trigger: String,
    /// The engine's report, exactly one policy.
    #[schemars(extend("properties" = {"policies": {"minItems": 1, "maxItems": 1}}))]
    pub report: ScanReport,
    /// What the host was talking to and serving when it scanned, for threat-intel matching
    /// (absent from older agents).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observables: Vec<Observable>,
}

/// Where an observable came from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ObservableKind {
    /// The remote end of an established TCP connection (`/proc/net/tcp`, `tcp6`).
    Connection,
    /// A listening TCP socket.
    Listener,
    /// A name or address in the resolver's static table (`/etc/hosts`).
    Resolver,
}

impl ObservableKind {
    /// Its wire name, as serialised and stored beside a fleet hit.
    pub fn as_str(self) -> &'static str {
        match self {
            ObservableKind::Connection => "connection",
            ObservableKind::Listener => "listener",
            ObservableKind::Resolver => "resolver",
        }
    }
}

/// Something an agent saw on its host that may match an indicator.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq, Hash)]
pub struct Observable {
    /// Where it came from.
    pub kind: ObservableKind,
    /// The value to match: `203.0.113.5:443`, `[2001:db8::1]:443`, `evil.example`, `198.51.100.7`.
    pub value: String,
    /// Where exactly, for the analyst: the socket (`tcp 10.0.0.5:53422 -> 203.0.113.5:443`), the
    /// file and line (`/etc/hosts:12`).
    pub context: String,
}

/// The server's receipt: once the agent has it, the run is durable and the spool entry can go.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct RunReceipt {
    /// The run id.
    pub run_id: String,
    /// `stored`, or `duplicate` when the run was already stored (a resend).
    pub outcome: String,
    /// The id (`jti`) of the run's signed attestation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<String>,
}

/// Free-form labels.
pub type Labels = BTreeMap<String, String>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_observable_kind_names_itself_as_it_serialises() {
        for kind in [
            ObservableKind::Connection,
            ObservableKind::Listener,
            ObservableKind::Resolver,
        ] {
            assert_eq!(
                serde_json::to_value(kind).ok(),
                Some(serde_json::Value::from(kind.as_str()))
            );
        }
    }
}
