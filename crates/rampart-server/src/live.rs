//! Live updates: every stored run is announced to the dashboards watching, on every replica.
//!
//! With PostgreSQL the replica that stored a batch of runs sends one `NOTIFY`; each replica
//! (itself included) `LISTEN`s and hands the notices to its own subscribers, so a browser
//! connected to replica A sees a run that replica B stored. With SQLite there is one server,
//! which hands them over directly.

use std::sync::Arc;
use std::time::Duration;

use rampart_store::{Backend, RunNotice};
use tokio::sync::{Semaphore, broadcast, watch};

use crate::app::App;

/// Notices a slow subscriber may fall behind by before it is told to reload instead.
const BACKLOG: usize = 1024;

/// Live streams open at once on one replica: each holds a connection and a subscription.
pub(crate) const MAX_STREAMS: usize = 256;

/// The replica's subscribers.
pub(crate) struct Live {
    tx: broadcast::Sender<RunNotice>,
    /// Set when the server stops: open streams end, so shutdown never waits on a browser.
    closing: watch::Sender<bool>,
    /// One permit per open stream.
    pub streams: Arc<Semaphore>,
}

impl Live {
    pub(crate) fn new() -> Live {
        Live {
            tx: broadcast::channel(BACKLOG).0,
            closing: watch::channel(false).0,
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
        }
    }

    /// A new subscriber: the notices from now on, and the server's stopping.
    pub(crate) fn subscribe(&self) -> (broadcast::Receiver<RunNotice>, watch::Receiver<bool>) {
        (self.tx.subscribe(), self.closing.subscribe())
    }

    /// Set when the server stops.
    pub(crate) fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    fn publish(&self, n: RunNotice) {
        // No subscriber is not an error.
        let _ = self.tx.send(n);
    }
}

/// Announces runs just stored.
pub(crate) async fn announce(app: &App, notices: Vec<RunNotice>) {
    if notices.is_empty() {
        return;
    }
    if app.store.backend() == Backend::Postgres {
        match app.store.notify_runs(&notices).await {
            // This replica hears its own notice through its listener.
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "could not announce runs to the other replicas");
            }
        }
    }
    for n in notices {
        app.live.publish(n);
    }
}

/// On PostgreSQL, listens for every replica's notices and hands them to this replica's
/// subscribers (reconnecting with a backoff when the listener cannot start); on either
/// backend, ends the open streams when the server stops.
pub(crate) async fn relay(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    if app.store.backend() == Backend::Postgres {
        let mut backoff = Duration::from_secs(1);
        'listen: loop {
            let mut listener = tokio::select! {
                _ = shutdown.changed() => break 'listen,
                l = app.store.listen_runs() => match l {
                    Ok(Some(l)) => l,
                    Ok(None) => break 'listen,
                    Err(e) => {
                        tracing::warn!(error = %e, retry_secs = backoff.as_secs(), "cannot listen for other replicas' runs");
                        tokio::select! {
                            _ = shutdown.changed() => break 'listen,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        continue;
                    }
                },
            };
            backoff = Duration::from_secs(1);
            loop {
                tokio::select! {
                    _ = shutdown.changed() => break 'listen,
                    n = listener.next() => match n {
                        Ok(n) => app.live.publish(n),
                        Err(e) => {
                            tracing::warn!(error = %e, "a run notice could not be read");
                            // A lost connection: start a new listener after a pause.
                            if matches!(e, rampart_store::StoreError::Query(_)) {
                                tokio::time::sleep(backoff).await;
                                continue 'listen;
                            }
                        }
                    },
                }
            }
        }
    } else {
        let _ = shutdown.changed().await;
    }
    let _ = app.live.closing.send(true);
}
