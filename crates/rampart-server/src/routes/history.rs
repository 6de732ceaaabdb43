//! Results history: runs, latest state, per-check history, diffs, fleet score over time.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use rampart_core::{CheckOutcome, Status};
use rampart_store::{LatestResult, RunDetail, RunSummary, ScorePoint};
use schemars::JsonSchema;
use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use crate::api::{CheckChange, CheckHistory, RunDiff};
use crate::app::App;
use crate::error::ApiError;

/// `?policy=&limit=`.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct RunsQuery {
    /// Only runs of this policy.
    policy: Option<String>,
    /// At most this many runs, newest first (default 50, at most 10,000).
    limit: Option<i64>,
}

pub(crate) async fn agent_runs(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<RunsQuery>,
) -> Result<Json<Vec<RunSummary>>, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 10_000);
    Ok(Json(
        app.store
            .agent_runs(&id, q.policy.as_deref(), limit)
            .await?,
    ))
}

/// `?policy=`.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct PolicyQuery {
    /// Only this policy's results.
    policy: Option<String>,
}

pub(crate) async fn latest(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<PolicyQuery>,
) -> Result<Json<Vec<LatestResult>>, ApiError> {
    Ok(Json(
        app.store.latest_results(&id, q.policy.as_deref()).await?,
    ))
}

/// `?limit=`.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct LimitQuery {
    /// At most this many points (default 1,000, at most 100,000).
    limit: Option<i64>,
}

pub(crate) async fn check_history(
    State(app): State<Arc<App>>,
    Path((id, policy, check)): Path<(String, String, String)>,
    Query(q): Query<LimitQuery>,
) -> Result<Json<CheckHistory>, ApiError> {
    let limit = q.limit.unwrap_or(1000).clamp(1, 100_000);
    let points = app.store.check_history(&id, &policy, &check, limit).await?;
    let current = app
        .store
        .latest_results(&id, Some(&policy))
        .await?
        .into_iter()
        .find(|l| l.check_id == check);
    if points.is_empty() && current.is_none() {
        return Err(ApiError::not_found(
            "check",
            &format!("{policy}/{check} on agent {id}"),
        ));
    }
    Ok(Json(CheckHistory { points, current }))
}

pub(crate) async fn run(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
) -> Result<Json<RunDetail>, ApiError> {
    app.store
        .run(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("run", &id))
}

fn change(a: Option<&CheckOutcome>, b: Option<&CheckOutcome>) -> CheckChange {
    let any = b.or(a);
    CheckChange {
        check_id: any.map(|c| c.id.clone()).unwrap_or_default(),
        title: any.map(|c| c.title.clone()).unwrap_or_default(),
        before: a.map(|c| c.status),
        after: b.map(|c| c.status),
    }
}

/// Compares two runs check by check.
pub(crate) fn diff_runs(a: RunDetail, b: RunDetail) -> RunDiff {
    let before: BTreeMap<&str, &CheckOutcome> =
        a.checks.iter().map(|c| (c.id.as_str(), c)).collect();
    let after: BTreeMap<&str, &CheckOutcome> =
        b.checks.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut ids: Vec<&str> = before.keys().chain(after.keys()).copied().collect();
    ids.sort_unstable();
    ids.dedup();
    let (mut newly_failing, mut newly_passing, mut other_changes, mut evidence_changed) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for id in ids {
        let (x, y) = (before.get(id).copied(), after.get(id).copied());
        let ch = change(x, y);
        match (x, y) {
            (Some(x), Some(y)) if x.status == y.status => {
                if x.evidence != y.evidence {
                    evidence_changed.push(ch);
                }
            }
            (_, Some(y)) if y.status == Status::Fail => newly_failing.push(ch),
            (_, Some(y)) if y.status == Status::Pass => newly_passing.push(ch),
            _ => other_changes.push(ch),
        }
    }
    RunDiff {
        from: a.run,
        to: b.run,
        newly_failing,
        newly_passing,
        other_changes,
        evidence_changed,
    }
}

pub(crate) async fn diff(
    State(app): State<Arc<App>>,
    Path((a, b)): Path<(String, String)>,
) -> Result<Json<RunDiff>, ApiError> {
    let ra = app
        .store
        .run(&a)
        .await?
        .ok_or_else(|| ApiError::not_found("run", &a))?;
    let rb = app
        .store
        .run(&b)
        .await?
        .ok_or_else(|| ApiError::not_found("run", &b))?;
    if ra.run.policy_id != rb.run.policy_id {
        return Err(ApiError::bad_request(
            "different_policies",
            format!(
                "run {a} is of policy {}, run {b} of {}",
                ra.run.policy_id, rb.run.policy_id
            ),
        ));
    }
    Ok(Json(diff_runs(ra, rb)))
}

/// `?days=30&bucket=day|hour`.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct ScoreQuery {
    /// How many days back (default 30).
    days: Option<i64>,
    /// `day` (the default) or `hour`.
    #[schemars(extend("enum" = ["day", "hour"]))]
    bucket: Option<String>,
}

pub(crate) async fn policy_score(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<ScoreQuery>,
) -> Result<Json<Vec<ScorePoint>>, ApiError> {
    let bucket = match q.bucket.as_deref().unwrap_or("day") {
        "day" => 86_400,
        "hour" => 3_600,
        other => {
            return Err(ApiError::bad_request(
                "invalid_bucket",
                format!("bucket {other:?}: 'day' or 'hour'"),
            ));
        }
    };
    let since = OffsetDateTime::now_utc() - Duration::days(q.days.unwrap_or(30).clamp(1, 3660));
    Ok(Json(
        app.store.policy_score_history(&id, since, bucket).await?,
    ))
}

/// `?agent=&policy=&status=&limit=`.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct FlatQuery {
    /// Only this agent's results.
    agent: Option<String>,
    /// Only this policy's results.
    policy: Option<String>,
    /// Only results with this status.
    #[schemars(extend("enum" = ["pass", "fail", "not_applicable", "not_run", "error", "waived"]))]
    status: Option<String>,
    /// At most this many rows.
    limit: Option<i64>,
}

pub(crate) async fn flat_results(
    State(app): State<Arc<App>>,
    Query(q): Query<FlatQuery>,
) -> Result<Json<Vec<rampart_store::FlatResult>>, ApiError> {
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(
            s.parse::<Status>()
                .map_err(|e| ApiError::bad_request("invalid_status", format!("status: {e}")))?,
        ),
    };
    let limit = q.limit.unwrap_or(1000).clamp(1, 100_000);
    // No stored agent or policy id holds a NUL, which PostgreSQL cannot even compare: such a
    // filter matches nothing.
    if [&q.agent, &q.policy]
        .into_iter()
        .flatten()
        .any(|v| v.contains('\0'))
    {
        return Ok(Json(Vec::new()));
    }
    Ok(Json(
        app.store
            .flat_results(q.agent.as_deref(), q.policy.as_deref(), status, limit)
            .await?,
    ))
}
