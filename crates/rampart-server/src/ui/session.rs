//! Signing in and out of the dashboard: a form posting the password login the API offers
//! (`POST /api/v1/session`), the same checks, rate limits and audit entries, and a session
//! cookie on success.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{AppendHeaders, Html, IntoResponse, Redirect, Response};
use rampart_ui::LoginPage;
use serde::Deserialize;

use super::{AppState, PageResult, Refusal, Viewer, same_origin};
use crate::error::ApiError;
use crate::routes::login;

/// The sign-in form.
#[derive(Deserialize)]
pub(super) struct LoginForm {
    user: String,
    password: String,
    #[serde(default)]
    new_password: Option<String>,
}

/// The sign-out form: its CSRF token only, which [`Viewer::posted`] checks.
#[derive(Deserialize)]
struct CsrfOnly {}

fn login_form(
    app: &crate::app::App,
    error: Option<String>,
    user: String,
    new_password: bool,
) -> LoginPage {
    LoginPage {
        error,
        user,
        new_password,
        oidc: app.config.oidc.is_some(),
    }
}

/// `GET /ui/login`: the form, or the overview for someone signed in already.
pub(super) async fn login_page(
    State(app): AppState,
    Query(q): Query<LoginPageQuery>,
    req: Request,
) -> PageResult {
    let (parts, _) = req.into_parts();
    if crate::routes::authenticate(&app, &parts).await.is_ok() {
        return Ok(Redirect::to("/ui/").into_response());
    }
    let error = q.oidc_error.as_deref().map(oidc_refusal).map(str::to_owned);
    super::html(&login_form(&app, error, String::new(), false))
}

/// `?oidc_error=CODE`: why a sign-in through the OpenID provider failed.
#[derive(Deserialize)]
pub(super) struct LoginPageQuery {
    #[serde(default)]
    oidc_error: Option<String>,
}

/// What the sign-in page says for the callback's refusal code (fixed texts: the code comes
/// from the address bar).
fn oidc_refusal(code: &str) -> &'static str {
    match code {
        "oidc_no_role" => {
            "Your account at the identity provider has no Rampart role: ask an administrator to map one of its groups."
        }
        "user_disabled" => "This user is disabled in Rampart.",
        "oidc_refused" => "The identity provider refused the sign-in.",
        "oidc_state" => "The sign-in took too long or was started in another browser: try again.",
        _ => "Signing in through the identity provider failed: try again.",
    }
}

/// `POST /ui/login`.
pub(super) async fn login(
    State(app): AppState,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> PageResult {
    same_origin(&headers)?;
    let new_password = form.new_password.as_deref().filter(|p| !p.is_empty());
    let user = match login::password_user(
        &app,
        "session.start",
        client,
        &form.user,
        &form.password,
        new_password,
    )
    .await
    {
        Ok(user) => user,
        Err(e) => {
            let (status, code, detail) = e.parts();
            let (status, message, again) = match code {
                "password_change_required" => (
                    StatusCode::OK,
                    "The password you used is a one-time password: choose a new one.".to_owned(),
                    true,
                ),
                "bad_credentials" => (
                    StatusCode::UNAUTHORIZED,
                    "The user name or the password is wrong.".to_owned(),
                    false,
                ),
                _ if status.is_server_error() => return Err(Refusal::from(e)),
                // A weak new password, too many attempts: the API's own words.
                _ => (status, detail.to_owned(), new_password.is_some()),
            };
            let page = login_form(&app, Some(message), form.user, again);
            let html =
                rampart_ui::render(&page).map_err(|e| Refusal::from(ApiError::internal(e)))?;
            return Ok((status, Html(html)).into_response());
        }
    };
    let (cookie, started) = login::open_session(&app, user, client, &headers).await?;
    app.audit
        .record(login::logged_in(&started.user, "session.start", client))
        .await?;
    Ok((
        AppendHeaders([(header::SET_COOKIE, cookie)]),
        Redirect::to("/ui/"),
    )
        .into_response())
}

/// `POST /ui/logout`: ends the session (with its CSRF token) and goes back to the form.
pub(super) async fn logout(State(app): AppState, req: Request) -> Response {
    let signed_out = (
        AppendHeaders([(header::SET_COOKIE, login::session_cookie("", 0))]),
        Redirect::to("/ui/login"),
    );
    let result: Result<(), Refusal> = async {
        let (viewer, CsrfOnly {}) = Viewer::posted(&app, req, "").await?;
        if let Some(id_hash) = &viewer.caller.session {
            login::close_session(&app, &viewer.caller, id_hash).await?;
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) | Err(Refusal::SignIn) => signed_out.into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// `GET /ui/oidc`: signs in through the OpenID provider, landing back on the dashboard.
pub(super) async fn oidc(State(app): AppState) -> PageResult {
    let (url, state) = crate::routes::oidc_start(&app, None).await?;
    Ok((
        AppendHeaders([
            (header::SET_COOKIE, state),
            (
                header::SET_COOKIE,
                crate::routes::dashboard_cookie(crate::routes::OIDC_LOGIN_SECS),
            ),
        ]),
        Redirect::to(&url),
    )
        .into_response())
}
