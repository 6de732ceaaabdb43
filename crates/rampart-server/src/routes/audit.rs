//! `/api/v1/audit/…`: search, the JSON lines export, signed checkpoints, the verifier key and
//! RFC 9162 proofs. Everything needed to check the log comes from here, and nothing here asks
//! to be trusted: entries are checked against checkpoints signed by a key the auditor pins.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rampart_audit::{Entry, Outcome};
use rampart_store::{AuditQuery, StoredCheckpoint};
use schemars::JsonSchema;
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::api::{
    AuditCheckpoint, AuditConsistencyProof, AuditEntryDetail, AuditInclusionProof, AuditKey,
    AuditPage,
};
use crate::app::App;
use crate::error::ApiError;

/// Entries per page of the export stream.
const EXPORT_PAGE: u32 = 1000;

/// The largest index or size the databases' signed 64-bit integers hold.
const MAX_INDEX: u64 = i64::MAX as u64;

/// An index or size query parameter within the documented maximum.
fn within(name: &str, value: u64) -> Result<u64, ApiError> {
    if value > MAX_INDEX {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("{name}: at most {MAX_INDEX}"),
        ));
    }
    Ok(value)
}

/// `GET /api/v1/audit/entries` query. Every filter given must hold.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct SearchQuery {
    /// Exactly this actor (a user name, `agent:ID`, `system`).
    #[serde(default)]
    #[schemars(length(min = 1, max = 256))]
    actor: Option<String>,
    /// This action, or a prefix ending in `*` (`token.*`).
    #[serde(default)]
    #[schemars(length(min = 1, max = 256))]
    action: Option<String>,
    /// Exactly this target (`user:alice`, `agent:ID`, `policy:ID`).
    #[serde(default)]
    #[schemars(length(min = 1, max = 256))]
    target: Option<String>,
    /// `success`, `failure` or `denied`.
    #[serde(default)]
    #[schemars(extend("enum" = ["success", "failure", "denied"]))]
    outcome: Option<String>,
    /// At or after this time (RFC 3339).
    #[serde(default)]
    #[schemars(with = "Option<rampart_core::timestamp::Rfc3339>")]
    since: Option<String>,
    /// Before this time (RFC 3339).
    #[serde(default)]
    #[schemars(with = "Option<rampart_core::timestamp::Rfc3339>")]
    until: Option<String>,
    /// Only entries older than this index (the previous page's `next_before`).
    #[serde(default)]
    #[schemars(range(max = MAX_INDEX))]
    before: Option<u64>,
    /// At most this many (default 100, at most 1,000).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 1000))]
    limit: u32,
}

fn default_limit() -> u32 {
    100
}

fn time_param(name: &str, value: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    value
        .map(|v| {
            OffsetDateTime::parse(v, &Rfc3339).map_err(|e| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("{name}: not an RFC 3339 time ({e}): {v:?}"),
                )
            })
        })
        .transpose()
}

/// The entry a stored row holds; a row that is not one is reported, not hidden.
fn parse(index: u64, body: &str) -> Result<Entry, ApiError> {
    Entry::parse(body.as_bytes()).map_err(|e| {
        ApiError::internal(format!(
            "audit entry {index} is unreadable ({e}): the log was tampered with; run `rampart audit verify`"
        ))
    })
}

/// `GET /api/v1/audit/entries`.
pub(crate) async fn search(
    State(app): State<Arc<App>>,
    Query(q): Query<SearchQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    if !(1..=1000).contains(&q.limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit: between 1 and 1000",
        ));
    }
    let outcome = q
        .outcome
        .as_deref()
        .map(str::parse::<Outcome>)
        .transpose()
        .map_err(|e| ApiError::bad_request("invalid_query", format!("outcome: {e}")))?;
    let query = AuditQuery {
        actor: super::text_param("actor", q.actor)?,
        action: super::text_param("action", q.action)?,
        target: super::text_param("target", q.target)?,
        outcome,
        since: time_param("since", q.since.as_deref())?,
        until: time_param("until", q.until.as_deref())?,
        before: q.before.map(|b| within("before", b)).transpose()?,
        limit: q.limit,
    };
    let rows = app.store.audit_search(&query).await?;
    let next_before = if rows.len() == q.limit as usize {
        rows.last().map(|r| r.index)
    } else {
        None
    };
    let entries = rows
        .iter()
        .map(|r| parse(r.index, &r.body))
        .collect::<Result<_, _>>()?;
    Ok(Json(AuditPage {
        entries,
        next_before,
    }))
}

/// A path's entry index; anything else names no entry (404).
fn index_param(value: &str) -> Result<u64, ApiError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|i| *i <= MAX_INDEX)
        .ok_or_else(|| ApiError::not_found("audit entry", value))
}

/// `GET /api/v1/audit/entries/{index}`.
pub(crate) async fn entry(
    State(app): State<Arc<App>>,
    Path(index): Path<String>,
) -> Result<Json<AuditEntryDetail>, ApiError> {
    let i = index_param(&index)?;
    let row = app
        .store
        .audit_entry(i)
        .await?
        .ok_or_else(|| ApiError::not_found("audit entry", &index))?;
    Ok(Json(AuditEntryDetail {
        entry: parse(row.index, &row.body)?,
        leaf: row.body,
    }))
}

/// `GET /api/v1/audit/export` query.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct ExportQuery {
    /// The first entry (default 0).
    #[serde(default)]
    #[schemars(range(max = MAX_INDEX))]
    from: u64,
}

/// `GET /api/v1/audit/export`: every entry from `from` to the log's size when the request
/// came, one stored text per line, streamed a page at a time.
pub(crate) async fn export(
    State(app): State<Arc<App>>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let from = within("from", q.from)?;
    let end = app.store.audit_size().await?;
    let store = app.store.clone();
    let pages = futures_util::stream::unfold(Some(from), move |next| {
        let store = store.clone();
        async move {
            let from = next.filter(|f| *f < end)?;
            let limit = u32::try_from((end - from).min(u64::from(EXPORT_PAGE))).unwrap_or(1);
            match store.audit_entries(from, limit).await {
                Ok(rows) if rows.is_empty() => None,
                Ok(rows) => {
                    let next = rows.last().map(|r| r.index + 1);
                    let mut chunk = Vec::with_capacity(rows.len() * 256);
                    for r in &rows {
                        chunk.extend_from_slice(r.body.as_bytes());
                        chunk.push(b'\n');
                    }
                    Some((Ok::<_, std::io::Error>(chunk), next))
                }
                // Cut the stream: a client sees a short export, never a silently partial one
                // that ends cleanly.
                Err(e) => {
                    tracing::error!(error = %e, "audit export failed mid-stream");
                    Some((Err(std::io::Error::other(e.to_string())), None))
                }
            }
        }
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/jsonl"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        [(
            header::HeaderName::from_static("x-audit-size"),
            end.to_string(),
        )],
        Body::from_stream(pages),
    )
        .into_response())
}

fn checkpoint_view(c: StoredCheckpoint) -> AuditCheckpoint {
    AuditCheckpoint {
        size: c.size,
        created_at: c.created_at,
        note: c.note,
    }
}

/// `GET /api/v1/audit/checkpoint` query.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct CheckpointQuery {
    /// The checkpoint of exactly this size (default: the latest).
    #[serde(default)]
    #[schemars(range(min = 1, max = MAX_INDEX))]
    size: Option<u64>,
}

/// `GET /api/v1/audit/checkpoint`.
pub(crate) async fn checkpoint(
    State(app): State<Arc<App>>,
    Query(q): Query<CheckpointQuery>,
) -> Result<Json<AuditCheckpoint>, ApiError> {
    let found = match q.size {
        Some(size) => app.store.audit_checkpoint_at(within("size", size)?).await?,
        None => app.store.audit_latest_checkpoint().await?,
    };
    found.map(checkpoint_view).map(Json).ok_or_else(|| {
        ApiError::not_found(
            "audit checkpoint",
            &q.size
                .map_or_else(|| "latest".to_owned(), |s| s.to_string()),
        )
    })
}

/// `GET /api/v1/audit/checkpoints` query.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct CheckpointsQuery {
    /// Only checkpoints larger than this size (default 0).
    #[serde(default)]
    #[schemars(range(max = MAX_INDEX))]
    after: u64,
    /// At most this many (default 1,000, at most 10,000).
    #[serde(default = "default_checkpoints")]
    #[schemars(range(min = 1, max = 10_000))]
    limit: u32,
}

fn default_checkpoints() -> u32 {
    1000
}

/// `GET /api/v1/audit/checkpoints`: smallest first.
pub(crate) async fn checkpoints(
    State(app): State<Arc<App>>,
    Query(q): Query<CheckpointsQuery>,
) -> Result<Json<Vec<AuditCheckpoint>>, ApiError> {
    if !(1..=10_000).contains(&q.limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit: between 1 and 10000",
        ));
    }
    let list = app
        .store
        .audit_checkpoints(within("after", q.after)?, q.limit)
        .await?;
    Ok(Json(list.into_iter().map(checkpoint_view).collect()))
}

/// `GET /api/v1/audit/key`.
pub(crate) async fn key(State(app): State<Arc<App>>) -> Result<Json<AuditKey>, ApiError> {
    let key = app.audit.key();
    Ok(Json(AuditKey {
        origin: key.origin().to_owned(),
        vkey: key.vkey().to_owned(),
        size: app.store.audit_size().await?,
    }))
}

/// The latest checkpoint's size, for proofs asked without one.
async fn latest_size(app: &App) -> Result<u64, ApiError> {
    app.store
        .audit_latest_checkpoint()
        .await?
        .map(|c| c.size)
        .ok_or_else(|| ApiError::not_found("audit checkpoint", "latest"))
}

fn b64(path: Vec<rampart_audit::Hash>) -> Vec<String> {
    path.iter().map(|h| B64.encode(h)).collect()
}

/// `GET /api/v1/audit/proof/inclusion` query.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct InclusionQuery {
    /// The entry.
    #[schemars(range(max = MAX_INDEX))]
    index: u64,
    /// The tree size (default: the latest checkpoint's).
    #[serde(default)]
    #[schemars(range(min = 1, max = MAX_INDEX))]
    size: Option<u64>,
}

/// `GET /api/v1/audit/proof/inclusion`.
pub(crate) async fn inclusion(
    State(app): State<Arc<App>>,
    Query(q): Query<InclusionQuery>,
) -> Result<Json<AuditInclusionProof>, ApiError> {
    within("index", q.index)?;
    let size = match q.size {
        Some(s) => within("size", s)?,
        None => latest_size(&app).await?,
    };
    if q.index >= size {
        // Schema-valid, names nothing that exists: 404, saying why.
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "not_in_tree",
            format!(
                "index {} is not in a tree of {size} entries{}",
                q.index,
                if q.size.is_none() {
                    " (the latest checkpoint): it is signed at the next checkpoint"
                } else {
                    ""
                }
            ),
        ));
    }
    let path = app.store.audit_inclusion_proof(q.index, size).await?;
    Ok(Json(AuditInclusionProof {
        index: q.index,
        size,
        path: b64(path),
    }))
}

/// `GET /api/v1/audit/proof/consistency` query.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct ConsistencyQuery {
    /// The older tree size (at least 1).
    #[schemars(range(min = 1, max = MAX_INDEX))]
    from: u64,
    /// The newer tree size (default: the latest checkpoint's).
    #[serde(default)]
    #[schemars(range(min = 1, max = MAX_INDEX))]
    to: Option<u64>,
}

/// `GET /api/v1/audit/proof/consistency`.
pub(crate) async fn consistency(
    State(app): State<Arc<App>>,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Json<AuditConsistencyProof>, ApiError> {
    within("from", q.from)?;
    let to = match q.to {
        Some(t) => within("to", t)?,
        None => latest_size(&app).await?,
    };
    if q.from == 0 || q.from > to {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "not_in_tree",
            format!("no tree of {} entries within one of {to}", q.from),
        ));
    }
    let path = app.store.audit_consistency_proof(q.from, to).await?;
    Ok(Json(AuditConsistencyProof {
        from: q.from,
        to,
        path: b64(path),
    }))
}
