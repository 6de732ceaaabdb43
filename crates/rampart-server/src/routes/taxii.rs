//! A read-only TAXII 2.1 server (OASIS TAXII 2.1, sections 4–5) over the live indicators, so
//! SIEMs, TIPs and firewalls that speak TAXII pull Rampart's deduplicated set directly.
//!
//! One API root (`/taxii2/api/`) with one collection, `indicators`: every live indicator that
//! no allowlist covers, as STIX 2.1 objects (indicator + observable + `based-on` relationship;
//! a `vulnerability` for CVEs) with deterministic ids. An object's `date_added` is when Rampart
//! first ingested its indicator; pages follow ingestion order, so `added_after` plus `next`
//! walk the collection without gaps or repeats. Authentication: the admin token as a bearer
//! token or as the password of HTTP Basic (what TAXII clients send).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_intel::export::{from_row, stix_objects};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::auth::Admin;
use crate::app::App;
use crate::error::ApiError;
use crate::intel::now;

/// The TAXII 2.1 media type (requests' `Accept`, every response's `Content-Type`).
pub(crate) const TAXII: &str = "application/taxii+json;version=2.1";
const STIX: &str = "application/stix+json;version=2.1";
/// The one collection's id (a fixed UUID, so clients can keep it in their configuration).
pub(crate) const COLLECTION_ID: &str = "3f6d9a52-5c1e-4b8a-9e27-6a0c1d4e7b90";
/// Objects per page when the client names no `limit`, and the most it may ask for.
const DEFAULT_LIMIT: usize = 1_000;
const MAX_LIMIT: usize = 10_000;
/// Indicator rows read per store query while filling a page.
const ROWS_PER_QUERY: i64 = 1_000;
/// Indicator rows one request reads at most: a filter that matches little (`match[id]` on a
/// large collection) returns an empty page with `more` and `next` instead of scanning all of it.
const MAX_ROWS_SCANNED: usize = 50_000;

/// A TAXII error message (section 3.6.1), with the TAXII media type.
pub(crate) struct TaxiiError(ApiError);

impl From<ApiError> for TaxiiError {
    fn from(e: ApiError) -> Self {
        TaxiiError(e)
    }
}

impl From<rampart_store::StoreError> for TaxiiError {
    fn from(e: rampart_store::StoreError) -> Self {
        TaxiiError(e.into())
    }
}

impl IntoResponse for TaxiiError {
    fn into_response(self) -> Response {
        let (status, code, detail) = self.0.parts();
        let body = json!({
            "title": status.canonical_reason().unwrap_or("error"),
            "description": detail,
            "error_code": code,
            "http_status": status.as_u16().to_string(),
        });
        let mut resp = (status, taxii_json(&body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"rampart-taxii\""),
            );
        }
        resp
    }
}

fn taxii_json(v: &Value) -> ([(header::HeaderName, &'static str); 1], Vec<u8>) {
    (
        [(header::CONTENT_TYPE, TAXII)],
        serde_json::to_vec(v).unwrap_or_default(),
    )
}

/// Refuses requests whose `Accept` excludes TAXII 2.1 (section 1.6.8.1: 406).
fn check_accept(headers: &HeaderMap) -> Result<(), TaxiiError> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let ok = accept.split(',').any(|part| {
        let media = part.split(';').next().unwrap_or("").trim();
        let version = part
            .split(';')
            .skip(1)
            .map(str::trim)
            .find_map(|p| p.strip_prefix("version="));
        match media {
            "*/*" | "application/*" => true,
            "application/taxii+json" => version.is_none_or(|v| v.trim() == "2.1"),
            _ => false,
        }
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            format!("Accept {accept:?}: this server speaks {TAXII}"),
        )
        .into())
    }
}

fn api_root_url(app: &App) -> String {
    format!("{}/taxii2/api/", app.api_url)
}

fn ok(v: &Value) -> Response {
    taxii_json(v).into_response()
}

/// TAXII time stamps: RFC 3339 in UTC with milliseconds.
fn taxii_time(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .map(|t| t.replace('Z', ".000Z"))
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".into())
}

fn parse_time(field: &str, text: &str) -> Result<i64, TaxiiError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|e| {
            ApiError::bad_request(
                "invalid_field",
                format!("{field} {text:?}: not an RFC 3339 timestamp ({e})"),
            )
            .into()
        })
}

fn collection() -> Value {
    json!({
        "id": COLLECTION_ID,
        "title": "Rampart indicators",
        "description": "Every live, deduplicated indicator no allowlist covers, scored (confidence) from its sources' reliability, confidence, sightings and age.",
        "can_read": true,
        "can_write": false,
        "media_types": [STIX],
    })
}

fn check_collection(id: &str) -> Result<(), TaxiiError> {
    if id == COLLECTION_ID {
        Ok(())
    } else {
        Err(ApiError::not_found("collection", id).into())
    }
}

pub(crate) async fn discovery(
    State(app): State<Arc<App>>,
    admin: Result<Admin, ApiError>,
    headers: HeaderMap,
) -> Result<Response, TaxiiError> {
    admin?;
    check_accept(&headers)?;
    Ok(ok(&json!({
        "title": "Rampart TAXII 2.1",
        "description": "Read-only threat intelligence from Rampart.",
        "default": api_root_url(&app),
        "api_roots": [api_root_url(&app)],
    })))
}

pub(crate) async fn api_root(
    State(app): State<Arc<App>>,
    admin: Result<Admin, ApiError>,
    headers: HeaderMap,
) -> Result<Response, TaxiiError> {
    admin?;
    check_accept(&headers)?;
    Ok(ok(&json!({
        "title": "Rampart indicators",
        "versions": [TAXII],
        "max_content_length": app.config.max_body_bytes,
    })))
}

pub(crate) async fn collections(
    admin: Result<Admin, ApiError>,
    headers: HeaderMap,
) -> Result<Response, TaxiiError> {
    admin?;
    check_accept(&headers)?;
    Ok(ok(&json!({"collections": [collection()]})))
}

pub(crate) async fn one_collection(
    admin: Result<Admin, ApiError>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, TaxiiError> {
    admin?;
    check_accept(&headers)?;
    check_collection(&id)?;
    Ok(ok(&collection()))
}

/// Query parameters of the objects and manifest endpoints (section 3.4).
#[derive(Deserialize, JsonSchema, Default)]
pub(crate) struct ObjectsQuery {
    /// Only objects added after this time (RFC 3339).
    added_after: Option<String>,
    /// At most this many objects (default 1,000, at most 10,000).
    limit: Option<usize>,
    /// The `next` value of the previous page.
    next: Option<String>,
    /// Only these object ids (comma-separated).
    #[serde(rename = "match[id]")]
    match_id: Option<String>,
    /// Only these STIX types (comma-separated).
    #[serde(rename = "match[type]")]
    match_type: Option<String>,
    /// Versions: only `last` (the default) and `all` are meaningful here — each object has one.
    #[serde(rename = "match[version]")]
    match_version: Option<String>,
    /// Spec versions: only `2.1` matches.
    #[serde(rename = "match[spec_version]")]
    match_spec_version: Option<String>,
}

/// One object of the collection with its TAXII metadata.
struct Item {
    object: Value,
    date_added: i64,
}

struct Page {
    items: Vec<Item>,
    more: bool,
    next: Option<String>,
}

fn list(text: &Option<String>) -> Option<Vec<String>> {
    text.as_ref().map(|t| {
        t.split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    })
}

/// Fills one page: indicator rows in ingestion order, each expanded to its STIX objects and
/// filtered; a page ends on an indicator boundary, so `next` (the last indicator's row id)
/// resumes exactly after it.
async fn page(app: &App, q: &ObjectsQuery) -> Result<Page, TaxiiError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("limit {limit}: must be 1–{MAX_LIMIT}"),
        )
        .into());
    }
    let spec_ok = list(&q.match_spec_version).is_none_or(|l| l.iter().any(|v| v == "2.1"));
    let added_after = match &q.added_after {
        Some(t) => Some(parse_time("added_after", t)?),
        None => None,
    };
    let mut after = match &q.next {
        Some(n) => n.parse::<i64>().map_err(|_| {
            TaxiiError(ApiError::bad_request(
                "invalid_field",
                format!("next {n:?}: not a value this server returned"),
            ))
        })?,
        None => 0,
    };
    let ids = list(&q.match_id);
    let types = list(&q.match_type);
    // `last`, `first` and `all` select every object (each has one version); timestamps
    // select by version.
    let stamps: Vec<i64> = list(&q.match_version)
        .unwrap_or_default()
        .iter()
        .filter(|v| !matches!(v.as_str(), "last" | "first" | "all"))
        .map(|v| parse_time("match[version]", v))
        .collect::<Result<_, _>>()?;
    let versions = (!stamps.is_empty()).then_some(stamps);
    let mut items = Vec::new();
    if !spec_ok {
        // Every object here is STIX 2.1.
        return Ok(Page {
            items,
            more: false,
            next: None,
        });
    }
    let allow = app.intel.allowlists();
    let at = now();
    let mut scanned = 0usize;
    loop {
        let rows = app
            .store
            .intel_export_page(at, after, added_after, ROWS_PER_QUERY)
            .await?;
        let exhausted = (rows.len() as i64) < ROWS_PER_QUERY;
        scanned += rows.len();
        for (row, first_reported) in rows {
            let id = row.indicator.id;
            let Some(e) = from_row(row, at) else {
                after = id;
                continue;
            };
            if allow.check(&e.ioc).is_some() {
                after = id;
                continue;
            }
            let objects: Vec<Value> = stix_objects(&e)
                .into_iter()
                .filter(|o| {
                    ids.as_ref()
                        .is_none_or(|l| l.iter().any(|i| o["id"].as_str() == Some(i)))
                        && types
                            .as_ref()
                            .is_none_or(|l| l.iter().any(|t| o["type"].as_str() == Some(t)))
                        && versions.as_ref().is_none_or(|l| {
                            let version = version_of(o, first_reported);
                            l.iter().any(|v| taxii_time(*v) == version)
                        })
                })
                .collect();
            if !items.is_empty() && items.len() + objects.len() > limit {
                return Ok(Page {
                    items,
                    more: true,
                    next: Some(after.to_string()),
                });
            }
            after = id;
            items.extend(objects.into_iter().map(|object| Item {
                object,
                date_added: first_reported,
            }));
        }
        if exhausted {
            return Ok(Page {
                items,
                more: false,
                next: None,
            });
        }
        if scanned >= MAX_ROWS_SCANNED {
            return Ok(Page {
                items,
                more: true,
                next: Some(after.to_string()),
            });
        }
    }
}

/// An object's version: its `modified`, else `created`, else when it was added.
fn version_of(o: &Value, date_added: i64) -> String {
    o["modified"]
        .as_str()
        .or_else(|| o["created"].as_str())
        .map(normalise_time)
        .unwrap_or_else(|| taxii_time(date_added))
}

fn normalise_time(s: &str) -> String {
    OffsetDateTime::parse(s, &Rfc3339)
        .map(|t| taxii_time(t.unix_timestamp()))
        .unwrap_or_else(|_| s.to_owned())
}

fn with_date_headers(mut resp: Response, items: &[Item]) -> Response {
    let first = items.iter().map(|i| i.date_added).min();
    let last = items.iter().map(|i| i.date_added).max();
    for (name, value) in [
        ("x-taxii-date-added-first", first),
        ("x-taxii-date-added-last", last),
    ] {
        if let Some(v) = value
            && let Ok(h) = HeaderValue::from_str(&taxii_time(v))
        {
            resp.headers_mut()
                .insert(header::HeaderName::from_static(name), h);
        }
    }
    resp
}

/// A paged TAXII resource: `more`, `next`, and `objects` (each item rendered by `render`)
/// when there are any, with the date headers.
fn paged(page: &Page, render: impl Fn(&Item) -> Value) -> Response {
    let mut body = json!({"more": page.more});
    if let Some(n) = &page.next {
        body["next"] = json!(n);
    }
    if !page.items.is_empty() {
        body["objects"] = Value::Array(page.items.iter().map(render).collect());
    }
    with_date_headers(ok(&body), &page.items)
}

fn envelope(page: Page) -> Response {
    paged(&page, |i| i.object.clone())
}

pub(crate) async fn objects(
    State(app): State<Arc<App>>,
    admin: Result<Admin, ApiError>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ObjectsQuery>,
) -> Result<Response, TaxiiError> {
    admin?;
    check_accept(&headers)?;
    check_collection(&id)?;
    Ok(envelope(page(&app, &q).await?))
}

/// One object by id (all its versions: one). Object ids are derived from the indicator, not
/// stored, so this walks the collection: linear in its size.
pub(crate) async fn object(
    State(app): State<Arc<App>>,
    admin: Result<Admin, ApiError>,
    headers: HeaderMap,
    Path((id, object_id)): Path<(String, String)>,
    Query(mut q): Query<ObjectsQuery>,
) -> Result<Response, TaxiiError> {
    admin?;
    check_accept(&headers)?;
    check_collection(&id)?;
    q.match_id = Some(object_id.clone());
    let page = page(&app, &q).await?;
    if page.items.is_empty() && !page.more && q.next.is_none() {
        return Err(ApiError::not_found("object", &object_id).into());
    }
    Ok(envelope(page))
}

pub(crate) async fn manifest(
    State(app): State<Arc<App>>,
    admin: Result<Admin, ApiError>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ObjectsQuery>,
) -> Result<Response, TaxiiError> {
    admin?;
    check_accept(&headers)?;
    check_collection(&id)?;
    let page = page(&app, &q).await?;
    Ok(paged(&page, |i| {
        json!({
            "id": i.object["id"],
            "date_added": taxii_time(i.date_added),
            "version": version_of(&i.object, i.date_added),
            "media_type": STIX,
        })
    }))
}
