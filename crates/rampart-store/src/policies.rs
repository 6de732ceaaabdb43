//! Policies with immutable versions, and their assignments to groups and agents.

use sqlx::Row;
use time::OffsetDateTime;

use crate::{
    Assignment, PolicySummary, PolicyVersion, Store, StoreError, Target, from_secs, on_pool, secs,
};

/// What an upload adds: the caller has already parsed and validated the content.
#[derive(Debug, Clone)]
pub struct NewPolicyVersion<'a> {
    /// Policy id (from the policy itself).
    pub policy_id: &'a str,
    /// Human name.
    pub name: &'a str,
    /// Source format.
    pub format: &'a str,
    /// File name uploaded.
    pub file_name: &'a str,
    /// The bytes, exactly as uploaded.
    pub content: &'a [u8],
    /// SHA-256 of `content`, hex.
    pub digest: &'a str,
    /// Number of checks.
    pub check_count: i64,
}

macro_rules! version_columns {
    () => {
        "policy_id, version, digest, format, file_name, check_count, created_at"
    };
}

macro_rules! version_from_row {
    ($r:expr) => {{
        let r = $r;
        Ok::<PolicyVersion, StoreError>(PolicyVersion {
            policy_id: r.try_get("policy_id")?,
            version: r.try_get("version")?,
            digest: r.try_get("digest")?,
            format: r.try_get("format")?,
            file_name: r.try_get("file_name")?,
            check_count: r.try_get("check_count")?,
            created_at: from_secs(r.try_get("created_at")?),
        })
    }};
}

macro_rules! assignment_from_row {
    ($r:expr) => {{
        let r = $r;
        let kind: String = r.try_get("target_kind")?;
        Ok::<Assignment, StoreError>(Assignment {
            policy_id: r.try_get("policy_id")?,
            target: Target::from_parts(&kind, r.try_get("target")?)?,
            version: r.try_get("version")?,
            digest: r.try_get("digest")?,
            schedule: r.try_get("schedule")?,
            created_at: from_secs(r.try_get("created_at")?),
        })
    }};
}

impl Store {
    /// Adds a version of a policy, creating the policy on first upload. Uploading the same
    /// content as the newest version adds nothing and returns that version with `false`.
    /// Versions are never changed or deleted.
    pub async fn add_policy_version(
        &self,
        new: &NewPolicyVersion<'_>,
        now: OffsetDateTime,
    ) -> Result<(PolicyVersion, bool), StoreError> {
        const POLICY: &str = "INSERT INTO policies (id, name, created_at) VALUES ($1, $2, $3) \
                              ON CONFLICT (id) DO UPDATE SET name = excluded.name";
        let latest_sql = concat!(
            "SELECT ",
            version_columns!(),
            " FROM policy_versions WHERE policy_id = $1 \
             ORDER BY version DESC LIMIT 1"
        );
        let insert_sql = concat!(
            "INSERT INTO policy_versions (",
            version_columns!(),
            ", content) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        );
        let out = on_pool!(&self.db, p => {
            let mut tx = p.begin().await?;
            sqlx::query(POLICY).bind(new.policy_id).bind(new.name).bind(secs(now)).execute(&mut *tx).await?;
            let latest = match sqlx::query(latest_sql).bind(new.policy_id).fetch_optional(&mut *tx).await? {
                Some(r) => Some(version_from_row!(&r)?),
                None => None,
            };
            match latest {
                Some(v) if v.digest == new.digest => {
                    tx.commit().await?;
                    (v, false)
                }
                latest => {
                    let version = latest.map_or(1, |v| v.version + 1);
                    sqlx::query(insert_sql)
                        .bind(new.policy_id)
                        .bind(version)
                        .bind(new.digest)
                        .bind(new.format)
                        .bind(new.file_name)
                        .bind(new.check_count)
                        .bind(secs(now))
                        .bind(new.content)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    (PolicyVersion {
                        policy_id: new.policy_id.to_string(),
                        version,
                        digest: new.digest.to_string(),
                        format: new.format.to_string(),
                        file_name: new.file_name.to_string(),
                        check_count: new.check_count,
                        created_at: from_secs(secs(now)),
                    }, true)
                }
            }
        });
        Ok(out)
    }

    /// Every policy with its newest version.
    pub async fn policies(&self) -> Result<Vec<PolicySummary>, StoreError> {
        const SQL: &str = "SELECT p.id, p.name, \
             (SELECT COUNT(*) FROM policy_versions c WHERE c.policy_id = p.id) AS versions, \
             v.policy_id, v.version, v.digest, v.format, v.file_name, v.check_count, v.created_at \
             FROM policies p JOIN policy_versions v ON v.policy_id = p.id \
             AND v.version = (SELECT MAX(m.version) FROM policy_versions m WHERE m.policy_id = p.id) \
             ORDER BY p.id";
        let rows = on_pool!(&self.db, p => {
            let rows = sqlx::query(SQL).fetch_all(p).await?;
            rows.iter().map(|r| Ok::<_, StoreError>(PolicySummary {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                versions: r.try_get("versions")?,
                latest: version_from_row!(r)?,
            })).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// Every version of a policy, oldest first.
    pub async fn policy_versions(&self, policy_id: &str) -> Result<Vec<PolicyVersion>, StoreError> {
        let sql = concat!(
            "SELECT ",
            version_columns!(),
            " FROM policy_versions WHERE policy_id = $1 ORDER BY version"
        );
        let rows = on_pool!(&self.db, p => {
            let rows = sqlx::query(sql).bind(policy_id).fetch_all(p).await?;
            rows.iter().map(|r| version_from_row!(r)).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// One version with its content.
    pub async fn policy_version(
        &self,
        policy_id: &str,
        version: i64,
    ) -> Result<Option<(PolicyVersion, Vec<u8>)>, StoreError> {
        let sql = concat!(
            "SELECT ",
            version_columns!(),
            ", content FROM policy_versions WHERE policy_id = $1 AND version = $2"
        );
        let out = on_pool!(&self.db, p => match sqlx::query(sql).bind(policy_id).bind(version).fetch_optional(p).await? {
            Some(r) => Some((version_from_row!(&r)?, r.try_get::<Vec<u8>, _>("content")?)),
            None => None,
        });
        Ok(out)
    }

    /// Assigns a version of a policy to a group or agent with a cron schedule, replacing that
    /// target's earlier assignment of the same policy.
    pub async fn assign(
        &self,
        policy_id: &str,
        version: i64,
        target: &Target,
        schedule: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO assignments (policy_id, target_kind, target, version, schedule, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (policy_id, target_kind, target) DO UPDATE SET \
             version = excluded.version, schedule = excluded.schedule, created_at = excluded.created_at";
        if self.policy_version(policy_id, version).await?.is_none() {
            return Err(StoreError::not_found(
                "policy version",
                format!("{policy_id}@{version}"),
            ));
        }
        on_pool!(&self.db, p => {
            sqlx::query(SQL)
            .bind(policy_id)
            .bind(target.kind())
            .bind(target.name())
            .bind(version)
            .bind(schedule)
            .bind(secs(now))
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Removes an assignment. Returns false when there was none.
    pub async fn unassign(&self, policy_id: &str, target: &Target) -> Result<bool, StoreError> {
        const SQL: &str =
            "DELETE FROM assignments WHERE policy_id = $1 AND target_kind = $2 AND target = $3";
        let n = on_pool!(&self.db, p => sqlx::query(SQL)
            .bind(policy_id)
            .bind(target.kind())
            .bind(target.name())
            .execute(p)
            .await?
            .rows_affected());
        Ok(n > 0)
    }

    /// Every assignment, optionally of one policy.
    pub async fn assignments(
        &self,
        policy_id: Option<&str>,
    ) -> Result<Vec<Assignment>, StoreError> {
        const SQL: &str = "SELECT a.policy_id, a.target_kind, a.target, a.version, v.digest, a.schedule, a.created_at \
             FROM assignments a JOIN policy_versions v ON v.policy_id = a.policy_id AND v.version = a.version \
             WHERE ($1 IS NULL OR a.policy_id = $1) ORDER BY a.policy_id, a.target_kind, a.target";
        let rows = on_pool!(&self.db, p => {
            let rows = sqlx::query(SQL).bind(policy_id).fetch_all(p).await?;
            rows.iter().map(|r| assignment_from_row!(r)).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// What one agent must run: its own assignments, and its group's for policies it has no
    /// assignment of its own for (the more specific target wins).
    pub async fn assignments_for_agent(
        &self,
        agent_id: &str,
        group: &str,
    ) -> Result<Vec<Assignment>, StoreError> {
        const SQL: &str = "SELECT a.policy_id, a.target_kind, a.target, a.version, v.digest, a.schedule, a.created_at \
             FROM assignments a JOIN policy_versions v ON v.policy_id = a.policy_id AND v.version = a.version \
             WHERE (a.target_kind = 'agent' AND a.target = $1) \
                OR (a.target_kind = 'group' AND a.target = $2 AND NOT EXISTS ( \
                    SELECT 1 FROM assignments o WHERE o.policy_id = a.policy_id \
                    AND o.target_kind = 'agent' AND o.target = $1)) \
             ORDER BY a.policy_id";
        let rows = on_pool!(&self.db, p => {
            let rows = sqlx::query(SQL).bind(agent_id).bind(group).fetch_all(p).await?;
            rows.iter().map(|r| assignment_from_row!(r)).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }
}
