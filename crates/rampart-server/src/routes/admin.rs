//! Admin endpoints: enrolment tokens, agents, policies and assignments.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_audit::Outcome;
use rampart_store::{Agent, Assignment, EnrolmentToken, PolicySummary, PolicyVersion, Target};
use serde::Deserialize;
use time::OffsetDateTime;

use super::authorize::Caller;
use super::body::ApiJson;
use crate::api::{
    AgentDetail, AgentView, AssignRequest, Done, PolicyUpload, PolicyUploaded, RevokeRequest,
    Revoked, TokenCreated, TokenRequest,
};
use crate::app::App;
use crate::error::ApiError;
use crate::policies;

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
    policies::scan_now(&app, &caller, &id).await?;
    Ok(Json(Done { ok: true }))
}

pub(crate) async fn upload_policy(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiJson(req): ApiJson<PolicyUpload>,
) -> Result<(StatusCode, Json<PolicyUploaded>), ApiError> {
    let up = policies::upload(&app, &caller, &req.file_name, req.content.as_bytes()).await?;
    let status = if up.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(up)))
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

pub(crate) async fn assign(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AssignRequest>,
) -> Result<Json<Assignment>, ApiError> {
    policies::assign(&app, &caller, &id, req).await.map(Json)
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
    policies::unassign(&app, &caller, &id, target).await?;
    Ok(Json(Done { ok: true }))
}

pub(crate) async fn list_assignments(
    State(app): State<Arc<App>>,
) -> Result<Json<Vec<Assignment>>, ApiError> {
    Ok(Json(app.store.assignments(None).await?))
}
