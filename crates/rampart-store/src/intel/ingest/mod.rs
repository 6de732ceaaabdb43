//! Ingestion: one batch of one feed's records per transaction (see the module above for the
//! shape), and the SQLite key backfill.

use rampart_intel::IocKind;
use rampart_intel::rows::{IntelIngestCounts, IntelRecordIn, STAMPS_PER_VERSION};
use serde::Serialize;
use std::collections::HashMap;

use foldhash::{HashMapExt as _, HashSetExt as _};

use sqlx::{AssertSqlSafe, Row};

use crate::{Db, Store, StoreError};

use super::{code_of, indicator_key, kind_of, to_json};

mod sqlite;

/// The SQL that unpacks a JSON array of arrays (PostgreSQL's batches): element `n` of each
/// row, as text or cast to an integer (`->>` yields text).
struct JsonRows {
    from: &'static str,
    int_cast: &'static str,
}

impl JsonRows {
    fn col(&self, n: usize, ty: &str) -> String {
        let cast = if ty == "int" { self.int_cast } else { "" };
        format!("(j.value ->> {n}){cast}")
    }
}

const PG_ROWS: JsonRows = JsonRows {
    from: "json_array_elements($1::json) AS j(value)",
    int_cast: "::bigint",
};

fn indicator_upsert_sql(rows: &JsonRows) -> String {
    let c = |n, ty| rows.col(n, ty);
    format!(
        "INSERT INTO intel_indicators (kind, value, first_seen, last_seen, first_reported, last_reported, expires_at, base_score, version, threat_type) \
         SELECT {}, {}, {}, {}, {}, {}, {}, {}, {}, {} FROM {} WHERE true \
         ON CONFLICT (kind, value) DO UPDATE SET \
           version = CASE WHEN excluded.first_seen < intel_indicators.first_seen OR excluded.last_seen > intel_indicators.last_seen \
             OR excluded.base_score > intel_indicators.base_score \
             OR (excluded.threat_type IS NOT NULL AND excluded.threat_type IS DISTINCT FROM intel_indicators.threat_type) \
             THEN excluded.version ELSE intel_indicators.version END, \
           threat_type = COALESCE(excluded.threat_type, intel_indicators.threat_type), \
           first_seen = CASE WHEN excluded.first_seen < intel_indicators.first_seen THEN excluded.first_seen ELSE intel_indicators.first_seen END, \
           last_seen = CASE WHEN excluded.last_seen > intel_indicators.last_seen THEN excluded.last_seen ELSE intel_indicators.last_seen END, \
           last_reported = excluded.last_reported, \
           expires_at = CASE WHEN excluded.expires_at > intel_indicators.expires_at THEN excluded.expires_at ELSE intel_indicators.expires_at END, \
           base_score = CASE WHEN excluded.base_score > intel_indicators.base_score THEN excluded.base_score ELSE intel_indicators.base_score END \
         RETURNING id, kind, value, (id > $2) AS inserted",
        c(0, "int"),
        c(1, "text"),
        c(2, "int"),
        c(3, "int"),
        c(4, "int"),
        c(4, "int"),
        c(5, "int"),
        c(6, "int"),
        c(7, "int"),
        c(8, "text"),
        rows.from
    )
}

/// The record columns, then the SELECT list that fills them from `RecordRow`'s JSON. The feed
/// and the fetch time are the same for the whole batch: parameters `$2` and `$3`, not JSON
/// (every `->> n` walks the row from its start).
fn record_columns(rows: &JsonRows) -> (String, String) {
    // JSON positions as written by `RecordRow`, or a parameter. The optional columns come
    // last, and `RecordRow` leaves out trailing nulls: a blocklist row is four elements, and a
    // position past the end reads as NULL.
    const COLUMNS: [(&str, &str); 20] = [
        ("anchor", "int"),
        ("hash", "text"),
        ("raw", "text"),
        ("malware", "list"),
        ("tags", "list"),
        ("attack", "list"),
        ("family", "text"),
        ("threat_type", "text"),
        ("first_seen", "int"),
        ("last_seen", "int"),
        ("valid_until", "int"),
        ("source_ref", "text"),
        ("confidence", "int"),
        ("reporter", "text"),
        ("reference", "text"),
        ("status", "text"),
        ("description", "text"),
        ("feed_id", "$2"),
        ("first_fetched", "$3"),
        ("last_fetched", "$3"),
    ];
    let mut names: Vec<&str> = Vec::with_capacity(21);
    let mut values: Vec<String> = Vec::with_capacity(21);
    let mut pos = 0;
    for (name, source) in COLUMNS {
        names.push(name);
        if source.starts_with('$') {
            values.push(source.to_owned());
        } else if source == "list" {
            values.push(format!("COALESCE({}, '[]')", rows.col(pos, "text")));
            pos += 1;
        } else {
            values.push(rows.col(pos, source));
            pos += 1;
        }
    }
    (names.join(", "), values.join(", "))
}

/// Inserts records or refreshes the ones already stored, returning every row's id.
fn record_upsert_sql(rows: &JsonRows) -> String {
    let (names, values) = record_columns(rows);
    format!(
        "INSERT INTO intel_records ({names}) SELECT {values} FROM {} WHERE true \
         ON CONFLICT (anchor, hash) DO UPDATE SET last_fetched = excluded.last_fetched RETURNING id, hash",
        rows.from
    )
}

/// One record as a row of the batch's JSON array, in `record_sql`'s column order.
struct RecordRow<'a> {
    anchor: i64,
    record: &'a IntelRecordIn,
}

/// One optional value of a record row.
enum Cell<'a> {
    Int(i64),
    Text(&'a str),
    Json(String),
}

impl Serialize for Cell<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Int(n) => serializer.serialize_i64(*n),
            Cell::Text(t) => serializer.serialize_str(t),
            Cell::Json(j) => serializer.serialize_str(j),
        }
    }
}

impl Serialize for RecordRow<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeTuple as _};
        let r = self.record;
        // The list columns hold JSON text; an empty list is left to the column's default.
        let list = |v: &[String]| -> Result<Option<Cell<'_>>, S::Error> {
            if v.is_empty() {
                return Ok(None);
            }
            Ok(Some(Cell::Json(
                serde_json::to_string(v).map_err(S::Error::custom)?,
            )))
        };
        fn text(v: &Option<String>) -> Option<Cell<'_>> {
            v.as_deref().map(Cell::Text)
        }
        let int = |v: Option<i64>| v.map(Cell::Int);
        let optional = [
            list(&r.malware)?,
            list(&r.tags)?,
            list(&r.attack)?,
            r.malware.first().map(|m| Cell::Text(m.as_str())),
            text(&r.threat_type),
            int(r.first_seen),
            int(r.last_seen),
            int(r.valid_until),
            text(&r.source_ref),
            int(r.confidence),
            text(&r.reporter),
            text(&r.reference),
            text(&r.status),
            text(&r.description),
        ];
        let used = optional
            .iter()
            .rposition(Option::is_some)
            .map_or(0, |p| p + 1);
        let mut t = serializer.serialize_tuple(3 + used)?;
        t.serialize_element(&self.anchor)?;
        t.serialize_element(&r.hash)?;
        t.serialize_element(&r.raw)?;
        for cell in &optional[..used] {
            t.serialize_element(cell)?;
        }
        t.end()
    }
}

fn observation_sql(rows: &JsonRows) -> String {
    let c = |n, ty| rows.col(n, ty);
    format!(
        "INSERT INTO intel_observations (indicator_id, record_id) SELECT {}, {} FROM {} WHERE true \
         ON CONFLICT DO NOTHING RETURNING indicator_id",
        c(0, "int"),
        c(1, "int"),
        rows.from
    )
}

/// One ingest batch, aggregated: one row per distinct indicator (a statement may not touch a
/// row twice), each record once, and the observations as (indicator slot, record position).
struct Batch<'a> {
    feed_id: i64,
    now: i64,
    expires: i64,
    /// Each distinct indicator's slot in `aggs`. foldhash, not SipHash: hashing every value
    /// of a batch with SipHash took 5 % of a 5 M ingest.
    slots: foldhash::HashMap<(i64, &'a str), usize>,
    aggs: Vec<Agg<'a>>,
    records: Vec<&'a IntelRecordIn>,
    /// Each record's observations: a range of `obs`.
    record_obs: Vec<std::ops::Range<usize>>,
    obs: Vec<(usize, usize)>,
}

/// One distinct indicator of a batch; `id` is filled in once it is stored.
struct Agg<'a> {
    kind: i64,
    value: &'a str,
    first: i64,
    last: i64,
    score: i64,
    id: Option<i64>,
    /// The stamp this indicator's version gets if the batch changes it.
    stamp: i64,
    /// Whether this batch created it.
    fresh: bool,
    /// The threat type of the batch's last record naming it that has one.
    threat: Option<&'a str>,
}

/// `(id, kind, value)` of every indicator a batch touched, for the lookup index.
pub(super) type Touched = Vec<(i64, IocKind, String)>;

/// Reserves version stamps, `STAMPS_PER_VERSION` apart, from the one clock: bind the span
/// (`ClockReservation::span`) and the wall clock in microseconds; returns the last stamp
/// reserved. The clock row stays locked until the transaction ends (PostgreSQL's row lock,
/// SQLite's write lock), so stamps are handed out in commit order across every writer and
/// replica: a reader never sees a stamp while a smaller one is still uncommitted.
pub(super) const RESERVE_STAMPS_SQL: &str = "UPDATE intel_clock SET last = CASE WHEN last + $1 > $2 THEN last + $1 ELSE $2 END \
     WHERE id = 1 RETURNING last";

/// Moves the rules' generation (`intel_rules`), in the transaction that changed them.
pub(super) const BUMP_RULES_SQL: &str =
    "UPDATE intel_rules SET generation = generation + 1 WHERE id = 1";

/// The arguments of one `RESERVE_STAMPS_SQL` for `count` versions.
pub(super) struct ClockReservation {
    pub(super) span: i64,
    pub(super) now_us: i64,
}

impl ClockReservation {
    pub(super) fn new(count: usize) -> ClockReservation {
        let count = i64::try_from(count.max(1)).unwrap_or(i64::MAX / (2 * STAMPS_PER_VERSION));
        ClockReservation {
            span: STAMPS_PER_VERSION * count,
            now_us: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX / 2))
                .unwrap_or(0),
        }
    }

    /// The first stamp, given the clock's new value.
    pub(super) fn first(&self, last: i64) -> i64 {
        last - self.span + STAMPS_PER_VERSION
    }
}

impl<'a> Batch<'a> {
    fn new(feed_id: i64, now: i64, expires: i64, records: &'a [IntelRecordIn]) -> Batch<'a> {
        let mut batch = Batch {
            feed_id,
            now,
            expires,
            slots: foldhash::HashMap::with_capacity(records.len()),
            aggs: Vec::new(),
            records: Vec::with_capacity(records.len()),
            record_obs: Vec::with_capacity(records.len()),
            obs: Vec::new(),
        };
        // A feed may repeat a row verbatim: one record row per digest (the same text names
        // the same indicators, so its observations are the first copy's).
        let mut seen_records = foldhash::HashSet::with_capacity(records.len());
        for r in records {
            let unique = seen_records.insert(r.hash.as_str());
            let start = batch.obs.len();
            // A source that gives no times lists the value now; one that gives only a first
            // sighting has not seen it since (MISP's rule for decay).
            let first = r.first_seen.or(r.last_seen).unwrap_or(now);
            let last = r.last_seen.or(r.first_seen).unwrap_or(now).max(first);
            for (kind, value, score) in &r.indicators {
                let aggs = &mut batch.aggs;
                let slot = *batch
                    .slots
                    .entry((code_of(*kind), value.as_str()))
                    .or_insert_with(|| {
                        aggs.push(Agg {
                            kind: code_of(*kind),
                            value: value.as_str(),
                            first,
                            last,
                            score: *score,
                            id: None,
                            stamp: 0,
                            fresh: false,
                            threat: None,
                        });
                        aggs.len() - 1
                    });
                let agg = &mut batch.aggs[slot];
                agg.first = agg.first.min(first);
                agg.last = agg.last.max(last);
                agg.score = agg.score.max(*score);
                if r.threat_type.is_some() {
                    agg.threat = r.threat_type.as_deref();
                }
                if unique {
                    batch.obs.push((slot, batch.records.len()));
                }
            }
            if unique {
                batch.records.push(r);
                batch.record_obs.push(start..batch.obs.len());
            }
        }
        batch
    }

    /// Gives every indicator of the batch its version stamp, from the first one reserved.
    fn set_stamps(&mut self, first: i64) {
        for (n, agg) in self.aggs.iter_mut().enumerate() {
            agg.stamp = first + STAMPS_PER_VERSION * n as i64;
        }
    }

    /// `(id, stamp)` of every indicator that existed before this batch and gained an
    /// observation in it (a new source is a new version), from the observations' inserts.
    fn newly_observed(&self, indicator_ids: &[i64]) -> Vec<(i64, i64)> {
        let by_id: HashMap<i64, &Agg<'_>> = self
            .aggs
            .iter()
            .filter(|a| !a.fresh)
            .filter_map(|a| Some((a.id?, a)))
            .collect();
        let mut out: Vec<(i64, i64)> = indicator_ids
            .iter()
            .filter_map(|id| by_id.get(id).map(|a| (*id, a.stamp)))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The smallest stored id among the indicators record `n` names (ids must be filled in).
    fn anchor(&self, n: usize) -> i64 {
        self.obs[self.record_obs[n].clone()]
            .iter()
            .filter_map(|(slot, _)| self.aggs[*slot].id)
            .min()
            .unwrap_or(0)
    }

    /// Every record as a row for the upsert, which lets the database assign ids (PostgreSQL).
    fn record_rows(&self) -> Vec<RecordRow<'a>> {
        self.records
            .iter()
            .enumerate()
            .map(|(n, r)| RecordRow {
                anchor: self.anchor(n),
                record: r,
            })
            .collect()
    }

    /// `(indicator id, record id)` of every observation, given the records' ids by position.
    fn observation_json(&self, record_ids: &[i64]) -> Result<String, StoreError> {
        let rows: Vec<(i64, i64)> = self
            .obs
            .iter()
            .filter_map(|(slot, n)| {
                let record = *record_ids.get(*n)?;
                Some((self.aggs[*slot].id?, record)).filter(|_| record > 0)
            })
            .collect();
        to_json(&rows)
    }

    /// Every indicator the batch touched, with its row id (the kinds came in as `IocKind`s).
    fn touched(&self) -> Vec<(i64, IocKind, String)> {
        self.aggs
            .iter()
            .filter_map(|a| Some((a.id?, kind_of(a.kind).ok()?, a.value.to_owned())))
            .collect()
    }

    /// PostgreSQL: upserts on the unique keys, which stay safe when several replicas ingest at
    /// once.
    async fn store_postgres(
        &mut self,
        pool: &sqlx::PgPool,
    ) -> Result<(IntelIngestCounts, Vec<(i64, IocKind, String)>), StoreError> {
        let mut tx = pool.begin().await?;
        // The clock first: every ingest takes it in the same order, so it adds no deadlock.
        let clock = ClockReservation::new(self.aggs.len());
        let last: i64 = sqlx::query_scalar(RESERVE_STAMPS_SQL)
            .bind(clock.span)
            .bind(clock.now_us)
            .fetch_one(&mut *tx)
            .await?;
        self.set_stamps(clock.first(last));
        let indicator_rows: Vec<_> = self
            .aggs
            .iter()
            .map(|a| {
                (
                    a.kind,
                    a.value,
                    a.first,
                    a.last,
                    self.now,
                    self.expires,
                    a.score,
                    a.stamp,
                    a.threat,
                )
            })
            .collect();
        // Rows with ids above the largest before this statement are new. (A concurrent ingest
        // can interleave identity values; the counts are informational.)
        let before: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM intel_indicators")
            .fetch_one(&mut *tx)
            .await?;
        let returned = sqlx::query(AssertSqlSafe(indicator_upsert_sql(&PG_ROWS)))
            .bind(to_json(&indicator_rows)?)
            .bind(before)
            .fetch_all(&mut *tx)
            .await?;
        let mut counts = IntelIngestCounts::default();
        for row in &returned {
            let id: i64 = row.try_get("id")?;
            let kind: i64 = row.try_get("kind")?;
            let value: String = row.try_get("value")?;
            let inserted: bool = row.try_get("inserted")?;
            if inserted {
                counts.new_indicators += 1;
            } else {
                counts.updated_indicators += 1;
            }
            if let Some(&slot) = self.slots.get(&(kind, value.as_str())) {
                self.aggs[slot].id = Some(id);
                self.aggs[slot].fresh = inserted;
            }
        }
        let rows = self.record_rows();
        let stored = sqlx::query(AssertSqlSafe(record_upsert_sql(&PG_ROWS)))
            .bind(to_json(&rows)?)
            .bind(self.feed_id)
            .bind(self.now)
            .fetch_all(&mut *tx)
            .await?;
        counts.records = stored.len() as u64;
        let mut by_hash: HashMap<String, i64> = HashMap::with_capacity(stored.len());
        for row in &stored {
            by_hash.insert(row.try_get("hash")?, row.try_get("id")?);
        }
        let record_ids: Vec<i64> = self
            .records
            .iter()
            .map(|r| by_hash.get(&r.hash).copied().unwrap_or(0))
            .collect();
        let observed: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(observation_sql(&PG_ROWS)))
            .bind(self.observation_json(&record_ids)?)
            .fetch_all(&mut *tx)
            .await?;
        counts.new_observations = observed.len() as u64;
        let versioned = self.newly_observed(&observed);
        if !versioned.is_empty() {
            sqlx::query(
                "UPDATE intel_indicators i SET version = (u.value ->> 1)::bigint \
                 FROM json_array_elements($1::json) AS u(value) \
                 WHERE i.id = (u.value ->> 0)::bigint AND i.version <> (u.value ->> 1)::bigint",
            )
            .bind(to_json(&versioned)?)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok((counts, self.touched()))
    }
}

/// Gives indicators stored before migration 0005 their key (SQLite cannot compute SHA-256),
/// in batches, each in its own transaction; returns how many it keyed.
pub(crate) async fn sqlite_backfill_indicator_keys(
    pool: &sqlx::SqlitePool,
) -> Result<u64, StoreError> {
    let mut done = 0u64;
    // In id order from where the last batch ended: `key` has no index (migration 0007), so
    // each batch reads on from there instead of from the start.
    let mut after = 0i64;
    loop {
        let rows = sqlx::query(
            "SELECT id, kind, value FROM intel_indicators WHERE id > $1 AND key IS NULL ORDER BY id LIMIT 50000",
        )
        .bind(after)
        .fetch_all(pool)
        .await?;
        if rows.is_empty() {
            return Ok(done);
        }
        let mut keys = Vec::with_capacity(rows.len());
        for row in &rows {
            let (id, kind, value): (i64, i64, String) = (
                row.try_get("id")?,
                row.try_get("kind")?,
                row.try_get("value")?,
            );
            keys.push((id, indicator_key(kind, &value)));
            after = after.max(id);
        }
        let keyed = keys.len() as u64;
        let keys = to_json(&keys)?;
        let mut tx = pool.begin().await?;
        sqlx::query(
            "UPDATE intel_indicators SET key = (u.value ->> 1) \
             FROM (SELECT value FROM jsonb_each($1)) AS u WHERE intel_indicators.id = (u.value ->> 0)",
        )
        .bind(keys.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT OR IGNORE INTO intel_indicator_keys (key, id) \
             SELECT u.value ->> 1, u.value ->> 0 FROM jsonb_each($1) AS u",
        )
        .bind(keys.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        done += keyed;
    }
}

impl Store {
    /// Stores one batch of records of one feed: indicators upserted (first/last seen widened,
    /// expiry pushed to `now + ttl`, base score raised), records upserted, observations linked.
    /// Returns the counts and, for the lookup index, `(id, kind, value)` of every indicator
    /// touched.
    pub async fn intel_ingest(
        &self,
        feed_id: i64,
        ttl_secs: i64,
        now: i64,
        records: &[IntelRecordIn],
    ) -> Result<(IntelIngestCounts, Vec<(i64, IocKind, String)>), StoreError> {
        let mut batch = Batch::new(feed_id, now, now.saturating_add(ttl_secs), records);
        match &self.db {
            Db::Sqlite(_) => {
                let writer = self.intel_writer.as_deref().ok_or(StoreError::Closed)?;
                writer.transaction(|tx| batch.store_sqlite(tx))
            }
            Db::Postgres(pool) => batch.store_postgres(pool).await,
        }
    }
}
