//! The audit log: searched newest first (actor, action or prefix, target, outcome, days),
//! paged, and verified whole on request against every signed checkpoint.

use axum::extract::{Query, Request, State};
use rampart_access::{Permission, Target};
use rampart_audit::{Entry, Outcome};
use rampart_store::AuditQuery;
use rampart_ui::{AuditFilters, AuditLogPage, AuditRow, Notice, Select, VerificationView};
use serde::{Deserialize, Serialize};

use super::{AppState, PageResult, Viewer, html, when};
use crate::error::ApiError;

/// The page's path (and the navigation entry it lights).
pub(super) const PATH: &str = "/ui/audit";

/// Entries per page.
const PAGE: u32 = 100;

/// The page's query: the search, the page (`before`), and whether to verify.
#[derive(Deserialize, Serialize, Default)]
pub(super) struct AuditSearch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    before: Option<u64>,
    #[serde(default, skip_serializing)]
    verify: Option<String>,
}

/// A day from a date field: `YYYY-MM-DD`.
fn day(name: &str, value: Option<&str>) -> Result<Option<time::Date>, ApiError> {
    value
        .map(|v| {
            time::Date::parse(v, time::macros::format_description!("[year]-[month]-[day]")).map_err(
                |_| {
                    ApiError::bad_request(
                        "invalid_query",
                        format!("{name}: a day like 2026-12-31, not {v:?}"),
                    )
                },
            )
        })
        .transpose()
}

/// `GET /ui/audit`.
pub(super) async fn log(
    State(app): AppState,
    Query(mut q): Query<AuditSearch>,
    req: Request,
) -> PageResult {
    let (parts, _) = req.into_parts();
    let viewer = Viewer::of(&app, &parts, PATH).await?;
    viewer.require(Permission::AuditRead, Target::AllGroups)?;
    let verify = q.verify.as_deref() == Some("1");
    // An empty field of the form is no filter.
    for f in [
        &mut q.actor,
        &mut q.action,
        &mut q.target,
        &mut q.outcome,
        &mut q.since,
        &mut q.until,
    ] {
        if f.as_deref().is_some_and(str::is_empty) {
            *f = None;
        }
    }
    let query = (|| {
        Ok::<_, ApiError>(AuditQuery {
            actor: crate::routes::text_param("actor", q.actor.clone())?,
            action: crate::routes::text_param("action", q.action.clone())?,
            target: crate::routes::text_param("target", q.target.clone())?,
            outcome: q
                .outcome
                .as_deref()
                .map(str::parse::<Outcome>)
                .transpose()
                .map_err(|e| ApiError::bad_request("invalid_query", format!("outcome: {e}")))?,
            since: day("since", q.since.as_deref())?.map(|d| d.midnight().assume_utc()),
            // The whole last day.
            until: day("until", q.until.as_deref())?
                .map(|d| d.midnight().assume_utc() + time::Duration::DAY),
            before: q.before,
            limit: PAGE,
        })
    })()
    .map_err(|e| viewer.refuse(e))?;

    let load = async {
        let rows = app.store.audit_search(&query).await?;
        let size = app.store.audit_size().await?;
        let latest = app.store.audit_latest_checkpoint().await?;
        Ok::<_, rampart_store::StoreError>((rows, size, latest))
    };
    let (rows, size, latest) = load.await.map_err(|e| viewer.refuse(ApiError::from(e)))?;
    let mut entries = Vec::with_capacity(rows.len());
    for r in &rows {
        // An unreadable row is tampering: the page says so rather than skipping it.
        let e = Entry::parse(r.body.as_bytes()).map_err(|e| {
            viewer.refuse(ApiError::internal(format!(
                "audit entry {} is unreadable ({e}): the log was tampered with",
                r.index
            )))
        })?;
        entries.push(row(e));
    }
    let older = (rows.len() == PAGE as usize)
        .then(|| rows.last().map(|r| r.index))
        .flatten()
        .map(|before| {
            let next = AuditSearch {
                before: Some(before),
                verify: None,
                ..q
            };
            serde_urlencoded::to_string(&next).unwrap_or_default()
        });

    let (mut notice, mut verification) = (None, None);
    if verify {
        match app.audit.verify_stored(&app.store).await {
            Ok(Some(v)) => {
                verification = Some(VerificationView {
                    intact: v.problems.is_empty(),
                    entries: v.entries,
                    checkpoints: v.checkpoints,
                    checkpoints_matched: v.checkpoints_matched,
                    latest: v.latest.map(|(s, t)| (s, when(t))),
                    unsigned: v.unsigned,
                    problems: v.problems,
                    took_ms: v.took.as_millis(),
                });
            }
            Ok(None) => {
                notice = Some(Notice::Refused(
                    "A verification is running already: try again in a moment.".to_owned(),
                ));
            }
            Err(e) => return Err(viewer.refuse(e)),
        }
    }
    let filters = AuditFilters {
        actor: query.actor.unwrap_or_default(),
        action: query.action.unwrap_or_default(),
        target: query.target.unwrap_or_default(),
        since: query
            .since
            .map(|t| t.date().to_string())
            .unwrap_or_default(),
        until: query
            .until
            .map(|t| (t.date() - time::Duration::DAY).to_string())
            .unwrap_or_default(),
    };
    let outcome = Select::new(
        "outcome",
        "Outcome",
        "Any",
        ["success", "failure", "denied"].map(str::to_owned),
        query.outcome.map(|o| o.as_str()),
    );
    let page = AuditLogPage {
        shell: viewer.shell,
        notice,
        filters,
        outcome,
        entries,
        older,
        size,
        latest: latest.map(|c| (c.size, when(c.created_at))),
        verification,
    };
    html(&page)
}

fn row(e: Entry) -> AuditRow {
    let t = e.time.to_offset(time::UtcOffset::UTC);
    AuditRow {
        index: e.index,
        time: format!(
            "{} {:02}:{:02}:{:02}",
            t.date(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        actor: e.event.actor,
        via: e.event.via,
        source: e.event.source,
        action: e.event.action,
        target: e.event.target,
        outcome: e.event.outcome.as_str().to_owned(),
        details: e
            .event
            .detail
            .into_iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect(),
    }
}
