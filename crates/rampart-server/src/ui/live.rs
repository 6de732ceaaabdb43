//! `GET /ui/events`: Server-Sent Events telling a dashboard page that a run was stored for an
//! agent the viewer sees (`event: run`, data `{"agent", "run", "policy"}`), or that it fell
//! behind and should reload (`event: reload`). The page's script (`live.js`) refreshes what it
//! shows; without the script the page is the same, only not live.
//!
//! A stream is bounded: at most [`MAX_STREAMS`](crate::live::MAX_STREAMS) per replica, each
//! closed after [`STREAM_LIFETIME`] (the browser reconnects, and the session is checked again),
//! and all of them when the server stops.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use rampart_access::{Permission, Target};
use rampart_store::RunNotice;
use tokio::sync::broadcast::error::RecvError;

use super::{AppState, Refusal, Viewer};
use crate::app::App;
use crate::error::ApiError;
use crate::routes::Caller;

/// How long one stream stays open.
const STREAM_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// Agents whose group a stream remembers before it starts again.
const GROUP_CACHE: usize = 10_000;

struct Stream {
    app: Arc<App>,
    caller: Caller,
    rx: tokio::sync::broadcast::Receiver<RunNotice>,
    closing: tokio::sync::watch::Receiver<bool>,
    deadline: tokio::time::Instant,
    /// Agent id → its group (`None`: no such agent).
    groups: HashMap<String, Option<String>>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Stream {
    /// Whether the viewer sees the agent's group.
    async fn sees(&mut self, agent: &str) -> bool {
        if self.caller.groups().is_none() {
            return true;
        }
        if !self.groups.contains_key(agent) {
            if self.groups.len() >= GROUP_CACHE {
                self.groups.clear();
            }
            let group = match self.app.store.agent(agent).await {
                Ok(a) => a.map(|a| a.group),
                Err(e) => {
                    tracing::warn!(error = %e, "live stream: cannot look up an agent");
                    return false;
                }
            };
            self.groups.insert(agent.to_owned(), group);
        }
        self.groups
            .get(agent)
            .and_then(Option::as_deref)
            .is_some_and(|g| self.caller.sees(g))
    }

    /// The next event for this viewer, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Event> {
        if *self.closing.borrow() {
            return None;
        }
        loop {
            let received = tokio::select! {
                _ = self.closing.changed() => return None,
                _ = tokio::time::sleep_until(self.deadline) => return None,
                r = self.rx.recv() => r,
            };
            match received {
                Ok(n) => {
                    if self.sees(&n.agent).await {
                        return Event::default().event("run").json_data(&n).ok();
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    return Some(Event::default().event("reload").data(""));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

/// `GET /ui/events`.
pub(super) async fn events(State(app): AppState, req: Request) -> Result<Response, Refusal> {
    let (parts, _) = req.into_parts();
    let viewer = Viewer::of(&app, &parts, "").await?;
    viewer.require(Permission::ResultsRead, Target::Listing)?;
    let Ok(permit) = app.live.streams.clone().try_acquire_owned() else {
        return Err(viewer.refuse(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            "too many live pages are open on this server; the page works without live updates",
        )));
    };
    let (rx, closing) = app.live.subscribe();
    let stream = Stream {
        app: app.clone(),
        caller: viewer.caller,
        rx,
        closing,
        deadline: tokio::time::Instant::now() + STREAM_LIFETIME,
        groups: HashMap::new(),
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
