//! The ingestion pipeline: parse → canonicalise → deduplicate → store, observations included,
//! and the lookup index updated in place.
//!
//! Parsing runs on its own thread and hands batches over a bounded channel, so parsing one
//! batch overlaps with the database writing the previous one, and memory stays at a few
//! batches whatever the feed's size. A batch is committed in one transaction: an interrupted
//! ingest leaves whole batches, and re-running it is idempotent (records are keyed by a digest
//! of their feed and text; observations by indicator and record).

use std::io::Read;
use std::sync::RwLock;

use rampart_store::{IntelFeed, IntelIngestCounts, IntelRecordIn, Store, StoreError};
use sha2::{Digest, Sha256};

use rampart_intel::index::Index;
use rampart_intel::kind::IocKind;
use rampart_intel::parse::{Format, Limits, ParseError, Summary};
use rampart_intel::record::Record;
use rampart_intel::score;

/// Records per database transaction, at most. Each commit writes every page the batch
/// dirtied in the indicator key index, whose keys are random, so fewer, larger batches write
/// each page fewer times: 200,000 took 54.7 s for 5 M indicators where 50,000 took 75.7 s
/// (docs/performance.md). `BATCH_BYTES` still bounds the memory.
pub const BATCH: usize = 200_000;

/// Raw bytes per database transaction, at most: bounds memory for feeds whose rows are large
/// (a MISP event, a STIX indicator with a long description).
pub const BATCH_BYTES: usize = 64 * 1024 * 1024;

/// Why an ingest stopped.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The document could not be read on; batches before the failure are stored.
    #[error("{0}")]
    Parse(#[from] ParseError),
    /// The database refused a batch.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The lookup index is full.
    #[error("{0}")]
    Index(#[from] rampart_intel::index::IndexFull),
    /// The parser thread died (a bug).
    #[error("the parser thread stopped unexpectedly")]
    Parser,
}

/// What an ingest did.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct IngestReport {
    /// What the parser saw.
    pub parse: Summary,
    /// What the store changed.
    pub stored: IntelIngestCounts,
    /// Why the input yielded no indicator, when it yielded none and no rejected row or note
    /// says why already (an empty file, comments only, a header without rows).
    pub no_indicator: Option<String>,
}

/// The record's identity within its feed: 128 bits of SHA-256 over the feed id and raw text.
pub fn record_hash(feed_id: i64, raw: &str) -> String {
    let mut h = Sha256::new();
    h.update(feed_id.to_le_bytes());
    h.update(raw.as_bytes());
    hex::encode(&h.finalize()[..16])
}

fn to_store(feed: &IntelFeed, record: Record) -> IntelRecordIn {
    let reliability = u8::try_from(feed.reliability.clamp(0, 100)).unwrap_or(50);
    let base = i64::from(score::base(reliability, record.confidence));
    IntelRecordIn {
        hash: record_hash(feed.id, &record.raw),
        source_ref: record.source_ref,
        first_seen: record.first_seen,
        last_seen: record.last_seen,
        valid_until: record.valid_until,
        threat_type: record.threat_type,
        malware: record.malware,
        tags: record.tags,
        attack: record.attack,
        confidence: record.confidence.map(i64::from),
        reporter: record.reporter,
        reference: record.reference,
        status: record.status,
        description: record.description,
        raw: record.raw,
        indicators: record
            .indicators
            .into_iter()
            .map(|i| (i.kind, i.value, base))
            .collect(),
    }
}

/// Parses `input` as `format` and stores everything in it as observations of `feed`, at time
/// `now`. With an `index`, every indicator touched is upserted into it (score recomputed).
pub async fn ingest(
    store: &Store,
    feed: &IntelFeed,
    format: Format,
    input: Box<dyn Read + Send>,
    limits: Limits,
    now: i64,
    index: Option<LiveIndex<'_>>,
) -> Result<IngestReport, IngestError> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<IntelRecordIn>>(2);
    let feed_for_parser = feed.clone();
    let parser = std::thread::Builder::new()
        .name("intel-parse".into())
        .spawn(move || {
            let mut input = input;
            let mut batch = Vec::new();
            let mut bytes = 0usize;
            let mut closed = false;
            let result = rampart_intel::parse::parse(format, &mut input, &limits, &mut |record| {
                if closed {
                    return;
                }
                bytes += record.raw.len();
                batch.push(to_store(&feed_for_parser, record));
                if batch.len() >= BATCH || bytes >= BATCH_BYTES {
                    bytes = 0;
                    closed = tx.blocking_send(std::mem::take(&mut batch)).is_err();
                }
            });
            if !batch.is_empty() && !closed {
                let _ = tx.blocking_send(batch);
            }
            result
        })
        .map_err(|_| IngestError::Parser)?;
    let mut stored = IntelIngestCounts::default();
    let mut failure = None;
    while let Some(batch) = rx.recv().await {
        match store
            .intel_ingest(feed.id, feed.ttl_secs, now, &batch)
            .await
        {
            Ok((counts, touched)) => {
                stored.new_indicators += counts.new_indicators;
                stored.updated_indicators += counts.updated_indicators;
                stored.records += counts.records;
                stored.new_observations += counts.new_observations;
                if let Some(index) = index {
                    update_index(index, &batch, &touched, now)?;
                }
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    // Dropping the receiver stops the parser at its next batch.
    drop(rx);
    let parsed = parser.join().map_err(|_| IngestError::Parser)?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    let parse = parsed?;
    Ok(IngestReport {
        no_indicator: parse.why_empty(Some(format)),
        parse,
        stored,
    })
}

/// A running lookup index that ingestion keeps current, with the allowlists its entries are
/// marked by: an indicator added or changed by an upload or a feed sync is marked at once, not
/// at the next full rebuild (until then a documentation address a feed lists would answer "not
/// allowlisted" and raise fleet hits).
#[derive(Clone, Copy)]
pub struct LiveIndex<'a> {
    /// The index.
    pub index: &'a RwLock<Index>,
    /// The allowlists in force.
    pub allow: &'a rampart_intel::allowlist::Allowlists,
    /// The decay models in force.
    pub decay: &'a score::DecayModels,
}

fn update_index(
    live: LiveIndex<'_>,
    batch: &[IntelRecordIn],
    touched: &[(i64, IocKind, String)],
    now: i64,
) -> Result<(), IngestError> {
    // The batch's best base score, latest sighting and threat type per indicator; stored
    // values may differ (earlier feeds) — the periodic rescore from the store settles that.
    type Best<'b> = (u8, i64, Option<&'b str>);
    let mut best: std::collections::HashMap<(IocKind, &str), Best<'_>> =
        std::collections::HashMap::new();
    for r in batch {
        let seen = r.last_seen.or(r.first_seen).unwrap_or(now);
        for (kind, value, base) in &r.indicators {
            let e = best
                .entry((*kind, value.as_str()))
                .or_insert((0, i64::MIN, None));
            e.0 = e.0.max(u8::try_from(*base).unwrap_or(0));
            e.1 = e.1.max(seen);
            if r.threat_type.is_some() {
                e.2 = r.threat_type.as_deref();
            }
        }
    }
    let mut guard = live
        .index
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for (id, kind, value) in touched {
        let (base, last_seen, threat) = best
            .get(&(*kind, value.as_str()))
            .copied()
            .unwrap_or((0, now, None));
        let facts = score::Facts {
            base,
            last_seen,
            sightings: 0,
            false_positives: 0,
            last_sighting: None,
        };
        let ioc = rampart_intel::canon::Ioc::new(*kind, value.clone());
        if let Some(entry) = guard.upsert(
            &ioc,
            u64::try_from(*id).unwrap_or(0),
            live.decay.score(&facts, *kind, threat, now),
        )? {
            guard.set_allowlisted(entry, live.allow.check(&ioc).is_some());
        }
    }
    guard.commit();
    Ok(())
}

/// The built-in non-routable list plus every allowlist stored.
pub async fn load_allowlists(
    store: &Store,
) -> Result<rampart_intel::allowlist::Allowlists, IngestError> {
    use rampart_intel::allowlist::{AllowlistDef, Allowlists, builtin_non_routable};
    let mut defs = vec![builtin_non_routable()];
    for list in store.intel_allowlists().await? {
        let match_type = list.match_type.parse().map_err(|e: String| {
            IngestError::Store(StoreError::Corrupt {
                what: "allowlist type",
                detail: e,
            })
        })?;
        defs.push(AllowlistDef {
            name: list.name,
            match_type,
            entries: list.entries,
            description: list.description,
        });
    }
    Allowlists::new(defs).map_err(|e| {
        IngestError::Store(StoreError::Corrupt {
            what: "allowlist entry",
            detail: e.to_string(),
        })
    })
}

/// The built-in decay models with the operators' overrides from the store.
pub async fn load_decay_models(store: &Store) -> Result<score::DecayModels, IngestError> {
    let mut overrides = Vec::new();
    for row in store.intel_decay_models().await? {
        let corrupt = |detail: String| {
            IngestError::Store(StoreError::Corrupt {
                what: "decay model",
                detail,
            })
        };
        let scope: score::Scope = row.scope.parse().map_err(corrupt)?;
        let model = score::DecayModel {
            lifetime_days: row.lifetime_days,
            speed: row.speed,
        };
        model
            .validate()
            .map_err(|e| corrupt(format!("{}: {e}", row.scope)))?;
        overrides.push((scope, model));
    }
    Ok(score::DecayModels::with_overrides(overrides))
}

/// Builds the lookup index from every live indicator in the store, scored under `decay`,
/// marking those `allow` covers.
pub async fn load_index(
    store: &Store,
    now: i64,
    allow: &rampart_intel::allowlist::Allowlists,
    decay: &score::DecayModels,
) -> Result<Index, IngestError> {
    let mut index = Index::new();
    let mut full = None;
    store
        .intel_live_indicators(now, 50_000, &mut |row| {
            let kind = row.kind;
            let score = decay.score(
                &score::Facts::from_row(&row),
                kind,
                row.threat_type.as_deref(),
                now,
            );
            let ioc = rampart_intel::canon::Ioc::new(kind, row.value);
            match index.upsert(&ioc, u64::try_from(row.id).unwrap_or(0), score) {
                Ok(Some(entry)) if allow.check(&ioc).is_some() => {
                    index.set_allowlisted(entry, true)
                }
                Ok(_) => {}
                Err(e) => full = Some(e),
            }
        })
        .await?;
    if let Some(e) = full {
        return Err(e.into());
    }
    index.commit();
    Ok(index)
}
