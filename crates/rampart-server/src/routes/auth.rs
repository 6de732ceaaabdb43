//! Who is calling: admin bearer tokens on the API port, client certificates on the agent port.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use rampart_pki::AgentIdentity;
use rampart_store::{Agent, AgentStatus};

use crate::app::App;
use crate::bootstrap::token_hash;
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
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "missing_token",
                    "an admin bearer token is required (Authorization: Bearer …)",
                )
            })?;
        let token = admin_token(header)?;
        match app.store.admin_token(&token_hash(token.trim())).await? {
            Some(label) => Ok(Admin { label }),
            None => Err(ApiError::unauthorized(
                "invalid_token",
                "admin token not recognised",
            )),
        }
    }
}

/// The admin token of an `Authorization` header: `Bearer TOKEN`, or HTTP Basic with the token
/// as the password (any user name) — what TAXII clients and many SIEM connectors send.
fn admin_token(header: &str) -> Result<String, ApiError> {
    use base64::Engine as _;
    if let Some(token) = header.strip_prefix("Bearer ") {
        return Ok(token.to_owned());
    }
    if let Some(encoded) = header.strip_prefix("Basic ") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
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
        "Authorization must be 'Bearer <token>' (or Basic with the token as password)",
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
