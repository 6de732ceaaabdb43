//! Agents, their certificates and revocations.

use std::collections::BTreeMap;

use sqlx::Row;
use time::OffsetDateTime;

use crate::{
    Agent, AgentStatus, CertificateRecord, Labels, NewAgent, Revoked, Store, StoreError, from_secs,
    on_pool, on_reader, on_writer, secs,
};

/// The columns an [`Agent`] is read from, of `agents a` joined with its `agent_seen s` row
/// ([`agents_joined!`]).
macro_rules! agent_columns {
    () => {
        "a.id, a.hostname, a.os, a.arch, a.agent_version, a.labels, a.grp, a.cert_serial, \
     a.cert_not_after, a.enrolled_at, s.last_seen, a.status, a.scan_requested_at"
    };
}

/// The agents with the time each was last seen: a heartbeat writes only the latter (why:
/// migrations/postgres/0018_agent_seen.sql).
macro_rules! agents_joined {
    () => {
        " FROM agents a JOIN agent_seen s ON s.agent_id = a.id"
    };
}

macro_rules! cert_columns {
    () => {
        "serial, agent_id, fingerprint, not_before, not_after, issued_at, revoked_at, revocation_reason"
    };
}

/// Maps a row to an [`Agent`]; a macro so it compiles against both backends' row types.
macro_rules! agent_from_row {
    ($r:expr) => {{
        let r = $r;
        let labels: String = r.try_get("labels")?;
        let labels: Labels =
            serde_json::from_str(&labels).map_err(|e| StoreError::corrupt("agents.labels", e))?;
        let status: String = r.try_get("status")?;
        Ok::<Agent, StoreError>(Agent {
            id: r.try_get("id")?,
            hostname: r.try_get("hostname")?,
            os: r.try_get("os")?,
            arch: r.try_get("arch")?,
            agent_version: r.try_get("agent_version")?,
            labels,
            group: r.try_get("grp")?,
            cert_serial: r.try_get("cert_serial")?,
            cert_not_after: from_secs(r.try_get("cert_not_after")?),
            enrolled_at: from_secs(r.try_get("enrolled_at")?),
            last_seen: from_secs(r.try_get("last_seen")?),
            status: AgentStatus::parse(&status)?,
            scan_requested_at: r
                .try_get::<Option<i64>, _>("scan_requested_at")?
                .map(from_secs),
        })
    }};
}

macro_rules! cert_from_row {
    ($r:expr) => {{
        let r = $r;
        Ok::<CertificateRecord, StoreError>(CertificateRecord {
            serial: r.try_get("serial")?,
            agent_id: r.try_get("agent_id")?,
            fingerprint: r.try_get("fingerprint")?,
            not_before: from_secs(r.try_get("not_before")?),
            not_after: from_secs(r.try_get("not_after")?),
            issued_at: from_secs(r.try_get("issued_at")?),
            revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(from_secs),
            revocation_reason: r.try_get("revocation_reason")?,
        })
    }};
}

/// Inserts a certificate inside an open transaction; a macro so it compiles for both backends.
macro_rules! insert_certificate {
    ($tx:ident, $cert:expr) => {
        sqlx::query(concat!(
            "INSERT INTO certificates (",
            cert_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL)"
        ))
        .bind(&$cert.serial)
        .bind(&$cert.agent_id)
        .bind(&$cert.fingerprint)
        .bind(secs($cert.not_before))
        .bind(secs($cert.not_after))
        .bind(secs($cert.issued_at))
        .execute(&mut *$tx)
        .await?
    };
}

impl Store {
    /// Registers an agent with its first certificate, or — on re-enrolment of a known id —
    /// updates its description and certificate, in one transaction. Re-enrolment reactivates an
    /// agent only if the caller decided it may (the server checks the token first).
    pub async fn enrol_agent(
        &self,
        agent: &NewAgent,
        cert: &CertificateRecord,
        now: OffsetDateTime,
    ) -> Result<Agent, StoreError> {
        let labels = serde_json::to_string(&agent.labels)
            .map_err(|e| StoreError::corrupt("agent labels", e))?;
        const UPSERT: &str = "INSERT INTO agents (id, hostname, os, arch, agent_version, labels, \
             grp, cert_serial, cert_not_after, enrolled_at, status, scan_requested_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', NULL) \
             ON CONFLICT (id) DO UPDATE SET hostname = excluded.hostname, os = excluded.os, \
             arch = excluded.arch, agent_version = excluded.agent_version, labels = excluded.labels, \
             grp = excluded.grp, cert_serial = excluded.cert_serial, \
             cert_not_after = excluded.cert_not_after, status = 'active'";
        // Enrolment counts as being seen; a re-enrolled agent's silence starts afresh.
        const SEEN: &str = "INSERT INTO agent_seen (agent_id, last_seen, offline_announced) \
             VALUES ($1, $2, NULL) \
             ON CONFLICT (agent_id) DO UPDATE SET last_seen = excluded.last_seen";
        on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            sqlx::query(UPSERT)
                .bind(&agent.id)
                .bind(&agent.hostname)
                .bind(&agent.os)
                .bind(&agent.arch)
                .bind(&agent.agent_version)
                .bind(&labels)
                .bind(&agent.group)
                .bind(&cert.serial)
                .bind(secs(cert.not_after))
                .bind(secs(now))
                .execute(&mut *tx)
                .await?;
            sqlx::query(SEEN).bind(&agent.id).bind(secs(now)).execute(&mut *tx).await?;
            insert_certificate!(tx, cert);
            crate::tallies::Recohort::recohort(&mut *tx, &agent.id).await?;
            tx.commit().await?;
        });
        self.agent(&agent.id)
            .await?
            .ok_or_else(|| StoreError::not_found("agent", &agent.id))
    }

    /// Records a renewed certificate as the agent's current one.
    pub async fn record_renewal(&self, cert: &CertificateRecord) -> Result<(), StoreError> {
        const UPDATE: &str =
            "UPDATE agents SET cert_serial = $2, cert_not_after = $3 WHERE id = $1";
        on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            insert_certificate!(tx, cert);
            sqlx::query(UPDATE)
                .bind(&cert.agent_id)
                .bind(&cert.serial)
                .bind(secs(cert.not_after))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// One agent.
    pub async fn agent(&self, id: &str) -> Result<Option<Agent>, StoreError> {
        let sql = concat!(
            "SELECT ",
            agent_columns!(),
            agents_joined!(),
            " WHERE a.id = $1"
        );
        let a = on_pool!(&self.db, p => match sqlx::query(sql).bind(id).fetch_optional(p).await? {
            Some(r) => Some(agent_from_row!(&r)?),
            None => None,
        });
        Ok(a)
    }

    /// The group of an agent, of a run's agent, or of an enrolment token: what a group-limited
    /// grant is judged against before a request touches it. `None` when there is no such thing.
    pub async fn group_of(&self, of: GroupOf<'_>) -> Result<Option<String>, StoreError> {
        let (sql, key) = match of {
            GroupOf::Agent(id) => ("SELECT grp FROM agents WHERE id = $1", id),
            GroupOf::Run(id) => (
                "SELECT a.grp FROM runs r JOIN agents a ON a.id = r.agent_id WHERE r.id = $1",
                id,
            ),
            GroupOf::EnrolmentToken(jti) => {
                ("SELECT grp FROM enrolment_tokens WHERE jti = $1", jti)
            }
        };
        let group = on_reader!(self, c => sqlx::query_scalar::<_, String>(sql).bind(key).fetch_optional(c).await?);
        Ok(group)
    }

    /// Every agent, optionally only one group's, ordered by host name.
    pub async fn agents(&self, group: Option<&str>) -> Result<Vec<Agent>, StoreError> {
        let sql = concat!(
            "SELECT ",
            agent_columns!(),
            agents_joined!(),
            " WHERE ($1 IS NULL OR a.grp = $1) ORDER BY a.hostname, a.id"
        );
        let rows = on_pool!(&self.db, p => {
            let rows = sqlx::query(sql).bind(group).fetch_all(p).await?;
            rows.iter().map(|r| agent_from_row!(r)).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// The groups agents are enrolled in, sorted: what a page offers to filter by, without
    /// reading every agent.
    pub async fn agent_groups(&self) -> Result<Vec<String>, StoreError> {
        const SQL: &str = "SELECT DISTINCT grp FROM agents ORDER BY grp";
        let rows = on_pool!(&self.db, p => sqlx::query_scalar(SQL).fetch_all(p).await?);
        Ok(rows)
    }

    /// Records heartbeats: `last_seen` for many agents in one transaction. Callers batch, so
    /// ten thousand agents beating every minute cost a few writes per second, not thousands.
    /// An older time never replaces a newer one; an agent no longer stored is left out.
    ///
    /// The times live in `agent_seen`, which result ingestion does not touch: a flush never
    /// waits for a batch (which locks its agents' `agents` rows first), nor a batch for a
    /// flush. On PostgreSQL the rows are locked in id order before the update, so flushes of
    /// several replicas naming the same agents queue instead of deadlocking.
    pub async fn touch_agents(
        &self,
        seen: &BTreeMap<String, OffsetDateTime>,
    ) -> Result<(), StoreError> {
        if seen.is_empty() {
            return Ok(());
        }
        // SQLite has no row locks: the write turn orders this with ingestion's transactions.
        const SQL: &str =
            "UPDATE agent_seen SET last_seen = $2 WHERE agent_id = $1 AND last_seen < $2";
        on_writer!(self, sqlite p => {
            let mut tx = p.begin().await?;
            for (id, at) in seen {
                sqlx::query(SQL)
                    .bind(id)
                    .bind(secs(*at))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        }, postgres p => touch_agents_postgres(p, seen).await)
    }

    /// Asks an agent to scan at its next heartbeat. Returns false for an unknown agent.
    pub async fn request_scan(&self, id: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE agents SET scan_requested_at = $2 WHERE id = $1";
        let n = on_pool!(&self.db, p => sqlx::query(SQL).bind(id).bind(secs(now)).execute(p).await?.rows_affected());
        Ok(n == 1)
    }

    /// Takes a pending "scan now" request, if any: it is handed out exactly once.
    pub async fn take_scan_request(&self, id: &str) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE agents SET scan_requested_at = NULL \
                           WHERE id = $1 AND scan_requested_at IS NOT NULL";
        let n =
            on_pool!(&self.db, p => sqlx::query(SQL).bind(id).execute(p).await?.rows_affected());
        Ok(n == 1)
    }

    /// Revokes an agent and every unexpired certificate it holds, in one transaction. Returns
    /// the serials revoked; an unknown agent is an error.
    pub async fn revoke_agent(
        &self,
        id: &str,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<String>, StoreError> {
        const AGENT: &str = "UPDATE agents SET status = 'revoked' WHERE id = $1";
        const CERTS: &str = "UPDATE certificates SET revoked_at = $2, revocation_reason = $3 \
                             WHERE agent_id = $1 AND revoked_at IS NULL AND not_after > $2 \
                             RETURNING serial";
        let serials = on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            let n = sqlx::query(AGENT).bind(id).execute(&mut *tx).await?.rows_affected();
            if n == 0 {
                return Err(StoreError::not_found("agent", id));
            }
            let serials: Vec<String> = sqlx::query_scalar(CERTS)
                .bind(id)
                .bind(secs(now))
                .bind(reason)
                .fetch_all(&mut *tx)
                .await?;
            crate::tallies::Recohort::recohort(&mut *tx, id).await?;
            tx.commit().await?;
            serials
        });
        Ok(serials)
    }

    /// Revoked certificates that have not expired yet at `now`: the content of the CRL and of
    /// the handshake deny-list. Expired ones need no listing: the handshake refuses them anyway.
    pub async fn revoked_certificates(
        &self,
        now: OffsetDateTime,
    ) -> Result<Vec<Revoked>, StoreError> {
        const SQL: &str = "SELECT serial, revoked_at FROM certificates \
                           WHERE revoked_at IS NOT NULL AND not_after > $1 ORDER BY serial";
        let rows = on_pool!(&self.db, p => {
            let rows = sqlx::query(SQL).bind(secs(now)).fetch_all(p).await?;
            rows.iter().map(|r| Ok::<_, StoreError>(Revoked {
                serial: r.try_get("serial")?,
                revoked_at: from_secs(r.try_get("revoked_at")?),
            })).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// One certificate by serial.
    pub async fn certificate(&self, serial: &str) -> Result<Option<CertificateRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            cert_columns!(),
            " FROM certificates WHERE serial = $1"
        );
        let c = on_pool!(&self.db, p => match sqlx::query(sql).bind(serial).fetch_optional(p).await? {
            Some(r) => Some(cert_from_row!(&r)?),
            None => None,
        });
        Ok(c)
    }

    /// Every certificate issued to an agent, newest first.
    pub async fn agent_certificates(
        &self,
        agent_id: &str,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            cert_columns!(),
            " FROM certificates WHERE agent_id = $1 ORDER BY issued_at DESC, serial"
        );
        let rows = on_pool!(&self.db, p => {
            let rows = sqlx::query(sql).bind(agent_id).fetch_all(p).await?;
            rows.iter().map(|r| cert_from_row!(r)).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }
}

/// What [`Store::group_of`] looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupOf<'a> {
    /// An agent by id.
    Agent(&'a str),
    /// A run by id (its agent's group).
    Run(&'a str),
    /// An enrolment token by jti.
    EnrolmentToken(&'a str),
}

/// [`Store::touch_agents`] on PostgreSQL: the rows, locked in id order, updated in one statement.
async fn touch_agents_postgres(
    pool: &sqlx::PgPool,
    seen: &BTreeMap<String, OffsetDateTime>,
) -> Result<(), StoreError> {
    let ids: Vec<&str> = seen.keys().map(String::as_str).collect();
    let at: Vec<i64> = seen.values().map(|t| secs(*t)).collect();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "SELECT agent_id FROM agent_seen WHERE agent_id = ANY($1) ORDER BY agent_id FOR NO KEY UPDATE",
    )
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE agent_seen s SET last_seen = t.at FROM UNNEST($1::text[], $2::int8[]) AS t(id, at) \
         WHERE s.agent_id = t.id AND s.last_seen < t.at",
    )
    .bind(&ids)
    .bind(&at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
