//! Alert rules (docs/alerts.md): what operators want to be told about, and where. Admins
//! only (the same right as event destinations); every change is in the audit log.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rampart_alerts::{RuleDef, SubjectState};
use rampart_audit::Outcome;
use rampart_store::StoredRule;
use time::OffsetDateTime;

use super::admin::rfc3339;
use super::authorize::Caller;
use super::body::ApiJson;
use crate::api::{AlertRuleView, Done, FiringSubject};
use crate::app::App;
use crate::error::ApiError;

/// Rules a server keeps: each is judged against every event.
const MAX_RULES: usize = 100;
/// Firing subjects a view lists.
const FIRING_LISTED: u32 = 100;

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_alert_rule", detail)
}

async fn view(
    app: &App,
    r: StoredRule,
    destinations: &[String],
) -> Result<AlertRuleView, ApiError> {
    let rule: RuleDef = serde_json::from_str(&r.definition)
        .map_err(|e| ApiError::internal(format!("alert rule {}: {e}", r.name)))?;
    let (states, firing) = app.store.firing_alerts(&r.name, FIRING_LISTED).await?;
    let firing_subjects = states
        .into_iter()
        .filter_map(|s| {
            let state: SubjectState = serde_json::from_str(&s.state).ok()?;
            Some(FiringSubject {
                subject: s.subject,
                since: rfc3339(state.since),
                value: state.value,
                agent: state.about.agent.map(|a| a.id),
                group: state.about.group,
                policy: state.about.policy,
                check: state.about.check,
            })
        })
        .collect();
    let missing_destinations = rule
        .notify
        .iter()
        .filter(|n| !destinations.contains(n))
        .cloned()
        .collect();
    Ok(AlertRuleView {
        name: r.name,
        rule,
        missing_destinations,
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
        firing,
        firing_subjects,
    })
}

async fn destination_names(app: &App) -> Result<Vec<String>, ApiError> {
    Ok(app
        .store
        .destinations()
        .await?
        .into_iter()
        .map(|d| d.def.name)
        .collect())
}

/// `GET /api/v1/alert-rules`.
pub(crate) async fn list(
    State(app): State<Arc<App>>,
) -> Result<Json<Vec<AlertRuleView>>, ApiError> {
    let names = destination_names(&app).await?;
    let mut out = Vec::new();
    for r in app.store.alert_rules().await? {
        out.push(view(&app, r, &names).await?);
    }
    Ok(Json(out))
}

/// `GET /api/v1/alert-rules/{rule}`.
pub(crate) async fn get(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> Result<Json<AlertRuleView>, ApiError> {
    let r = app
        .store
        .alert_rule(&name)
        .await?
        .ok_or_else(|| ApiError::not_found("alert rule", &name))?;
    let names = destination_names(&app).await?;
    Ok(Json(view(&app, r, &names).await?))
}

/// `PUT /api/v1/alert-rules/{rule}`: every destination it notifies must exist.
pub(crate) async fn put(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(rule): ApiJson<RuleDef>,
) -> Result<(StatusCode, Json<AlertRuleView>), ApiError> {
    rampart_core::names::check_name("rule name", &name).map_err(invalid)?;
    rule.check().map_err(|e| invalid(e.0))?;
    let names = destination_names(&app).await?;
    if let Some(missing) = rule.notify.iter().find(|n| !names.contains(n)) {
        return Err(invalid(format!(
            "notify: no event destination {missing:?} (define it first: PUT /api/v1/event-destinations/{missing})"
        )));
    }
    let exists = app.store.alert_rule(&name).await?.is_some();
    if !exists && app.store.alert_rules().await?.len() >= MAX_RULES {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_alert_rules",
            format!("at most {MAX_RULES} alert rules: remove one first"),
        ));
    }
    let definition = serde_json::to_string(&rule).map_err(ApiError::internal)?;
    let (stored, created) = app
        .store
        .put_alert_rule(&name, &definition, OffsetDateTime::now_utc())
        .await?;
    app.audit
        .record(
            caller
                .event(
                    "alert_rule.put",
                    format!("alert-rule:{name}"),
                    Outcome::Success,
                )
                .detail("condition", rule.condition.kind())
                .detail("definition", definition.clone())
                .detail("enabled", rule.enabled.to_string()),
        )
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view(&app, stored, &names).await?)))
}

/// `DELETE /api/v1/alert-rules/{rule}`: the rule and its subjects' states (nothing more is
/// told; alerts already queued are still delivered).
pub(crate) async fn delete(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Done>, ApiError> {
    if !app.store.delete_alert_rule(&name).await? {
        return Err(ApiError::not_found("alert rule", &name));
    }
    app.audit
        .record(caller.event(
            "alert_rule.delete",
            format!("alert-rule:{name}"),
            Outcome::Success,
        ))
        .await?;
    Ok(Json(Done { ok: true }))
}
