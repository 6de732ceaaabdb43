//! The whole HTTP surface in one table: every endpoint's method, path, port, authentication,
//! request and response types and handler. The routers and the OpenAPI document are both built
//! from [`endpoints`], so the document cannot drift from what is served.

mod admin;
mod agent;
mod alerts;
mod attest;
mod audit;
mod auth;
pub(crate) mod auth_limit;
mod authorize;
mod body;
mod event_stream;
mod events;
mod headers;
mod history;
mod intel;
pub(crate) mod login;
mod metrics;
mod observe;
mod oidc;
pub mod openapi;
mod problem;
mod public;
pub mod rate_limit;
mod report;
mod taxii;
mod users;
mod waivers;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post, put};
use rampart_core::fleet::{
    EnrolRequest, EnrolResponse, Heartbeat, HeartbeatResponse, RenewRequest, RenewResponse,
    RunReceipt, RunSubmission,
};
use schemars::{JsonSchema, Schema, SchemaGenerator};

use crate::app::App;
use crate::error::ApiError;
pub(crate) use admin::rfc3339;
pub(crate) use authorize::On;
pub(crate) use authorize::{Caller, authenticate};
pub(crate) use history::diff_runs;
pub(crate) use intel::lookup_value;
pub(crate) use login::CONCURRENT_CHECKS as CONCURRENT_PASSWORD_CHECKS;
pub(crate) use oidc::{LOGIN_SECS as OIDC_LOGIN_SECS, dashboard_cookie, start as oidc_start};
use rampart_access::Permission;

pub(crate) type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// Which listener serves an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Port {
    Api,
    Agent,
}

/// Who may call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// Anyone (the enrolment token is checked by the handler).
    Public,
    /// A user's credential whose grant holds this permission for what the request acts on,
    /// enforced by the `authorize` layer before the handler runs.
    User(Permission, On),
    /// An agent's client certificate (mTLS).
    AgentCert,
}

/// [`Auth::User`], short for the table.
const fn user(permission: Permission, on: On) -> Auth {
    Auth::User(permission, on)
}

/// What a request carries.
#[derive(Clone, Copy)]
pub(crate) enum Body {
    /// Nothing.
    None,
    /// JSON of this schema.
    Json(SchemaFn),
    /// JSON of this schema, sent gzip-compressed (`Content-Encoding: gzip`).
    GzipJson(SchemaFn),
    /// A file, as it is (plain, gzip or zip).
    File,
}

/// What a successful response carries.
#[derive(Clone, Copy)]
pub(crate) enum Reply {
    /// 200 with JSON of this schema.
    Json(SchemaFn),
    /// 201 with JSON of this schema: something was created.
    Created(SchemaFn),
    /// 201 with JSON of this schema when something was created, 200 when it already existed.
    Upserted(SchemaFn),
    /// 200 with a document of one of these media types.
    Document(&'static [&'static str]),
    /// A TAXII 2.1 resource of this schema (`application/taxii+json;version=2.1`).
    Taxii(SchemaFn),
    /// 303 to another site (`Location`).
    Redirect,
}

pub(crate) struct Endpoint {
    pub method: Method,
    pub path: &'static str,
    pub summary: &'static str,
    /// The query parameters, as the root schema of the handler's `Query` type.
    pub query: Option<SchemaFn>,
    pub port: Port,
    pub auth: Auth,
    pub request: Body,
    pub reply: Reply,
    pub route: fn() -> MethodRouter<Arc<App>>,
}

/// A free-text query parameter (a name to filter by): 1 to 256 bytes when given, so that no
/// client makes the database compare against megabytes.
pub(crate) fn text_param(name: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.is_empty() || v.len() > 256 => Err(ApiError::bad_request(
            "invalid_query",
            format!("{name}: 1 to 256 characters"),
        )),
        other => Ok(other),
    }
}

fn query_schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.root_schema_for::<T>()
}

macro_rules! ep {
    ($m:ident $path:literal, $port:ident, $auth:expr, $summary:literal, query: $q:ty, req: $req:expr, reply: $reply:expr, $route:expr) => {
        Endpoint {
            query: Some(query_schema::<$q>),
            ..ep!($m $path, $port, $auth, $summary, req: $req, reply: $reply, $route)
        }
    };
    ($m:ident $path:literal, $port:ident, $auth:expr, $summary:literal, req: $req:expr, reply: $reply:expr, $route:expr) => {
        Endpoint {
            method: Method::$m,
            path: $path,
            summary: $summary,
            query: None,
            port: Port::$port,
            auth: $auth,
            request: $req,
            reply: $reply,
            route: $route,
        }
    };
}

/// Every endpoint Rampart serves.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    use Body::Json as JsonBody;
    use On::*;
    use Permission::*;
    use Reply::*;
    vec![
        ep!(GET "/api/v1/health", Api, Auth::Public, "Liveness and the storage backend in use",
            req: Body::None, reply: Json(schema::<public::Health>), || get(public::health)),
        ep!(GET "/api/v1/openapi.json", Api, Auth::Public, "This document",
            req: Body::None, reply: Document(&["application/json"]), || get(public::openapi)),
        ep!(GET "/api/v1/ca/root.pem", Api, Auth::Public, "The root CA certificate (agents pin it by the SHA-256 in their enrolment token)",
            req: Body::None, reply: Document(&["application/x-pem-file"]), || get(public::root_pem)),
        ep!(GET "/api/v1/ca/crl.der", Api, Auth::Public, "Current certificate revocation list, signed by the intermediate",
            req: Body::None, reply: Document(&["application/pkix-crl"]), || get(public::crl)),
        ep!(POST "/api/v1/enrol", Api, Auth::Public, "Enrol an agent: one-time token + CSR in, 24 h client certificate out",
            req: JsonBody(schema::<EnrolRequest>), reply: Json(schema::<EnrolResponse>), || post(public::enrol)),
        ep!(POST "/api/v1/login", Api, Auth::Public, "Log in with a password: an API token out (replacing the user's live token of the same name); a one-time password must be changed here (new_password)",
            req: JsonBody(schema::<crate::api::LoginRequest>), reply: Created(schema::<crate::api::IssuedToken>), || post(login::login)),
        ep!(POST "/api/v1/session", Api, Auth::Public, "Log a browser in with a password: an HttpOnly, Secure, SameSite=Strict session cookie and the CSRF token to echo in X-CSRF-Token on every change",
            req: JsonBody(schema::<crate::api::SessionRequest>), reply: Created(schema::<crate::api::SessionStarted>), || post(login::start_session)),
        ep!(GET "/api/v1/oidc/login", Api, Auth::Public, "Log a browser in through the OpenID provider: 303 to its authorization endpoint (code flow with PKCE), with a state cookie; with cli_port and cli_challenge, for `rampart login --oidc`",
            query: oidc::LoginQuery, req: Body::None, reply: Redirect, || get(oidc::login)),
        ep!(GET "/api/v1/oidc/callback", Api, Auth::Public, "Where the OpenID provider sends the browser back: the ID token validated, the account's role mapped, a session cookie as for a password login",
            query: oidc::CallbackQuery, req: Body::None, reply: Json(schema::<crate::api::SessionStarted>), || get(oidc::callback)),
        ep!(POST "/api/v1/oidc/token", Api, Auth::Public, "The command line's OIDC login: its one-time code (sent to its loopback port by the callback) and verifier for an API token",
            req: JsonBody(schema::<crate::api::OidcTokenRequest>), reply: Created(schema::<crate::api::IssuedToken>), || post(oidc::token)),
        ep!(DELETE "/api/v1/session", Api, user(SelfService, Fleet), "Log this browser session out",
            req: Body::None, reply: Json(schema::<crate::api::Done>), || delete(login::end_session)),
        ep!(POST "/api/v1/me/logout-everywhere", Api, user(SelfService, Fleet), "End every browser session of the caller (API tokens stay)",
            req: Body::None, reply: Json(schema::<crate::api::Done>), || post(login::logout_everywhere)),
        ep!(GET "/api/v1/me", Api, user(SelfService, Fleet), "The caller: user, token, permissions and group limit",
            req: Body::None, reply: Json(schema::<crate::api::Me>), || get(login::me)),
        ep!(POST "/api/v1/me/password", Api, user(SelfService, Fleet), "Change one's own password (the current one is needed)",
            req: JsonBody(schema::<crate::api::PasswordChange>), reply: Json(schema::<crate::api::Done>), || post(login::change_password)),
        ep!(GET "/api/v1/me/tokens", Api, user(SelfService, Fleet), "One's own API tokens, newest first (never the tokens themselves)",
            req: Body::None, reply: Json(schema::<Vec<rampart_store::ApiToken>>), || get(users::my_tokens)),
        ep!(POST "/api/v1/me/tokens", Api, user(SelfService, Fleet), "Create an API token of one's own (shown once; role and groups at most one's own)",
            req: JsonBody(schema::<crate::api::NewTokenRequest>), reply: Created(schema::<crate::api::IssuedToken>), || post(users::create_my_token)),
        ep!(DELETE "/api/v1/me/tokens/{name}", Api, user(SelfService, Fleet), "Revoke one of one's own API tokens",
            req: Body::None, reply: Json(schema::<rampart_store::ApiToken>), || delete(users::revoke_my_token)),
        ep!(GET "/api/v1/users", Api, user(UsersRead, Fleet), "Every user",
            req: Body::None, reply: Json(schema::<Vec<rampart_store::User>>), || get(users::list)),
        ep!(POST "/api/v1/users", Api, user(UsersManage, Fleet), "Create a user with a one-time password (shown once; to be changed at the first login)",
            req: JsonBody(schema::<crate::api::NewUserRequest>), reply: Created(schema::<crate::api::UserWithPassword>), || post(users::create)),
        ep!(GET "/api/v1/users/{name}", Api, user(UsersRead, Fleet), "One user",
            req: Body::None, reply: Json(schema::<rampart_store::User>), || get(users::show)),
        ep!(PUT "/api/v1/users/{name}/role", Api, user(UsersManage, Fleet), "Change a user's role and group limit (the last enabled admin stays an admin)",
            req: JsonBody(schema::<crate::api::RoleRequest>), reply: Json(schema::<rampart_store::User>), || put(users::set_role)),
        ep!(POST "/api/v1/users/{name}/disable", Api, user(UsersManage, Fleet), "Disable a user: their tokens stop working, their sessions end (not the last enabled admin)",
            req: Body::None, reply: Json(schema::<rampart_store::User>), || post(users::disable)),
        ep!(POST "/api/v1/users/{name}/enable", Api, user(UsersManage, Fleet), "Enable a disabled user",
            req: Body::None, reply: Json(schema::<rampart_store::User>), || post(users::enable)),
        ep!(POST "/api/v1/users/{name}/reset-password", Api, user(UsersManage, Fleet), "Give a user a new one-time password (shown once); their sessions end",
            req: Body::None, reply: Json(schema::<crate::api::UserWithPassword>), || post(users::reset_password)),
        ep!(GET "/api/v1/users/{name}/tokens", Api, user(UsersRead, Fleet), "A user's API tokens, newest first",
            req: Body::None, reply: Json(schema::<Vec<rampart_store::ApiToken>>), || get(users::user_tokens)),
        ep!(DELETE "/api/v1/users/{name}/tokens/{token}", Api, user(UsersManage, Fleet), "Revoke a user's API token",
            req: Body::None, reply: Json(schema::<rampart_store::ApiToken>), || delete(users::revoke_user_token)),
        ep!(POST "/api/v1/tokens", Api, user(EnrolmentManage, Listing), "Create an enrolment token",
            req: JsonBody(schema::<crate::api::TokenRequest>), reply: Created(schema::<crate::api::TokenCreated>), || post(admin::create_token)),
        ep!(GET "/api/v1/tokens", Api, user(EnrolmentRead, Listing), "List enrolment tokens",
            req: Body::None, reply: Json(schema::<Vec<rampart_store::EnrolmentToken>>), || get(admin::list_tokens)),
        ep!(DELETE "/api/v1/tokens/{jti}", Api, user(EnrolmentManage, EnrolmentToken), "Revoke an enrolment token",
            req: Body::None, reply: Json(schema::<crate::api::Done>), || delete(admin::revoke_token)),
        ep!(GET "/api/v1/agents", Api, user(AgentsRead, Listing), "List agents (optionally one group) with online status",
            query: admin::GroupQuery, req: Body::None, reply: Json(schema::<Vec<crate::api::AgentView>>), || get(admin::list_agents)),
        ep!(GET "/api/v1/agents/{id}", Api, user(AgentsRead, Agent), "One agent with its certificates",
            req: Body::None, reply: Json(schema::<crate::api::AgentDetail>), || get(admin::show_agent)),
        ep!(POST "/api/v1/agents/{id}/revoke", Api, user(AgentsManage, Agent), "Revoke an agent and its certificates (effective at the next handshake)",
            req: JsonBody(schema::<crate::api::RevokeRequest>), reply: Json(schema::<crate::api::Revoked>), || post(admin::revoke_agent)),
        ep!(POST "/api/v1/agents/{id}/scan", Api, user(AgentsManage, Agent), "Ask an agent to scan now (delivered with its next heartbeat)",
            req: Body::None, reply: Json(schema::<crate::api::Done>), || post(admin::scan_now)),
        ep!(POST "/api/v1/policies", Api, user(PoliciesManage, Fleet), "Upload a policy (Rampart YAML or Wazuh SCA); validated, stored as a new immutable version",
            req: JsonBody(schema::<crate::api::PolicyUpload>), reply: Upserted(schema::<crate::api::PolicyUploaded>), || post(admin::upload_policy)),
        ep!(GET "/api/v1/policies", Api, user(PoliciesRead, Fleet), "List policies with their newest version",
            req: Body::None, reply: Json(schema::<Vec<rampart_store::PolicySummary>>), || get(admin::list_policies)),
        ep!(GET "/api/v1/policies/{id}/versions", Api, user(PoliciesRead, Fleet), "Every version of a policy",
            req: Body::None, reply: Json(schema::<Vec<rampart_store::PolicyVersion>>), || get(admin::policy_versions)),
        ep!(GET "/api/v1/policies/{id}/versions/{version}", Api, user(PoliciesRead, Fleet), "One version's content, as uploaded",
            req: Body::None, reply: Document(&["application/yaml"]), || get(admin::policy_content)),
        ep!(PUT "/api/v1/policies/{id}/assignments", Api, user(PoliciesManage, Listing), "Assign a version to a group or agent with a cron schedule (replaces that target's assignment)",
            req: JsonBody(schema::<crate::api::AssignRequest>), reply: Json(schema::<rampart_store::Assignment>), || put(admin::assign)),
        ep!(DELETE "/api/v1/policies/{id}/assignments/{kind}/{name}", Api, user(PoliciesManage, Assignment), "Remove an assignment",
            req: Body::None, reply: Json(schema::<crate::api::Done>), || delete(admin::unassign)),
        ep!(GET "/api/v1/assignments", Api, user(PoliciesRead, Fleet), "Every assignment",
            req: Body::None, reply: Json(schema::<Vec<rampart_store::Assignment>>), || get(admin::list_assignments)),
        ep!(GET "/api/v1/policies/{id}/score", Api, user(ResultsRead, AllGroups), "A policy's fleet-wide score over time",
            query: history::ScoreQuery, req: Body::None, reply: Json(schema::<Vec<rampart_store::ScorePoint>>), || get(history::policy_score)),
        ep!(GET "/api/v1/agents/{id}/runs", Api, user(ResultsRead, Agent), "An agent's runs, newest first",
            query: history::RunsQuery, req: Body::None, reply: Json(schema::<Vec<rampart_store::RunSummary>>), || get(history::agent_runs)),
        ep!(GET "/api/v1/agents/{id}/latest", Api, user(ResultsRead, Agent), "Latest state of every check on an agent, with when it entered that state",
            query: history::PolicyQuery, req: Body::None, reply: Json(schema::<Vec<rampart_store::LatestResult>>), || get(history::latest)),
        ep!(GET "/api/v1/agents/{id}/checks/{policy}/{check}", Api, user(ResultsRead, Agent), "One check's history on an agent, and since when it has its current status",
            query: history::LimitQuery, req: Body::None, reply: Json(schema::<crate::api::CheckHistory>), || get(history::check_history)),
        ep!(GET "/api/v1/runs/{id}", Api, user(ResultsRead, Run), "One run with every check result and its evidence",
            req: Body::None, reply: Json(schema::<rampart_store::RunDetail>), || get(history::run)),
        ep!(GET "/api/v1/results", Api, user(ResultsRead, AllGroups), "Flat check results (run, agent, policy, check, status), newest first; filters: agent, policy, status, limit",
            query: history::FlatQuery, req: Body::None, reply: Json(schema::<Vec<rampart_store::FlatResult>>), || get(history::flat_results)),
        ep!(GET "/.well-known/jwks.json", Api, Auth::Public, "The attestation keys (RFC 7517 JWKS): the next key before it signs, the current one, and retired ones while attestations they signed may still be valid",
            req: Body::None, reply: Json(schema::<crate::api::Jwks>), || get(attest::jwks)),
        ep!(GET "/api/v1/attestation-keys", Api, user(ResultsRead, Fleet), "Every attestation signing key with its state and dates",
            req: Body::None, reply: Json(schema::<Vec<crate::api::AttestationKeyInfo>>), || get(attest::keys)),
        ep!(POST "/api/v1/attestation-keys/rotate", Api, user(KeysManage, Fleet), "Rotate the attestation keys: the next key signs, the current one retires, a new next key is published (409 while the next key is younger than ten minutes, unless force)",
            query: attest::RotateQuery, req: Body::None, reply: Json(schema::<crate::api::KeyRotation>), || post(attest::rotate)),
        ep!(GET "/api/v1/agents/{id}/attestations", Api, user(ResultsRead, Agent), "An agent's signed attestations, the newest run first, each marked stale once a later run replaced it",
            query: attest::AttestationsQuery, req: Body::None, reply: Json(schema::<Vec<crate::api::AttestationSummary>>), || get(attest::list)),
        ep!(GET "/api/v1/agents/{id}/attestations/{jti}", Api, user(ResultsRead, Agent), "One attestation: the JWS and its claims",
            req: Body::None, reply: Json(schema::<crate::api::AttestationDetail>), || get(attest::show)),
        ep!(GET "/api/v1/agents/{id}/attestations/{jti}/bundle", Api, user(ResultsRead, Agent), "An attestation's offline bundle: the JWS, the key set, the audit entry with its inclusion proof and signed checkpoint, and the evidence",
            req: Body::None, reply: Json(schema::<rampart_attest::Bundle>), || get(attest::bundle)),
        ep!(GET "/api/v1/agents/{id}/report", Api, user(ResultsRead, Agent), "The agent's compliance report: a PDF (format=pdf) or OSCAL 1.1 assessment results (format=oscal): the newest run of each policy (or of one), an observation per check with its evidence, a finding per control, waived failures as approved deviations, each run's signed attestation embedded; the same runs always give the same bytes",
            query: report::ReportQuery, req: Body::None, reply: Document(&["application/json", "application/pdf"]), || get(report::report)),
        ep!(GET "/api/v1/report", Api, user(ResultsRead, Listing), "A group's or the fleet's PDF compliance report (format=pdf; group, os, label narrow it) over the groups the caller may see: executive summary with trend and framework scores, control tables, failed checks with remediation, sampled evidence, waivers, attestations",
            query: report::FleetReportQuery, req: Body::None, reply: Document(&["application/pdf"]), || get(report::fleet_report)),
        ep!(POST "/api/v1/waivers", Api, user(WaiversRequest, Fleet), "Ask for a waiver: a check id or glob (POLICY:GLOB), a scope (agent, group or fleet), a last day within a year, a justification; pending until someone else decides",
            req: JsonBody(schema::<crate::api::WaiverRequest>), reply: Created(schema::<rampart_store::StoredWaiver>), || post(waivers::request)),
        ep!(GET "/api/v1/waivers", Api, user(ResultsRead, Fleet), "Waivers, newest request first (state: pending, approved, denied, expired)",
            query: waivers::ListQuery, req: Body::None, reply: Json(schema::<Vec<rampart_store::StoredWaiver>>), || get(waivers::list)),
        ep!(GET "/api/v1/waivers/{id}", Api, user(ResultsRead, Fleet), "One waiver",
            req: Body::None, reply: Json(schema::<rampart_store::StoredWaiver>), || get(waivers::show)),
        ep!(POST "/api/v1/waivers/{id}/approve", Api, user(WaiversDecide, Fleet), "Approve a pending waiver (not one's own request): runs that start from now until its last day are judged with it",
            req: JsonBody(schema::<crate::api::WaiverDecision>), reply: Json(schema::<rampart_store::StoredWaiver>), || post(waivers::approve)),
        ep!(POST "/api/v1/waivers/{id}/deny", Api, user(WaiversDecide, Fleet), "Deny a pending waiver (not one's own request)",
            req: JsonBody(schema::<crate::api::WaiverDecision>), reply: Json(schema::<rampart_store::StoredWaiver>), || post(waivers::deny)),
        ep!(GET "/api/v1/runs/{a}/diff/{b}", Api, user(ResultsRead, Run), "What changed from run a to run b",
            req: Body::None, reply: Json(schema::<crate::api::RunDiff>), || get(history::diff)),
        ep!(GET "/api/v1/intel/lookup", Api, user(IntelRead, Fleet), "Look a value up (query: value, related): every match from the index with its score, allowlisting, ATT&CK names and source rows",
            query: intel::LookupQuery, req: Body::None, reply: Json(schema::<rampart_intel::lookup::LookupAnswer>), || get(intel::lookup)),
        ep!(POST "/api/v1/intel/match", Api, user(IntelRead, Fleet), "Match many observables against the index at once",
            req: JsonBody(schema::<crate::api::MatchRequest>), reply: Json(schema::<crate::api::MatchResponse>), || post(intel::match_observables)),
        ep!(GET "/api/v1/intel/stats", Api, user(IntelRead, Fleet), "Indicator counts per kind, index size and feed health",
            req: Body::None, reply: Json(schema::<crate::api::IntelStats>), || get(intel::stats)),
        ep!(GET "/api/v1/intel/feeds", Api, user(IntelRead, Fleet), "Feeds with their health",
            req: Body::None, reply: Json(schema::<crate::api::FeedList>), || get(intel::list_feeds)),
        ep!(POST "/api/v1/intel/feeds", Api, user(IntelManage, Fleet), "Define or redefine a feed",
            req: JsonBody(schema::<crate::api::FeedRequest>), reply: Created(schema::<rampart_store::IntelFeed>), || post(intel::put_feed)),
        ep!(DELETE "/api/v1/intel/feeds/{name}", Api, user(IntelManage, Fleet), "Remove a feed and its observations",
            req: Body::None, reply: Json(schema::<crate::api::Done>), || delete(intel::delete_feed)),
        ep!(POST "/api/v1/intel/feeds/{name}/sync", Api, user(IntelManage, Fleet), "Fetch a feed now (conditional GET), whatever its schedule",
            req: Body::None, reply: Json(schema::<rampart_feeds::sync::SyncOutcome>), || post(intel::sync_now)),
        ep!(POST "/api/v1/intel/feeds/{name}/upload", Api, user(IntelManage, Fleet), "Ingest a file of this feed sent as the body (plain, gzip or zip)",
            req: Body::File, reply: Json(schema::<rampart_feeds::ingest::IngestReport>), || post(intel::upload)),
        ep!(GET "/api/v1/intel/export", Api, user(IntelRead, Fleet), "Export live indicators (query: format, min_score) as CSV, blocklists, hosts, RPZ, Suricata rules or a STIX bundle",
            query: intel::ExportQuery, req: Body::None, reply: Document(&["text/csv", "text/plain", "application/stix+json;version=2.1"]), || get(intel::export)),
        ep!(POST "/api/v1/intel/sightings", Api, user(IntelManage, Fleet), "Record a confirmed sighting or a false positive of an indicator",
            req: JsonBody(schema::<crate::api::SightingRequest>), reply: Created(schema::<crate::api::Done>), || post(intel::sighting)),
        ep!(GET "/api/v1/intel/hits", Api, user(IntelRead, AllGroups), "Fleet matches: observables agents reported (connections, listeners, /etc/hosts) that matched an indicator (query: agent, since, limit)",
            query: intel::HitsQuery, req: Body::None, reply: Json(schema::<crate::api::HitList>), || get(intel::hits)),
        ep!(GET "/api/v1/audit/entries", Api, user(AuditRead, AllGroups), "Search the audit log, newest first (actor, action or prefix*, target, outcome, since, until; paged with before)",
            query: audit::SearchQuery, req: Body::None, reply: Json(schema::<crate::api::AuditPage>), || get(audit::search)),
        ep!(GET "/api/v1/audit/entries/{index}", Api, user(AuditRead, AllGroups), "One audit entry with the exact text its leaf hash is computed from",
            req: Body::None, reply: Json(schema::<crate::api::AuditEntryDetail>), || get(audit::entry)),
        ep!(GET "/api/v1/audit/export", Api, user(AuditRead, AllGroups), "Every audit entry from `from` on, as JSON lines: each line is a leaf's exact text (X-Audit-Size: the log's size when the export began)",
            query: audit::ExportQuery, req: Body::None, reply: Document(&["application/jsonl"]), || get(audit::export)),
        ep!(GET "/api/v1/audit/checkpoint", Api, user(AuditRead, AllGroups), "The latest signed checkpoint (C2SP signed note), or the one of a given size",
            query: audit::CheckpointQuery, req: Body::None, reply: Json(schema::<crate::api::AuditCheckpoint>), || get(audit::checkpoint)),
        ep!(GET "/api/v1/audit/checkpoints", Api, user(AuditRead, AllGroups), "Signed checkpoints, smallest first (after, limit)",
            query: audit::CheckpointsQuery, req: Body::None, reply: Json(schema::<Vec<crate::api::AuditCheckpoint>>), || get(audit::checkpoints)),
        ep!(GET "/api/v1/audit/key", Api, user(AuditRead, AllGroups), "The audit log's origin and verifier key (pin it), and its size now",
            req: Body::None, reply: Json(schema::<crate::api::AuditKey>), || get(audit::key)),
        ep!(GET "/api/v1/audit/proof/inclusion", Api, user(AuditRead, AllGroups), "RFC 9162 inclusion proof of an entry in a tree size (default: the latest checkpoint's)",
            query: audit::InclusionQuery, req: Body::None, reply: Json(schema::<crate::api::AuditInclusionProof>), || get(audit::inclusion)),
        ep!(GET "/api/v1/audit/proof/consistency", Api, user(AuditRead, AllGroups), "RFC 9162 consistency proof between two tree sizes (to: default the latest checkpoint's)",
            query: audit::ConsistencyQuery, req: Body::None, reply: Json(schema::<crate::api::AuditConsistencyProof>), || get(audit::consistency)),
        ep!(GET "/api/v1/events", Api, user(ResultsRead, Listing), "The event stream live as Server-Sent Events (id: position, event: kind, data: the event): resumes after Last-Event-ID (or ?after=); filtered by kinds, min_severity, groups and by what the caller may read",
            query: event_stream::StreamQuery, req: Body::None, reply: Document(&["text/event-stream"]), || get(event_stream::stream)),
        ep!(GET "/api/v1/event-destinations", Api, user(EventsManage, Fleet), "Event destinations (SIEMs, webhooks) with their health and queue",
            req: Body::None, reply: Json(schema::<Vec<crate::api::DestinationView>>), || get(events::list)),
        ep!(PUT "/api/v1/event-destinations/{destination}", Api, user(EventsManage, Fleet), "Define or change an event destination: its sink, filter, attempts; a webhook's signing secret is shown when it is created or rotated. Events are queued for it from then on",
            req: JsonBody(schema::<crate::api::DestinationRequest>), reply: Upserted(schema::<crate::api::DestinationSaved>), || put(events::put)),
        ep!(DELETE "/api/v1/event-destinations/{destination}", Api, user(EventsManage, Fleet), "Remove an event destination and its queue, dead letters included",
            req: Body::None, reply: Json(schema::<crate::api::Done>), || delete(events::delete)),
        ep!(GET "/api/v1/event-destinations/{destination}/dead-letters", Api, user(EventsManage, Fleet), "A destination's dead letters (deliveries out of attempts), oldest first",
            query: events::DeadLettersQuery, req: Body::None, reply: Json(schema::<Vec<crate::api::DeadLetterView>>), || get(events::dead_letters)),
        ep!(POST "/api/v1/event-destinations/{destination}/dead-letters/retry", Api, user(EventsManage, Fleet), "Queue dead letters again with fresh attempts (all, or those listed)",
            req: JsonBody(schema::<crate::api::DeadLetterSelection>), reply: Json(schema::<crate::api::DeadLettersResolved>), || post(events::retry)),
        ep!(POST "/api/v1/event-destinations/{destination}/dead-letters/drop", Api, user(EventsManage, Fleet), "Drop dead letters (all, or those listed)",
            req: JsonBody(schema::<crate::api::DeadLetterSelection>), reply: Json(schema::<crate::api::DeadLettersResolved>), || post(events::drop_letters)),
        ep!(GET "/api/v1/alert-rules", Api, user(EventsManage, Fleet), "Alert rules with the subjects firing now",
            req: Body::None, reply: Json(schema::<Vec<crate::api::AlertRuleView>>), || get(alerts::list)),
        ep!(GET "/api/v1/alert-rules/{rule}", Api, user(EventsManage, Fleet), "One alert rule with the subjects firing now",
            req: Body::None, reply: Json(schema::<crate::api::AlertRuleView>), || get(alerts::get)),
        ep!(PUT "/api/v1/alert-rules/{rule}", Api, user(EventsManage, Fleet), "Define or change an alert rule: its condition (score below, check newly failing on N hosts, agent offline, IOC hit, noncompliant attestation), severity, quiet period and the event destinations it notifies (which must exist); judged from then on",
            req: JsonBody(schema::<rampart_alerts::RuleDef>), reply: Upserted(schema::<crate::api::AlertRuleView>), || put(alerts::put)),
        ep!(DELETE "/api/v1/alert-rules/{rule}", Api, user(EventsManage, Fleet), "Remove an alert rule and what it knew of its subjects",
            req: Body::None, reply: Json(schema::<crate::api::Done>), || delete(alerts::delete)),
        ep!(GET "/metrics", Api, user(MetricsRead, AllGroups), "Prometheus metrics: OpenMetrics when accepted, else the text format 0.0.4 (agents by group and state, scores per policy and group, ingestion, scan durations, heartbeats, HTTP requests by route and status, threat intel, audit-log size, certificate expiry; docs/metrics.md)",
            req: Body::None, reply: Document(&["application/openmetrics-text", "text/plain"]), || get(metrics::metrics)),
        ep!(GET "/taxii2/", Api, user(IntelRead, Fleet), "TAXII 2.1 discovery (admin token as bearer or as the Basic password)",
            req: Body::None, reply: Taxii(schema::<taxii::Discovery>), || get(taxii::discovery)),
        ep!(GET "/taxii2/api/", Api, user(IntelRead, Fleet), "TAXII 2.1 API root",
            req: Body::None, reply: Taxii(schema::<taxii::ApiRoot>), || get(taxii::api_root)),
        ep!(GET "/taxii2/api/collections/", Api, user(IntelRead, Fleet), "TAXII 2.1 collections (one: every live, non-allowlisted indicator)",
            req: Body::None, reply: Taxii(schema::<taxii::Collections>), || get(taxii::collections)),
        ep!(GET "/taxii2/api/collections/{id}/", Api, user(IntelRead, Fleet), "TAXII 2.1 collection",
            req: Body::None, reply: Taxii(schema::<taxii::Collection>), || get(taxii::one_collection)),
        ep!(GET "/taxii2/api/collections/{id}/objects/", Api, user(IntelRead, Fleet), "TAXII 2.1 objects envelope (added_after, limit, next, match[id|type|version|spec_version])",
            query: taxii::ObjectsQuery, req: Body::None, reply: Taxii(schema::<taxii::Envelope>), || get(taxii::objects)),
        ep!(GET "/taxii2/api/collections/{id}/objects/{object_id}/", Api, user(IntelRead, Fleet), "TAXII 2.1 one object",
            query: taxii::ObjectsQuery, req: Body::None, reply: Taxii(schema::<taxii::Envelope>), || get(taxii::object)),
        ep!(GET "/taxii2/api/collections/{id}/objects/{object_id}/versions/", Api, user(IntelRead, Fleet), "TAXII 2.1 versions of one object (the current one)",
            query: taxii::ObjectsQuery, req: Body::None, reply: Taxii(schema::<taxii::Versions>), || get(taxii::versions)),
        ep!(GET "/taxii2/api/collections/{id}/manifest/", Api, user(IntelRead, Fleet), "TAXII 2.1 manifest (ids, date added, versions, media types)",
            query: taxii::ObjectsQuery, req: Body::None, reply: Taxii(schema::<taxii::Manifest>), || get(taxii::manifest)),
        ep!(POST "/agent/v1/heartbeat", Agent, Auth::AgentCert, "Heartbeat: assignments and pending scan-now requests in the answer",
            req: JsonBody(schema::<Heartbeat>), reply: Json(schema::<HeartbeatResponse>), || post(agent::heartbeat)),
        ep!(GET "/agent/v1/policies/{id}/versions/{version}", Agent, Auth::AgentCert, "Fetch an assigned policy version's content",
            req: Body::None, reply: Document(&["application/yaml"]), || get(agent::policy)),
        ep!(POST "/agent/v1/renew", Agent, Auth::AgentCert, "Renew the client certificate (new CSR, same identity)",
            req: JsonBody(schema::<RenewRequest>), reply: Json(schema::<RenewResponse>), || post(agent::renew)),
        ep!(POST "/agent/v1/runs", Agent, Auth::AgentCert, "Post one run's results (gzip JSON); idempotent by run id",
            req: Body::GzipJson(schema::<RunSubmission>), reply: Json(schema::<RunReceipt>), || post(agent::post_run)),
    ]
}

/// The largest body an endpoint takes, sized to what it carries: an anonymous enrolment is a
/// CSR and a token, admin requests are small JSON, a policy is a YAML file, a run's results are
/// compressed, a feed upload is a whole dump (the configured maximum caps them all).
fn body_limit(e: &Endpoint) -> usize {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * KIB;
    if e.method == Method::GET || e.method == Method::DELETE {
        return 64 * KIB;
    }
    match e.path {
        "/api/v1/enrol"
        | "/api/v1/login"
        | "/api/v1/session"
        | "/api/v1/me/password"
        | "/api/v1/oidc/token" => 64 * KIB,
        "/api/v1/policies" => 16 * MIB,
        "/api/v1/intel/feeds/{name}/upload" => usize::MAX,
        "/api/v1/intel/match" => 16 * MIB,
        "/agent/v1/runs" => 64 * MIB,
        _ => MIB,
    }
}

fn router_for(app: Arc<App>, port: Port) -> Router {
    let mut r: Router<Arc<App>> = Router::new();
    for e in endpoints().into_iter().filter(|e| e.port == port) {
        let limit = body_limit(&e).min(app.config.max_body_bytes);
        let mut route =
            (e.route)()
                .layer(DefaultBodyLimit::max(limit))
                .layer(axum::middleware::from_fn(move |req, next| {
                    body::early_limit(limit, req, next)
                }));
        // Nobody's body is read before they are known to be allowed.
        if let Auth::User(permission, on) = e.auth {
            let app = app.clone();
            route = route.layer(axum::middleware::from_fn(move |req, next| {
                authorize::enforce(app.clone(), permission, on, req, next)
            }));
        }
        // Outermost: a client over its rate costs not even a credential lookup.
        if let Some(class) = rate_limit::class_of(e.path) {
            let app = app.clone();
            route = route.layer(axum::middleware::from_fn(move |req, next| {
                rate_limit::layer(app.clone(), class, req, next)
            }));
        }
        r = r.route(e.path, route);
    }
    r.fallback(|| async {
        crate::error::ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "no_route",
            "no such endpoint",
        )
    })
    .layer(DefaultBodyLimit::max(app.config.max_body_bytes))
    .layer(axum::middleware::from_fn(problem::layer))
    .layer(axum::middleware::map_response(headers::add))
    .with_state(app)
}

/// Routes of the API port: the API and the web dashboard.
pub(crate) fn api_router(app: Arc<App>) -> Router {
    let tracked = app.clone();
    router_for(app.clone(), Port::Api)
        .merge(crate::ui::router(app))
        .layer(axum::middleware::from_fn(move |req, next| {
            observe::layer(tracked.clone(), "api", req, next)
        }))
}

/// Routes of the agent port.
pub(crate) fn agent_router(app: Arc<App>) -> Router {
    let tracked = app.clone();
    router_for(app, Port::Agent).layer(axum::middleware::from_fn(move |req, next| {
        observe::layer(tracked.clone(), "agent", req, next)
    }))
}
