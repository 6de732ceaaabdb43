//! Waivers governed on the server: applied to runs as they are stored, and their expiry
//! recorded in the audit log.
//!
//! A waiver applies to a run when it was approved before the run started and the run started
//! on or before its last day; what it covers then reads `waived`, with the waiver's id, in the
//! stored results, the scores, the history and the run's attestation. Later runs after it
//! expired are judged without it.

use std::sync::Arc;
use std::time::Duration;

use rampart_audit::{Event, Outcome};
use rampart_core::ScanReport;
use rampart_policy::waiver::{Waiver, Waivers};
use tokio::sync::watch;

use axum::http::StatusCode;
use rampart_store::{StoredWaiver, WaiverScope};
use time::OffsetDateTime;

use crate::api::WaiverRequest;
use crate::app::App;
use crate::error::ApiError;
use crate::routes::Caller;

/// Applies the waivers in force for `agent` when the run started; returns how many checks
/// they covered. The report's summaries and results digest are refreshed.
pub(crate) async fn apply(
    app: &App,
    agent: &rampart_store::Agent,
    report: &mut ScanReport,
) -> Result<usize, ApiError> {
    let in_force = app
        .store
        .waivers_in_force(&agent.id, &agent.group, report.started_at)
        .await?;
    if in_force.is_empty() {
        return Ok(0);
    }
    let mut waivers = Waivers::default();
    for w in in_force {
        let expires = time::Date::parse(
            &w.expires_on,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .map_err(|e| ApiError::internal(format!("waiver {}: {e}", w.id)))?;
        let approver = w.decided_by.clone().unwrap_or_default();
        match Waiver::approved(&w.id, &w.check, &w.justification, &approver, expires) {
            Ok(x) => waivers.waivers.push(x),
            Err(e) => {
                tracing::error!(waiver = %w.id, error = %e, "a stored waiver cannot be applied")
            }
        }
    }
    let day = report.started_at.to_offset(time::UtcOffset::UTC).date();
    waivers.apply(report, day);
    Ok(report
        .policies
        .iter()
        .flat_map(|p| &p.checks)
        .filter(|c| c.waiver.as_ref().is_some_and(|w| w.id.is_some()))
        .count())
}

/// The longest a waiver may run: risks are accepted for a while, then looked at again.
pub(crate) const MAX_DAYS: i64 = 366;

pub(crate) fn today() -> time::Date {
    OffsetDateTime::now_utc().date()
}

/// As the API reports it: an approved waiver past its last day is `expired`.
pub(crate) fn view(mut w: StoredWaiver) -> StoredWaiver {
    if w.state == "approved" && w.expires_on < today().to_string() {
        w.state = "expired".into();
    }
    w
}

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_waiver", detail)
}

/// Records a request for a waiver (pending until someone else decides) and its audit entry.
/// The caller's right to ask is checked by whoever calls: the API's table or the dashboard.
pub(crate) async fn request(
    app: &App,
    caller: &Caller,
    req: WaiverRequest,
) -> Result<StoredWaiver, ApiError> {
    if req.check.len() > 256 {
        return Err(invalid("check: at most 256 characters"));
    }
    rampart_policy::waiver::split_check(&req.check).map_err(invalid)?;
    let justification = req.justification.trim();
    if justification.is_empty() || justification.chars().count() > 2000 {
        return Err(invalid("justification: 1 to 2,000 characters"));
    }
    let until = time::Date::parse(
        &req.until,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| {
        invalid(format!(
            "until: a date like 2027-03-31, not {:?}",
            req.until
        ))
    })?;
    let now = OffsetDateTime::now_utc();
    if until < now.date() || until > now.date() + time::Duration::days(MAX_DAYS) {
        return Err(invalid(format!(
            "until: from today to {MAX_DAYS} days ahead (a waiver is looked at again at least yearly)"
        )));
    }
    match &req.scope {
        WaiverScope::Agent(id) => {
            app.store
                .agent(id)
                .await?
                .ok_or_else(|| invalid(format!("scope: no agent {id:?}")))?;
        }
        WaiverScope::Group(g) => rampart_core::names::check_name("group", g).map_err(invalid)?,
        WaiverScope::Fleet => {}
    }
    let w = StoredWaiver {
        id: format!("w-{}", uuid::Uuid::now_v7().simple()),
        check: req.check.trim().to_owned(),
        scope: req.scope,
        justification: justification.to_owned(),
        expires_on: until.to_string(),
        state: "pending".into(),
        requested_by: caller.user.name.clone(),
        requested_at: now,
        decided_by: None,
        decided_at: None,
        decision_note: None,
    };
    app.store.insert_waiver(&w).await?;
    let scope = serde_json::to_string(&w.scope).map_err(ApiError::internal)?;
    app.audit
        .record(
            caller
                .event(
                    "waiver.request",
                    format!("waiver:{}", w.id),
                    Outcome::Success,
                )
                .detail("check", w.check.clone())
                .detail("scope", scope)
                .detail("until", w.expires_on.clone())
                .detail("justification", w.justification.clone()),
        )
        .await?;
    Ok(w)
}

/// Approves or denies a pending waiver, as someone other than who asked; records it in the
/// audit log.
pub(crate) async fn decide(
    app: &App,
    caller: &Caller,
    id: &str,
    approve: bool,
    note: Option<String>,
) -> Result<StoredWaiver, ApiError> {
    let w = app
        .store
        .waiver(id)
        .await?
        .ok_or_else(|| ApiError::not_found("waiver", id))?;
    if w.requested_by == caller.user.name {
        return Err(ApiError::forbidden(
            "self_approval",
            "a waiver is approved or denied by someone other than who asked for it",
        ));
    }
    let note = note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > 2000) {
        return Err(invalid("note: at most 2,000 characters"));
    }
    let decided = app
        .store
        .decide_waiver(
            id,
            approve,
            &caller.user.name,
            note.as_deref(),
            OffsetDateTime::now_utc(),
        )
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "not_pending",
                format!("waiver {id} was {} already", w.state),
            )
        })?;
    let action = if approve {
        "waiver.approve"
    } else {
        "waiver.deny"
    };
    let mut event = caller
        .event(action, format!("waiver:{id}"), Outcome::Success)
        .detail("requested_by", w.requested_by.clone())
        .detail("check", w.check.clone());
    if let Some(n) = &note {
        event = event.detail("note", n.clone());
    }
    app.audit.record(event).await?;
    Ok(view(decided))
}

/// Records each approved waiver's expiry in the audit log once, whichever replica sees it first.
pub(crate) async fn expiry(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {}
        }
        let expired = match app
            .store
            .take_expired_waivers(time::OffsetDateTime::now_utc())
            .await
        {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for expired waivers");
                continue;
            }
        };
        for w in expired {
            let event = Event::new(
                "system",
                "waiver.expire",
                format!("waiver:{}", w.id),
                Outcome::Success,
            )
            .detail("check", w.check.clone())
            .detail("expires_on", w.expires_on.clone());
            if let Err(e) = app.audit.record(event).await {
                tracing::error!(waiver = %w.id, error = ?e, "could not record a waiver's expiry");
            }
        }
    }
}
