//! Event destinations: where the event stream is delivered (docs/events.md). Admins only;
//! every change is in the audit log.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use rampart_audit::Outcome;
use rampart_store::{Destination, NewDestination};
use schemars::JsonSchema;
use serde::Deserialize;
use time::OffsetDateTime;

use super::admin::rfc3339;
use super::authorize::Caller;
use super::body::ApiJson;
use crate::api::{
    DeadLetterSelection, DeadLetterView, DeadLettersResolved, DestinationRequest, DestinationSaved,
    DestinationView, Done, EventFilter, Sink,
};
use crate::app::App;
use crate::error::ApiError;

fn view(d: Destination, backlog: rampart_store::Backlog) -> Result<DestinationView, ApiError> {
    let sink: Sink = serde_json::from_str(&d.def.config)
        .map_err(|e| ApiError::internal(format!("destination {}: settings: {e}", d.def.name)))?;
    let filter: EventFilter = serde_json::from_str(&d.def.filter)
        .map_err(|e| ApiError::internal(format!("destination {}: filter: {e}", d.def.name)))?;
    Ok(DestinationView {
        name: d.def.name,
        sink,
        filter,
        enabled: d.def.enabled,
        max_attempts: d.def.max_attempts,
        created_at: rfc3339(d.created_at),
        updated_at: rfc3339(d.updated_at),
        delivered: d.delivered,
        failed: d.failed,
        last_success: d.last_success.map(rfc3339),
        last_failure: d.last_failure.map(rfc3339),
        last_error: d.last_error,
        consecutive_failures: d.consecutive_failures,
        pending: backlog.pending,
        dead_letters: backlog.dead,
        oldest_pending: backlog.oldest.map(rfc3339),
    })
}

async fn backlog_of(app: &App, name: &str) -> Result<rampart_store::Backlog, ApiError> {
    Ok(app
        .store
        .backlogs()
        .await?
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, b)| b)
        .unwrap_or_default())
}

/// `GET /api/v1/event-destinations`.
pub(crate) async fn list(
    State(app): State<Arc<App>>,
) -> Result<Json<Vec<DestinationView>>, ApiError> {
    let backlogs: std::collections::BTreeMap<String, rampart_store::Backlog> =
        app.store.backlogs().await?.into_iter().collect();
    let mut out = Vec::new();
    for d in app.store.destinations().await? {
        let b = backlogs.get(&d.def.name).copied().unwrap_or_default();
        out.push(view(d, b)?);
    }
    Ok(Json(out))
}

/// Destinations a server takes: every event is queued once per destination, in the
/// transaction that writes it, so their number multiplies the outbox's writes.
const MAX_DESTINATIONS: usize = 32;

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_destination", detail)
}

/// What an admin may point a destination at: an absolute http(s) URL with a host and no
/// credentials in it (they would be shown to every admin and logged).
fn check_sink(sink: &Sink) -> Result<(), ApiError> {
    match sink {
        Sink::Webhook {
            url, timeout_secs, ..
        } => {
            if url.len() > 2048 {
                return Err(invalid("sink.url: at most 2048 characters"));
            }
            if url.contains('@') && url::Url::parse(url).is_ok_and(|u| !u.username().is_empty()) {
                return Err(invalid(
                    "sink.url: no credentials in the URL (the signature authenticates Rampart)",
                ));
            }
            if !rampart_intel::feeds::is_plain_http_url(url) || url::Url::parse(url).is_err() {
                return Err(invalid(
                    "sink.url: http:// or https://, a host name or IPv4 address, an optional port and path",
                ));
            }
            if !(1..=60).contains(timeout_secs) {
                return Err(invalid("sink.timeout_secs: 1 to 60"));
            }
        }
    }
    Ok(())
}

/// `PUT /api/v1/event-destinations/{name}`.
pub(crate) async fn put(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(mut req): ApiJson<DestinationRequest>,
) -> Result<(StatusCode, Json<DestinationSaved>), ApiError> {
    rampart_core::names::check_name("destination name", &name).map_err(invalid)?;
    check_sink(&req.sink)?;
    req.filter.check().map_err(invalid)?;
    if !(1..=100).contains(&req.max_attempts) {
        return Err(invalid("max_attempts: 1 to 100"));
    }
    let existing = app.store.destination(&name).await?;
    let created = existing.is_none();
    if created && app.store.destinations().await?.len() >= MAX_DESTINATIONS {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_destinations",
            format!("at most {MAX_DESTINATIONS} event destinations: remove one first"),
        ));
    }
    // A rotation raises the secret's generation; otherwise the stored one is kept.
    let stored_generation = existing
        .as_ref()
        .and_then(|d| serde_json::from_str::<Sink>(&d.def.config).ok())
        .map(|s| match s {
            Sink::Webhook {
                secret_generation, ..
            } => secret_generation,
        })
        .unwrap_or(0);
    let Sink::Webhook {
        secret_generation, ..
    } = &mut req.sink;
    *secret_generation = if req.rotate_secret {
        stored_generation.saturating_add(1)
    } else {
        stored_generation
    };
    let generation = *secret_generation;
    let def = NewDestination {
        name: name.clone(),
        kind: req.sink.kind().to_owned(),
        config: serde_json::to_string(&req.sink).map_err(ApiError::internal)?,
        filter: serde_json::to_string(&req.filter).map_err(ApiError::internal)?,
        enabled: req.enabled,
        max_attempts: req.max_attempts,
    };
    let stored = app
        .store
        .put_destination(&def, OffsetDateTime::now_utc())
        .await?;
    app.audit
        .record(
            caller
                .event(
                    "event_destination.put",
                    format!("event-destination:{name}"),
                    Outcome::Success,
                )
                .detail("kind", def.kind.clone())
                .detail("enabled", def.enabled.to_string())
                .detail("filter", def.filter.clone())
                .detail("secret_rotated", req.rotate_secret.to_string()),
        )
        .await?;
    let secret = (created || req.rotate_secret)
        .then(|| crate::events::webhook_secret(&app, &name, generation));
    let backlog = backlog_of(&app, &name).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(DestinationSaved {
            destination: view(stored, backlog)?,
            secret,
        }),
    ))
}

/// `DELETE /api/v1/event-destinations/{name}`: the destination and its queue.
pub(crate) async fn delete(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Done>, ApiError> {
    if !app.store.delete_destination(&name).await? {
        return Err(ApiError::not_found("event destination", &name));
    }
    app.audit
        .record(caller.event(
            "event_destination.delete",
            format!("event-destination:{name}"),
            Outcome::Success,
        ))
        .await?;
    Ok(Json(Done { ok: true }))
}

/// `?limit=`.
#[derive(Deserialize, JsonSchema)]
pub(crate) struct DeadLettersQuery {
    /// At most this many, oldest first (default 100, at most 1,000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<u32>,
}

async fn known(app: &App, name: &str) -> Result<(), ApiError> {
    match app.store.destination(name).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found("event destination", name)),
    }
}

/// `GET /api/v1/event-destinations/{name}/dead-letters`.
pub(crate) async fn dead_letters(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Query(q): Query<DeadLettersQuery>,
) -> Result<Json<Vec<DeadLetterView>>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", "limit: 1 to 1000"));
    }
    known(&app, &name).await?;
    let mut out = Vec::new();
    for d in app.store.dead_letters(&name, limit).await? {
        let mut event = rampart_events::Event::from_json(&d.body)
            .map_err(|e| ApiError::internal(format!("event {}: {e}", d.seq)))?;
        event.seq = d.seq;
        out.push(DeadLetterView {
            seq: d.seq,
            attempts: d.attempts,
            last_error: d.last_error,
            event,
        });
    }
    Ok(Json(out))
}

async fn resolve(
    app: &App,
    caller: &Caller,
    name: &str,
    sel: DeadLetterSelection,
    retry: bool,
) -> Result<Json<DeadLettersResolved>, ApiError> {
    if sel.seqs.as_ref().is_some_and(|s| s.len() > 10_000) {
        return Err(ApiError::bad_request(
            "invalid_selection",
            "seqs: at most 10,000 (or none for all)",
        ));
    }
    known(app, name).await?;
    let count = app
        .store
        .resolve_dead_letters(name, sel.seqs.as_deref(), retry, OffsetDateTime::now_utc())
        .await?;
    let action = if retry {
        "event_destination.retry"
    } else {
        "event_destination.drop"
    };
    app.audit
        .record(
            caller
                .event(
                    action,
                    format!("event-destination:{name}"),
                    Outcome::Success,
                )
                .detail("dead_letters", count.to_string()),
        )
        .await?;
    if retry {
        app.events_wake.notify_one();
    }
    Ok(Json(DeadLettersResolved { count }))
}

/// `POST /api/v1/event-destinations/{name}/dead-letters/retry`.
pub(crate) async fn retry(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(sel): ApiJson<DeadLetterSelection>,
) -> Result<Json<DeadLettersResolved>, ApiError> {
    resolve(&app, &caller, &name, sel, true).await
}

/// `POST /api/v1/event-destinations/{name}/dead-letters/drop`.
pub(crate) async fn drop_letters(
    State(app): State<Arc<App>>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(sel): ApiJson<DeadLetterSelection>,
) -> Result<Json<DeadLettersResolved>, ApiError> {
    resolve(&app, &caller, &name, sel, false).await
}
