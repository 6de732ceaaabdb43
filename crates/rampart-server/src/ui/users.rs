//! Users and API tokens: every account with its role, group limit, state and way of signing
//! in; every API token by its first characters; for a role that manages users, the forms that
//! make a user, change a role, disable, enable, give a new one-time password (shown once) and
//! revoke a token.
//!
//! The rules are the API's ([`crate::accounts`]): the last enabled admin stays one, the same
//! audit entries.

use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use rampart_access::{Permission, Role, Target};
use rampart_ui::{ApiTokenRow, IssuedPassword, NewUserForm, Notice, UserRow, UsersPage};
use serde::Deserialize;
use time::OffsetDateTime;

use super::{AppState, PageResult, Viewer, when};
use crate::accounts;
use crate::api::{NewUserRequest, RoleRequest};
use crate::app::App;
use crate::error::ApiError;

/// The page's path (and the navigation entry it lights).
pub(super) const PATH: &str = "/ui/users";

/// `GET /ui/users`.
pub(super) async fn list(
    State(app): AppState,
    Query(q): Query<super::DoneQuery>,
    req: Request,
) -> PageResult {
    let (parts, _) = req.into_parts();
    let viewer = Viewer::of(&app, &parts, PATH).await?;
    viewer.require(Permission::UsersRead, Target::Fleet)?;
    let notice = match q.done.as_deref() {
        Some("role") => Some("Role changed: it applies to their next request."),
        Some("disabled") => {
            Some("Disabled: their sessions ended and their tokens stopped working.")
        }
        Some("enabled") => Some("Enabled: they can sign in again."),
        Some("revoked") => Some("Token revoked."),
        _ => None,
    }
    .map(|t| Notice::Done(t.to_owned()));
    page(
        &app,
        viewer,
        notice,
        None,
        NewUserForm::default(),
        StatusCode::OK,
    )
    .await
}

/// The new-user form as posted.
#[derive(Deserialize)]
pub(super) struct NewUser {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    groups: String,
}

/// Groups as the forms take them: comma-separated, blanks ignored.
fn groups(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect()
}

fn role(text: &str) -> Result<Role, ApiError> {
    text.parse::<Role>()
        .map_err(|e| ApiError::bad_request("invalid_field", format!("role: {e}")))
}

/// `POST /ui/users`: makes a user and shows their one-time password, this once.
pub(super) async fn create(State(app): AppState, req: Request) -> PageResult {
    let (viewer, f): (Viewer, NewUser) = Viewer::posted(&app, req, PATH).await?;
    viewer.require(Permission::UsersManage, Target::Fleet)?;
    let made = match role(&f.role) {
        Ok(role) => {
            let asked = NewUserRequest {
                name: f.name.trim().to_owned(),
                role,
                groups: groups(&f.groups),
            };
            accounts::create(&app, &viewer.caller, asked).await
        }
        Err(e) => Err(e),
    };
    match made {
        Ok(m) => {
            let issued = IssuedPassword {
                user: m.user.name,
                password: m.one_time_password,
            };
            let form = NewUserForm::default();
            page(&app, viewer, None, Some(issued), form, StatusCode::CREATED).await
        }
        Err(e) => {
            let form = NewUserForm {
                name: f.name,
                role: f.role,
                groups: f.groups,
            };
            refused(&app, viewer, e, form).await
        }
    }
}

/// A change to one user, as posted: `act` says which.
#[derive(Deserialize)]
pub(super) struct Change {
    #[serde(default)]
    act: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    groups: String,
    #[serde(default)]
    token: String,
}

/// `POST /ui/users/{name}`: changes the role, disables, enables, gives a new one-time password
/// or revokes one of the user's tokens.
pub(super) async fn change(
    State(app): AppState,
    Path(name): Path<String>,
    req: Request,
) -> PageResult {
    let (viewer, f): (Viewer, Change) = Viewer::posted(&app, req, PATH).await?;
    viewer.require(Permission::UsersManage, Target::Fleet)?;
    let caller = &viewer.caller;
    let done = match f.act.as_str() {
        "role" => match role(&f.role) {
            Ok(role) => {
                let asked = RoleRequest {
                    role,
                    groups: groups(&f.groups),
                };
                accounts::set_role(&app, caller, &name, asked)
                    .await
                    .map(|_| "role")
            }
            Err(e) => Err(e),
        },
        "disable" => accounts::disable(&app, caller, &name)
            .await
            .map(|_| "disabled"),
        "enable" => accounts::enable(&app, caller, &name)
            .await
            .map(|_| "enabled"),
        "revoke_token" => accounts::revoke_token(&app, caller, &name, &f.token)
            .await
            .map(|_| "revoked"),
        "reset" => {
            return match accounts::reset_password(&app, caller, &name).await {
                Ok(m) => {
                    let issued = IssuedPassword {
                        user: m.user.name,
                        password: m.one_time_password,
                    };
                    let form = NewUserForm::default();
                    page(&app, viewer, None, Some(issued), form, StatusCode::OK).await
                }
                Err(e) => refused(&app, viewer, e, NewUserForm::default()).await,
            };
        }
        _ => Err(ApiError::bad_request(
            "invalid_form",
            "act: role, disable, enable, reset or revoke_token",
        )),
    };
    match done {
        Ok(done) => Ok(Redirect::to(&format!("{PATH}?done={done}")).into_response()),
        Err(e) => refused(&app, viewer, e, NewUserForm::default()).await,
    }
}

/// The page again with why an action was refused, under the refusal's status.
async fn refused(app: &App, viewer: Viewer, e: ApiError, form: NewUserForm) -> PageResult {
    let (notice, status) = super::refusal_notice(&viewer, e)?;
    let notice = Some(notice);
    page(app, viewer, notice, None, form, status).await
}

/// Renders the page for `viewer`.
async fn page(
    app: &App,
    viewer: Viewer,
    notice: Option<Notice>,
    issued: Option<IssuedPassword>,
    create: NewUserForm,
    status: StatusCode,
) -> PageResult {
    let load = async {
        Ok::<_, rampart_store::StoreError>((
            app.store.users().await?,
            app.store.api_tokens(None).await?,
        ))
    };
    let (mut users, mut tokens) = load.await.map_err(|e| viewer.refuse(ApiError::from(e)))?;
    users.sort_by(|a, b| a.name.cmp(&b.name));
    // By owner; the store lists newest first, and a stable sort keeps that within an owner.
    tokens.sort_by(|a, b| a.user.cmp(&b.user));
    let now = OffsetDateTime::now_utc();
    let users = users
        .into_iter()
        .map(|u| UserRow {
            state: if u.disabled_at.is_some() {
                "disabled"
            } else if u.must_change_password {
                "one-time password"
            } else {
                "active"
            },
            sign_in: match (u.has_password, u.oidc_subject.is_some()) {
                (true, true) => "password, OpenID Connect",
                (false, true) => "OpenID Connect",
                (true, false) => "password",
                (false, false) => "nothing (API tokens only)",
            }
            .to_owned(),
            created: when(u.created_at),
            disabled: u.disabled_at.is_some(),
            is_self: u.id == viewer.caller.user.id,
            groups: u.groups.join(", "),
            role: u.role.to_string(),
            name: u.name,
        })
        .collect();
    let tokens = tokens
        .into_iter()
        .map(|t| ApiTokenRow {
            state: if t.revoked_at.is_some() {
                "revoked"
            } else if t.expires_at <= now {
                "expired"
            } else {
                "live"
            },
            created: when(t.created_at),
            expires: when(t.expires_at),
            last_used: t.last_used_at.map(when).unwrap_or_default(),
            groups: t.groups.join(", "),
            role: t.role.to_string(),
            shown: t.shown,
            name: t.name,
            user: t.user,
        })
        .collect();
    let page = UsersPage {
        manage: viewer
            .caller
            .check(Permission::UsersManage, Target::Fleet)
            .is_ok(),
        shell: viewer.shell,
        notice,
        issued,
        users,
        tokens,
        create,
        roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
    };
    super::html_status(status, &page)
}

#[cfg(test)]
mod tests {
    #[test]
    fn groups_are_comma_separated() {
        assert_eq!(super::groups(" web, db ,,"), vec!["web", "db"]);
        assert!(super::groups("  ").is_empty());
    }
}
