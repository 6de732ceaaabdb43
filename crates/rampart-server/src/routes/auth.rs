//! Who is calling: admin bearer tokens on the API port, client certificates on the agent port.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use rampart_pki::AgentIdentity;
use rampart_store::{Agent, AgentStatus, ApiToken, Authenticated};

use crate::app::App;
use crate::error::ApiError;
use crate::tls::PeerCert;

/// An authenticated admin call.
pub(crate) struct Admin {
    #[allow(dead_code)]
    pub label: String,
}

impl FromRequestParts<Arc<App>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Admin, ApiError> {
        let client = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        // TAXII clients and SIEM connectors send HTTP Basic; the admin API takes only bearer
        // tokens, so a password prompt never appears on it.
        let taxii = parts.uri.path().starts_with("/taxii2/");
        // No credential at all is not a guess: answered with the challenge, not counted (a
        // browser or a client finding out how to authenticate is not an attack).
        let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "missing_token",
                "an admin bearer token is required (Authorization: Bearer …)",
            )
            .with_challenge(challenge(taxii)));
        };
        let now = Instant::now();
        if let Some(wait) = client.and_then(|ip| app.auth_failures.blocked(ip, now)) {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_failures",
                format!("too many failed authentications from this address; retry in {wait} s"),
            )
            .with_retry_after(wait));
        }
        let verdict = match header.to_str() {
            Err(_) => Err(ApiError::unauthorized(
                "bad_authorization",
                "the Authorization header is not text",
            )),
            Ok(header) => match admin_token(header, taxii) {
                Err(e) => Err(e),
                Ok(token) => {
                    let hash = rampart_access::secret::digest(token.trim());
                    judge(app.store.api_token_by_hash(&hash).await?)
                }
            },
        };
        verdict.map_err(|e| {
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
}

/// Whether a token found by its hash is good now: live, unexpired, its owner enabled, and an
/// admin's (the only role the API knows until endpoints name their permissions).
fn judge(found: Option<Authenticated<ApiToken>>) -> Result<Admin, ApiError> {
    let Some(Authenticated {
        credential: token,
        user,
    }) = found
    else {
        return Err(ApiError::unauthorized(
            "invalid_token",
            "admin token not recognised",
        ));
    };
    let now = time::OffsetDateTime::now_utc();
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
    if token.role != rampart_access::Role::Admin || user.role != rampart_access::Role::Admin {
        return Err(ApiError::forbidden(
            "insufficient_role",
            "this endpoint needs an admin token",
        ));
    }
    Ok(Admin { label: token.name })
}

/// The `WWW-Authenticate` challenge: TAXII takes HTTP Basic too.
fn challenge(taxii: bool) -> &'static str {
    if taxii {
        "Basic realm=\"rampart\", Bearer realm=\"rampart\""
    } else {
        "Bearer realm=\"rampart\""
    }
}

/// The scheme of an `Authorization` header and its credentials; schemes are case-insensitive
/// (RFC 9110 §11.1).
fn scheme<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    let (scheme, rest) = header.split_once(' ')?;
    scheme.eq_ignore_ascii_case(name).then(|| rest.trim())
}

/// The admin token of an `Authorization` header: `Bearer TOKEN`, or on TAXII HTTP Basic with
/// the token as the password (any user name) — what TAXII clients and many SIEM connectors send.
fn admin_token(header: &str, basic_allowed: bool) -> Result<String, ApiError> {
    use base64::Engine as _;
    if let Some(token) = scheme(header, "Bearer") {
        return Ok(token.to_owned());
    }
    if let Some(encoded) = scheme(header, "Basic").filter(|_| basic_allowed) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "bad_authorization",
                    "Basic credentials are not base64 of user:password",
                )
            })?;
        return match decoded.split_once(':') {
            Some((_, password)) => Ok(password.to_owned()),
            None => Err(ApiError::unauthorized(
                "bad_authorization",
                "Basic credentials must be user:password",
            )),
        };
    }
    Err(ApiError::unauthorized(
        "bad_authorization",
        if basic_allowed {
            "Authorization must be 'Bearer <token>' (or Basic with the token as password)"
        } else {
            "Authorization must be 'Bearer <token>' (HTTP Basic is accepted on TAXII only)"
        },
    ))
}

/// An agent, identified by the client certificate its connection presented.
pub(crate) struct AgentAuth {
    pub agent: Agent,
    pub identity: AgentIdentity,
}

impl FromRequestParts<Arc<App>> for AgentAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<AgentAuth, ApiError> {
        let Some(PeerCert(Some(der))) = parts.extensions.get::<PeerCert>().cloned() else {
            return Err(ApiError::unauthorized(
                "no_client_certificate",
                "a client certificate is required",
            ));
        };
        let identity = rampart_pki::agent_identity(&der).map_err(ApiError::internal)?;
        // The handshake already refused revoked serials; this covers a revocation that landed
        // between the handshake and this request on a kept-alive connection.
        if app.revoked.contains(&identity.serial) {
            return Err(ApiError::forbidden(
                "certificate_revoked",
                "this certificate has been revoked",
            ));
        }
        let agent = app.store.agent(&identity.agent_id).await?.ok_or_else(|| {
            ApiError::forbidden("unknown_agent", "no agent with this certificate's id")
        })?;
        if agent.status == AgentStatus::Revoked {
            return Err(ApiError::forbidden(
                "agent_revoked",
                "this agent has been revoked; re-enrol with a token an admin issues for it",
            ));
        }
        Ok(AgentAuth { agent, identity })
    }
}
