//! Attestations and their keys: the JWKS at its well-known address, an agent's attestations,
//! offline bundles, key listing and rotation.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use schemars::JsonSchema;
use serde::Deserialize;

use super::authorize::Caller;
use crate::api::{
    AttestationDetail, AttestationKeyInfo, AttestationSummary, Jwks, KeyRotation, PublicJwk,
};
use crate::app::App;
use crate::error::ApiError;

/// `GET /.well-known/jwks.json`: public, so relying parties verify without an account.
pub(crate) async fn jwks(State(app): State<Arc<App>>) -> Result<Json<Jwks>, ApiError> {
    let (set, _, _) = crate::attest::key_set(&app, None).await?;
    let keys = set
        .keys
        .iter()
        .map(|k| {
            serde_json::to_value(k)
                .and_then(serde_json::from_value::<PublicJwk>)
                .map_err(ApiError::internal)
        })
        .collect::<Result<_, _>>()?;
    Ok(Json(Jwks { keys }))
}

/// `?policy=&limit=`.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct AttestationsQuery {
    /// Only this policy's attestations.
    #[serde(default)]
    #[schemars(length(min = 1, max = 256))]
    policy: Option<String>,
    /// At most this many, the newest run first (default 50, at most 1,000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<u32>,
}

/// `GET /api/v1/agents/{id}/attestations`.
pub(crate) async fn list(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<AttestationsQuery>,
) -> Result<Json<Vec<AttestationSummary>>, ApiError> {
    let policy = super::text_param("policy", q.policy)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", "limit: 1 to 1000"));
    }
    let rows = app
        .store
        .agent_attestations(&id, policy.as_deref(), limit)
        .await?;
    Ok(Json(rows.iter().map(AttestationSummary::from).collect()))
}

async fn of_agent(
    app: &App,
    id: &str,
    jti: &str,
) -> Result<rampart_store::StoredAttestation, ApiError> {
    app.store
        .attestation(jti)
        .await?
        .filter(|a| a.agent_id == id)
        .ok_or_else(|| ApiError::not_found("attestation", &format!("{jti} of agent {id}")))
}

/// `GET /api/v1/agents/{id}/attestations/{jti}`.
pub(crate) async fn show(
    State(app): State<Arc<App>>,
    Path((id, jti)): Path<(String, String)>,
) -> Result<Json<AttestationDetail>, ApiError> {
    let a = of_agent(&app, &id, &jti).await?;
    let (header, claims) = rampart_attest::decode_unverified(&a.jws).map_err(ApiError::internal)?;
    let alg = rampart_attest::Alg::ALL
        .into_iter()
        .find(|x| x.jws() == header.alg)
        .ok_or_else(|| {
            ApiError::internal(format!("attestation {jti} has algorithm {:?}", header.alg))
        })?;
    Ok(Json(AttestationDetail {
        summary: AttestationSummary::from(&a),
        alg,
        jws: a.jws,
        claims,
    }))
}

/// `GET /api/v1/agents/{id}/attestations/{jti}/bundle`.
pub(crate) async fn bundle(
    State(app): State<Arc<App>>,
    Path((id, jti)): Path<(String, String)>,
) -> Result<Json<rampart_attest::Bundle>, ApiError> {
    let a = of_agent(&app, &id, &jti).await?;
    Ok(Json(crate::attest::bundle(&app, &a).await?))
}

/// `GET /api/v1/attestation-keys`.
pub(crate) async fn keys(
    State(app): State<Arc<App>>,
) -> Result<Json<Vec<AttestationKeyInfo>>, ApiError> {
    let (_, states, rows) = crate::attest::key_set(&app, None).await?;
    rows.into_iter()
        .map(|k| {
            Ok(AttestationKeyInfo {
                published: states.iter().any(|s| s.kid == k.kid),
                alg: k.alg.parse().map_err(ApiError::internal)?,
                kid: k.kid,
                state: k.state,
                created_at: k.created_at,
                activated_at: k.activated_at,
                retired_at: k.retired_at,
            })
        })
        .collect::<Result<_, ApiError>>()
        .map(Json)
}

/// `?force=`.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct RotateQuery {
    /// Rotate even though the next key was published less than ten minutes ago.
    #[serde(default)]
    force: bool,
}

/// `POST /api/v1/attestation-keys/rotate`.
pub(crate) async fn rotate(
    State(app): State<Arc<App>>,
    caller: Caller,
    Query(q): Query<RotateQuery>,
) -> Result<Json<KeyRotation>, ApiError> {
    let event = caller
        .event(
            "attestation.key.rotate",
            "attestation-keys",
            rampart_audit::Outcome::Success,
        )
        .detail("force", q.force.to_string());
    let r = crate::attest::rotate(&app, event, q.force).await?;
    Ok(Json(KeyRotation {
        retired: r.retired,
        current: r.current,
        next: r.next,
    }))
}
