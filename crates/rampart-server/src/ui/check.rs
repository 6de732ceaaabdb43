//! One check across the fleet: every host's latest result of it, since when, with evidence.

use std::collections::BTreeSet;

use axum::extract::{Path, Query, Request, State};
use rampart_access::{Permission, Target};
use rampart_core::{ObservationKind, RuleVerdict, Status};
use rampart_ui::{CheckPage, EvidenceLine, HostResult, Select, StatusCounts};
use serde::Deserialize;

use super::{AppState, PageResult, Scope, Viewer, html, when};
use crate::error::ApiError;

/// Hosts per page: each comes with its evidence, so a page stays readable and quick to read
/// from the store however many hosts run the check; the counts above cover them all.
const PAGE: u32 = 200;

/// Pages a viewer can ask for: 10 million hosts' worth, far beyond any fleet, so the offset
/// handed to the store stays bounded.
const MAX_PAGE: u64 = 50_000;

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
    /// 1-based.
    #[serde(default)]
    page: Option<String>,
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
    let number = match q.page.as_deref().filter(|p| !p.is_empty()) {
        None => 1,
        Some(p) => p
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| bad(format!("page: a number from 1 to {MAX_PAGE}")))?,
    };
    let asked = Scope::of(&viewer, q.group, None, None)?;
    let scope = asked.store();
    let group = &asked.group;
    let offset = (number - 1) * u64::from(PAGE);
    let (rows, tally, groups) = async {
        Ok::<_, rampart_store::StoreError>((
            app.store
                .fleet_check(&scope, &policy_id, &check_id, status, PAGE, offset)
                .await?,
            app.store
                .fleet_check_tally(&scope, &policy_id, &check_id)
                .await?,
            app.store.agent_groups().await?,
        ))
    }
    .await
    .map_err(|e| viewer.refuse(ApiError::from(e)))?;
    let counts = StatusCounts {
        pass: tally.passed,
        fail: tally.failed,
        not_applicable: tally.not_applicable,
        other: tally.waived + tally.other,
    };
    let matching = match status {
        None => tally.passed + tally.failed + tally.not_applicable + tally.waived + tally.other,
        Some(Status::Pass) => tally.passed,
        Some(Status::Fail) => tally.failed,
        Some(Status::NotApplicable) => tally.not_applicable,
        // The tallies lump the rest together; their counters hold each status apart.
        Some(other) => app
            .store
            .fleet_check_status_count(&scope, &policy_id, &check_id, other)
            .await
            .map_err(|e| viewer.refuse(ApiError::from(e)))?,
    };
    let (title, remediation) = rows
        .iter()
        .find_map(|r| r.outcome.as_ref())
        .map(|o| (o.title.clone(), o.remediation.clone()))
        .unwrap_or_default();
    let groups: BTreeSet<String> = groups
        .into_iter()
        .filter(|g| viewer.caller.sees(g))
        .collect();
    let link = |n: u64| {
        serde_urlencoded::to_string([
            ("status", status.map(|s| s.as_str().to_owned())),
            ("group", group.clone()),
            ("page", Some(n.to_string())),
        ])
        .ok()
    };
    let shown_to = offset + rows.len() as u64;
    let previous = (number > 1).then(|| link(number - 1)).flatten();
    let next = (shown_to < matching && rows.len() as u64 == u64::from(PAGE))
        .then(|| link(number + 1))
        .flatten();
    let page = CheckPage {
        first: if rows.is_empty() { 0 } else { offset + 1 },
        hosts: rows
            .into_iter()
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
        matching,
        previous,
        next,
    };
    html(&page)
}
