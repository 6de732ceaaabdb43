//! Reading indicators: one by value, its sources and relations, the live set for the index,
//! export pages, counts; sightings; purging what expired.

use rampart_intel::IocKind;
use rampart_intel::rows::{
    ExportCursor, IntelExportRow, IntelIndexRow, IntelIndicator, IntelObservation,
    STAMPS_PER_VERSION,
};

use sqlx::{AssertSqlSafe, Row};

use crate::{Db, Store, StoreError, on_pool, on_reader};

use super::{ClockReservation, RESERVE_STAMPS_SQL, code_of, indicator_key, json_list, kind_of};

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

/// An observation's columns (feed, record), aliased so they can share a row with the
/// indicator's own `first_seen`, `last_seen` and `threat_type`.
const OBSERVATION_COLUMNS: &str = "f.name AS o_feed, f.reliability AS o_reliability, f.tlp AS o_tlp, \
     r.hash AS o_record, r.source_ref AS o_source_ref, r.first_seen AS o_first_seen, \
     r.last_seen AS o_last_seen, r.threat_type AS o_threat_type, r.malware AS o_malware, \
     r.tags AS o_tags, r.attack AS o_attack, r.confidence AS o_confidence, \
     r.reporter AS o_reporter, r.reference AS o_reference, r.status AS o_status, \
     r.description AS o_description, r.raw AS o_raw, r.first_fetched AS o_first_fetched, \
     r.last_fetched AS o_last_fetched";

/// Newest fetch first; feed and record break ties so the order is stable.
const OBSERVATION_ORDER: &str = "ORDER BY r.last_fetched DESC, f.name, r.hash";

/// An indicator's columns, as [`Store::intel_indicator`] selects them.
const INDICATOR_COLUMNS: &str = "i.id, i.kind, i.value, i.first_seen, i.last_seen, i.first_reported, \
     i.last_reported, i.expires_at, i.base_score, i.sightings, i.false_positives, i.last_sighting, \
     i.threat_type, i.version";

/// SQLite finds an indicator through its 64-bit key (migrations 0005 and 0007), PostgreSQL
/// through its unique index on (kind, value); `$1` is the kind code, `$2` the value and, on
/// SQLite, `$3` the key.
fn indicator_filter(sqlite: bool) -> &'static str {
    if sqlite {
        "i.kind = $1 AND i.value = $2 AND i.id IN (SELECT id FROM intel_indicator_keys WHERE key = $3)"
    } else {
        "i.kind = $1 AND i.value = $2"
    }
}

fn indicator_row<R: Row>(r: &R) -> Result<IntelIndicator, StoreError>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database>,
{
    Ok(IntelIndicator {
        id: r.try_get("id")?,
        kind: kind_of(r.try_get("kind")?)?,
        value: r.try_get("value")?,
        first_seen: r.try_get("first_seen")?,
        last_seen: r.try_get("last_seen")?,
        first_reported: r.try_get("first_reported")?,
        last_reported: r.try_get("last_reported")?,
        expires_at: r.try_get("expires_at")?,
        base_score: r.try_get("base_score")?,
        sightings: r.try_get("sightings")?,
        false_positives: r.try_get("false_positives")?,
        last_sighting: r.try_get("last_sighting")?,
        threat_type: r.try_get("threat_type")?,
        version: r.try_get("version")?,
    })
}

fn observation_row<R: Row>(r: &R) -> Result<IntelObservation, StoreError>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database>,
{
    let malware: String = r.try_get("o_malware")?;
    let tags: String = r.try_get("o_tags")?;
    let attack: String = r.try_get("o_attack")?;
    Ok(IntelObservation {
        feed: r.try_get("o_feed")?,
        reliability: r.try_get("o_reliability")?,
        tlp: r.try_get("o_tlp")?,
        record: r.try_get("o_record")?,
        source_ref: r.try_get("o_source_ref")?,
        first_seen: r.try_get("o_first_seen")?,
        last_seen: r.try_get("o_last_seen")?,
        threat_type: r.try_get("o_threat_type")?,
        malware: json_list(&malware)?,
        tags: json_list(&tags)?,
        attack: json_list(&attack)?,
        confidence: r.try_get("o_confidence")?,
        reporter: r.try_get("o_reporter")?,
        reference: r.try_get("o_reference")?,
        status: r.try_get("o_status")?,
        description: r.try_get("o_description")?,
        raw: r.try_get("o_raw")?,
        first_fetched: r.try_get("o_first_fetched")?,
        last_fetched: r.try_get("o_last_fetched")?,
    })
}

impl Store {
    /// An indicator by kind and canonical value.
    pub async fn intel_indicator(
        &self,
        kind: IocKind,
        value: &str,
    ) -> Result<Option<IntelIndicator>, StoreError> {
        let kind = code_of(kind);
        let sqlite = matches!(self.db, Db::Sqlite(_));
        let sql = format!(
            "SELECT {INDICATOR_COLUMNS} FROM intel_indicators i WHERE {}",
            indicator_filter(sqlite)
        );
        on_pool!(&self.db, p => {
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(kind).bind(value);
            if sqlite {
                query = query.bind(indicator_key(kind, value));
            }
            match query.fetch_optional(p).await? {
                Some(row) => Ok(Some(indicator_row(&row)?)),
                None => Ok(None),
            }
        })
    }

    /// An indicator by kind and canonical value with every observation of it, newest fetch
    /// first, in one query: what a lookup shows for each match. One round trip instead of
    /// [`Store::intel_indicator`] then [`Store::intel_observations`], because an API lookup
    /// is answered in a few of them and each costs two thread hand-offs on SQLite's worker.
    pub async fn intel_indicator_with_sources(
        &self,
        kind: IocKind,
        value: &str,
    ) -> Result<Option<(IntelIndicator, Vec<IntelObservation>)>, StoreError> {
        let kind = code_of(kind);
        let sqlite = matches!(self.db, Db::Sqlite(_));
        // The indicator's columns repeat on each observation's row; an indicator without
        // observations (there should be none) still comes back, as one row of NULL sources.
        let sql = format!(
            "SELECT {INDICATOR_COLUMNS}, {OBSERVATION_COLUMNS} FROM intel_indicators i \
             LEFT JOIN intel_observations o ON o.indicator_id = i.id \
             LEFT JOIN intel_records r ON r.id = o.record_id \
             LEFT JOIN intel_feeds f ON f.id = r.feed_id \
             WHERE {} {OBSERVATION_ORDER}",
            indicator_filter(sqlite)
        );
        on_reader!(self, c => {
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(kind).bind(value);
            if sqlite {
                query = query.bind(indicator_key(kind, value));
            }
            let rows = query.fetch_all(c).await?;
            let Some(first) = rows.first() else { return Ok(None) };
            let indicator = indicator_row(first)?;
            let mut sources = Vec::with_capacity(rows.len());
            for row in &rows {
                if row.try_get::<Option<String>, _>("o_feed")?.is_some() {
                    sources.push(observation_row(row)?);
                }
            }
            Ok(Some((indicator, sources)))
        })
    }

    /// Every observation of an indicator, newest fetch first.
    pub async fn intel_observations(
        &self,
        indicator_id: i64,
    ) -> Result<Vec<IntelObservation>, StoreError> {
        let sql = format!(
            "SELECT {OBSERVATION_COLUMNS} FROM intel_observations o \
             JOIN intel_records r ON r.id = o.record_id \
             JOIN intel_feeds f ON f.id = r.feed_id WHERE o.indicator_id = $1 {OBSERVATION_ORDER}"
        );
        on_pool!(&self.db, p => {
            let rows = sqlx::query(AssertSqlSafe(sql)).bind(indicator_id).fetch_all(p).await?;
            rows.iter().map(observation_row).collect()
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
            let rows = on_reader!(self, p => {
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

    /// Reads every page of the b-trees a lookup reads (the indicators, their keys, the
    /// observations, the records and the feeds) through a memory map that stays in place
    /// until the next call (the store's `Pin` connection); returns the rows they hold. Nothing on
    /// PostgreSQL, which keeps its own buffers. Call it at start, before the index build
    /// (which then reads the indicators from memory), and after each index build, when the
    /// file has grown.
    ///
    /// Why: the machines of this kind run a kernel policy (DAMON `pageout`) that evicts file
    /// pages no process has mapped once they sit unused for a minute, and a lookup that then
    /// needs one waits for the disk: up to a quarter of a second at times, every request
    /// queued behind it (docs/performance.md). Pages mapped here are left to that policy's
    /// mercy no more, and the kernel can still reclaim them under real memory pressure, as
    /// any clean file page. `count(*)` over a b-tree visits each of its pages once, without
    /// decoding rows. One read transaction for all of them: the connection would drop its map
    /// at the start of the next one if another connection had committed in between. Pages
    /// past the map's end (SQLite maps at most 2 GiB) are read by `pread` and gain nothing.
    pub async fn intel_map_lookup_pages(&self) -> Result<u64, StoreError> {
        /// The lookup's tables, scanned as tables: `NOT INDEXED`, or SQLite would count the
        /// smaller index instead.
        const TABLES: [&str; 5] = [
            "intel_indicators",
            "intel_indicator_keys",
            "intel_observations",
            "intel_records",
            "intel_feeds",
        ];
        let Some(pin) = &self.pin else {
            return Ok(0);
        };
        let mut guard = pin.lock().await;
        let Some(conn) = guard.as_mut() else {
            // Closed: the store is shutting down.
            return Ok(0);
        };
        let mut tx = sqlx::Connection::begin(conn).await?;
        let mut rows = 0u64;
        for table in TABLES {
            let sql = format!("SELECT count(*) FROM {table} NOT INDEXED");
            let n: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
                .fetch_one(&mut *tx)
                .await?;
            rows += u64::try_from(n).unwrap_or(0);
        }
        tx.commit().await?;
        Ok(rows)
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

    /// Indicators expired at `now` but not yet purged (a range scan of the expiry index).
    pub async fn intel_expired_count(&self, now: i64) -> Result<i64, StoreError> {
        on_pool!(&self.db, p => {
            Ok(sqlx::query_scalar("SELECT COUNT(*) FROM intel_indicators WHERE expires_at <= $1")
                .bind(now)
                .fetch_one(p)
                .await?)
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
}

#[cfg(test)]
mod tests {
    use rampart_intel::IocKind;
    use rampart_intel::rows::IntelRecordIn;

    use crate::Store;

    /// Bytes of `path` this process has mapped and resident (every mapping of it, summed from
    /// `/proc/self/smaps`): what the kernel's unmapped-page eviction leaves alone.
    fn mapped_bytes(path: &std::path::Path) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("/proc/self/smaps");
        let target = path.to_str().expect("a UTF-8 path");
        let mut ours = false;
        let mut kib = 0u64;
        for line in smaps.lines() {
            if let Some(rss) = line.strip_prefix("Rss:") {
                if ours {
                    let n = rss.trim().trim_end_matches("kB").trim();
                    kib += n.parse::<u64>().expect("Rss in kB");
                }
            } else if line
                .split_whitespace()
                .next()
                .is_some_and(|range| range.contains('-') && !range.ends_with(':'))
            {
                // A mapping's header: range, perms, offset, device, inode, then its path.
                ours = line.split_whitespace().nth(5) == Some(target);
            }
        }
        kib * 1024
    }

    /// After [`Store::intel_map_lookup_pages`] the pages a lookup reads are mapped in this
    /// process; before, on a freshly opened store, they are not. They stay mapped when another
    /// connection commits and the request path's readers read after it (SQLite unmaps a
    /// connection's whole map at its first read after another connection's commit).
    #[tokio::test]
    async fn a_lookups_pages_stay_mapped_after_the_mapping_through_commits_and_reads() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("intel.db");
        let now = 1_700_000_000;
        {
            let store = Store::open_sqlite(&path).await.expect("open");
            let feed = crate::intel::testing::feed(&store, "blocklist", 86_400, now).await;
            let records: Vec<IntelRecordIn> = (0..40_000)
                .map(|n| {
                    let value = format!("host-{n:06}.example.net");
                    IntelRecordIn {
                        hash: format!("{n:032x}"),
                        threat_type: Some("botnet_cc".into()),
                        malware: vec!["qakbot".into()],
                        raw: format!("{value},botnet_cc,qakbot,2023-11-14"),
                        indicators: vec![(IocKind::Domain, value, 60)],
                        ..IntelRecordIn::default()
                    }
                })
                .collect();
            for batch in records.chunks(10_000) {
                store
                    .intel_ingest(feed, 86_400, now, batch)
                    .await
                    .expect("ingest");
            }
            // Closing the last connection checkpoints the log into the database file, where
            // the readers' map reads from.
            store.close().await;
        }
        let file = std::fs::metadata(&path).expect("database file").len();
        let store = Store::open_sqlite(&path).await.expect("open again");
        let before = mapped_bytes(&path);
        assert!(
            before < file / 10,
            "a freshly opened store maps little of its file: {before} of {file} bytes"
        );

        let rows = store.intel_map_lookup_pages().await.expect("map");
        // Indicators, keys, observations and records: one each per indicator; one feed.
        assert_eq!(rows, 4 * 40_000 + 1);
        let mapped = mapped_bytes(&path);
        assert!(
            mapped >= before + file / 2,
            "the lookup's tables are mapped: {before} -> {mapped} of {file} bytes"
        );

        // Another connection commits (a fleet's writes do all the time), then the readers read.
        store
            .append_events(&[rampart_events::make::agent_offline(
                "e1".into(),
                time::OffsetDateTime::UNIX_EPOCH,
                rampart_events::AgentRef {
                    id: "a1".into(),
                    hostname: "host-a1".into(),
                    group: String::new(),
                },
                time::OffsetDateTime::UNIX_EPOCH,
            )])
            .await
            .expect("a commit");
        let mut live = 0;
        store
            .intel_live_indicators(now, 5_000, &mut |_| live += 1)
            .await
            .expect("index rows");
        assert_eq!(live, 40_000);
        let after = mapped_bytes(&path);
        assert!(
            after >= mapped,
            "a commit and reads after it leave the lookup's pages mapped: {mapped} -> {after} bytes"
        );
        store.close().await;
    }
}
