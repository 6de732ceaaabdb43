//! Rampart's web dashboard pages.
//!
//! Every page is an [`askama`] template, checked when this crate compiles and HTML-escaped by
//! default: agent names, evidence and feed values come from machines an attacker may control,
//! so nothing here is ever marked safe. Charts are SVG drawn from numbers only, inline in the
//! page: no script draws them and the strict content security policy the server sends
//! ([`CONTENT_SECURITY_POLICY`]) needs no exception for them.
//!
//! This crate is pure: the server loads what a page shows, builds its view model and serves
//! the rendered text. That keeps every page testable without a server and keeps the data
//! access (and who may see what) in one place, the server.

pub mod admin;
pub mod intel;
pub mod pages;
pub mod policies;
pub mod runs;
pub mod svg;

pub use admin::*;
pub use intel::*;
pub use pages::*;
pub use policies::*;
pub use runs::*;

/// The dashboard's policy: its own stylesheet and script only, forms posting only to itself,
/// never framed. Inline SVG is markup, not a loaded resource, so it needs no source.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; \
     script-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// The stylesheet, served by the server at [`STYLESHEET_PATH`].
pub const STYLESHEET: &str = include_str!("../static/rampart.css");

/// Where the pages load the stylesheet from.
pub const STYLESHEET_PATH: &str = "/ui/static/rampart.css";

/// The live-update script, served at [`SCRIPT_PATH`]: the pages' only script, loaded from
/// this origin as the content security policy requires.
pub const SCRIPT: &str = include_str!("../static/live.js");

/// Where the pages load the script from.
pub const SCRIPT_PATH: &str = "/ui/static/live.js";

/// The tab icon (SVG), served at [`ICON_PATH`]: without one a browser asks for
/// `/favicon.ico` on every page and logs the 404.
pub const ICON: &str = include_str!("../static/icon.svg");

/// Where the pages link the icon from.
pub const ICON_PATH: &str = "/ui/static/icon.svg";

/// A page that could not be rendered: a template's value failed to format. Not expected with
/// the types used here, but never a panic.
#[derive(Debug, thiserror::Error)]
#[error("rendering the {page} page: {source}")]
pub struct RenderError {
    page: &'static str,
    #[source]
    source: askama::Error,
}

/// Renders a page to HTML.
pub fn render<T: pages::Page>(page: &T) -> Result<String, RenderError> {
    page.render().map_err(|source| RenderError {
        page: T::NAME,
        source,
    })
}
