//! The web dashboard: server-rendered pages (`rampart-ui`'s templates) under `/ui/`, for
//! browsers signed in with a session cookie.
//!
//! Who may see what is decided here exactly as on the API: the session's user, their role and
//! group limit ([`Caller`]). A page a role may not open is neither linked nor served (403), and
//! what a page lists is filtered to the user's groups. A browser without a session is sent to
//! the sign-in page. Forms post with the session's CSRF token and from this origin only.

mod audit;
mod check;
mod enrolment;
mod fleet;
mod intel;
mod live;
mod policies;
mod runs;
mod session;
mod users;
mod waivers;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use rampart_access::{Permission, Target};
use rampart_ui::{ErrorPage, NavLink, Shell};

use crate::app::App;
use crate::error::ApiError;
use crate::routes::Caller;

/// The largest form a page posts: a waiver request (a justification of 2,000 characters, each
/// up to 12 bytes once percent-encoded) and room for the rest.
const FORM_LIMIT: usize = 32 * 1024;

/// The dashboard's routes, with their own headers (the policy the pages need) and errors as
/// pages rather than problem objects.
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(fleet::overview))
        .route("/ui/agents", get(fleet::agents))
        .route("/ui/agents/{id}", get(fleet::agent))
        .route("/ui/checks/{policy}/{check}", get(check::check))
        .route("/ui/agents/{id}/scan", post(policies::scan_now))
        .route(
            policies::PATH,
            get(policies::list)
                .post(policies::upload)
                .layer(axum::extract::DefaultBodyLimit::max(policies::UPLOAD_LIMIT)),
        )
        .route("/ui/policies/{id}", get(policies::show))
        .route("/ui/policies/{id}/assign", post(policies::assign))
        .route("/ui/policies/{id}/unassign", post(policies::unassign))
        .route(
            "/ui/policies/{id}/versions/{version}",
            get(policies::content),
        )
        .route("/ui/policies/{id}/diff", get(policies::diff))
        .route("/ui/runs/{id}", get(runs::run))
        .route("/ui/diff", get(runs::diff))
        .route(waivers::PATH, get(waivers::inbox).post(waivers::request))
        .route("/ui/waivers/{id}/decide", post(waivers::decide))
        .route(
            enrolment::PATH,
            get(enrolment::list).post(enrolment::create),
        )
        .route("/ui/tokens/{jti}/revoke", post(enrolment::revoke))
        .route(users::PATH, get(users::list).post(users::create))
        .route("/ui/users/{name}", post(users::change))
        .route(audit::PATH, get(audit::log))
        .route(intel::PATH, get(intel::overview))
        .route("/ui/intel/lookup", get(intel::lookup))
        .route("/ui/login", get(session::login_page).post(session::login))
        .route("/ui/logout", post(session::logout))
        .route("/ui/oidc", get(session::oidc))
        .route(rampart_ui::STYLESHEET_PATH, get(stylesheet))
        .route(rampart_ui::ICON_PATH, get(icon))
        .route(rampart_ui::SCRIPT_PATH, get(script))
        .route("/ui/events", get(live::events))
        .route("/ui/{*rest}", get(no_page))
        .layer(axum::extract::DefaultBodyLimit::max(FORM_LIMIT))
        .layer(axum::middleware::from_fn(headers))
        .with_state(app)
}

/// The dashboard's policy on every page, and the API's other security headers.
async fn headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(rampart_ui::CONTENT_SECURITY_POLICY),
    );
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        // Pages carry findings and the session's CSRF token.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        rampart_ui::STYLESHEET,
    )
        .into_response()
}

/// A path under `/ui/` that is no page: a 404 page (with the navigation for someone signed
/// in), not the API's problem object.
async fn no_page(State(app): AppState, req: Request) -> Refusal {
    let (parts, _) = req.into_parts();
    let missing = Refusal::page(StatusCode::NOT_FOUND, "Not found", "There is no such page.");
    match Viewer::of(&app, &parts, "").await {
        Ok(viewer) => viewer.refuse(missing),
        Err(_) => missing,
    }
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "private, max-age=300"),
        ],
        rampart_ui::SCRIPT,
    )
        .into_response()
}

async fn icon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "private, max-age=86400"),
        ],
        rampart_ui::ICON,
    )
        .into_response()
}

/// Why a page is not shown: to the sign-in page, or an error page.
pub(crate) enum Refusal {
    /// No session (or an ended one): sign in.
    SignIn,
    /// An error page with this status, for this signed-in user (if any).
    Page {
        status: StatusCode,
        title: String,
        detail: String,
        shell: Option<Box<Shell>>,
    },
}

impl Refusal {
    fn page(status: StatusCode, title: &str, detail: impl Into<String>) -> Refusal {
        Refusal::Page {
            status,
            title: title.to_owned(),
            detail: detail.into(),
            shell: None,
        }
    }

    /// The same refusal, with the user's navigation.
    fn with_shell(self, shell: Shell) -> Refusal {
        match self {
            Refusal::Page {
                status,
                title,
                detail,
                ..
            } => Refusal::Page {
                status,
                title,
                detail,
                shell: Some(Box::new(shell)),
            },
            other => other,
        }
    }
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Refusal {
        let (status, code, detail) = e.parts();
        if status == StatusCode::UNAUTHORIZED {
            return Refusal::SignIn;
        }
        if status.is_server_error() {
            tracing::error!(code, detail, "a dashboard page failed");
            return Refusal::page(
                status,
                "Something went wrong",
                "The server could not build this page; the error is in its log.",
            );
        }
        let title = match status {
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
            _ => "Cannot show this",
        };
        Refusal::page(status, title, detail.to_owned())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::SignIn => Redirect::to("/ui/login").into_response(),
            Refusal::Page {
                status,
                title,
                detail,
                shell,
            } => {
                let page = ErrorPage {
                    shell: shell.map(|s| *s),
                    status: status.as_u16(),
                    title,
                    detail,
                };
                match rampart_ui::render(&page) {
                    Ok(html) => (status, Html(html)).into_response(),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot render the error page");
                        status.into_response()
                    }
                }
            }
        }
    }
}

/// A rendered page, or why not.
pub(crate) type PageResult = Result<Response, Refusal>;

/// Renders a page as the response.
fn html<T: rampart_ui::Page>(page: &T) -> PageResult {
    rampart_ui::render(page)
        .map(|h| Html(h).into_response())
        .map_err(|e| Refusal::from(ApiError::internal(e)))
}

/// Renders a page as the response, under `status` (a form refused: 400, 403, 409, 422).
fn html_status<T: rampart_ui::Page>(status: StatusCode, page: &T) -> PageResult {
    let mut response = html(page)?;
    *response.status_mut() = status;
    Ok(response)
}

/// Why a form's action was refused, to show on the form's page under the refusal's status; a
/// server error or an ended session is the error page or the sign-in form instead.
fn refusal_notice(
    viewer: &Viewer,
    e: ApiError,
) -> Result<(rampart_ui::Notice, StatusCode), Refusal> {
    let (status, _, detail) = e.parts();
    if status.is_server_error() || status == StatusCode::UNAUTHORIZED {
        return Err(viewer.refuse(e));
    }
    Ok((rampart_ui::Notice::Refused(detail.to_owned()), status))
}

/// The sections of the dashboard, in navigation order, with what opening each needs.
const SECTIONS: [(&str, &str, Permission, Target<'static>); 8] = [
    ("/ui/", "Fleet", Permission::ResultsRead, Target::Listing),
    (
        "/ui/agents",
        "Agents",
        Permission::AgentsRead,
        Target::Listing,
    ),
    (
        policies::PATH,
        "Policies",
        Permission::PoliciesRead,
        Target::Fleet,
    ),
    (intel::PATH, "Intel", Permission::IntelRead, Target::Fleet),
    (
        waivers::PATH,
        "Waivers",
        Permission::ResultsRead,
        Target::Fleet,
    ),
    (
        enrolment::PATH,
        "Enrolment",
        Permission::EnrolmentRead,
        Target::Listing,
    ),
    (users::PATH, "Users", Permission::UsersRead, Target::Fleet),
    // The log covers every group: a user limited to some may not read it.
    (
        audit::PATH,
        "Audit",
        Permission::AuditRead,
        Target::AllGroups,
    ),
];

/// The signed-in user of a page request, and their navigation.
pub(crate) struct Viewer {
    pub caller: Caller,
    pub shell: Shell,
}

impl Viewer {
    /// The viewer, if the request carries a live session (or an API token), with `current` as
    /// the page shown. A browser without one is sent to sign in.
    async fn of(
        app: &App,
        parts: &axum::http::request::Parts,
        current: &str,
    ) -> Result<Viewer, Refusal> {
        let caller = crate::routes::authenticate(app, parts).await?;
        let nav = SECTIONS
            .iter()
            .filter(|(_, _, permission, target)| caller.check(*permission, *target).is_ok())
            .map(|(href, label, _, _)| NavLink {
                href: (*href).to_owned(),
                label: (*label).to_owned(),
                current: *href == current,
            })
            .collect();
        let shell = Shell {
            user: caller.user.name.clone(),
            role: caller.user.role.to_string(),
            csrf: caller.csrf_token().unwrap_or_default().to_owned(),
            nav,
        };
        Ok(Viewer { caller, shell })
    }

    /// Refuses unless the viewer holds `permission` on `target`; the refusal keeps the
    /// navigation, so the user can go where they may.
    fn require(&self, permission: Permission, target: Target<'_>) -> Result<(), Refusal> {
        self.caller
            .check(permission, target)
            .map_err(|e| Refusal::from(e).with_shell(self.shell.clone()))
    }

    /// A refusal of this viewer's request, with their navigation.
    fn refuse(&self, e: impl Into<Refusal>) -> Refusal {
        e.into().with_shell(self.shell.clone())
    }
}

/// A form must come from a page of this server: a browser says where a post comes from
/// (`Sec-Fetch-Site`, `Origin`), and a cross-site post is refused even before the CSRF token
/// is looked at (signing a victim into an attacker's account needs no token).
pub(super) fn same_origin(headers: &HeaderMap) -> Result<(), Refusal> {
    let refused = || {
        Refusal::from(ApiError::forbidden(
            "cross_site",
            "this form was posted from another site",
        ))
    };
    if let Some(site) = headers.get("sec-fetch-site")
        && !matches!(site.to_str(), Ok("same-origin" | "none"))
    {
        return Err(refused());
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let expected = host.map(|h| format!("https://{h}"));
        if origin.to_str().ok() != expected.as_deref() {
            return Err(refused());
        }
    }
    Ok(())
}

/// What every form of a signed-in page carries besides its own fields.
#[derive(serde::Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

impl Viewer {
    /// The viewer of a form post and the form's fields, once the post is known to come from a
    /// page of this session: from this origin, as a form, within the size limit, carrying the
    /// session's CSRF token. An API token has no CSRF token: forms are for browser sessions.
    async fn posted<F: serde::de::DeserializeOwned>(
        app: &App,
        req: Request,
        current: &str,
    ) -> Result<(Viewer, F), Refusal> {
        let (parts, body) = req.into_parts();
        same_origin(&parts.headers)?;
        let viewer = Viewer::of(app, &parts, current).await?;
        let is_form = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(viewer.refuse(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "a form posts application/x-www-form-urlencoded",
            )));
        }
        let bytes = axum::body::to_bytes(body, FORM_LIMIT).await.map_err(|_| {
            viewer.refuse(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("a form is at most {FORM_LIMIT} bytes"),
            ))
        })?;
        let bad = |e: serde_urlencoded::de::Error| {
            viewer.refuse(ApiError::bad_request("invalid_form", e.to_string()))
        };
        let CsrfField { csrf } = serde_urlencoded::from_bytes(&bytes).map_err(bad)?;
        if !viewer.caller.csrf_matches(&csrf) {
            return Err(viewer.refuse(ApiError::forbidden(
                "csrf_failed",
                "this form did not come from a page of this session: reload the page and try again",
            )));
        }
        let form = serde_urlencoded::from_bytes(&bytes).map_err(bad)?;
        Ok((viewer, form))
    }
}

/// `?done=WHAT`: what a form just did, for the page it redirected to to say so.
#[derive(serde::Deserialize)]
pub(super) struct DoneQuery {
    #[serde(default)]
    done: Option<String>,
}

/// `State` for the handlers, short.
type AppState = State<Arc<App>>;

/// The agents a fleet page covers: the viewer's groups, narrowed by the group and operating
/// system the page was asked for (a group the viewer may not read results of is refused).
pub(crate) struct Scope {
    visible: Option<Vec<String>>,
    /// The group asked for.
    pub group: Option<String>,
    /// The operating system asked for.
    pub os: Option<String>,
    /// The label asked for: name and value.
    pub label: Option<(String, String)>,
}

impl Scope {
    /// The scope of `viewer`'s request for `group`, `os` and `label` (`name=value`): query
    /// values, checked here.
    fn of(
        viewer: &Viewer,
        group: Option<String>,
        os: Option<String>,
        label: Option<String>,
    ) -> Result<Scope, Refusal> {
        let group = fleet::filter("group", group, true).map_err(|e| viewer.refuse(e))?;
        let os = fleet::filter("os", os, false).map_err(|e| viewer.refuse(e))?;
        let label = match fleet::filter("label", label, false).map_err(|e| viewer.refuse(e))? {
            None => None,
            Some(l) => {
                let (name, value) = l.split_once('=').ok_or_else(|| {
                    viewer.refuse(ApiError::bad_request(
                        "invalid_query",
                        format!("label: name=value, not {l:?}"),
                    ))
                })?;
                rampart_core::names::check_name("label", name)
                    .map_err(|e| viewer.refuse(ApiError::bad_request("invalid_query", e)))?;
                Some((name.to_owned(), value.to_owned()))
            }
        };
        if let Some(g) = &group {
            viewer.require(Permission::ResultsRead, Target::Group(g))?;
        }
        Ok(Scope {
            visible: viewer.caller.groups().map(|g| g.into_iter().collect()),
            group,
            os,
            label,
        })
    }

    /// The store's view of it.
    fn store(&self) -> rampart_store::FleetScope<'_> {
        rampart_store::FleetScope {
            visible: self.visible.as_deref(),
            group: self.group.as_deref(),
            os: self.os.as_deref(),
            label: self.label.as_ref().map(|(n, v)| (n.as_str(), v.as_str())),
        }
    }
}

/// Formats a time for a page: UTC, to the minute.
fn when(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_utc_to_the_minute() {
        let t = time::macros::datetime!(2026-12-03 22:05:59 +02:00);
        assert_eq!(super::when(t), "2026-12-03 20:05");
    }
}
