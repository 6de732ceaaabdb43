//! The admin API's wire types: what the handlers take and answer, and what the CLI (and the
//! coming dashboard) send and read back. One definition each, so a client cannot drift from
//! the server, and the OpenAPI document states exactly these (their JSON Schemas).

use rampart_core::{Severity, Status};
use rampart_intel::IocKind;
use rampart_intel::lookup::MatchSummary;
use rampart_store::{
    Agent, Assignment, CertificateRecord, CheckHistoryPoint, IntelFeed, IntelHit, Labels,
    LatestResult, PolicyVersion, RunSummary, Target,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Every error of the admin API and the agent port (RFC 9457 problem details).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "ProblemDetails")]
pub struct Problem {
    /// `urn:rampart:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The status's reason phrase.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What was wrong, naming the field or value.
    pub detail: String,
    /// Stable machine-readable code.
    pub code: String,
}

// ---- Login and one's own account ----

/// `POST /api/v1/login`: a password login that answers with an API token (what `rampart
/// login` keeps).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// User name.
    #[schemars(length(min = 1, max = 64))]
    pub user: String,
    /// Password.
    #[schemars(length(min = 1, max = 256))]
    pub password: String,
    /// A new password, required when the current one is one-time (first login, after a
    /// reset); it must meet the password policy.
    #[serde(default)]
    #[schemars(length(min = 1, max = 256))]
    pub new_password: Option<String>,
    /// Name of the token to issue; a live token of the user with this name is replaced
    /// (logging in again from the same place). Default `cli`.
    #[serde(default)]
    #[schemars(regex(pattern = rampart_core::names::NAME_PATTERN))]
    pub token_name: Option<String>,
    /// Token lifetime in days (1–365, default 90).
    #[serde(default)]
    #[schemars(range(min = 1, max = 365))]
    pub ttl_days: Option<u32>,
}

/// A newly issued API token: the only time it is shown.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct IssuedToken {
    /// The token (`rpt_…`). Stored by the server only as a hash.
    pub token: String,
    /// How it is listed.
    pub info: rampart_store::ApiToken,
}

/// `POST /api/v1/session`: a browser login.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// User name.
    #[schemars(length(min = 1, max = 64))]
    pub user: String,
    /// Password.
    #[schemars(length(min = 1, max = 256))]
    pub password: String,
    /// A new password, required when the current one is one-time.
    #[serde(default)]
    #[schemars(length(min = 1, max = 256))]
    pub new_password: Option<String>,
}

/// A browser session begun: the session itself travels only in its HttpOnly cookie; the page
/// keeps the CSRF token and sends it as `X-CSRF-Token` with every change.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SessionStarted {
    /// The user.
    pub user: rampart_store::User,
    /// To echo in `X-CSRF-Token` on every state-changing request of this session.
    pub csrf_token: String,
    /// When the session ends however active it is.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub expires_at: time::OffsetDateTime,
    /// Minutes without a request after which it ends.
    pub idle_minutes: u64,
}

/// `POST /api/v1/me/password`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The current password.
    #[schemars(length(min = 1, max = 256))]
    pub current: String,
    /// The new one; it must meet the password policy.
    #[schemars(length(min = 1, max = 256))]
    pub new: String,
}

/// `GET /api/v1/me`: the caller as the server judges them.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Me {
    /// The user.
    pub user: rampart_store::User,
    /// The token the call was made with.
    pub token: String,
    /// The permissions the call holds (the token's and the user's grants together).
    pub permissions: Vec<rampart_access::Permission>,
    /// The agent groups it is limited to; absent: the whole fleet.
    pub groups: Option<Vec<String>>,
}

// ---- Users and API tokens ----

/// `POST /api/v1/users`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    /// Login name: lowercase letters, digits, `.`, `_`, `-`, `@`.
    #[schemars(regex(pattern = rampart_access::USER_NAME_PATTERN))]
    pub name: String,
    /// Role.
    pub role: rampart_access::Role,
    /// Agent groups the role is limited to; empty or absent: the whole fleet.
    #[serde(default)]
    #[schemars(length(max = 64), inner(regex(pattern = rampart_core::names::NAME_PATTERN)))]
    pub groups: Vec<String>,
}

/// A user created or reset: the one-time password, shown once.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UserWithPassword {
    /// The user.
    pub user: rampart_store::User,
    /// One-time password, to be changed at the first login.
    pub one_time_password: String,
}

/// `PUT /api/v1/users/{name}/role`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    /// The new role.
    pub role: rampart_access::Role,
    /// Agent groups it is limited to; empty or absent: the whole fleet.
    #[serde(default)]
    #[schemars(length(max = 64), inner(regex(pattern = rampart_core::names::NAME_PATTERN)))]
    pub groups: Vec<String>,
}

/// `POST /api/v1/me/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTokenRequest {
    /// Name, unique among one's live tokens.
    #[schemars(regex(pattern = rampart_core::names::NAME_PATTERN))]
    pub name: String,
    /// Role it carries, at most one's own (default: one's own).
    #[serde(default)]
    pub role: Option<rampart_access::Role>,
    /// Groups it is limited to, within one's own (default: one's own).
    #[serde(default)]
    #[schemars(length(max = 64), inner(regex(pattern = rampart_core::names::NAME_PATTERN)))]
    pub groups: Option<Vec<String>>,
    /// Lifetime in days (1–365, default 90).
    #[serde(default)]
    #[schemars(range(min = 1, max = 365))]
    pub ttl_days: Option<u32>,
}

// ---- Enrolment tokens, agents, policies ----

/// `POST /api/v1/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TokenRequest {
    /// Group enrolled agents join.
    #[schemars(regex(pattern = rampart_core::names::NAME_PATTERN))]
    pub group: String,
    /// Labels enrolled agents get: at most 32, names like groups, values of at most 256
    /// characters without control characters.
    #[serde(default)]
    #[schemars(extend(
        "maxProperties" = 32,
        "propertyNames" = {"pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"},
        "additionalProperties" = {"type": "string", "maxLength": 256, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"}
    ))]
    pub labels: Labels,
    /// Lifetime in seconds (default 3600, at most 7 days).
    #[serde(default = "default_ttl")]
    #[schemars(range(min = 10, max = 604_800))]
    pub ttl_secs: i64,
    /// Enrolments allowed (default 1: single use; a re-enrolment token must be single-use).
    #[serde(default = "default_uses")]
    #[schemars(range(min = 1))]
    pub max_uses: u32,
    /// Re-enrol this existing agent, keeping its identity and history.
    #[serde(default)]
    pub agent_id: Option<String>,
}

/// A new token: shown once, stored only by its `jti`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TokenCreated {
    /// The token to hand to the agent (file, stdin or environment — never a command line).
    pub token: String,
    /// Its id.
    pub jti: String,
    /// Expiry, RFC 3339.
    pub expires_at: String,
    /// The enrolment URL it is bound to.
    pub audience: String,
}

/// Acknowledgement.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Done {
    /// Always true.
    pub ok: bool,
}

/// An agent with its connection state.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AgentView {
    /// The agent.
    #[serde(flatten)]
    pub agent: Agent,
    /// `online`, `offline` (missed heartbeats) or `revoked`.
    pub connection: String,
}

/// One agent and its certificates.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AgentDetail {
    /// The agent.
    #[serde(flatten)]
    pub agent: AgentView,
    /// Certificates issued to it, newest first.
    pub certificates: Vec<CertificateRecord>,
    /// Policies it must run.
    pub assignments: Vec<Assignment>,
}

/// `POST /api/v1/agents/{id}/revoke`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RevokeRequest {
    /// Why (kept with the certificates).
    #[serde(default = "default_reason")]
    #[schemars(length(max = 1024))]
    pub reason: String,
}

/// What a revocation did.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Revoked {
    /// Serials revoked (refused from the next handshake on).
    pub serials: Vec<String>,
}

/// `POST /api/v1/policies`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PolicyUpload {
    /// File name (used in error locations).
    #[schemars(length(max = 255))]
    pub file_name: String,
    /// The policy text, exactly as in the file.
    pub content: String,
}

/// What an upload produced.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PolicyUploaded {
    /// The version (new, or the newest one when the content is unchanged).
    #[serde(flatten)]
    pub version: PolicyVersion,
    /// Whether a new version was created.
    pub created: bool,
}

/// `PUT /api/v1/policies/{id}/assignments`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AssignRequest {
    /// Group or agent.
    pub target: Target,
    /// Version (default: the newest).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub version: Option<i64>,
    /// Cron expression, UTC (5 fields, or `@hourly`, `@daily`, …).
    pub schedule: String,
}

fn default_ttl() -> i64 {
    3600
}

fn default_uses() -> u32 {
    1
}

fn default_reason() -> String {
    "revoked by an administrator".into()
}

// ---- History ----

/// A check's history on one agent.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CheckHistory {
    /// Every observation kept, oldest first (at most `limit`).
    pub points: Vec<CheckHistoryPoint>,
    /// The current status and since when, from the latest-state view.
    pub current: Option<LatestResult>,
}

/// One check whose status or evidence differs between two runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CheckChange {
    /// Check id.
    pub check_id: String,
    /// Title.
    pub title: String,
    /// Status in run a (none: the check was not in run a).
    pub before: Option<Status>,
    /// Status in run b (none: the check is not in run b).
    pub after: Option<Status>,
}

/// What changed between two runs of the same policy.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RunDiff {
    /// Run a.
    pub from: RunSummary,
    /// Run b.
    pub to: RunSummary,
    /// Not failing in a, failing in b.
    pub newly_failing: Vec<CheckChange>,
    /// Not passing in a, passing in b.
    pub newly_passing: Vec<CheckChange>,
    /// Other status changes (e.g. pass → not applicable), and checks added or removed.
    pub other_changes: Vec<CheckChange>,
    /// Same status, different evidence (a changed line, another command output).
    pub evidence_changed: Vec<CheckChange>,
}

// ---- Threat intelligence ----

/// `POST /api/v1/intel/match`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MatchRequest {
    /// Observables, free text (refanged); at most 100,000.
    pub observables: Vec<String>,
    /// Report allowlisted matches too (marked with the list that covers them).
    #[serde(default)]
    pub include_allowlisted: bool,
}

/// Bulk match results.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MatchResponse {
    /// One entry per (observable, indicator) match.
    pub matches: Vec<ObservableMatch>,
    /// Observables that are not indicators, with the reason.
    pub invalid: Vec<InvalidObservable>,
}

/// One (observable, indicator) match.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ObservableMatch {
    /// Position of the observable in the request.
    pub index: usize,
    /// The observable as sent.
    pub observable: String,
    /// The match.
    #[serde(flatten)]
    pub summary: MatchSummary,
}

/// An observable that is not an indicator.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct InvalidObservable {
    /// Position in the request.
    pub index: usize,
    /// The observable as sent.
    pub observable: String,
    /// Why it is not an indicator.
    pub error: String,
}

/// Index and store statistics.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct IntelStats {
    /// Indicators in the lookup index.
    pub indexed: usize,
    /// Index memory, bytes.
    pub index_bytes: usize,
    /// Live indicators in the index per kind (allowlisted ones included).
    pub kinds: Vec<KindCount>,
    /// Indicators expired but kept in the store until purged.
    pub expired: i64,
    /// Feeds with their health.
    pub feeds: Vec<IntelFeed>,
}

/// Live indicators of one kind.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct KindCount {
    /// The kind.
    pub kind: IocKind,
    /// How many are in the index.
    pub live: usize,
}

/// `POST /api/v1/intel/feeds`: defines (or redefines) a feed.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FeedRequest {
    /// Unique name, one word.
    #[schemars(regex(pattern = rampart_core::names::NAME_PATTERN))]
    pub name: String,
    /// Parser (see docs/intel.md).
    #[schemars(extend("enum" = ["urlhaus-csv", "urlhaus-json", "threatfox-csv", "threatfox-json", "feodo-csv", "feodo-json", "malwarebazaar-csv", "sslbl-csv", "kev-json", "kev-csv", "otx-json", "phishtank-csv", "phishtank-json", "openphish", "spamhaus-drop", "plain", "csv", "misp-event", "stix"]))]
    pub format: String,
    /// Where to fetch it: http:// or https://, a host name or IPv4 address, an optional port
    /// (none: uploads only).
    #[serde(default)]
    #[schemars(regex(pattern = rampart_intel::feeds::FEED_URL_PATTERN))]
    pub url: Option<String>,
    /// Fetch interval, seconds (at least 60; default 3600).
    #[serde(default = "default_interval")]
    #[schemars(range(min = 60))]
    pub interval_secs: i64,
    /// Source reliability, 0–100 (default 50).
    #[serde(default = "default_reliability")]
    #[schemars(range(min = 0, max = 100))]
    pub reliability: i64,
    /// TLP 2.0 marking (default `clear`).
    #[serde(default = "default_tlp")]
    #[schemars(extend("enum" = ["clear", "green", "amber", "amber+strict", "red"]))]
    pub tlp: String,
    /// Licence or terms of use.
    #[serde(default)]
    pub terms: Option<String>,
    /// How long one delivery keeps an indicator alive, seconds (default 30 days).
    #[serde(default = "default_feed_ttl")]
    #[schemars(range(min = 1))]
    pub ttl_secs: i64,
}

/// Feeds, as stored with their health.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FeedList {
    /// Each feed: definition, validators, last attempt/success/error, counts.
    pub feeds: Vec<IntelFeed>,
}

/// `POST /api/v1/intel/sightings`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SightingRequest {
    /// The indicator's value (any form; canonicalised).
    pub value: String,
    /// A false alarm rather than a confirmed hit.
    #[serde(default)]
    pub false_positive: bool,
    /// Who saw it (default `api`).
    #[serde(default)]
    pub source: Option<String>,
    /// Free text.
    #[serde(default)]
    pub note: Option<String>,
}

/// Fleet matches, most recent first.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct HitList {
    /// Each: agent id and host name, the indicator (`indicator_kind`, `indicator`), how it
    /// matched, the observable (`observable_kind`: connection, listener or resolver), where the
    /// agent saw it (`context`), first and last time, the last run, how many runs reported it,
    /// and the feeds that list the indicator.
    pub hits: Vec<IntelHit>,
}

fn default_interval() -> i64 {
    3600
}

fn default_reliability() -> i64 {
    50
}

fn default_tlp() -> String {
    "clear".into()
}

fn default_feed_ttl() -> i64 {
    30 * 86_400
}

/// A page of audit-log search results, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AuditPage {
    /// The entries.
    pub entries: Vec<rampart_audit::Entry>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<u64>,
}

/// One audit entry with the exact text its leaf hash is computed from.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AuditEntryDetail {
    /// The entry.
    pub entry: rampart_audit::Entry,
    /// The leaf: the stored text, byte for byte (SHA-256 of 0x00 ‖ this is the leaf hash).
    pub leaf: String,
}

/// A signed checkpoint of the audit log.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AuditCheckpoint {
    /// Entries it covers.
    pub size: u64,
    /// When it was signed.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub created_at: time::OffsetDateTime,
    /// The C2SP signed note (origin, size, base64 root, timestamp; then the signature line).
    pub note: String,
}

/// The audit log's verifier key, what auditors pin.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AuditKey {
    /// The log's origin (first line of every checkpoint, and the key's name).
    pub origin: String,
    /// The C2SP verifier key: `NAME+KEYID+BASE64(0x01 ‖ Ed25519 public key)`.
    pub vkey: String,
    /// Entries in the log now.
    pub size: u64,
}

/// RFC 9162 inclusion proof of one entry in the tree of `size` entries.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AuditInclusionProof {
    /// The entry's index.
    pub index: u64,
    /// The tree's size (a checkpoint's).
    pub size: u64,
    /// The audit path, leaf to root, each hash base64.
    pub path: Vec<String>,
}

/// RFC 9162 consistency proof between two tree sizes.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AuditConsistencyProof {
    /// The older size.
    pub from: u64,
    /// The newer size.
    pub to: u64,
    /// The proof's hashes, each base64.
    pub path: Vec<String>,
}

/// `POST /api/v1/oidc/token`: what the command line trades for an API token after an OIDC
/// login in the browser.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcTokenRequest {
    /// The one-time code the server sent to the CLI's loopback port.
    #[schemars(length(min = 1, max = 128))]
    pub code: String,
    /// The verifier whose S256 the CLI sent when it started the login.
    #[schemars(length(min = 43, max = 128))]
    pub verifier: String,
    /// The token's name (default `cli`; a live token of that name is replaced).
    #[serde(default)]
    pub token_name: Option<String>,
    /// Days the token lasts (1–365, default 90).
    #[serde(default)]
    #[schemars(range(min = 1, max = 365))]
    pub ttl_days: Option<u16>,
}

/// An attestation as listed: what it says at a glance and whether a later run replaced it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AttestationSummary {
    /// Its id (`jti`).
    pub jti: String,
    /// The run it attests.
    pub run_id: String,
    /// The agent.
    pub agent_id: String,
    /// The policy.
    pub policy_id: String,
    /// The signing key.
    pub kid: String,
    /// `compliant`, `noncompliant` or `partial`.
    pub status: String,
    /// The score.
    pub score: f64,
    /// When the run started.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub started_at: time::OffsetDateTime,
    /// When it was issued.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub issued_at: time::OffsetDateTime,
    /// When it expires.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub expires_at: time::OffsetDateTime,
    /// The audit entry that recorded the issue.
    pub log_index: u64,
    /// A later run of the same agent and policy has an attestation: this one no longer
    /// describes the host.
    pub stale: bool,
}

impl From<&rampart_store::StoredAttestation> for AttestationSummary {
    fn from(a: &rampart_store::StoredAttestation) -> AttestationSummary {
        AttestationSummary {
            jti: a.jti.clone(),
            run_id: a.run_id.clone(),
            agent_id: a.agent_id.clone(),
            policy_id: a.policy_id.clone(),
            kid: a.kid.clone(),
            status: a.status.clone(),
            score: a.score,
            started_at: a.started_at,
            issued_at: a.issued_at,
            expires_at: a.expires_at,
            log_index: a.log_index,
            stale: a.stale,
        }
    }
}

/// One attestation: the signed JWS and its claims decoded.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AttestationDetail {
    /// At a glance.
    #[serde(flatten)]
    pub summary: AttestationSummary,
    /// The JWS algorithm.
    pub alg: rampart_attest::Alg,
    /// The compact JWS, as signed.
    pub jws: String,
    /// Its claims (read from the JWS; verify the JWS, not this).
    pub claims: rampart_attest::Claims,
}

/// A public key of the JWKS (RFC 7517), members by key type.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
pub struct PublicJwk {
    /// `OKP`, `EC` or `RSA`.
    pub kty: String,
    /// The key id: its RFC 7638 thumbprint.
    pub kid: String,
    /// `EdDSA`, `ES256` or `RS256`.
    pub alg: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub key_use: String,
    /// The curve (`Ed25519`, `P-256`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// The public point's x (OKP, EC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// The public point's y (EC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// The modulus (RSA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// The exponent (RSA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

/// The attestation keys' JWKS: the next key (published before it signs), the current one and
/// those retired within the longest attestation lifetime.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<PublicJwk>,
}

/// An attestation signing key and its life.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AttestationKeyInfo {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// Algorithm.
    pub alg: rampart_attest::Alg,
    /// `next`, `current` or `retired`.
    pub state: String,
    /// Published.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub created_at: time::OffsetDateTime,
    /// Began signing.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<rampart_core::timestamp::Rfc3339>")]
    pub activated_at: Option<time::OffsetDateTime>,
    /// Stopped signing.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<rampart_core::timestamp::Rfc3339>")]
    pub retired_at: Option<time::OffsetDateTime>,
    /// Whether the JWKS lists it now.
    pub published: bool,
}

/// What a key rotation changed.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct KeyRotation {
    /// The key that stopped signing.
    pub retired: Option<String>,
    /// The key signing from now on.
    pub current: String,
    /// The key published for the next rotation.
    pub next: String,
}

/// `POST /api/v1/waivers`: a request for a waiver, to be decided by someone else.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaiverRequest {
    /// A check id or glob, optionally after a policy id and a colon (`cis_debian12:3301*`).
    #[schemars(length(min = 1, max = 256))]
    pub check: String,
    /// Who it covers: `{"kind":"agent","name":ID}`, `{"kind":"group","name":G}` or
    /// `{"kind":"fleet"}`.
    pub scope: rampart_store::WaiverScope,
    /// Its last valid day (UTC), `YYYY-MM-DD`: today at the earliest, a year ahead at most.
    #[schemars(length(min = 10, max = 10), extend("format" = "date"))]
    pub until: String,
    /// Why the risk is accepted.
    #[schemars(length(min = 1, max = 2000))]
    pub justification: String,
}

/// `POST /api/v1/waivers/{id}/approve|deny`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaiverDecision {
    /// What the decider has to say (kept with the waiver and in the audit log).
    #[serde(default)]
    #[schemars(length(max = 2000))]
    pub note: Option<String>,
}

// ---- Event destinations (docs/events.md) ----

/// A collector's `host:port`: a host name or an IPv4 address, and a port.
pub const ADDRESS_PATTERN: &str = concat!(
    "^(([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?",
    "|((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))",
    ":(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})$",
);

/// What a destination is and how to reach it. Stored as the destination's config (JSON), with
/// its credential (a Splunk HEC token) sealed beside it, never in these fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Sink {
    /// An HTTPS (or HTTP) endpoint receiving one event per POST, signed with HMAC-SHA256.
    Webhook {
        /// Where to POST: http:// or https://, a host name or IPv4 address, an optional port
        /// and path; no credentials (the signature authenticates Rampart).
        #[schemars(length(min = 1, max = 2048), regex(pattern = rampart_intel::feeds::FEED_URL_PATTERN))]
        url: String,
        /// Seconds to wait for an answer (1–60, default 10).
        #[serde(default = "default_timeout")]
        #[schemars(range(min = 1, max = 60))]
        timeout_secs: u32,
        /// Which signing secret: raised by a rotation.
        #[serde(default)]
        secret_generation: u32,
    },
    /// A syslog collector (a SIEM's, rsyslog, syslog-ng): RFC 5424 messages carrying the
    /// event as CEF or JSON.
    Syslog {
        /// The collector's `host:port`.
        #[schemars(length(min = 3, max = 261), regex(pattern = ADDRESS_PATTERN))]
        address: String,
        /// `udp` (RFC 5426, one message per datagram), `tcp` (RFC 6587, octet counting) or
        /// `tls` (RFC 5425).
        transport: SyslogTransport,
        /// What follows the header: `json` (the event document, default) or `cef`.
        #[serde(default)]
        payload: rampart_events::wire::Payload,
        /// The facility (default `local0`).
        #[serde(default)]
        facility: rampart_events::wire::Facility,
        /// For `tls`: PEM certificates of the authority that issued the collector's
        /// certificate, trusted instead of the system's roots (a private PKI).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 65536))]
        ca_pem: Option<String>,
        /// The HOSTNAME field (default: the server's first name).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 255), regex(pattern = "^[!-~]+$"))]
        hostname: Option<String>,
        /// Seconds to connect and write a batch (1–60, default 10).
        #[serde(default = "default_timeout")]
        #[schemars(range(min = 1, max = 60))]
        timeout_secs: u32,
    },
    /// A Splunk HTTP Event Collector. Its token is the destination's `credential`.
    SplunkHec {
        /// The collector's base URL (`https://splunk.example:8088`); events are posted to
        /// `/services/collector/event` under it.
        #[schemars(length(min = 1, max = 2048), regex(pattern = rampart_intel::feeds::FEED_URL_PATTERN))]
        url: String,
        /// The index (default: the token's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 80), regex(pattern = "^[a-z0-9][a-z0-9_-]*$"))]
        index: Option<String>,
        /// PEM certificates of the authority that issued the collector's certificate, trusted
        /// besides the system's roots.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 65536))]
        ca_pem: Option<String>,
        /// Seconds to wait for an answer (1–60, default 10).
        #[serde(default = "default_timeout")]
        #[schemars(range(min = 1, max = 60))]
        timeout_secs: u32,
    },
    /// A Kafka topic: one record per event, keyed by the agent id, produced with `acks=all`.
    Kafka {
        /// Bootstrap brokers, `host:port` each (1–16).
        #[schemars(length(min = 1, max = 16), inner(regex(pattern = ADDRESS_PATTERN)))]
        brokers: Vec<String>,
        /// The topic (it must exist: Rampart does not create topics).
        #[schemars(regex(pattern = "^[A-Za-z0-9._-]{1,249}$"))]
        topic: String,
        /// Seconds to connect and have a batch acknowledged (1–60, default 10).
        #[serde(default = "default_timeout")]
        #[schemars(range(min = 1, max = 60))]
        timeout_secs: u32,
    },
    /// A Slack incoming webhook: each event one message (Block Kit) with a button to the
    /// dashboard. The webhook's URL is the secret: it is the destination's `credential`.
    Slack {
        /// Seconds to wait for Slack's answer (1–60, default 10).
        #[serde(default = "default_timeout")]
        #[schemars(range(min = 1, max = 60))]
        timeout_secs: u32,
    },
    /// A Discord channel webhook: each event one embed linked to the dashboard, mentions
    /// switched off. The webhook's URL is the destination's `credential`.
    Discord {
        /// Seconds to wait for Discord's answer (1–60, default 10).
        #[serde(default = "default_timeout")]
        #[schemars(range(min = 1, max = 60))]
        timeout_secs: u32,
    },
    /// E-mail through an SMTP server, always encrypted: STARTTLS on a submission port (587)
    /// or TLS from the first byte (465). With `username`, the password is the destination's
    /// `credential`.
    Email {
        /// The SMTP server's `host:port`.
        #[schemars(length(min = 3, max = 261), regex(pattern = ADDRESS_PATTERN))]
        server: String,
        /// `starttls` (default) or `tls`.
        #[serde(default)]
        tls: SmtpTls,
        /// The sender (`alerts@example.org` or `Rampart <alerts@example.org>`).
        #[schemars(length(min = 3, max = 320))]
        from: String,
        /// The recipients (1–20 addresses).
        #[schemars(length(min = 1, max = 20), inner(length(min = 3, max = 320)))]
        to: Vec<String>,
        /// The SMTP user to authenticate as (PLAIN or LOGIN, only over TLS).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 256))]
        username: Option<String>,
        /// PEM certificates of the authority that issued the server's certificate, trusted
        /// instead of the public roots (a private PKI).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(length(min = 1, max = 65536))]
        ca_pem: Option<String>,
        /// Seconds to connect and hand over a message (1–60, default 10).
        #[serde(default = "default_timeout")]
        #[schemars(range(min = 1, max = 60))]
        timeout_secs: u32,
    },
}

/// How the SMTP connection is encrypted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS before anything else is said; a server that
    /// does not offer it is refused.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS).
    Tls,
}

/// How syslog messages travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyslogTransport {
    /// One datagram per message.
    Udp,
    /// Octet-counted messages on a TCP connection.
    Tcp,
    /// Octet-counted messages in TLS.
    Tls,
}

fn default_timeout() -> u32 {
    10
}

impl Sink {
    /// The kind's name, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Sink::Webhook { .. } => "webhook",
            Sink::Syslog { .. } => "syslog",
            Sink::SplunkHec { .. } => "splunk_hec",
            Sink::Kafka { .. } => "kafka",
            Sink::Slack { .. } => "slack",
            Sink::Discord { .. } => "discord",
            Sink::Email { .. } => "email",
        }
    }

    /// Whether the kind needs a credential: the HEC token, a chat webhook's URL, the SMTP
    /// password of a destination with a user name.
    pub fn needs_credential(&self) -> bool {
        match self {
            Sink::SplunkHec { .. } | Sink::Slack { .. } | Sink::Discord { .. } => true,
            Sink::Email { username, .. } => username.is_some(),
            Sink::Webhook { .. } | Sink::Syslog { .. } | Sink::Kafka { .. } => false,
        }
    }

    /// Whether it is where people read (chat, e-mail) rather than a machine: such
    /// destinations take the alerts of the rules that name them, and other events only
    /// when their filter lists kinds.
    pub fn is_for_people(&self) -> bool {
        matches!(
            self,
            Sink::Slack { .. } | Sink::Discord { .. } | Sink::Email { .. }
        )
    }
}

/// Which events a destination takes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventFilter {
    /// Only these kinds (`run.stored`, `check.changed`, `audit`, …); all when empty.
    #[serde(default)]
    #[schemars(length(max = 16), extend("items" = {"enum": ["run.stored", "check.changed", "agent.enrolled", "agent.revoked", "agent.offline", "waiver.changed", "attestation.issued", "intel.hit", "audit", "alert"]}))]
    pub kinds: Vec<String>,
    /// Only events at least this severe (default: all).
    #[serde(default)]
    pub min_severity: Option<Severity>,
    /// Only events about agents of these groups (events about no agent always pass); all when
    /// empty.
    #[serde(default)]
    #[schemars(length(max = 256), inner(regex(pattern = rampart_core::names::NAME_PATTERN)))]
    pub groups: Vec<String>,
}

impl EventFilter {
    /// Whether the destination takes `e`.
    pub fn takes(&self, e: &rampart_events::Event) -> bool {
        let kind = e.body.kind();
        (self.kinds.is_empty() || self.kinds.iter().any(|k| k == kind))
            && self
                .min_severity
                .is_none_or(|min| crate::events::rank(e.severity) >= crate::events::rank(min))
            && (self.groups.is_empty()
                || e.group().is_none_or(|g| self.groups.iter().any(|x| x == g)))
    }

    /// Checks what an operator wrote.
    pub fn check(&self) -> Result<(), String> {
        for k in &self.kinds {
            if !rampart_events::Body::KINDS.contains(&k.as_str()) {
                return Err(format!(
                    "filter.kinds: unknown kind {k:?} (one of {})",
                    rampart_events::Body::KINDS.join(", ")
                ));
            }
        }
        for g in &self.groups {
            rampart_core::names::check_name("filter.groups", g)?;
        }
        Ok(())
    }
}

/// `PUT /api/v1/event-destinations/{name}`: define a destination or change it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationRequest {
    /// Where and how events are sent.
    pub sink: Sink,
    /// Which events it takes (default: all).
    #[serde(default)]
    pub filter: EventFilter,
    /// Whether events are queued for it (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Attempts before a delivery becomes a dead letter (1–100, default 10: about 17 minutes
    /// of backoff).
    #[serde(default = "default_attempts")]
    #[schemars(range(min = 1, max = 100))]
    pub max_attempts: u32,
    /// Give a webhook a new signing secret (the old one stops at once).
    #[serde(default)]
    pub rotate_secret: bool,
    /// The sink's credential: a Splunk HEC token (required when a `splunk_hec` destination is
    /// created; the stored one is kept when absent). Write-only: stored sealed with the
    /// server's passphrase, never shown again.
    #[serde(default)]
    #[schemars(length(min = 1, max = 1024))]
    pub credential: Option<String>,
}

fn yes() -> bool {
    true
}

fn default_attempts() -> u32 {
    10
}

/// A destination with its health and queue.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DestinationView {
    /// Its name.
    pub name: String,
    /// Where and how events are sent.
    pub sink: Sink,
    /// Which events it takes.
    pub filter: EventFilter,
    /// Whether events are queued for it.
    pub enabled: bool,
    /// Attempts before a dead letter.
    pub max_attempts: u32,
    /// Whether a credential (the HEC token) is stored.
    pub credential_set: bool,
    /// When it was defined and last changed (RFC 3339).
    pub created_at: String,
    /// See `created_at`.
    pub updated_at: String,
    /// Deliveries acknowledged (or not taken by the filter), and failed attempts, ever.
    pub delivered: u64,
    /// See `delivered`.
    pub failed: u64,
    /// The last acknowledgement and failure.
    pub last_success: Option<String>,
    /// See `last_success`.
    pub last_failure: Option<String>,
    /// Why the last attempt failed (cleared by a success).
    pub last_error: Option<String>,
    /// Failed attempts since the last success.
    pub consecutive_failures: u64,
    /// Deliveries waiting, and dead letters.
    pub pending: u64,
    /// See `pending`.
    pub dead_letters: u64,
    /// When the oldest waiting event happened.
    pub oldest_pending: Option<String>,
}

/// What a `PUT` of a destination answers.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DestinationSaved {
    /// The destination as stored.
    pub destination: DestinationView,
    /// A webhook's signing secret, shown when the destination is created or its secret
    /// rotated (the server derives it again when it signs; it is stored nowhere).
    pub secret: Option<String>,
}

/// A delivery out of attempts.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DeadLetterView {
    /// The event's position.
    pub seq: i64,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// The event.
    pub event: rampart_events::Event,
}

/// Which dead letters to retry or drop.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterSelection {
    /// Their positions; every dead letter of the destination when absent.
    #[serde(default)]
    #[schemars(length(max = 10000))]
    pub seqs: Option<Vec<i64>>,
}

/// How many dead letters were retried or dropped.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DeadLettersResolved {
    /// How many.
    pub count: u64,
}

// ---- Alert rules (docs/alerts.md) ----

/// An alert rule with what fires now.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AlertRuleView {
    /// Its name.
    pub name: String,
    /// Its definition.
    pub rule: rampart_alerts::RuleDef,
    /// Destinations it names that do not exist (its alerts reach no one there).
    pub missing_destinations: Vec<String>,
    /// When it was created and last changed (RFC 3339).
    pub created_at: String,
    /// See `created_at`.
    pub updated_at: String,
    /// How many of its subjects fire now.
    pub firing: u64,
    /// Those subjects, most recently changed first (at most 100).
    pub firing_subjects: Vec<FiringSubject>,
}

/// A subject of a rule that fires.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FiringSubject {
    /// Its key within the rule (a group and policy, a check, an agent, …).
    pub subject: String,
    /// Since when (RFC 3339).
    pub since: String,
    /// The value measured when it last changed (a score, hosts, minutes offline).
    pub value: Option<f64>,
    /// The agent, group, policy and check it concerns, when it concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// See `agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// See `agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// See `agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
}
