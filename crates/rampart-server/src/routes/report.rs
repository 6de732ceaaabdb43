//! An agent's compliance report as a document another program reads: OSCAL assessment results
//! over the newest run of each policy, each run's signed attestation embedded.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use rampart_core::PolicyInfo;
use rampart_report::oscal::{AssessedRun, Assessment, AttestationRef};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::app::App;
use crate::error::ApiError;

/// `?format=&policy=`.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct ReportQuery {
    /// The document: `oscal` (OSCAL 1.1 assessment results, JSON).
    #[schemars(extend("enum" = ["oscal"]))]
    format: String,
    /// Only this policy's newest run (default: the newest run of every policy).
    #[serde(default)]
    #[schemars(length(min = 1, max = 256))]
    policy: Option<String>,
}

/// `GET /api/v1/agents/{id}/report`.
pub(crate) async fn report(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    if q.format != "oscal" {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!(
                "format: {:?} is not a report format (expected oscal)",
                q.format
            ),
        ));
    }
    let policy = super::text_param("policy", q.policy)?;
    let latest = app.store.latest_runs(&id, policy.as_deref()).await?;
    if latest.is_empty() {
        let what = match &policy {
            Some(p) => format!("of policy {p} on agent {id}"),
            None => format!("on agent {id}"),
        };
        return Err(ApiError::not_found("run", &what));
    }
    // Everything is read before rendering, so the document is of one moment's data.
    let mut loaded = Vec::with_capacity(latest.len());
    for summary in &latest {
        let detail = app
            .store
            .run(&summary.id)
            .await?
            .ok_or_else(|| ApiError::not_found("run", &summary.id))?;
        let attestation = app.store.run_attestation(&summary.id).await?;
        let version = match summary.policy_version {
            Some(v) => app
                .store
                .policy_versions(&summary.policy_id)
                .await?
                .into_iter()
                .find(|pv| pv.version == v && pv.digest == summary.policy_digest),
            None => None,
        };
        let policy = PolicyInfo {
            id: summary.policy_id.clone(),
            file: version
                .as_ref()
                .map(|v| v.file_name.clone())
                .unwrap_or_default(),
            format: version
                .as_ref()
                .map(|v| v.format.clone())
                .unwrap_or_default(),
            sha256: summary.policy_digest.clone(),
            ..PolicyInfo::default()
        };
        loaded.push((detail, attestation, policy, version.is_some()));
    }
    // The host and scanner as the newest run saw them.
    let newest = loaded
        .iter()
        .map(|(d, ..)| &d.run)
        .max_by_key(|r| (r.started_at, r.id.clone()))
        .ok_or_else(|| ApiError::internal("no runs after loading them"))?;
    let runs = loaded
        .iter()
        .map(|(detail, att, policy, known_version)| AssessedRun {
            run_id: &detail.run.id,
            policy,
            policy_version: detail.run.policy_version,
            policy_href: detail
                .run
                .policy_version
                .filter(|_| *known_version)
                .map(|v| {
                    format!(
                        "/api/v1/policies/{}/versions/{v}",
                        enc(&detail.run.policy_id)
                    )
                }),
            started_at: detail.run.started_at,
            finished_at: detail.run.finished_at,
            results_digest: &detail.run.results_digest,
            checks: &detail.checks,
            warnings: &detail.run.warnings,
            attestation: att.as_ref().map(|a| AttestationRef {
                jti: &a.jti,
                kid: &a.kid,
                status: &a.status,
                issued_at: a.issued_at,
                expires_at: a.expires_at,
                jws: &a.jws,
                bundle_href: Some(format!(
                    "/api/v1/agents/{}/attestations/{}/bundle",
                    enc(&a.agent_id),
                    enc(&a.jti)
                )),
            }),
        })
        .collect();
    let bytes = rampart_report::oscal::render_assessment(&Assessment {
        generator: &newest.generator,
        agent_id: Some(&id),
        host: &newest.host,
        runs,
    })
    .map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// A path segment, percent-encoded (RFC 3986: everything but the unreserved characters), since
/// a run's policy id is whatever the agent's local policy called itself.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
