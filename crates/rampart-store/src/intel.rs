//! Threat-intelligence storage: feeds, indicators, verbatim records and the observations that
//! link them.
//!
//! Ingestion is batch-shaped for speed: one batch is one transaction of a few statements, each
//! taking the whole batch as a single JSON parameter that the database unpacks (`jsonb_each` in
//! SQLite, `json_array_elements` in PostgreSQL). That keeps round trips and parameter binding
//! out of the per-indicator cost. PostgreSQL upserts indicators and records on their unique
//! keys; SQLite's single writer looks them up by small keys, updates what exists and inserts the
//! rest with ids it hands out (`Batch::store_sqlite`), because random-key unique indexes were
//! what bounded its ingestion (docs/performance.md).
//!
//! SQL texts built with `format!` here are assembled from constants only (never from input),
//! hence `AssertSqlSafe`.
//!
//! Times are Unix seconds. Kinds are `IocKind`s at the store's boundary and their stable codes
//! in its tables (`kind_of`, `code_of`).

use rampart_intel::IocKind;
use rampart_intel::rows::{
    ExportCursor, IntelAllowlist, IntelDecayRow, IntelExportRow, IntelFeed, IntelIndexRow,
    IntelIndicator, IntelIngestCounts, IntelObservation, IntelRecordIn, NewIntelFeed,
    STAMPS_PER_VERSION,
};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, Row};

use crate::{Db, Store, StoreError, on_pool};

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

const FEED_COLUMNS: &str = "id, name, format, url, interval_secs, reliability, tlp, terms, ttl_secs, enabled, \
     etag, last_modified, last_attempt, last_success, last_error, failures, last_records, \
     last_indicators, last_problems, created_at";

/// An indicator's index columns, as the live-indicator scan and the export pages select them.
fn index_row<R: Row>(r: &R) -> Result<IntelIndexRow, sqlx::Error>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database>,
{
    Ok(IntelIndexRow {
        id: r.try_get("id")?,
        kind: kind_of(r.try_get("kind")?)?,
        value: r.try_get("value")?,
        base_score: r.try_get("base_score")?,
        last_seen: r.try_get("last_seen")?,
        sightings: r.try_get("sightings")?,
        false_positives: r.try_get("false_positives")?,
        last_sighting: r.try_get("last_sighting")?,
        threat_type: r.try_get("threat_type")?,
    })
}

fn feed_from_row<R: Row>(row: &R) -> Result<IntelFeed, sqlx::Error>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database>,
{
    Ok(IntelFeed {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        format: row.try_get("format")?,
        url: row.try_get("url")?,
        interval_secs: row.try_get("interval_secs")?,
        reliability: row.try_get("reliability")?,
        tlp: row.try_get("tlp")?,
        terms: row.try_get("terms")?,
        ttl_secs: row.try_get("ttl_secs")?,
        enabled: row.try_get("enabled")?,
        etag: row.try_get("etag")?,
        last_modified: row.try_get("last_modified")?,
        last_attempt: row.try_get("last_attempt")?,
        last_success: row.try_get("last_success")?,
        last_error: row.try_get("last_error")?,
        failures: row.try_get("failures")?,
        last_records: row.try_get("last_records")?,
        last_indicators: row.try_get("last_indicators")?,
        last_problems: row.try_get("last_problems")?,
        created_at: row.try_get("created_at")?,
    })
}

fn json_list(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::corrupt("intel record list", e))
}

/// The SQL that unpacks a JSON array of arrays, per backend: element `n` of each row, as text
/// or as an integer (SQLite's `->>` already yields integers; PostgreSQL's yields text).
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

const SQLITE_ROWS: JsonRows = JsonRows {
    from: "jsonb_each($1) AS j",
    int_cast: "",
};

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

/// The record columns, then the SELECT list that fills them from `RecordRow`'s JSON (with the
/// row id in front when `with_id`). The feed and the fetch time are the same for the whole
/// batch: parameters `$2` and `$3`, not JSON (every `->> n` walks the row from its start).
fn record_columns(rows: &JsonRows, with_id: bool) -> (String, String) {
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
    if with_id {
        names.push("id");
        values.push(rows.col(0, "int"));
        pos = 1;
    }
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

/// Inserts records that are known to be new (SQLite's writer, ids given).
fn record_insert_sql(rows: &JsonRows) -> String {
    let (names, values) = record_columns(rows, true);
    format!(
        "INSERT INTO intel_records ({names}) SELECT {values} FROM {}",
        rows.from
    )
}

/// Inserts records or refreshes the ones already stored, returning every row's id.
fn record_upsert_sql(rows: &JsonRows) -> String {
    let (names, values) = record_columns(rows, false);
    format!(
        "INSERT INTO intel_records ({names}) SELECT {values} FROM {} WHERE true \
         ON CONFLICT (anchor, hash) DO UPDATE SET last_fetched = excluded.last_fetched RETURNING id, hash",
        rows.from
    )
}

/// One record as a row of the batch's JSON array, in `record_sql`'s column order.
struct RecordRow<'a> {
    /// The row id, when the writer hands ids out (SQLite).
    id: Option<i64>,
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
        let mut t = serializer.serialize_tuple(3 + used + usize::from(self.id.is_some()))?;
        if let Some(id) = self.id {
            t.serialize_element(&id)?;
        }
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
    slots: HashMap<(i64, &'a str), usize>,
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

/// Reserves version stamps, `STAMPS_PER_VERSION` apart, from the one clock: bind the span
/// (`ClockReservation::span`) and the wall clock in microseconds; returns the last stamp
/// reserved. The clock row stays locked until the transaction ends (PostgreSQL's row lock,
/// SQLite's write lock), so stamps are handed out in commit order across every writer and
/// replica: a reader never sees a stamp while a smaller one is still uncommitted.
const RESERVE_STAMPS_SQL: &str = "UPDATE intel_clock SET last = CASE WHEN last + $1 > $2 THEN last + $1 ELSE $2 END \
     WHERE id = 1 RETURNING last";

/// Moves the rules' generation (`intel_rules`), in the transaction that changed them.
const BUMP_RULES_SQL: &str = "UPDATE intel_rules SET generation = generation + 1 WHERE id = 1";

/// The arguments of one `RESERVE_STAMPS_SQL` for `count` versions.
struct ClockReservation {
    span: i64,
    now_us: i64,
}

impl ClockReservation {
    fn new(count: usize) -> ClockReservation {
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
    fn first(&self, last: i64) -> i64 {
        last - self.span + STAMPS_PER_VERSION
    }
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

fn to_json<T: Serialize + ?Sized>(rows: &T) -> Result<String, StoreError> {
    serde_json::to_string(rows).map_err(|e| StoreError::corrupt("intel batch", e))
}

impl<'a> Batch<'a> {
    fn new(feed_id: i64, now: i64, expires: i64, records: &'a [IntelRecordIn]) -> Batch<'a> {
        let mut batch = Batch {
            feed_id,
            now,
            expires,
            slots: HashMap::new(),
            aggs: Vec::new(),
            records: Vec::with_capacity(records.len()),
            record_obs: Vec::with_capacity(records.len()),
            obs: Vec::new(),
        };
        // A feed may repeat a row verbatim: one record row per digest (the same text names
        // the same indicators, so its observations are the first copy's).
        let mut seen_records = HashSet::with_capacity(records.len());
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
                id: None,
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

    /// SQLite, through the single intel writer: existing indicators and records are looked up
    /// by their small keys, updated in place, and the rest inserted with ids handed out here,
    /// so nothing but the lookups' hits comes back through the driver. `BEGIN IMMEDIATE` takes
    /// the write lock first, so no other writer can slip in between a lookup and an insert.
    async fn store_sqlite(
        &mut self,
        pool: &sqlx::SqlitePool,
    ) -> Result<(IntelIngestCounts, Vec<(i64, IocKind, String)>), StoreError> {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut counts = IntelIngestCounts::default();
        let clock = ClockReservation::new(self.aggs.len());
        let last: i64 = sqlx::query_scalar(RESERVE_STAMPS_SQL)
            .bind(clock.span)
            .bind(clock.now_us)
            .fetch_one(&mut *tx)
            .await?;
        self.set_stamps(clock.first(last));

        let probe: Vec<(i64, i64, &str)> = self
            .aggs
            .iter()
            .map(|a| (indicator_key(a.kind, a.value), a.kind, a.value))
            .collect();
        let found = sqlx::query(
            "SELECT CAST(j.key AS INTEGER) AS pos, i.id FROM jsonb_each($1) AS j \
             JOIN intel_indicators AS i ON i.key = (j.value ->> 0) AND i.kind = (j.value ->> 1) AND i.value = (j.value ->> 2)",
        )
        .bind(to_json(&probe)?)
        .fetch_all(&mut *tx)
        .await?;
        let mut updates = Vec::with_capacity(found.len());
        for (pos, id) in probe_hits(&found, self.aggs.len())? {
            let agg = &mut self.aggs[pos];
            agg.id = Some(id);
            updates.push((id, agg.first, agg.last, agg.score, agg.stamp, agg.threat));
        }
        if !updates.is_empty() {
            sqlx::query(
                "UPDATE intel_indicators SET \
                   version = CASE WHEN first_seen > (u.value ->> 1) OR last_seen < (u.value ->> 2) \
                     OR base_score < (u.value ->> 3) \
                     OR ((u.value ->> 5) IS NOT NULL AND threat_type IS NOT (u.value ->> 5)) \
                     THEN (u.value ->> 4) ELSE version END, \
                   threat_type = COALESCE(u.value ->> 5, threat_type), \
                   first_seen = min(first_seen, u.value ->> 1), \
                   last_seen = max(last_seen, u.value ->> 2), \
                   last_reported = $2, \
                   expires_at = max(expires_at, $3), \
                   base_score = max(base_score, u.value ->> 3) \
                 FROM (SELECT value FROM jsonb_each($1)) AS u WHERE intel_indicators.id = (u.value ->> 0)",
            )
            .bind(to_json(&updates)?)
            .bind(self.now)
            .bind(self.expires)
            .execute(&mut *tx)
            .await?;
        }
        counts.updated_indicators = updates.len() as u64;
        let mut next = sqlite_next_id(&mut tx, "intel_indicators").await?;
        let first_new = next;
        let mut inserts = Vec::with_capacity(self.aggs.len() - updates.len());
        for (agg, key) in self.aggs.iter_mut().zip(probe.iter().map(|p| p.0)) {
            if agg.id.is_none() {
                agg.id = Some(next);
                agg.fresh = true;
                inserts.push((
                    next, key, agg.kind, agg.value, agg.first, agg.last, agg.score, agg.stamp,
                    agg.threat,
                ));
                next += 1;
            }
        }
        if !inserts.is_empty() {
            sqlx::query(
                "INSERT INTO intel_indicators (id, key, kind, value, first_seen, last_seen, first_reported, last_reported, expires_at, base_score, version, threat_type) \
                 SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, j.value ->> 5, $2, $2, $3, j.value ->> 6, j.value ->> 7, j.value ->> 8 \
                 FROM jsonb_each($1) AS j",
            )
            .bind(to_json(&inserts)?)
            .bind(self.now)
            .bind(self.expires)
            .execute(&mut *tx)
            .await?;
        }
        counts.new_indicators = inserts.len() as u64;

        // A record anchored to an indicator new in this batch cannot be stored yet: no
        // record ever had that id as its anchor (ids above the high-water mark were never
        // handed out). Only the others are looked up.
        let anchors: Vec<i64> = (0..self.records.len()).map(|n| self.anchor(n)).collect();
        let probe: Vec<(usize, i64, &str)> = anchors
            .iter()
            .enumerate()
            .filter(|(_, anchor)| **anchor < first_new)
            .map(|(n, anchor)| (n, *anchor, self.records[n].hash.as_str()))
            .collect();
        let mut ids = vec![0i64; self.records.len()];
        let mut refreshed = Vec::new();
        if !probe.is_empty() {
            let found = sqlx::query(
                "SELECT (j.value ->> 0) AS pos, r.id FROM jsonb_each($1) AS j \
                 JOIN intel_records AS r ON r.anchor = (j.value ->> 1) AND r.hash = (j.value ->> 2)",
            )
            .bind(to_json(&probe)?)
            .fetch_all(&mut *tx)
            .await?;
            for (pos, id) in probe_hits(&found, ids.len())? {
                ids[pos] = id;
                refreshed.push(id);
            }
        }
        if !refreshed.is_empty() {
            sqlx::query("UPDATE intel_records SET last_fetched = $2 WHERE id IN (SELECT value FROM jsonb_each($1))")
                .bind(to_json(&refreshed)?)
                .bind(self.now)
                .execute(&mut *tx)
                .await?;
        }
        let mut next = sqlite_next_id(&mut tx, "intel_records").await?;
        let mut fresh = Vec::with_capacity(self.records.len() - refreshed.len());
        for (n, id) in ids.iter_mut().enumerate() {
            if *id == 0 {
                *id = next;
                next += 1;
                fresh.push(RecordRow {
                    id: Some(*id),
                    anchor: anchors[n],
                    record: self.records[n],
                });
            }
        }
        if !fresh.is_empty() {
            sqlx::query(AssertSqlSafe(record_insert_sql(&SQLITE_ROWS)))
                .bind(to_json(&fresh)?)
                .bind(self.feed_id)
                .bind(self.now)
                .execute(&mut *tx)
                .await?;
        }
        counts.records = self.records.len() as u64;
        let observed: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(observation_sql(&SQLITE_ROWS)))
            .bind(self.observation_json(&ids)?)
            .fetch_all(&mut *tx)
            .await?;
        counts.new_observations = observed.len() as u64;
        let versioned = self.newly_observed(&observed);
        if !versioned.is_empty() {
            sqlx::query(
                "UPDATE intel_indicators SET version = (u.value ->> 1) \
                 FROM (SELECT value FROM jsonb_each($1)) AS u \
                 WHERE intel_indicators.id = (u.value ->> 0) AND intel_indicators.version <> (u.value ->> 1)",
            )
            .bind(to_json(&versioned)?)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok((counts, self.touched()))
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
    loop {
        let rows = sqlx::query(
            "SELECT id, kind, value FROM intel_indicators WHERE key IS NULL LIMIT 50000",
        )
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
        }
        sqlx::query(
            "UPDATE intel_indicators SET key = (u.value ->> 1) \
             FROM (SELECT value FROM jsonb_each($1)) AS u WHERE intel_indicators.id = (u.value ->> 0)",
        )
        .bind(to_json(&keys)?)
        .execute(pool)
        .await?;
        done += keys.len() as u64;
    }
}

/// The `(pos, id)` rows of a batch lookup: which batch position was found, as which row.
fn probe_hits(
    rows: &[sqlx::sqlite::SqliteRow],
    len: usize,
) -> Result<Vec<(usize, i64)>, StoreError> {
    rows.iter()
        .map(|row| {
            let pos: i64 = row.try_get("pos")?;
            let id: i64 = row.try_get("id")?;
            let pos = usize::try_from(pos)
                .ok()
                .filter(|p| *p < len)
                .ok_or_else(|| StoreError::corrupt("intel batch", "lookup row out of range"))?;
            Ok((pos, id))
        })
        .collect()
}

/// The next id an AUTOINCREMENT table hands out: above its high-water mark, so ids of deleted
/// rows never come back.
async fn sqlite_next_id(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    table: &'static str,
) -> Result<i64, StoreError> {
    let sql = format!(
        "SELECT max(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = '{table}'), 0), \
                    COALESCE((SELECT MAX(id) FROM {table}), 0)) + 1"
    );
    Ok(sqlx::query_scalar(AssertSqlSafe(sql))
        .fetch_one(&mut **tx)
        .await?)
}

impl Store {
    /// Creates a feed, or updates its definition (health kept) if the name exists.
    pub async fn intel_put_feed(
        &self,
        feed: &NewIntelFeed,
        now: i64,
    ) -> Result<IntelFeed, StoreError> {
        let sql = format!(
            "INSERT INTO intel_feeds (name, format, url, interval_secs, reliability, tlp, terms, ttl_secs, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (name) DO UPDATE SET format = excluded.format, url = excluded.url, \
             interval_secs = excluded.interval_secs, reliability = excluded.reliability, tlp = excluded.tlp, \
             terms = excluded.terms, ttl_secs = excluded.ttl_secs RETURNING {FEED_COLUMNS}"
        );
        on_pool!(&self.db, p => {
            let row = sqlx::query(AssertSqlSafe(sql.clone()))
                .bind(&feed.name)
                .bind(&feed.format)
                .bind(&feed.url)
                .bind(feed.interval_secs)
                .bind(feed.reliability)
                .bind(&feed.tlp)
                .bind(&feed.terms)
                .bind(feed.ttl_secs)
                .bind(now)
                .fetch_one(p)
                .await?;
            Ok(feed_from_row(&row)?)
        })
    }

    /// A feed by name.
    pub async fn intel_feed(&self, name: &str) -> Result<Option<IntelFeed>, StoreError> {
        let sql = format!("SELECT {FEED_COLUMNS} FROM intel_feeds WHERE name = $1");
        on_pool!(&self.db, p => {
            let row = sqlx::query(AssertSqlSafe(sql.clone())).bind(name).fetch_optional(p).await?;
            row.map(|r| feed_from_row(&r)).transpose().map_err(StoreError::from)
        })
    }

    /// Every feed, by name.
    pub async fn intel_feeds(&self) -> Result<Vec<IntelFeed>, StoreError> {
        let sql = format!("SELECT {FEED_COLUMNS} FROM intel_feeds ORDER BY name");
        on_pool!(&self.db, p => {
            let rows = sqlx::query(AssertSqlSafe(sql.clone())).fetch_all(p).await?;
            rows.iter().map(|r| feed_from_row(r).map_err(StoreError::from)).collect()
        })
    }

    /// Removes a feed definition. Its records and observations go with it; indicators that no
    /// other feed reported stay until they expire (the audit trail of what was blocked).
    pub async fn intel_delete_feed(&self, name: &str) -> Result<bool, StoreError> {
        on_pool!(&self.db, p => {
            let done = sqlx::query("DELETE FROM intel_feeds WHERE name = $1").bind(name).execute(p).await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Records the outcome of a fetch attempt. `ok` with counts on success (`None` counts for
    /// "not modified"), or the error text.
    #[allow(clippy::too_many_arguments)]
    pub async fn intel_feed_attempt(
        &self,
        feed_id: i64,
        now: i64,
        result: Result<Option<(i64, i64, i64)>, &str>,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Result<(), StoreError> {
        on_pool!(&self.db, p => {
            match result {
                Ok(counts) => {
                    let (records, indicators, problems) = match counts {
                        Some((r, i, pr)) => (Some(r), Some(i), Some(pr)),
                        None => (None, None, None),
                    };
                    sqlx::query(
                        "UPDATE intel_feeds SET last_attempt = $2, last_success = $2, last_error = NULL, failures = 0, \
                         etag = COALESCE($3, etag), last_modified = COALESCE($4, last_modified), \
                         last_records = COALESCE($5, last_records), last_indicators = COALESCE($6, last_indicators), \
                         last_problems = COALESCE($7, last_problems) WHERE id = $1",
                    )
                    .bind(feed_id)
                    .bind(now)
                    .bind(etag)
                    .bind(last_modified)
                    .bind(records)
                    .bind(indicators)
                    .bind(problems)
                    .execute(p)
                    .await?;
                }
                Err(error) => {
                    sqlx::query(
                        "UPDATE intel_feeds SET last_attempt = $2, last_error = $3, failures = failures + 1 WHERE id = $1",
                    )
                    .bind(feed_id)
                    .bind(now)
                    .bind(error)
                    .execute(p)
                    .await?;
                }
            }
            Ok(())
        })
    }

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
            Db::Sqlite(main) => {
                let pool = self.intel_writer.as_ref().unwrap_or(main);
                batch.store_sqlite(pool).await
            }
            Db::Postgres(pool) => batch.store_postgres(pool).await,
        }
    }

    /// An indicator by kind and canonical value.
    pub async fn intel_indicator(
        &self,
        kind: IocKind,
        value: &str,
    ) -> Result<Option<IntelIndicator>, StoreError> {
        let kind = code_of(kind);
        // SQLite finds it through the 64-bit key (migration 0005), PostgreSQL through its
        // unique index on (kind, value).
        let sqlite = matches!(self.db, Db::Sqlite(_));
        let sql = format!(
            "SELECT id, kind, value, first_seen, last_seen, first_reported, last_reported, expires_at, base_score, \
             sightings, false_positives, last_sighting, threat_type, version FROM intel_indicators WHERE kind = $1 AND value = $2{}",
            if sqlite { " AND key = $3" } else { "" }
        );
        on_pool!(&self.db, p => {
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(kind).bind(value);
            if sqlite {
                query = query.bind(indicator_key(kind, value));
            }
            let row = query.fetch_optional(p).await?;
            let Some(row) = row else { return Ok(None) };
            Ok(Some(IntelIndicator {
                id: row.try_get("id")?,
                kind: kind_of(row.try_get("kind")?)?,
                value: row.try_get("value")?,
                first_seen: row.try_get("first_seen")?,
                last_seen: row.try_get("last_seen")?,
                first_reported: row.try_get("first_reported")?,
                last_reported: row.try_get("last_reported")?,
                expires_at: row.try_get("expires_at")?,
                base_score: row.try_get("base_score")?,
                sightings: row.try_get("sightings")?,
                false_positives: row.try_get("false_positives")?,
                last_sighting: row.try_get("last_sighting")?,
                threat_type: row.try_get("threat_type")?,
                version: row.try_get("version")?,
            }))
        })
    }

    /// Every observation of an indicator, newest fetch first.
    pub async fn intel_observations(
        &self,
        indicator_id: i64,
    ) -> Result<Vec<IntelObservation>, StoreError> {
        on_pool!(&self.db, p => {
            let rows = sqlx::query(
                "SELECT f.name, f.reliability, f.tlp, r.hash, r.source_ref, r.first_seen, r.last_seen, r.threat_type, \
                 r.malware, r.tags, r.attack, r.confidence, r.reporter, r.reference, r.status, r.description, r.raw, \
                 r.first_fetched, r.last_fetched \
                 FROM intel_observations o JOIN intel_records r ON r.id = o.record_id \
                 JOIN intel_feeds f ON f.id = r.feed_id WHERE o.indicator_id = $1 \
                 ORDER BY r.last_fetched DESC, f.name, r.hash",
            )
            .bind(indicator_id)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let malware: String = row.try_get("malware")?;
                let tags: String = row.try_get("tags")?;
                let attack: String = row.try_get("attack")?;
                out.push(IntelObservation {
                    feed: row.try_get("name")?,
                    reliability: row.try_get("reliability")?,
                    tlp: row.try_get("tlp")?,
                    record: row.try_get("hash")?,
                    source_ref: row.try_get("source_ref")?,
                    first_seen: row.try_get("first_seen")?,
                    last_seen: row.try_get("last_seen")?,
                    threat_type: row.try_get("threat_type")?,
                    malware: json_list(&malware)?,
                    tags: json_list(&tags)?,
                    attack: json_list(&attack)?,
                    confidence: row.try_get("confidence")?,
                    reporter: row.try_get("reporter")?,
                    reference: row.try_get("reference")?,
                    status: row.try_get("status")?,
                    description: row.try_get("description")?,
                    raw: row.try_get("raw")?,
                    first_fetched: row.try_get("first_fetched")?,
                    last_fetched: row.try_get("last_fetched")?,
                });
            }
            Ok(out)
        })
    }

    /// Indicators named by the same records as `indicator_id` (a MalwareBazaar row's other
    /// hashes, a STIX OR pattern's other values), at most `limit`.
    pub async fn intel_related_by_record(
        &self,
        indicator_id: i64,
        limit: i64,
    ) -> Result<Vec<(IocKind, String)>, StoreError> {
        on_pool!(&self.db, p => {
            let rows = sqlx::query(
                "SELECT DISTINCT i.kind, i.value FROM intel_observations o \
                 JOIN intel_observations o2 ON o2.record_id = o.record_id AND o2.indicator_id <> o.indicator_id \
                 JOIN intel_indicators i ON i.id = o2.indicator_id \
                 WHERE o.indicator_id = $1 ORDER BY i.kind, i.value LIMIT $2",
            )
            .bind(indicator_id)
            .bind(limit)
            .fetch_all(p)
            .await?;
            rows.iter().map(|r| Ok((kind_of(r.try_get("kind")?)?, r.try_get("value")?))).collect()
        })
    }

    /// How many indicators carry a malware family, and up to `limit` of them (for "same family"
    /// correlation with a cap on over-correlating values).
    pub async fn intel_by_family(
        &self,
        family: &str,
        limit: i64,
    ) -> Result<(i64, Vec<(IocKind, String)>), StoreError> {
        on_pool!(&self.db, p => {
            let total: i64 = sqlx::query_scalar(
                "SELECT COUNT(DISTINCT o.indicator_id) FROM intel_records r \
                 JOIN intel_observations o ON o.record_id = r.id WHERE r.family = $1",
            )
            .bind(family)
            .fetch_one(p)
            .await?;
            let rows = sqlx::query(
                "SELECT DISTINCT i.kind, i.value FROM intel_records r JOIN intel_observations o ON o.record_id = r.id \
                 JOIN intel_indicators i ON i.id = o.indicator_id WHERE r.family = $1 ORDER BY i.kind, i.value LIMIT $2",
            )
            .bind(family)
            .bind(limit)
            .fetch_all(p)
            .await?;
            let list = rows.iter().map(|r| Ok((kind_of(r.try_get("kind")?)?, r.try_get("value")?))).collect::<Result<Vec<_>, sqlx::Error>>()?;
            Ok((total, list))
        })
    }

    /// Every live indicator (not expired at `now`), for rebuilding the lookup index, in id
    /// order, `batch` rows at a time through `each`.
    pub async fn intel_live_indicators(
        &self,
        now: i64,
        batch: i64,
        each: &mut (dyn FnMut(IntelIndexRow) + Send),
    ) -> Result<u64, StoreError> {
        let mut after = 0i64;
        let mut total = 0u64;
        loop {
            let rows = on_pool!(&self.db, p => {
                let rows = sqlx::query(
                    "SELECT id, kind, value, base_score, last_seen, sightings, false_positives, last_sighting, threat_type FROM intel_indicators \
                     WHERE id > $1 AND expires_at > $2 ORDER BY id LIMIT $3",
                )
                .bind(after)
                .bind(now)
                .bind(batch)
                .fetch_all(p)
                .await?;
                rows.iter()
                    .map(index_row)
                    .collect::<Result<Vec<_>, sqlx::Error>>()?
            });
            let n = rows.len();
            for row in rows {
                after = row.id;
                total += 1;
                each(row);
            }
            if (n as i64) < batch {
                return Ok(total);
            }
        }
    }

    /// Every live indicator with the context exports need, in id order, `batch` at a time.
    pub async fn intel_export_rows(
        &self,
        now: i64,
        batch: i64,
        each: &mut (dyn FnMut(IntelExportRow) + Send),
    ) -> Result<u64, StoreError> {
        let mut after = 0i64;
        let mut total = 0u64;
        loop {
            let rows = self
                .intel_export_page(now, ExportCursor::AfterId(after), batch)
                .await?;
            let n = rows.len();
            for row in rows {
                after = row.indicator.id;
                total += 1;
                each(row);
            }
            if (n as i64) < batch {
                return Ok(total);
            }
        }
    }

    /// One page of live indicators from `cursor` in its order, at most `limit`.
    pub async fn intel_export_page(
        &self,
        now: i64,
        cursor: ExportCursor,
        limit: i64,
    ) -> Result<Vec<IntelExportRow>, StoreError> {
        let (filter, order, after) = match cursor {
            ExportCursor::AfterId(id) => ("i.id > $1", "i.id", id),
            ExportCursor::AfterStamp(stamp) => (
                "i.version > $1",
                "i.version",
                stamp.saturating_sub(STAMPS_PER_VERSION),
            ),
        };
        // Every record's technique ids, as one JSON array (each dialect has its own JSON).
        let attack = match self.backend() {
            crate::Backend::Sqlite => {
                "(SELECT json_group_array(DISTINCT j.value) FROM intel_observations o \
                 JOIN intel_records r ON r.id = o.record_id, json_each(r.attack) j WHERE o.indicator_id = i.id)"
            }
            crate::Backend::Postgres => {
                "(SELECT COALESCE(json_agg(DISTINCT j), '[]')::text FROM intel_observations o \
                 JOIN intel_records r ON r.id = o.record_id, json_array_elements_text(r.attack::json) j WHERE o.indicator_id = i.id)"
            }
        };
        // Every feed naming it, as a JSON array of [name, tlp] pairs.
        let feeds = match self.backend() {
            crate::Backend::Sqlite => {
                "(SELECT json_group_array(json_array(f.name, f.tlp)) FROM (SELECT DISTINCT r.feed_id FROM intel_observations o \
                 JOIN intel_records r ON r.id = o.record_id WHERE o.indicator_id = i.id) d JOIN intel_feeds f ON f.id = d.feed_id)"
            }
            crate::Backend::Postgres => {
                "(SELECT COALESCE(json_agg(json_build_array(f.name, f.tlp)), '[]')::text FROM (SELECT DISTINCT r.feed_id FROM intel_observations o \
                 JOIN intel_records r ON r.id = o.record_id WHERE o.indicator_id = i.id) d JOIN intel_feeds f ON f.id = d.feed_id)"
            }
        };
        let sql = format!(
            "SELECT i.id, i.kind, i.value, i.base_score, i.first_seen, i.last_seen, i.sightings, i.false_positives, i.last_sighting, i.first_reported, i.version, \
             i.threat_type, \
             (SELECT r.family FROM intel_observations o JOIN intel_records r ON r.id = o.record_id \
              WHERE o.indicator_id = i.id AND r.family IS NOT NULL ORDER BY r.last_fetched DESC, r.id DESC LIMIT 1) AS family, \
             {attack} AS attack, {feeds} AS feeds \
             FROM intel_indicators i WHERE {filter} AND i.expires_at > $2 ORDER BY {order} LIMIT $3"
        );
        Ok(on_pool!(&self.db, p => {
            let rows = sqlx::query(AssertSqlSafe(sql.clone()))
            .bind(after)
            .bind(now)
            .bind(limit)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(IntelExportRow {
                            indicator: index_row(r)?,
                            first_seen: r.try_get("first_seen")?,
                            family: r.try_get("family")?,
                            attack: {
                                let text: Option<String> = r.try_get("attack")?;
                                let mut ids: Vec<String> = text
                                    .as_deref()
                                    .and_then(|t| serde_json::from_str(t).ok())
                                    .unwrap_or_default();
                                ids.sort();
                                ids
                            },
                            feeds: {
                                let text: Option<String> = r.try_get("feeds")?;
                                let mut feeds: Vec<(String, String)> = text
                                    .as_deref()
                                    .and_then(|t| serde_json::from_str(t).ok())
                                    .unwrap_or_default();
                                feeds.sort();
                                feeds
                            },
                            first_reported: r.try_get("first_reported")?,
                            version: r.try_get("version")?,
                        })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        }))
    }

    /// The rules' generation: moved by every change to allowlists and decay models.
    pub async fn intel_rules_generation(&self) -> Result<i64, StoreError> {
        on_pool!(&self.db, p => {
            Ok(sqlx::query_scalar("SELECT generation FROM intel_rules WHERE id = 1")
                .fetch_one(p)
                .await?)
        })
    }

    /// The operators' decay models.
    pub async fn intel_decay_models(&self) -> Result<Vec<IntelDecayRow>, StoreError> {
        on_pool!(&self.db, p => {
            let rows = sqlx::query("SELECT scope, lifetime_days, speed FROM intel_decay_models ORDER BY scope")
                .fetch_all(p)
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(IntelDecayRow {
                        scope: r.try_get("scope")?,
                        lifetime_days: r.try_get("lifetime_days")?,
                        speed: r.try_get("speed")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(StoreError::from)
        })
    }

    /// Sets an operator's decay model for a scope (replacing one set before).
    pub async fn intel_put_decay_model(&self, row: &IntelDecayRow) -> Result<(), StoreError> {
        on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO intel_decay_models (scope, lifetime_days, speed) VALUES ($1, $2, $3) \
                 ON CONFLICT (scope) DO UPDATE SET lifetime_days = excluded.lifetime_days, speed = excluded.speed",
            )
            .bind(&row.scope)
            .bind(row.lifetime_days)
            .bind(row.speed)
            .execute(&mut *tx)
            .await?;
            sqlx::query(BUMP_RULES_SQL).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Removes an operator's decay model (the built-in one applies again); false if none.
    pub async fn intel_delete_decay_model(&self, scope: &str) -> Result<bool, StoreError> {
        on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            let done = sqlx::query("DELETE FROM intel_decay_models WHERE scope = $1").bind(scope).execute(&mut *tx).await?;
            sqlx::query(BUMP_RULES_SQL).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Creates or replaces an allowlist.
    pub async fn intel_put_allowlist(&self, list: &IntelAllowlist) -> Result<(), StoreError> {
        let entries = serde_json::to_string(&list.entries)
            .map_err(|e| StoreError::corrupt("allowlist entries", e))?;
        on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO intel_allowlists (name, match_type, entries, description, created_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (name) DO UPDATE SET match_type = excluded.match_type, entries = excluded.entries, \
                 description = excluded.description",
            )
            .bind(&list.name)
            .bind(&list.match_type)
            .bind(&entries)
            .bind(&list.description)
            .bind(list.created_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(BUMP_RULES_SQL).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Every allowlist, by name.
    pub async fn intel_allowlists(&self) -> Result<Vec<IntelAllowlist>, StoreError> {
        on_pool!(&self.db, p => {
            let rows = sqlx::query("SELECT name, match_type, entries, description, created_at FROM intel_allowlists ORDER BY name")
                .fetch_all(p)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let entries: String = r.try_get("entries")?;
                out.push(IntelAllowlist {
                    name: r.try_get("name")?,
                    match_type: r.try_get("match_type")?,
                    entries: json_list(&entries)?,
                    description: r.try_get("description")?,
                    created_at: r.try_get("created_at")?,
                });
            }
            Ok(out)
        })
    }

    /// Removes an allowlist. Returns whether it existed.
    pub async fn intel_delete_allowlist(&self, name: &str) -> Result<bool, StoreError> {
        on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            let done = sqlx::query("DELETE FROM intel_allowlists WHERE name = $1").bind(name).execute(&mut *tx).await?;
            sqlx::query(BUMP_RULES_SQL).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Records a sighting (`hit` or `false_positive`) of an indicator and updates its counters,
    /// in one transaction. Only a hit moves `last_sighting`, the time decay restarts from: a
    /// false positive must lower the score, never revive a decayed indicator (MISP's decay
    /// model restarts on sightings of type 0 only).
    pub async fn intel_add_sighting(
        &self,
        indicator_id: i64,
        false_positive: bool,
        source: &str,
        note: Option<&str>,
        at: i64,
    ) -> Result<(), StoreError> {
        // A sighting changes the score: a new version (TAXII pollers see it).
        let update = if false_positive {
            "UPDATE intel_indicators SET false_positives = false_positives + 1, version = $2 WHERE id = $1"
        } else {
            "UPDATE intel_indicators SET sightings = sightings + 1, version = $3, \
             last_sighting = CASE WHEN last_sighting IS NULL OR last_sighting < $2 THEN $2 ELSE last_sighting END WHERE id = $1"
        };
        let kind = if false_positive {
            "false_positive"
        } else {
            "hit"
        };
        on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            let clock = ClockReservation::new(1);
            let last: i64 = sqlx::query_scalar(RESERVE_STAMPS_SQL)
                .bind(clock.span)
                .bind(clock.now_us)
                .fetch_one(&mut *tx)
                .await?;
            let mut query = sqlx::query(update).bind(indicator_id);
            if !false_positive {
                query = query.bind(at);
            }
            let done = query.bind(clock.first(last)).execute(&mut *tx).await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("indicator", indicator_id.to_string()));
            }
            sqlx::query("INSERT INTO intel_sightings (indicator_id, sighting_type, source, note, seen_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(indicator_id)
                .bind(kind)
                .bind(source)
                .bind(note)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Indicators expired at `now` but not yet purged (a range scan of the expiry index).
    pub async fn intel_expired_count(&self, now: i64) -> Result<i64, StoreError> {
        on_pool!(&self.db, p => {
            Ok(sqlx::query_scalar("SELECT COUNT(*) FROM intel_indicators WHERE expires_at <= $1")
                .bind(now)
                .fetch_one(p)
                .await?)
        })
    }

    /// Stores ATT&CK entries `(id, kind, name, tactics)`, replacing earlier imports of the same
    /// ids. Returns how many were stored.
    pub async fn intel_put_attack(
        &self,
        entries: &[(String, String, String, Vec<String>)],
        now: i64,
    ) -> Result<u64, StoreError> {
        on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            for (id, kind, name, tactics) in entries {
                let tactics = serde_json::to_string(tactics).map_err(|e| StoreError::corrupt("attack tactics", e))?;
                sqlx::query(
                    "INSERT INTO intel_attack (id, kind, name, tactics, imported_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name, tactics = excluded.tactics, \
                     imported_at = excluded.imported_at",
                )
                .bind(id)
                .bind(kind)
                .bind(name)
                .bind(&tactics)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(entries.len() as u64)
        })
    }

    /// Names and tactics of ATT&CK ids: `(id, kind, name, tactics)` for those imported.
    pub async fn intel_attack_names(
        &self,
        ids: &[String],
    ) -> Result<Vec<(String, String, String, Vec<String>)>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        on_pool!(&self.db, p => {
            for id in ids {
                let row = sqlx::query("SELECT id, kind, name, tactics FROM intel_attack WHERE id = $1")
                    .bind(id)
                    .fetch_optional(p)
                    .await?;
                if let Some(r) = row {
                    let tactics: String = r.try_get("tactics")?;
                    out.push((r.try_get("id")?, r.try_get("kind")?, r.try_get("name")?, json_list(&tactics)?));
                }
            }
            Ok(out)
        })
    }

    /// Counts per kind: (kind, live, expired).
    pub async fn intel_counts(&self, now: i64) -> Result<Vec<(IocKind, i64, i64)>, StoreError> {
        on_pool!(&self.db, p => {
            let rows = sqlx::query(
                "SELECT kind, SUM(CASE WHEN expires_at > $1 THEN 1 ELSE 0 END) AS live, \
                 SUM(CASE WHEN expires_at > $1 THEN 0 ELSE 1 END) AS expired FROM intel_indicators GROUP BY kind ORDER BY kind",
            )
            .bind(now)
            .fetch_all(p)
            .await?;
            rows.iter()
                .map(|r| Ok((kind_of(r.try_get("kind")?)?, r.try_get::<Option<i64>, _>("live")?.unwrap_or(0), r.try_get::<Option<i64>, _>("expired")?.unwrap_or(0))))
                .collect()
        })
    }

    /// Deletes indicators whose expiry is older than `cutoff` (really deleted, with their
    /// observations), and records no indicator refers to any more. Returns (indicators,
    /// records) deleted.
    pub async fn intel_purge(&self, cutoff: i64) -> Result<(u64, u64), StoreError> {
        on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            let ind = sqlx::query("DELETE FROM intel_indicators WHERE expires_at <= $1").bind(cutoff).execute(&mut *tx).await?;
            let rec = sqlx::query(
                "DELETE FROM intel_records WHERE NOT EXISTS (SELECT 1 FROM intel_observations o WHERE o.record_id = intel_records.id)",
            )
            .execute(&mut *tx)
            .await?;
            // A record that outlived the indicator it was anchored to moves to the smallest id
            // it still names: the one a re-ingest of the same row computes, so the row is
            // recognised instead of stored twice.
            sqlx::query(
                "UPDATE intel_records SET anchor = \
                   (SELECT MIN(o.indicator_id) FROM intel_observations o WHERE o.record_id = intel_records.id) \
                 WHERE NOT EXISTS (SELECT 1 FROM intel_indicators i WHERE i.id = intel_records.anchor)",
            )
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok((ind.rows_affected(), rec.rows_affected()))
        })
    }
}
