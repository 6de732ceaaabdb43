//! One check across the fleet: every host's latest result of it, since when, with evidence.

use std::collections::BTreeSet;

use axum::extract::{Path, Query, Request, State};
use rampart_access::{Permission, Target};
use rampart_core::{ObservationKind, RuleVerdict, Status};
use rampart_ui::{CheckPage, EvidenceLine, HostResult, Select, StatusCounts};
use serde::Deserialize;

use super::{AppState, PageResult, Scope, Viewer, html, when};
use crate::error::ApiError;

/// Hosts listed at most; the counts above the list cover them all up to this many too.
const MAX_HOSTS: u32 = 2000;

/// The statuses a viewer can filter by, in menu order.
const STATUSES: [Status; 6] = [
    Status::Fail,
    Status::Pass,
    Status::NotApplicable,
    Status::Error,
    Status::NotRun,
    Status::Waived,
];

/// The page's filters.
#[derive(Deserialize)]
pub(super) struct CheckQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    group: Option<String>,
}

/// What the engine saw for a check, rule by rule, as the pages show it.
pub(super) fn evidence(c: &rampart_core::CheckOutcome) -> Vec<EvidenceLine> {
    c.evidence
        .iter()
        .map(|e| EvidenceLine {
            rule: e.rule.clone(),
            verdict: verdict(e.verdict).to_owned(),
            observations: e.observations.iter().map(observation).collect(),
        })
        .collect()
}

fn verdict(v: RuleVerdict) -> &'static str {
    match v {
        RuleVerdict::Found => "found",
        RuleVerdict::NotFound => "not found",
        RuleVerdict::Invalid => "could not be evaluated",
        RuleVerdict::Skipped => "skipped",
    }
}

fn observation(o: &rampart_core::Observation) -> String {
    let place = match (o.kind, o.line) {
        (ObservationKind::File, Some(line)) => format!("{}:{line}", o.target),
        _ => o.target.clone(),
    };
    match (&o.text, &o.detail) {
        (Some(text), _) => format!("{place}: {text}"),
        (None, Some(detail)) => format!("{place}: {detail}"),
        (None, None) => place,
    }
}

/// `GET /ui/checks/{policy}/{check}`.
pub(super) async fn check(
    State(app): AppState,
    Path((policy_id, check_id)): Path<(String, String)>,
    Query(q): Query<CheckQuery>,
    req: Request,
) -> PageResult {
    let (parts, _) = req.into_parts();
    let viewer = Viewer::of(&app, &parts, "/ui/").await?;
    viewer.require(Permission::ResultsRead, Target::Listing)?;
    let bad = |e: String| viewer.refuse(ApiError::bad_request("invalid_query", e));
    for (name, value) in [("policy", &policy_id), ("check", &check_id)] {
        if value.is_empty() || value.len() > 256 || value.chars().any(char::is_control) {
            return Err(bad(format!("{name}: 1 to 256 printable characters")));
        }
    }
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(s.parse::<Status>().map_err(|_| {
            bad(format!(
                "status: one of {}",
                STATUSES.map(Status::as_str).join(", ")
            ))
        })?),
    };
    let asked = Scope::of(&viewer, q.group, None, None)?;
    let scope = asked.store();
    let group = &asked.group;
    let (rows, agents) = async {
        Ok::<_, rampart_store::StoreError>((
            app.store
                .fleet_check(&scope, &policy_id, &check_id, None, MAX_HOSTS)
                .await?,
            app.store.agents(None).await?,
        ))
    }
    .await
    .map_err(|e| viewer.refuse(ApiError::from(e)))?;
    let truncated = rows.len() as u64 >= u64::from(MAX_HOSTS);
    let mut counts = StatusCounts::default();
    let (mut title, mut remediation) = (String::new(), String::new());
    for r in &rows {
        match r.status {
            Status::Pass => counts.pass += 1,
            Status::Fail => counts.fail += 1,
            Status::NotApplicable => counts.not_applicable += 1,
            _ => counts.other += 1,
        }
        if let Some(o) = r.outcome.as_ref().filter(|_| title.is_empty()) {
            title.clone_from(&o.title);
            remediation.clone_from(&o.remediation);
        }
    }
    let groups: BTreeSet<String> = agents
        .into_iter()
        .map(|a| a.group)
        .filter(|g| viewer.caller.sees(g))
        .collect();
    let page = CheckPage {
        hosts: rows
            .into_iter()
            .filter(|r| status.is_none_or(|s| s == r.status))
            .map(|r| HostResult {
                reason: r.outcome.as_ref().and_then(|o| o.reason.clone()),
                evidence: r.outcome.as_ref().map(evidence).unwrap_or_default(),
                agent_id: r.agent_id,
                hostname: r.hostname,
                group: r.group,
                os: r.os,
                status: r.status.as_str().to_owned(),
                since: when(r.since),
                run_id: r.run_id,
            })
            .collect(),
        filters: vec![
            Select::new(
                "status",
                "Status",
                "Any",
                STATUSES.iter().map(|s| s.as_str().to_owned()),
                status.map(Status::as_str),
            ),
            Select::new("group", "Group", "All groups", groups, group.as_deref()),
        ],
        may_request_waiver: viewer
            .caller
            .check(Permission::WaiversRequest, Target::Fleet)
            .is_ok(),
        shell: viewer.shell,
        policy_id,
        check_id,
        title,
        remediation,
        counts,
        truncated,
    };
    html(&page)
}
