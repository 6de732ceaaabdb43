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
use rampart_audit::{Event, Outcome};
use rampart_store::{NewApiToken, User};
use time::OffsetDateTime;

use super::authorize::Caller;
use super::body::ApiJson;
use crate::api::{
    Done, IssuedToken, LoginRequest, Me, PasswordChange, SessionRequest, SessionStarted,
};
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

pub(crate) async fn hash_password(password: &str) -> Result<String, ApiError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || rampart_access::password::hash(&password))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

fn bad_credentials() -> ApiError {
    ApiError::unauthorized("bad_credentials", "user name or password is wrong")
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

/// The user a password login names, once the password is right (and, if it was one-time,
/// replaced by a new one that meets the policy).
pub(crate) async fn password_user(
    app: &App,
    action: &str,
    client: SocketAddr,
    name: &str,
    password: &str,
    new_password: Option<&str>,
) -> Result<User, ApiError> {
    let started = Instant::now();
    app.auth_failures
        .refuse_blocked(Some(client.ip()), started)?;
    let found = match rampart_access::check_user_name(name) {
        Ok(()) => app.store.user_with_password(name).await?,
        Err(_) => None,
    };
    // Why, for the audit log only: the client hears "bad credentials" whatever the reason.
    let (user, phc, reason) = match found {
        Some((user, phc)) if user.disabled_at.is_none() => (Some(user), phc, "wrong password"),
        Some(_) => (None, None, "user disabled"),
        None => (None, None, "unknown user"),
    };
    let good = check_password(app, password, phc).await?;
    let shown: String = name.chars().take(64).collect();
    let failed = |reason: &str| {
        Event::new("-", action, format!("user:{shown}"), Outcome::Failure)
            .via("password")
            .source(client.ip().to_string())
            .detail("reason", reason)
    };
    let Some(user) = user.filter(|_| good) else {
        tracing::warn!(%client, user = %shown, "login failed");
        app.auth_failures.record(client.ip(), started);
        app.audit.record(failed(reason)).await?;
        return Err(bad_credentials());
    };
    match (new_password, user.must_change_password) {
        (Some(new), _) => {
            let user = set_password(app, &user, password, new, OffsetDateTime::now_utc()).await?;
            let event = Event::new(
                &user.name,
                "password.change",
                format!("user:{}", user.name),
                Outcome::Success,
            )
            .via("password")
            .source(client.ip().to_string());
            app.audit.record(event).await?;
            Ok(user)
        }
        (None, true) => {
            app.audit
                .record(failed("one-time password must be changed"))
                .await?;
            Err(ApiError::forbidden(
                "password_change_required",
                "this password is one-time: log in again with a new_password",
            ))
        }
        (None, false) => Ok(user),
    }
}

/// The audit event of a successful password login.
pub(crate) fn logged_in(user: &User, action: &str, client: SocketAddr) -> Event {
    Event::new(
        &user.name,
        action,
        format!("user:{}", user.name),
        Outcome::Success,
    )
    .via("password")
    .source(client.ip().to_string())
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
    let user = password_user(
        &app,
        "login",
        client,
        &req.user,
        &req.password,
        req.new_password.as_deref(),
    )
    .await?;
    let issued = issue_token(&app, &user, name, ttl).await?;
    let info = issued.info.clone();
    tracing::info!(user = %user.name, token = %name, %client, "login");
    app.audit
        .record(
            logged_in(&user, "login", client)
                .detail("token", name)
                .detail("expires", info.expires_at.date().to_string()),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// A login's API token for `user`, named `name`, valid `ttl_days`: the user's live token of
/// that name is replaced (logging in again on the same machine does not pile tokens up).
pub(crate) async fn issue_token(
    app: &App,
    user: &User,
    name: &str,
    ttl_days: u32,
) -> Result<IssuedToken, ApiError> {
    let now = OffsetDateTime::now_utc();
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
            expires_at: now + time::Duration::days(i64::from(ttl_days)),
        })
        .await?;
    Ok(IssuedToken { token, info })
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
    app.auth_failures
        .refuse_blocked(Some(client.ip()), started)?;
    let phc = app
        .store
        .user_with_password(&caller.user.name)
        .await?
        .and_then(|(_, phc)| phc);
    if !check_password(&app, &req.current, phc).await? {
        app.auth_failures.record(client.ip(), started);
        app.audit
            .record(
                caller
                    .event(
                        "password.change",
                        format!("user:{}", caller.user.name),
                        Outcome::Failure,
                    )
                    .detail("reason", "wrong current password"),
            )
            .await?;
        return Err(ApiError::forbidden(
            "bad_credentials",
            "the current password is wrong",
        ));
    }
    let now = OffsetDateTime::now_utc();
    set_password(&app, &caller.user, &req.current, &req.new, now).await?;
    // Every browser session of the user ends (they log in again with the new password); API
    // tokens stay.
    app.store
        .revoke_user_credentials(caller.user.id, false, now)
        .await?;
    tracing::info!(user = %caller.user.name, "password changed");
    app.audit
        .record(caller.event(
            "password.change",
            format!("user:{}", caller.user.name),
            Outcome::Success,
        ))
        .await?;
    Ok(Json(Done { ok: true }))
}

/// The session cookie. The `__Host-` prefix makes browsers insist on `Secure`, `Path=/` and no
/// `Domain`, so no other host or path can set or shadow it.
pub(crate) const SESSION_COOKIE: &str = "__Host-rampart_session";

pub(crate) fn session_cookie(value: &str, max_age_secs: u64) -> String {
    format!(
        "{SESSION_COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}"
    )
}

/// `POST /api/v1/session`: a password login for a browser.
pub(crate) async fn start_session(
    State(app): State<Arc<App>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: axum::http::HeaderMap,
    ApiJson(req): ApiJson<SessionRequest>,
) -> Result<
    (
        StatusCode,
        [(axum::http::HeaderName, String); 1],
        Json<SessionStarted>,
    ),
    ApiError,
> {
    let user = password_user(
        &app,
        "session.start",
        client,
        &req.user,
        &req.password,
        req.new_password.as_deref(),
    )
    .await?;
    let (cookie, started) = open_session(&app, user, client, &headers).await?;
    app.audit
        .record(logged_in(&started.user, "session.start", client))
        .await?;
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::SET_COOKIE, cookie)],
        Json(started),
    ))
}

/// Starts a browser session for `user` (logged in by password or OIDC): the row, and the
/// cookie that carries it.
pub(crate) async fn open_session(
    app: &App,
    user: User,
    client: SocketAddr,
    headers: &axum::http::HeaderMap,
) -> Result<(String, SessionStarted), ApiError> {
    let now = OffsetDateTime::now_utc();
    let id = rampart_access::secret::new_session_id();
    let csrf = rampart_access::secret::new_csrf_token();
    let max = app.config.session_max;
    let expires_at = now + max;
    let user_agent: String = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(256)
        .collect();
    app.store
        .insert_session(&rampart_store::Session {
            id_hash: rampart_access::secret::digest(&id),
            user_id: user.id,
            csrf_token: csrf.clone(),
            created_at: now,
            last_seen_at: now,
            expires_at,
            revoked_at: None,
            client: client.ip().to_string(),
            user_agent,
        })
        .await?;
    tracing::info!(user = %user.name, %client, "session started");
    Ok((
        session_cookie(&id, max.as_secs()),
        SessionStarted {
            user,
            csrf_token: csrf,
            expires_at,
            idle_minutes: app.config.session_idle.as_secs() / 60,
        },
    ))
}

/// `DELETE /api/v1/session`: log this browser out.
pub(crate) async fn end_session(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<([(axum::http::HeaderName, String); 1], Json<Done>), ApiError> {
    let Some(id_hash) = &caller.session else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_a_session",
            "this call was made with an API token, not a session: revoke the token instead",
        ));
    };
    close_session(&app, &caller, id_hash).await?;
    Ok((
        [(axum::http::header::SET_COOKIE, session_cookie("", 0))],
        Json(Done { ok: true }),
    ))
}

/// Ends the caller's browser session `id_hash`: the row revoked, the audit entry written.
pub(crate) async fn close_session(
    app: &App,
    caller: &Caller,
    id_hash: &str,
) -> Result<(), ApiError> {
    app.store
        .revoke_session(id_hash, OffsetDateTime::now_utc())
        .await?;
    tracing::info!(user = %caller.user.name, "session ended");
    app.audit
        .record(caller.event(
            "session.end",
            format!("user:{}", caller.user.name),
            Outcome::Success,
        ))
        .await?;
    Ok(())
}

/// `POST /api/v1/me/logout-everywhere`: end every session of the caller (API tokens stay).
pub(crate) async fn logout_everywhere(
    State(app): State<Arc<App>>,
    caller: Caller,
) -> Result<Json<Done>, ApiError> {
    let (_, sessions) = app
        .store
        .revoke_user_credentials(caller.user.id, false, OffsetDateTime::now_utc())
        .await?;
    tracing::info!(user = %caller.user.name, sessions, "logged out everywhere");
    app.audit
        .record(
            caller
                .event(
                    "session.end_all",
                    format!("user:{}", caller.user.name),
                    Outcome::Success,
                )
                .detail("sessions", sessions.to_string()),
        )
        .await?;
    Ok(Json(Done { ok: true }))
}
