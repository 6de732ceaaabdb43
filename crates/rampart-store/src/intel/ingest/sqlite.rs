//! SQLite's side of a batch, through the single intel writer.
//!
//! Rows go to SQLite as bound parameters of multi-row statements (`VALUES (…), (…)`), up to
//! [`ROWS_PER_STATEMENT`] rows each, not as one JSON document per statement: unpacking JSON
//! (`jsonb_each`, then `->> n` per column, each walking the row from its start) cost SQLite
//! more than storing the rows did — 23 s of a 70 s 5 M ingest went to the indicator insert
//! alone, where the same rows inserted from a table take 8 s (docs/performance.md).
//!
//! A multi-row statement would normally keep an undo journal of every page it touches, so
//! that a failing row could be undone alone; the batch is one transaction that fails whole, so
//! foreign keys are checked at commit and statements run `OR FAIL`, which need none.
//!
//! The 64-bit keys that find an indicator by value live in a table of their own (migration
//! 0007), written in key order once per batch after the indicators: as an index on the
//! indicators they were written in id order, one random page per new row. Existing
//! indicators are probed by key alone (`key IN (…)`, which SQLite walks in key order), and the
//! candidates' kind and value are compared here. The ids themselves follow the batch's order:
//! ids in key order would move the randomness into the records' and observations' indexes,
//! whose pages then split (2 M indicators: 37 s against 23 s).

use rampart_intel::IocKind;
use rampart_intel::rows::{IntelIngestCounts, IntelRecordIn};
use sqlx::query::Query;
use sqlx::sqlite::{Sqlite, SqliteArguments};
use sqlx::{AssertSqlSafe, Row, SqliteConnection};

use super::{Batch, ClockReservation, RESERVE_STAMPS_SQL};
use crate::StoreError;
use crate::intel::indicator_key;
use crate::intel::to_json;

/// Rows bound per statement, at most. SQLite takes 32,766 parameters per statement; the widest
/// row (a record) binds 21. A power of four, so [`statement_sizes`] needs few statement texts.
const ROWS_PER_STATEMENT: usize = 1024;

/// The statement sizes `len` rows are split into: full statements, then powers of four. Each
/// size is one statement text, prepared once and kept by the driver's statement cache, so
/// at most six texts per kind of statement serve every batch size.
fn statement_sizes(len: usize) -> Vec<usize> {
    let mut sizes = Vec::with_capacity(len / ROWS_PER_STATEMENT + 16);
    let mut left = len;
    let mut size = ROWS_PER_STATEMENT;
    while left > 0 {
        while size > left {
            size /= 4;
        }
        sizes.push(size);
        left -= size;
    }
    sizes
}

/// `(?, …, ?), …`: `rows` groups of `cols` placeholders.
fn placeholders(rows: usize, cols: usize) -> String {
    let group = format!("({})", vec!["?"; cols].join(", "));
    vec![group; rows].join(", ")
}

type SqliteQuery<'q> = Query<'q, Sqlite, SqliteArguments>;

/// Runs `sql(n)` once per statement size over `rows`, binding each row with `bind`; returns
/// the rows the statements produced (empty for statements without results).
async fn run_chunked<'r, T>(
    conn: &mut SqliteConnection,
    rows: &'r [T],
    sql: impl Fn(usize) -> String,
    bind: impl Fn(SqliteQuery<'r>, &'r T) -> SqliteQuery<'r>,
    fetch: bool,
) -> Result<Vec<sqlx::sqlite::SqliteRow>, StoreError> {
    let mut out = Vec::new();
    let mut start = 0;
    for size in statement_sizes(rows.len()) {
        let mut query = sqlx::query(AssertSqlSafe(sql(size)));
        for row in &rows[start..start + size] {
            query = bind(query, row);
        }
        if fetch {
            out.extend(query.fetch_all(&mut *conn).await?);
        } else {
            query.execute(&mut *conn).await?;
        }
        start += size;
    }
    Ok(out)
}

/// One record row to insert: the record, the id and anchor handed out here, and its list
/// columns as JSON text. The feed and the fetch times are the batch's.
struct RecordInsert<'a> {
    id: i64,
    anchor: i64,
    record: &'a IntelRecordIn,
    malware: String,
    tags: String,
    attack: String,
}

impl<'a> Batch<'a> {
    /// Existing indicators and records are looked up by their small keys, updated in place,
    /// and the rest inserted with ids handed out here, so nothing but the lookups' hits comes
    /// back through the driver. `BEGIN IMMEDIATE` takes the write lock first, so no other
    /// writer can slip in between a lookup and an insert.
    pub(super) async fn store_sqlite(
        &mut self,
        pool: &sqlx::SqlitePool,
    ) -> Result<(IntelIngestCounts, Vec<(i64, IocKind, String)>), StoreError> {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        // The batch is one transaction and any error rolls all of it back, so no statement
        // needs its own undo log: foreign keys are checked at commit instead of per statement,
        // and `OR FAIL` stops at a violation without undoing the statement's earlier rows.
        // Either alone would make SQLite copy every page a multi-row statement touches into a
        // statement journal first.
        sqlx::query("PRAGMA defer_foreign_keys = ON")
            .execute(&mut *tx)
            .await?;
        let mut counts = IntelIngestCounts::default();
        let clock = ClockReservation::new(self.aggs.len());
        let last: i64 = sqlx::query_scalar(RESERVE_STAMPS_SQL)
            .bind(clock.span)
            .bind(clock.now_us)
            .fetch_one(&mut *tx)
            .await?;
        self.set_stamps(clock.first(last));

        // Indicators: probe by key, in key order; a key shared by two values (64 bits of
        // SHA-256 make that rare, not impossible) is told apart by kind and value here.
        let keys: Vec<i64> = self
            .aggs
            .iter()
            .map(|a| indicator_key(a.kind, a.value))
            .collect();
        let mut probe = keys.clone();
        probe.sort_unstable();
        probe.dedup();
        let found = run_chunked(
            &mut tx,
            &probe,
            |n| {
                format!(
                    "SELECT i.id, i.kind, i.value FROM intel_indicator_keys AS k \
                     JOIN intel_indicators AS i ON i.id = k.id WHERE k.key IN ({})",
                    vec!["?"; n].join(", ")
                )
            },
            |q, key| q.bind(*key),
            true,
        )
        .await?;
        let mut updates = Vec::with_capacity(found.len());
        for row in &found {
            let (id, kind, value): (i64, i64, &str) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            if let Some(&slot) = self.slots.get(&(kind, value)) {
                let agg = &mut self.aggs[slot];
                agg.id = Some(id);
                updates.push(slot);
            }
        }
        {
            let (now, expires) = (self.now, self.expires);
            let aggs = &self.aggs;
            let rows: Vec<_> = updates
                .iter()
                .map(|&slot| {
                    let a = &aggs[slot];
                    (
                        a.id.unwrap_or(0),
                        a.first,
                        a.last,
                        a.score,
                        a.stamp,
                        a.threat,
                    )
                })
                .collect();
            run_chunked(
                &mut tx,
                &rows,
                |n| {
                    format!(
                        "UPDATE OR FAIL intel_indicators SET \
                           version = CASE WHEN first_seen > u.column2 OR last_seen < u.column3 \
                             OR base_score < u.column4 \
                             OR (u.column6 IS NOT NULL AND threat_type IS NOT u.column6) \
                             THEN u.column5 ELSE version END, \
                           threat_type = COALESCE(u.column6, threat_type), \
                           first_seen = min(first_seen, u.column2), \
                           last_seen = max(last_seen, u.column3), \
                           base_score = max(base_score, u.column4), \
                           last_reported = u.column7, \
                           expires_at = max(expires_at, u.column8) \
                         FROM (VALUES {}) AS u WHERE intel_indicators.id = u.column1",
                        placeholders(n, 8)
                    )
                },
                move |q, r| {
                    q.bind(r.0)
                        .bind(r.1)
                        .bind(r.2)
                        .bind(r.3)
                        .bind(r.4)
                        .bind(r.5)
                        .bind(now)
                        .bind(expires)
                },
                false,
            )
            .await?;
        }
        counts.updated_indicators = updates.len() as u64;

        // New indicators: ids in key order (see the module), the table still appends.
        let mut next = super::sqlite_next_id(&mut tx, "intel_indicators").await?;
        let first_new = next;
        let fresh: Vec<usize> = (0..self.aggs.len())
            .filter(|&slot| self.aggs[slot].id.is_none())
            .collect();
        for &slot in &fresh {
            let agg = &mut self.aggs[slot];
            agg.id = Some(next);
            agg.fresh = true;
            next += 1;
        }
        {
            let aggs = &self.aggs;
            let rows: Vec<_> = fresh
                .iter()
                .map(|&slot| {
                    let a = &aggs[slot];
                    (
                        a.id.unwrap_or(0),
                        keys[slot],
                        a.kind,
                        a.value,
                        a.first,
                        a.last,
                        a.score,
                        a.stamp,
                        a.threat,
                    )
                })
                .collect();
            let (now, expires) = (self.now, self.expires);
            run_chunked(
                &mut tx,
                &rows,
                |n| {
                    format!(
                        "INSERT OR FAIL INTO intel_indicators (id, key, kind, value, first_seen, last_seen, \
                           base_score, version, threat_type, first_reported, last_reported, expires_at) \
                         VALUES {}",
                        placeholders(n, 12)
                    )
                },
                move |q, r| {
                    q.bind(r.0)
                        .bind(r.1)
                        .bind(r.2)
                        .bind(r.3)
                        .bind(r.4)
                        .bind(r.5)
                        .bind(r.6)
                        .bind(r.7)
                        .bind(r.8)
                        .bind(now)
                        .bind(now)
                        .bind(expires)
                },
                false,
            )
            .await?;
        }
        counts.new_indicators = fresh.len() as u64;
        // Their keys, in key order (see the module).
        let mut new_keys: Vec<(i64, i64)> = fresh
            .iter()
            .map(|&slot| (keys[slot], self.aggs[slot].id.unwrap_or(0)))
            .collect();
        new_keys.sort_unstable();
        run_chunked(
            &mut tx,
            &new_keys,
            |n| {
                format!(
                    "INSERT OR FAIL INTO intel_indicator_keys (key, id) VALUES {}",
                    placeholders(n, 2)
                )
            },
            |q, k| q.bind(k.0).bind(k.1),
            false,
        )
        .await?;

        // Records: one anchored to an indicator new in this batch cannot be stored yet (no
        // record ever had that id as its anchor: ids above the high-water mark were never
        // handed out), so only the others are looked up.
        let anchors: Vec<i64> = (0..self.records.len()).map(|n| self.anchor(n)).collect();
        let probe: Vec<(i64, i64, &str)> = anchors
            .iter()
            .enumerate()
            .filter(|(_, anchor)| **anchor < first_new)
            .map(|(n, anchor)| (n as i64, *anchor, self.records[n].hash.as_str()))
            .collect();
        let mut ids = vec![0i64; self.records.len()];
        let mut refreshed = Vec::new();
        let found = run_chunked(
            &mut tx,
            &probe,
            |n| {
                format!(
                    "SELECT p.column1, r.id FROM (VALUES {}) AS p \
                     JOIN intel_records AS r ON r.anchor = p.column2 AND r.hash = p.column3",
                    placeholders(n, 3)
                )
            },
            |q, p| q.bind(p.0).bind(p.1).bind(p.2),
            true,
        )
        .await?;
        for row in &found {
            let (pos, id): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
            let slot = usize::try_from(pos)
                .ok()
                .and_then(|p| ids.get_mut(p))
                .ok_or_else(|| StoreError::corrupt("intel batch", "lookup row out of range"))?;
            *slot = id;
            refreshed.push(id);
        }
        let now = self.now;
        run_chunked(
            &mut tx,
            &refreshed,
            |n| {
                format!(
                    "UPDATE OR FAIL intel_records SET last_fetched = u.column2 FROM (VALUES {}) AS u \
                     WHERE intel_records.id = u.column1",
                    placeholders(n, 2)
                )
            },
            move |q, id| q.bind(*id).bind(now),
            false,
        )
        .await?;
        let mut next = super::sqlite_next_id(&mut tx, "intel_records").await?;
        let mut inserts = Vec::with_capacity(self.records.len() - refreshed.len());
        for (n, id) in ids.iter_mut().enumerate() {
            if *id != 0 {
                continue;
            }
            *id = next;
            next += 1;
            let r = self.records[n];
            inserts.push(RecordInsert {
                id: *id,
                anchor: anchors[n],
                record: r,
                malware: to_json(&r.malware)?,
                tags: to_json(&r.tags)?,
                attack: to_json(&r.attack)?,
            });
        }
        let feed_id = self.feed_id;
        run_chunked(
            &mut tx,
            &inserts,
            |n| {
                format!(
                    "INSERT OR FAIL INTO intel_records (id, anchor, hash, raw, malware, tags, attack, family, \
                       threat_type, first_seen, last_seen, valid_until, source_ref, confidence, reporter, \
                       reference, status, description, feed_id, first_fetched, last_fetched) VALUES {}",
                    placeholders(n, 21)
                )
            },
            move |q, i| {
                let r = i.record;
                q.bind(i.id)
                    .bind(i.anchor)
                    .bind(r.hash.as_str())
                    .bind(r.raw.as_str())
                    .bind(i.malware.as_str())
                    .bind(i.tags.as_str())
                    .bind(i.attack.as_str())
                    .bind(r.malware.first().map(String::as_str))
                    .bind(r.threat_type.as_deref())
                    .bind(r.first_seen)
                    .bind(r.last_seen)
                    .bind(r.valid_until)
                    .bind(r.source_ref.as_deref())
                    .bind(r.confidence)
                    .bind(r.reporter.as_deref())
                    .bind(r.reference.as_deref())
                    .bind(r.status.as_deref())
                    .bind(r.description.as_deref())
                    .bind(feed_id)
                    .bind(now)
                    .bind(now)
            },
            false,
        )
        .await?;
        counts.records = self.records.len() as u64;

        // Observations: those of indicators new in this batch cannot exist yet, so they are
        // inserted without a conflict check or anything coming back; only those of existing
        // indicators say which were new (a new source is a new version of the indicator).
        let mut new_obs: Vec<(i64, i64)> = Vec::with_capacity(self.obs.len());
        let mut old_obs: Vec<(i64, i64)> = Vec::new();
        for (slot, n) in &self.obs {
            let (Some(indicator), Some(&record)) = (self.aggs[*slot].id, ids.get(*n)) else {
                continue;
            };
            if record <= 0 {
                continue;
            }
            if self.aggs[*slot].fresh {
                new_obs.push((indicator, record));
            } else {
                old_obs.push((indicator, record));
            }
        }
        // A record naming one indicator twice (two spellings of one value) gives one row.
        new_obs.sort_unstable();
        new_obs.dedup();
        run_chunked(
            &mut tx,
            &new_obs,
            |n| {
                format!(
                    "INSERT OR FAIL INTO intel_observations (indicator_id, record_id) VALUES {}",
                    placeholders(n, 2)
                )
            },
            |q, o| q.bind(o.0).bind(o.1),
            false,
        )
        .await?;
        let observed = run_chunked(
            &mut tx,
            &old_obs,
            |n| {
                format!(
                    "INSERT OR FAIL INTO intel_observations (indicator_id, record_id) VALUES {} \
                     ON CONFLICT DO NOTHING RETURNING indicator_id",
                    placeholders(n, 2)
                )
            },
            |q, o| q.bind(o.0).bind(o.1),
            true,
        )
        .await?;
        let observed: Vec<i64> = observed
            .iter()
            .map(|row| row.try_get(0))
            .collect::<Result<_, _>>()?;
        counts.new_observations = (new_obs.len() + observed.len()) as u64;
        let versioned = self.newly_observed(&observed);
        run_chunked(
            &mut tx,
            &versioned,
            |n| {
                format!(
                    "UPDATE OR FAIL intel_indicators SET version = u.column2 FROM (VALUES {}) AS u \
                     WHERE intel_indicators.id = u.column1 AND intel_indicators.version <> u.column2",
                    placeholders(n, 2)
                )
            },
            |q, v| q.bind(v.0).bind(v.1),
            false,
        )
        .await?;
        tx.commit().await?;
        Ok((counts, self.touched()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_sizes_cover_every_row_with_few_texts() {
        assert!(statement_sizes(0).is_empty());
        assert_eq!(statement_sizes(1), vec![1]);
        assert_eq!(statement_sizes(1024), vec![1024]);
        assert_eq!(statement_sizes(2100), vec![1024, 1024, 16, 16, 16, 4]);
        for len in [3, 5, 1023, 1025, 200_000, 200_001] {
            let sizes = statement_sizes(len);
            assert_eq!(sizes.iter().sum::<usize>(), len, "{len}");
            assert!(
                sizes.iter().all(|s| [1, 4, 16, 64, 256, 1024].contains(s)),
                "{len}: {sizes:?}"
            );
        }
    }

    #[test]
    fn placeholders_are_grouped_per_row() {
        assert_eq!(placeholders(2, 3), "(?, ?, ?), (?, ?, ?)");
        assert_eq!(placeholders(1, 1), "(?)");
    }
}
