//! Compliance reports as documents: an agent's as OSCAL assessment results (the newest run of
//! each policy, each run's signed attestation embedded) or as a PDF, and a group's or the
//! fleet's as a PDF.

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
    /// The document: `oscal` (OSCAL 1.1 assessment results, JSON) or `pdf` (the PDF report:
    /// summary, controls, failures with remediation, waivers, attestations, evidence).
    #[schemars(extend("enum" = ["oscal", "pdf"]))]
    format: String,
    /// Only this policy's newest run (default: the newest run of every policy).
    #[serde(default)]
    #[schemars(length(min = 1, max = 256))]
    policy: Option<String>,
}

/// A PDF as a download named for what it covers.
fn pdf_response(doc: crate::reports::Document) -> Response {
    (
        [
            (header::CONTENT_TYPE, crate::reports::PDF.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", doc.file_name),
            ),
        ],
        doc.bytes,
    )
        .into_response()
}

/// `GET /api/v1/agents/{id}/report`.
pub(crate) async fn report(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let policy = super::text_param("policy", q.policy)?;
    match q.format.as_str() {
        "oscal" => {}
        "pdf" => {
            let doc = crate::reports::agent(&app, &id, policy.as_deref()).await?;
            return Ok(pdf_response(doc));
        }
        other => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("format: {other:?} is not a report format (expected oscal or pdf)"),
            ));
        }
    }
    let latest = app.store.latest_runs(&id, policy.as_deref()).await?;
    if latest.is_empty() {
        return Err(crate::reports::no_runs(&id, policy.as_deref()));
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
/// a run's policy id is whatever the agent's local policy called itself: the event stream's
/// links are built the same way.
fn enc(s: &str) -> String {
    rampart_events::chat::path_segment(s)
}

/// `?format=pdf&group=&os=&label=`.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct FleetReportQuery {
    /// The document: `pdf`.
    #[schemars(extend("enum" = ["pdf"]))]
    format: String,
    /// Only this group's agents.
    #[serde(default)]
    #[schemars(regex(pattern = rampart_core::names::NAME_PATTERN))]
    group: Option<String>,
    /// Only agents reporting this operating system.
    #[serde(default)]
    #[schemars(length(min = 1, max = 256))]
    os: Option<String>,
    /// Only agents with this label, `name=value`.
    #[serde(default)]
    #[schemars(
        length(min = 2, max = 256),
        regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}=.*$")
    )]
    label: Option<String>,
}

/// `GET /api/v1/report`: a group's or the fleet's PDF report, over the groups the caller may
/// see.
pub(crate) async fn fleet_report(
    State(app): State<Arc<App>>,
    caller: super::authorize::Caller,
    Query(q): Query<FleetReportQuery>,
) -> Result<Response, ApiError> {
    if q.format != "pdf" {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!(
                "format: {:?} is not a fleet report format (expected pdf)",
                q.format
            ),
        ));
    }
    let group = q.group.filter(|g| !g.is_empty());
    if let Some(g) = &group {
        rampart_core::names::check_name("group", g)
            .map_err(|e| ApiError::bad_request("invalid_query", e))?;
        caller.check(
            rampart_access::Permission::ResultsRead,
            rampart_access::Target::Group(g),
        )?;
    }
    let os = super::text_param("os", q.os.filter(|o| !o.is_empty()))?;
    let label = match super::text_param("label", q.label.filter(|l| !l.is_empty()))? {
        None => None,
        Some(l) => {
            let (name, value) = l.split_once('=').ok_or_else(|| {
                ApiError::bad_request("invalid_query", format!("label: name=value, not {l:?}"))
            })?;
            rampart_core::names::check_name("label", name)
                .map_err(|e| ApiError::bad_request("invalid_query", e))?;
            Some((name.to_owned(), value.to_owned()))
        }
    };
    let visible: Option<Vec<String>> = caller.groups().map(|g| g.into_iter().collect());
    let scope = rampart_store::FleetScope {
        visible: visible.as_deref(),
        group: group.as_deref(),
        os: os.as_deref(),
        label: label.as_ref().map(|(k, v)| (k.as_str(), v.as_str())),
    };
    let mut filters = Vec::new();
    if let Some(o) = &os {
        filters.push(("Operating system".to_owned(), o.clone()));
    }
    if let Some((k, v)) = &label {
        filters.push(("Label".to_owned(), format!("{k}={v}")));
    }
    if let Some(v) = &visible {
        filters.push(("Groups visible to the reader".to_owned(), v.join(", ")));
    }
    Ok(pdf_response(
        crate::reports::fleet(&app, &scope, filters).await?,
    ))
}
