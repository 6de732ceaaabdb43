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
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::app::App;
use crate::error::ApiError;
use crate::intel::now;

/// The TAXII 2.1 media type (requests' `Accept`, every response's `Content-Type`).
pub(crate) const TAXII: &str = "application/taxii+json;version=2.1";
const STIX: &str = "application/stix+json;version=2.1";
/// The one collection's id (a fixed UUID, so clients can keep it in their configuration).
/// An RFC 3339 timestamp of a real calendar date (29 February aside) as a regular
/// expression: what `time` parses, so the document promises nothing the server refuses.
macro_rules! TIMESTAMP_PATTERN {
    () => {
        concat!(
            "[0-9]{4}-(02-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(0[1-9]|[12][0-9]|30)|(0[13578]|1[02])-31)",
            "T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
        )
    };
}

/// Discovery (section 4.1).
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "TaxiiDiscovery")]
pub(crate) struct Discovery {
    title: String,
    description: String,
    default: String,
    api_roots: Vec<String>,
}

/// An API root (section 4.2).
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "TaxiiApiRoot")]
pub(crate) struct ApiRoot {
    title: String,
    versions: Vec<String>,
    max_content_length: usize,
}

/// A collection (section 5.2).
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "TaxiiCollection")]
pub(crate) struct Collection {
    id: String,
    title: String,
    description: String,
    can_read: bool,
    can_write: bool,
    media_types: Vec<String>,
}

/// The collections (section 5.1).
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "TaxiiCollections")]
pub(crate) struct Collections {
    collections: Vec<Collection>,
}

/// A STIX 2.1 object as the STIX export writes it (an indicator, an observable or a
/// relationship); its own schema is STIX's.
#[derive(Serialize)]
#[serde(transparent)]
pub(crate) struct StixObject(Value);

impl JsonSchema for StixObject {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StixObject".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "description": "A STIX 2.1 object (indicator, observable or relationship).",
            "required": ["type", "id", "spec_version"],
            "properties": {
                "type": {"type": "string"},
                "id": {"type": "string"},
                "spec_version": {"type": "string", "const": "2.1"}
            }
        })
    }
}

/// An envelope (section 3.7): one page of objects.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "TaxiiEnvelope")]
pub(crate) struct Envelope {
    more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    objects: Option<Vec<StixObject>>,
}

/// One object's versions (section 5.8).
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "TaxiiVersions")]
pub(crate) struct Versions {
    more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    versions: Option<Vec<String>>,
}

/// One manifest record (section 5.3.1).
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "TaxiiManifestRecord")]
pub(crate) struct ManifestRecord {
    id: String,
    date_added: String,
    version: String,
    media_type: String,
}

/// A manifest (section 5.3): one page of records.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "TaxiiManifest")]
pub(crate) struct Manifest {
    more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    objects: Option<Vec<ManifestRecord>>,
}

/// An error message (section 3.6.1), what every error under `/taxii2/` is.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "TaxiiError")]
pub(crate) struct ErrorMessage {
    title: String,
    description: String,
    error_code: String,
    http_status: String,
}

/// `match[version]` as the server reads it: `last`, `first`, `all` or RFC 3339 timestamps
/// (calendar dates: no 30 February), comma-separated.
const MATCH_VERSION_PATTERN: &str = concat!(
    "^(last|first|all|",
    TIMESTAMP_PATTERN!(),
    ")(,(last|first|all|",
    TIMESTAMP_PATTERN!(),
    "))*$"
);

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
    let body = ErrorMessage {
        title: status.canonical_reason().unwrap_or("error").to_owned(),
        description: detail.to_owned(),
        error_code: code.to_owned(),
        http_status: status.as_u16().to_string(),
    };
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

fn taxii_json(v: &impl Serialize) -> ([(header::HeaderName, &'static str); 1], Vec<u8>) {
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

fn ok(v: &impl Serialize) -> Response {
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

fn collection() -> Collection {
    Collection {
        id: COLLECTION_ID.to_owned(),
        title: "Rampart indicators".to_owned(),
        description: "Every live, deduplicated indicator no allowlist covers, scored (confidence) from its sources' reliability, confidence, sightings and age.".to_owned(),
        can_read: true,
        can_write: false,
        media_types: vec![STIX.to_owned()],
    }
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
    headers: HeaderMap,
) -> Result<Response, TaxiiError> {
    check_accept(&headers)?;
    Ok(ok(&Discovery {
        title: "Rampart TAXII 2.1".to_owned(),
        description: "Read-only threat intelligence from Rampart.".to_owned(),
        default: api_root_url(&app),
        api_roots: vec![api_root_url(&app)],
    }))
}

pub(crate) async fn api_root(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Response, TaxiiError> {
    check_accept(&headers)?;
    Ok(ok(&ApiRoot {
        title: "Rampart indicators".to_owned(),
        versions: vec![TAXII.to_owned()],
        max_content_length: app.config.max_body_bytes,
    }))
}

pub(crate) async fn collections(headers: HeaderMap) -> Result<Response, TaxiiError> {
    check_accept(&headers)?;
    Ok(ok(&Collections {
        collections: vec![collection()],
    }))
}

pub(crate) async fn one_collection(
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, TaxiiError> {
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
    #[schemars(range(min = 1))]
    limit: Option<u32>,
    /// The `next` value of the previous page.
    #[schemars(regex(pattern = "^[+-]?[0-9]{1,18}$"))]
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
    #[schemars(regex(pattern = MATCH_VERSION_PATTERN))]
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
        // Read as the document states it: items exactly, no blanks or spaces between commas.
        let stamps: Vec<i64> = q
            .match_version
            .iter()
            .flat_map(|v| v.split(','))
            .filter(|v| !matches!(*v, "last" | "first" | "all"))
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
            let e = from_row(row, at, &rules.decay);
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

/// A page's items rendered by `render`, or none when it has none (TAXII leaves the member
/// out rather than sending an empty list).
fn items<T>(page: &Page, render: impl Fn(&Item) -> T) -> Option<Vec<T>> {
    (!page.items.is_empty()).then(|| page.items.iter().map(render).collect())
}

fn envelope(page: Page) -> Response {
    let body = Envelope {
        more: page.more,
        next: page.next.clone(),
        objects: items(&page, |i| StixObject(i.object.clone())),
    };
    with_date_headers(ok(&body), &page.items)
}

pub(crate) async fn objects(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ObjectsQuery>,
) -> Result<Response, TaxiiError> {
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
    headers: HeaderMap,
    Path((id, object_id)): Path<(String, String)>,
    Query(q): Query<ObjectsQuery>,
) -> Result<Response, TaxiiError> {
    check_accept(&headers)?;
    check_collection(&id)?;
    Ok(envelope(one_object(&app, q, &object_id).await?))
}

/// Every version of one object (section 5.8): Rampart keeps the current one.
pub(crate) async fn versions(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path((id, object_id)): Path<(String, String)>,
    Query(q): Query<ObjectsQuery>,
) -> Result<Response, TaxiiError> {
    check_accept(&headers)?;
    check_collection(&id)?;
    let page = one_object(&app, q, &object_id).await?;
    let body = Versions {
        more: page.more,
        next: page.next.clone(),
        versions: items(&page, |i| version_of(&i.object, i.date_added)),
    };
    Ok(with_date_headers(ok(&body), &page.items))
}

pub(crate) async fn manifest(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ObjectsQuery>,
) -> Result<Response, TaxiiError> {
    check_accept(&headers)?;
    check_collection(&id)?;
    let page = page(&app, &Filter::parse(&q)?).await?;
    let body = Manifest {
        more: page.more,
        next: page.next.clone(),
        objects: items(&page, |i| ManifestRecord {
            id: i.object["id"].as_str().unwrap_or_default().to_owned(),
            date_added: taxii_time(i.date_added),
            version: version_of(&i.object, i.date_added),
            media_type: STIX.to_owned(),
        }),
    };
    Ok(with_date_headers(ok(&body), &page.items))
}
