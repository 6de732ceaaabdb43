//! Operator alert rules and their evaluation's state (migrations `*_alerts.sql` say the
//! design). Definitions and states are JSON the server's `rampart-alerts` reads; the store
//! keeps them, hands out the evaluator's turn, and commits a turn's outcome at once.

use sqlx::Row;
use time::OffsetDateTime;

use crate::events::{Outbox, millis};
use crate::{Store, StoreError, from_secs, on_pool, on_writer, secs};

fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A rule as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRule {
    /// Its name.
    pub name: String,
    /// Its definition, JSON.
    pub definition: String,
    /// When it was created and last changed.
    pub created_at: OffsetDateTime,
    /// See `created_at`.
    pub updated_at: OffsetDateTime,
}

/// A rule's state for one subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAlertState {
    /// The rule and subject.
    pub rule: String,
    /// See `rule`.
    pub subject: String,
    /// Whether its condition holds.
    pub firing: bool,
    /// Whether the evaluator judges it again each turn.
    pub active: bool,
    /// The state, JSON.
    pub state: String,
    /// When it was last written.
    pub updated_at: OffsetDateTime,
}

/// An agent silent for too long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilentAgent {
    /// Who.
    pub agent: rampart_events::AgentRef,
    /// Its last heartbeat.
    pub last_seen: OffsetDateTime,
    /// Whether it is revoked.
    pub revoked: bool,
}

/// What a turn writes.
#[derive(Debug, Clone, Default)]
pub struct TurnOutcome {
    /// The last event seq judged.
    pub cursor: i64,
    /// States written (inserted or replaced).
    pub states: Vec<StoredAlertState>,
    /// States forgotten: (rule, subject).
    pub forget: Vec<(String, String)>,
    /// The `alert` events to deliver.
    pub events: Vec<rampart_events::Event>,
}

/// States not judged again (not firing, nothing owed) are forgotten this long after they were
/// last written: longer than the longest quiet period, so forgetting one changes nothing.
const FORGET_AFTER: time::Duration = time::Duration::days(8);

const RULE_COLUMNS: &str = "name, definition, created_at, updated_at";
const STATE_COLUMNS: &str = "rule, subject, firing, active, state, updated_at";

fn rule_from(r: &impl RowLike) -> Result<StoredRule, StoreError> {
    Ok(StoredRule {
        name: r.text("name")?,
        definition: r.text("definition")?,
        created_at: from_millis(r.int("created_at")?),
        updated_at: from_millis(r.int("updated_at")?),
    })
}

fn state_from(r: &impl RowLike) -> Result<StoredAlertState, StoreError> {
    Ok(StoredAlertState {
        rule: r.text("rule")?,
        subject: r.text("subject")?,
        firing: r.int("firing")? != 0,
        active: r.int("active")? != 0,
        state: r.text("state")?,
        updated_at: from_millis(r.int("updated_at")?),
    })
}

/// A row of either backend, for the readers above.
trait RowLike {
    fn text(&self, col: &str) -> Result<String, StoreError>;
    fn int(&self, col: &str) -> Result<i64, StoreError>;
}

impl RowLike for sqlx::sqlite::SqliteRow {
    fn text(&self, col: &str) -> Result<String, StoreError> {
        Ok(self.try_get(col)?)
    }
    fn int(&self, col: &str) -> Result<i64, StoreError> {
        Ok(self.try_get(col)?)
    }
}

impl RowLike for sqlx::postgres::PgRow {
    fn text(&self, col: &str) -> Result<String, StoreError> {
        Ok(self.try_get(col)?)
    }
    fn int(&self, col: &str) -> Result<i64, StoreError> {
        Ok(self.try_get(col)?)
    }
}

impl Store {
    /// Creates or replaces a rule; true when it was created. A replaced rule keeps its
    /// subjects' states (what was told stays told).
    pub async fn put_alert_rule(
        &self,
        name: &str,
        definition: &str,
        now: OffsetDateTime,
    ) -> Result<(StoredRule, bool), StoreError> {
        const SQL: &str = "INSERT INTO alert_rules (name, definition, created_at, updated_at) \
             VALUES ($1, $2, $3, $3) ON CONFLICT (name) DO UPDATE SET \
             definition = excluded.definition, updated_at = excluded.updated_at";
        let existed = self.alert_rule(name).await?.is_some();
        on_pool!(&self.db, p => {
            sqlx::query(SQL).bind(name).bind(definition).bind(millis(now)).execute(p).await?;
        });
        let rule = self
            .alert_rule(name)
            .await?
            .ok_or_else(|| StoreError::corrupt("alert_rules", "row vanished after upsert"))?;
        Ok((rule, !existed))
    }

    /// One rule.
    pub async fn alert_rule(&self, name: &str) -> Result<Option<StoredRule>, StoreError> {
        let sql = format!("SELECT {RULE_COLUMNS} FROM alert_rules WHERE name = $1");
        let r = on_pool!(&self.db, p => {
            match sqlx::query(sqlx::AssertSqlSafe(sql)).bind(name).fetch_optional(p).await? {
                Some(r) => Some(rule_from(&r)?),
                None => None,
            }
        });
        Ok(r)
    }

    /// Every rule, by name.
    pub async fn alert_rules(&self) -> Result<Vec<StoredRule>, StoreError> {
        let sql = format!("SELECT {RULE_COLUMNS} FROM alert_rules ORDER BY name");
        let all = on_pool!(&self.db, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(p).await?;
            rows.iter().map(rule_from).collect::<Result<Vec<_>, _>>()?
        });
        Ok(all)
    }

    /// Removes a rule and its states. False when unknown.
    pub async fn delete_alert_rule(&self, name: &str) -> Result<bool, StoreError> {
        let n = on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            sqlx::query("DELETE FROM alert_states WHERE rule = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            let n = sqlx::query("DELETE FROM alert_rules WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            n
        });
        Ok(n > 0)
    }

    /// A rule's firing subjects, most recently changed first, at most `limit`; and how many
    /// fire in all.
    pub async fn firing_alerts(
        &self,
        rule: &str,
        limit: u32,
    ) -> Result<(Vec<StoredAlertState>, u64), StoreError> {
        let sql = format!(
            "SELECT {STATE_COLUMNS} FROM alert_states WHERE rule = $1 AND firing = 1 \
             ORDER BY updated_at DESC, subject LIMIT $2"
        );
        const COUNT: &str = "SELECT COUNT(*) AS n FROM alert_states WHERE rule = $1 AND firing = 1";
        let out = on_pool!(&self.db, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(rule)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?;
            let states = rows.iter().map(state_from).collect::<Result<Vec<_>, _>>()?;
            let n: i64 = sqlx::query(COUNT).bind(rule).fetch_one(p).await?.try_get("n")?;
            (states, u64::try_from(n).unwrap_or(0))
        });
        Ok(out)
    }

    /// The states the evaluator judges again each turn (firing, or something owed).
    pub async fn active_alert_states(&self) -> Result<Vec<StoredAlertState>, StoreError> {
        let sql = format!("SELECT {STATE_COLUMNS} FROM alert_states WHERE active = 1");
        let out = on_pool!(&self.db, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(p).await?;
            rows.iter().map(state_from).collect::<Result<Vec<_>, _>>()?
        });
        Ok(out)
    }

    /// The states of these (rule, subject) pairs that exist.
    pub async fn alert_states_of(
        &self,
        keys: &[(String, String)],
    ) -> Result<Vec<StoredAlertState>, StoreError> {
        let mut out = Vec::new();
        for chunk in keys.chunks(100) {
            let rows = on_pool!(&self.db, p => {
                let mut qb = sqlx::QueryBuilder::new(format!(
                    "SELECT {STATE_COLUMNS} FROM alert_states WHERE 1 = 0"
                ));
                for (rule, subject) in chunk {
                    qb.push(" OR (rule = ")
                        .push_bind(rule.clone())
                        .push(" AND subject = ")
                        .push_bind(subject.clone())
                        .push(")");
                }
                let rows = qb.build().fetch_all(p).await?;
                rows.iter().map(state_from).collect::<Result<Vec<_>, _>>()?
            });
            out.extend(rows);
        }
        Ok(out)
    }

    /// Takes the evaluator's turn for `holder` until `now + lease`, when no other replica
    /// holds it (or its lease ran out): the cursor to judge from. `None`: another holds it.
    pub async fn claim_alert_turn(
        &self,
        holder: &str,
        now: OffsetDateTime,
        lease: time::Duration,
    ) -> Result<Option<i64>, StoreError> {
        const SQL: &str = "UPDATE alert_turn SET holder = $1, lease_until = $2 \
             WHERE id = 1 AND (holder = $1 OR holder IS NULL OR lease_until < $3) \
             RETURNING last_seq";
        let cursor = on_writer!(self, p => {
            sqlx::query(SQL)
                .bind(holder)
                .bind(millis(now + lease))
                .bind(millis(now))
                .fetch_optional(p)
                .await?
                .map(|r| r.try_get::<i64, _>("last_seq"))
                .transpose()?
        });
        Ok(cursor)
    }

    /// Commits a turn: the cursor, the states judged, those forgotten and the alert events,
    /// in one transaction, and only while `holder` still holds the turn (false, and nothing
    /// written, when another replica took it over). States left inactive long enough are
    /// forgotten too.
    pub async fn finish_alert_turn(
        &self,
        holder: &str,
        now: OffsetDateTime,
        outcome: &TurnOutcome,
    ) -> Result<bool, StoreError> {
        const TURN: &str = "UPDATE alert_turn SET last_seq = $1 WHERE id = 1 AND holder = $2";
        const PUT: &str = "INSERT INTO alert_states \
             (rule, subject, firing, active, state, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (rule, subject) DO UPDATE SET firing = excluded.firing, \
             active = excluded.active, state = excluded.state, updated_at = excluded.updated_at";
        const FORGET: &str = "DELETE FROM alert_states WHERE rule = $1 AND subject = $2";
        const STALE: &str = "DELETE FROM alert_states WHERE active = 0 AND updated_at < $1";
        // States of rules deleted while the turn ran are not brought back.
        const ORPHANS: &str =
            "DELETE FROM alert_states WHERE rule NOT IN (SELECT name FROM alert_rules)";
        let ok = on_writer!(self, p => {
            let mut tx = match self.backend() {
                crate::Backend::Sqlite => p.begin_with("BEGIN IMMEDIATE").await?,
                crate::Backend::Postgres => p.begin().await?,
            };
            let held = sqlx::query(TURN)
                .bind(outcome.cursor)
                .bind(holder)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if held {
                for s in &outcome.states {
                    sqlx::query(PUT)
                        .bind(&s.rule)
                        .bind(&s.subject)
                        .bind(i64::from(s.firing))
                        .bind(i64::from(s.active))
                        .bind(&s.state)
                        .bind(millis(s.updated_at))
                        .execute(&mut *tx)
                        .await?;
                }
                for (rule, subject) in &outcome.forget {
                    sqlx::query(FORGET).bind(rule).bind(subject).execute(&mut *tx).await?;
                }
                sqlx::query(STALE).bind(millis(now - FORGET_AFTER)).execute(&mut *tx).await?;
                sqlx::query(ORPHANS).execute(&mut *tx).await?;
                Outbox::append_events(&mut *tx, &outcome.events).await?;
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            held
        });
        Ok(ok)
    }

    /// The cursor: the last event seq the alert rules judged.
    pub async fn alert_cursor(&self) -> Result<i64, StoreError> {
        let c = on_pool!(&self.db, p => {
            sqlx::query("SELECT last_seq FROM alert_turn WHERE id = 1")
                .fetch_optional(p)
                .await?
                .map(|r| r.try_get::<i64, _>("last_seq"))
                .transpose()?
                .unwrap_or(0)
        });
        Ok(c)
    }

    /// Agents, not revoked, of `group` (all when none) whose last heartbeat is before
    /// `before`, longest silent first, at most `limit`.
    pub async fn silent_agents(
        &self,
        before: OffsetDateTime,
        group: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SilentAgent>, StoreError> {
        let rows = on_pool!(&self.db, p => {
            let mut qb = sqlx::QueryBuilder::new(
                "SELECT a.id, a.hostname, a.grp, s.last_seen, a.status \
                 FROM agents a JOIN agent_seen s ON s.agent_id = a.id \
                 WHERE a.status <> 'revoked' AND s.last_seen < ",
            );
            qb.push_bind(secs(before));
            if let Some(g) = group {
                qb.push(" AND a.grp = ").push_bind(g.to_owned());
            }
            qb.push(" ORDER BY s.last_seen, a.id LIMIT ").push_bind(i64::from(limit));
            let rows = qb.build().fetch_all(p).await?;
            rows.iter().map(|r| {
                Ok::<_, StoreError>(SilentAgent {
                    agent: crate::tallies::agent_ref(&r.try_get::<String, _>("id")?, r)?,
                    last_seen: from_secs(r.try_get("last_seen")?),
                    revoked: false,
                })
            }).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// These agents' last heartbeats and revocation (unknown ids left out).
    pub async fn agents_seen(&self, ids: &[String]) -> Result<Vec<SilentAgent>, StoreError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(200) {
            let rows = on_pool!(&self.db, p => {
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT a.id, a.hostname, a.grp, s.last_seen, a.status \
                     FROM agents a JOIN agent_seen s ON s.agent_id = a.id WHERE a.id IN (",
                );
                let mut list = qb.separated(", ");
                for id in chunk {
                    list.push_bind(id.clone());
                }
                qb.push(")");
                let rows = qb.build().fetch_all(p).await?;
                rows.iter().map(|r| {
                    Ok::<_, StoreError>(SilentAgent {
                        agent: crate::tallies::agent_ref(&r.try_get::<String, _>("id")?, r)?,
                        last_seen: from_secs(r.try_get("last_seen")?),
                        revoked: r.try_get::<String, _>("status")? == "revoked",
                    })
                }).collect::<Result<Vec<_>, _>>()?
            });
            out.extend(rows);
        }
        Ok(out)
    }
}
