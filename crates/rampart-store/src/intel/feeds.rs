//! Feed definitions and their health.

use rampart_intel::rows::{IntelFeed, NewIntelFeed};

use sqlx::{AssertSqlSafe, Row};

use crate::{Store, StoreError, on_pool};

const FEED_COLUMNS: &str = "id, name, format, url, interval_secs, reliability, tlp, terms, ttl_secs, enabled, \
     etag, last_modified, last_attempt, last_success, last_error, failures, last_records, \
     last_indicators, last_problems, created_at";

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
}
