//! Records the store reads and writes. Plain data: validation happens before they get here.

use std::collections::BTreeMap;

use rampart_core::{CheckOutcome, HostInfo, Status, Summary};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Key and certificate of one of the server's own signers, the key encrypted (PKCS#8 PEM).
#[derive(Debug, Clone, PartialEq)]
pub struct CaMaterial {
    /// `root`, `intermediate`, `token-signer`, …
    pub name: String,
    /// Certificate (or public key) in PEM.
    pub cert_pem: String,
    /// Encrypted private key in PEM.
    pub key_pem: String,
    /// When it was created.
    pub created_at: OffsetDateTime,
}

/// Free-form labels an agent carries (`env: prod`, `team: web`).
pub type Labels = BTreeMap<String, String>;

/// An enrolment token as the server remembers it. The token itself is a signed JWT the server
/// hands out once; only its `jti` and terms are stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EnrolmentToken {
    /// Unique token id (the JWT `jti`).
    pub jti: String,
    /// Group enrolled agents join.
    pub group: String,
    /// Labels enrolled agents get.
    pub labels: Labels,
    /// The audience the token is bound to (the server's enrolment URL).
    pub audience: String,
    /// How many enrolments the token allows.
    pub max_uses: u32,
    /// How many it has been used for.
    pub uses: u32,
    /// When it stops being accepted (before leeway).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub expires_at: OffsetDateTime,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub created_at: OffsetDateTime,
    /// When an admin withdrew it.
    #[serde(with = "time::serde::rfc3339::option", default)]
    #[schemars(with = "Option<rampart_core::timestamp::Rfc3339>")]
    pub revoked_at: Option<OffsetDateTime>,
    /// When set, the token re-enrols this existing agent (same id) instead of creating one.
    #[serde(default)]
    pub reenrol_agent_id: Option<String>,
}

/// The answer to "may this token enrol one more agent?", decided and counted atomically.
#[derive(Debug, Clone, PartialEq)]
pub enum Redemption {
    /// Accepted; the use has been counted.
    Accepted(EnrolmentToken),
    /// No token with this `jti` was ever issued here.
    Unknown,
    /// Every allowed use has been spent (a replay of a single-use token lands here).
    Exhausted,
    /// Past its expiry plus leeway.
    Expired,
    /// Withdrawn by an admin.
    Revoked,
}

/// Whether an agent may still talk to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// Enrolled and not revoked.
    Active,
    /// Revoked: its certificates are refused and it may not renew.
    Revoked,
}

impl AgentStatus {
    pub(crate) fn parse(s: &str) -> Result<AgentStatus, crate::StoreError> {
        match s {
            "active" => Ok(AgentStatus::Active),
            "revoked" => Ok(AgentStatus::Revoked),
            other => Err(crate::StoreError::corrupt("agents.status", other)),
        }
    }
}

/// What an agent says about itself when it enrols.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAgent {
    /// Identifier the server chose (or kept, on re-enrolment).
    pub id: String,
    /// Host name.
    pub hostname: String,
    /// Operating system.
    pub os: String,
    /// CPU architecture.
    pub arch: String,
    /// Agent software version.
    pub agent_version: String,
    /// Labels from the token.
    pub labels: Labels,
    /// Group from the token.
    pub group: String,
}

/// An enrolled agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Agent {
    /// Identifier (UUID).
    pub id: String,
    /// Host name.
    pub hostname: String,
    /// Operating system.
    pub os: String,
    /// CPU architecture.
    pub arch: String,
    /// Agent software version.
    pub agent_version: String,
    /// Labels.
    pub labels: Labels,
    /// Group.
    pub group: String,
    /// Serial of its newest certificate.
    pub cert_serial: String,
    /// When that certificate expires.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub cert_not_after: OffsetDateTime,
    /// First enrolment.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub enrolled_at: OffsetDateTime,
    /// Last heartbeat (or enrolment).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub last_seen: OffsetDateTime,
    /// Active or revoked.
    pub status: AgentStatus,
    /// A "scan now" not yet delivered.
    #[serde(with = "time::serde::rfc3339::option", default)]
    #[schemars(with = "Option<rampart_core::timestamp::Rfc3339>")]
    pub scan_requested_at: Option<OffsetDateTime>,
}

/// A certificate the CA issued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CertificateRecord {
    /// Serial number, lowercase hex.
    pub serial: String,
    /// The agent it identifies.
    pub agent_id: String,
    /// SHA-256 of the DER, hex.
    pub fingerprint: String,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub not_after: OffsetDateTime,
    /// When it was issued.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub issued_at: OffsetDateTime,
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339::option", default)]
    #[schemars(with = "Option<rampart_core::timestamp::Rfc3339>")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Why.
    #[serde(default)]
    pub revocation_reason: Option<String>,
}

/// A revoked, not yet expired certificate: what a CRL and the handshake check need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// Serial number, lowercase hex.
    pub serial: String,
    /// When it was revoked.
    pub revoked_at: OffsetDateTime,
}

/// One immutable version of a policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PolicyVersion {
    /// Policy id.
    pub policy_id: String,
    /// 1, 2, 3…
    pub version: i64,
    /// SHA-256 of the content, hex.
    pub digest: String,
    /// Source format (`rampart`, `wazuh-sca-4`, …).
    pub format: String,
    /// File name it was uploaded as.
    pub file_name: String,
    /// Number of checks.
    pub check_count: i64,
    /// Upload time.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A policy with its newest version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PolicySummary {
    /// Policy id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Number of versions kept.
    pub versions: i64,
    /// The newest version.
    pub latest: PolicyVersion,
}

/// Who an assignment applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Target {
    /// Every agent of a group.
    Group(String),
    /// One agent.
    Agent(String),
}

impl Target {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Target::Group(_) => "group",
            Target::Agent(_) => "agent",
        }
    }

    pub(crate) fn name(&self) -> &str {
        match self {
            Target::Group(n) | Target::Agent(n) => n,
        }
    }

    pub(crate) fn from_parts(kind: &str, name: String) -> Result<Target, crate::StoreError> {
        match kind {
            "group" => Ok(Target::Group(name)),
            "agent" => Ok(Target::Agent(name)),
            other => Err(crate::StoreError::corrupt("assignments.target_kind", other)),
        }
    }
}

/// A policy version assigned to a group or agent, with its schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Assignment {
    /// Policy id.
    pub policy_id: String,
    /// Who runs it.
    pub target: Target,
    /// Which version.
    pub version: i64,
    /// That version's digest (agents compare it with what they hold).
    pub digest: String,
    /// Cron expression.
    pub schedule: String,
    /// When the assignment was made or last changed.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A run an agent posted: one policy evaluated once, with every check result.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    /// Run id chosen by the agent; a retried post carries the same one.
    pub id: String,
    /// Posting agent.
    pub agent_id: String,
    /// Policy evaluated.
    pub policy_id: String,
    /// Its version, when it came from an assignment.
    pub policy_version: Option<i64>,
    /// SHA-256 of the policy content evaluated.
    pub policy_digest: String,
    /// `schedule`, `on_demand` or `manual`.
    pub trigger: String,
    /// Scan start.
    pub started_at: OffsetDateTime,
    /// Scan end.
    pub finished_at: OffsetDateTime,
    /// When the server accepted it.
    pub received_at: OffsetDateTime,
    /// Counts and score.
    pub summary: Summary,
    /// The engine's results digest.
    pub results_digest: String,
    /// Host as the engine saw it.
    pub host: HostInfo,
    /// Engine warnings.
    pub warnings: Vec<String>,
    /// The scanner that produced the results (`rampart 0.1.0`), as the report named it.
    pub generator: String,
    /// SHA-256 (hex) of the certificate the run was posted with.
    pub cert_sha256: String,
    /// That certificate's expiry.
    pub cert_not_after: OffsetDateTime,
    /// Every check result, evidence included.
    pub checks: Vec<CheckOutcome>,
    /// Each check result's JSON as it is stored, in the same order ([`outcome_texts`]):
    /// serialised once by the caller, which builds the run's evidence document from the same
    /// texts, so the document an attestation signs is byte for byte what is stored.
    pub check_texts: Vec<String>,
}

/// Whether an ingested run was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IngestOutcome {
    /// Stored now.
    Stored,
    /// A run with this id was already stored; nothing changed.
    Duplicate,
}

/// A stored run without its check results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunSummary {
    /// Run id.
    pub id: String,
    /// Agent.
    pub agent_id: String,
    /// Policy.
    pub policy_id: String,
    /// Policy version.
    pub policy_version: Option<i64>,
    /// Policy digest.
    pub policy_digest: String,
    /// What triggered it.
    pub trigger: String,
    /// Scan start.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub started_at: OffsetDateTime,
    /// Scan end.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub finished_at: OffsetDateTime,
    /// Server receipt.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub received_at: OffsetDateTime,
    /// Counts and score.
    pub summary: Summary,
    /// Engine results digest.
    pub results_digest: String,
    /// Host as scanned.
    pub host: HostInfo,
    /// Engine warnings.
    pub warnings: Vec<String>,
    /// The scanner that produced the results (empty for runs stored before it was kept).
    #[serde(default)]
    pub generator: String,
}

/// A stored run with every check result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunDetail {
    /// The run.
    #[serde(flatten)]
    pub run: RunSummary,
    /// Its check results, in policy order.
    pub checks: Vec<CheckOutcome>,
}

/// One observation of one check, for its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CheckHistoryPoint {
    /// Run.
    pub run_id: String,
    /// When the run started.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub started_at: OffsetDateTime,
    /// Status in that run.
    pub status: Status,
}

/// The current state of one check on one agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LatestResult {
    /// Agent.
    pub agent_id: String,
    /// Policy.
    pub policy_id: String,
    /// Check.
    pub check_id: String,
    /// Current status.
    pub status: Status,
    /// The agent's newest run of the policy (that had results), which reported it: a check
    /// that run no longer has has no latest result.
    pub run_id: String,
    /// When that run started.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub observed_at: OffsetDateTime,
    /// When the check entered this status.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub since: OffsetDateTime,
}

/// A policy's fleet-wide score over one time bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScorePoint {
    /// Start of the bucket.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub bucket_start: OffsetDateTime,
    /// Runs in the bucket.
    pub runs: i64,
    /// Distinct agents in the bucket.
    pub agents: i64,
    /// Passed checks summed over the runs.
    pub passed: i64,
    /// Failed checks summed over the runs.
    pub failed: i64,
    /// passed / (passed + failed) × 100.
    pub score: f64,
}

/// One row of the flat results view: a check result with its run and agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FlatResult {
    /// Run.
    pub run_id: String,
    /// Agent.
    pub agent_id: String,
    /// Agent host name.
    pub hostname: String,
    /// Agent group.
    pub group: String,
    /// Policy.
    pub policy_id: String,
    /// Policy version.
    pub policy_version: Option<i64>,
    /// Run start.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub started_at: OffsetDateTime,
    /// Check.
    pub check_id: String,
    /// Check title.
    pub title: String,
    /// Severity.
    pub severity: String,
    /// Status.
    pub status: Status,
}

/// The stored JSON of each check result (a [`NewRun`]'s `check_texts`).
pub fn outcome_texts(checks: &[CheckOutcome]) -> Result<Vec<String>, crate::StoreError> {
    checks
        .iter()
        .map(|c| {
            serde_json::to_string(c).map_err(|e| crate::StoreError::corrupt("check outcome", e))
        })
        .collect()
}
