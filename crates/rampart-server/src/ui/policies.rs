//! Policies: the list and the upload form (a file, checked before it is stored, a problem
//! shown with its file:line:column), one policy's versions and assignments with the forms that
//! assign and remove, a version's content, and the line diff between two versions; and "scan
//! now" on an agent.
//!
//! The rules are the API's ([`crate::policies`]): the same validation, the same group
//! rights, the same audit entries.

use std::collections::HashMap;

use axum::extract::{FromRequest as _, Multipart, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use rampart_access::{Permission, Target as AccessTarget};
use rampart_store::Target;
use rampart_ui::{
    AssignForm, AssignmentRow, DiffLine, Notice, PoliciesPage, PolicyContentPage, PolicyDiffPage,
    PolicyPage, PolicyRow, VersionRow,
};
use serde::Deserialize;

use super::{AppState, CsrfField, PageResult, Viewer, html, same_origin, when};
use crate::api::AssignRequest;
use crate::app::App;
use crate::error::ApiError;
use crate::policies;

/// The page's path (and the navigation entry it lights).
pub(super) const PATH: &str = "/ui/policies";

/// The largest policy file the form takes: the API's limit.
pub(super) const UPLOAD_LIMIT: usize = 16 * 1024 * 1024;

/// Unchanged lines kept around each change in a diff.
const CONTEXT: usize = 3;

/// `GET /ui/policies`.
pub(super) async fn list(State(app): AppState, req: Request) -> PageResult {
    let (parts, _) = req.into_parts();
    let viewer = Viewer::of(&app, &parts, PATH).await?;
    viewer.require(Permission::PoliciesRead, AccessTarget::Fleet)?;
    list_page(&app, viewer, None, StatusCode::OK).await
}

async fn list_page(
    app: &App,
    viewer: Viewer,
    notice: Option<Notice>,
    status: StatusCode,
) -> PageResult {
    let load = async {
        Ok::<_, rampart_store::StoreError>((
            app.store.policies().await?,
            app.store.assignments(None).await?,
        ))
    };
    let (policies, assignments) = load.await.map_err(|e| viewer.refuse(ApiError::from(e)))?;
    let mut assigned: HashMap<&str, usize> = HashMap::new();
    for a in &assignments {
        *assigned.entry(a.policy_id.as_str()).or_default() += 1;
    }
    let page = PoliciesPage {
        may_upload: viewer
            .caller
            .check(Permission::PoliciesManage, AccessTarget::Fleet)
            .is_ok(),
        policies: policies
            .iter()
            .map(|p| PolicyRow {
                id: p.id.clone(),
                name: p.name.clone(),
                versions: p.versions,
                latest: p.latest.version,
                checks: p.latest.check_count,
                format: p.latest.format.clone(),
                uploaded: when(p.latest.created_at),
                assignments: assigned.get(p.id.as_str()).copied().unwrap_or(0),
            })
            .collect(),
        shell: viewer.shell,
        notice,
    };
    super::html_status(status, &page)
}

/// `POST /ui/policies` (multipart: `csrf`, `policy`): uploads a policy file; a refusal shows
/// the list again with the loader's words (file:line:column).
pub(super) async fn upload(State(app): AppState, req: Request) -> PageResult {
    let (parts, body) = req.into_parts();
    same_origin(&parts.headers)?;
    let viewer = Viewer::of(&app, &parts, PATH).await?;
    viewer.require(Permission::PoliciesManage, AccessTarget::Fleet)?;
    let bad = |detail: String| viewer.refuse(ApiError::bad_request("invalid_form", detail));
    let mut form = Multipart::from_request(Request::from_parts(parts, body), &app)
        .await
        .map_err(|e| bad(e.body_text()))?;
    let (mut csrf, mut file) = (String::new(), None);
    while let Some(field) = form.next_field().await.map_err(|e| bad(e.body_text()))? {
        match field.name() {
            Some("csrf") => csrf = field.text().await.map_err(|e| bad(e.body_text()))?,
            Some("policy") => {
                let name = field.file_name().unwrap_or("policy.yml").to_owned();
                let bytes = field.bytes().await.map_err(|e| bad(e.body_text()))?;
                file = Some((name, bytes));
            }
            _ => {}
        }
    }
    if !viewer.caller.csrf_matches(&csrf) {
        return Err(viewer.refuse(ApiError::forbidden(
            "csrf_failed",
            "this form did not come from a page of this session: reload the page and try again",
        )));
    }
    let Some((name, bytes)) = file.filter(|(_, b)| !b.is_empty()) else {
        return Err(bad("policy: choose a policy file".to_owned()));
    };
    // A file name is only used in error locations: a path or control characters are not.
    let name: String = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("policy.yml")
        .chars()
        .filter(|c| !c.is_control())
        .take(255)
        .collect();
    match policies::upload(&app, &viewer.caller, &name, &bytes).await {
        Ok(up) => {
            let done = if up.created { "uploaded" } else { "unchanged" };
            Ok(Redirect::to(&format!(
                "/ui/policies/{}?done={done}",
                segment(&up.version.policy_id)
            ))
            .into_response())
        }
        Err(e) => {
            let (notice, status) = super::refusal_notice(&viewer, e)?;
            list_page(&app, viewer, Some(notice), status).await
        }
    }
}

/// Percent-encodes a path segment (a policy id in a redirect).
fn segment(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|q| q.trim_start_matches('=').replace('+', "%20"))
        .unwrap_or_default()
}

/// `GET /ui/policies/{id}`.
pub(super) async fn show(
    State(app): AppState,
    Path(id): Path<String>,
    Query(q): Query<super::DoneQuery>,
    req: Request,
) -> PageResult {
    let (parts, _) = req.into_parts();
    let viewer = Viewer::of(&app, &parts, PATH).await?;
    viewer.require(Permission::PoliciesRead, AccessTarget::Fleet)?;
    let notice = match q.done.as_deref() {
        Some("uploaded") => Some("Uploaded as a new version."),
        Some("unchanged") => Some("The same content as the newest version: nothing changed."),
        Some("assigned") => Some("Assigned: agents pick it up with their next heartbeat."),
        Some("unassigned") => Some("Removed: agents stop running it with their next heartbeat."),
        _ => None,
    }
    .map(|t| Notice::Done(t.to_owned()));
    policy_page(
        &app,
        viewer,
        &id,
        notice,
        AssignForm::default(),
        StatusCode::OK,
    )
    .await
}

async fn policy_page(
    app: &App,
    viewer: Viewer,
    id: &str,
    notice: Option<Notice>,
    form: AssignForm,
    status: StatusCode,
) -> PageResult {
    let load = async {
        Ok::<_, rampart_store::StoreError>((
            app.store.policy_versions(id).await?,
            app.store.assignments(Some(id)).await?,
            app.store.agents(None).await?,
        ))
    };
    let (versions, assignments, agents) =
        load.await.map_err(|e| viewer.refuse(ApiError::from(e)))?;
    let Some(newest) = versions.last() else {
        return Err(viewer.refuse(ApiError::not_found("policy", id)));
    };
    let name = app
        .store
        .policies()
        .await
        .map_err(|e| viewer.refuse(ApiError::from(e)))?
        .into_iter()
        .find(|p| p.id == newest.policy_id)
        .map(|p| p.name)
        .unwrap_or_default();
    let agents: HashMap<&str, &rampart_store::Agent> =
        agents.iter().map(|a| (a.id.as_str(), a)).collect();
    let manages = |group: &str| {
        viewer
            .caller
            .check(Permission::PoliciesManage, AccessTarget::Group(group))
            .is_ok()
    };
    let rows = assignments
        .iter()
        .filter_map(|a| {
            let (kind, name, shown, group) = match &a.target {
                Target::Group(g) => ("group", g.clone(), format!("group {g}"), Some(g.as_str())),
                Target::Agent(id) => {
                    let agent = agents.get(id.as_str());
                    (
                        "agent",
                        id.clone(),
                        format!("agent {}", agent.map_or(id.as_str(), |a| &a.hostname)),
                        agent.map(|a| a.group.as_str()),
                    )
                }
            };
            // Assignments on groups the viewer does not see are not theirs to know.
            if group.is_some_and(|g| !viewer.caller.sees(g)) {
                return None;
            }
            Some(AssignmentRow {
                kind: kind.to_owned(),
                name,
                shown,
                version: a.version,
                schedule: a.schedule.clone(),
                since: when(a.created_at),
                removable: group.is_none_or(manages),
            })
        })
        .collect();
    let page = PolicyPage {
        assign: viewer
            .caller
            .check(Permission::PoliciesManage, AccessTarget::Listing)
            .is_ok()
            .then_some(form),
        id: newest.policy_id.clone(),
        name,
        versions: versions
            .iter()
            .rev()
            .map(|v| VersionRow {
                version: v.version,
                format: v.format.clone(),
                file_name: v.file_name.clone(),
                digest: v.digest.chars().take(12).collect(),
                checks: v.check_count,
                uploaded: when(v.created_at),
            })
            .collect(),
        assignments: rows,
        shell: viewer.shell,
        notice,
    };
    super::html_status(status, &page)
}

/// The assignment forms as posted.
#[derive(Deserialize)]
pub(super) struct AssignPost {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    schedule: String,
}

fn target(kind: &str, name: &str) -> Result<Target, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 128 {
        return Err(ApiError::bad_request(
            "invalid_target",
            "name: the group's name or the agent's id",
        ));
    }
    match kind {
        "group" => Ok(Target::Group(name.to_owned())),
        "agent" => Ok(Target::Agent(name.to_owned())),
        _ => Err(ApiError::bad_request(
            "invalid_target",
            "kind: group or agent",
        )),
    }
}

/// `POST /ui/policies/{id}/assign`.
pub(super) async fn assign(
    State(app): AppState,
    Path(id): Path<String>,
    req: Request,
) -> PageResult {
    let (viewer, f): (Viewer, AssignPost) = Viewer::posted(&app, req, PATH).await?;
    viewer.require(Permission::PoliciesManage, AccessTarget::Listing)?;
    let version = match f.version.trim() {
        "" => Ok(None),
        v => v.parse::<i64>().map(Some).map_err(|_| {
            ApiError::bad_request("invalid_field", format!("version: a number, not {v:?}"))
        }),
    };
    let asked = version.and_then(|version| {
        Ok(AssignRequest {
            target: target(&f.kind, &f.name)?,
            version,
            schedule: f.schedule.trim().to_owned(),
        })
    });
    let result = match asked {
        Ok(asked) => policies::assign(&app, &viewer.caller, &id, asked)
            .await
            .map(drop),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(
            Redirect::to(&format!("/ui/policies/{}?done=assigned", segment(&id))).into_response(),
        ),
        Err(e) => {
            let form = AssignForm {
                kind: f.kind,
                name: f.name,
                version: f.version.trim().parse().ok(),
                schedule: f.schedule,
            };
            refused(&app, viewer, &id, e, form).await
        }
    }
}

/// `POST /ui/policies/{id}/unassign`.
pub(super) async fn unassign(
    State(app): AppState,
    Path(id): Path<String>,
    req: Request,
) -> PageResult {
    let (viewer, f): (Viewer, AssignPost) = Viewer::posted(&app, req, PATH).await?;
    viewer.require(Permission::PoliciesManage, AccessTarget::Listing)?;
    let result = match target(&f.kind, &f.name) {
        Ok(t) => policies::unassign(&app, &viewer.caller, &id, t).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(
            Redirect::to(&format!("/ui/policies/{}?done=unassigned", segment(&id))).into_response(),
        ),
        Err(e) => refused(&app, viewer, &id, e, AssignForm::default()).await,
    }
}

/// The policy page again with why an action was refused, under the refusal's status.
async fn refused(app: &App, viewer: Viewer, id: &str, e: ApiError, form: AssignForm) -> PageResult {
    let (notice, status) = super::refusal_notice(&viewer, e)?;
    let notice = Some(notice);
    policy_page(app, viewer, id, notice, form, status).await
}

/// `GET /ui/policies/{id}/versions/{version}`.
pub(super) async fn content(
    State(app): AppState,
    Path((id, version)): Path<(String, String)>,
    req: Request,
) -> PageResult {
    let (parts, _) = req.into_parts();
    let viewer = Viewer::of(&app, &parts, PATH).await?;
    viewer.require(Permission::PoliciesRead, AccessTarget::Fleet)?;
    let (v, text) = version_text(&app, &viewer, &id, &version).await?;
    let page = PolicyContentPage {
        shell: viewer.shell,
        id,
        version: v.version,
        file_name: v.file_name,
        lines: text.lines().map(str::to_owned).collect(),
    };
    html(&page)
}

/// A version and its content as text; a missing one is a 404.
async fn version_text(
    app: &App,
    viewer: &Viewer,
    id: &str,
    version: &str,
) -> Result<(rampart_store::PolicyVersion, String), super::Refusal> {
    let missing = || {
        viewer.refuse(ApiError::not_found(
            "policy version",
            &format!("{id}@{version}"),
        ))
    };
    let n: i64 = version.parse().map_err(|_| missing())?;
    let (v, content) = app
        .store
        .policy_version(id, n)
        .await
        .map_err(|e| viewer.refuse(ApiError::from(e)))?
        .ok_or_else(missing)?;
    Ok((v, String::from_utf8_lossy(&content).into_owned()))
}

/// `?from=&to=`.
#[derive(Deserialize)]
pub(super) struct DiffQuery {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// `GET /ui/policies/{id}/diff?from=&to=`: the lines that changed, with context.
pub(super) async fn diff(
    State(app): AppState,
    Path(id): Path<String>,
    Query(q): Query<DiffQuery>,
    req: Request,
) -> PageResult {
    let (parts, _) = req.into_parts();
    let viewer = Viewer::of(&app, &parts, PATH).await?;
    viewer.require(Permission::PoliciesRead, AccessTarget::Fleet)?;
    let (a, old) = version_text(&app, &viewer, &id, &q.from).await?;
    let (b, new) = version_text(&app, &viewer, &id, &q.to).await?;
    let (lines, added, removed) = line_diff(&old, &new);
    let page = PolicyDiffPage {
        shell: viewer.shell,
        id,
        from: a.version,
        to: b.version,
        added,
        removed,
        lines,
    };
    html(&page)
}

/// A line diff with [`CONTEXT`] unchanged lines around each change, a gap marker between
/// groups; and the lines added and removed.
fn line_diff(old: &str, new: &str) -> (Vec<DiffLine>, usize, usize) {
    use similar::{ChangeTag, TextDiff};
    let d = TextDiff::from_lines(old, new);
    let (mut lines, mut added, mut removed) = (Vec::new(), 0, 0);
    for (i, group) in d.grouped_ops(CONTEXT).iter().enumerate() {
        if i > 0 {
            lines.push(DiffLine {
                tag: "gap",
                old: None,
                new: None,
                text: String::new(),
            });
        }
        for op in group {
            for c in d.iter_changes(op) {
                let tag = match c.tag() {
                    ChangeTag::Insert => {
                        added += 1;
                        "add"
                    }
                    ChangeTag::Delete => {
                        removed += 1;
                        "del"
                    }
                    ChangeTag::Equal => "same",
                };
                lines.push(DiffLine {
                    tag,
                    old: c.old_index().map(|n| n + 1),
                    new: c.new_index().map(|n| n + 1),
                    text: c.value().trim_end_matches(['\n', '\r']).to_owned(),
                });
            }
        }
    }
    (lines, added, removed)
}

/// `POST /ui/agents/{id}/scan`: asks the agent to scan now, back to its page.
pub(super) async fn scan_now(
    State(app): AppState,
    Path(id): Path<String>,
    req: Request,
) -> PageResult {
    let (viewer, CsrfField { .. }) = Viewer::posted(&app, req, "/ui/agents").await?;
    policies::scan_now(&app, &viewer.caller, &id)
        .await
        .map_err(|e| viewer.refuse(e))?;
    Ok(Redirect::to(&format!("/ui/agents/{}?done=scan", segment(&id))).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_diff_keeps_three_lines_of_context_and_counts_changes() {
        let old: String = (1..=20).map(|n| format!("line {n}\n")).collect();
        let new = old
            .replace("line 2\n", "line two\n")
            .replace("line 18\n", "");
        let (lines, added, removed) = super::line_diff(&old, &new);
        assert_eq!((added, removed), (1, 2));
        let shown: Vec<_> = lines
            .iter()
            .map(|l| (l.tag, l.old, l.new, l.text.as_str()))
            .collect();
        // Line 2 changed (lines 1, 3–5 around it); a gap; line 18 removed (15–17, 19–20).
        assert_eq!(shown[0], ("same", Some(1), Some(1), "line 1"));
        assert_eq!(shown[1], ("del", Some(2), None, "line 2"));
        assert_eq!(shown[2], ("add", None, Some(2), "line two"));
        assert_eq!(shown[5], ("same", Some(5), Some(5), "line 5"));
        assert_eq!(shown[6].0, "gap");
        assert_eq!(shown[7], ("same", Some(15), Some(15), "line 15"));
        assert_eq!(shown[10], ("del", Some(18), None, "line 18"));
        assert_eq!(shown.len(), 13);
    }

    #[test]
    fn a_policy_id_is_one_path_segment() {
        assert_eq!(super::segment("cis_debian12"), "cis_debian12");
        assert_eq!(super::segment("a b/c"), "a%20b%2Fc");
    }
}
