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
use crate::events::{Stored, credential_context};

fn view(d: Destination, backlog: rampart_store::Backlog) -> Result<DestinationView, ApiError> {
    let stored = Stored::parse(&d.def.config)
        .map_err(|e| ApiError::internal(format!("destination {}: settings: {e}", d.def.name)))?;
    let filter: EventFilter = serde_json::from_str(&d.def.filter)
        .map_err(|e| ApiError::internal(format!("destination {}: filter: {e}", d.def.name)))?;
    Ok(DestinationView {
        name: d.def.name,
        sink: stored.sink,
        filter,
        enabled: d.def.enabled,
        max_attempts: d.def.max_attempts,
        credential_set: stored.sealed_credential.is_some(),
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
fn check_url(url: &str, why_no_credentials: &str) -> Result<(), ApiError> {
    if url.len() > 2048 {
        return Err(invalid("sink.url: at most 2048 characters"));
    }
    if url.contains('@') && url::Url::parse(url).is_ok_and(|u| !u.username().is_empty()) {
        return Err(invalid(format!(
            "sink.url: no credentials in the URL ({why_no_credentials})"
        )));
    }
    if !rampart_intel::feeds::is_plain_http_url(url) || url::Url::parse(url).is_err() {
        return Err(invalid(
            "sink.url: http:// or https://, a host name or IPv4 address, an optional port and path",
        ));
    }
    Ok(())
}

fn check_timeout(secs: u32) -> Result<(), ApiError> {
    if (1..=60).contains(&secs) {
        Ok(())
    } else {
        Err(invalid("sink.timeout_secs: 1 to 60"))
    }
}

/// PEM certificates an admin gives as a destination's CA: at least one, each one a
/// certificate.
fn check_ca(ca_pem: Option<&str>) -> Result<(), ApiError> {
    let Some(pem) = ca_pem else { return Ok(()) };
    if pem.len() > 65536 {
        return Err(invalid("sink.ca_pem: at most 64 KiB"));
    }
    crate::events::ca_roots(pem)
        .map(|_| ())
        .map_err(|e| invalid(format!("sink.ca_pem: {e}")))
}

fn check_sink(sink: &Sink) -> Result<(), ApiError> {
    match sink {
        Sink::Webhook {
            url, timeout_secs, ..
        } => {
            check_url(url, "the signature authenticates Rampart")?;
            check_timeout(*timeout_secs)?;
        }
        Sink::Syslog {
            address,
            transport,
            ca_pem,
            hostname,
            timeout_secs,
            ..
        } => {
            if !address_regex().is_match(address) {
                return Err(invalid(
                    "sink.address: HOST:PORT, a host name or IPv4 address and a port 1-65535",
                ));
            }
            if ca_pem.is_some() && *transport != crate::api::SyslogTransport::Tls {
                return Err(invalid("sink.ca_pem: only for the tls transport"));
            }
            check_ca(ca_pem.as_deref())?;
            if let Some(h) = hostname
                && (h.is_empty() || h.len() > 255 || !h.chars().all(|c| c.is_ascii_graphic()))
            {
                return Err(invalid(
                    "sink.hostname: 1 to 255 printable ASCII characters, no spaces",
                ));
            }
            check_timeout(*timeout_secs)?;
        }
        Sink::SplunkHec {
            url,
            index,
            ca_pem,
            timeout_secs,
        } => {
            check_url(url, "the token goes in the destination's credential")?;
            if let Some(i) = index
                && (i.is_empty()
                    || i.len() > 80
                    || !i.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
                    })
                    || i.starts_with(['_', '-']))
            {
                return Err(invalid(
                    "sink.index: lower-case letters, digits, _ and -, not first; at most 80",
                ));
            }
            check_ca(ca_pem.as_deref())?;
            check_timeout(*timeout_secs)?;
        }
        Sink::Kafka {
            brokers,
            topic,
            timeout_secs,
        } => {
            if brokers.is_empty() || brokers.len() > 16 {
                return Err(invalid("sink.brokers: 1 to 16 HOST:PORT addresses"));
            }
            for b in brokers {
                if !address_regex().is_match(b) {
                    return Err(invalid(format!(
                        "sink.brokers: {b:?}: HOST:PORT, a host name or IPv4 address and a port 1-65535"
                    )));
                }
            }
            if topic.is_empty()
                || topic.len() > 249
                || topic == "."
                || topic == ".."
                || !topic
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            {
                return Err(invalid(
                    "sink.topic: 1 to 249 letters, digits, '.', '_' and '-' (Kafka's rule)",
                ));
            }
            check_timeout(*timeout_secs)?;
        }
        Sink::Slack { timeout_secs } | Sink::Discord { timeout_secs } => {
            check_timeout(*timeout_secs)?;
        }
        Sink::Email {
            server,
            from,
            to,
            username,
            ca_pem,
            timeout_secs,
            ..
        } => {
            if !address_regex().is_match(server) {
                return Err(invalid(
                    "sink.server: HOST:PORT, a host name or IPv4 address and a port 1-65535",
                ));
            }
            if to.is_empty() || to.len() > 20 {
                return Err(invalid("sink.to: 1 to 20 addresses"));
            }
            crate::events::mailboxes(from, to).map_err(invalid)?;
            if let Some(u) = username
                && (u.is_empty() || u.len() > 256 || u.chars().any(char::is_control))
            {
                return Err(invalid(
                    "sink.username: 1 to 256 characters, no control characters",
                ));
            }
            check_ca(ca_pem.as_deref())?;
            check_timeout(*timeout_secs)?;
        }
    }
    Ok(())
}

/// A chat webhook's URL, given as the credential: http(s), a host, no user in it.
fn check_webhook_url(url: &str) -> Result<(), ApiError> {
    let ok = rampart_intel::feeds::is_plain_http_url(url)
        && url::Url::parse(url).is_ok_and(|u| u.username().is_empty() && u.password().is_none());
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "credential: the webhook's URL (https://hooks.slack.com/services/… or \
             https://discord.com/api/webhooks/…)",
        ))
    }
}

fn address_regex() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(crate::api::ADDRESS_PATTERN)
            .unwrap_or_else(|e| unreachable!("ADDRESS_PATTERN compiles: {e}"))
    })
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
    let previous = existing
        .as_ref()
        .and_then(|d| Stored::parse(&d.def.config).ok());
    // A rotation raises a webhook secret's generation; otherwise the stored one is kept.
    let stored_generation = match previous.as_ref().map(|s| &s.sink) {
        Some(Sink::Webhook {
            secret_generation, ..
        }) => *secret_generation,
        _ => 0,
    };
    let generation = if let Sink::Webhook {
        secret_generation, ..
    } = &mut req.sink
    {
        *secret_generation = if req.rotate_secret {
            stored_generation.saturating_add(1)
        } else {
            stored_generation
        };
        Some(*secret_generation)
    } else {
        if req.rotate_secret {
            return Err(invalid(
                "rotate_secret: only webhooks have a signing secret; give a new credential instead",
            ));
        }
        None
    };
    // The credential: a new one sealed, else the stored one kept while the kind stays.
    let sealed_credential = match (&req.credential, req.sink.needs_credential()) {
        (Some(_), false) => {
            return Err(invalid(format!(
                "credential: a {} destination takes none{}",
                req.sink.kind(),
                if matches!(req.sink, Sink::Email { .. }) {
                    " without a username"
                } else {
                    ""
                }
            )));
        }
        (Some(c), true) => {
            if c.is_empty() || c.len() > 1024 || c.chars().any(char::is_control) {
                return Err(invalid(
                    "credential: 1 to 1024 characters, no control characters",
                ));
            }
            if matches!(req.sink, Sink::Slack { .. } | Sink::Discord { .. }) {
                check_webhook_url(c)?;
            }
            Some(
                crate::seal::seal(
                    &app.config.passphrase,
                    &app.ca().root_fingerprint(),
                    &credential_context(&name),
                    c,
                )
                .map_err(ApiError::internal)?,
            )
        }
        (None, true) => match previous.as_ref() {
            Some(Stored {
                sink,
                sealed_credential: Some(sealed),
            }) if sink.kind() == req.sink.kind() => Some(sealed.clone()),
            _ => {
                let what = match req.sink {
                    Sink::Slack { .. } | Sink::Discord { .. } => "its webhook's URL",
                    Sink::Email { .. } => "the SMTP password of its username",
                    _ => "its token",
                };
                return Err(invalid(format!(
                    "credential: a {} destination needs one ({what})",
                    req.sink.kind()
                )));
            }
        },
        (None, false) => None,
    };
    let config = Stored {
        sink: req.sink.clone(),
        sealed_credential,
    }
    .to_config()
    .map_err(ApiError::internal)?;
    let def = NewDestination {
        name: name.clone(),
        kind: req.sink.kind().to_owned(),
        config,
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
                .detail("secret_rotated", req.rotate_secret.to_string())
                .detail("credential_set", req.credential.is_some().to_string()),
        )
        .await?;
    let secret = generation
        .filter(|_| created || req.rotate_secret || stored_kind_changed(previous.as_ref()))
        .map(|g| crate::events::webhook_secret(&app, &name, g));
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

/// Whether the destination was not a webhook before (its secret is then shown as if new).
fn stored_kind_changed(stored: Option<&Stored>) -> bool {
    !matches!(stored.map(|s| &s.sink), Some(Sink::Webhook { .. }))
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
