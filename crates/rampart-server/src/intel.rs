//! The server's threat intelligence: the in-memory lookup index and the feed scheduler.
//!
//! The index is built from the store at start, updated in place by this server's own ingests,
//! and rebuilt from the store on a timer — that is how expiry and score decay reach it, and how
//! indicators ingested by another replica sharing the database arrive. Rebuilds happen off the
//! lock (a new index is built, then swapped in), so lookups never wait for one.

use std::sync::{Arc, RwLock};

use rampart_intel::allowlist::Allowlists;
use rampart_intel::feeds::{FetchOptions, SyncOutcome, sync_due};
use rampart_intel::index::Index;
use rampart_intel::ingest::{IngestError, load_allowlists, load_index};
use rampart_store::Store;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::app::App;

/// The index, the allowlists it was marked with, and the writer lock.
pub(crate) struct Intel {
    /// Live indicators.
    pub index: RwLock<Index>,
    /// Allowlists in force (the built-in non-routable list and every stored one).
    pub allow: RwLock<Arc<Allowlists>>,
    /// One writer at a time (ingest, sync, rebuild): they all update `index`.
    pub writer: tokio::sync::Mutex<()>,
    /// Client for feed downloads.
    pub http: reqwest::Client,
    /// How feeds are fetched.
    pub fetch: FetchOptions,
}

pub(crate) fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

impl Intel {
    /// Builds the index from the store.
    pub async fn load(store: &Store) -> Result<Intel, IngestError> {
        let allow = load_allowlists(store).await?;
        let index = load_index(store, now(), &allow).await?;
        tracing::info!(
            indicators = index.len(),
            bytes = index.memory_bytes(),
            "threat-intel index loaded"
        );
        Ok(Intel {
            index: RwLock::new(index),
            allow: RwLock::new(Arc::new(allow)),
            writer: tokio::sync::Mutex::new(()),
            http: reqwest::Client::builder()
                .user_agent(concat!("rampart/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default(),
            fetch: FetchOptions::default(),
        })
    }

    /// The allowlists in force.
    pub fn allowlists(&self) -> Arc<Allowlists> {
        self.allow
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Runs `f` with the index read-locked.
    pub fn with_index<T>(&self, f: impl FnOnce(&Index) -> T) -> T {
        let guard = self
            .index
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&guard)
    }

    /// Rebuilds the index (and allowlists) from the store and swaps it in. The caller holds
    /// `writer`, so no ingest's update is lost in the swap.
    pub async fn rebuild_locked(&self, store: &Store) -> Result<(), IngestError> {
        let allow = load_allowlists(store).await?;
        let index = load_index(store, now(), &allow).await?;
        let n = index.len();
        *self
            .index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = index;
        *self
            .allow
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(allow);
        tracing::debug!(indicators = n, "threat-intel index rebuilt");
        Ok(())
    }

    /// Fetches every due feed (every feed with a URL when `force`), updating the index.
    pub async fn sync(
        &self,
        store: &Store,
        force: bool,
    ) -> Result<Vec<(String, SyncOutcome)>, IngestError> {
        let _w = self.writer.lock().await;
        sync_due(
            store,
            &self.http,
            now(),
            force,
            &self.fetch,
            Some(&self.index),
        )
        .await
    }
}

/// Feed scheduling and index refresh until shutdown.
pub(crate) async fn background(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let mut sync = tokio::time::interval(app.config.intel_sync_check);
    let mut rebuild = tokio::time::interval(app.config.intel_refresh);
    // The first ticks fire at once: the index was just built at start.
    rebuild.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = sync.tick(), if app.config.intel_sync => {
                match app.intel.sync(&app.store, false).await {
                    Ok(outcomes) => {
                        for (feed, outcome) in outcomes {
                            match outcome {
                                SyncOutcome::Failed { error } => tracing::warn!(%feed, %error, "feed sync failed; its indicators are kept"),
                                SyncOutcome::NotModified => tracing::debug!(%feed, "feed not modified"),
                                SyncOutcome::Ingested { report, bytes } => tracing::info!(
                                    %feed, bytes, records = report.parse.records,
                                    new_indicators = report.stored.new_indicators,
                                    rejected = report.parse.problems, "feed synced"),
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "feed sync stopped"),
                }
            }
            _ = rebuild.tick() => {
                let _w = app.intel.writer.lock().await;
                if let Err(e) = app.intel.rebuild_locked(&app.store).await {
                    tracing::warn!(error = %e, "threat-intel index rebuild failed; keeping the current one");
                }
            }
        }
    }
}
