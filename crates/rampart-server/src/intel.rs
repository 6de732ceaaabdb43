//! The server's threat intelligence: the in-memory lookup index and the feed scheduler.
//!
//! The index is built from the store at start, updated in place by this server's own ingests,
//! and rebuilt from the store on a timer — that is how expiry and score decay reach it, and how
//! indicators ingested by another replica sharing the database arrive. Rebuilds happen off the
//! lock (a new index is built, then swapped in), so lookups never wait for one.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use rampart_core::fleet::Observable;
use rampart_feeds::ingest::{
    IngestError, LiveIndex, load_allowlists, load_decay_models, load_index,
};
use rampart_feeds::sync::{FetchOptions, SyncOutcome, sync_due};
use rampart_intel::Ioc;
use rampart_intel::allowlist::Allowlists;
use rampart_intel::index::{Index, IndexFull};
use rampart_intel::lookup::observables_matches;
use rampart_intel::score::{DecayModels, Facts};
use rampart_store::{NewIntelHit, Store};
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::app::App;

/// What the index was judged by: the allowlists that mark entries and the decay models that
/// score them. Read from the store at every build, so an operator's change reaches lookups at
/// the next rebuild.
pub(crate) struct Rules {
    /// Allowlists in force (the built-in non-routable list and every stored one).
    pub allow: Allowlists,
    /// Decay models in force (the built-in ones and the operators' overrides).
    pub decay: DecayModels,
}

/// The index, the rules it was built by, and the writer lock.
pub(crate) struct Intel {
    /// Live indicators.
    pub index: RwLock<Index>,
    /// The rules in force.
    pub rules: RwLock<Arc<Rules>>,
    /// The store's rules generation (`intel_rules`) they were read at.
    pub generation: AtomicI64,
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

/// The rules in the store and the index of every live indicator, judged by them, with the
/// rules' generation read first (a change made meanwhile is seen at the next check).
async fn build(store: &Store) -> Result<(Index, Rules, i64), IngestError> {
    let generation = store.intel_rules_generation().await?;
    let allow = load_allowlists(store).await?;
    let decay = load_decay_models(store).await?;
    let index = load_index(store, now(), &allow, &decay).await?;
    Ok((index, Rules { allow, decay }, generation))
}

impl Intel {
    /// Builds the index from the store.
    pub async fn load(store: &Store) -> Result<Intel, IngestError> {
        // First, so that the build reads the indicators from memory, and so that a lookup
        // served right after the start does not queue behind the disk reads of the mapping.
        map_lookup_pages_now(store).await;
        let (index, rules, generation) = build(store).await?;
        tracing::info!(
            indicators = index.len(),
            bytes = index.memory_bytes(),
            "threat-intel index loaded"
        );
        Ok(Intel {
            index: RwLock::new(index),
            rules: RwLock::new(Arc::new(rules)),
            generation: AtomicI64::new(generation),
            writer: tokio::sync::Mutex::new(()),
            http: reqwest::Client::builder()
                .user_agent(concat!("rampart/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default(),
            fetch: FetchOptions::default(),
        })
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<Rules> {
        self.rules
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The index as ingestion updates it, judged by `rules` (the rules in force, taken by the
    /// caller while it holds `writer`, so a rebuild cannot swap them meanwhile).
    pub fn live<'a>(&'a self, rules: &'a Rules) -> LiveIndex<'a> {
        LiveIndex {
            index: &self.index,
            allow: &rules.allow,
            decay: &rules.decay,
        }
    }

    /// Runs `f` with the index read-locked.
    pub fn with_index<T>(&self, f: impl FnOnce(&Index) -> T) -> T {
        let guard = self
            .index
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&guard)
    }

    /// Re-scores one indicator in the index from its stored state (`ind`, read after the
    /// change), so a sighting moves its score at once instead of at the next rebuild. An
    /// indicator the index does not hold (expired, too long to index) is left out.
    pub fn rescore(&self, ind: &rampart_store::IntelIndicator, now: i64) -> Result<(), IndexFull> {
        let kind = ind.kind;
        let ioc = Ioc::new(kind, ind.value.clone());
        let score = self.rules().decay.score(
            &Facts::from_indicator(ind),
            kind,
            ind.threat_type.as_deref(),
            now,
        );
        let mut index = self
            .index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if index.get(&ioc).is_some() {
            index.upsert(&ioc, u64::try_from(ind.id).unwrap_or(0), score)?;
        }
        Ok(())
    }

    /// The rules in force, made current first: when an allowlist or a decay model changed in
    /// the store (through the CLI or another replica) since they were read, the index is
    /// rebuilt under them before this returns. Every lookup, match, fleet hit and export goes
    /// through here, so a change applies before the next one; checking costs one read of one
    /// row.
    pub async fn current_rules(&self, store: &Store) -> Result<Arc<Rules>, IngestError> {
        if store.intel_rules_generation().await? != self.generation.load(Ordering::Acquire) {
            let _w = self.writer.lock().await;
            self.current_rules_locked(store).await?;
        }
        Ok(self.rules())
    }

    /// [`Intel::current_rules`] for a caller that holds `writer` (ingest, sync).
    pub async fn current_rules_locked(&self, store: &Store) -> Result<Arc<Rules>, IngestError> {
        // Another request may have rebuilt while this one waited for the lock.
        if store.intel_rules_generation().await? != self.generation.load(Ordering::Acquire) {
            self.rebuild_locked(store).await?;
        }
        Ok(self.rules())
    }

    /// Rebuilds the index (and its rules) from the store and swaps it in. The caller holds
    /// `writer`, so no ingest's update is lost in the swap.
    pub async fn rebuild_locked(&self, store: &Store) -> Result<(), IngestError> {
        let (index, rules, generation) = build(store).await?;
        let n = index.len();
        *self
            .index
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = index;
        *self
            .rules
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(rules);
        self.generation.store(generation, Ordering::Release);
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
        let rules = self.current_rules_locked(store).await?;
        sync_due(
            store,
            &self.http,
            now(),
            force,
            &self.fetch,
            Some(self.live(&rules)),
        )
        .await
    }
}

impl Intel {
    /// The indicators `observables` match, left out what an allowlist covers.
    pub fn match_observables(&self, observables: &[Observable]) -> Vec<NewIntelHit> {
        self.with_index(|index| {
            let mut hits = Vec::new();
            let values: Vec<&str> = observables.iter().map(|o| o.value.as_str()).collect();
            let found = observables_matches(index, &values, false);
            for (o, found) in observables.iter().zip(found) {
                let Ok(found) = found else {
                    continue;
                };
                for (m, _) in found {
                    let Some(id) = index.id(m.entry) else {
                        continue;
                    };
                    hits.push(NewIntelHit {
                        indicator_id: i64::try_from(id).unwrap_or(i64::MAX),
                        observable_kind: o.kind.as_str().to_owned(),
                        observable: o.value.clone(),
                        context: o.context.clone(),
                        how: m.how.as_str().to_owned(),
                        score: index.score(m.entry).unwrap_or(0),
                    });
                }
            }
            hits
        })
    }
}

/// Matches a stored run's observables and records the hits. Failures are logged, never
/// returned: the run itself is already stored and acknowledged.
pub(crate) async fn record_matches(
    app: &App,
    agent_id: &str,
    run_id: &str,
    observables: &[Observable],
) {
    if let Err(e) = app.intel.current_rules(&app.store).await {
        tracing::warn!(error = %e, "threat-intel rules could not be refreshed; matching under the current ones");
    }
    let hits = app.intel.match_observables(observables);
    if hits.is_empty() {
        return;
    }
    for h in &hits {
        tracing::debug!(agent = agent_id, run = run_id, observable = %h.observable, context = %h.context, how = %h.how, indicator_id = h.indicator_id, "threat-intel match");
    }
    match app
        .store
        .intel_record_hits(agent_id, run_id, now(), &hits)
        .await
    {
        // Seen before: counted, not repeated as a warning at every scan.
        Ok(0) => tracing::info!(
            agent = agent_id,
            run = run_id,
            matches = hits.len(),
            "threat-intel matches seen again"
        ),
        Ok(new) => tracing::warn!(
            agent = agent_id,
            run = run_id,
            matches = hits.len(),
            new,
            "new threat-intel matches on an agent (GET /api/v1/intel/hits)"
        ),
        Err(e) => {
            tracing::error!(agent = agent_id, run = run_id, error = %e, "could not record threat-intel matches")
        }
    }
}

/// Maps the pages a lookup reads into this process, off the request path
/// ([`Store::intel_map_lookup_pages`]: so that the kernel's eviction of unmapped file pages
/// cannot leave a lookup waiting for the disk). Best effort: a failure costs only that.
fn map_lookup_pages(store: &Store) {
    let store = store.clone();
    tokio::spawn(async move { map_lookup_pages_now(&store).await });
}

/// [`map_lookup_pages`], waited for.
async fn map_lookup_pages_now(store: &Store) {
    let started = std::time::Instant::now();
    match store.intel_map_lookup_pages().await {
        Ok(rows) => tracing::debug!(
            rows,
            seconds = started.elapsed().as_secs_f64(),
            "threat-intel lookup pages mapped"
        ),
        Err(e) => tracing::warn!(
            error = %e,
            "could not map the threat-intel lookup pages; lookups may wait for the disk"
        ),
    }
}

/// Feed scheduling and index refresh until shutdown.
pub(crate) async fn background(app: Arc<App>, mut shutdown: watch::Receiver<bool>) {
    let mut sync = tokio::time::interval(app.config.intel_sync_check);
    let mut rebuild = tokio::time::interval(app.config.intel_refresh);
    // The first ticks fire at once: the index was just built at start, its pages mapped.
    rebuild.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = sync.tick(), if app.config.intel_sync => {
                match app.intel.sync(&app.store, false).await {
                    Ok(outcomes) => {
                        for (feed, outcome) in outcomes {
                            app.metrics.feed_synced(&feed, &outcome);
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
                match app.intel.rebuild_locked(&app.store).await {
                    // Pages written since the last time are not mapped yet.
                    Ok(()) => map_lookup_pages(&app.store),
                    Err(e) => tracing::warn!(error = %e, "threat-intel index rebuild failed; keeping the current one"),
                }
            }
        }
    }
}
