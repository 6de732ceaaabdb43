//! What the dashboard's fleet views add up: the latest state of every check, tallied by policy
//! and by check over the agents a user may see, narrowed by group, operating system and label.
//! The tallies are sums of the cohorts' counters (crate::tallies), not scans of every latest
//! result; one check's hosts are read from the latest results a page at a time. Revoked agents
//! are left out: their last word is no longer the fleet's state.

use sqlx::Row;
use time::OffsetDateTime;

use crate::{Store, StoreError, from_secs, on_pool, secs};

/// Which agents a fleet view covers.
#[derive(Debug, Clone, Copy, Default)]
pub struct FleetScope<'a> {
    /// The groups the viewer may see; `None` for every group.
    pub visible: Option<&'a [String]>,
    /// One group only.
    pub group: Option<&'a str>,
    /// One operating system only (as the agents reported it).
    pub os: Option<&'a str>,
    /// Agents with this label (name, value) only.
    pub label: Option<(&'a str, &'a str)>,
}

/// One policy's latest results across the scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyTally {
    /// The policy.
    pub policy_id: String,
    /// Agents that reported it.
    pub hosts: u64,
    /// Latest results that pass.
    pub passed: u64,
    /// Latest results that fail.
    pub failed: u64,
    /// Every latest result.
    pub total: u64,
}

/// A check failing now on some agents of the scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingTally {
    /// The policy.
    pub policy_id: String,
    /// The check.
    pub check_id: String,
    /// Agents whose latest result of it fails.
    pub hosts: u64,
    /// The start of the most recent hour in which one of them started failing.
    pub latest_hour: OffsetDateTime,
}

impl FleetScope<'_> {
    /// Whether an agent already in memory passes the scope's group, OS and label filters: the
    /// same conditions [`push_scope`] puts in SQL (visibility and revocation are the caller's,
    /// since the overview counts revoked agents and lists the groups a viewer may pick).
    pub fn narrows_to(&self, agent: &crate::Agent) -> bool {
        self.group.is_none_or(|g| g == agent.group)
            && self.os.is_none_or(|o| o == agent.os)
            && self
                .label
                .is_none_or(|(k, v)| agent.labels.get(k).is_some_and(|have| have == v))
    }
}

/// What a scope's conditions are put on: the agents themselves (`agents a`) or their cohorts
/// (`cohorts c`, crate::tallies), which carry the same group, OS and labels.
#[derive(Clone, Copy)]
enum On {
    Agents,
    Cohorts,
}

/// Appends the scope's conditions to a query that already has a `WHERE`.
fn push_scope<DB: sqlx::Database>(
    qb: &mut sqlx::QueryBuilder<DB>,
    scope: &FleetScope<'_>,
    backend: crate::Backend,
    on: On,
) where
    String: for<'t> sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    let t = match on {
        On::Agents => {
            qb.push(" AND a.status <> 'revoked'");
            "a"
        }
        On::Cohorts => {
            qb.push(" AND c.revoked = 0");
            "c"
        }
    };
    if let Some(visible) = scope.visible {
        if visible.is_empty() {
            qb.push(" AND 1 = 0");
        } else {
            qb.push(format!(" AND {t}.grp IN ("));
            let mut list = qb.separated(", ");
            for g in visible {
                list.push_bind(g.clone());
            }
            qb.push(")");
        }
    }
    if let Some(group) = scope.group {
        qb.push(format!(" AND {t}.grp = "))
            .push_bind(group.to_owned());
    }
    if let Some(os) = scope.os {
        qb.push(format!(" AND {t}.os = ")).push_bind(os.to_owned());
    }
    // Labels are a JSON object in a text column on both backends; the name is bound, never
    // spliced into the SQL.
    if let Some((name, value)) = scope.label {
        match backend {
            crate::Backend::Sqlite => qb
                .push(format!(" AND json_extract({t}.labels, "))
                .push_bind(format!("$.\"{}\"", name.replace('"', "")))
                .push(") = "),
            crate::Backend::Postgres => qb
                .push(format!(" AND ({t}.labels::jsonb ->> "))
                .push_bind(name.to_owned())
                .push(") = "),
        };
        qb.push_bind(value.to_owned());
    }
}

/// One check's latest results across the scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckTally {
    /// The policy and the check.
    pub policy_id: String,
    /// See `policy_id`.
    pub check_id: String,
    /// Latest results that pass, fail, are not applicable, and the rest.
    pub passed: u64,
    /// See `passed`.
    pub failed: u64,
    /// See `passed`.
    pub not_applicable: u64,
    /// Waived on the host (by a waiver the agent applied when it ran).
    pub waived: u64,
    /// Error or not run.
    pub other: u64,
}

impl Store {
    /// How many agents of the scope reported each policy, by policy id.
    pub async fn fleet_policy_hosts(
        &self,
        scope: &FleetScope<'_>,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        // SUM over BIGINT is NUMERIC in PostgreSQL, hence the casts.
        const HOSTS: &str = "SELECT t.policy_id, CAST(SUM(t.hosts) AS BIGINT) AS hosts \
             FROM cohort_policies t JOIN cohorts c ON c.id = t.cohort_id WHERE 1 = 1";
        let rows = on_pool!(&self.db, p => {
            let mut qb = sqlx::QueryBuilder::new(HOSTS);
            push_scope(&mut qb, scope, self.backend(), On::Cohorts);
            qb.push(" GROUP BY t.policy_id HAVING SUM(t.hosts) > 0 ORDER BY t.policy_id");
            let rows = qb.build().fetch_all(p).await?;
            rows.iter().map(|r| {
                Ok::<_, StoreError>((r.try_get("policy_id")?, count(r.try_get("hosts")?)))
            }).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// The checks that started failing at or after `since` (to the hour) on the most agents of
    /// the scope that still fail them, most hosts first, at most `limit`.
    pub async fn fleet_failing_checks(
        &self,
        scope: &FleetScope<'_>,
        since: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<FailingTally>, StoreError> {
        const HEAD: &str = "SELECT t.policy_id, t.check_id, CAST(SUM(t.hosts) AS BIGINT) AS hosts, \
             MAX(t.since_hour) AS latest_hour \
             FROM cohort_failing t JOIN cohorts c ON c.id = t.cohort_id WHERE t.since_hour >= ";
        let rows = on_pool!(&self.db, p => {
            let mut qb = sqlx::QueryBuilder::new(HEAD);
            qb.push_bind(secs(since).div_euclid(3600));
            push_scope(&mut qb, scope, self.backend(), On::Cohorts);
            qb.push(" GROUP BY t.policy_id, t.check_id HAVING SUM(t.hosts) > 0 \
                      ORDER BY hosts DESC, t.policy_id, t.check_id LIMIT ")
                .push_bind(i64::from(limit));
            let rows = qb.build().fetch_all(p).await?;
            rows.iter().map(|r| {
                Ok::<_, StoreError>(FailingTally {
                    policy_id: r.try_get("policy_id")?,
                    check_id: r.try_get("check_id")?,
                    hosts: count(r.try_get("hosts")?),
                    latest_hour: from_secs(r.try_get::<i64, _>("latest_hour")?.saturating_mul(3600)),
                })
            }).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// Every check's tally over the scope: what per-framework scores are summed from.
    pub async fn fleet_check_tallies(
        &self,
        scope: &FleetScope<'_>,
    ) -> Result<Vec<CheckTally>, StoreError> {
        self.check_tallies(scope, None).await
    }

    /// One check's tally over the scope (zero everywhere when no agent reported it).
    pub async fn fleet_check_tally(
        &self,
        scope: &FleetScope<'_>,
        policy_id: &str,
        check_id: &str,
    ) -> Result<CheckTally, StoreError> {
        let mut rows = self
            .check_tallies(scope, Some((policy_id, check_id)))
            .await?;
        Ok(rows.pop().unwrap_or(CheckTally {
            policy_id: policy_id.to_owned(),
            check_id: check_id.to_owned(),
            passed: 0,
            failed: 0,
            not_applicable: 0,
            waived: 0,
            other: 0,
        }))
    }

    /// How many agents of the scope have `status` as their latest result of one check.
    pub async fn fleet_check_status_count(
        &self,
        scope: &FleetScope<'_>,
        policy_id: &str,
        check_id: &str,
        status: rampart_core::Status,
    ) -> Result<u64, StoreError> {
        let n: Option<i64> = on_pool!(&self.db, p => {
            let mut qb = sqlx::QueryBuilder::new(
                "SELECT CAST(SUM(t.hosts) AS BIGINT) FROM cohort_checks t \
                 JOIN cohorts c ON c.id = t.cohort_id WHERE t.policy_id = ",
            );
            qb.push_bind(policy_id.to_owned())
                .push(" AND t.check_id = ")
                .push_bind(check_id.to_owned())
                .push(" AND t.status = ")
                .push_bind(status.as_str().to_owned());
            push_scope(&mut qb, scope, self.backend(), On::Cohorts);
            qb.build_query_scalar().fetch_one(p).await?
        });
        Ok(count(n.unwrap_or(0)))
    }

    /// A policy's latest results over the scope that pass and that fail: what its score is
    /// (passed over both) as the dashboard shows it.
    pub async fn policy_pass_fail(
        &self,
        scope: &FleetScope<'_>,
        policy_id: &str,
    ) -> Result<(u64, u64), StoreError> {
        const HEAD: &str = "SELECT \
             CAST(COALESCE(SUM(CASE WHEN t.status = 'pass' THEN t.hosts ELSE 0 END), 0) AS BIGINT) AS passed, \
             CAST(COALESCE(SUM(CASE WHEN t.status = 'fail' THEN t.hosts ELSE 0 END), 0) AS BIGINT) AS failed \
             FROM cohort_checks t JOIN cohorts c ON c.id = t.cohort_id WHERE t.policy_id = ";
        let (passed, failed) = on_pool!(&self.db, p => {
            let mut qb = sqlx::QueryBuilder::new(HEAD);
            qb.push_bind(policy_id.to_owned());
            push_scope(&mut qb, scope, self.backend(), On::Cohorts);
            let r = qb.build().fetch_one(p).await?;
            (count(r.try_get("passed")?), count(r.try_get("failed")?))
        });
        Ok((passed, failed))
    }

    /// Agents of the scope whose latest result of one check fails and that started failing
    /// it at or after `since` (to the hour).
    pub async fn newly_failing_hosts(
        &self,
        scope: &FleetScope<'_>,
        policy_id: &str,
        check_id: &str,
        since: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let n: Option<i64> = on_pool!(&self.db, p => {
            let mut qb = sqlx::QueryBuilder::new(
                "SELECT CAST(SUM(t.hosts) AS BIGINT) FROM cohort_failing t \
                 JOIN cohorts c ON c.id = t.cohort_id WHERE t.policy_id = ",
            );
            qb.push_bind(policy_id.to_owned())
                .push(" AND t.check_id = ")
                .push_bind(check_id.to_owned())
                .push(" AND t.since_hour >= ")
                .push_bind(secs(since).div_euclid(3600));
            push_scope(&mut qb, scope, self.backend(), On::Cohorts);
            qb.build_query_scalar().fetch_one(p).await?
        });
        Ok(count(n.unwrap_or(0)))
    }

    async fn check_tallies(
        &self,
        scope: &FleetScope<'_>,
        only: Option<(&str, &str)>,
    ) -> Result<Vec<CheckTally>, StoreError> {
        const HEAD: &str = "SELECT t.policy_id, t.check_id, \
             CAST(SUM(CASE WHEN t.status = 'pass' THEN t.hosts ELSE 0 END) AS BIGINT) AS passed, \
             CAST(SUM(CASE WHEN t.status = 'fail' THEN t.hosts ELSE 0 END) AS BIGINT) AS failed, \
             CAST(SUM(CASE WHEN t.status = 'not_applicable' THEN t.hosts ELSE 0 END) AS BIGINT) AS na, \
             CAST(SUM(CASE WHEN t.status = 'waived' THEN t.hosts ELSE 0 END) AS BIGINT) AS waived, \
             CAST(SUM(t.hosts) AS BIGINT) AS total \
             FROM cohort_checks t JOIN cohorts c ON c.id = t.cohort_id WHERE 1 = 1";
        let rows = on_pool!(&self.db, p => {
            let mut qb = sqlx::QueryBuilder::new(HEAD);
            if let Some((policy_id, check_id)) = only {
                qb.push(" AND t.policy_id = ").push_bind(policy_id.to_owned());
                qb.push(" AND t.check_id = ").push_bind(check_id.to_owned());
            }
            push_scope(&mut qb, scope, self.backend(), On::Cohorts);
            qb.push(" GROUP BY t.policy_id, t.check_id HAVING SUM(t.hosts) > 0");
            let rows = qb.build().fetch_all(p).await?;
            rows.iter().map(|r| {
                let (passed, failed, na, waived, total) = (
                    count(r.try_get("passed")?),
                    count(r.try_get("failed")?),
                    count(r.try_get("na")?),
                    count(r.try_get("waived")?),
                    count(r.try_get("total")?),
                );
                Ok::<_, StoreError>(CheckTally {
                    policy_id: r.try_get("policy_id")?,
                    check_id: r.try_get("check_id")?,
                    passed,
                    failed,
                    not_applicable: na,
                    waived,
                    other: total.saturating_sub(passed + failed + na + waived),
                })
            }).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// The operating systems the scope's agents reported (ignoring its own `os`), sorted.
    pub async fn fleet_oses(&self, scope: &FleetScope<'_>) -> Result<Vec<String>, StoreError> {
        let scope = FleetScope { os: None, ..*scope };
        let rows = on_pool!(&self.db, p => {
            let mut qb = sqlx::QueryBuilder::new(
                "SELECT DISTINCT c.os FROM cohorts c \
                 WHERE EXISTS (SELECT 1 FROM agents a WHERE a.cohort_id = c.id)",
            );
            push_scope(&mut qb, &scope, self.backend(), On::Cohorts);
            qb.push(" ORDER BY c.os");
            let rows = qb.build().fetch_all(p).await?;
            rows.iter().map(|r| r.try_get::<String, _>("os")).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }
}

/// Every policy's tally: its hosts (from [`Store::fleet_policy_hosts`]) and its checks' tallies
/// (from [`Store::fleet_check_tallies`]) summed, by policy id.
pub fn policy_tallies(hosts: &[(String, u64)], checks: &[CheckTally]) -> Vec<PolicyTally> {
    let mut by: std::collections::BTreeMap<&str, PolicyTally> = hosts
        .iter()
        .map(|(p, n)| {
            let t = PolicyTally {
                policy_id: p.clone(),
                hosts: *n,
                passed: 0,
                failed: 0,
                total: 0,
            };
            (p.as_str(), t)
        })
        .collect();
    for c in checks {
        if let Some(t) = by.get_mut(c.policy_id.as_str()) {
            t.passed += c.passed;
            t.failed += c.failed;
            t.total += c.passed + c.failed + c.not_applicable + c.waived + c.other;
        }
    }
    by.into_values().collect()
}

/// A stored count: never negative, whatever the column's type says.
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// One policy's score in one time bucket over the scope.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendPoint {
    /// The policy.
    pub policy_id: String,
    /// Start of the bucket.
    pub bucket_start: OffsetDateTime,
    /// Passed checks summed over the bucket's runs.
    pub passed: u64,
    /// Failed checks summed over them.
    pub failed: u64,
}

impl Store {
    /// Every policy's passed and failed checks per bucket of `bucket_secs`, over the runs of
    /// the scope's agents that started at or after `since`; by policy, then time.
    pub async fn fleet_trends(
        &self,
        scope: &FleetScope<'_>,
        since: OffsetDateTime,
        bucket_secs: i64,
    ) -> Result<Vec<TrendPoint>, StoreError> {
        let bucket = bucket_secs.max(1);
        let rows = on_pool!(&self.db, p => {
            // SUM over BIGINT is NUMERIC in PostgreSQL, hence the casts.
            let mut qb = sqlx::QueryBuilder::new(format!(
                "SELECT r.policy_id, (r.started_at / {bucket}) * {bucket} AS bucket, \
                 CAST(SUM(r.passed) AS BIGINT) AS passed, CAST(SUM(r.failed) AS BIGINT) AS failed \
                 FROM runs r JOIN agents a ON a.id = r.agent_id WHERE r.started_at >= "
            ));
            qb.push_bind(secs(since));
            push_scope(&mut qb, scope, self.backend(), On::Agents);
            qb.push(format!(
                " GROUP BY r.policy_id, (r.started_at / {bucket}) * {bucket} ORDER BY r.policy_id, bucket"
            ));
            let rows = qb.build().fetch_all(p).await?;
            rows.iter().map(|r| {
                Ok::<_, StoreError>(TrendPoint {
                    policy_id: r.try_get("policy_id")?,
                    bucket_start: from_secs(r.try_get("bucket")?),
                    passed: u64::try_from(r.try_get::<i64, _>("passed")?).unwrap_or(0),
                    failed: u64::try_from(r.try_get::<i64, _>("failed")?).unwrap_or(0),
                })
            }).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// When each agent's newest run started, by agent id (agents without runs are absent).
    pub async fn agents_last_run(
        &self,
    ) -> Result<std::collections::HashMap<String, OffsetDateTime>, StoreError> {
        const SQL: &str = "SELECT agent_id, MAX(started_at) AS newest FROM runs GROUP BY agent_id";
        let rows = on_pool!(&self.db, p => {
            let rows = sqlx::query(SQL).fetch_all(p).await?;
            rows.iter().map(|r| {
                Ok::<_, StoreError>((r.try_get::<String, _>("agent_id")?, from_secs(r.try_get("newest")?)))
            }).collect::<Result<std::collections::HashMap<_, _>, _>>()?
        });
        Ok(rows)
    }
}

/// One agent's latest result of one check, with what it saw.
#[derive(Debug, Clone)]
pub struct CheckOnHost {
    /// The agent.
    pub agent_id: String,
    /// Its host name.
    pub hostname: String,
    /// Its group.
    pub group: String,
    /// Its operating system.
    pub os: String,
    /// The latest status.
    pub status: rampart_core::Status,
    /// Since when the check has had that status on this agent.
    pub since: OffsetDateTime,
    /// The run that reported it.
    pub run_id: String,
    /// The result as stored (evidence included), when the run is still kept.
    pub outcome: Option<rampart_core::CheckOutcome>,
}

impl Store {
    /// Every agent's latest result of `check_id` of `policy_id` in the scope, optionally of
    /// one status: failures first, then by host name; `limit` rows from `offset` on. Only the
    /// rows of the page are joined to their stored result (evidence and all).
    pub async fn fleet_check(
        &self,
        scope: &FleetScope<'_>,
        policy_id: &str,
        check_id: &str,
        status: Option<rampart_core::Status>,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<CheckOnHost>, StoreError> {
        let rows = on_pool!(&self.db, p => {
            let mut qb = sqlx::QueryBuilder::new(
                "SELECT x.agent_id, x.hostname, x.grp, x.os, x.status, x.since, x.run_id, c.outcome, \
                 c.text_id, t.text FROM (\
                 SELECT l.agent_id, a.hostname, a.grp, a.os, l.status, l.since, n.run_id, l.check_id, \
                 CASE l.status WHEN 'fail' THEN 0 WHEN 'error' THEN 1 ELSE 2 END AS ord \
                 FROM latest_results l JOIN agents a ON a.id = l.agent_id \
                 JOIN policy_latest n ON n.agent_id = l.agent_id AND n.policy_id = l.policy_id \
                 WHERE l.policy_id = ",
            );
            qb.push_bind(policy_id.to_owned())
                .push(" AND l.check_id = ")
                .push_bind(check_id.to_owned());
            if let Some(s) = status {
                qb.push(" AND l.status = ").push_bind(s.as_str().to_owned());
            }
            push_scope(&mut qb, scope, self.backend(), On::Agents);
            qb.push(" ORDER BY ord, a.hostname, l.agent_id LIMIT ")
                .push_bind(i64::from(limit))
                .push(" OFFSET ")
                .push_bind(i64::try_from(offset).unwrap_or(i64::MAX));
            qb.push(") x LEFT JOIN check_results c ON c.run_id = x.run_id AND c.check_id = x.check_id \
                     LEFT JOIN check_texts t ON t.id = c.text_id \
                     ORDER BY x.ord, x.hostname, x.agent_id");
            let rows = qb.build().fetch_all(p).await?;
            rows.iter().map(|r| {
                let status: String = r.try_get("status")?;
                let outcome: Option<String> = r.try_get("outcome")?;
                let outcome = outcome
                    .map(|o| crate::texts::joined(o, r.try_get("text_id")?, r.try_get("text")?))
                    .transpose()?;
                Ok::<_, StoreError>(CheckOnHost {
                    agent_id: r.try_get("agent_id")?,
                    hostname: r.try_get("hostname")?,
                    group: r.try_get("grp")?,
                    os: r.try_get("os")?,
                    status: status.parse().map_err(|e| StoreError::corrupt("latest_results.status", e))?,
                    since: from_secs(r.try_get("since")?),
                    run_id: r.try_get("run_id")?,
                    outcome: outcome
                        .map(|o| serde_json::from_str(&o))
                        .transpose()
                        .map_err(|e| StoreError::corrupt("check_results.outcome", e))?,
                })
            }).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }
}
