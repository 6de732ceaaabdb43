//! Unauthenticated endpoints of the API port: health, the OpenAPI document, the CA, enrolment.

use std::sync::Arc;

use axum::Json;
use axum::extract::ConnectInfo;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use rampart_audit::{Event, Outcome};
use rampart_core::fleet::{EnrolRequest, EnrolResponse};
use rampart_pki::TokenError;
use rampart_store::{Backend, CertificateRecord, NewAgent, Redemption};
use schemars::JsonSchema;
use serde::Serialize;
use time::OffsetDateTime;

use super::body::ApiJson;
use crate::app::App;
use crate::error::ApiError;

/// Liveness.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Health {
    /// Always `ok` when the server answers.
    status: &'static str,
    /// `sqlite` or `postgres`.
    backend: &'static str,
    /// Server version.
    version: &'static str,
}

pub(crate) async fn health(State(app): State<Arc<App>>) -> Json<Health> {
    Json(Health {
        status: "ok",
        backend: match app.store.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        },
        version: env!("CARGO_PKG_VERSION"),
    })
}

pub(crate) async fn openapi(State(app): State<Arc<App>>) -> Response {
    let doc = super::openapi::openapi_document(Some(&app.api_url), Some(&app.agent_url));
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec_pretty(&doc).unwrap_or_default(),
    )
        .into_response()
}

pub(crate) async fn root_pem(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        app.ca().root_pem().to_string(),
    )
        .into_response()
}

pub(crate) async fn crl(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    let now = OffsetDateTime::now_utc();
    let revoked: Vec<(String, OffsetDateTime)> = app
        .store
        .revoked_certificates(now)
        .await?
        .into_iter()
        .map(|r| (r.serial, r.revoked_at))
        .collect();
    // The CRL number only has to increase; seconds since the epoch do, across replicas too.
    let number = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    let der = app
        .ca()
        .crl(&revoked, number, now, now + time::Duration::hours(1))
        .map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "application/pkix-crl")], der).into_response())
}

fn token_error(e: TokenError) -> ApiError {
    // A token that is not even a JWT is a refused credential like any other (RFC 6750
    // `invalid_token`), not a malformed request.
    let code = match &e {
        TokenError::Malformed(_) => "token_malformed",
        TokenError::Forged | TokenError::WrongIssuer(_) => "token_forged",
        TokenError::Expired(_) => "token_expired",
        TokenError::NotYetValid(_) => "token_not_yet_valid",
        TokenError::WrongAudience { .. } => "token_wrong_audience",
    };
    ApiError::unauthorized(code, e.to_string())
}

/// The rule the enrolment request's schema states (`FIELD_PATTERN`, 1–255 characters).
fn field(name: &str, value: &str) -> Result<(), ApiError> {
    let chars = value.chars().count();
    if !(1..=255).contains(&chars) || value.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("{name}: must be 1–255 printable characters"),
        ));
    }
    Ok(())
}

/// The store's record of a certificate just issued.
pub(crate) fn certificate_record(
    issued: &rampart_pki::IssuedCert,
    agent_id: &str,
    now: OffsetDateTime,
) -> CertificateRecord {
    CertificateRecord {
        serial: issued.serial.clone(),
        agent_id: agent_id.to_string(),
        fingerprint: issued.fingerprint.clone(),
        not_before: issued.not_before,
        not_after: issued.not_after,
        issued_at: now,
        revoked_at: None,
        revocation_reason: None,
    }
}

pub(crate) async fn enrol(
    State(app): State<Arc<App>>,
    ConnectInfo(client): ConnectInfo<std::net::SocketAddr>,
    ApiJson(req): ApiJson<EnrolRequest>,
) -> Result<Json<EnrolResponse>, ApiError> {
    let now = OffsetDateTime::now_utc();
    // The credential first: an anonymous caller learns nothing about the rest of its request
    // (and no CSR is parsed) until its token is genuine.
    let claims = app
        .tokens
        .verify(&req.token, &app.enrol_audience, now)
        .map_err(token_error)?;
    for (name, value) in [
        ("hostname", &req.hostname),
        ("os", &req.os),
        ("arch", &req.arch),
        ("agent_version", &req.agent_version),
    ] {
        field(name, value)?;
    }
    let agent_id = match &claims.agent {
        Some(id) => id.clone(),
        None => uuid::Uuid::new_v4().to_string(),
    };
    // Sign first (no side effect), so a bad CSR does not spend a token use.
    let issued = app
        .ca()
        .issue_agent(&req.csr_pem, &agent_id, now)
        .map_err(|e| ApiError::bad_request("bad_csr", e.to_string()))?;
    // A genuine token refused (replayed, expired, revoked) is worth an auditor's eye; a forged
    // one never got this far.
    let event = |outcome| {
        Event::new(
            format!("agent:{agent_id}"),
            "agent.enrol",
            format!("agent:{agent_id}"),
            outcome,
        )
        .via(format!("enrolment-token:{}", claims.jti))
        .source(client.ip().to_string())
    };
    let refused = match app
        .store
        .redeem_enrolment_token(&claims.jti, now, rampart_pki::TOKEN_LEEWAY)
        .await?
    {
        Redemption::Accepted(t) => Ok(t),
        Redemption::Unknown => Err(ApiError::unauthorized(
            "token_unknown",
            "enrolment token was not issued by this server",
        )),
        Redemption::Exhausted => Err(ApiError::unauthorized(
            "token_already_used",
            "enrolment token already used (replay refused)",
        )),
        Redemption::Expired => Err(ApiError::unauthorized(
            "token_expired",
            "enrolment token expired",
        )),
        Redemption::Revoked => Err(ApiError::unauthorized(
            "token_revoked",
            "enrolment token was revoked by an admin",
        )),
    };
    let token = match refused {
        Ok(t) => t,
        Err(e) => {
            let (_, code, _) = e.parts();
            app.audit
                .record(event(Outcome::Failure).detail("reason", code))
                .await?;
            return Err(e);
        }
    };
    if let Some(id) = &token.reenrol_agent_id {
        if *id != agent_id {
            return Err(ApiError::unauthorized(
                "token_forged",
                "token agent claim does not match its record",
            ));
        }
        if app.store.agent(id).await?.is_none() {
            return Err(ApiError::not_found("agent", id));
        }
    }
    let agent = NewAgent {
        id: agent_id.clone(),
        hostname: req.hostname,
        os: req.os,
        arch: req.arch,
        agent_version: req.agent_version,
        labels: token.labels.clone(),
        group: token.group.clone(),
    };
    let cert = certificate_record(&issued, &agent_id, now);
    app.store.enrol_agent(&agent, &cert, now).await?;
    tracing::info!(agent = %agent_id, hostname = %agent.hostname, group = %agent.group, serial = %issued.serial, reenrol = token.reenrol_agent_id.is_some(), "agent enrolled");
    app.audit
        .record(
            event(Outcome::Success)
                .detail("hostname", agent.hostname.clone())
                .detail("group", agent.group.clone())
                .detail("certificate", issued.serial.clone())
                .detail("reenrol", token.reenrol_agent_id.is_some().to_string()),
        )
        .await?;
    Ok(Json(EnrolResponse {
        agent_id,
        certificate_chain_pem: issued.chain_pem,
        root_pem: app.ca().root_pem().to_string(),
        agent_url: app.agent_url.clone(),
        heartbeat_secs: app.config.heartbeat.as_secs(),
    }))
}
