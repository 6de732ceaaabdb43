//! Fleet matches: observables agents reported that matched an indicator.
//!
//! One row per (agent, indicator, observable): a beacon seen in every scan is one row whose
//! `last_seen` and `count` move, not one row per scan, so the table grows with distinct
//! findings, never with time.

use rampart_intel::rows::{IntelHit, NewIntelHit};
use sqlx::{AssertSqlSafe, Row};
use time::OffsetDateTime;

use crate::{Backend, Store, StoreError, on_pool};

impl Store {
    /// Records what one run of `agent_id` matched; returns how many matches are new.
    pub async fn intel_record_hits(
        &self,
        agent_id: &str,
        run_id: &str,
        at: i64,
        hits: &[NewIntelHit],
    ) -> Result<u64, StoreError> {
        if hits.is_empty() {
            return Ok(0);
        }
        // `count = 1` on insert and `+ 1` on conflict: RETURNING tells which happened.
        const SQL: &str = "INSERT INTO intel_hits (agent_id, indicator_id, observable_kind, observable, context, how, first_seen, last_seen, last_run) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) \
             ON CONFLICT (agent_id, indicator_id, observable) DO UPDATE SET \
             last_seen = excluded.last_seen, last_run = excluded.last_run, context = excluded.context, \
             how = excluded.how, count = intel_hits.count + 1 \
             RETURNING count";
        // What a new match's event says of its indicator: kind, value, and the threat type
        // and family of the most recently fetched record naming it that has one.
        const INDICATOR: &str = "SELECT i.kind, i.value, \
             (SELECT r.threat_type FROM intel_observations o JOIN intel_records r ON r.id = o.record_id \
              WHERE o.indicator_id = i.id AND r.threat_type IS NOT NULL ORDER BY r.last_fetched DESC LIMIT 1) AS threat_type, \
             (SELECT r.family FROM intel_observations o JOIN intel_records r ON r.id = o.record_id \
              WHERE o.indicator_id = i.id AND r.family IS NOT NULL ORDER BY r.last_fetched DESC LIMIT 1) AS family \
             FROM intel_indicators i WHERE i.id = $1";
        let time = OffsetDateTime::from_unix_timestamp(at).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            let mut new = 0u64;
            let mut stream = Vec::new();
            let agent = crate::events::Outbox::agent_ref(&mut *tx, agent_id).await?;
            for h in hits {
                let count: i64 = sqlx::query(SQL)
                    .bind(agent_id)
                    .bind(h.indicator_id)
                    .bind(&h.observable_kind)
                    .bind(&h.observable)
                    .bind(&h.context)
                    .bind(&h.how)
                    .bind(at)
                    .bind(run_id)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get(0)?;
                if count != 1 {
                    continue;
                }
                new += 1;
                // A new match is an event; one seen again is counted, not repeated.
                let (Some(agent), Some(i)) = (
                    agent.as_ref(),
                    sqlx::query(INDICATOR).bind(h.indicator_id).fetch_optional(&mut *tx).await?,
                ) else {
                    continue;
                };
                stream.push(rampart_events::make::intel_hit(
                    crate::events::new_id(),
                    time,
                    agent.clone(),
                    rampart_events::IntelHit {
                        observable_kind: h.observable_kind.clone(),
                        observable: h.observable.clone(),
                        context: h.context.clone(),
                        indicator_kind: crate::intel::kind_of(i.try_get("kind")?)?.as_str().to_owned(),
                        indicator: i.try_get("value")?,
                        how: h.how.clone(),
                        score: h.score,
                        threat_type: i.try_get("threat_type")?,
                        family: i.try_get("family")?,
                        run: run_id.to_owned(),
                    },
                ));
            }
            crate::events::Outbox::append_events(&mut *tx, &stream).await?;
            tx.commit().await?;
            Ok(new)
        })
    }

    /// Recorded matches, most recent first: one agent's or the fleet's, seen at or after
    /// `since`, at most `limit`.
    pub async fn intel_hits(
        &self,
        agent_id: Option<&str>,
        since: i64,
        limit: i64,
    ) -> Result<Vec<IntelHit>, StoreError> {
        let feeds = match self.backend() {
            Backend::Sqlite => {
                "(SELECT group_concat(name, char(10)) FROM (SELECT DISTINCT f.name FROM intel_observations o \
                 JOIN intel_records r ON r.id = o.record_id JOIN intel_feeds f ON f.id = r.feed_id \
                 WHERE o.indicator_id = h.indicator_id ORDER BY f.name))"
            }
            Backend::Postgres => {
                "(SELECT string_agg(DISTINCT f.name, chr(10) ORDER BY f.name) FROM intel_observations o \
                 JOIN intel_records r ON r.id = o.record_id JOIN intel_feeds f ON f.id = r.feed_id \
                 WHERE o.indicator_id = h.indicator_id)"
            }
        };
        let sql = format!(
            "SELECT h.id, h.agent_id, a.hostname, i.kind, i.value, h.observable_kind, h.observable, h.context, h.how, \
             h.first_seen, h.last_seen, h.last_run, h.count, {feeds} AS feeds \
             FROM intel_hits h JOIN agents a ON a.id = h.agent_id JOIN intel_indicators i ON i.id = h.indicator_id \
             WHERE ($1 IS NULL OR h.agent_id = $1) AND h.last_seen >= $2 \
             ORDER BY h.last_seen DESC, h.id DESC LIMIT $3"
        );
        on_pool!(&self.db, p => {
            let rows = sqlx::query(AssertSqlSafe(sql.clone()))
                .bind(agent_id)
                .bind(since)
                .bind(limit)
                .fetch_all(p)
                .await?;
            rows.iter()
                .map(|r| {
                    let feeds: Option<String> = r.try_get("feeds")?;
                    Ok(IntelHit {
                        id: r.try_get("id")?,
                        agent_id: r.try_get("agent_id")?,
                        hostname: r.try_get("hostname")?,
                        indicator_kind: crate::intel::kind_of(r.try_get("kind")?)?,
                        indicator: r.try_get("value")?,
                        observable_kind: r.try_get("observable_kind")?,
                        observable: r.try_get("observable")?,
                        context: r.try_get("context")?,
                        how: r.try_get("how")?,
                        first_seen: r.try_get("first_seen")?,
                        last_seen: r.try_get("last_seen")?,
                        last_run: r.try_get("last_run")?,
                        count: r.try_get("count")?,
                        feeds: feeds
                            .map(|f| f.split('\n').map(str::to_owned).collect())
                            .unwrap_or_default(),
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(StoreError::from)
        })
    }
}
