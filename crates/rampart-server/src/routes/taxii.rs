//! A read-only TAXII 2.1 server (OASIS TAXII 2.1, sections 4–5) over the live indicators, so
//! SIEMs, TIPs and firewalls that speak TAXII pull Rampart's deduplicated set directly.
//!
//! One API root (`/taxii2/api/`) with one collection, `indicators`: every live indicator that
//! no allowlist covers, as STIX 2.1 objects (indicator + observable + `based-on` relationship;
//! a `vulnerability` for CVEs) with deterministic ids. Every change to an indicator (a new
//! source, new dates, a higher score, a sighting) is a new version: its objects' `modified`
//! is the version's stamp and their `date_added` the stamp + the object's position, handed
//! out in commit order by the store's clock (`rampart_store::STAMPS_PER_VERSION`). So no object
//! committed after a response can carry a `date_added` at or before that response's
//! `X-TAXII-Date-Added-Last`, on one server or several replicas: a poller that sends it back
//! as `added_after` misses nothing and sees each version once. Rampart keeps the current
//! version of each object. Authentication: the admin token as a bearer token or as the
//! password of HTTP Basic (what TAXII clients send).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_intel::export::{from_row, stix_objects};
use rampart_store::{ExportCursor, STAMPS_PER_VERSION};
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
        taxii_error(status, code, detail)
    }
}

/// A TAXII error message (section 3.6.1) with its status; a 401 asks for Basic credentials,
/// which is what TAXII clients send.
fn taxii_error(status: StatusCode, code: &str, detail: &str) -> Response {
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

/// The parts of a problem object a TAXII error carries over.
#[derive(Deserialize)]
struct ProblemParts {
    detail: String,
    code: String,
}

/// Every error under `/taxii2/` is a TAXII error message, including the ones no TAXII handler
/// wrote: the router's 404 and 405, extractor rejections (a `limit` that is not a number),
/// body and time limits, the authentication limiter's 429. Their status, detail and
/// exchange headers (`Allow`, `Retry-After`) are kept.
pub(crate) async fn rewrite_error(response: Response) -> Response {
    let status = response.status();
    let content_type = super::problem::content_type_of(&response);
    if !(status.is_client_error() || status.is_server_error())
        || content_type.starts_with("application/taxii+json")
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, super::problem::DETAIL_MAX)
        .await
        .unwrap_or_default();
    let (code, detail) = match serde_json::from_slice::<ProblemParts>(&bytes) {
        Ok(p) if content_type.starts_with("application/problem+json") => (p.code, p.detail),
        _ => (
            super::problem::code_of(status).to_owned(),
            super::problem::detail_of(status, &bytes),
        ),
    };
    let mut rewritten = taxii_error(status, &code, &detail);
    super::problem::carry_headers(&parts.headers, &mut rewritten);
    rewritten
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

/// TAXII time stamps: RFC 3339 in UTC with microseconds, the clock's resolution: every
/// object's `date_added` is distinct, so `X-TAXII-Date-Added-Last` is an exact cursor.
fn taxii_time(us: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(us.div_euclid(1_000_000))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        us.rem_euclid(1_000_000)
    )
}

/// An RFC 3339 time in microseconds, rounded down: "after 12:00:00.0000015" is "after
/// 12:00:00.000001" at this resolution, since no stamp lies between the two.
fn parse_time(field: &str, text: &str) -> Result<i64, TaxiiError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .and_then(|t| i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000)).ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_field",
                format!("{field} {text:?}: not an RFC 3339 timestamp"),
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

/// Query parameters of the objects, object, versions and manifest endpoints (section 3.4).
#[derive(Deserialize, JsonSchema, Default)]
pub(crate) struct ObjectsQuery {
    /// Only objects added after this time (RFC 3339; microseconds are honoured).
    #[schemars(extend("format" = "date-time"))]
    added_after: Option<String>,
    /// At most this many objects (default 1,000; larger values are capped at 10,000).
    #[schemars(range(min = 1, max = 4_294_967_295u64))]
    limit: Option<u64>,
    /// The `next` value of the previous page.
    next: Option<String>,
    /// Only these object ids (comma-separated).
    #[serde(rename = "match[id]")]
    match_id: Option<String>,
    /// Only these STIX types (comma-separated).
    #[serde(rename = "match[type]")]
    match_type: Option<String>,
    /// Versions: `last` (the default), `first`, `all`, or `modified` timestamps
    /// (comma-separated). Rampart keeps the current version of each object.
    #[serde(rename = "match[version]")]
    match_version: Option<String>,
    /// Spec versions: only `2.1` matches.
    #[serde(rename = "match[spec_version]")]
    match_spec_version: Option<String>,
}

/// One object of the collection with its TAXII metadata.
struct Item {
    object: Value,
    /// When this version of the object was added, microseconds.
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

/// The filters of one request, parsed.
struct Filter {
    limit: usize,
    /// Objects added at or before this stamp are not returned (`added_after`, `next`).
    cursor: i64,
    ids: Option<Vec<String>>,
    types: Option<Vec<String>>,
    /// `modified` stamps to match, when timestamps were asked for.
    versions: Option<Vec<i64>>,
    spec_ok: bool,
}

impl Filter {
    fn parse(q: &ObjectsQuery) -> Result<Filter, TaxiiError> {
        let limit = match q.limit {
            None => DEFAULT_LIMIT,
            Some(0) => {
                return Err(ApiError::bad_request(
                    "invalid_field",
                    "limit 0: must be a positive integer (values above 10000 are capped)",
                )
                .into());
            }
            Some(n) => usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT),
        };
        let mut cursor = match &q.added_after {
            Some(t) => parse_time("added_after", t)?,
            None => i64::MIN,
        };
        if let Some(n) = &q.next {
            let stamp = n.parse::<i64>().map_err(|_| {
                TaxiiError(ApiError::bad_request(
                    "invalid_field",
                    format!("next {n:?}: not a value this server returned"),
                ))
            })?;
            cursor = cursor.max(stamp);
        }
        // `last`, `first` and `all` select every object (Rampart keeps one version of each);
        // timestamps select by `modified`.
        let stamps: Vec<i64> = list(&q.match_version)
            .unwrap_or_default()
            .iter()
            .filter(|v| !matches!(v.as_str(), "last" | "first" | "all"))
            .map(|v| parse_time("match[version]", v))
            .collect::<Result<_, _>>()?;
        Ok(Filter {
            limit,
            cursor,
            ids: list(&q.match_id),
            types: list(&q.match_type),
            versions: (!stamps.is_empty()).then_some(stamps),
            spec_ok: list(&q.match_spec_version).is_none_or(|l| l.iter().any(|v| v == "2.1")),
        })
    }

    fn matches(&self, item: &Item) -> bool {
        let o = &item.object;
        self.ids
            .as_ref()
            .is_none_or(|l| l.iter().any(|i| o["id"].as_str() == Some(i)))
            && self
                .types
                .as_ref()
                .is_none_or(|l| l.iter().any(|t| o["type"].as_str() == Some(t)))
            && self
                .versions
                .as_ref()
                .is_none_or(|l| l.contains(&version_stamp(o, item.date_added)))
    }
}

/// Fills one page. Indicator rows come in version order, each expanded to its STIX objects,
/// the k-th added at the version's stamp + k; objects at or before the cursor are skipped, so
/// a page may end inside an indicator and `next` (the last stamp served) resumes exactly
/// after it. `more` is true only when another matching object was seen.
async fn page(app: &App, f: &Filter) -> Result<Page, TaxiiError> {
    let mut items = Vec::new();
    if !f.spec_ok {
        // Every object here is STIX 2.1.
        return Ok(Page {
            items,
            more: false,
            next: None,
        });
    }
    let rules = app
        .intel
        .current_rules(&app.store)
        .await
        .map_err(|e| TaxiiError(ApiError::internal(e)))?;
    let at = now();
    let mut query_after = f.cursor;
    // The largest stamp examined: where a page cut short by the scan bound resumes.
    let mut examined = f.cursor;
    let mut scanned = 0usize;
    loop {
        let rows = app
            .store
            .intel_export_page(at, ExportCursor::AfterStamp(query_after), ROWS_PER_QUERY)
            .await?;
        let exhausted = (rows.len() as i64) < ROWS_PER_QUERY;
        scanned += rows.len();
        for row in rows {
            let version = row.version;
            query_after = version.saturating_add(STAMPS_PER_VERSION);
            examined = examined.max(version.saturating_add(STAMPS_PER_VERSION - 1));
            let Some(e) = from_row(row, at, &rules.decay) else {
                continue;
            };
            if rules.allow.check(&e.ioc).is_some() {
                continue;
            }
            for (k, object) in stix_objects(&e).into_iter().enumerate() {
                let date_added = version.saturating_add(k as i64);
                if date_added <= f.cursor {
                    continue;
                }
                let item = Item { object, date_added };
                if !f.matches(&item) {
                    continue;
                }
                if items.len() == f.limit {
                    let next = items.last().map(|i: &Item| i.date_added.to_string());
                    return Ok(Page {
                        items,
                        more: true,
                        next,
                    });
                }
                items.push(item);
            }
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
                next: Some(examined.to_string()),
            });
        }
    }
}

/// An object's version as a stamp: its `modified`, else `created`, else when it was added.
fn version_stamp(o: &Value, date_added: i64) -> i64 {
    o["modified"]
        .as_str()
        .or_else(|| o["created"].as_str())
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .and_then(|t| i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000)).ok())
        .unwrap_or(date_added)
}

/// An object's version as TAXII writes it.
fn version_of(o: &Value, date_added: i64) -> String {
    o["modified"]
        .as_str()
        .or_else(|| o["created"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| taxii_time(date_added))
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

/// A paged TAXII resource: `more`, `next`, and the items under `key` (each rendered by
/// `render`) when there are any, with the date headers.
fn paged(page: &Page, key: &str, render: impl Fn(&Item) -> Value) -> Response {
    let mut body = json!({"more": page.more});
    if let Some(n) = &page.next {
        body["next"] = json!(n);
    }
    if !page.items.is_empty() {
        body[key] = Value::Array(page.items.iter().map(render).collect());
    }
    with_date_headers(ok(&body), &page.items)
}

fn envelope(page: Page) -> Response {
    paged(&page, "objects", |i| i.object.clone())
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
    Ok(envelope(page(&app, &Filter::parse(&q)?).await?))
}

/// The page of one object's versions, or 404 when the whole collection was walked without
/// finding it. Object ids are derived from the indicator, not stored, so this walks the
/// collection: linear in its size, bounded per request like every page (`more` and `next`
/// resume a walk that did not reach the end).
async fn one_object(app: &App, q: ObjectsQuery, object_id: &str) -> Result<Page, TaxiiError> {
    let mut f = Filter::parse(&q)?;
    f.ids = Some(vec![object_id.to_owned()]);
    let page = page(app, &f).await?;
    if page.items.is_empty() && !page.more && q.next.is_none() {
        return Err(ApiError::not_found("object", object_id).into());
    }
    Ok(page)
}

pub(crate) async fn object(
    State(app): State<Arc<App>>,
    admin: Result<Admin, ApiError>,
    headers: HeaderMap,
    Path((id, object_id)): Path<(String, String)>,
    Query(q): Query<ObjectsQuery>,
) -> Result<Response, TaxiiError> {
    admin?;
    check_accept(&headers)?;
    check_collection(&id)?;
    Ok(envelope(one_object(&app, q, &object_id).await?))
}

/// Every version of one object (section 5.8): Rampart keeps the current one.
pub(crate) async fn versions(
    State(app): State<Arc<App>>,
    admin: Result<Admin, ApiError>,
    headers: HeaderMap,
    Path((id, object_id)): Path<(String, String)>,
    Query(q): Query<ObjectsQuery>,
) -> Result<Response, TaxiiError> {
    admin?;
    check_accept(&headers)?;
    check_collection(&id)?;
    let page = one_object(&app, q, &object_id).await?;
    Ok(paged(&page, "versions", |i| {
        json!(version_of(&i.object, i.date_added))
    }))
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
    let page = page(&app, &Filter::parse(&q)?).await?;
    Ok(paged(&page, "objects", |i| {
        json!({
            "id": i.object["id"],
            "date_added": taxii_time(i.date_added),
            "version": version_of(&i.object, i.date_added),
            "media_type": STIX,
        })
    }))
}
