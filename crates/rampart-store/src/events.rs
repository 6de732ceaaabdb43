//! The event stream's durable outbox (migrations `*_events.sql` say the design).
//!
//! Events are appended by the transactions that make them true ([`append_sqlite`],
//! [`append_postgres`]), each with a delivery row per enabled destination. A dispatcher claims
//! due rows under a lease ([`Store::claim_deliveries`]; on PostgreSQL the claim also skips rows
//! another replica's claim holds locked, so two replicas never take the same row), sends
//! them, and settles them ([`Store::settle_deliveries`]): delivered rows are deleted, failed
//! ones wait for their next attempt, and rows out of attempts stay as dead letters.

use sqlx::Row;
use time::OffsetDateTime;

use crate::{Db, Store, StoreError, on_pool, on_writer};

/// Unix milliseconds: the outbox's times.
pub(crate) fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).unwrap_or(i64::MAX)
}

fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A destination as an operator defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDestination {
    /// Unique name.
    pub name: String,
    /// `webhook`, `syslog`, `splunk_hec`, `kafka`.
    pub kind: String,
    /// The kind's settings, JSON (secrets sealed by the caller).
    pub config: String,
    /// Which events it takes, JSON.
    pub filter: String,
    /// Whether new events are queued for it.
    pub enabled: bool,
    /// Attempts before a delivery becomes a dead letter.
    pub max_attempts: u32,
}

/// A destination with its health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// As defined.
    pub def: NewDestination,
    /// When it was defined and last changed.
    pub created_at: OffsetDateTime,
    /// See `created_at`.
    pub updated_at: OffsetDateTime,
    /// Events it acknowledged, and failed attempts, over its life.
    pub delivered: u64,
    /// See `delivered`.
    pub failed: u64,
    /// Its last acknowledgement and failure.
    pub last_success: Option<OffsetDateTime>,
    /// See `last_success`.
    pub last_failure: Option<OffsetDateTime>,
    /// Why the last attempt failed, cleared by a success.
    pub last_error: Option<String>,
    /// Failed attempts since the last success.
    pub consecutive_failures: u64,
}

/// A destination's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    /// Deliveries waiting (due or backing off).
    pub pending: u64,
    /// Dead letters.
    pub dead: u64,
    /// When the oldest pending event happened.
    pub oldest: Option<OffsetDateTime>,
}

/// A delivery a dispatcher claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The event's position.
    pub seq: i64,
    /// Attempts made before this one.
    pub attempts: u32,
    /// The event's JSON (its `seq` is 0: the reader sets it).
    pub body: String,
}

/// An attempt that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    /// The event.
    pub seq: i64,
    /// Why.
    pub error: String,
    /// When to try again (ignored once the attempts are used up).
    pub retry_at: OffsetDateTime,
}

/// A dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The event's position and JSON.
    pub seq: i64,
    /// See `seq`.
    pub body: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempt's error.
    pub last_error: Option<String>,
}

/// An event as stored, for readers of the stream (live API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its position.
    pub seq: i64,
    /// Its kind and the agent's group, for filtering before parsing.
    pub kind: String,
    /// See `kind`.
    pub group: Option<String>,
    /// Its JSON (`seq` 0).
    pub body: String,
}

/// What an append writes per event.
pub(crate) struct EventRow<'a> {
    id: &'a str,
    at: i64,
    kind: &'static str,
    severity: &'static str,
    agent: Option<&'a str>,
    group: Option<&'a str>,
    body: String,
}

fn rows(events: &[rampart_events::Event]) -> Vec<EventRow<'_>> {
    events
        .iter()
        .map(|e| EventRow {
            id: &e.id,
            at: millis(e.time),
            kind: e.body.kind(),
            severity: e.severity.as_str(),
            agent: e.agent.as_ref().map(|a| a.id.as_str()),
            group: e
                .agent
                .as_ref()
                .map(|a| a.group.as_str())
                .filter(|g| !g.is_empty()),
            body: e.to_json(),
        })
        .collect()
}

/// Appends events inside an open SQLite transaction, queued for every enabled destination.
pub(crate) async fn append_sqlite(
    conn: &mut sqlx::SqliteConnection,
    events: &[rampart_events::Event],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let rows = rows(events);
    let mut first: Option<i64> = None;
    // 7 parameters a row: 100 rows stay far below SQLite's limit.
    for chunk in rows.chunks(100) {
        let mut qb = sqlx::QueryBuilder::new(
            "INSERT INTO events (id, at, kind, severity, agent_id, grp, body) ",
        );
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(r.id)
                .push_bind(r.at)
                .push_bind(r.kind)
                .push_bind(r.severity)
                .push_bind(r.agent)
                .push_bind(r.group)
                .push_bind(&r.body);
        });
        qb.push(" RETURNING seq");
        let seqs: Vec<i64> = qb.build_query_scalar().fetch_all(&mut *conn).await?;
        if let Some(min) = seqs.iter().min() {
            first = Some(first.map_or(*min, |f| f.min(*min)));
        }
    }
    // One writer at a time: every event from `first` on is this transaction's.
    if let Some(first) = first {
        sqlx::query(QUEUE_SQLITE)
            .bind(first)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Taken shared by a transaction appending events, to its commit, on PostgreSQL: it keeps a
/// reader of the stream from passing an event that is not yet visible.
///
/// Readers of the stream (the alert evaluator's cursor, live readers resuming after the last
/// event they saw) ask for `seq > cursor`, so they need every event with a lower position to
/// be visible before one with a higher position is. A sequence does not give that: it hands
/// out numbers when transactions insert, and they commit in another order. A reader that came
/// between the commits of a later and an earlier transaction would move its cursor past the
/// earlier one's events and never see them (an alert never raised or never resolved).
///
/// So a transaction appending events holds this lock shared from its append to its commit,
/// and a reader whose read leaves a hole in the positions ([`gapless`]) takes it exclusively
/// and reads again ([`READ_BARRIER`]): it gets the lock once every append in flight has
/// committed or rolled back, and its read (a statement of its own, so a snapshot taken after)
/// then sees every position handed out so far; positions handed out later are higher.
/// Appending transactions do not wait for each other: an earlier version took the lock
/// exclusively in the appenders, so that positions followed commit order, and every commit
/// with events then waited for the previous one's log flush (about 5 % of PostgreSQL's result
/// ingestion, docs/performance.md). A reader waits at most for the commits in flight, and
/// appenders that come while it waits queue behind it for that long; a read without a hole,
/// the common case, takes no lock. SQLite has one writer at a time and
/// needs none of this. The key is the `events` table's own OID, so stores in different schemas
/// of one database do not wait for each other.
const APPEND_LOCK: &str = "SELECT pg_advisory_xact_lock_shared('events'::regclass::oid::bigint)";

/// [`APPEND_LOCK`]'s key exclusively, in a reader's transaction before it reads the stream.
const READ_BARRIER: &str = "SELECT pg_advisory_xact_lock('events'::regclass::oid::bigint)";

/// Whether `read`, the events after position `after` in position order, leaves no position
/// between them unaccounted for. Then no append in flight holds one of those positions, and
/// the read is final without waiting for anything ([`READ_BARRIER`]). Positions come from a
/// sequence, so holes are rare: an append in flight, one rolled back, events pruned.
fn gapless(after: i64, read: &[StoredEvent]) -> bool {
    read.iter()
        .zip(1..)
        .all(|(e, n)| after.checked_add(n) == Some(e.seq))
}

/// Queues the events from a sequence number on (`$1`) for every enabled destination.
const QUEUE_SQLITE: &str = "INSERT INTO event_deliveries (destination, seq, next_at) \
     SELECT d.name, e.seq, e.at FROM event_destinations d, events e \
     WHERE d.enabled = 1 AND e.seq >= $1";

/// [`append_sqlite`] on result ingestion's own connection (`batch.rs`): a statement prepared
/// once, a row at a time.
pub(crate) fn append_blocking(
    conn: &rusqlite::Connection,
    events: &[rampart_events::Event],
) -> Result<(), StoreError> {
    let mut first: Option<i64> = None;
    let mut insert = conn.prepare_cached(
        "INSERT INTO events (id, at, kind, severity, agent_id, grp, body) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING seq",
    )?;
    for r in rows(events) {
        let seq: i64 = insert.query_row(
            rusqlite::params![r.id, r.at, r.kind, r.severity, r.agent, r.group, r.body],
            |row| row.get(0),
        )?;
        first = Some(first.map_or(seq, |f| f.min(seq)));
    }
    // One writer at a time: every event from `first` on is this transaction's.
    if let Some(first) = first {
        conn.prepare_cached(QUEUE_SQLITE)?.execute([first])?;
    }
    Ok(())
}

/// [`append_sqlite`] for PostgreSQL: three statements whatever the number of events. Call it
/// last in its transaction, just before the commit: from here to the commit the transaction
/// holds [`APPEND_LOCK`], which a reader of the stream waits for ([`READ_BARRIER`]).
pub(crate) async fn append_postgres(
    conn: &mut sqlx::PgConnection,
    events: &[rampart_events::Event],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    sqlx::query(APPEND_LOCK).execute(&mut *conn).await?;
    let rows = rows(events);
    let seqs: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO events (id, at, kind, severity, agent_id, grp, body) \
         SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) \
         RETURNING seq",
    )
    .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.at).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.kind).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.severity).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.agent).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.group).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.body.as_str()).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO event_deliveries (destination, seq, next_at) \
         SELECT d.name, e.seq, e.at FROM event_destinations d, events e \
         WHERE d.enabled = 1 AND e.seq = ANY($1)",
    )
    .bind(&seqs)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A [`StoredEvent`] from a row of either backend.
macro_rules! stored_event {
    ($r:expr) => {{
        let r = $r;
        Ok::<StoredEvent, StoreError>(StoredEvent {
            seq: r.try_get("seq")?,
            kind: r.try_get("kind")?,
            group: r.try_get("grp")?,
            body: r.try_get("body")?,
        })
    }};
}

macro_rules! destination_from_row {
    ($r:expr) => {{
        let r = $r;
        Ok::<Destination, StoreError>(Destination {
            def: NewDestination {
                name: r.try_get("name")?,
                kind: r.try_get("kind")?,
                config: r.try_get("config")?,
                filter: r.try_get("filter")?,
                enabled: r.try_get::<i64, _>("enabled")? != 0,
                max_attempts: u32::try_from(r.try_get::<i64, _>("max_attempts")?).unwrap_or(1),
            },
            created_at: from_millis(r.try_get("created_at")?),
            updated_at: from_millis(r.try_get("updated_at")?),
            delivered: count(r.try_get("delivered")?),
            failed: count(r.try_get("failed")?),
            last_success: r
                .try_get::<Option<i64>, _>("last_success")?
                .map(from_millis),
            last_failure: r
                .try_get::<Option<i64>, _>("last_failure")?
                .map(from_millis),
            last_error: r.try_get("last_error")?,
            consecutive_failures: count(r.try_get("consecutive_failures")?),
        })
    }};
}

const DESTINATION_COLUMNS: &str = "name, kind, config, filter, enabled, max_attempts, created_at, \
     updated_at, delivered, failed, last_success, last_failure, last_error, consecutive_failures";

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Store {
    /// Defines a destination or replaces its definition (its health and queue stay). Events
    /// are queued for it from now on; earlier ones are not.
    pub async fn put_destination(
        &self,
        d: &NewDestination,
        now: OffsetDateTime,
    ) -> Result<Destination, StoreError> {
        const SQL: &str = "INSERT INTO event_destinations \
             (name, kind, config, filter, enabled, max_attempts, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (name) DO UPDATE SET \
             kind = excluded.kind, config = excluded.config, filter = excluded.filter, \
             enabled = excluded.enabled, max_attempts = excluded.max_attempts, \
             updated_at = excluded.updated_at";
        on_pool!(&self.db, p => {
            sqlx::query(SQL)
                .bind(&d.name)
                .bind(&d.kind)
                .bind(&d.config)
                .bind(&d.filter)
                .bind(i64::from(d.enabled))
                .bind(i64::from(d.max_attempts.max(1)))
                .bind(millis(now))
                .execute(p)
                .await?;
        });
        self.destination(&d.name)
            .await?
            .ok_or_else(|| StoreError::corrupt("event_destinations", "row vanished after upsert"))
    }

    /// One destination.
    pub async fn destination(&self, name: &str) -> Result<Option<Destination>, StoreError> {
        let sql = format!("SELECT {DESTINATION_COLUMNS} FROM event_destinations WHERE name = $1");
        let d = on_pool!(&self.db, p => {
            match sqlx::query(sqlx::AssertSqlSafe(sql)).bind(name).fetch_optional(p).await? {
                Some(r) => Some(destination_from_row!(&r)?),
                None => None,
            }
        });
        Ok(d)
    }

    /// Every destination, by name.
    pub async fn destinations(&self) -> Result<Vec<Destination>, StoreError> {
        let sql = format!("SELECT {DESTINATION_COLUMNS} FROM event_destinations ORDER BY name");
        let all = on_pool!(&self.db, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(p).await?;
            rows.iter().map(|r| destination_from_row!(r)).collect::<Result<Vec<_>, _>>()?
        });
        Ok(all)
    }

    /// Removes a destination and its queue, dead letters included. False when unknown.
    pub async fn delete_destination(&self, name: &str) -> Result<bool, StoreError> {
        let n = on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            sqlx::query("DELETE FROM event_deliveries WHERE destination = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            let n = sqlx::query("DELETE FROM event_destinations WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            n
        });
        Ok(n > 0)
    }

    /// Each destination's queue, by name.
    pub async fn backlogs(&self) -> Result<Vec<(String, Backlog)>, StoreError> {
        const SQL: &str = "SELECT d.destination, \
             CAST(SUM(CASE WHEN d.dead = 0 THEN 1 ELSE 0 END) AS BIGINT) AS pending, \
             CAST(SUM(d.dead) AS BIGINT) AS dead, \
             MIN(CASE WHEN d.dead = 0 THEN e.at END) AS oldest \
             FROM event_deliveries d JOIN events e ON e.seq = d.seq \
             GROUP BY d.destination ORDER BY d.destination";
        let rows = on_pool!(&self.db, p => {
            let rows = sqlx::query(SQL).fetch_all(p).await?;
            rows.iter().map(|r| {
                Ok::<_, StoreError>((
                    r.try_get::<String, _>("destination")?,
                    Backlog {
                        pending: count(r.try_get("pending")?),
                        dead: count(r.try_get("dead")?),
                        oldest: r.try_get::<Option<i64>, _>("oldest")?.map(from_millis),
                    },
                ))
            }).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// Claims up to `limit` due deliveries of a destination, oldest first, for `lease`: nobody
    /// else claims them until it ends (a dispatcher that dies leaves them to the next claim
    /// after it). On PostgreSQL rows another transaction is claiming are skipped, not waited
    /// for.
    pub async fn claim_deliveries(
        &self,
        destination: &str,
        now: OffsetDateTime,
        lease: time::Duration,
        limit: u32,
    ) -> Result<Vec<Claimed>, StoreError> {
        let (now, until) = (millis(now), millis(now + lease));
        let claimed: Vec<(i64, i64, String)> = match &self.db {
            crate::Db::Postgres(p) => {
                const SQL: &str = "WITH c AS ( \
                     SELECT destination, seq FROM event_deliveries \
                     WHERE destination = $1 AND dead = 0 AND next_at <= $2 AND lease_until <= $2 \
                     ORDER BY seq LIMIT $4 FOR UPDATE SKIP LOCKED), \
                     u AS (UPDATE event_deliveries d SET lease_until = $3 FROM c \
                     WHERE d.destination = c.destination AND d.seq = c.seq RETURNING d.seq, d.attempts) \
                     SELECT u.seq, u.attempts, e.body FROM u JOIN events e ON e.seq = u.seq ORDER BY u.seq";
                let rows = sqlx::query(SQL)
                    .bind(destination)
                    .bind(now)
                    .bind(until)
                    .bind(i64::from(limit))
                    .fetch_all(p)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok::<_, StoreError>((
                            r.try_get("seq")?,
                            r.try_get("attempts")?,
                            r.try_get("body")?,
                        ))
                    })
                    .collect::<Result<_, _>>()?
            }
            crate::Db::Sqlite(p) => {
                const CLAIM: &str = "UPDATE event_deliveries SET lease_until = $3 \
                     WHERE destination = $1 AND seq IN ( \
                     SELECT seq FROM event_deliveries \
                     WHERE destination = $1 AND dead = 0 AND next_at <= $2 AND lease_until <= $2 \
                     ORDER BY seq LIMIT $4) RETURNING seq, attempts";
                let _turn = self.write_turn().await;
                let mut tx = self.sqlite_writer(p).begin_with("BEGIN IMMEDIATE").await?;
                let rows = sqlx::query(CLAIM)
                    .bind(destination)
                    .bind(now)
                    .bind(until)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *tx)
                    .await?;
                let mut attempts = std::collections::HashMap::with_capacity(rows.len());
                for r in &rows {
                    attempts.insert(
                        r.try_get::<i64, _>("seq")?,
                        r.try_get::<i64, _>("attempts")?,
                    );
                }
                // The claimed events' bodies in one read, while the write lock is held.
                let mut out = Vec::with_capacity(rows.len());
                if !attempts.is_empty() {
                    let mut qb =
                        sqlx::QueryBuilder::new("SELECT seq, body FROM events WHERE seq IN (");
                    let mut list = qb.separated(", ");
                    for seq in attempts.keys() {
                        list.push_bind(*seq);
                    }
                    qb.push(")");
                    for r in qb.build().fetch_all(&mut *tx).await? {
                        let seq: i64 = r.try_get("seq")?;
                        let tries = attempts.get(&seq).copied().unwrap_or(0);
                        out.push((seq, tries, r.try_get("body")?));
                    }
                }
                tx.commit().await?;
                out.sort_by_key(|c| c.0);
                out
            }
        };
        Ok(claimed
            .into_iter()
            .map(|(seq, attempts, body)| Claimed {
                seq,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                body,
            })
            .collect())
    }

    /// Settles claimed deliveries: the delivered ones leave the queue; each failed one waits
    /// until its `retry_at`, or becomes a dead letter when it used the destination's last
    /// attempt. The destination's health follows.
    pub async fn settle_deliveries(
        &self,
        destination: &str,
        delivered: &[i64],
        failed: &[Failed],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if delivered.is_empty() && failed.is_empty() {
            return Ok(());
        }
        let now = millis(now);
        // Delivered rows leave in one statement.
        const DELIVERED: &str = "DELETE FROM event_deliveries WHERE destination = ";
        const FAILED: &str = "UPDATE event_deliveries SET attempts = attempts + 1, next_at = $3, \
             lease_until = 0, last_error = $4, \
             dead = CASE WHEN attempts + 1 >= (SELECT max_attempts FROM event_destinations WHERE name = $1) \
                    THEN 1 ELSE 0 END \
             WHERE destination = $1 AND seq = $2";
        const OK: &str = "UPDATE event_destinations SET delivered = delivered + $2, \
             last_success = $3, last_error = NULL, consecutive_failures = 0 WHERE name = $1";
        const BAD: &str = "UPDATE event_destinations SET failed = failed + $2, last_failure = $3, \
             last_error = $4, consecutive_failures = consecutive_failures + $2 WHERE name = $1";
        on_writer!(self, p => {
            let mut tx = p.begin().await?;
            if !delivered.is_empty() {
                let mut qb = sqlx::QueryBuilder::new(DELIVERED);
                qb.push_bind(destination.to_owned()).push(" AND seq IN (");
                let mut list = qb.separated(", ");
                for seq in delivered {
                    list.push_bind(*seq);
                }
                qb.push(")");
                qb.build().execute(&mut *tx).await?;
            }
            for f in failed {
                sqlx::query(FAILED)
                    .bind(destination)
                    .bind(f.seq)
                    .bind(millis(f.retry_at))
                    .bind(&f.error)
                    .execute(&mut *tx)
                    .await?;
            }
            if !delivered.is_empty() {
                sqlx::query(OK)
                    .bind(destination)
                    .bind(i64::try_from(delivered.len()).unwrap_or(i64::MAX))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(last) = failed.last() {
                sqlx::query(BAD)
                    .bind(destination)
                    .bind(i64::try_from(failed.len()).unwrap_or(i64::MAX))
                    .bind(now)
                    .bind(&last.error)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// A destination's dead letters, oldest first.
    pub async fn dead_letters(
        &self,
        destination: &str,
        limit: u32,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        const SQL: &str = "SELECT d.seq, d.attempts, d.last_error, e.body \
             FROM event_deliveries d JOIN events e ON e.seq = d.seq \
             WHERE d.destination = $1 AND d.dead = 1 ORDER BY d.seq LIMIT $2";
        let rows = on_pool!(&self.db, p => {
            let rows = sqlx::query(SQL).bind(destination).bind(i64::from(limit)).fetch_all(p).await?;
            rows.iter().map(|r| Ok::<_, StoreError>(DeadLetter {
                seq: r.try_get("seq")?,
                attempts: u32::try_from(r.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
                last_error: r.try_get("last_error")?,
                body: r.try_get("body")?,
            })).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// Puts a destination's dead letters back in its queue with fresh attempts (`retry`), or
    /// drops them; all of them, or those listed. How many.
    pub async fn resolve_dead_letters(
        &self,
        destination: &str,
        only: Option<&[i64]>,
        retry: bool,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let head = if retry {
            "UPDATE event_deliveries SET dead = 0, attempts = 0, lease_until = 0, next_at = "
        } else {
            "DELETE FROM event_deliveries WHERE 1 = "
        };
        let n = on_pool!(&self.db, p => {
            let mut qb = sqlx::QueryBuilder::new(head);
            if retry {
                qb.push_bind(millis(now)).push(" WHERE 1 = 1");
            } else {
                qb.push("1");
            }
            qb.push(" AND dead = 1 AND destination = ").push_bind(destination.to_owned());
            if let Some(seqs) = only {
                if seqs.is_empty() {
                    qb.push(" AND 1 = 0");
                } else {
                    qb.push(" AND seq IN (");
                    let mut list = qb.separated(", ");
                    for s in seqs {
                        list.push_bind(*s);
                    }
                    qb.push(")");
                }
            }
            qb.build().execute(p).await?.rows_affected()
        });
        Ok(n)
    }

    /// Events after `after`, oldest first, at most `limit`: what a live reader resuming from
    /// the last event it saw is sent. No event below the last one returned can appear later:
    /// on PostgreSQL, when the positions read leave a hole (an append in flight, or one rolled
    /// back), the read is made again after the appends in flight ([`READ_BARRIER`]).
    pub async fn events_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        const SQL: &str =
            "SELECT seq, kind, grp, body FROM events WHERE seq > $1 ORDER BY seq LIMIT $2";
        let limit = i64::from(limit);
        // The read, through any executor of either backend.
        macro_rules! read {
            ($executor:expr) => {
                sqlx::query(SQL)
                    .bind(after)
                    .bind(limit)
                    .fetch_all($executor)
                    .await?
                    .iter()
                    .map(|r| stored_event!(r))
                    .collect::<Result<Vec<_>, _>>()?
            };
        }
        let rows = match &self.db {
            Db::Sqlite(p) => read!(p),
            Db::Postgres(p) => {
                let first = read!(p);
                if gapless(after, &first) {
                    first
                } else {
                    let mut tx = p.begin().await?;
                    sqlx::query(READ_BARRIER).execute(&mut *tx).await?;
                    let again = read!(&mut *tx);
                    tx.commit().await?;
                    again
                }
            }
        };
        Ok(rows)
    }

    /// Appends events in a transaction of their own, queued for every enabled destination:
    /// for events that report nothing else the store writes (an import, a benchmark's load).
    pub async fn append_events(&self, events: &[rampart_events::Event]) -> Result<(), StoreError> {
        on_writer!(self, p => {
            let mut tx = p.begin().await?;
            Outbox::append_events(&mut *tx, events).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// The position of the latest event written (0 when none is kept): where a live reader
    /// that wants only what comes next starts. (On PostgreSQL an append still in flight may
    /// hold a lower one; its event was made before the reader came, and is not shown to it.)
    pub async fn latest_event_seq(&self) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COALESCE(MAX(seq), 0) AS seq FROM events";
        let seq =
            on_pool!(&self.db, p => sqlx::query(SQL).fetch_one(p).await?.try_get::<i64, _>("seq")?);
        Ok(seq)
    }

    /// Deletes events older than `before` that no destination still has queued (dead letters
    /// keep theirs). How many.
    pub async fn prune_events(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        const SQL: &str = "DELETE FROM events WHERE at < $1 \
             AND NOT EXISTS (SELECT 1 FROM event_deliveries d WHERE d.seq = events.seq)";
        let n = on_writer!(self, p => sqlx::query(SQL).bind(millis(before)).execute(p).await?.rows_affected());
        Ok(n)
    }

    /// Announces the agents (not revoked) silent since before `offline_before` whose silence is
    /// not announced yet: one `agent.offline` event each, written with the mark in one
    /// transaction, so each spell of silence is announced once (an agent that comes back and
    /// falls silent again is announced again). On PostgreSQL replicas sweeping at once skip
    /// each other's rows. At most 1,000 a call; how many.
    pub async fn announce_offline(
        &self,
        now: OffsetDateTime,
        offline_before: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        const PICK: &str = "SELECT a.id, a.hostname, a.grp, s.last_seen \
             FROM agent_seen s JOIN agents a ON a.id = s.agent_id \
             WHERE a.status <> 'revoked' AND s.last_seen < $1 \
             AND (s.offline_announced IS NULL OR s.offline_announced < s.last_seen) \
             ORDER BY s.agent_id LIMIT 1000";
        const MARK: &str = "UPDATE agent_seen SET offline_announced = $2 WHERE agent_id = $1";
        let before = crate::secs(offline_before);
        let marked = crate::secs(now);
        let n = on_writer!(self, p => {
            let mut tx = match self.backend() {
                crate::Backend::Sqlite => p.begin_with("BEGIN IMMEDIATE").await?,
                crate::Backend::Postgres => p.begin().await?,
            };
            let sql = match self.backend() {
                crate::Backend::Sqlite => PICK.to_owned(),
                crate::Backend::Postgres => format!("{PICK} FOR NO KEY UPDATE OF s SKIP LOCKED"),
            };
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(before).fetch_all(&mut *tx).await?;
            let mut stream = Vec::with_capacity(rows.len());
            for r in &rows {
                let id: String = r.try_get("id")?;
                sqlx::query(MARK).bind(&id).bind(marked).execute(&mut *tx).await?;
                let agent = crate::tallies::agent_ref(&id, r)?;
                let last_seen = crate::from_secs(r.try_get("last_seen")?);
                stream.push(rampart_events::make::agent_offline(new_id(), now, agent, last_seen));
            }
            Outbox::append_events(&mut *tx, &stream).await?;
            tx.commit().await?;
            rows.len()
        });
        Ok(n as u64)
    }
}

/// A new event id: UUIDv7, so ids sort by creation time.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// What the transactions that make events true need from their connection, on either backend.
pub(crate) trait Outbox {
    /// Appends events, queued for every enabled destination.
    async fn append_events(&mut self, events: &[rampart_events::Event]) -> Result<(), StoreError>;
    /// The agent an event concerns, as stored now (`None` when unknown).
    async fn agent_ref(&mut self, id: &str)
    -> Result<Option<rampart_events::AgentRef>, StoreError>;
    /// The agents many events concern, as stored now, in one statement (unknown ids absent).
    async fn agent_refs(&mut self, ids: &[&str]) -> Result<crate::tallies::Agents, StoreError>;
}

const AGENT_REF: &str = "SELECT hostname, grp FROM agents WHERE id = $1";

impl Outbox for sqlx::SqliteConnection {
    async fn append_events(&mut self, events: &[rampart_events::Event]) -> Result<(), StoreError> {
        append_sqlite(self, events).await
    }

    async fn agent_ref(
        &mut self,
        id: &str,
    ) -> Result<Option<rampart_events::AgentRef>, StoreError> {
        let row = sqlx::query(AGENT_REF)
            .bind(id)
            .fetch_optional(&mut *self)
            .await?;
        row.map(|r| crate::tallies::agent_ref(id, &r)).transpose()
    }

    async fn agent_refs(&mut self, ids: &[&str]) -> Result<crate::tallies::Agents, StoreError> {
        let rows = sqlx::query(
            "SELECT id, cohort_id, hostname, grp FROM agents WHERE id IN (SELECT value FROM json_each($1))",
        )
        .bind(serde_json::to_string(ids).map_err(|e| StoreError::corrupt("agent ids", e))?)
        .fetch_all(&mut *self)
        .await?;
        // The batch's own reading of agents (tallies), its cohorts unused here.
        Ok(crate::tallies::agents_of(&rows)?.1)
    }
}

impl Outbox for sqlx::PgConnection {
    async fn append_events(&mut self, events: &[rampart_events::Event]) -> Result<(), StoreError> {
        append_postgres(self, events).await
    }

    async fn agent_ref(
        &mut self,
        id: &str,
    ) -> Result<Option<rampart_events::AgentRef>, StoreError> {
        let row = sqlx::query(AGENT_REF)
            .bind(id)
            .fetch_optional(&mut *self)
            .await?;
        row.map(|r| crate::tallies::agent_ref(id, &r)).transpose()
    }

    /// Planned at each call (`persistent(false)`: an unnamed statement), not once per
    /// connection: audit appends call this from the first enrolment on, and a plan kept from
    /// then, made for a table of a few rows, read all of `agents` sequentially for every later
    /// batch (10 ms a call at 10,000 agents, nearly a fifth of PostgreSQL's time in the fleet
    /// benchmark's ingestion) until something made PostgreSQL plan it again.
    async fn agent_refs(&mut self, ids: &[&str]) -> Result<crate::tallies::Agents, StoreError> {
        let rows =
            sqlx::query("SELECT id, cohort_id, hostname, grp FROM agents WHERE id = ANY($1)")
                .bind(ids)
                .persistent(false)
                .fetch_all(&mut *self)
                .await?;
        // The batch's own reading of agents (tallies), its cohorts unused here.
        Ok(crate::tallies::agents_of(&rows)?.1)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rampart_events::AgentRef;
    use time::OffsetDateTime;

    use super::{StoredEvent, append_postgres, gapless};
    use crate::Db;

    fn offline(agent: &str) -> rampart_events::Event {
        let t = OffsetDateTime::from_unix_timestamp(1_790_000_000).expect("a valid time");
        let agent = AgentRef {
            id: agent.into(),
            hostname: format!("host-{agent}"),
            group: "web".into(),
        };
        rampart_events::make::agent_offline(super::new_id(), t, agent, t)
    }

    #[test]
    fn a_read_is_final_without_waiting_only_when_its_positions_follow_the_cursor_one_by_one() {
        let read = |seqs: &[i64]| -> Vec<StoredEvent> {
            seqs.iter()
                .map(|&seq| StoredEvent {
                    seq,
                    kind: "agent.offline".into(),
                    group: None,
                    body: "{}".into(),
                })
                .collect()
        };
        assert!(gapless(5, &read(&[])));
        assert!(gapless(5, &read(&[6, 7, 8])));
        assert!(gapless(0, &read(&[1])));
        assert!(!gapless(5, &read(&[7, 8])), "a hole before the first");
        assert!(!gapless(5, &read(&[6, 8])), "a hole between two");
        assert!(
            !gapless(0, &read(&[2])),
            "events pruned before the first kept"
        );
        assert!(
            !gapless(i64::MAX, &read(&[i64::MAX])),
            "no position past the last"
        );
    }

    /// Two transactions append events; the one that took its position first commits last. A
    /// reader (the alert evaluator, a live reader) that reads between the two commits and
    /// resumes after the last event it saw must still get both: had it read the later position
    /// while the earlier one was not yet visible, its cursor would have passed the earlier one
    /// for good. The reader waits out the append in flight instead; the appends themselves do
    /// not wait for each other.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_readers_resuming_after_a_position_miss_no_event() {
        let Some(t) = crate::testing::postgres().await else {
            return;
        };
        let Db::Postgres(pool) = &t.store.db else {
            panic!("a PostgreSQL store");
        };
        let mut slow = pool.begin().await.expect("begin");
        append_postgres(&mut slow, &[offline("a1")])
            .await
            .expect("append in the open transaction");

        let fast = tokio::spawn({
            let pool = pool.clone();
            async move {
                let mut tx = pool.begin().await?;
                append_postgres(&mut tx, &[offline("a2")]).await?;
                tx.commit().await?;
                Ok::<(), crate::StoreError>(())
            }
        });
        tokio::time::timeout(Duration::from_secs(30), fast)
            .await
            .expect("the second append commits while the first is in flight")
            .expect("join")
            .expect("the second transaction");

        let reader = tokio::spawn({
            let store = t.store.clone();
            async move { store.events_after(0, 100).await }
        });
        // Until the reader waits for the stream's lock (the append in flight) or has read.
        let mut waited = Duration::ZERO;
        loop {
            // The key of a one-number advisory lock whose high half is zero: the OID in
            // `objid`, 1 in `objsubid`.
            let waiting: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                 AND classid = 0 AND objid = 'events'::regclass::oid AND objsubid = 1",
            )
            .fetch_one(pool)
            .await
            .expect("pg_locks");
            if reader.is_finished() || waiting > 0 {
                break;
            }
            assert!(
                waited < Duration::from_secs(30),
                "the reader neither read nor waited"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
            waited += Duration::from_millis(10);
        }
        slow.commit().await.expect("commit the first transaction");
        let first_read = reader.await.expect("join").expect("read");
        let cursor = first_read.last().map_or(0, |e| e.seq);
        let second_read = t.store.events_after(cursor, 100).await.expect("read");

        let agents: Vec<String> = first_read
            .iter()
            .chain(&second_read)
            .map(|e| {
                let event: rampart_events::Event = serde_json::from_str(&e.body).expect("an event");
                event.agent.expect("an agent").id
            })
            .collect();
        assert_eq!(
            agents,
            ["a1", "a2"],
            "read {first_read:?} then, after seq {cursor}, {second_read:?}"
        );
        t.finish().await;
    }
}
