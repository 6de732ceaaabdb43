//! Threat-intel endpoints (admin): lookups answered from the in-memory index, bulk matching,
//! feeds, uploads for air-gapped sites, exports and sightings. The same operations as
//! `rampart intel …` on the local store, through the running server's index.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rampart_audit::Outcome;
use rampart_feeds::export::export_all;
use rampart_feeds::ingest::{IngestError, IngestReport, ingest};
use rampart_feeds::lookup::describe;
use rampart_feeds::sync::{FetchOptions, SyncOutcome, sync_feed};
use rampart_intel::Format;
use rampart_intel::Limits;
use rampart_intel::export::ExportFormat;
use rampart_intel::feeds::validate;
use rampart_intel::lookup::{LookupAnswer, find, match_summary, observables_matches, query};
use rampart_store::{IntelFeed, NewIntelFeed};
use schemars::JsonSchema;
use serde::Deserialize;
use sha2::Digest as _;

use super::authorize::Caller;
use super::body::{ApiBytes, ApiJson};
use crate::api::{
    Done, FeedList, FeedRequest, HitList, IntelStats, InvalidObservable, KindCount, MatchRequest,
    MatchResponse, ObservableMatch, SightingRequest,
};
use crate::app::App;
use crate::error::ApiError;
use crate::intel::now;

/// Longest value looked up (the longest URL a browser takes is shorter).
const MAX_VALUE_CHARS: usize = 4096;

/// Observables accepted in one match request.
const MAX_OBSERVABLES: usize = 100_000;

fn ingest_error(e: IngestError) -> ApiError {
    match e {
        IngestError::Parse(p) => ApiError::bad_request("unparsable_feed", p.to_string()),
        other => ApiError::internal(other),
    }
}

/// `GET /api/v1/intel/lookup` query.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct LookupQuery {
    /// The value: an address, network, domain, URL, e-mail, hash, CVE… (defanged text accepted).
    #[schemars(length(min = 1, max = 4096))]
    value: String,
    /// Also list indicators from the same source rows and of the same malware families.
    #[serde(default)]
    related: bool,
}

pub(crate) async fn lookup(
    State(app): State<Arc<App>>,
    Query(q): Query<LookupQuery>,
) -> Result<Json<LookupAnswer>, ApiError> {
    lookup_value(&app, q.value, q.related).await.map(Json)
}

/// What is known about `value`: the API's lookup, and the dashboard's.
pub(crate) async fn lookup_value(
    app: &App,
    value: String,
    related: bool,
) -> Result<LookupAnswer, ApiError> {
    let chars = value.chars().count();
    if !(1..=MAX_VALUE_CHARS).contains(&chars) {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("value: 1–{MAX_VALUE_CHARS} characters ({chars} given)"),
        ));
    }
    let rules = app
        .intel
        .current_rules(&app.store)
        .await
        .map_err(ingest_error)?;
    let allow = &rules.allow;
    let found = match app.intel.with_index(|index| find(index, allow, &value)) {
        Ok(found) => found,
        Err(error) => {
            return Ok(LookupAnswer::NotAnIndicator {
                query: value,
                error,
            });
        }
    };
    Ok(LookupAnswer::Found(
        describe(&app.store, &value, found, related, &rules.decay, now()).await?,
    ))
}

pub(crate) async fn match_observables(
    State(app): State<Arc<App>>,
    ApiJson(req): ApiJson<MatchRequest>,
) -> Result<Json<MatchResponse>, ApiError> {
    if req.observables.len() > MAX_OBSERVABLES {
        return Err(ApiError::bad_request(
            "too_many_observables",
            format!(
                "observables: {} given, at most {MAX_OBSERVABLES} per request",
                req.observables.len()
            ),
        ));
    }
    let rules = app
        .intel
        .current_rules(&app.store)
        .await
        .map_err(ingest_error)?;
    let allow = &rules.allow;
    let mut out = MatchResponse {
        matches: Vec::new(),
        invalid: Vec::new(),
    };
    app.intel.with_index(|index| {
        let found = observables_matches(index, &req.observables, req.include_allowlisted);
        for (i, (raw, found)) in req.observables.iter().zip(found).enumerate() {
            let found = match found {
                Ok(found) => found,
                Err(e) => {
                    out.invalid.push(InvalidObservable {
                        index: i,
                        observable: raw.clone(),
                        error: e,
                    });
                    continue;
                }
            };
            for (m, ioc) in found {
                out.matches.push(ObservableMatch {
                    index: i,
                    observable: raw.clone(),
                    summary: match_summary(index, allow, &m, &ioc),
                });
            }
        }
    });
    Ok(Json(out))
}

/// Counts come from the in-memory index, not a scan of the store: answered in milliseconds at
/// millions of indicators (the live set is what the index holds by construction).
pub(crate) async fn stats(State(app): State<Arc<App>>) -> Result<Json<IntelStats>, ApiError> {
    let expired = app.store.intel_expired_count(now()).await?;
    let feeds = app.store.intel_feeds().await?;
    let (indexed, index_bytes, kinds) = app
        .intel
        .with_index(|i| (i.len(), i.memory_bytes(), i.count_by_kind()));
    Ok(Json(IntelStats {
        indexed,
        index_bytes,
        kinds: kinds
            .iter()
            .map(|&(kind, live)| KindCount { kind, live })
            .collect(),
        expired,
        feeds,
    }))
}

pub(crate) async fn list_feeds(State(app): State<Arc<App>>) -> Result<Json<FeedList>, ApiError> {
    Ok(Json(FeedList {
        feeds: app.store.intel_feeds().await?,
    }))
}

pub(crate) async fn put_feed(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiJson(req): ApiJson<FeedRequest>,
) -> Result<(StatusCode, Json<IntelFeed>), ApiError> {
    let mut def = NewIntelFeed {
        name: req.name,
        format: req.format,
        url: req.url,
        interval_secs: req.interval_secs,
        reliability: req.reliability,
        tlp: req.tlp,
        terms: req.terms,
        ttl_secs: req.ttl_secs,
    };
    validate(&mut def).map_err(|e| {
        ApiError::bad_request(
            "invalid_field",
            format!("{}: {}", field_name(e.field), e.reason),
        )
    })?;
    let feed = app.store.intel_put_feed(&def, now()).await?;
    app.audit
        .record(
            caller
                .event("feed.put", format!("feed:{}", feed.name), Outcome::Success)
                .detail("format", feed.format.clone())
                .detail(
                    "url",
                    feed.url.as_deref().map(url_for_log).unwrap_or_default(),
                )
                .detail("interval_secs", feed.interval_secs.to_string())
                .detail("reliability", feed.reliability.to_string())
                .detail("tlp", feed.tlp.clone())
                .detail("ttl_secs", feed.ttl_secs.to_string()),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(feed)))
}

/// A feed URL fit for the audit log: no credentials, no query (where feeds put API keys).
fn url_for_log(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "(unparsable)".to_owned(),
    }
}

/// The request field behind a validation field name.
fn field_name(field: &str) -> &str {
    match field {
        "interval" => "interval_secs",
        "ttl" => "ttl_secs",
        other => other,
    }
}

pub(crate) async fn delete_feed(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Done>, ApiError> {
    if app.store.intel_delete_feed(&name).await? {
        app.audit
            .record(caller.event("feed.delete", format!("feed:{name}"), Outcome::Success))
            .await?;
        Ok(Json(Done { ok: true }))
    } else {
        Err(ApiError::not_found("feed", &name))
    }
}

async fn feed_named(app: &App, name: &str) -> Result<IntelFeed, ApiError> {
    app.store
        .intel_feed(name)
        .await?
        .ok_or_else(|| ApiError::not_found("feed", name))
}

/// One feed fetched now, whatever its schedule.
pub(crate) async fn sync_now(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<SyncOutcome>, ApiError> {
    let feed = feed_named(&app, &name).await?;
    if feed.url.is_none() {
        // The feed's state, not the request, is in the way: 409.
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_url",
            format!("feed {name:?} has no URL: upload its files instead"),
        ));
    }
    let _w = app.intel.writer.lock().await;
    let rules = app
        .intel
        .current_rules_locked(&app.store)
        .await
        .map_err(ingest_error)?;
    let outcome: SyncOutcome = sync_feed(
        &app.store,
        &app.intel.http,
        &feed,
        now(),
        // One attempt: the admin who asked sees the error at once (the scheduler retries).
        &FetchOptions {
            retries: 0,
            ..app.intel.fetch.clone()
        },
        Some(app.intel.live(&rules)),
    )
    .await
    .map_err(|e| {
        app.metrics.feed_failed(&name);
        ingest_error(e)
    })?;
    app.metrics.feed_synced(&name, &outcome);
    app.audit
        .record(caller.event("feed.sync", format!("feed:{name}"), Outcome::Success))
        .await?;
    Ok(Json(outcome))
}

/// A file for a feed, uploaded as the request body (plain, gzip or zip), for sites that cannot
/// reach the feed's URL.
pub(crate) async fn upload(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    ApiBytes(body): ApiBytes,
) -> Result<Json<IngestReport>, ApiError> {
    let feed = feed_named(&app, &name).await?;
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "empty_body",
            "the upload is empty: send the feed's file as the body",
        ));
    }
    let format: Format = feed
        .format
        .parse()
        .map_err(|e| ApiError::internal(format!("feed {name}: stored format: {e}")))?;
    let body_sha256 = hex::encode(sha2::Sha256::digest(&body));
    let body_bytes = body.len();
    let _w = app.intel.writer.lock().await;
    let rules = app
        .intel
        .current_rules_locked(&app.store)
        .await
        .map_err(ingest_error)?;
    let report = ingest(
        &app.store,
        &feed,
        format,
        Box::new(std::io::Cursor::new(body)),
        Limits::default(),
        now(),
        Some(app.intel.live(&rules)),
    )
    .await
    .map_err(|e| {
        app.metrics.feed_failed(&name);
        ingest_error(e)
    })?;
    app.metrics.feed_ingested(&name, &report);
    app.audit
        .record(
            caller
                .event("feed.upload", format!("feed:{name}"), Outcome::Success)
                .detail("sha256", body_sha256)
                .detail("bytes", body_bytes.to_string()),
        )
        .await?;
    Ok(Json(report))
}

/// `GET /api/v1/intel/export` query.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct ExportQuery {
    /// The format.
    #[schemars(extend("enum" = ["csv", "blocklist-ip", "blocklist-domain", "urls", "hosts", "rpz", "suricata", "stix"]))]
    format: String,
    /// Leave out indicators scoring below this (0–100, default 0).
    #[serde(default)]
    #[schemars(range(max = 100))]
    min_score: u8,
}

pub(crate) async fn export(
    State(app): State<Arc<App>>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let format: ExportFormat = q
        .format
        .parse()
        .map_err(|e: String| ApiError::bad_request("invalid_field", format!("format: {e}")))?;
    if q.min_score > 100 {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("min_score: {} must be 0–100", q.min_score),
        ));
    }
    let rules = app
        .intel
        .current_rules(&app.store)
        .await
        .map_err(ingest_error)?;
    let allow = &rules.allow;
    let mut out = Vec::new();
    let summary = export_all(
        &app.store,
        allow,
        &rules.decay,
        format,
        q.min_score,
        now(),
        &mut out,
    )
    .await
    .map_err(ApiError::internal)?;
    let content_type = match format {
        ExportFormat::Stix => "application/stix+json;version=2.1",
        ExportFormat::Csv => "text/csv; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::HeaderName::from_static("x-rampart-exported"),
                summary.written.to_string(),
            ),
            (
                header::HeaderName::from_static("x-rampart-allowlisted"),
                summary.excluded.allowlisted.to_string(),
            ),
        ],
        out,
    )
        .into_response())
}

pub(crate) async fn sighting(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiJson(req): ApiJson<SightingRequest>,
) -> Result<(StatusCode, Json<Done>), ApiError> {
    // A value that is not an indicator names no indicator: 404, saying why.
    let ioc = query(&req.value).map_err(|e| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_an_indicator",
            format!("no indicator {:?}: {e}", req.value),
        )
    })?;
    let Some(ind) = app.store.intel_indicator(ioc.kind, &ioc.value).await? else {
        return Err(ApiError::not_found(
            "indicator",
            &format!("{}:{}", ioc.kind, ioc.value),
        ));
    };
    app.store
        .intel_add_sighting(
            ind.id,
            req.false_positive,
            req.source.as_deref().unwrap_or("api"),
            req.note.as_deref(),
            now(),
        )
        .await?;
    // The lookup index carries the score: it moves now, not at the next rebuild.
    if let Some(updated) = app.store.intel_indicator(ioc.kind, &ioc.value).await? {
        app.intel
            .rescore(&updated, now())
            .map_err(ApiError::internal)?;
    }
    let action = if req.false_positive {
        "intel.false_positive"
    } else {
        "intel.sighting"
    };
    app.audit
        .record(
            caller
                .event(
                    action,
                    format!("indicator:{}:{}", ioc.kind, ioc.value),
                    Outcome::Success,
                )
                .detail("source", req.source.clone().unwrap_or_else(|| "api".into())),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(Done { ok: true })))
}

/// `GET /api/v1/intel/hits` query.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct HitsQuery {
    /// Only this agent.
    #[serde(default)]
    agent: Option<String>,
    /// Only matches seen at or after this Unix time.
    #[serde(default)]
    since: i64,
    /// At most this many (default 100, at most 10,000).
    #[serde(default = "default_hits")]
    #[schemars(range(min = 1, max = 10_000))]
    limit: i64,
}

fn default_hits() -> i64 {
    100
}

pub(crate) async fn hits(
    State(app): State<Arc<App>>,
    Query(q): Query<HitsQuery>,
) -> Result<Json<HitList>, ApiError> {
    if !(1..=10_000).contains(&q.limit) {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("limit {}: must be 1–10000", q.limit),
        ));
    }
    // No stored agent id holds a NUL, which PostgreSQL cannot even compare: nothing matches.
    if q.agent.as_deref().is_some_and(|a| a.contains('\0')) {
        return Ok(Json(HitList { hits: Vec::new() }));
    }
    let rows = app
        .store
        .intel_hits(q.agent.as_deref(), q.since, q.limit)
        .await?;
    Ok(Json(HitList { hits: rows }))
}
