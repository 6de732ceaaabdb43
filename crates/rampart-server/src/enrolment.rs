//! Enrolment tokens: issued for a group (and labels), used up by agents enrolling, revoked
//! before their time. Shared by the API and the dashboard, which check the same rights.

use rampart_access::{Permission, Target};
use rampart_audit::Outcome;
use rampart_store::{EnrolmentToken, GroupOf};
use time::{Duration, OffsetDateTime};

use crate::api::{TokenCreated, TokenRequest};
use crate::app::App;
use crate::error::ApiError;
use crate::routes::{Caller, rfc3339};

/// Longest enrolment-token lifetime accepted: tokens are meant to be short-lived.
pub(crate) const MAX_TTL: Duration = Duration::days(7);

/// Issues a token: checked, stored (never its secret) and recorded in the audit log. The
/// token itself is in the answer only: it is shown once.
pub(crate) async fn issue(
    app: &App,
    caller: &Caller,
    req: TokenRequest,
) -> Result<TokenCreated, ApiError> {
    rampart_core::names::check_name("group", &req.group)
        .and_then(|()| rampart_core::names::check_labels(req.labels.iter()))
        .map_err(|e| ApiError::bad_request("invalid_field", e))?;
    caller.check(Permission::EnrolmentManage, Target::Group(&req.group))?;
    let ttl = Duration::seconds(req.ttl_secs);
    if ttl < Duration::seconds(10) || ttl > MAX_TTL {
        return Err(ApiError::bad_request(
            "invalid_field",
            "ttl_secs: between 10 and 604800",
        ));
    }
    if req.max_uses == 0 {
        return Err(ApiError::bad_request(
            "invalid_field",
            "max_uses: at least 1",
        ));
    }
    if let Some(id) = &req.agent_id {
        let Some(agent) = app.store.agent(id).await? else {
            return Err(ApiError::not_found("agent", id));
        };
        caller.check(Permission::EnrolmentManage, Target::Group(&agent.group))?;
        if req.max_uses != 1 {
            return Err(ApiError::bad_request(
                "invalid_field",
                "max_uses: a re-enrolment token is single-use",
            ));
        }
    }
    let now = OffsetDateTime::now_utc();
    let jti = uuid::Uuid::new_v4().to_string();
    let (token, claims) = app
        .tokens
        .issue(
            &app.enrol_audience,
            &jti,
            &req.group,
            &req.labels,
            &app.ca().root_fingerprint(),
            req.agent_id.as_deref(),
            now,
            ttl,
        )
        .map_err(ApiError::internal)?;
    let record = EnrolmentToken {
        jti: jti.clone(),
        group: req.group,
        labels: req.labels,
        audience: app.enrol_audience.clone(),
        max_uses: req.max_uses,
        uses: 0,
        expires_at: OffsetDateTime::from_unix_timestamp(claims.exp).unwrap_or(now),
        created_at: now,
        revoked_at: None,
        reenrol_agent_id: req.agent_id,
    };
    app.store.insert_enrolment_token(&record).await?;
    tracing::info!(%jti, group = %record.group, max_uses = record.max_uses, "enrolment token created");
    let mut event = caller
        .event(
            "enrolment_token.create",
            format!("enrolment-token:{jti}"),
            Outcome::Success,
        )
        .detail("group", record.group.clone())
        .detail("max_uses", record.max_uses.to_string())
        .detail("expires", rfc3339(record.expires_at));
    if let Some(agent) = &record.reenrol_agent_id {
        event = event.detail("reenrol_agent", agent.clone());
    }
    app.audit.record(event).await?;
    Ok(TokenCreated {
        token,
        jti,
        expires_at: rfc3339(record.expires_at),
        audience: record.audience,
    })
}

/// The tokens the caller may see: those of their groups.
pub(crate) async fn visible(app: &App, caller: &Caller) -> Result<Vec<EnrolmentToken>, ApiError> {
    let mut tokens = app.store.enrolment_tokens().await?;
    tokens.retain(|t| caller.sees(&t.group));
    Ok(tokens)
}

/// Revokes a token of a group the caller manages enrolment for; a token of another group is
/// as absent as a missing one would be to someone who cannot see it.
pub(crate) async fn revoke(app: &App, caller: &Caller, jti: &str) -> Result<(), ApiError> {
    let missing = || ApiError::not_found("token", jti);
    let group = app
        .store
        .group_of(GroupOf::EnrolmentToken(jti))
        .await?
        .ok_or_else(missing)?;
    if !caller.sees(&group) {
        return Err(missing());
    }
    caller.check(Permission::EnrolmentManage, Target::Group(&group))?;
    if !app
        .store
        .revoke_enrolment_token(jti, OffsetDateTime::now_utc())
        .await?
    {
        return Err(missing());
    }
    app.audit
        .record(caller.event(
            "enrolment_token.revoke",
            format!("enrolment-token:{jti}"),
            Outcome::Success,
        ))
        .await?;
    Ok(())
}
