//! Threat-intelligence storage: feeds, indicators, verbatim records and the observations that
//! link them.
//!
//! Ingestion is batch-shaped for speed: one batch is one transaction of a few statements.
//! PostgreSQL takes each statement's whole batch as a single JSON parameter
//! (`json_array_elements`) and upserts indicators and records on their unique keys. SQLite's
//! single writer takes the rows as bound parameters of multi-row statements, looks existing
//! indicators and records up by small keys, updates what exists and inserts the rest with ids
//! it hands out (`ingest::sqlite`), because random-key unique indexes and JSON unpacking were
//! what bounded its ingestion (docs/performance.md).
//!
//! SQL texts built with `format!` here are assembled from constants only (never from input),
//! hence `AssertSqlSafe`.
//!
//! Times are Unix seconds. Kinds are `IocKind`s at the store's boundary and their stable codes
//! in its tables (`kind_of`, `code_of`).
//!
//! By concern: `feeds` (definitions and health), `ingest` (batches, the version clock, the
//! SQLite key backfill), `indicators` (reads for lookups, the index and exports; sightings;
//! purge), `rules` (allowlists, decay models, their generation), `attack` (the ATT&CK
//! catalogue), `hits` (fleet matches).

mod attack;
mod feeds;
mod hits;
mod indicators;
mod ingest;
mod rules;

pub(crate) use ingest::sqlite_backfill_indicator_keys;
use ingest::{BUMP_RULES_SQL, ClockReservation, RESERVE_STAMPS_SQL};

use rampart_intel::IocKind;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::StoreError;

/// A stored kind code as the kind it names; a code this version does not know (a newer
/// Rampart wrote it) is refused, never guessed.
pub(crate) fn kind_of(code: i64) -> Result<IocKind, sqlx::Error> {
    IocKind::from_stored(code)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown indicator kind code {code}").into()))
}

/// A kind as its stored code.
pub(crate) fn code_of(kind: IocKind) -> i64 {
    i64::from(kind.code())
}

/// A JSON list column as strings.
fn json_list(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt("intel record list", e))
}

/// Rows as the one JSON parameter a batch statement unpacks.
fn to_json<T: Serialize + ?Sized>(rows: &T) -> Result<String, StoreError> {
    serde_json::to_string(rows).map_err(|e| StoreError::corrupt("intel batch", e))
}

/// 64 bits of SHA-256 over an indicator's kind code and value: the SQLite dedup key
/// (migration 0005). It is stored, so it may never change.
pub(crate) fn indicator_key(kind: i64, value: &str) -> i64 {
    let digest = Sha256::new()
        .chain_update(kind.to_le_bytes())
        .chain_update(value.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_le_bytes(first)
}

/// What the store's own intel tests share.
#[cfg(test)]
pub(crate) mod testing {
    use rampart_intel::rows::NewIntelFeed;

    use crate::Store;

    /// Stores a feed named `name`, read from files, whose observations keep an indicator alive
    /// for `ttl_secs`, and returns its id.
    pub(crate) async fn feed(store: &Store, name: &str, ttl_secs: i64, now: i64) -> i64 {
        let feed = NewIntelFeed {
            name: name.into(),
            format: "csv".into(),
            url: None,
            interval_secs: 3600,
            reliability: 80,
            tlp: "clear".into(),
            terms: None,
            ttl_secs,
        };
        store.intel_put_feed(&feed, now).await.expect("feed").id
    }
}
