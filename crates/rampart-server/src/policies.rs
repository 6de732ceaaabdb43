//! Policies as admins manage them: uploads validated into immutable versions, assignments
//! of a version to a group or an agent on a schedule, and "scan now". Shared by the API and
//! the dashboard, which check the same rights and write the same audit entries.

use axum::http::StatusCode;
use rampart_access::{Permission, Target as AccessTarget};
use rampart_audit::Outcome;
use rampart_store::{Assignment, NewPolicyVersion, Target};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::api::{AssignRequest, PolicyUploaded};
use crate::app::App;
use crate::error::ApiError;
use crate::routes::Caller;

/// Checks a cron expression the way agents will evaluate it.
pub(crate) fn validate_schedule(s: &str) -> Result<(), ApiError> {
    s.parse::<croner::Cron>()
        .map(|_| ())
        .map_err(|e| ApiError::bad_request("invalid_schedule", format!("schedule {s:?}: {e}")))
}

/// Validates `bytes` as a policy (Rampart YAML or Wazuh SCA) and stores it as a new version;
/// unchanged content answers the newest version, `created` false. A refusal names the place
/// (`file:line:column`) as the loader reports it.
pub(crate) async fn upload(
    app: &App,
    caller: &Caller,
    file_name: &str,
    bytes: &[u8],
) -> Result<PolicyUploaded, ApiError> {
    let policy =
        rampart_policy::load_bytes(bytes, file_name, rampart_policy::LoadOptions::default())
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
                file_name,
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
                    .detail("file", file_name.to_owned()),
            )
            .await?;
    }
    Ok(PolicyUploaded { version, created })
}

/// Assigns a version (default: the newest) of policy `id` to a group or an agent with a
/// schedule, replacing that target's assignment.
pub(crate) async fn assign(
    app: &App,
    caller: &Caller,
    id: &str,
    req: AssignRequest,
) -> Result<Assignment, ApiError> {
    validate_schedule(&req.schedule)?;
    let version = match req.version {
        Some(v) => v,
        None => app
            .store
            .policy_versions(id)
            .await?
            .last()
            .map(|v| v.version)
            .ok_or_else(|| ApiError::not_found("policy", id))?,
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
        .assign(id, version, &req.target, &req.schedule, now)
        .await?;
    let assignment = app
        .store
        .assignments(Some(id))
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
    Ok(assignment)
}

/// An assignment's target as the audit log names it.
fn assignment_target(target: &Target) -> String {
    match target {
        Target::Group(g) => format!("group:{g}"),
        Target::Agent(a) => format!("agent:{a}"),
    }
}

/// Removes policy `id`'s assignment to `target` (a target the caller manages policies of).
pub(crate) async fn unassign(
    app: &App,
    caller: &Caller,
    id: &str,
    target: Target,
) -> Result<(), ApiError> {
    let group = match &target {
        Target::Group(g) => Some(g.clone()),
        Target::Agent(a) => app.store.agent(a).await?.map(|agent| agent.group),
    };
    if let Some(g) = &group {
        caller.check(Permission::PoliciesManage, AccessTarget::Group(g))?;
    }
    if !app.store.unassign(id, &target).await? {
        return Err(ApiError::not_found(
            "assignment",
            &format!("{id} → {}", assignment_target(&target)),
        ));
    }
    app.audit
        .record(
            caller
                .event("policy.unassign", format!("policy:{id}"), Outcome::Success)
                .detail("from", assignment_target(&target)),
        )
        .await?;
    Ok(())
}

/// Asks agent `id` to scan now: delivered with its next heartbeat.
pub(crate) async fn scan_now(app: &App, caller: &Caller, id: &str) -> Result<(), ApiError> {
    let missing = || ApiError::not_found("agent", id);
    let agent = app.store.agent(id).await?.ok_or_else(missing)?;
    if !caller.sees(&agent.group) {
        return Err(missing());
    }
    caller.check(Permission::AgentsManage, AccessTarget::Group(&agent.group))?;
    if !app
        .store
        .request_scan(id, OffsetDateTime::now_utc())
        .await?
    {
        return Err(missing());
    }
    app.audit
        .record(caller.event("agent.scan", format!("agent:{id}"), Outcome::Success))
        .await?;
    Ok(())
}
