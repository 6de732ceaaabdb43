//! Waivers: requested by one user, approved or denied by another holding the auditor or admin
//! role, every step in the audit log. The rules live in [`crate::waivers`], which the dashboard
//! shares.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use rampart_store::StoredWaiver;
use schemars::JsonSchema;
use serde::Deserialize;

use super::authorize::Caller;
use super::body::ApiJson;
use crate::api::{WaiverDecision, WaiverRequest};
use crate::app::App;
use crate::error::ApiError;
use crate::waivers::{self, view};

/// `POST /api/v1/waivers`.
pub(crate) async fn request(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiJson(req): ApiJson<WaiverRequest>,
) -> Result<(StatusCode, Json<StoredWaiver>), ApiError> {
    let w = waivers::request(&app, &caller, req).await?;
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

/// `POST /api/v1/waivers/{id}/approve`.
pub(crate) async fn approve(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(d): ApiJson<WaiverDecision>,
) -> Result<Json<StoredWaiver>, ApiError> {
    waivers::decide(&app, &caller, &id, true, d.note)
        .await
        .map(Json)
}

/// `POST /api/v1/waivers/{id}/deny`.
pub(crate) async fn deny(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(d): ApiJson<WaiverDecision>,
) -> Result<Json<StoredWaiver>, ApiError> {
    waivers::decide(&app, &caller, &id, false, d.note)
        .await
        .map(Json)
}
