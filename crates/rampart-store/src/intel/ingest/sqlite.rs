//! SQLite's side of a batch, through the single intel writer.
//!
//! The writer is a connection of its own driven from the calling thread (rusqlite, through
//! `batch.rs`'s [`crate::batch::BatchConnection`]), not sqlx's: sqlx runs a SQLite connection
//! on a thread of its own, and each multi-row statement was built as a list of owned
//! arguments on a runtime worker, sent to that thread, bound there and its answer sent back,
//! while SQLite's one write lock sat idle. A profile of a 2 M ingest put about 4 s of the
//! store's 14.6 s serial time on the calling side (docs/performance.md). Here each value is
//! bound straight into the prepared statement and the statement run on the same thread.
//!
//! Rows go to SQLite as bound parameters of multi-row statements (`VALUES (…), (…)`), up to
//! [`ROWS_PER_STATEMENT`] rows each, not as one JSON document per statement: unpacking JSON
//! (`jsonb_each`, then `->> n` per column, each walking the row from its start) cost SQLite
//! more than storing the rows did — 23 s of a 70 s 5 M ingest went to the indicator insert
//! alone, where the same rows inserted from a table take 8 s (docs/performance.md).
//!
//! A multi-row statement would normally keep an undo journal of every page it touches, so
//! that a failing row could be undone alone; the batch is one transaction that fails whole, so
//! statements run `OR FAIL`, which needs none.
//!
//! The writer does not enforce foreign keys ([`crate::batch::Purpose::Intel`]): every id it
//! writes into a reference is one its own transaction found or handed out under the write
//! lock, and the batch's feed is checked once, first. Enforced, SQLite looked each
//! observation's indicator and record up again, and each record's feed.
//!
//! The 64-bit keys that find an indicator by value live in a table of their own (migration
//! 0007), written in key order once per batch after the indicators: as an index on the
//! indicators they were written in id order, one random page per new row. Existing
//! indicators are probed by key alone (`key IN (…)`, which SQLite walks in key order), and the
//! candidates' kind and value are compared here. The ids themselves follow the batch's order:
//! ids in key order would move the randomness into the records' and observations' indexes,
//! whose pages then split (2 M indicators: 37 s against 23 s).

use std::borrow::Cow;

use rampart_intel::rows::{IntelIngestCounts, IntelRecordIn};
use rusqlite::{Statement, ToSql, Transaction};

use super::{Batch, ClockReservation, RESERVE_STAMPS_SQL, Touched};
use crate::StoreError;
use crate::intel::indicator_key;
use crate::intel::to_json;

/// Rows bound per statement, at most. SQLite takes 32,766 parameters per statement; the widest
/// row (a record) binds 21. A power of four, so [`statement_sizes`] needs few statement texts.
const ROWS_PER_STATEMENT: usize = 1024;

/// The statement sizes `len` rows are split into: full statements, then powers of four. Each
/// size is one statement text, prepared once and kept in the connection's statement cache, so
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

/// Binds a multi-row statement's parameters in order, row after row.
struct Binder<'s, 'c> {
    stmt: &'s mut Statement<'c>,
    next: usize,
}

impl Binder<'_, '_> {
    /// Binds the next parameter.
    fn put(&mut self, value: impl ToSql) -> rusqlite::Result<&mut Self> {
        self.stmt.raw_bind_parameter(self.next, value)?;
        self.next += 1;
        Ok(self)
    }
}

/// Runs `sql(n)` once per statement size over `rows`, binding each row with `bind`, and hands
/// every row the statements return to `each`.
fn run_chunked<T>(
    tx: &Transaction<'_>,
    rows: &[T],
    sql: impl Fn(usize) -> String,
    bind: impl Fn(&mut Binder<'_, '_>, &T) -> rusqlite::Result<()>,
    mut each: impl FnMut(&rusqlite::Row<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let mut start = 0;
    for size in statement_sizes(rows.len()) {
        let mut stmt = tx.prepare_cached(&sql(size))?;
        let mut binder = Binder {
            stmt: &mut stmt,
            next: 1,
        };
        for row in &rows[start..start + size] {
            bind(&mut binder, row)?;
        }
        let mut out = stmt.raw_query();
        while let Some(row) = out.next()? {
            each(row)?;
        }
        start += size;
    }
    Ok(())
}

/// For statements that return nothing.
fn nothing(_: &rusqlite::Row<'_>) -> Result<(), StoreError> {
    Ok(())
}

/// The next id an AUTOINCREMENT table hands out: above its high-water mark, so ids of deleted
/// rows never come back.
fn next_id(tx: &Transaction<'_>, table: &'static str) -> Result<i64, StoreError> {
    let sql = format!(
        "SELECT max(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = '{table}'), 0), \
                    COALESCE((SELECT MAX(id) FROM {table}), 0)) + 1"
    );
    Ok(tx.query_row(&sql, [], |row| row.get(0))?)
}

/// One record row to insert: the record, the id and anchor handed out here, and its list
/// columns as JSON text. The feed and the fetch times are the batch's.
struct RecordInsert<'a> {
    id: i64,
    anchor: i64,
    record: &'a IntelRecordIn,
    malware: Cow<'static, str>,
    tags: Cow<'static, str>,
    attack: Cow<'static, str>,
}

/// A record's list column as JSON text. Most lists are empty (a blocklist line has no
/// malware, tags or techniques), and those need no serialiser or allocation.
fn list_json(list: &[String]) -> Result<Cow<'static, str>, StoreError> {
    if list.is_empty() {
        Ok(Cow::Borrowed("[]"))
    } else {
        to_json(list).map(Cow::Owned)
    }
}

impl<'a> Batch<'a> {
    /// Existing indicators and records are looked up by their small keys, updated in place,
    /// and the rest inserted with ids handed out here, so nothing but the lookups' hits comes
    /// back from SQLite. In `tx`, which holds the write lock from its start
    /// ([`crate::batch::BatchConnection::transaction`]), so no other writer can slip in between
    /// a lookup and an insert.
    pub(super) fn store_sqlite(
        &mut self,
        tx: &Transaction<'_>,
    ) -> Result<(IntelIngestCounts, Touched), StoreError> {
        // The one reference this transaction does not make itself (see the module): a feed
        // deleted since the caller read it takes its records with it, so none may be added.
        let feed = tx
            .prepare_cached("SELECT 1 FROM intel_feeds WHERE id = ?1")?
            .exists([self.feed_id])?;
        if !feed {
            return Err(StoreError::NotFound {
                what: "intel feed",
                id: self.feed_id.to_string(),
            });
        }
        // The batch is one transaction and any error rolls all of it back, so no statement
        // needs its own undo log: `OR FAIL` stops at a violation without undoing the
        // statement's earlier rows, where the default would make SQLite copy every page a
        // multi-row statement touches into a statement journal first.
        let mut counts = IntelIngestCounts::default();
        let clock = ClockReservation::new(self.aggs.len());
        let last: i64 = tx
            .prepare_cached(RESERVE_STAMPS_SQL)?
            .query_row(rusqlite::params![clock.span, clock.now_us], |row| {
                row.get(0)
            })?;
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
        let mut updates = Vec::new();
        {
            let (slots, aggs) = (&self.slots, &mut self.aggs);
            run_chunked(
                tx,
                &probe,
                |n| {
                    format!(
                        "SELECT i.id, i.kind, i.value FROM intel_indicator_keys AS k \
                         JOIN intel_indicators AS i ON i.id = k.id WHERE k.key IN ({})",
                        vec!["?"; n].join(", ")
                    )
                },
                |b, key| b.put(*key).map(drop),
                |row| {
                    let id: i64 = row.get(0)?;
                    let kind: i64 = row.get(1)?;
                    let value = row
                        .get_ref(2)?
                        .as_str()
                        .map_err(|e| StoreError::corrupt("intel indicator value", e))?;
                    if let Some(&slot) = slots.get(&(kind, value)) {
                        aggs[slot].id = Some(id);
                        updates.push(slot);
                    }
                    Ok(())
                },
            )?;
        }
        {
            let (now, expires) = (self.now, self.expires);
            let aggs = &self.aggs;
            let rows: Vec<&super::Agg<'_>> = updates.iter().map(|&slot| &aggs[slot]).collect();
            run_chunked(
                tx,
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
                |b, a| {
                    b.put(a.id.unwrap_or(0))?
                        .put(a.first)?
                        .put(a.last)?
                        .put(a.score)?
                        .put(a.stamp)?
                        .put(a.threat)?
                        .put(now)?
                        .put(expires)
                        .map(drop)
                },
                nothing,
            )?;
        }
        counts.updated_indicators = updates.len() as u64;

        // New indicators: ids in the batch's order (see the module), so the table appends.
        let first_new = next_id(tx, "intel_indicators")?;
        let fresh: Vec<usize> = (0..self.aggs.len())
            .filter(|&slot| self.aggs[slot].id.is_none())
            .collect();
        for (id, &slot) in (first_new..).zip(&fresh) {
            let agg = &mut self.aggs[slot];
            agg.id = Some(id);
            agg.fresh = true;
        }
        {
            let (now, expires) = (self.now, self.expires);
            let aggs = &self.aggs;
            run_chunked(
                tx,
                &fresh,
                |n| {
                    format!(
                        "INSERT OR FAIL INTO intel_indicators (id, key, kind, value, first_seen, last_seen, \
                           base_score, version, threat_type, first_reported, last_reported, expires_at) \
                         VALUES {}",
                        placeholders(n, 12)
                    )
                },
                |b, &slot| {
                    let a = &aggs[slot];
                    b.put(a.id.unwrap_or(0))?
                        .put(keys[slot])?
                        .put(a.kind)?
                        .put(a.value)?
                        .put(a.first)?
                        .put(a.last)?
                        .put(a.score)?
                        .put(a.stamp)?
                        .put(a.threat)?
                        .put(now)?
                        .put(now)?
                        .put(expires)
                        .map(drop)
                },
                nothing,
            )?;
        }
        counts.new_indicators = fresh.len() as u64;
        // Their keys, in key order (see the module).
        let mut new_keys: Vec<(i64, i64)> = fresh
            .iter()
            .map(|&slot| (keys[slot], self.aggs[slot].id.unwrap_or(0)))
            .collect();
        new_keys.sort_unstable();
        run_chunked(
            tx,
            &new_keys,
            |n| {
                format!(
                    "INSERT OR FAIL INTO intel_indicator_keys (key, id) VALUES {}",
                    placeholders(n, 2)
                )
            },
            |b, k| b.put(k.0)?.put(k.1).map(drop),
            nothing,
        )?;

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
        run_chunked(
            tx,
            &probe,
            |n| {
                format!(
                    "SELECT p.column1, r.id FROM (VALUES {}) AS p \
                     JOIN intel_records AS r ON r.anchor = p.column2 AND r.hash = p.column3",
                    placeholders(n, 3)
                )
            },
            |b, p| b.put(p.0)?.put(p.1)?.put(p.2).map(drop),
            |row| {
                let (pos, id): (i64, i64) = (row.get(0)?, row.get(1)?);
                let slot = usize::try_from(pos)
                    .ok()
                    .and_then(|p| ids.get_mut(p))
                    .ok_or_else(|| StoreError::corrupt("intel batch", "lookup row out of range"))?;
                *slot = id;
                refreshed.push(id);
                Ok(())
            },
        )?;
        let now = self.now;
        run_chunked(
            tx,
            &refreshed,
            |n| {
                format!(
                    "UPDATE OR FAIL intel_records SET last_fetched = u.column2 FROM (VALUES {}) AS u \
                     WHERE intel_records.id = u.column1",
                    placeholders(n, 2)
                )
            },
            |b, id| b.put(*id)?.put(now).map(drop),
            nothing,
        )?;
        let mut next = next_id(tx, "intel_records")?;
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
                malware: list_json(&r.malware)?,
                tags: list_json(&r.tags)?,
                attack: list_json(&r.attack)?,
            });
        }
        let feed_id = self.feed_id;
        run_chunked(
            tx,
            &inserts,
            |n| {
                format!(
                    "INSERT OR FAIL INTO intel_records (id, anchor, hash, raw, malware, tags, attack, family, \
                       threat_type, first_seen, last_seen, valid_until, source_ref, confidence, reporter, \
                       reference, status, description, feed_id, first_fetched, last_fetched) VALUES {}",
                    placeholders(n, 21)
                )
            },
            |b, i| {
                let r = i.record;
                b.put(i.id)?
                    .put(i.anchor)?
                    .put(r.hash.as_str())?
                    .put(r.raw.as_str())?
                    .put(&*i.malware)?
                    .put(&*i.tags)?
                    .put(&*i.attack)?
                    .put(r.malware.first().map(String::as_str))?
                    .put(r.threat_type.as_deref())?
                    .put(r.first_seen)?
                    .put(r.last_seen)?
                    .put(r.valid_until)?
                    .put(r.source_ref.as_deref())?
                    .put(r.confidence)?
                    .put(r.reporter.as_deref())?
                    .put(r.reference.as_deref())?
                    .put(r.status.as_deref())?
                    .put(r.description.as_deref())?
                    .put(feed_id)?
                    .put(now)?
                    .put(now)
                    .map(drop)
            },
            nothing,
        )?;
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
            tx,
            &new_obs,
            |n| {
                format!(
                    "INSERT OR FAIL INTO intel_observations (indicator_id, record_id) VALUES {}",
                    placeholders(n, 2)
                )
            },
            |b, o| b.put(o.0)?.put(o.1).map(drop),
            nothing,
        )?;
        let mut observed: Vec<i64> = Vec::new();
        run_chunked(
            tx,
            &old_obs,
            |n| {
                format!(
                    "INSERT OR FAIL INTO intel_observations (indicator_id, record_id) VALUES {} \
                     ON CONFLICT DO NOTHING RETURNING indicator_id",
                    placeholders(n, 2)
                )
            },
            |b, o| b.put(o.0)?.put(o.1).map(drop),
            |row| {
                observed.push(row.get(0)?);
                Ok(())
            },
        )?;
        counts.new_observations = (new_obs.len() + observed.len()) as u64;
        let versioned = self.newly_observed(&observed);
        run_chunked(
            tx,
            &versioned,
            |n| {
                format!(
                    "UPDATE OR FAIL intel_indicators SET version = u.column2 FROM (VALUES {}) AS u \
                     WHERE intel_indicators.id = u.column1 AND intel_indicators.version <> u.column2",
                    placeholders(n, 2)
                )
            },
            |b, v| b.put(v.0)?.put(v.1).map(drop),
            nothing,
        )?;
        Ok((counts, self.touched()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use rampart_intel::IocKind;

    const NOW: i64 = 1_700_000_000;

    async fn feed(store: &Store, name: &str) -> i64 {
        crate::intel::testing::feed(store, name, 86_400, NOW).await
    }

    /// A record naming `values` (domains), identified by `tag`.
    fn record(tag: &str, values: &[&str]) -> IntelRecordIn {
        IntelRecordIn {
            hash: format!("{:032x}", indicator_key(0, tag)),
            malware: vec!["emotet".into()],
            raw: tag.into(),
            indicators: values
                .iter()
                .map(|v| (IocKind::Domain, (*v).to_owned(), 70))
                .collect(),
            ..IntelRecordIn::default()
        }
    }

    /// The writer does not enforce foreign keys (see the module): after new indicators, new
    /// records naming old and new ones, a second feed naming the same values, a refetch and a
    /// purge on the store's enforcing connections, SQLite's own check finds every reference
    /// the writer made pointing at a row that exists.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_reference_the_writer_makes_holds() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("intel.db");
        let store = Store::open_sqlite(&path).await.expect("open");
        let (a, b) = (feed(&store, "a").await, feed(&store, "b").await);
        let first: Vec<IntelRecordIn> = (0..300)
            .map(|n| {
                record(
                    &format!("a{n}"),
                    &[&format!("h{n}.example"), "shared.example"],
                )
            })
            .collect();
        store.intel_ingest(a, 60, NOW, &first).await.expect("first");
        let second: Vec<IntelRecordIn> = (150..450)
            .map(|n| record(&format!("b{n}"), &[&format!("h{n}.example")]))
            .collect();
        store
            .intel_ingest(b, 86_400, NOW + 10, &second)
            .await
            .expect("second feed");
        store
            .intel_ingest(a, 60, NOW + 20, &first[..100])
            .await
            .expect("refetch");
        // Expire the first feed's indicators that no other feed keeps alive, then add more.
        let (indicators, records) = store.intel_purge(NOW + 100).await.expect("purge");
        assert_eq!((indicators, records), (151, 150), "purged");
        store
            .intel_ingest(a, 60, NOW + 200, &first[..200])
            .await
            .expect("after the purge");
        store.close().await;

        let conn = rusqlite::Connection::open(&path).expect("open for the check");
        let observations: i64 = conn
            .query_row("SELECT count(*) FROM intel_observations", [], |r| r.get(0))
            .expect("count");
        // Feed b: 300; feed a before the purge, kept through feed b's indicators: 150; the last
        // batch: a new indicator and the shared one for 150 records, the shared one for 50.
        assert_eq!(observations, 300 + 150 + 300 + 50);
        let broken: Vec<(String, i64, String)> = conn
            .prepare("PRAGMA foreign_key_check")
            .expect("check")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert!(broken.is_empty(), "dangling references: {broken:?}");
    }

    /// A batch for a feed deleted since the caller read it fails, naming the feed, and stores
    /// nothing: the writer would otherwise add records no cascade removes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_for_a_deleted_feed_stores_nothing() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("intel.db");
        let store = Store::open_sqlite(&path).await.expect("open");
        let gone = feed(&store, "gone").await;
        assert!(store.intel_delete_feed("gone").await.expect("delete"));
        let err = store
            .intel_ingest(gone, 60, NOW, &[record("r", &["x.example"])])
            .await
            .expect_err("a deleted feed");
        assert!(
            matches!(&err, StoreError::NotFound { what: "intel feed", id } if *id == gone.to_string()),
            "{err}"
        );
        assert!(store.intel_counts(NOW).await.expect("counts").is_empty());
        store.close().await;
    }

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
