//! The fleet counted for monitoring: agents by group and state, their certificates' expiry, and
//! every group's latest results per policy. Each is one grouped query (the results from the
//! cohorts' counters, crate::tallies), so a Prometheus scrape costs a few milliseconds whatever
//! the number of agents or results.

use sqlx::Row;
use time::OffsetDateTime;

use crate::{Store, StoreError, from_secs, on_pool, secs};

/// Whether an agent answers, as a monitor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AgentState {
    /// Not revoked, heartbeat seen recently.
    Online,
    /// Not revoked, no heartbeat for too long.
    Offline,
    /// Revoked: its certificates are refused.
    Revoked,
}

impl AgentState {
    /// The name used in metrics and documents.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Online => "online",
            AgentState::Offline => "offline",
            AgentState::Revoked => "revoked",
        }
    }
}

/// How many agents of one group are in one state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupAgents {
    /// The group.
    pub group: String,
    /// The state.
    pub state: AgentState,
    /// Agents.
    pub agents: u64,
}

/// The agents counted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentCensus {
    /// Per group and state, by group then state; states with no agent left out.
    pub groups: Vec<GroupAgents>,
    /// The earliest expiry of a certificate an agent that is not revoked holds now.
    pub earliest_cert_expiry: Option<OffsetDateTime>,
    /// Agents, not revoked, whose certificate has expired: they can no longer renew and must
    /// enrol again.
    pub expired_certs: u64,
}

/// One group's latest results of one policy, from the counters; revoked agents left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPolicyTally {
    /// The group.
    pub group: String,
    /// The policy.
    pub policy_id: String,
    /// Agents of the group that reported it.
    pub hosts: u64,
    /// Latest results that pass.
    pub passed: u64,
    /// Latest results that fail.
    pub failed: u64,
    /// Not applicable.
    pub not_applicable: u64,
    /// Waived on the host.
    pub waived: u64,
    /// Error or not run.
    pub other: u64,
}

impl Store {
    /// Agents by group and state at `now`: online when their last heartbeat is at or after
    /// `online_since`.
    pub async fn agent_census(
        &self,
        now: OffsetDateTime,
        online_since: OffsetDateTime,
    ) -> Result<AgentCensus, StoreError> {
        const GROUPS: &str = "SELECT a.grp, \
             CASE WHEN a.status = 'revoked' THEN 2 WHEN s.last_seen >= $1 THEN 0 ELSE 1 END AS state, \
             COUNT(*) AS n FROM agents a JOIN agent_seen s ON s.agent_id = a.id \
             GROUP BY a.grp, state ORDER BY a.grp, state";
        const CERTS: &str = "SELECT MIN(cert_not_after) AS earliest, \
             CAST(COALESCE(SUM(CASE WHEN cert_not_after <= $1 THEN 1 ELSE 0 END), 0) AS BIGINT) AS expired \
             FROM agents WHERE status <> 'revoked'";
        let since = secs(online_since);
        let (groups, certs) = on_pool!(&self.db, p => {
            let rows = sqlx::query(GROUPS).bind(since).fetch_all(p).await?;
            let groups = rows.iter().map(|r| {
                let state = match r.try_get::<i32, _>("state")? {
                    0 => AgentState::Online,
                    1 => AgentState::Offline,
                    _ => AgentState::Revoked,
                };
                Ok::<_, StoreError>(GroupAgents {
                    group: r.try_get("grp")?,
                    state,
                    agents: count(r.try_get("n")?),
                })
            }).collect::<Result<Vec<_>, _>>()?;
            let row = sqlx::query(CERTS).bind(secs(now)).fetch_one(p).await?;
            let earliest: Option<i64> = row.try_get("earliest")?;
            let expired: i64 = row.try_get("expired")?;
            (groups, (earliest, expired))
        });
        Ok(AgentCensus {
            groups,
            earliest_cert_expiry: certs.0.map(from_secs),
            expired_certs: count(certs.1),
        })
    }

    /// Every group's latest results per policy, summed from the cohorts' counters; groups and
    /// policies with no host left out. By group, then policy.
    pub async fn group_policy_tallies(&self) -> Result<Vec<GroupPolicyTally>, StoreError> {
        const CHECKS: &str = "SELECT c.grp, t.policy_id, \
             CAST(SUM(CASE WHEN t.status = 'pass' THEN t.hosts ELSE 0 END) AS BIGINT) AS passed, \
             CAST(SUM(CASE WHEN t.status = 'fail' THEN t.hosts ELSE 0 END) AS BIGINT) AS failed, \
             CAST(SUM(CASE WHEN t.status = 'not_applicable' THEN t.hosts ELSE 0 END) AS BIGINT) AS na, \
             CAST(SUM(CASE WHEN t.status = 'waived' THEN t.hosts ELSE 0 END) AS BIGINT) AS waived, \
             CAST(SUM(t.hosts) AS BIGINT) AS total \
             FROM cohort_checks t JOIN cohorts c ON c.id = t.cohort_id \
             WHERE c.revoked = 0 GROUP BY c.grp, t.policy_id";
        const HOSTS: &str = "SELECT c.grp, t.policy_id, CAST(SUM(t.hosts) AS BIGINT) AS hosts \
             FROM cohort_policies t JOIN cohorts c ON c.id = t.cohort_id \
             WHERE c.revoked = 0 GROUP BY c.grp, t.policy_id HAVING SUM(t.hosts) > 0 \
             ORDER BY c.grp, t.policy_id";
        let (hosts, checks) = on_pool!(&self.db, p => {
            let hosts = sqlx::query(HOSTS).fetch_all(p).await?.iter().map(|r| {
                Ok::<_, StoreError>((
                    (r.try_get::<String, _>("grp")?, r.try_get::<String, _>("policy_id")?),
                    count(r.try_get("hosts")?),
                ))
            }).collect::<Result<Vec<_>, _>>()?;
            let checks = sqlx::query(CHECKS).fetch_all(p).await?.iter().map(|r| {
                let key = (r.try_get::<String, _>("grp")?, r.try_get::<String, _>("policy_id")?);
                let n = [
                    count(r.try_get("passed")?),
                    count(r.try_get("failed")?),
                    count(r.try_get("na")?),
                    count(r.try_get("waived")?),
                    count(r.try_get("total")?),
                ];
                Ok::<_, StoreError>((key, n))
            }).collect::<Result<std::collections::HashMap<_, _>, _>>()?;
            (hosts, checks)
        });
        Ok(hosts
            .into_iter()
            .map(|((group, policy_id), hosts)| {
                let [passed, failed, na, waived, total] = checks
                    .get(&(group.clone(), policy_id.clone()))
                    .copied()
                    .unwrap_or_default();
                GroupPolicyTally {
                    group,
                    policy_id,
                    hosts,
                    passed,
                    failed,
                    not_applicable: na,
                    waived,
                    other: total.saturating_sub(passed + failed + na + waived),
                }
            })
            .collect())
    }
}

/// A stored count: never negative, whatever the column's type says.
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
