//! One run with every check result and its evidence (what an auditor samples), and what
//! changed between two runs of one policy on one agent (what an engineer asks after a
//! change: which checks broke, which were fixed, whose evidence moved).

use axum::extract::{Path, Query, Request, State};
use rampart_access::{Permission, Target};
use rampart_core::{CheckOutcome, Status};
use rampart_store::{RunDetail, RunSummary};
use rampart_ui::{DiffPage, DiffRow, RunCheck, RunChoice, RunHeader, RunPage};
use serde::Deserialize;

use super::check::evidence;
use super::{AppState, PageResult, Refusal, Viewer, html, when};
use crate::api::CheckChange;
use crate::app::App;
use crate::error::ApiError;

/// Earlier runs offered to compare with.
const OTHERS: i64 = 50;

/// A run the viewer may see, with its agent's host name; another group's run is as absent as
/// a missing one.
async fn visible_run(app: &App, viewer: &Viewer, id: &str) -> Result<(RunDetail, String), Refusal> {
    let not_found = || viewer.refuse(ApiError::not_found("run", id));
    if id.is_empty() || id.len() > 256 {
        return Err(not_found());
    }
    let run = app
        .store
        .run(id)
        .await
        .map_err(|e| viewer.refuse(ApiError::from(e)))?
        .ok_or_else(not_found)?;
    let agent = app
        .store
        .agent(&run.run.agent_id)
        .await
        .map_err(|e| viewer.refuse(ApiError::from(e)))?
        .ok_or_else(not_found)?;
    if !viewer.caller.sees(&agent.group) {
        return Err(not_found());
    }
    Ok((run, agent.hostname))
}

fn header(r: &RunSummary, hostname: &str) -> RunHeader {
    let s = &r.summary;
    RunHeader {
        id: r.id.clone(),
        agent_id: r.agent_id.clone(),
        hostname: hostname.to_owned(),
        policy_id: r.policy_id.clone(),
        version: r.policy_version,
        trigger: r.trigger.clone(),
        started: when(r.started_at),
        finished: when(r.finished_at),
        passed: s.passed,
        failed: s.failed,
        other: s.total.saturating_sub(s.passed + s.failed),
        score: format!("{:.1} %", s.score),
    }
}

/// `GET /ui/runs/{id}`.
pub(super) async fn run(State(app): AppState, Path(id): Path<String>, req: Request) -> PageResult {
    let (parts, _) = req.into_parts();
    let viewer = Viewer::of(&app, &parts, "/ui/agents").await?;
    viewer.require(Permission::ResultsRead, Target::Listing)?;
    let (run, hostname) = visible_run(&app, &viewer, &id).await?;
    let others = app
        .store
        .agent_runs(&run.run.agent_id, Some(&run.run.policy_id), OTHERS)
        .await
        .map_err(|e| viewer.refuse(ApiError::from(e)))?;
    let mut checks: Vec<RunCheck> = run
        .checks
        .iter()
        .map(|c| RunCheck {
            check_id: c.id.clone(),
            title: c.title.clone(),
            status: c.status.as_str().to_owned(),
            reason: c.reason.clone(),
            waiver: c.waiver.as_ref().map(|w| {
                let approver = w.approver.as_deref().unwrap_or("a local waiver file");
                match &w.id {
                    Some(id) => format!("waiver {id}, approved by {approver}"),
                    None => format!("waived by {approver}"),
                }
            }),
            evidence: evidence(c),
        })
        .collect();
    // Failing first: what an engineer opens the page for. Policy order otherwise (stable).
    checks.sort_by_key(|c| c.status != Status::Fail.as_str());
    let page = RunPage {
        run: header(&run.run, &hostname),
        checks,
        others: others
            .into_iter()
            .filter(|o| o.id != run.run.id)
            .map(|o| RunChoice {
                id: o.id,
                started: when(o.started_at),
            })
            .collect(),
        shell: viewer.shell,
    };
    html(&page)
}

/// `?from=A&to=B`.
#[derive(Deserialize)]
pub(super) struct DiffQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// `GET /ui/diff?from=A&to=B`: what changed between runs A and B (the same policy on the same
/// agent), from the earlier to the later.
pub(super) async fn diff(
    State(app): AppState,
    Query(q): Query<DiffQuery>,
    req: Request,
) -> PageResult {
    let (parts, _) = req.into_parts();
    let viewer = Viewer::of(&app, &parts, "/ui/agents").await?;
    viewer.require(Permission::ResultsRead, Target::Listing)?;
    let (mut a, mut host_a) = visible_run(&app, &viewer, &q.from).await?;
    let (mut b, mut host_b) = visible_run(&app, &viewer, &q.to).await?;
    // Before is the earlier run, whichever way round the two were named (the run page's form
    // names itself `to`, whether the run picked is older or newer).
    if a.run.started_at > b.run.started_at {
        std::mem::swap(&mut a, &mut b);
        std::mem::swap(&mut host_a, &mut host_b);
    }
    if a.run.agent_id != b.run.agent_id || a.run.policy_id != b.run.policy_id {
        return Err(viewer.refuse(ApiError::bad_request(
            "different_runs",
            format!(
                "run {} is of {} on {host_a}, run {} of {} on {host_b}: compare two runs of one policy on one agent",
                a.run.id, a.run.policy_id, b.run.id, b.run.policy_id
            ),
        )));
    }
    let before = a.checks.clone();
    let after = b.checks.clone();
    let d = crate::routes::diff_runs(a, b);
    let find = |list: &[CheckOutcome], id: &str| {
        list.iter()
            .find(|c| c.id == id)
            .map(evidence)
            .unwrap_or_default()
    };
    let rows = |changes: Vec<CheckChange>| -> Vec<DiffRow> {
        changes
            .into_iter()
            .map(|c| DiffRow {
                before: c.before.map_or("absent", Status::as_str).to_owned(),
                after: c.after.map_or("absent", Status::as_str).to_owned(),
                before_evidence: find(&before, &c.check_id),
                after_evidence: find(&after, &c.check_id),
                title: c.title,
                check_id: c.check_id,
            })
            .collect()
    };
    let page = DiffPage {
        from: header(&d.from, &host_a),
        to: header(&d.to, &host_b),
        newly_failing: rows(d.newly_failing),
        newly_passing: rows(d.newly_passing),
        other_changes: rows(d.other_changes),
        evidence_changed: rows(d.evidence_changed),
        shell: viewer.shell,
    };
    html(&page)
}
