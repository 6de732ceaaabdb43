//! Who is calling: API tokens in the `Authorization` header on the API port (judged by
//! `authorize`), client certificates on the agent port.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use rampart_pki::AgentIdentity;
use rampart_store::{Agent, AgentStatus};

use crate::app::App;
use crate::error::ApiError;
use crate::tls::PeerCert;

/// The `WWW-Authenticate` challenge: TAXII takes HTTP Basic too.
pub(crate) fn challenge(taxii: bool) -> &'static str {
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

/// The API token of an `Authorization` header: `Bearer TOKEN`, or on TAXII HTTP Basic with
/// the token as the password (any user name) — what TAXII clients and many SIEM connectors send.
pub(crate) fn credential_of(header: &str, basic_allowed: bool) -> Result<String, ApiError> {
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
