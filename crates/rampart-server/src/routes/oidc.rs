//! `/api/v1/oidc/login` and `/api/v1/oidc/callback`: a browser login through the operator's
//! OpenID provider (authorization code with PKCE), ending in the same session a password login
//! makes.
//!
//! The command line logs in the same way through the browser: `rampart login --oidc` listens
//! on a loopback port and starts the login with that port and a challenge (the S256 of a
//! verifier only it holds); the callback then sends the browser to the loopback port with a
//! one-time code instead of starting a session, and the CLI trades code and verifier for an
//! API token at `POST /api/v1/oidc/token` (the RFC 8252 pattern, with the server as the
//! relying party).
//!
//! The state is bound to the browser twice: its hash keys the login in flight in the store
//! (any replica can finish it, once), and the state itself rides in a short-lived
//! `SameSite=Lax` cookie the callback must bring back, so a code injected into someone else's
//! browser finishes nobody's login.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{AppendHeaders, IntoResponse, Response};
use rampart_access::oidc::{Pkce, claim_values, map_role};
use rampart_audit::{Event, Outcome};
use rampart_store::{NewUser, OidcExchange, OidcLogin};
use schemars::JsonSchema;
use serde::Deserialize;
use time::OffsetDateTime;

use super::body::ApiJson;
use crate::api::{IssuedToken, OidcTokenRequest};
use crate::app::App;
use crate::error::ApiError;
use crate::oidc::Oidc;

/// The cookie carrying the state between the two halves.
const STATE_COOKIE: &str = "__Host-rampart_oidc";

/// How long a login may take at the provider.
const LOGIN_TTL: time::Duration = time::Duration::minutes(10);

fn configured(app: &App) -> Result<&Oidc, ApiError> {
    app.oidc.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "oidc_not_configured",
            "this server has no OpenID provider configured (--oidc-issuer)",
        )
    })
}

fn provider_error(e: impl std::fmt::Display) -> ApiError {
    tracing::warn!(error = %e, "OpenID provider unavailable");
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "oidc_provider",
        format!("the OpenID provider could not be used: {e}"),
    )
}

/// How long the CLI has to trade its one-time code.
const EXCHANGE_TTL: time::Duration = time::Duration::minutes(2);

/// `GET /api/v1/oidc/login` query.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct LoginQuery {
    /// For `rampart login --oidc`: the loopback port the CLI listens on.
    #[serde(default)]
    #[schemars(range(min = 1024))]
    cli_port: Option<u16>,
    /// With `cli_port`: BASE64URL(SHA-256(a verifier the CLI keeps)), 43 characters.
    #[serde(default)]
    #[schemars(length(min = 43, max = 43), regex(pattern = r"^[A-Za-z0-9_-]{43}$"))]
    cli_challenge: Option<String>,
}

/// `GET /api/v1/oidc/login`: off to the provider.
pub(crate) async fn login(
    State(app): State<Arc<App>>,
    Query(q): Query<LoginQuery>,
) -> Result<(StatusCode, [(HeaderName, String); 2]), ApiError> {
    configured(&app)?;
    let cli = match (q.cli_port, q.cli_challenge) {
        (None, None) => None,
        (Some(port), Some(challenge))
            if port >= 1024
                && challenge.len() == 43
                && challenge
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Some((port, challenge))
        }
        _ => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "cli_port (1024 or above) and cli_challenge (43 base64url characters) go together",
            ));
        }
    };
    let (url, state_cookie) = start(&app, cli).await?;
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, url), (header::SET_COOKIE, state_cookie)],
    ))
}

/// Starts a login at the provider: the authorization URL to send the browser to and the
/// state cookie that ties the callback to this browser.
pub(crate) async fn start(
    app: &App,
    cli: Option<(u16, String)>,
) -> Result<(String, String), ApiError> {
    let oidc = configured(app)?;
    let state = rampart_access::secret::random_urlsafe(32);
    let nonce = rampart_access::secret::random_urlsafe(32);
    let pkce = Pkce::new();
    let url = oidc
        .authorization_url(&state, &nonce, &pkce.challenge)
        .await
        .map_err(provider_error)?;
    let now = OffsetDateTime::now_utc();
    app.store
        .insert_oidc_login(
            &rampart_access::secret::digest(&state),
            &OidcLogin {
                verifier: pkce.verifier,
                nonce,
                created_at: now,
                cli,
            },
            now - LOGIN_TTL,
        )
        .await?;
    let cookie = format!(
        "{STATE_COOKIE}={state}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
        LOGIN_TTL.whole_seconds()
    );
    Ok((url, cookie))
}

/// `GET /api/v1/oidc/callback` query: what the provider sends the browser back with.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct CallbackQuery {
    /// The authorization code.
    #[serde(default)]
    code: Option<String>,
    /// The state sent with the request.
    #[serde(default)]
    state: Option<String>,
    /// The issuer (RFC 9207), when the provider sends it.
    #[serde(default)]
    iss: Option<String>,
    /// The provider's error code, when the login failed there.
    #[serde(default)]
    error: Option<String>,
    /// Its description.
    #[serde(default)]
    error_description: Option<String>,
}

fn state_cookie(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, STATE_COOKIE)
}

fn cookie_value(headers: &HeaderMap, cookie: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == cookie)
        .map(|(_, value)| value.to_owned())
}

/// Marks a login started from the dashboard (`/ui/oidc`): its callback answers a redirect to
/// the dashboard instead of JSON. It only chooses where the browser lands.
const DASHBOARD_COOKIE: &str = "rampart_oidc_to";

/// The dashboard marker cookie, for `max_age` seconds (0 clears it).
pub(crate) fn dashboard_cookie(max_age: i64) -> String {
    format!(
        "{DASHBOARD_COOKIE}=ui; Path=/api/v1/oidc/callback; Secure; HttpOnly; SameSite=Lax; Max-Age={max_age}"
    )
}

/// How long a login may take, in seconds (the dashboard marker lives as long).
pub(crate) const LOGIN_SECS: i64 = LOGIN_TTL.whole_seconds();

/// `GET /api/v1/oidc/callback`: back from the provider; a session for the mapped user. A
/// login started from the dashboard that fails lands on its sign-in page, which says why.
pub(crate) async fn callback(
    State(app): State<Arc<App>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, ApiError> {
    let dashboard = cookie_value(&headers, DASHBOARD_COOKIE).as_deref() == Some("ui");
    match finish_login(&app, client, &headers, q).await {
        Err(e) if dashboard && !e.parts().0.is_server_error() => Ok((
            StatusCode::SEE_OTHER,
            AppendHeaders([
                (header::SET_COOKIE, dashboard_cookie(0)),
                (
                    header::LOCATION,
                    format!("/ui/login?oidc_error={}", e.parts().1),
                ),
            ]),
        )
            .into_response()),
        other => other,
    }
}

async fn finish_login(
    app: &Arc<App>,
    client: SocketAddr,
    headers: &HeaderMap,
    q: CallbackQuery,
) -> Result<Response, ApiError> {
    let app = app.clone();
    let oidc = configured(&app)?;
    let refused = |reason: String| refused_login(&app, client, reason);
    if let Some(error) = q.error {
        let why = format!(
            "the provider refused the login: {error}{}",
            q.error_description
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        );
        refused(why.clone()).await?;
        return Err(ApiError::unauthorized("oidc_refused", why));
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return Err(ApiError::bad_request(
            "invalid_query",
            "code and state are required",
        ));
    };
    // The browser that started this login, and no other.
    if !state_cookie(headers).is_some_and(|c| rampart_access::secret::same(&c, &state)) {
        refused("state does not match this browser's login".into()).await?;
        return Err(ApiError::bad_request(
            "oidc_state",
            "this login was not started in this browser (state cookie missing or different)",
        ));
    }
    let Some(pending) = app
        .store
        .take_oidc_login(&rampart_access::secret::digest(&state))
        .await?
    else {
        return Err(ApiError::bad_request(
            "oidc_state",
            "unknown or already used login state: start again",
        ));
    };
    if OffsetDateTime::now_utc() - pending.created_at > LOGIN_TTL {
        return Err(ApiError::bad_request(
            "oidc_state",
            "the login took longer than 10 minutes: start again",
        ));
    }
    if let Some(iss) = &q.iss
        && *iss != oidc.config.issuer
    {
        refused(format!("callback from issuer {iss:?}")).await?;
        return Err(ApiError::bad_request(
            "oidc_issuer",
            "the callback names another issuer (mix-up refused)",
        ));
    }
    let claims = match oidc.finish(&code, &pending.verifier, &pending.nonce).await {
        Ok(c) => c,
        Err(crate::oidc::OidcError::Token(e)) => {
            refused(e.to_string()).await?;
            return Err(ApiError::unauthorized("oidc_token", e.to_string()));
        }
        Err(e) => {
            refused(e.to_string()).await?;
            return Err(provider_error(e));
        }
    };
    let subject = format!("{}#{}", claims.iss, claims.sub);
    let values = claim_values(&claims, &oidc.config.role_claim);
    let Some(mapping) = map_role(
        &values,
        &oidc.config.mappings,
        oidc.config.default_role.as_ref(),
    ) else {
        refused(format!(
            "no role for {subject} (claim {:?}: {values:?})",
            oidc.config.role_claim
        ))
        .await?;
        return Err(ApiError::forbidden(
            "oidc_no_role",
            format!(
                "your account has no Rampart role: none of its {:?} values is mapped",
                oidc.config.role_claim
            ),
        ));
    };
    // The provider is the source of truth for its users' roles: set at every login.
    let user = match app.store.user_by_oidc_subject(&subject).await? {
        Some(u) if u.disabled_at.is_some() => {
            refused(format!("{} is disabled", u.name)).await?;
            return Err(ApiError::forbidden(
                "user_disabled",
                "this user is disabled",
            ));
        }
        Some(u) => {
            app.store
                .set_user_grant(&u.name, mapping.role, &mapping.groups)
                .await?
        }
        None => {
            let name = user_name(&app, &claims).await?;
            let user = app
                .store
                .insert_user(&NewUser {
                    name,
                    role: mapping.role,
                    groups: mapping.groups.clone(),
                    password_hash: None,
                    must_change_password: false,
                    oidc_subject: Some(subject.clone()),
                    created_at: OffsetDateTime::now_utc(),
                })
                .await?;
            app.audit
                .record(
                    Event::new(
                        "system",
                        "user.create",
                        format!("user:{}", user.name),
                        Outcome::Success,
                    )
                    .via("oidc")
                    .detail("subject", subject.clone())
                    .detail("role", user.role.to_string())
                    .detail("groups", user.groups.join(",")),
                )
                .await?;
            user
        }
    };
    let clear_state = (
        header::SET_COOKIE,
        format!("{STATE_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    // The command line's login: a one-time code back to its loopback port.
    if let Some((port, challenge)) = pending.cli {
        let code = rampart_access::secret::random_urlsafe(32);
        let now = OffsetDateTime::now_utc();
        app.store
            .insert_oidc_exchange(
                &rampart_access::secret::digest(&code),
                &OidcExchange {
                    user_name: user.name.clone(),
                    challenge,
                    created_at: now,
                },
                now - EXCHANGE_TTL,
            )
            .await?;
        return Ok((
            StatusCode::SEE_OTHER,
            AppendHeaders([
                (
                    header::LOCATION,
                    format!("http://127.0.0.1:{port}/callback?code={code}"),
                ),
                clear_state,
            ]),
        )
            .into_response());
    }
    let (cookie, started) = super::login::open_session(&app, user, client, headers).await?;
    app.audit
        .record(
            Event::new(
                &started.user.name,
                "session.start",
                format!("user:{}", started.user.name),
                Outcome::Success,
            )
            .via("oidc")
            .source(client.ip().to_string())
            .detail("subject", subject)
            .detail("role", started.user.role.to_string()),
        )
        .await?;
    // A login started from the dashboard lands on it.
    if cookie_value(headers, DASHBOARD_COOKIE).as_deref() == Some("ui") {
        return Ok((
            StatusCode::SEE_OTHER,
            AppendHeaders([
                (header::SET_COOKIE, cookie),
                clear_state,
                (header::SET_COOKIE, dashboard_cookie(0)),
                (header::LOCATION, "/ui/".to_owned()),
            ]),
        )
            .into_response());
    }
    // Two cookies: appended, as a second `Set-Cookie` must not replace the first.
    Ok((
        StatusCode::OK,
        AppendHeaders([(header::SET_COOKIE, cookie), clear_state]),
        Json(started),
    )
        .into_response())
}

/// `POST /api/v1/oidc/token`: the command line trades its one-time code and verifier for an
/// API token, as a password login would give.
pub(crate) async fn token(
    State(app): State<Arc<App>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<OidcTokenRequest>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    configured(&app)?;
    let name = req.token_name.as_deref().unwrap_or("cli");
    rampart_core::names::check_name("token_name", name)
        .map_err(|e| ApiError::bad_request("invalid_field", e))?;
    let ttl = req.ttl_days.unwrap_or(90);
    if !(1..=365).contains(&ttl) {
        return Err(ApiError::bad_request(
            "invalid_field",
            "ttl_days: between 1 and 365",
        ));
    }
    let refused = || {
        ApiError::unauthorized(
            "oidc_exchange",
            "unknown, used or expired code, or not this login's verifier: log in again",
        )
    };
    let Some(exchange) = app
        .store
        .take_oidc_exchange(&rampart_access::secret::digest(&req.code))
        .await?
    else {
        return Err(refused());
    };
    let challenge = Pkce::from_verifier(req.verifier.clone()).challenge;
    if OffsetDateTime::now_utc() - exchange.created_at > EXCHANGE_TTL
        || !rampart_access::secret::same(&challenge, &exchange.challenge)
    {
        refused_login(
            &app,
            client,
            "the CLI's code expired or its verifier did not match".into(),
        )
        .await?;
        return Err(refused());
    }
    let user = app
        .store
        .user(&exchange.user_name)
        .await?
        .filter(|u| u.disabled_at.is_none())
        .ok_or_else(refused)?;
    let issued = super::login::issue_token(&app, &user, name, u32::from(ttl)).await?;
    app.audit
        .record(
            Event::new(
                &user.name,
                "login",
                format!("user:{}", user.name),
                Outcome::Success,
            )
            .via("oidc")
            .source(client.ip().to_string())
            .detail("token", name)
            .detail("expires", issued.info.expires_at.date().to_string()),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// Records a refused OIDC login.
async fn refused_login(app: &App, client: SocketAddr, reason: String) -> Result<u64, ApiError> {
    let event = Event::new("-", "session.start", "oidc", Outcome::Failure)
        .via("oidc")
        .source(client.ip().to_string())
        .detail("reason", reason.chars().take(300).collect::<String>());
    app.audit.record(event).await
}

/// A new OIDC user's name: `preferred_username` when it is a valid, free name, else one made
/// from the subject (a local user of that name is never taken over).
async fn user_name(app: &App, claims: &rampart_access::oidc::IdClaims) -> Result<String, ApiError> {
    if let Some(wanted) = claims
        .other
        .get("preferred_username")
        .and_then(|v| v.as_str())
        .filter(|n| rampart_access::check_user_name(n).is_ok())
        && app.store.user_with_password(wanted).await?.is_none()
    {
        return Ok(wanted.to_owned());
    }
    let digest = rampart_access::secret::digest(&format!("{}#{}", claims.iss, claims.sub));
    Ok(format!("oidc-{}", &digest[..12]))
}
