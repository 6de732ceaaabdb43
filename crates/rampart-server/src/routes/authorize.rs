//! Authorization in one place. Every user endpoint of the route table names the permission it
//! requires and what it acts on ([`On`]); this layer, wrapped around each of them, finds the
//! caller's credential, judges it (live, unexpired, its user enabled), resolves the agent group
//! the request touches from its path, and checks the grant before the handler runs or the body
//! is read. Handlers never decide who may call them; those that list things take the
//! [`Caller`] to filter by its groups.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rampart_access::{Grant, Permission, Scope, Target};
use rampart_audit::{Event, Outcome};
use rampart_store::{ApiToken, Authenticated, GroupOf, Session, User};
use time::OffsetDateTime;

use super::auth::{challenge, credential_of};
use crate::app::App;
use crate::error::ApiError;

/// What a user endpoint acts on, for group-limited grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum On {
    /// A fleet-wide thing (a policy, a feed, the intel index).
    Fleet,
    /// A list the handler filters to the caller's groups, or a group named in the body that
    /// the handler checks with [`Caller::check`].
    Listing,
    /// Something computed over every group's agents.
    AllGroups,
    /// The agent named by the path's `{id}`.
    Agent,
    /// The run named by the path's `{id}`, or both runs of `{a}` and `{b}`.
    Run,
    /// The enrolment token named by the path's `{jti}`.
    EnrolmentToken,
    /// The assignment target of the path's `{kind}` and `{name}`.
    Assignment,
}

/// Who is calling, as judged: available to handlers of user endpoints.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The user, as they are now.
    pub user: User,
    /// The name of the API token used (`session` for a browser session).
    pub token: String,
    /// The session's id hash, when the call came with a session cookie.
    pub session: Option<String>,
    /// That session's CSRF token, read with it: a change must echo it.
    csrf_token: Option<String>,
    /// What the token carries.
    token_grant: Grant,
    /// The client's address.
    pub client: Option<std::net::IpAddr>,
}

impl Caller {
    /// Whether both the token and its user (as they are now: a demoted user's older tokens
    /// shrink with them) allow `permission` on `target`.
    pub(crate) fn check(&self, permission: Permission, target: Target<'_>) -> Result<(), ApiError> {
        self.token_grant
            .check(permission, target)
            .and_then(|()| self.user.grant().check(permission, target))
            .map_err(|denied| ApiError::forbidden("permission_denied", denied.to_string()))
    }

    /// The groups the caller may see, or `None` for the whole fleet.
    pub(crate) fn groups(&self) -> Option<BTreeSet<String>> {
        match (&self.token_grant.scope, &self.user.grant().scope) {
            (Scope::All, Scope::All) => None,
            (Scope::Groups(g), Scope::All) | (Scope::All, Scope::Groups(g)) => Some(g.clone()),
            (Scope::Groups(a), Scope::Groups(b)) => Some(a.intersection(b).cloned().collect()),
        }
    }

    /// An audit event of this caller doing `action` to `target`: who, with which credential,
    /// from where.
    pub(crate) fn event(&self, action: &str, target: impl Into<String>, outcome: Outcome) -> Event {
        let via = if self.session.is_some() {
            "session".to_owned()
        } else {
            format!("token:{}", self.token)
        };
        let event = Event::new(self.user.name.clone(), action, target, outcome).via(via);
        match self.client {
            Some(ip) => event.source(ip.to_string()),
            None => event,
        }
    }

    /// The session's CSRF token, when the call came with a session cookie.
    pub(crate) fn csrf_token(&self) -> Option<&str> {
        self.csrf_token.as_deref()
    }

    /// Whether `sent` is the session's CSRF token (compared in constant time); never for a
    /// call made without a session.
    pub(crate) fn csrf_matches(&self, sent: &str) -> bool {
        self.csrf_token
            .as_deref()
            .is_some_and(|expected| rampart_access::secret::same(sent, expected))
    }

    /// Whether the caller may see things of `group`.
    pub(crate) fn sees(&self, group: &str) -> bool {
        self.groups().is_none_or(|g| g.contains(group))
    }
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &Arc<App>) -> Result<Caller, ApiError> {
        // Put there by `enforce`; missing only if the route table gave a handler that takes a
        // caller no user authentication, which the endpoint test would catch.
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::internal("a user endpoint without the authorization layer"))
    }
}

/// The layer: authenticate, resolve the target, check, then run the handler with the caller.
pub(crate) async fn enforce(
    app: Arc<App>,
    permission: Permission,
    on: On,
    mut req: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let caller = match authenticate(&app, &parts).await {
        Ok(c) if c.session.is_some() && !parts.method.is_safe() => match csrf(&c, &parts) {
            Ok(()) => c,
            Err(e) => return e.into_response(),
        },
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let params = match RawPathParams::from_request_parts(&mut parts, &app).await {
        Ok(p) => p
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<Vec<_>>(),
        Err(e) => return e.into_response(),
    };
    if let Err(e) = judge(&app, &caller, permission, on, &params).await {
        tracing::info!(user = %caller.user.name, token = %caller.token, permission = %permission,
            path = %parts.uri.path(), "request refused");
        // A refusal is evidence of someone reaching beyond their role: on the record. Only
        // authenticated callers get here, and each refusal is one small row.
        if e.parts().0 == axum::http::StatusCode::FORBIDDEN {
            let event = caller
                .event("access.denied", parts.uri.path(), Outcome::Denied)
                .detail("permission", permission.to_string())
                .detail("method", parts.method.as_str());
            if let Err(audit) = app.audit.record(event).await {
                return audit.into_response();
            }
        }
        return e.into_response();
    }
    parts.extensions.insert(caller);
    req = Request::from_parts(parts, body);
    next.run(req).await
}

async fn judge(
    app: &App,
    caller: &Caller,
    permission: Permission,
    on: On,
    params: &[(String, String)],
) -> Result<(), ApiError> {
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let lookups: Vec<GroupOf<'_>> = match on {
        On::Fleet => return caller.check(permission, Target::Fleet),
        On::Listing => return caller.check(permission, Target::Listing),
        On::AllGroups => return caller.check(permission, Target::AllGroups),
        On::Agent => param("id").map(GroupOf::Agent).into_iter().collect(),
        On::Run => ["id", "a", "b"]
            .into_iter()
            .filter_map(param)
            .map(GroupOf::Run)
            .collect(),
        On::EnrolmentToken => param("jti")
            .map(GroupOf::EnrolmentToken)
            .into_iter()
            .collect(),
        On::Assignment => match (param("kind"), param("name")) {
            (Some("group"), Some(group)) => return caller.check(permission, Target::Group(group)),
            (Some("agent"), Some(agent)) => vec![GroupOf::Agent(agent)],
            // A bad kind: the handler says what is wrong, once the role is known to allow it.
            _ => return caller.check(permission, Target::Listing),
        },
    };
    // The role first, so a caller without the permission learns nothing about the target.
    caller.check(permission, Target::Listing)?;
    if caller.groups().is_none() {
        return Ok(());
    }
    for of in lookups {
        // Nothing of that name: the handler answers 404 as it would for anyone.
        if let Some(group) = app.store.group_of(of).await? {
            caller.check(permission, Target::Group(&group))?;
        }
    }
    Ok(())
}

/// Finds and judges the request's credential. Failures are counted per client address, and an
/// address with too many is refused for a while before its credential is even looked at.
pub(crate) async fn authenticate(app: &App, parts: &Parts) -> Result<Caller, ApiError> {
    let client = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    // TAXII clients and SIEM connectors send HTTP Basic; the rest of the API takes only bearer
    // tokens, so a password prompt never appears on it.
    let taxii = parts.uri.path().starts_with("/taxii2/");
    let now = Instant::now();
    // No credential at all is not a guess: answered with the challenge, not counted (a
    // browser or a client finding out how to authenticate is not an attack).
    let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
        let Some(session) = session_cookie(parts) else {
            return Err(ApiError::unauthorized(
                "missing_token",
                "an API token is required (Authorization: Bearer …)",
            )
            .with_challenge(challenge(taxii)));
        };
        app.auth_failures.refuse_blocked(client, now)?;
        let hash = rampart_access::secret::digest(&session);
        let found = app.store.session_by_hash(&hash).await?;
        return judge_session(app, found, OffsetDateTime::now_utc())
            .map(|c| Caller { client, ..c })
            .inspect_err(|_| {
                if let Some(ip) = client {
                    app.auth_failures.record(ip, now);
                }
            });
    };
    app.auth_failures.refuse_blocked(client, now)?;
    let verdict = match header.to_str() {
        Err(_) => Err(ApiError::unauthorized(
            "bad_authorization",
            "the Authorization header is not text",
        )),
        Ok(header) => match credential_of(header, taxii) {
            Err(e) => Err(e),
            Ok(token) => {
                let hash = rampart_access::secret::digest(token.trim());
                let found = app.store.api_token_by_hash(&hash).await?;
                judge_token(app, found, OffsetDateTime::now_utc())
            }
        },
    };
    verdict.map(|c| Caller { client, ..c }).map_err(|e| {
        let (_, code, _) = e.parts();
        // The reason and the address, never the credential.
        tracing::warn!(
            client = %client.map_or_else(|| "unknown".to_owned(), |c| c.to_string()),
            path = %parts.uri.path(),
            reason = code,
            "authentication failed"
        );
        if let Some(ip) = client {
            app.auth_failures.record(ip, now);
        }
        e.with_challenge(challenge(taxii))
    })
}

/// Whether a token found by its hash is good at `now`: live, unexpired, its owner enabled.
fn judge_token(
    app: &App,
    found: Option<Authenticated<ApiToken>>,
    now: OffsetDateTime,
) -> Result<Caller, ApiError> {
    let Some(Authenticated {
        credential: token,
        user,
    }) = found
    else {
        return Err(ApiError::unauthorized(
            "invalid_token",
            "API token not recognised",
        ));
    };
    if token.revoked_at.is_some() {
        return Err(ApiError::unauthorized(
            "token_revoked",
            "this token was revoked",
        ));
    }
    if token.expires_at <= now {
        return Err(ApiError::unauthorized(
            "token_expired",
            "this token has expired",
        ));
    }
    if user.disabled_at.is_some() {
        return Err(ApiError::unauthorized(
            "user_disabled",
            "this token's user is disabled",
        ));
    }
    // Last use is kept to the minute, off the request's path.
    if token
        .last_used_at
        .is_none_or(|t| now - t >= time::Duration::MINUTE)
    {
        let (store, id) = (app.store.clone(), token.id);
        tokio::spawn(async move {
            if let Err(e) = store.touch_api_token(id, now).await {
                tracing::warn!(error = %e, "could not record a token's last use");
            }
        });
    }
    Ok(Caller {
        token_grant: token.grant(),
        token: token.name,
        session: None,
        csrf_token: None,
        user,
        client: None,
    })
}

/// The session id of the request's session cookie, if it carries one.
fn session_cookie(parts: &Parts) -> Option<String> {
    parts
        .headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == super::login::SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}

/// Whether a session found by its hash is good at `now`: live, within its absolute and idle
/// timeouts, its owner enabled. A session carries its user's whole grant.
fn judge_session(
    app: &App,
    found: Option<Authenticated<Session>>,
    now: OffsetDateTime,
) -> Result<Caller, ApiError> {
    let Some(Authenticated {
        credential: session,
        user,
    }) = found
    else {
        return Err(ApiError::unauthorized(
            "invalid_session",
            "session not recognised",
        ));
    };
    if session.revoked_at.is_some() {
        return Err(ApiError::unauthorized(
            "session_ended",
            "this session was logged out",
        ));
    }
    let idle = time::Duration::try_from(app.config.session_idle).unwrap_or(time::Duration::HOUR);
    if session.expires_at <= now || session.last_seen_at + idle <= now {
        return Err(ApiError::unauthorized(
            "session_expired",
            "this session has expired: log in again",
        ));
    }
    if user.disabled_at.is_some() {
        return Err(ApiError::unauthorized(
            "user_disabled",
            "this session's user is disabled",
        ));
    }
    // The idle timeout moves forward with use, in steps well under it.
    let step = std::cmp::min(idle / 30_i32, time::Duration::MINUTE);
    if now - session.last_seen_at >= step {
        let (store, id) = (app.store.clone(), session.id_hash.clone());
        tokio::spawn(async move {
            if let Err(e) = store.touch_session(&id, now, step).await {
                tracing::warn!(error = %e, "could not record a session's last request");
            }
        });
    }
    Ok(Caller {
        token_grant: user.grant(),
        token: "session".to_owned(),
        client: None,
        session: Some(session.id_hash),
        csrf_token: Some(session.csrf_token),
        user,
    })
}

/// A state-changing request of a session must echo the session's CSRF token in
/// `X-CSRF-Token` (another site's page can make the browser send the cookie, never read the
/// token). API tokens need none: no browser attaches them by itself.
fn csrf(caller: &Caller, parts: &Parts) -> Result<(), ApiError> {
    let sent = parts
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match &caller.csrf_token {
        Some(expected) if rampart_access::secret::same(sent, expected) => Ok(()),
        _ => Err(ApiError::forbidden(
            "csrf_failed",
            "a change made with a session needs the session's CSRF token in X-CSRF-Token",
        )),
    }
}
