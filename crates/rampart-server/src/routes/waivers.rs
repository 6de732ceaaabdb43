//! Waivers: requested by one user, approved or denied by another holding the auditor or admin
//! role, every step in the audit log.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use rampart_audit::Outcome;
use rampart_store::{StoredWaiver, WaiverScope};
use schemars::JsonSchema;
use serde::Deserialize;
use time::OffsetDateTime;

use super::authorize::Caller;
use super::body::ApiJson;
use crate::api::{WaiverDecision, WaiverRequest};
use crate::app::App;
use crate::error::ApiError;

/// The longest a waiver may run: risks are accepted for a while, then looked at again.
const MAX_DAYS: i64 = 366;

fn today() -> time::Date {
    OffsetDateTime::now_utc().date()
}

/// As the API reports it: an approved waiver past its last day is `expired`.
fn view(mut w: StoredWaiver) -> StoredWaiver {
    if w.state == "approved" && w.expires_on < today().to_string() {
        w.state = "expired".into();
    }
    w
}

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_waiver", detail)
}

/// `POST /api/v1/waivers`.
pub(crate) async fn request(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiJson(req): ApiJson<WaiverRequest>,
) -> Result<(StatusCode, Json<StoredWaiver>), ApiError> {
    if req.check.len() > 256 {
        return Err(invalid("check: at most 256 characters"));
    }
    rampart_policy::waiver::split_check(&req.check).map_err(invalid)?;
    let justification = req.justification.trim();
    if justification.is_empty() || justification.chars().count() > 2000 {
        return Err(invalid("justification: 1 to 2,000 characters"));
    }
    let until = time::Date::parse(
        &req.until,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| {
        invalid(format!(
            "until: a date like 2027-03-31, not {:?}",
            req.until
        ))
    })?;
    let now = OffsetDateTime::now_utc();
    if until < now.date() || until > now.date() + time::Duration::days(MAX_DAYS) {
        return Err(invalid(format!(
            "until: from today to {MAX_DAYS} days ahead (a waiver is looked at again at least yearly)"
        )));
    }
    match &req.scope {
        WaiverScope::Agent(id) => {
            app.store
                .agent(id)
                .await?
                .ok_or_else(|| invalid(format!("scope: no agent {id:?}")))?;
        }
        WaiverScope::Group(g) => rampart_core::names::check_name("group", g).map_err(invalid)?,
        WaiverScope::Fleet => {}
    }
    let w = StoredWaiver {
        id: format!("w-{}", uuid::Uuid::now_v7().simple()),
        check: req.check.trim().to_owned(),
        scope: req.scope,
        justification: justification.to_owned(),
        expires_on: until.to_string(),
        state: "pending".into(),
        requested_by: caller.user.name.clone(),
        requested_at: now,
        decided_by: None,
        decided_at: None,
        decision_note: None,
    };
    app.store.insert_waiver(&w).await?;
    let scope = serde_json::to_string(&w.scope).map_err(ApiError::internal)?;
    app.audit
        .record(
            caller
                .event(
                    "waiver.request",
                    format!("waiver:{}", w.id),
                    Outcome::Success,
                )
                .detail("check", w.check.clone())
                .detail("scope", scope)
                .detail("until", w.expires_on.clone())
                .detail("justification", w.justification.clone()),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(w)))
}

/// `?state=&limit=`.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct ListQuery {
    /// Only waivers in this state (`expired` is an approved one past its day).
    #[serde(default)]
    #[schemars(extend("enum" = ["pending", "approved", "denied", "expired"]))]
    state: Option<String>,
    /// At most this many, newest request first (default 100, at most 1,000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<u32>,
}

/// `GET /api/v1/waivers`.
pub(crate) async fn list(
    State(app): State<Arc<App>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<StoredWaiver>>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", "limit: 1 to 1000"));
    }
    let stored_state = match q.state.as_deref() {
        None => None,
        Some("expired") => Some("approved"),
        Some(s @ ("pending" | "approved" | "denied")) => Some(s),
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("state {other:?}: pending, approved, denied or expired"),
            ));
        }
    };
    let all = app.store.waivers(stored_state, limit).await?;
    Ok(Json(
        all.into_iter()
            .map(view)
            .filter(|w| q.state.as_deref().is_none_or(|s| w.state == s))
            .collect(),
    ))
}

/// `GET /api/v1/waivers/{id}`.
pub(crate) async fn show(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<StoredWaiver>, ApiError> {
    app.store
        .waiver(&id)
        .await?
        .map(|w| Json(view(w)))
        .ok_or_else(|| ApiError::not_found("waiver", &id))
}

async fn decide(
    app: &App,
    caller: &Caller,
    id: &str,
    approve: bool,
    note: Option<String>,
) -> Result<Json<StoredWaiver>, ApiError> {
    let w = app
        .store
        .waiver(id)
        .await?
        .ok_or_else(|| ApiError::not_found("waiver", id))?;
    if w.requested_by == caller.user.name {
        return Err(ApiError::forbidden(
            "self_approval",
            "a waiver is approved or denied by someone other than who asked for it",
        ));
    }
    let note = note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > 2000) {
        return Err(invalid("note: at most 2,000 characters"));
    }
    let decided = app
        .store
        .decide_waiver(
            id,
            approve,
            &caller.user.name,
            note.as_deref(),
            OffsetDateTime::now_utc(),
        )
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "not_pending",
                format!("waiver {id} was {} already", w.state),
            )
        })?;
    let action = if approve {
        "waiver.approve"
    } else {
        "waiver.deny"
    };
    let mut event = caller
        .event(action, format!("waiver:{id}"), Outcome::Success)
        .detail("requested_by", w.requested_by.clone())
        .detail("check", w.check.clone());
    if let Some(n) = &note {
        event = event.detail("note", n.clone());
    }
    app.audit.record(event).await?;
    Ok(Json(view(decided)))
}

/// `POST /api/v1/waivers/{id}/approve`.
pub(crate) async fn approve(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(d): ApiJson<WaiverDecision>,
) -> Result<Json<StoredWaiver>, ApiError> {
    decide(&app, &caller, &id, true, d.note).await
}

/// `POST /api/v1/waivers/{id}/deny`.
pub(crate) async fn deny(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(d): ApiJson<WaiverDecision>,
) -> Result<Json<StoredWaiver>, ApiError> {
    decide(&app, &caller, &id, false, d.note).await
}
