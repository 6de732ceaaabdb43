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

use crate::app::App;
use crate::error::ApiError;

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
