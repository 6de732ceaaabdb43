//! The waivers inbox: requests waiting for a decision (approve or deny, with a note), waivers
//! expiring soon, those in force, denied and expired ones; and the form to ask for one.
//!
//! The rules are the API's ([`crate::waivers`]): the same checks, the same audit entries, nobody
//! decides on their own request. What the inbox lists is filtered to the viewer's groups.

use std::collections::HashMap;

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use rampart_access::{Permission, Target};
use rampart_store::{StoredWaiver, WaiverScope};
use rampart_ui::{Decision, Notice, WaiverForm, WaiverRow, WaiversPage};
use serde::Deserialize;

use super::{AppState, PageResult, Viewer, when};
use crate::api::WaiverRequest;
use crate::app::App;
use crate::error::ApiError;
use crate::waivers;

/// The page's path (and the navigation entry it lights).
pub(super) const PATH: &str = "/ui/waivers";

/// How far ahead "expiring soon" looks: two weeks leaves time to renew or fix.
const EXPIRING_DAYS: i64 = 14;

/// Denied and expired waivers shown, newest request first.
const CLOSED_SHOWN: usize = 50;

/// The inbox's query: what just happened (after a form), and values to fill the request form
/// with (links from a check's page).
#[derive(Deserialize)]
pub(super) struct InboxQuery {
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    check: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// `GET /ui/waivers`.
pub(super) async fn inbox(
    State(app): AppState,
    Query(q): Query<InboxQuery>,
    req: Request,
) -> PageResult {
    let (parts, _) = req.into_parts();
    let viewer = Viewer::of(&app, &parts, PATH).await?;
    viewer.require(Permission::ResultsRead, Target::Fleet)?;
    let notice = match q.done.as_deref() {
        Some("requested") => Some("Your request is recorded; someone else approves or denies it."),
        Some("approved") => {
            Some("Approved: runs that start from now until its last day are judged with it.")
        }
        Some("denied") => Some("Denied: the check is judged as before."),
        _ => None,
    }
    .map(|t| Notice::Done(t.to_owned()));
    let text = |name: &str, v: Option<String>| {
        crate::routes::text_param(name, v.filter(|v| !v.is_empty())).map_err(|e| viewer.refuse(e))
    };
    let form = WaiverForm {
        check: text("check", q.check)?.unwrap_or_default(),
        scope: text("scope", q.scope)?.unwrap_or_default(),
        name: text("name", q.name)?.unwrap_or_default(),
        ..WaiverForm::default()
    };
    page(&app, viewer, notice, form, StatusCode::OK).await
}

/// The request form as posted.
#[derive(Deserialize)]
pub(super) struct RequestForm {
    #[serde(default)]
    check: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    justification: String,
}

/// `POST /ui/waivers`: asks for a waiver; a refusal shows the form again, filled in, with
/// the reason.
pub(super) async fn request(State(app): AppState, req: Request) -> PageResult {
    let (viewer, f): (Viewer, RequestForm) = Viewer::posted(&app, req, PATH).await?;
    viewer.require(Permission::WaiversRequest, Target::Fleet)?;
    let name = f.name.trim().to_owned();
    let scope = match (f.scope.as_str(), name.is_empty()) {
        ("fleet", _) => Ok(WaiverScope::Fleet),
        ("group", false) => Ok(WaiverScope::Group(name.clone())),
        ("agent", false) => Ok(WaiverScope::Agent(name.clone())),
        ("group" | "agent", true) => Err(format!(
            "name: the {} the waiver covers",
            if f.scope == "group" {
                "group"
            } else {
                "agent (its id)"
            }
        )),
        _ => Err("scope: the fleet, one group or one agent".to_owned()),
    };
    let result = match scope {
        Ok(scope) => {
            let asked = WaiverRequest {
                check: f.check.clone(),
                scope,
                until: f.until.clone(),
                justification: f.justification.clone(),
            };
            waivers::request(&app, &viewer.caller, asked)
                .await
                .map(drop)
        }
        Err(detail) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_waiver",
            detail,
        )),
    };
    let form = WaiverForm {
        check: f.check,
        scope: f.scope,
        name,
        until: f.until,
        justification: f.justification,
    };
    match result {
        Ok(()) => Ok(Redirect::to("/ui/waivers?done=requested").into_response()),
        Err(e) => refused(&app, viewer, e, form).await,
    }
}

/// The decision form as posted.
#[derive(Deserialize)]
pub(super) struct DecideForm {
    #[serde(default)]
    decision: String,
    #[serde(default)]
    note: String,
}

/// `POST /ui/waivers/{id}/decide`: approves or denies someone else's request.
pub(super) async fn decide(
    State(app): AppState,
    Path(id): Path<String>,
    req: Request,
) -> PageResult {
    let (viewer, f): (Viewer, DecideForm) = Viewer::posted(&app, req, PATH).await?;
    viewer.require(Permission::WaiversDecide, Target::Fleet)?;
    let approve = match f.decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => {
            return Err(viewer.refuse(ApiError::bad_request(
                "invalid_form",
                "decision: approve or deny",
            )));
        }
    };
    match waivers::decide(&app, &viewer.caller, &id, approve, Some(f.note)).await {
        Ok(_) if approve => Ok(Redirect::to("/ui/waivers?done=approved").into_response()),
        Ok(_) => Ok(Redirect::to("/ui/waivers?done=denied").into_response()),
        Err(e) => refused(&app, viewer, e, WaiverForm::default()).await,
    }
}

/// The inbox again with why an action was refused (the request form keeps what was typed),
/// under the refusal's status; a server error is the error page.
async fn refused(app: &App, viewer: Viewer, e: ApiError, form: WaiverForm) -> PageResult {
    let (notice, status) = super::refusal_notice(&viewer, e)?;
    let notice = Some(notice);
    page(app, viewer, notice, form, status).await
}

/// Renders the inbox for `viewer`.
async fn page(
    app: &App,
    viewer: Viewer,
    notice: Option<Notice>,
    form: WaiverForm,
    status: StatusCode,
) -> PageResult {
    let load = async {
        let all = app.store.waivers(None, 1000).await?;
        // Who each agent-scoped waiver covers: its host name and group.
        let mut agents: HashMap<String, Option<rampart_store::Agent>> = HashMap::new();
        for w in &all {
            if let WaiverScope::Agent(id) = &w.scope
                && !agents.contains_key(id)
            {
                agents.insert(id.clone(), app.store.agent(id).await?);
            }
        }
        Ok::<_, rampart_store::StoreError>((all, agents))
    };
    let (all, agents) = load.await.map_err(|e| viewer.refuse(ApiError::from(e)))?;
    let today = waivers::today();
    let may_decide = viewer
        .caller
        .check(Permission::WaiversDecide, Target::Fleet)
        .is_ok();
    let mut page = WaiversPage {
        shell: viewer.shell.clone(),
        notice,
        pending: Vec::new(),
        expiring: Vec::new(),
        expiring_days: EXPIRING_DAYS,
        in_force: Vec::new(),
        closed: Vec::new(),
        request: viewer
            .caller
            .check(Permission::WaiversRequest, Target::Fleet)
            .is_ok()
            .then_some(form),
        first_day: today.to_string(),
        last_day: (today + time::Duration::days(waivers::MAX_DAYS)).to_string(),
    };
    for w in all {
        let covered = match &w.scope {
            WaiverScope::Fleet => Some(("the fleet".to_owned(), None, true)),
            WaiverScope::Group(g) => Some((format!("group {g}"), None, viewer.caller.sees(g))),
            WaiverScope::Agent(id) => agents.get(id).and_then(Option::as_ref).map(|a| {
                (
                    format!("agent {}", a.hostname),
                    Some(a.id.clone()),
                    viewer.caller.sees(&a.group),
                )
            }),
        };
        // A waiver of an agent since removed, or of a group the viewer does not see.
        let Some((scope, scope_agent, true)) = covered else {
            continue;
        };
        let row = row(w, scope, scope_agent, today, &viewer, may_decide);
        match row.state.as_str() {
            "pending" => page.pending.push(row),
            "approved" => {
                if row.days_left <= EXPIRING_DAYS {
                    page.expiring.push(row.clone());
                }
                page.in_force.push(row);
            }
            _ => page.closed.push(row),
        }
    }
    // The store lists newest request first: the oldest request waits longest.
    page.pending.reverse();
    page.expiring.sort_by(|a, b| a.until.cmp(&b.until));
    page.in_force.sort_by(|a, b| a.until.cmp(&b.until));
    page.closed.truncate(CLOSED_SHOWN);
    super::html_status(status, &page)
}

fn row(
    w: StoredWaiver,
    scope: String,
    scope_agent: Option<String>,
    today: time::Date,
    viewer: &Viewer,
    may_decide: bool,
) -> WaiverRow {
    let w = waivers::view(w);
    let until = time::Date::parse(
        &w.expires_on,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .unwrap_or(today);
    let own = w.requested_by == viewer.caller.user.name;
    WaiverRow {
        check_page: one_check(&w.check),
        scope,
        scope_agent,
        justification: w.justification,
        until: w.expires_on,
        days_left: (until - today).whole_days(),
        decidable: w.state == "pending" && may_decide && !own,
        own,
        requested_by: w.requested_by,
        requested_at: when(w.requested_at),
        decided: w.decided_by.map(|by| Decision {
            by,
            at: w.decided_at.map(when).unwrap_or_default(),
            note: w.decision_note,
        }),
        state: w.state,
        id: w.id,
        check: w.check,
    }
}

/// The policy and check a waiver names, when it names one check (`POLICY:ID`, no glob): its
/// page across the fleet is linked.
fn one_check(check: &str) -> Option<(String, String)> {
    let (policy, id) = check.split_once(':')?;
    if policy.is_empty() || id.is_empty() || id.contains(['*', '?', '[']) {
        return None;
    }
    Some((policy.to_owned(), id.to_owned()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_single_check_links_to_its_page_and_a_glob_does_not() {
        let pair = |a: &str, b: &str| Some((a.to_owned(), b.to_owned()));
        assert_eq!(
            super::one_check("cis_debian12:3301"),
            pair("cis_debian12", "3301")
        );
        assert_eq!(super::one_check("cis_debian12:33*"), None);
        assert_eq!(super::one_check("cis_debian12:3[3]"), None);
        assert_eq!(super::one_check("3301"), None);
    }
}
