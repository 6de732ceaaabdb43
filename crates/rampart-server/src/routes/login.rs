//! Password login and one's own account: what `rampart login` calls, and what a user may do
//! to their own credentials whatever their role.
//!
//! Password checks are argon2id (19 MiB, two passes): a hostile client sending logins as fast
//! as it can must not be able to make the server hold gigabytes or every core in them, so at
//! most [`CONCURRENT_CHECKS`] run at once, on the blocking pool, and a request that cannot get
//! a turn within a few seconds is told to come back. Failures count against the client's
//! address (never against the account, which an attacker could otherwise lock out).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use rampart_access::{Permission, Target};
use rampart_store::{NewApiToken, User};
use time::OffsetDateTime;

use super::authorize::Caller;
use super::body::ApiJson;
use crate::api::{Done, IssuedToken, LoginRequest, Me, PasswordChange};
use crate::app::App;
use crate::error::ApiError;

/// Password checks running at once.
pub(crate) const CONCURRENT_CHECKS: usize = 4;

/// How long a login waits for a turn at a password check.
const CHECK_WAIT: Duration = Duration::from_secs(5);

/// Default lifetime of a token issued at login.
const LOGIN_TOKEN_TTL_DAYS: u32 = 90;

/// Verifies `password` against `phc` (or spends the same time when there is no hash) on the
/// blocking pool, holding one of the server's password-check permits.
async fn check_password(app: &App, password: &str, phc: Option<String>) -> Result<bool, ApiError> {
    let _permit = tokio::time::timeout(CHECK_WAIT, app.password_checks.acquire())
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "too many logins at once; retry in a few seconds",
            )
            .with_retry_after(2)
        })?
        .map_err(ApiError::internal)?;
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || match phc {
        Some(phc) => rampart_access::password::verify(&password, &phc),
        None => {
            rampart_access::password::verify_nothing(&password);
            false
        }
    })
    .await
    .map_err(ApiError::internal)
}

async fn hash_password(password: &str) -> Result<String, ApiError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || rampart_access::password::hash(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

fn bad_credentials() -> ApiError {
    ApiError::unauthorized("bad_credentials", "user name or password is wrong")
}

/// Refuses a client address with too many recent failures.
fn not_blocked(app: &App, client: SocketAddr, now: Instant) -> Result<(), ApiError> {
    match app.auth_failures.blocked(client.ip(), now) {
        Some(wait) => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_failures",
            format!("too many failed authentications from this address; retry in {wait} s"),
        )
        .with_retry_after(wait)),
        None => Ok(()),
    }
}

/// Checks a new password against the policy and the old one, and stores its hash.
async fn set_password(
    app: &App,
    user: &User,
    old: &str,
    new: &str,
    now: OffsetDateTime,
) -> Result<User, ApiError> {
    rampart_access::password::check_policy(&user.name, new)
        .map_err(|w| ApiError::bad_request("weak_password", format!("new password: {w}")))?;
    if new == old {
        return Err(ApiError::bad_request(
            "weak_password",
            "new password: it must differ from the current one",
        ));
    }
    let hash = hash_password(new).await?;
    Ok(app
        .store
        .set_user_password(&user.name, &hash, false, now)
        .await?)
}

/// `POST /api/v1/login`.
pub(crate) async fn login(
    State(app): State<Arc<App>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    let name = req.token_name.as_deref().unwrap_or("cli");
    rampart_core::names::check_name("token_name", name)
        .map_err(|e| ApiError::bad_request("invalid_field", e))?;
    let ttl = req.ttl_days.unwrap_or(LOGIN_TOKEN_TTL_DAYS);
    if !(1..=365).contains(&ttl) {
        return Err(ApiError::bad_request(
            "invalid_field",
            "ttl_days: between 1 and 365",
        ));
    }
    let started = Instant::now();
    not_blocked(&app, client, started)?;
    let found = match rampart_access::check_user_name(&req.user) {
        Ok(()) => app.store.user_with_password(&req.user).await?,
        Err(_) => None,
    };
    let (user, phc) = match found {
        Some((user, phc)) if user.disabled_at.is_none() => (Some(user), phc),
        _ => (None, None),
    };
    let good = check_password(&app, &req.password, phc).await?;
    let Some(user) = user.filter(|_| good) else {
        tracing::warn!(%client, user = %req.user.chars().take(64).collect::<String>(), "login failed");
        app.auth_failures.record(client.ip(), started);
        return Err(bad_credentials());
    };
    let now = OffsetDateTime::now_utc();
    let user = match (&req.new_password, user.must_change_password) {
        (Some(new), _) => set_password(&app, &user, &req.password, new, now).await?,
        (None, true) => {
            return Err(ApiError::forbidden(
                "password_change_required",
                "this password is one-time: log in again with a new_password",
            ));
        }
        (None, false) => user,
    };
    let token = rampart_access::secret::new_token();
    app.store.revoke_api_token(&user.name, name, now).await?;
    let info = app
        .store
        .insert_api_token(&NewApiToken {
            user_id: user.id,
            name: name.to_owned(),
            token_hash: rampart_access::secret::digest(&token),
            shown: rampart_access::secret::shown(&token),
            role: user.role,
            groups: user.groups.clone(),
            created_at: now,
            expires_at: now + time::Duration::days(i64::from(ttl)),
        })
        .await?;
    tracing::info!(user = %user.name, token = %name, %client, "login");
    Ok((StatusCode::CREATED, Json(IssuedToken { token, info })))
}

/// `GET /api/v1/me`.
pub(crate) async fn me(caller: Caller) -> Json<Me> {
    let permissions = Permission::ALL
        .into_iter()
        .filter(|&p| caller.check(p, Target::Listing).is_ok())
        .collect();
    Json(Me {
        groups: caller.groups().map(|g| g.into_iter().collect()),
        token: caller.token.clone(),
        user: caller.user,
        permissions,
    })
}

/// `POST /api/v1/me/password`.
pub(crate) async fn change_password(
    State(app): State<Arc<App>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    caller: Caller,
    ApiJson(req): ApiJson<PasswordChange>,
) -> Result<Json<Done>, ApiError> {
    let started = Instant::now();
    not_blocked(&app, client, started)?;
    let phc = app
        .store
        .user_with_password(&caller.user.name)
        .await?
        .and_then(|(_, phc)| phc);
    if !check_password(&app, &req.current, phc).await? {
        app.auth_failures.record(client.ip(), started);
        return Err(ApiError::forbidden(
            "bad_credentials",
            "the current password is wrong",
        ));
    }
    set_password(
        &app,
        &caller.user,
        &req.current,
        &req.new,
        OffsetDateTime::now_utc(),
    )
    .await?;
    tracing::info!(user = %caller.user.name, "password changed");
    Ok(Json(Done { ok: true }))
}
