//! Enrolment tokens: the tokens of the viewer's groups with their use and state, a form that
//! makes one (shown once, in the answer to the form), and revocation.
//!
//! The rules are the API's ([`crate::enrolment`]): the same limits, the same group rights,
//! the same audit entries.

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use rampart_access::{Permission, Target};
use rampart_store::Labels;
use rampart_ui::{CreatedToken, Notice, TokenForm, TokenRow, TokensPage};
use serde::Deserialize;
use time::OffsetDateTime;

use super::{AppState, PageResult, Viewer, when};
use crate::api::TokenRequest;
use crate::app::App;
use crate::enrolment;
use crate::error::ApiError;

/// The page's path (and the navigation entry it lights).
pub(super) const PATH: &str = "/ui/tokens";

/// `GET /ui/tokens`.
pub(super) async fn list(
    State(app): AppState,
    Query(q): Query<super::DoneQuery>,
    req: Request,
) -> PageResult {
    let (parts, _) = req.into_parts();
    let viewer = Viewer::of(&app, &parts, PATH).await?;
    viewer.require(Permission::EnrolmentRead, Target::Listing)?;
    let notice = (q.done.as_deref() == Some("revoked"))
        .then(|| Notice::Done("Revoked: the token enrols no more agents.".to_owned()));
    page(
        &app,
        viewer,
        notice,
        None,
        TokenForm::default(),
        StatusCode::OK,
    )
    .await
}

/// The new-token form as posted.
#[derive(Deserialize)]
pub(super) struct NewToken {
    #[serde(default)]
    group: String,
    #[serde(default)]
    labels: String,
    #[serde(default)]
    ttl_secs: String,
    #[serde(default)]
    max_uses: String,
}

/// `POST /ui/tokens`: makes a token and shows it, this once.
pub(super) async fn create(State(app): AppState, req: Request) -> PageResult {
    let (viewer, f): (Viewer, NewToken) = Viewer::posted(&app, req, PATH).await?;
    viewer.require(Permission::EnrolmentManage, Target::Listing)?;
    let form = TokenForm {
        group: f.group.trim().to_owned(),
        labels: f.labels.clone(),
        ttl_secs: f.ttl_secs.trim().parse().unwrap_or(0),
        max_uses: f.max_uses.trim().parse().unwrap_or(0),
    };
    let asked = (|| {
        let invalid = |d: String| ApiError::bad_request("invalid_field", d);
        if !TokenForm::LIFETIMES
            .iter()
            .any(|(s, _)| *s == form.ttl_secs)
        {
            return Err(invalid(format!(
                "ttl_secs: one of the lifetimes offered, not {:?}",
                f.ttl_secs
            )));
        }
        if form.max_uses == 0 {
            return Err(invalid(format!(
                "max_uses: a whole number from 1, not {:?}",
                f.max_uses
            )));
        }
        Ok(TokenRequest {
            group: form.group.clone(),
            labels: labels(&f.labels).map_err(invalid)?,
            ttl_secs: form.ttl_secs,
            max_uses: form.max_uses,
            agent_id: None,
        })
    })();
    let created = match asked {
        Ok(asked) => enrolment::issue(&app, &viewer.caller, asked).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(c) => {
            let server = app
                .enrol_audience
                .strip_suffix("/api/v1/enrol")
                .unwrap_or(&app.enrol_audience)
                .to_owned();
            let shown = CreatedToken {
                token: c.token,
                jti: c.jti,
                group: form.group,
                expires_at: time::OffsetDateTime::parse(
                    &c.expires_at,
                    &time::format_description::well_known::Rfc3339,
                )
                .map(when)
                .unwrap_or(c.expires_at),
                server,
            };
            let form = TokenForm::default();
            page(&app, viewer, None, Some(shown), form, StatusCode::CREATED).await
        }
        Err(e) => refused(&app, viewer, e, form).await,
    }
}

/// `POST /ui/tokens/{jti}/revoke`.
pub(super) async fn revoke(
    State(app): AppState,
    Path(jti): Path<String>,
    req: Request,
) -> PageResult {
    let (viewer, super::CsrfField { .. }) = Viewer::posted(&app, req, PATH).await?;
    viewer.require(Permission::EnrolmentManage, Target::Listing)?;
    match enrolment::revoke(&app, &viewer.caller, &jti).await {
        Ok(()) => Ok(Redirect::to("/ui/tokens?done=revoked").into_response()),
        Err(e) => refused(&app, viewer, e, TokenForm::default()).await,
    }
}

/// Labels as the form takes them: one `key=value` per line, blank lines ignored. The names
/// and values are checked as the API checks them.
fn labels(text: &str) -> Result<Labels, String> {
    let mut labels = Labels::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("labels: line {}: key=value, not {line:?}", n + 1));
        };
        if labels
            .insert(k.trim().to_owned(), v.trim().to_owned())
            .is_some()
        {
            return Err(format!("labels: line {}: {:?} again", n + 1, k.trim()));
        }
    }
    Ok(labels)
}

/// The page again with why an action was refused, under the refusal's status.
async fn refused(app: &App, viewer: Viewer, e: ApiError, form: TokenForm) -> PageResult {
    let (notice, status) = super::refusal_notice(&viewer, e)?;
    let notice = Some(notice);
    page(app, viewer, notice, None, form, status).await
}

/// Renders the page for `viewer`.
async fn page(
    app: &App,
    viewer: Viewer,
    notice: Option<Notice>,
    created: Option<CreatedToken>,
    form: TokenForm,
    status: StatusCode,
) -> PageResult {
    let mut tokens = enrolment::visible(app, &viewer.caller)
        .await
        .map_err(|e| viewer.refuse(e))?;
    tokens.sort_by_key(|t| std::cmp::Reverse(t.created_at));
    let now = OffsetDateTime::now_utc();
    let rows = tokens
        .into_iter()
        .map(|t| {
            let state = if t.revoked_at.is_some() {
                "revoked"
            } else if t.uses >= t.max_uses {
                "used up"
            } else if t.expires_at <= now {
                "expired"
            } else {
                "active"
            };
            TokenRow {
                revocable: state == "active"
                    && viewer
                        .caller
                        .check(Permission::EnrolmentManage, Target::Group(&t.group))
                        .is_ok(),
                labels: t.labels.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                created: when(t.created_at),
                expires: when(t.expires_at),
                state,
                uses: t.uses,
                max_uses: t.max_uses,
                reenrol: t.reenrol_agent_id,
                group: t.group,
                jti: t.jti,
            }
        })
        .collect();
    let may_issue = viewer
        .caller
        .check(Permission::EnrolmentManage, Target::Listing)
        .is_ok();
    let page = TokensPage {
        shell: viewer.shell.clone(),
        notice,
        created,
        tokens: rows,
        form: may_issue.then_some(form),
    };
    super::html_status(status, &page)
}

#[cfg(test)]
mod tests {
    #[test]
    fn labels_are_one_pair_per_line() {
        let l = super::labels("env = prod\n\n  site=ams-1 \n").unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l["env"], "prod");
        assert_eq!(l["site"], "ams-1");
        assert_eq!(
            super::labels("env=prod\nno pair here").unwrap_err(),
            "labels: line 2: key=value, not \"no pair here\""
        );
        assert_eq!(
            super::labels(
                "env=prod
env=test"
            )
            .unwrap_err(),
            "labels: line 2: \"env\" again"
        );
    }
}
