//! Users and API tokens: admins manage accounts ([`crate::accounts`], which the dashboard
//! shares), everyone manages their own tokens.
//!
//! Two guards keep an installation manageable whatever is asked: the last enabled admin can
//! be neither disabled nor demoted, and a token never carries more than its owner.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rampart_access::Grant;
use rampart_audit::Outcome;
use rampart_store::{ApiToken, NewApiToken, User};
use time::OffsetDateTime;

use super::authorize::Caller;
use super::body::ApiJson;
use crate::accounts::{self, TOKEN_TTL_DAYS, existing, invalid, scope};
use crate::api::{IssuedToken, NewTokenRequest, NewUserRequest, RoleRequest, UserWithPassword};
use crate::app::App;
use crate::error::ApiError;

/// `GET /api/v1/users`.
pub(crate) async fn list(State(app): State<Arc<App>>) -> Result<Json<Vec<User>>, ApiError> {
    Ok(Json(app.store.users().await?))
}

/// `GET /api/v1/users/{name}`.
pub(crate) async fn show(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(existing(&app, &name).await?))
}

/// `POST /api/v1/users`.
pub(crate) async fn create(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiJson(req): ApiJson<NewUserRequest>,
) -> Result<(StatusCode, Json<UserWithPassword>), ApiError> {
    let made = accounts::create(&app, &caller, req).await?;
    Ok((StatusCode::CREATED, Json(made)))
}

/// `PUT /api/v1/users/{name}/role`.
pub(crate) async fn set_role(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<RoleRequest>,
) -> Result<Json<User>, ApiError> {
    accounts::set_role(&app, &caller, &name, req)
        .await
        .map(Json)
}

/// `POST /api/v1/users/{name}/disable`.
pub(crate) async fn disable(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<User>, ApiError> {
    accounts::disable(&app, &caller, &name).await.map(Json)
}

/// `POST /api/v1/users/{name}/enable`.
pub(crate) async fn enable(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<User>, ApiError> {
    accounts::enable(&app, &caller, &name).await.map(Json)
}

/// `POST /api/v1/users/{name}/reset-password`.
pub(crate) async fn reset_password(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<UserWithPassword>, ApiError> {
    accounts::reset_password(&app, &caller, &name)
        .await
        .map(Json)
}

/// `GET /api/v1/users/{name}/tokens`.
pub(crate) async fn user_tokens(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<Json<Vec<ApiToken>>, ApiError> {
    existing(&app, &name).await?;
    Ok(Json(app.store.api_tokens(Some(&name)).await?))
}

/// `DELETE /api/v1/users/{name}/tokens/{token}`.
pub(crate) async fn revoke_user_token(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path((name, token)): Path<(String, String)>,
) -> Result<Json<ApiToken>, ApiError> {
    accounts::revoke_token(&app, &caller, &name, &token)
        .await
        .map(Json)
}

/// `GET /api/v1/me/tokens`.
pub(crate) async fn my_tokens(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Vec<ApiToken>>, ApiError> {
    Ok(Json(app.store.api_tokens(Some(&caller.user.name)).await?))
}

/// `POST /api/v1/me/tokens`.
pub(crate) async fn create_my_token(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiJson(req): ApiJson<NewTokenRequest>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    rampart_core::names::check_name("name", &req.name).map_err(invalid)?;
    let ttl = req.ttl_days.unwrap_or(TOKEN_TTL_DAYS);
    if !(1..=365).contains(&ttl) {
        return Err(invalid("ttl_days: between 1 and 365"));
    }
    let user = &caller.user;
    let role = req.role.unwrap_or(user.role);
    let groups = req.groups.unwrap_or_else(|| user.groups.clone());
    let wanted = Grant {
        role,
        scope: scope(&groups)?,
    };
    if !wanted.is_within(&user.grant()) {
        return Err(ApiError::forbidden(
            "permission_denied",
            format!(
                "a token carries at most its user's grant: {} of {}",
                user.role,
                if user.groups.is_empty() {
                    "the whole fleet".to_owned()
                } else {
                    user.groups.join(",")
                }
            ),
        ));
    }
    let token = rampart_access::secret::new_token();
    let now = OffsetDateTime::now_utc();
    let info = app
        .store
        .insert_api_token(&NewApiToken {
            user_id: user.id,
            name: req.name,
            token_hash: rampart_access::secret::digest(&token),
            shown: rampart_access::secret::shown(&token),
            role,
            groups,
            created_at: now,
            expires_at: now + time::Duration::days(i64::from(ttl)),
        })
        .await?;
    tracing::info!(user = %user.name, token = %info.name, role = %role, "token created");
    app.audit
        .record(
            caller
                .event(
                    "token.create",
                    format!("token:{}/{}", user.name, info.name),
                    Outcome::Success,
                )
                .detail("role", role.to_string())
                .detail("groups", info.groups.join(","))
                .detail("expires", info.expires_at.date().to_string()),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(IssuedToken { token, info })))
}

/// `DELETE /api/v1/me/tokens/{name}`.
pub(crate) async fn revoke_my_token(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ApiToken>, ApiError> {
    let revoked = app
        .store
        .revoke_api_token(&caller.user.name, &name, OffsetDateTime::now_utc())
        .await?
        .ok_or_else(|| ApiError::not_found("live token", &name))?;
    tracing::info!(user = %caller.user.name, token = %name, "token revoked");
    app.audit
        .record(caller.event(
            "token.revoke",
            format!("token:{}/{name}", caller.user.name),
            Outcome::Success,
        ))
        .await?;
    Ok(Json(revoked))
}
