//! The agent port (mTLS): heartbeats, policy downloads, renewal, result uploads.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_core::fleet::{
    AssignedPolicy, Heartbeat, HeartbeatResponse, RenewRequest, RenewResponse, RunReceipt,
    RunSubmission,
};
use rampart_store::{IngestOutcome, NewRun};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::auth::AgentAuth;
use super::body::ApiJson;
use crate::app::App;
use crate::error::ApiError;

pub(crate) async fn heartbeat(
    State(app): State<Arc<App>>,
    auth: AgentAuth,
    ApiJson(beat): ApiJson<Heartbeat>,
) -> Result<Json<HeartbeatResponse>, ApiError> {
    let started = std::time::Instant::now();
    let now = OffsetDateTime::now_utc();
    let id = &auth.agent.id;
    app.beat(id, now);
    let scan_now =
        auth.agent.scan_requested_at.is_some() && app.store.take_scan_request(id).await?;
    if scan_now {
        tracing::info!(agent = %id, "delivered scan-now request");
    }
    tracing::debug!(agent = %id, state = %beat.state, spooled = beat.spooled_runs, "heartbeat");
    let assignments = app
        .store
        .assignments_for_agent(id, &auth.agent.group)
        .await?
        .into_iter()
        .map(|a| AssignedPolicy {
            policy_id: a.policy_id,
            version: a.version,
            digest: a.digest,
            schedule: a.schedule,
        })
        .collect();
    app.metrics.heartbeat(started.elapsed().as_secs_f64());
    Ok(Json(HeartbeatResponse {
        server_time: now.format(&Rfc3339).unwrap_or_default(),
        heartbeat_secs: app.config.heartbeat.as_secs(),
        assignments,
        scan_now,
    }))
}

pub(crate) async fn policy(
    State(app): State<Arc<App>>,
    auth: AgentAuth,
    Path((policy_id, version)): Path<(String, i64)>,
) -> Result<Response, ApiError> {
    let assigned = app
        .store
        .assignments_for_agent(&auth.agent.id, &auth.agent.group)
        .await?
        .into_iter()
        .any(|a| a.policy_id == policy_id && a.version == version);
    if !assigned {
        return Err(ApiError::forbidden(
            "not_assigned",
            format!("policy {policy_id} version {version} is not assigned to this agent"),
        ));
    }
    let (meta, content) = app
        .store
        .policy_version(&policy_id, version)
        .await?
        .ok_or_else(|| ApiError::not_found("policy version", &format!("{policy_id}@{version}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/yaml".to_string()),
            (
                header::HeaderName::from_static("x-rampart-digest"),
                meta.digest,
            ),
        ],
        content,
    )
        .into_response())
}

pub(crate) async fn renew(
    State(app): State<Arc<App>>,
    auth: AgentAuth,
    ApiJson(req): ApiJson<RenewRequest>,
) -> Result<Json<RenewResponse>, ApiError> {
    let now = OffsetDateTime::now_utc();
    let issued = app
        .ca()
        .issue_agent(&req.csr_pem, &auth.agent.id, now)
        .map_err(|e| ApiError::bad_request("bad_csr", e.to_string()))?;
    app.store
        .record_renewal(&super::public::certificate_record(
            &issued,
            &auth.agent.id,
            now,
        ))
        .await?;
    tracing::info!(agent = %auth.agent.id, old_serial = %auth.identity.serial, serial = %issued.serial, "certificate renewed");
    app.audit
        .record(
            rampart_audit::Event::new(
                format!("agent:{}", auth.agent.id),
                "certificate.renew",
                format!("agent:{}", auth.agent.id),
                rampart_audit::Outcome::Success,
            )
            .via(format!("certificate:{}", auth.identity.serial))
            .detail("certificate", issued.serial.clone())
            .detail("previous", auth.identity.serial.clone()),
        )
        .await?;
    Ok(Json(RenewResponse {
        certificate_chain_pem: issued.chain_pem,
    }))
}

fn valid_run_id(id: &str) -> bool {
    (8..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(crate) async fn post_run(
    State(app): State<Arc<App>>,
    auth: AgentAuth,
    ApiJson(sub): ApiJson<RunSubmission>,
) -> Result<Json<RunReceipt>, ApiError> {
    if !valid_run_id(&sub.run_id) {
        return Err(ApiError::bad_request(
            "invalid_run_id",
            "run_id: 8–128 characters of letters, digits, '-' and '_'",
        ));
    }
    let mut report = sub.report;
    // The digest attestations will sign is the server's own reading of the content, never
    // the agent's word for it.
    let computed = rampart_core::digest::results_digest(&report);
    if computed != report.results_digest {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "results_digest_mismatch",
            format!(
                "report.results_digest {:?} is not the digest of the report's content ({computed})",
                report.results_digest
            ),
        ));
    }
    // Server waivers in force when the run started: applied before anything is stored, so
    // scores, history and the attestation all show them (the digest is recomputed with them).
    crate::waivers::apply(&app, &auth.agent, &mut report).await?;
    if report.policies.len() != 1 {
        return Err(ApiError::bad_request(
            "invalid_report",
            format!(
                "report.policies: exactly one policy per run, got {}",
                report.policies.len()
            ),
        ));
    }
    let Some(policy) = report.policies.pop() else {
        return Err(ApiError::bad_request(
            "invalid_report",
            "report.policies is empty",
        ));
    };
    if let Some(version) = sub.policy_version {
        let stored = app
            .policy_digest(&policy.policy.id, version)
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "policy_mismatch",
                    format!(
                        "policy {:?} has no version {version} on this server",
                        policy.policy.id
                    ),
                )
            })?;
        if stored != policy.policy.sha256 || stored != sub.policy_digest {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "policy_mismatch",
                format!(
                    "the run claims version {version} of policy {:?} (SHA-256 {stored}) but evaluated content with SHA-256 {} (policy_digest {})",
                    policy.policy.id, policy.policy.sha256, sub.policy_digest
                ),
            ));
        }
    }
    let mut summary = rampart_core::Summary::default();
    for c in &policy.checks {
        summary.add(c.status);
    }
    summary.finish();
    let now = OffsetDateTime::now_utc();
    app.beat(&auth.agent.id, now);
    let check_texts = rampart_store::outcome_texts(&policy.checks)?;
    let run = NewRun {
        id: sub.run_id.clone(),
        agent_id: auth.agent.id.clone(),
        policy_id: policy.policy.id.clone(),
        policy_version: sub.policy_version,
        policy_digest: sub.policy_digest,
        trigger: sub.trigger,
        started_at: report.started_at,
        finished_at: report.finished_at,
        received_at: now,
        summary,
        results_digest: report.results_digest,
        host: report.host,
        warnings: report.warnings,
        generator: report.generator,
        checks: policy.checks,
        check_texts,
        cert_sha256: auth.identity.fingerprint.clone(),
        cert_not_after: auth.identity.not_after,
    };
    let draft = crate::attest::draft(&app, &auth.agent, &auth.identity, &run)?;
    let outcome = crate::ingest::submit(&app, run)
        .await
        .map_err(ApiError::internal)?;
    // A resend of a stored run was matched the first time.
    if outcome == IngestOutcome::Stored && !sub.observables.is_empty() {
        crate::intel::record_matches(&app, &auth.agent.id, &sub.run_id, &sub.observables).await;
    }
    // A new run's attestation is issued in a moment; a resend is answered with its run's.
    let attestation = match outcome {
        IngestOutcome::Stored => {
            let jti = draft.jti().to_owned();
            app.attest.enqueue(draft).await?;
            Some(jti)
        }
        IngestOutcome::Duplicate => {
            crate::attest::resent(&app, &auth.agent.id, &sub.run_id).await?
        }
    };
    Ok(Json(RunReceipt {
        attestation,
        run_id: sub.run_id,
        outcome: match outcome {
            IngestOutcome::Stored => "stored",
            IngestOutcome::Duplicate => "duplicate",
        }
        .into(),
    }))
}
