//! `GET /api/v1/events`: the event stream live, as Server-Sent Events (docs/events.md).
//!
//! Each event is sent as `id: SEQ`, `event: KIND`, `data: DOCUMENT`. A client that reconnects
//! with `Last-Event-ID` (browsers' EventSource do it themselves) resumes after the last event
//! it saw, as far back as the outbox keeps events. A caller sees the events its grant would
//! let it read elsewhere: results and agents of its groups, intel hits on its groups' agents,
//! and the audit log's events (enrolments, revocations, waivers, attestations, every other
//! entry, which name who did what from where) only with `audit_read` over the whole fleet.
//!
//! A stream is bounded like the dashboard's: it shares their limit of open streams per
//! replica, closes after [`STREAM_LIFETIME`] (the client reconnects and is authenticated
//! again, so a revoked token or a disabled user stops receiving within that time), and all of
//! them close when the server stops.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use rampart_access::{Permission, Target};
use rampart_core::Severity;
use rampart_events::{Body, Event};
use schemars::JsonSchema;
use serde::Deserialize;

use super::authorize::Caller;
use crate::api::EventFilter;
use crate::app::App;
use crate::error::ApiError;

/// How long one stream stays open.
const STREAM_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// Events read from the outbox at once.
const PAGE: u32 = 500;
/// How often a stream looks for events other replicas wrote.
const POLL: Duration = Duration::from_secs(1);

/// `?after=&kinds=&min_severity=&groups=`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamQuery {
    /// Start after this event position (0: every event the outbox still keeps). Without it,
    /// and without `Last-Event-ID`, the stream starts with the next event written.
    #[schemars(range(min = 0))]
    after: Option<i64>,
    /// Only these kinds, comma-separated (`check.changed,intel.hit`).
    #[schemars(length(max = 512))]
    kinds: Option<String>,
    /// Only events at least this severe.
    min_severity: Option<Severity>,
    /// Only events about agents of these groups, comma-separated (events about no agent
    /// always pass).
    #[schemars(length(max = 4096))]
    groups: Option<String>,
}

fn list(s: Option<&str>) -> Vec<String> {
    s.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

/// Whether the caller may read `e`: what its grant lets it read elsewhere.
pub(crate) fn visible(caller: &Caller, e: &Event) -> bool {
    let group = e.group();
    let on = |p: Permission| match group {
        Some(g) => caller.check(p, Target::Group(g)).is_ok(),
        None => caller.check(p, Target::AllGroups).is_ok(),
    };
    match &e.body {
        Body::RunStored(_) | Body::CheckChanged(_) => on(Permission::ResultsRead),
        Body::AgentOffline(_) => on(Permission::AgentsRead),
        Body::IntelHit(_) => on(Permission::IntelRead),
        // An alert about a group (or an agent of one) is its results' business; one about the
        // whole fleet is for fleet-wide readers.
        Body::Alert(_) => on(Permission::ResultsRead),
        // Audit entries say who did what from where: the audit log's readers only.
        Body::AgentEnrolled(_)
        | Body::AgentRevoked(_)
        | Body::WaiverChanged(_)
        | Body::AttestationIssued(_)
        | Body::Audit(_) => caller
            .check(Permission::AuditRead, Target::AllGroups)
            .is_ok(),
    }
}

struct Stream {
    app: Arc<App>,
    caller: Caller,
    filter: EventFilter,
    /// The last position read.
    after: i64,
    /// Read but not yet sent.
    ready: std::collections::VecDeque<Event>,
    written: tokio::sync::watch::Receiver<u64>,
    closing: tokio::sync::watch::Receiver<bool>,
    deadline: tokio::time::Instant,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Stream {
    /// The next event for this caller, or `None` when the stream ends.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if *self.closing.borrow() || tokio::time::Instant::now() >= self.deadline {
                return None;
            }
            if let Some(e) = self.ready.pop_front() {
                return SseEvent::default()
                    .id(e.seq.to_string())
                    .event(e.body.kind())
                    .json_data(&e)
                    .ok();
            }
            match self.app.store.events_after(self.after, PAGE).await {
                Ok(page) if !page.is_empty() => {
                    for stored in page {
                        self.after = stored.seq;
                        let Ok(mut e) = Event::from_json(&stored.body) else {
                            tracing::warn!(
                                seq = stored.seq,
                                "event stream: an unreadable event skipped"
                            );
                            continue;
                        };
                        e.seq = stored.seq;
                        if self.filter.takes(&e) && visible(&self.caller, &e) {
                            self.ready.push_back(e);
                        }
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "event stream: cannot read events"),
            }
            tokio::select! {
                _ = self.closing.changed() => return None,
                _ = tokio::time::sleep_until(self.deadline) => return None,
                _ = self.written.changed() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

/// `GET /api/v1/events`.
pub(crate) async fn stream(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> Result<Response, ApiError> {
    let filter = EventFilter {
        kinds: list(q.kinds.as_deref()),
        min_severity: q.min_severity,
        groups: list(q.groups.as_deref()),
    };
    filter
        .check()
        .map_err(|e| ApiError::bad_request("invalid_query", e))?;
    let resume = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_last_event_id",
                        "Last-Event-ID: an event position (a whole number, 0 or more)",
                    )
                })?,
        ),
    };
    if q.after.is_some_and(|a| a < 0) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "after: an event position (0 or more)",
        ));
    }
    let Ok(permit) = app.live.streams.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            "too many live streams are open on this server; try again later",
        ));
    };
    // Subscribed before the start is read, so nothing written in between is missed.
    let written = app.events_written.subscribe();
    let after = match resume.or(q.after) {
        Some(a) => a,
        None => app.store.latest_event_seq().await?,
    };
    let closing = app.live.closing();
    let stream = Stream {
        app: app.clone(),
        caller,
        filter,
        after,
        ready: std::collections::VecDeque::new(),
        written,
        closing,
        deadline: tokio::time::Instant::now() + STREAM_LIFETIME,
        _permit: permit,
    };
    let events = futures_util::stream::unfold(stream, |mut s| async move {
        let e = s.next().await?;
        Some((Ok::<_, Infallible>(e), s))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}
