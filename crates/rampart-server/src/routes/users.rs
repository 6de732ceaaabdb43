//! Users and API tokens: admins manage accounts, everyone manages their own tokens.
//!
//! Two guards keep an installation manageable whatever is asked: the last enabled admin can
//! be neither disabled nor demoted, and a token never carries more than its owner.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rampart_access::{Grant, Role, Scope};
use rampart_audit::Outcome;
use rampart_store::{ApiToken, NewApiToken, NewUser, User};
use time::OffsetDateTime;

use super::authorize::Caller;
use super::body::ApiJson;
use crate::api::{IssuedToken, NewTokenRequest, NewUserRequest, RoleRequest, UserWithPassword};
use crate::app::App;
use crate::error::ApiError;

/// Default lifetime of an API token.
const TOKEN_TTL_DAYS: u32 = 90;

fn invalid(e: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_field", e)
}

/// Most groups one grant may name.
const MAX_GROUPS: usize = 64;

fn scope(groups: &[String]) -> Result<Scope, ApiError> {
    if groups.len() > MAX_GROUPS {
        return Err(invalid(format!("groups: at most {MAX_GROUPS}")));
    }
    Scope::from_groups(groups.iter().cloned()).map_err(invalid)
}

async fn one_time_password() -> Result<(String, String), ApiError> {
    let password = rampart_access::secret::new_one_time_password();
    let phc = super::login::hash_password(&password).await?;
    Ok((password, phc))
}

async fn existing(app: &App, name: &str) -> Result<User, ApiError> {
    app.store
        .user(name)
        .await?
        .ok_or_else(|| ApiError::not_found("user", name))
}

/// Refuses a change that would leave no enabled admin.
async fn keeps_an_admin(app: &App, changed: &User) -> Result<(), ApiError> {
    let others = app
        .store
        .users()
        .await?
        .into_iter()
        .filter(|u| u.role == Role::Admin && u.disabled_at.is_none() && u.id != changed.id)
        .count();
    if others == 0 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "last_admin",
            format!(
                "{} is the last enabled admin: make another admin first",
                changed.name
            ),
        ));
    }
    Ok(())
}

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
    rampart_access::check_user_name(&req.name).map_err(invalid)?;
    scope(&req.groups)?;
    let (password, phc) = one_time_password().await?;
    let user = app
        .store
        .insert_user(&NewUser {
            name: req.name,
            role: req.role,
            groups: req.groups,
            password_hash: Some(phc),
            must_change_password: true,
            oidc_subject: None,
            created_at: OffsetDateTime::now_utc(),
        })
        .await?;
    tracing::info!(by = %caller.user.name, user = %user.name, role = %user.role, "user created");
    app.audit
        .record(
            caller
                .event(
                    "user.create",
                    format!("user:{}", user.name),
                    Outcome::Success,
                )
                .detail("role", user.role.to_string())
                .detail("groups", user.groups.join(",")),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(UserWithPassword {
            user,
            one_time_password: password,
        }),
    ))
}

/// `PUT /api/v1/users/{name}/role`.
pub(crate) async fn set_role(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<RoleRequest>,
) -> Result<Json<User>, ApiError> {
    let new_scope = scope(&req.groups)?;
    let user = existing(&app, &name).await?;
    let still_admin = req.role == Role::Admin && new_scope == Scope::All;
    if user.role == Role::Admin && user.disabled_at.is_none() && !still_admin {
        keeps_an_admin(&app, &user).await?;
    }
    let before = user;
    let user = app
        .store
        .set_user_grant(&name, req.role, &req.groups)
        .await?;
    tracing::info!(by = %caller.user.name, user = %name, role = %req.role, groups = ?req.groups, "user role changed");
    app.audit
        .record(
            caller
                .event("user.role", format!("user:{name}"), Outcome::Success)
                .detail("role", user.role.to_string())
                .detail("groups", user.groups.join(","))
                .detail("previous_role", before.role.to_string())
                .detail("previous_groups", before.groups.join(",")),
        )
        .await?;
    Ok(Json(user))
}

/// `POST /api/v1/users/{name}/disable`: the account stops working at once, its tokens with it
/// (they are judged by their owner's state), and its sessions are ended.
pub(crate) async fn disable(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<User>, ApiError> {
    let user = existing(&app, &name).await?;
    if user.role == Role::Admin && user.disabled_at.is_none() {
        keeps_an_admin(&app, &user).await?;
    }
    let now = OffsetDateTime::now_utc();
    let user = app.store.set_user_disabled(&name, Some(now)).await?;
    app.store
        .revoke_user_credentials(user.id, false, now)
        .await?;
    tracing::info!(by = %caller.user.name, user = %name, "user disabled");
    app.audit
        .record(caller.event("user.disable", format!("user:{name}"), Outcome::Success))
        .await?;
    Ok(Json(user))
}

/// `POST /api/v1/users/{name}/enable`.
pub(crate) async fn enable(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<User>, ApiError> {
    existing(&app, &name).await?;
    let user = app.store.set_user_disabled(&name, None).await?;
    tracing::info!(by = %caller.user.name, user = %name, "user enabled");
    app.audit
        .record(caller.event("user.enable", format!("user:{name}"), Outcome::Success))
        .await?;
    Ok(Json(user))
}

/// `POST /api/v1/users/{name}/reset-password`: a new one-time password; the user's sessions
/// end (their API tokens stay: revoke them separately if the account was compromised).
pub(crate) async fn reset_password(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<UserWithPassword>, ApiError> {
    let user = existing(&app, &name).await?;
    let (password, phc) = one_time_password().await?;
    let now = OffsetDateTime::now_utc();
    let user = app
        .store
        .set_user_password(&user.name, &phc, true, now)
        .await?;
    app.store
        .revoke_user_credentials(user.id, false, now)
        .await?;
    tracing::info!(by = %caller.user.name, user = %name, "password reset");
    app.audit
        .record(caller.event(
            "user.reset_password",
            format!("user:{name}"),
            Outcome::Success,
        ))
        .await?;
    Ok(Json(UserWithPassword {
        user,
        one_time_password: password,
    }))
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
    let revoked = app
        .store
        .revoke_api_token(&name, &token, OffsetDateTime::now_utc())
        .await?
        .ok_or_else(|| ApiError::not_found("live token", &format!("{name}/{token}")))?;
    tracing::info!(by = %caller.user.name, user = %name, token = %token, "token revoked");
    app.audit
        .record(caller.event(
            "token.revoke",
            format!("token:{name}/{token}"),
            Outcome::Success,
        ))
        .await?;
    Ok(Json(revoked))
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
