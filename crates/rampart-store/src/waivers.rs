//! Waivers governed on the server: requests, decisions, the ones in force for a run, expiry.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use time::OffsetDateTime;

use crate::{Store, StoreError, from_secs, on_pool, secs};

/// Who a waiver covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum WaiverScope {
    /// One agent, by id.
    Agent(String),
    /// Every agent of a group.
    Group(String),
    /// Every agent.
    Fleet,
}

impl WaiverScope {
    fn parts(&self) -> (&'static str, &str) {
        match self {
            WaiverScope::Agent(a) => ("agent", a),
            WaiverScope::Group(g) => ("group", g),
            WaiverScope::Fleet => ("fleet", ""),
        }
    }

    fn from_parts(kind: &str, name: String) -> Result<WaiverScope, StoreError> {
        match kind {
            "agent" => Ok(WaiverScope::Agent(name)),
            "group" => Ok(WaiverScope::Group(name)),
            "fleet" => Ok(WaiverScope::Fleet),
            other => Err(StoreError::corrupt("waivers.scope_kind", other)),
        }
    }
}

/// A waiver and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StoredWaiver {
    /// Its id.
    pub id: String,
    /// Check id or glob, optionally `POLICY:GLOB`.
    pub check: String,
    /// Who it covers.
    pub scope: WaiverScope,
    /// Why the risk is accepted.
    pub justification: String,
    /// Its last valid day (UTC), `YYYY-MM-DD`.
    pub expires_on: String,
    /// `pending`, `approved` or `denied` (an approved waiver past its day is reported
    /// `expired` by the API).
    pub state: String,
    /// Who asked.
    pub requested_by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "rampart_core::timestamp::Rfc3339")]
    pub requested_at: OffsetDateTime,
    /// Who approved or denied it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// When.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<rampart_core::timestamp::Rfc3339>")]
    pub decided_at: Option<OffsetDateTime>,
    /// What the decider said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision_note: Option<String>,
}

const COLUMNS: &str = "id, check_pattern, scope_kind, scope_name, justification, expires_on, \
     state, requested_by, requested_at, decided_by, decided_at, decision_note";

macro_rules! waiver_row {
    ($r:expr) => {{
        let r = $r;
        Ok::<_, StoreError>(StoredWaiver {
            id: r.try_get("id")?,
            check: r.try_get("check_pattern")?,
            scope: WaiverScope::from_parts(
                &r.try_get::<String, _>("scope_kind")?,
                r.try_get("scope_name")?,
            )?,
            justification: r.try_get("justification")?,
            expires_on: r.try_get("expires_on")?,
            state: r.try_get("state")?,
            requested_by: r.try_get("requested_by")?,
            requested_at: from_secs(r.try_get("requested_at")?),
            decided_by: r.try_get("decided_by")?,
            decided_at: r.try_get::<Option<i64>, _>("decided_at")?.map(from_secs),
            decision_note: r.try_get("decision_note")?,
        })
    }};
}

impl Store {
    /// Stores a new pending waiver.
    pub async fn insert_waiver(&self, w: &StoredWaiver) -> Result<(), StoreError> {
        let sql = format!(
            "INSERT INTO waivers ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        );
        let (kind, name) = w.scope.parts();
        on_pool!(&self.db, p => {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&w.id)
                .bind(&w.check)
                .bind(kind)
                .bind(name)
                .bind(&w.justification)
                .bind(&w.expires_on)
                .bind(&w.state)
                .bind(&w.requested_by)
                .bind(secs(w.requested_at))
                .bind(&w.decided_by)
                .bind(w.decided_at.map(secs))
                .bind(&w.decision_note)
                .execute(p)
                .await
                .map_err(|e| StoreError::conflict_or(e, "waiver", &w.id))?;
        });
        Ok(())
    }

    /// One waiver.
    pub async fn waiver(&self, id: &str) -> Result<Option<StoredWaiver>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM waivers WHERE id = $1");
        on_pool!(&self.db, p => sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(p).await?
            .map(|r| waiver_row!(r)).transpose())
    }

    /// Waivers, newest request first, optionally in one state.
    pub async fn waivers(
        &self,
        state: Option<&str>,
        limit: u32,
    ) -> Result<Vec<StoredWaiver>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM waivers WHERE ($1 IS NULL OR state = $1) \
             ORDER BY requested_at DESC, id DESC LIMIT $2"
        );
        on_pool!(&self.db, p => sqlx::query(sqlx::AssertSqlSafe(sql)).bind(state).bind(i64::from(limit))
            .fetch_all(p).await?.into_iter().map(|r| waiver_row!(r)).collect())
    }

    /// Approves or denies a pending waiver; `None` when it is not pending (decided already, or
    /// by a concurrent decision).
    pub async fn decide_waiver(
        &self,
        id: &str,
        approve: bool,
        by: &str,
        note: Option<&str>,
        at: OffsetDateTime,
    ) -> Result<Option<StoredWaiver>, StoreError> {
        const SQL: &str = "UPDATE waivers SET state = $1, decided_by = $2, decided_at = $3, \
             decision_note = $4 WHERE id = $5 AND state = 'pending'";
        let state = if approve { "approved" } else { "denied" };
        let n = on_pool!(&self.db, p => sqlx::query(SQL)
            .bind(state).bind(by).bind(secs(at)).bind(note).bind(id)
            .execute(p).await?.rows_affected());
        if n == 0 {
            return Ok(None);
        }
        self.waiver(id).await
    }

    /// The waivers in force for an agent of `group` at `at`: approved at or before it, and
    /// `at` on or before their last day.
    pub async fn waivers_in_force(
        &self,
        agent_id: &str,
        group: &str,
        at: OffsetDateTime,
    ) -> Result<Vec<StoredWaiver>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM waivers WHERE state = 'approved' AND decided_at <= $1 \
             AND expires_on >= $2 AND (scope_kind = 'fleet' \
             OR (scope_kind = 'group' AND scope_name = $3) \
             OR (scope_kind = 'agent' AND scope_name = $4)) ORDER BY decided_at, id"
        );
        let day = day(at);
        on_pool!(&self.db, p => sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(secs(at)).bind(day).bind(group).bind(agent_id)
            .fetch_all(p).await?.into_iter().map(|r| waiver_row!(r)).collect())
    }

    /// Approved waivers whose last day is before `today` and whose expiry is not yet in the
    /// audit log; each is marked so, once, whichever replica gets there first.
    pub async fn take_expired_waivers(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<StoredWaiver>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM waivers WHERE state = 'approved' AND expiry_logged = 0 \
             AND expires_on < $1 ORDER BY id LIMIT 100"
        );
        const MARK: &str =
            "UPDATE waivers SET expiry_logged = 1 WHERE id = $1 AND expiry_logged = 0";
        let today = day(now);
        let expired: Vec<StoredWaiver> = on_pool!(&self.db, p => sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&today)
            .fetch_all(p).await?.into_iter().map(|r| waiver_row!(r)).collect::<Result<_, _>>()?);
        let mut taken = Vec::new();
        for w in expired {
            let n = on_pool!(&self.db, p => sqlx::query(MARK).bind(&w.id).execute(p).await?.rows_affected());
            if n == 1 {
                taken.push(w);
            }
        }
        Ok(taken)
    }
}

/// The UTC day of `at`, `YYYY-MM-DD` (sorts as text).
fn day(at: OffsetDateTime) -> String {
    let d = at.to_offset(time::UtcOffset::UTC).date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}
