//! User accounts and their API tokens as admins manage them, for the API and the dashboard
//! alike.
//!
//! Two guards keep an installation manageable whatever is asked: the last enabled admin can
//! be neither disabled nor demoted, and a token never carries more than its owner.

use axum::http::StatusCode;
use rampart_access::{Role, Scope};
use rampart_audit::Outcome;
use rampart_store::{ApiToken, NewUser, User};
use time::OffsetDateTime;

use crate::api::{NewUserRequest, RoleRequest, UserWithPassword};
use crate::app::App;
use crate::error::ApiError;
use crate::routes::Caller;

/// Default lifetime of an API token.
pub(crate) const TOKEN_TTL_DAYS: u32 = 90;

pub(crate) fn invalid(e: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_field", e)
}

/// Most groups one grant may name.
const MAX_GROUPS: usize = 64;

pub(crate) fn scope(groups: &[String]) -> Result<Scope, ApiError> {
    if groups.len() > MAX_GROUPS {
        return Err(invalid(format!("groups: at most {MAX_GROUPS}")));
    }
    Scope::from_groups(groups.iter().cloned()).map_err(invalid)
}

pub(crate) async fn one_time_password() -> Result<(String, String), ApiError> {
    let password = rampart_access::secret::new_one_time_password();
    let phc = crate::routes::login::hash_password(&password).await?;
    Ok((password, phc))
}

pub(crate) async fn existing(app: &App, name: &str) -> Result<User, ApiError> {
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

/// Creates a user with a one-time password (in the answer only: shown once).
pub(crate) async fn create(
    app: &App,
    caller: &Caller,
    req: NewUserRequest,
) -> Result<UserWithPassword, ApiError> {
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
    Ok(UserWithPassword {
        user,
        one_time_password: password,
    })
}

/// Changes a user's role and group limit; the last enabled admin stays one.
pub(crate) async fn set_role(
    app: &App,
    caller: &Caller,
    name: &str,
    req: RoleRequest,
) -> Result<User, ApiError> {
    let new_scope = scope(&req.groups)?;
    let user = existing(app, name).await?;
    let still_admin = req.role == Role::Admin && new_scope == Scope::All;
    if user.role == Role::Admin && user.disabled_at.is_none() && !still_admin {
        keeps_an_admin(app, &user).await?;
    }
    let before = user;
    let user = app
        .store
        .set_user_grant(name, req.role, &req.groups)
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
    Ok(user)
}

/// Disables a user: the account stops working at once, its tokens with it (they are judged
/// by their owner's state), and its sessions end. Not the last enabled admin.
pub(crate) async fn disable(app: &App, caller: &Caller, name: &str) -> Result<User, ApiError> {
    let user = existing(app, name).await?;
    if user.role == Role::Admin && user.disabled_at.is_none() {
        keeps_an_admin(app, &user).await?;
    }
    let now = OffsetDateTime::now_utc();
    let user = app.store.set_user_disabled(name, Some(now)).await?;
    app.store
        .revoke_user_credentials(user.id, false, now)
        .await?;
    tracing::info!(by = %caller.user.name, user = %name, "user disabled");
    app.audit
        .record(caller.event("user.disable", format!("user:{name}"), Outcome::Success))
        .await?;
    Ok(user)
}

/// Enables a disabled user.
pub(crate) async fn enable(app: &App, caller: &Caller, name: &str) -> Result<User, ApiError> {
    existing(app, name).await?;
    let user = app.store.set_user_disabled(name, None).await?;
    tracing::info!(by = %caller.user.name, user = %name, "user enabled");
    app.audit
        .record(caller.event("user.enable", format!("user:{name}"), Outcome::Success))
        .await?;
    Ok(user)
}

/// Gives a user a new one-time password (in the answer only); their sessions end, their API
/// tokens stay (revoke them separately if the account was compromised).
pub(crate) async fn reset_password(
    app: &App,
    caller: &Caller,
    name: &str,
) -> Result<UserWithPassword, ApiError> {
    let user = existing(app, name).await?;
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
    Ok(UserWithPassword {
        user,
        one_time_password: password,
    })
}

/// Revokes a user's live API token.
pub(crate) async fn revoke_token(
    app: &App,
    caller: &Caller,
    name: &str,
    token: &str,
) -> Result<ApiToken, ApiError> {
    let revoked = app
        .store
        .revoke_api_token(name, token, OffsetDateTime::now_utc())
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
    Ok(revoked)
}
