//! The audit log's rows: entries, the tree's stored subtrees, its head and its checkpoints.
//!
//! Every append and every checkpoint first takes the one `audit_head` row with an
//! `UPDATE … RETURNING`: on PostgreSQL that row lock orders all replicas' appends, on SQLite it
//! is the write lock. Under it the next indices are assigned, the new subtrees computed from
//! the head's frontier and everything written in the same transaction, so the log cannot fork
//! and a crash leaves either the whole batch or none of it. Entry and node primary keys refuse
//! a second row at an index even if that ordering were ever bypassed.

use std::collections::HashMap;

use rampart_audit::tree::{self, NodeSource};
use rampart_audit::{Checkpoint, Entry, Event, Frontier, Hash, LogKey, NodeId, Outcome};
use sqlx::Row;
use time::OffsetDateTime;

use crate::{Store, StoreError, from_secs, on_pool, on_reader, on_writer, secs};

/// An entry as stored: its index and the exact text hashed into the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Leaf index.
    pub index: u64,
    /// The leaf's text.
    pub body: String,
}

/// A signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Entries it covers.
    pub size: u64,
    /// When it was signed.
    pub created_at: OffsetDateTime,
    /// The signed note.
    pub note: String,
}

/// A search of the log. Every filter given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Exactly this actor.
    pub actor: Option<String>,
    /// This action, or every action starting with it when it ends in `*`.
    pub action: Option<String>,
    /// Exactly this target.
    pub target: Option<String>,
    /// This outcome.
    pub outcome: Option<Outcome>,
    /// At or after.
    pub since: Option<OffsetDateTime>,
    /// Before.
    pub until: Option<OffsetDateTime>,
    /// Only entries with a smaller index (paging newest first).
    pub before: Option<u64>,
    /// At most this many.
    pub limit: u32,
}

/// An [`AuditRow`] from a row of either backend (a macro: the row types differ).
macro_rules! entry_row {
    ($r:expr) => {{
        let r = $r;
        let seq: i64 = r.try_get("seq")?;
        Ok::<AuditRow, StoreError>(AuditRow {
            index: u64::try_from(seq).map_err(|e| StoreError::corrupt("audit entry index", e))?,
            body: r.try_get("body")?,
        })
    }};
}

/// A [`StoredCheckpoint`] from a row of either backend.
macro_rules! checkpoint_row {
    ($r:expr) => {{
        let r = $r;
        let size: i64 = r.try_get("size")?;
        Ok::<StoredCheckpoint, StoreError>(StoredCheckpoint {
            size: u64::try_from(size)
                .map_err(|e| StoreError::corrupt("audit checkpoint size", e))?,
            created_at: from_secs(r.try_get("created_at")?),
            note: r.try_get("note")?,
        })
    }};
}

/// Takes the head row first in every write: on PostgreSQL its row lock orders all replicas'
/// appends and checkpoints, on SQLite it is the write lock.
const HEAD_LOCK: &str = "UPDATE audit_head SET size = size WHERE id = 1 RETURNING size, frontier";

/// Locks the head in transaction `$tx` (see [`HEAD_LOCK`]); the tree's frontier as it is.
macro_rules! locked_head {
    ($tx:expr) => {{
        let head = sqlx::query(HEAD_LOCK).fetch_one(&mut *$tx).await?;
        let size: i64 = head.try_get("size")?;
        let size = u64::try_from(size).map_err(|e| StoreError::corrupt("audit head size", e))?;
        let bytes: Vec<u8> = head.try_get("frontier")?;
        Frontier::from_bytes(size, &bytes)
            .ok_or_else(|| StoreError::corrupt("audit head", "frontier does not fit the size"))?
    }};
}

/// Batches larger than this are written in several statements.
const CHUNK: usize = 256;

/// Index as the databases' signed 64-bit integer.
fn db_index(i: u64) -> Result<i64, StoreError> {
    i64::try_from(i).map_err(|_| StoreError::corrupt("audit index", "beyond 2^63"))
}

fn hash_of(bytes: Vec<u8>, what: &'static str) -> Result<Hash, StoreError> {
    bytes
        .try_into()
        .map_err(|_| StoreError::corrupt(what, "not 32 bytes"))
}

fn millis(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Nodes read for one computation; a missing one is a damaged store.
struct Fetched(HashMap<NodeId, Hash>);

impl NodeSource for Fetched {
    fn node(&mut self, id: NodeId) -> Option<Hash> {
        self.0.get(&id).copied()
    }
}

fn tree_error(e: tree::TreeError) -> StoreError {
    match e {
        tree::TreeError::OutOfRange => {
            StoreError::not_found("audit entry or tree size", "out of range")
        }
        tree::TreeError::Missing(id) => StoreError::corrupt(
            "audit tree",
            format!("subtree {}/{} is missing", id.level, id.index),
        ),
    }
}

/// A batch of entries worked out under the locked head, ready to be written by either
/// backend's statements: what [`append_entries!`] and [`append_signed_blocking`] share.
struct Planned<'e> {
    /// The first new entry's index.
    first: u64,
    /// When they were appended, in milliseconds (the search column).
    at_ms: i64,
    /// Per entry: its index, the exact text hashed into the tree, its event.
    entries: Vec<(i64, String, &'e Event)>,
    /// The tree's new stored subtrees: level, index, hash.
    nodes: Vec<(i16, i64, Vec<u8>)>,
}

/// Assigns `events` stamped `now` the next indexes after `frontier`'s, which then covers them.
fn plan<'e>(
    frontier: &mut Frontier,
    events: &'e [Event],
    now: OffsetDateTime,
) -> Result<Planned<'e>, StoreError> {
    let first = frontier.size();
    let mut entries = Vec::with_capacity(events.len());
    let mut nodes = Vec::with_capacity(events.len() * 2);
    for event in events {
        let entry = Entry {
            index: frontier.size(),
            time: now,
            event: event.clone(),
        };
        let body = entry.to_leaf();
        for (id, hash) in frontier.push(rampart_audit::merkle::leaf_hash(body.as_bytes())) {
            nodes.push((i16::from(id.level), db_index(id.index)?, hash.to_vec()));
        }
        entries.push((db_index(entry.index)?, body, event));
    }
    Ok(Planned {
        first,
        at_ms: millis(now),
        entries,
        nodes,
    })
}

/// The agents `events` name as their targets (`agent:ID`), sorted, each once: every entry is
/// also an event of the stream, which carries the agent as stored.
fn named_agents(events: &[Event]) -> Vec<&str> {
    let mut named: Vec<&str> = events
        .iter()
        .filter_map(|e| e.target.strip_prefix("agent:"))
        .collect();
    named.sort_unstable();
    named.dedup();
    named
}

/// The stream's events for entries `first..` holding `events`, stamped `now`.
fn stream_of(
    first: u64,
    events: &[Event],
    now: OffsetDateTime,
    agents: &crate::tallies::Agents,
) -> Vec<rampart_events::Event> {
    (first..)
        .zip(events)
        .map(|(index, event)| {
            let agent = event
                .target
                .strip_prefix("agent:")
                .and_then(|id| agents.get(id))
                .cloned();
            let entry = Entry {
                index,
                time: now,
                event: event.clone(),
            };
            rampart_events::make::from_audit(crate::events::new_id(), &entry, agent)
        })
        .collect()
}

/// Appends `$events` stamped `$now` in transaction `$tx`, whose head `$frontier` was locked
/// with [`locked_head!`]: the entries, the tree's new subtrees and the head. Evaluates to the
/// first entry's index and every entry's event of the stream, which the caller appends in the
/// same transaction, last before its commit (see `events::append_postgres`); `$frontier` then
/// covers them all.
macro_rules! append_entries {
    ($tx:expr, $frontier:expr, $events:expr, $now:expr) => {{
        const HEAD: &str = "UPDATE audit_head SET size = $1, frontier = $2 WHERE id = 1";
        let (events, now): (&[Event], OffsetDateTime) = ($events, $now);
        let planned = plan(&mut $frontier, events, now)?;
        for chunk in planned.entries.chunks(CHUNK) {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO audit_entries (seq, at_ms, actor, action, target, outcome, body) ",
            );
            qb.push_values(chunk, |mut b, (seq, body, event)| {
                b.push_bind(*seq)
                    .push_bind(planned.at_ms)
                    .push_bind(&event.actor)
                    .push_bind(&event.action)
                    .push_bind(&event.target)
                    .push_bind(event.outcome.as_str())
                    .push_bind(body);
            });
            qb.build().execute(&mut *$tx).await?;
        }
        for chunk in planned.nodes.chunks(CHUNK) {
            let mut qb = sqlx::QueryBuilder::new("INSERT INTO audit_nodes (level, idx, hash) ");
            qb.push_values(chunk, |mut b, (level, idx, hash)| {
                b.push_bind(*level).push_bind(*idx).push_bind(hash);
            });
            qb.build().execute(&mut *$tx).await?;
        }
        sqlx::query(HEAD)
            .bind(db_index($frontier.size())?)
            .bind($frontier.to_bytes())
            .execute(&mut *$tx)
            .await?;
        // Every entry is also an event of the stream, in the same transaction: an entry is
        // never committed without its event, nor an event without its entry. The agents the
        // events name are read in one statement (a batch of attestations names one per entry).
        let named = named_agents(events);
        let agents = if named.is_empty() {
            crate::tallies::Agents::new()
        } else {
            crate::events::Outbox::agent_refs(&mut *$tx, &named).await?
        };
        (
            planned.first,
            stream_of(planned.first, events, now, &agents),
        )
    }};
}

/// The checkpoint to sign of the log as `frontier` has it, when that is at least `min_new`
/// entries (at least one) past `last` (the latest checkpoint's size and time); `None` when
/// there is nothing to sign. Its time never goes back from the previous checkpoint's,
/// whichever replica's clock signed that.
fn checkpoint_due(
    frontier: &Frontier,
    key: &LogKey,
    now: OffsetDateTime,
    min_new: u64,
    last: Option<(i64, i64)>,
) -> Result<Option<StoredCheckpoint>, StoreError> {
    let (last_size, last_at) = last.unwrap_or((0, 0));
    let last_size = u64::try_from(last_size).unwrap_or(0);
    let size = frontier.size();
    if size <= last_size || size - last_size < min_new.max(1) {
        return Ok(None);
    }
    let at = secs(now).max(last_at);
    let checkpoint = Checkpoint {
        origin: key.origin().to_owned(),
        size,
        root: frontier.root(),
        time: from_secs(at),
    };
    let note = key
        .sign(&checkpoint)
        .map_err(|e| StoreError::corrupt("audit log key", e))?;
    Ok(Some(StoredCheckpoint {
        size,
        created_at: from_secs(at),
        note,
    }))
}

const LAST_CHECKPOINT: &str =
    "SELECT size, created_at FROM audit_checkpoints ORDER BY size DESC LIMIT 1";
const INSERT_CHECKPOINT: &str =
    "INSERT INTO audit_checkpoints (size, created_at, note) VALUES ($1, $2, $3)";

/// Signs and stores, in transaction `$tx` whose head `$frontier` was locked, a checkpoint of
/// the log as `$frontier` has it ([`checkpoint_due`]). Evaluates to it, or `None` when there
/// was nothing to sign.
macro_rules! sign_checkpoint {
    ($tx:expr, $frontier:expr, $key:expr, $now:expr, $min_new:expr) => {{
        let last = match sqlx::query(LAST_CHECKPOINT)
            .fetch_optional(&mut *$tx)
            .await?
        {
            Some(r) => Some((
                r.try_get::<i64, _>("size")?,
                r.try_get::<i64, _>("created_at")?,
            )),
            None => None,
        };
        let signed = checkpoint_due(&$frontier, $key, $now, $min_new, last)?;
        if let Some(c) = &signed {
            sqlx::query(INSERT_CHECKPOINT)
                .bind(db_index(c.size)?)
                .bind(secs(c.created_at))
                .bind(&c.note)
                .execute(&mut *$tx)
                .await?;
        }
        signed
    }};
}

/// Appends `events` stamped `now` in PostgreSQL transaction `tx` and signs a checkpoint
/// covering them, inside the attestation issuer's transaction
/// ([`Store::record_attestations`]). Returns the first entry's index, the checkpoint, and the
/// entries' events of the stream, for the caller to append last before its commit.
pub(crate) async fn append_signed_postgres(
    tx: &mut sqlx::PgConnection,
    events: &[Event],
    key: &LogKey,
    now: OffsetDateTime,
) -> Result<SignedEntries, StoreError> {
    let mut frontier = locked_head!(tx);
    let (first, stream) = append_entries!(tx, frontier, events, now);
    let signed = sign_checkpoint!(tx, frontier, key, now, 1);
    Ok(SignedEntries {
        first,
        checkpoint: signed,
        stream,
    })
}

/// What [`append_signed_postgres`] wrote, and the events it leaves to its caller.
pub(crate) struct SignedEntries {
    /// The first entry's index.
    pub first: u64,
    /// The checkpoint covering the entries (`None` only if the log did not grow).
    pub checkpoint: Option<StoredCheckpoint>,
    /// The entries' events of the stream, not appended yet.
    pub stream: Vec<rampart_events::Event>,
}

/// [`locked_head!`], [`append_entries!`] and [`sign_checkpoint!`] (with `min_new` 1) on
/// result ingestion's own SQLite connection (`batch.rs`), in transaction `tx`: for the
/// attestation issuer, whose batches write in the same transaction as their entries.
/// Returns the first entry's index and the checkpoint covering them all.
pub(crate) fn append_signed_blocking(
    tx: &rusqlite::Transaction<'_>,
    events: &[Event],
    key: &LogKey,
    now: OffsetDateTime,
) -> Result<(u64, Option<StoredCheckpoint>), StoreError> {
    use rusqlite::OptionalExtension as _;
    let (size, bytes): (i64, Vec<u8>) = tx
        .prepare_cached(HEAD_LOCK)?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let size = u64::try_from(size).map_err(|e| StoreError::corrupt("audit head size", e))?;
    let mut frontier = Frontier::from_bytes(size, &bytes)
        .ok_or_else(|| StoreError::corrupt("audit head", "frontier does not fit the size"))?;
    let planned = plan(&mut frontier, events, now)?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO audit_entries (seq, at_ms, actor, action, target, outcome, body) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (seq, body, event) in &planned.entries {
            insert.execute(rusqlite::params![
                seq,
                planned.at_ms,
                event.actor,
                event.action,
                event.target,
                event.outcome.as_str(),
                body
            ])?;
        }
        let mut node =
            tx.prepare_cached("INSERT INTO audit_nodes (level, idx, hash) VALUES (?1, ?2, ?3)")?;
        for (level, idx, hash) in &planned.nodes {
            node.execute(rusqlite::params![level, idx, hash])?;
        }
    }
    tx.prepare_cached("UPDATE audit_head SET size = ?1, frontier = ?2 WHERE id = 1")?
        .execute(rusqlite::params![
            db_index(frontier.size())?,
            frontier.to_bytes()
        ])?;
    let (_, agents) = crate::tallies::agents_blocking(tx, named_agents(events))?;
    crate::events::append_blocking(tx, &stream_of(planned.first, events, now, &agents))?;
    let last = tx
        .prepare_cached(LAST_CHECKPOINT)?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let signed = checkpoint_due(&frontier, key, now, 1, last)?;
    if let Some(c) = &signed {
        tx.prepare_cached(INSERT_CHECKPOINT)?
            .execute(rusqlite::params![
                db_index(c.size)?,
                secs(c.created_at),
                c.note
            ])?;
    }
    Ok((planned.first, signed))
}

impl Store {
    /// Appends `events` in order, stamped `now`; returns the index of the first. One
    /// transaction: all of them or none.
    pub async fn audit_append(
        &self,
        events: &[Event],
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let first = on_writer!(self, p => {
            let mut tx = p.begin().await?;
            let mut frontier = locked_head!(tx);
            let (first, stream) = append_entries!(tx, frontier, events, now);
            crate::events::Outbox::append_events(&mut *tx, &stream).await?;
            tx.commit().await?;
            first
        });
        Ok(first)
    }

    /// Signs a checkpoint of the log as it is, when it has grown by at least `min_new` entries
    /// (at least one) since the last one; returns it, or `None` when there was nothing to
    /// sign. Its time never goes back from the previous checkpoint's, whichever replica's
    /// clock signed that.
    pub async fn audit_checkpoint(
        &self,
        key: &LogKey,
        now: OffsetDateTime,
        min_new: u64,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        let stored = on_writer!(self, p => {
            let mut tx = p.begin().await?;
            let frontier = locked_head!(tx);
            let signed = sign_checkpoint!(tx, frontier, key, now, min_new);
            if signed.is_some() {
                tx.commit().await?;
            }
            signed
        });
        Ok(stored)
    }

    /// The number of entries.
    pub async fn audit_size(&self) -> Result<u64, StoreError> {
        const SQL: &str = "SELECT size FROM audit_head WHERE id = 1";
        let size: i64 = on_reader!(self, c => sqlx::query_scalar(SQL).fetch_one(c).await?);
        u64::try_from(size).map_err(|e| StoreError::corrupt("audit head size", e))
    }

    /// The largest checkpoint.
    pub async fn audit_latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        const SQL: &str =
            "SELECT size, created_at, note FROM audit_checkpoints ORDER BY size DESC LIMIT 1";
        on_reader!(self, c => sqlx::query(SQL).fetch_optional(c).await?.map(|r| checkpoint_row!(r)).transpose())
    }

    /// The checkpoint of exactly `size` entries.
    pub async fn audit_checkpoint_at(
        &self,
        size: u64,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        const SQL: &str = "SELECT size, created_at, note FROM audit_checkpoints WHERE size = $1";
        let size = db_index(size)?;
        on_reader!(self, c => sqlx::query(SQL).bind(size).fetch_optional(c).await?.map(|r| checkpoint_row!(r)).transpose())
    }

    /// Checkpoints larger than `after`, smallest first, at most `limit`.
    pub async fn audit_checkpoints(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StoredCheckpoint>, StoreError> {
        const SQL: &str = "SELECT size, created_at, note FROM audit_checkpoints \
                           WHERE size > $1 ORDER BY size LIMIT $2";
        let after = db_index(after)?;
        on_pool!(&self.db, p => sqlx::query(SQL).bind(after).bind(i64::from(limit)).fetch_all(p).await?
            .into_iter().map(|r| checkpoint_row!(r)).collect())
    }

    /// One entry.
    pub async fn audit_entry(&self, index: u64) -> Result<Option<AuditRow>, StoreError> {
        const SQL: &str = "SELECT seq, body FROM audit_entries WHERE seq = $1";
        let index = db_index(index)?;
        on_reader!(self, c => sqlx::query(SQL).bind(index).fetch_optional(c).await?.map(|r| entry_row!(r)).transpose())
    }

    /// Entries from index `from` on, in order, at most `limit`: the export, a page at a time.
    pub async fn audit_entries(&self, from: u64, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
        const SQL: &str =
            "SELECT seq, body FROM audit_entries WHERE seq >= $1 ORDER BY seq LIMIT $2";
        let from = db_index(from)?;
        on_pool!(&self.db, p => sqlx::query(SQL).bind(from).bind(i64::from(limit)).fetch_all(p).await?
            .into_iter().map(|r| entry_row!(r)).collect())
    }

    /// Entries matching `q`, newest first.
    pub async fn audit_search(&self, q: &AuditQuery) -> Result<Vec<AuditRow>, StoreError> {
        on_pool!(&self.db, p => {
            let mut qb = sqlx::QueryBuilder::new("SELECT seq, body FROM audit_entries WHERE 1 = 1");
            if let Some(actor) = &q.actor {
                qb.push(" AND actor = ").push_bind(actor.clone());
            }
            match q.action.as_deref().map(|a| (a, a.strip_suffix('*'))) {
                Some((_, Some(prefix))) => {
                    // A prefix as a range: no LIKE, so '%' and '_' in it mean themselves.
                    qb.push(" AND action >= ").push_bind(prefix.to_owned());
                    qb.push(" AND action < ").push_bind(format!("{prefix}\u{10FFFF}"));
                }
                Some((action, None)) => {
                    qb.push(" AND action = ").push_bind(action.to_owned());
                }
                None => {}
            }
            if let Some(target) = &q.target {
                qb.push(" AND target = ").push_bind(target.clone());
            }
            if let Some(outcome) = q.outcome {
                qb.push(" AND outcome = ").push_bind(outcome.as_str());
            }
            if let Some(since) = q.since {
                qb.push(" AND at_ms >= ").push_bind(millis(since));
            }
            if let Some(until) = q.until {
                qb.push(" AND at_ms < ").push_bind(millis(until));
            }
            if let Some(before) = q.before {
                qb.push(" AND seq < ").push_bind(db_index(before)?);
            }
            qb.push(" ORDER BY seq DESC LIMIT ").push_bind(i64::from(q.limit));
            qb.build().fetch_all(p).await?.into_iter().map(|r| entry_row!(r)).collect()
        })
    }

    /// The audit path of entry `index` in the tree of `size` entries.
    pub async fn audit_inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        self.audit_within(size).await?;
        let ids = tree::inclusion_nodes(index, size).map_err(tree_error)?;
        let mut nodes = self.audit_nodes(&ids).await?;
        tree::inclusion_path(index, size, &mut nodes).map_err(tree_error)
    }

    /// The consistency proof from the tree of `from` entries to the tree of `to`.
    pub async fn audit_consistency_proof(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<Hash>, StoreError> {
        self.audit_within(to).await?;
        let ids = tree::consistency_nodes(from, to).map_err(tree_error)?;
        let mut nodes = self.audit_nodes(&ids).await?;
        tree::consistency_path(from, to, &mut nodes).map_err(tree_error)
    }

    /// The root of the tree of `size` entries, from the stored subtrees.
    pub async fn audit_root(&self, size: u64) -> Result<Hash, StoreError> {
        self.audit_within(size).await?;
        let mut nodes = self.audit_nodes(&tree::root_nodes(size)).await?;
        tree::root(size, &mut nodes).map_err(tree_error)
    }

    /// A proof is only for a tree that exists.
    async fn audit_within(&self, size: u64) -> Result<(), StoreError> {
        let now = self.audit_size().await?;
        if size > now {
            return Err(StoreError::not_found(
                "audit tree size",
                format!("{size} (the log has {now} entries)"),
            ));
        }
        Ok(())
    }

    /// Reads the given subtrees in one query.
    async fn audit_nodes(&self, ids: &[NodeId]) -> Result<Fetched, StoreError> {
        if ids.is_empty() {
            return Ok(Fetched(HashMap::new()));
        }
        // Integers written by this function, not input: safe to put in the text.
        let list: Vec<String> = ids
            .iter()
            .map(|id| format!("({}, {})", id.level, id.index))
            .collect();
        let sql = format!(
            "SELECT level, idx, hash FROM audit_nodes WHERE (level, idx) IN ({})",
            list.join(", ")
        );
        on_reader!(self, c => {
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(c).await?;
        let mut map = HashMap::with_capacity(rows.len());
        for r in rows {
            let level: i16 = r.try_get("level")?;
            let idx: i64 = r.try_get("idx")?;
            let id = NodeId {
                level: u8::try_from(level).map_err(|e| StoreError::corrupt("audit node level", e))?,
                index: u64::try_from(idx).map_err(|e| StoreError::corrupt("audit node index", e))?,
            };
            map.insert(id, hash_of(r.try_get("hash")?, "audit node hash")?);
        }
        Ok(Fetched(map))
        })
    }
}
