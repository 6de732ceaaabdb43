//! Admin endpoints: enrolment tokens, agents, policies and assignments.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_access::{Permission, Target as AccessTarget};
use rampart_audit::Outcome;
use rampart_store::{
    Agent, Assignment, EnrolmentToken, NewPolicyVersion, PolicySummary, PolicyVersion, Target,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::authorize::Caller;
use super::body::ApiJson;
use crate::api::{
    AgentDetail, AgentView, AssignRequest, Done, PolicyUpload, PolicyUploaded, RevokeRequest,
    Revoked, TokenCreated, TokenRequest,
};
use crate::app::App;
use crate::error::ApiError;

pub(crate) async fn create_token(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiJson(req): ApiJson<TokenRequest>,
) -> Result<(StatusCode, Json<TokenCreated>), ApiError> {
    let created = crate::enrolment::issue(&app, &caller, req).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub(crate) async fn list_tokens(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Vec<EnrolmentToken>>, ApiError> {
    crate::enrolment::visible(&app, &caller).await.map(Json)
}

pub(crate) async fn revoke_token(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(jti): Path<String>,
) -> Result<Json<Done>, ApiError> {
    crate::enrolment::revoke(&app, &caller, &jti).await?;
    Ok(Json(Done { ok: true }))
}

fn view(app: &App, agent: Agent, now: OffsetDateTime) -> AgentView {
    let connection = if agent.status == rampart_store::AgentStatus::Revoked {
        "revoked"
    } else if now - agent.last_seen > app.offline_after() {
        "offline"
    } else {
        "online"
    };
    AgentView {
        agent,
        connection: connection.into(),
    }
}

/// `?group=`.
#[derive(Deserialize, schemars::JsonSchema)]
pub(crate) struct GroupQuery {
    /// Only agents of this group.
    #[schemars(regex(pattern = rampart_core::names::NAME_PATTERN))]
    group: Option<String>,
}

pub(crate) async fn list_agents(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<GroupQuery>,
) -> Result<Json<Vec<AgentView>>, ApiError> {
    if let Some(group) = &q.group {
        rampart_core::names::check_name("group", group)
            .map_err(|e| ApiError::bad_request("invalid_field", e))?;
    }
    app.flush_heartbeats().await;
    let now = OffsetDateTime::now_utc();
    let agents = app.store.agents(q.group.as_deref()).await?;
    Ok(Json(
        agents
            .into_iter()
            .filter(|a| caller.sees(&a.group))
            .map(|a| view(&app, a, now))
            .collect(),
    ))
}

pub(crate) async fn show_agent(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<AgentDetail>, ApiError> {
    app.flush_heartbeats().await;
    let agent = app
        .store
        .agent(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("agent", &id))?;
    let certificates = app.store.agent_certificates(&id).await?;
    let assignments = app.store.assignments_for_agent(&id, &agent.group).await?;
    Ok(Json(AgentDetail {
        agent: view(&app, agent, OffsetDateTime::now_utc()),
        certificates,
        assignments,
    }))
}

pub(crate) async fn revoke_agent(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RevokeRequest>,
) -> Result<Json<Revoked>, ApiError> {
    if req.reason.chars().count() > 1024 {
        return Err(ApiError::bad_request(
            "invalid_field",
            "reason: at most 1024 characters",
        ));
    }
    let serials = app
        .store
        .revoke_agent(&id, &req.reason, OffsetDateTime::now_utc())
        .await?;
    // This replica refuses them at once; others within their refresh interval.
    app.revoked.extend(serials.iter().cloned());
    tracing::warn!(agent = %id, reason = %req.reason, certificates = serials.len(), "agent revoked");
    app.audit
        .record(
            caller
                .event("agent.revoke", format!("agent:{id}"), Outcome::Success)
                .detail("reason", req.reason.clone())
                .detail("certificates", serials.join(",")),
        )
        .await?;
    Ok(Json(Revoked { serials }))
}

pub(crate) async fn scan_now(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Done>, ApiError> {
    if app
        .store
        .request_scan(&id, OffsetDateTime::now_utc())
        .await?
    {
        app.audit
            .record(caller.event("agent.scan", format!("agent:{id}"), Outcome::Success))
            .await?;
        Ok(Json(Done { ok: true }))
    } else {
        Err(ApiError::not_found("agent", &id))
    }
}

pub(crate) async fn upload_policy(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiJson(req): ApiJson<PolicyUpload>,
) -> Result<(StatusCode, Json<PolicyUploaded>), ApiError> {
    let bytes = req.content.as_bytes();
    let policy = rampart_policy::load_bytes(
        bytes,
        &req.file_name,
        rampart_policy::LoadOptions::default(),
    )
    .map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_policy",
            e.to_string(),
        )
    })?;
    let digest = hex::encode(Sha256::digest(bytes));
    let (version, created) = app
        .store
        .add_policy_version(
            &NewPolicyVersion {
                policy_id: &policy.id,
                name: &policy.name,
                format: policy.format.as_str(),
                file_name: &req.file_name,
                content: bytes,
                digest: &digest,
                check_count: i64::try_from(policy.checks.len()).unwrap_or(i64::MAX),
            },
            OffsetDateTime::now_utc(),
        )
        .await?;
    tracing::info!(policy = %version.policy_id, version = version.version, created, "policy uploaded");
    if created {
        app.audit
            .record(
                caller
                    .event(
                        "policy.upload",
                        format!("policy:{}", version.policy_id),
                        Outcome::Success,
                    )
                    .detail("version", version.version.to_string())
                    .detail("sha256", digest.clone())
                    .detail("file", req.file_name.clone()),
            )
            .await?;
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(PolicyUploaded { version, created })))
}

pub(crate) async fn list_policies(
    State(app): State<Arc<App>>,
) -> Result<Json<Vec<PolicySummary>>, ApiError> {
    Ok(Json(app.store.policies().await?))
}

pub(crate) async fn policy_versions(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<Vec<PolicyVersion>>, ApiError> {
    let v = app.store.policy_versions(&id).await?;
    if v.is_empty() {
        return Err(ApiError::not_found("policy", &id));
    }
    Ok(Json(v))
}

pub(crate) async fn policy_content(
    State(app): State<Arc<App>>,
    Path((id, version)): Path<(String, i64)>,
) -> Result<Response, ApiError> {
    let (_, content) = app
        .store
        .policy_version(&id, version)
        .await?
        .ok_or_else(|| ApiError::not_found("policy version", &format!("{id}@{version}")))?;
    Ok(([(header::CONTENT_TYPE, "application/yaml")], content).into_response())
}

/// Checks a cron expression the way agents will evaluate it.
pub(crate) fn validate_schedule(s: &str) -> Result<(), ApiError> {
    s.parse::<croner::Cron>()
        .map(|_| ())
        .map_err(|e| ApiError::bad_request("invalid_schedule", format!("schedule {s:?}: {e}")))
}

pub(crate) async fn assign(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AssignRequest>,
) -> Result<Json<Assignment>, ApiError> {
    validate_schedule(&req.schedule)?;
    let version = match req.version {
        Some(v) => v,
        None => app
            .store
            .policy_versions(&id)
            .await?
            .last()
            .map(|v| v.version)
            .ok_or_else(|| ApiError::not_found("policy", &id))?,
    };
    match &req.target {
        Target::Group(g) => caller.check(Permission::PoliciesManage, AccessTarget::Group(g))?,
        Target::Agent(a) => {
            let Some(agent) = app.store.agent(a).await? else {
                return Err(ApiError::not_found("agent", a));
            };
            caller.check(
                Permission::PoliciesManage,
                AccessTarget::Group(&agent.group),
            )?;
        }
    }
    let now = OffsetDateTime::now_utc();
    app.store
        .assign(&id, version, &req.target, &req.schedule, now)
        .await?;
    let assignment = app
        .store
        .assignments(Some(&id))
        .await?
        .into_iter()
        .find(|a| a.target == req.target)
        .ok_or_else(|| ApiError::internal("assignment vanished after it was written"))?;
    tracing::info!(policy = %id, version, target = ?req.target, schedule = %req.schedule, "policy assigned");
    app.audit
        .record(
            caller
                .event("policy.assign", format!("policy:{id}"), Outcome::Success)
                .detail("version", version.to_string())
                .detail("to", assignment_target(&req.target))
                .detail("schedule", req.schedule.clone()),
        )
        .await?;
    Ok(Json(assignment))
}

/// An assignment's target as the audit log names it.
fn assignment_target(target: &Target) -> String {
    match target {
        Target::Group(g) => format!("group:{g}"),
        Target::Agent(a) => format!("agent:{a}"),
    }
}

pub(crate) async fn unassign(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((id, kind, name)): Path<(String, String, String)>,
) -> Result<Json<Done>, ApiError> {
    let target = match kind.as_str() {
        "group" => Target::Group(name),
        "agent" => Target::Agent(name),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_target",
                "kind: 'group' or 'agent'",
            ));
        }
    };
    if app.store.unassign(&id, &target).await? {
        app.audit
            .record(
                caller
                    .event("policy.unassign", format!("policy:{id}"), Outcome::Success)
                    .detail("from", assignment_target(&target)),
            )
            .await?;
        Ok(Json(Done { ok: true }))
    } else {
        Err(ApiError::not_found(
            "assignment",
            &format!("{id} → {target:?}"),
        ))
    }
}

pub(crate) async fn list_assignments(
    State(app): State<Arc<App>>,
) -> Result<Json<Vec<Assignment>>, ApiError> {
    Ok(Json(app.store.assignments(None).await?))
}
