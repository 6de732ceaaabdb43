//! The fleet's counters: how many agents of each cohort (one combination of group, OS, labels
//! and revocation) have each status as the latest result of each check, report each policy,
//! and fail each check since each hour. The dashboard's fleet-wide views sum these counters
//! instead of scanning every agent's latest result of every check, which is what kept the
//! overview at seconds with a million results (docs/performance.md).
//!
//! The counters move in the same transaction as what they count: ingestion works out each
//! run's effect on the latest results ([`Deltas::moved`], [`Deltas::left`]: what it writes
//! to `latest_results`) and an agent that changes cohort (re-enrolment with other labels, revocation) takes
//! its counts along ([`Recohort`]). Counter rows are written in
//! key order, so that concurrent PostgreSQL transactions lock them in one order and cannot
//! deadlock on them.

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::Row;

use crate::StoreError;

/// The counter tables' upserts add to what is stored: one clause per table, shared by every
/// writer of them.
macro_rules! checks_conflict {
    () => {
        " ON CONFLICT (cohort_id, policy_id, check_id, status) \
         DO UPDATE SET hosts = cohort_checks.hosts + excluded.hosts"
    };
}
macro_rules! policies_conflict {
    () => {
        " ON CONFLICT (cohort_id, policy_id) \
         DO UPDATE SET hosts = cohort_policies.hosts + excluded.hosts"
    };
}
macro_rules! failing_conflict {
    () => {
        " ON CONFLICT (cohort_id, policy_id, check_id, since_hour) \
         DO UPDATE SET hosts = cohort_failing.hosts + excluded.hosts"
    };
}

/// A cohort's row id.
pub(crate) type CohortId = i64;

/// One latest result: the key is (agent, policy, check).
pub(crate) type Key = (String, String, String);

/// What `latest_results` holds for one key. (When it was last observed is the agent's newest
/// run of the policy, `policy_latest`, the same for every check of the pair.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Latest {
    /// The status.
    pub status: String,
    /// When the check entered that status (Unix seconds).
    pub since: i64,
}

impl Latest {
    /// The status and when it was entered, as the counters key them.
    fn key(&self) -> (&str, i64) {
        (&self.status, self.since)
    }
}

/// The counter changes a batch's moves in the latest states make. It holds no copy of the
/// stored states: the batch reads them once ([`Before::stored`]), finds each check's old state
/// there, and tells this only what moves, so a batch whose checks keep their statuses costs
/// nothing here (copying every stored state into a map was most of the counters' share of a
/// batch's CPU, docs/performance.md).
#[derive(Debug, Default)]
pub(crate) struct Deltas {
    /// (cohort, policy, check, status) → change in hosts.
    checks: BTreeMap<(CohortId, String, String, String), i64>,
    /// (cohort, policy) → change in hosts.
    policies: BTreeMap<(CohortId, String), i64>,
    /// (cohort, policy, check, hour it started failing) → change in hosts.
    failing: BTreeMap<(CohortId, String, String, i64), i64>,
}

/// The hour a failure started in, as `cohort_failing` keys it.
fn hour(since: i64) -> i64 {
    since.div_euclid(3600)
}

impl Deltas {
    /// Counts `n` hosts into (or, negative, out of) a check's `status`, entered at `since`.
    fn count(
        &mut self,
        cohort: CohortId,
        policy: &str,
        check: &str,
        (status, since): (&str, i64),
        n: i64,
    ) {
        *self
            .checks
            .entry((
                cohort,
                policy.to_owned(),
                check.to_owned(),
                status.to_owned(),
            ))
            .or_default() += n;
        if status == "fail" {
            *self
                .failing
                .entry((cohort, policy.to_owned(), check.to_owned(), hour(since)))
                .or_default() += n;
        }
    }

    /// An agent's first result of a policy: the host now reports it. (The caller knows the
    /// agent holds no latest state of the policy.)
    pub(crate) fn first_report(&mut self, cohort: CohortId, policy: &str) {
        *self
            .policies
            .entry((cohort, policy.to_owned()))
            .or_default() += 1;
    }

    /// A check's latest state moves from `was` (none for the agent's first result of it) to
    /// `now`, a status and when it was entered (borrowed: the caller has them in the batch's
    /// rows, and most moves build no owned state). The caller calls this once per check and
    /// batch, with the stored state, and only when the status changes: `since` moves with the
    /// status and not otherwise.
    pub(crate) fn moved(
        &mut self,
        cohort: CohortId,
        policy: &str,
        check: &str,
        was: Option<&Latest>,
        now: (&str, i64),
    ) {
        if let Some(was) = was {
            self.count(cohort, policy, check, was.key(), -1);
        }
        self.count(cohort, policy, check, now, 1);
    }

    /// A stored check that the agent's newest run of the policy no longer has (a policy version
    /// that dropped it): its state leaves the counts.
    pub(crate) fn left(&mut self, cohort: CohortId, policy: &str, check: &str, was: &Latest) {
        self.count(cohort, policy, check, was.key(), -1);
    }

    /// An agent moving from one cohort (none for one not yet counted) to another, with the
    /// latest results it holds (`held`): its counts leave the first and join the second.
    pub(crate) fn move_agent(
        &mut self,
        held: &[(Key, Latest)],
        from: Option<CohortId>,
        to: CohortId,
    ) {
        let policies: HashSet<&str> = held.iter().map(|(k, _)| k.1.as_str()).collect();
        for p in policies {
            if let Some(from) = from {
                *self.policies.entry((from, p.to_owned())).or_default() -= 1;
            }
            *self.policies.entry((to, p.to_owned())).or_default() += 1;
        }
        for ((_, policy, check), l) in held {
            if let Some(from) = from {
                self.count(from, policy, check, l.key(), -1);
            }
            self.count(to, policy, check, l.key(), 1);
        }
    }

    fn settle(&mut self) {
        self.checks.retain(|_, n| *n != 0);
        self.policies.retain(|_, n| *n != 0);
        self.failing.retain(|_, n| *n != 0);
    }
}

/// The cohort an agent with these attributes belongs to, created if new.
macro_rules! cohort_id {
    ($conn:expr, $grp:expr, $os:expr, $labels:expr, $revoked:expr) => {{
        const INSERT: &str = "INSERT INTO cohorts (grp, os, labels, revoked) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (grp, os, labels, revoked) DO NOTHING";
        const SELECT: &str =
            "SELECT id FROM cohorts WHERE grp = $1 AND os = $2 AND labels = $3 AND revoked = $4";
        sqlx::query(INSERT)
            .bind($grp)
            .bind($os)
            .bind($labels)
            .bind($revoked)
            .execute(&mut *$conn)
            .await?;
        sqlx::query_scalar::<_, i64>(SELECT)
            .bind($grp)
            .bind($os)
            .bind($labels)
            .bind($revoked)
            .fetch_one(&mut *$conn)
            .await?
    }};
}

/// One agent's cohort attributes and current cohort, locked for the transaction on PostgreSQL.
struct AgentCohort {
    grp: String,
    os: String,
    labels: String,
    revoked: i64,
    cohort: Option<CohortId>,
}

macro_rules! agent_cohort_sql {
    () => {
        "SELECT grp, os, labels, \
         CAST(CASE WHEN status = 'revoked' THEN 1 ELSE 0 END AS BIGINT) AS revoked, \
         cohort_id FROM agents WHERE id = $1"
    };
}
const AGENT_LATEST: &str =
    "SELECT policy_id, check_id, status, since FROM latest_results WHERE agent_id = $1";

fn agent_cohort<R: Row>(r: &R) -> Result<AgentCohort, StoreError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    i64: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
{
    Ok(AgentCohort {
        grp: r.try_get("grp")?,
        os: r.try_get("os")?,
        labels: r.try_get("labels")?,
        revoked: r.try_get("revoked")?,
        cohort: r.try_get("cohort_id")?,
    })
}

fn latest_row<R: Row>(agent: &str, r: &R) -> Result<(Key, Latest), StoreError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    i64: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
{
    Ok((
        (
            agent.to_owned(),
            r.try_get("policy_id")?,
            r.try_get("check_id")?,
        ),
        Latest {
            status: r.try_get("status")?,
            since: r.try_get("since")?,
        },
    ))
}

/// Puts an agent in the cohort its stored attributes name, moving its counts if that changed:
/// called on the transaction that changed the agent (enrolment, revocation), whichever backend.
pub(crate) trait Recohort {
    async fn recohort(&mut self, agent: &str) -> Result<(), StoreError>;
}

/// The body of [`Recohort::recohort`], the same on both backends but for the statement that
/// reads (and on PostgreSQL locks) the agent's row and the function that writes the counters.
macro_rules! recohort {
    ($conn:expr, $agent:expr, $select:expr, $apply:ident) => {{
        let (conn, agent) = ($conn, $agent);
        let Some(row) = sqlx::query($select)
            .bind(agent)
            .fetch_optional(&mut *conn)
            .await?
        else {
            return Ok(());
        };
        let a = agent_cohort(&row)?;
        let to = cohort_id!(conn, &a.grp, &a.os, &a.labels, a.revoked);
        if a.cohort == Some(to) {
            return Ok(());
        }
        sqlx::query("UPDATE agents SET cohort_id = $2 WHERE id = $1")
            .bind(agent)
            .bind(to)
            .execute(&mut *conn)
            .await?;
        let rows = sqlx::query(AGENT_LATEST)
            .bind(agent)
            .fetch_all(&mut *conn)
            .await?;
        let held = rows
            .iter()
            .map(|r| latest_row(agent, r))
            .collect::<Result<Vec<_>, _>>()?;
        let mut d = Deltas::default();
        d.move_agent(&held, a.cohort, to);
        $apply(conn, &mut d).await
    }};
}

impl Recohort for sqlx::SqliteConnection {
    async fn recohort(&mut self, agent: &str) -> Result<(), StoreError> {
        recohort!(self, agent, agent_cohort_sql!(), apply_sqlite)
    }
}

impl Recohort for sqlx::PgConnection {
    /// The agent's row is locked first, as ingestion does.
    async fn recohort(&mut self, agent: &str) -> Result<(), StoreError> {
        recohort!(
            self,
            agent,
            concat!(agent_cohort_sql!(), " FOR NO KEY UPDATE"),
            apply_postgres
        )
    }
}

/// The cohorts of a batch's agents, and what they hold of the batch's policies: what the
/// batch's moves in the latest states are judged against. On PostgreSQL the agents' rows are locked, in id order,
/// for the rest of the transaction: every writer of an agent's latest results or cohort takes
/// that lock first, so what is read here cannot change before the counters are written. (`NO
/// KEY UPDATE`, not `UPDATE`: the foreign keys of the runs inserted next take a key-share lock
/// on the same rows, which a full update lock would wait for.) Also returns the stored latest
/// results and when each pair was last observed ([`Before`]).
pub(crate) fn before_blocking(
    conn: &rusqlite::Connection,
    pairs: &[(&str, &str)],
) -> Result<Before, StoreError> {
    let (cohorts, agents) = agents_blocking(conn, agent_ids(pairs))?;
    // Each (agent, policy) pair is a range of the primary key.
    let mut latest = conn.prepare_cached(
        "SELECT check_id, status, since FROM latest_results WHERE agent_id = ?1 AND policy_id = ?2",
    )?;
    let mut newest = conn.prepare_cached(
        "SELECT observed_at FROM policy_latest WHERE agent_id = ?1 AND policy_id = ?2",
    )?;
    let mut stored: StoredLatest = Vec::new();
    let mut observed = Observed::new();
    for (agent, policy) in pairs {
        let mut rows = latest.query([agent, policy])?;
        while let Some(r) = rows.next()? {
            stored.push((
                ((*agent).to_owned(), (*policy).to_owned(), r.get(0)?),
                Latest {
                    status: r.get(1)?,
                    since: r.get(2)?,
                },
            ));
        }
        let mut rows = newest.query([agent, policy])?;
        if let Some(r) = rows.next()? {
            observed.insert(((*agent).to_owned(), (*policy).to_owned()), r.get(0)?);
        }
    }
    stored.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(Before {
        cohorts,
        agents,
        deltas: Deltas::default(),
        stored,
        observed,
    })
}

/// The cohorts and event names of the agents `ids` as stored (unknown ids absent), read on
/// result ingestion's own connection (`batch.rs`) one prepared lookup each.
pub(crate) fn agents_blocking<'a>(
    conn: &rusqlite::Connection,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<(HashMap<String, CohortId>, Agents), StoreError> {
    use rusqlite::OptionalExtension as _;
    let mut cohorts = HashMap::new();
    let mut agents = HashMap::new();
    let mut agent =
        conn.prepare_cached("SELECT cohort_id, hostname, grp FROM agents WHERE id = ?1")?;
    for id in ids {
        let found = agent
            .query_row([id], |r| {
                Ok((
                    r.get::<_, Option<i64>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .optional()?;
        if let Some((cohort, hostname, group)) = found {
            if let Some(c) = cohort {
                cohorts.insert(id.to_owned(), c);
            }
            let id = id.to_owned();
            agents.insert(
                id.clone(),
                rampart_events::AgentRef {
                    id,
                    hostname,
                    group,
                },
            );
        }
    }
    Ok((cohorts, agents))
}

/// What a batch reads before it writes ([`before_blocking`], [`before_postgres`]).
pub(crate) struct Before {
    /// The batch's agents' cohorts.
    pub cohorts: HashMap<String, CohortId>,
    /// The batch's agents as its events name them.
    pub agents: Agents,
    /// The counter changes the batch makes: none yet, until its moves are worked out.
    pub deltas: Deltas,
    /// The latest results the batch's (agent, policy) pairs hold.
    pub stored: StoredLatest,
    /// When each of the batch's pairs was last observed, for those observed before.
    pub observed: Observed,
}

/// (agent, policy) → when its newest stored run started (`policy_latest.observed_at`).
pub(crate) type Observed = HashMap<(String, String), i64>;

/// The batch's agents as its events name them, by id.
pub(crate) type Agents = HashMap<String, rampart_events::AgentRef>;

pub(crate) fn agent_ref<R: Row>(id: &str, r: &R) -> Result<rampart_events::AgentRef, StoreError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
{
    Ok(rampart_events::AgentRef {
        id: id.to_owned(),
        hostname: r.try_get("hostname")?,
        group: r.try_get("grp")?,
    })
}

/// The batch's agents, sorted, each once.
fn agent_ids<'a>(pairs: &[(&'a str, &str)]) -> Vec<&'a str> {
    let mut ids: Vec<&str> = pairs.iter().map(|p| p.0).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The cohorts and event names of the agents in `rows` (id, cohort_id, hostname, grp).
pub(crate) fn agents_of<R: Row>(
    rows: &[R],
) -> Result<(HashMap<String, CohortId>, Agents), StoreError>
where
    for<'c> &'c str: sqlx::ColumnIndex<R>,
    String: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: for<'d> sqlx::Decode<'d, R::Database> + sqlx::Type<R::Database>,
{
    let mut cohorts = HashMap::new();
    let mut agents = HashMap::new();
    for r in rows {
        let id: String = r.try_get("id")?;
        if let Some(c) = r.try_get::<Option<i64>, _>("cohort_id")? {
            cohorts.insert(id.clone(), c);
        }
        agents.insert(id.clone(), agent_ref(&id, r)?);
    }
    Ok((cohorts, agents))
}

/// The latest results a batch's (agent, policy) pairs hold, sorted by key: a pair's checks are
/// one range of it.
pub(crate) type StoredLatest = Vec<(Key, Latest)>;

/// The batch's (agent, policy) pairs as a table `k(a, p)`, each once, from the two arrays bound
/// as `$1` and `$2`: what [`before_postgres`] reads the stored state of.
macro_rules! batch_pairs {
    () => {
        "(SELECT DISTINCT a, p FROM UNNEST($1::text[], $2::text[]) AS k(a, p)) k"
    };
}

/// [`before_blocking`] for PostgreSQL, in three statements whatever the batch's size.
pub(crate) async fn before_postgres(
    conn: &mut sqlx::PgConnection,
    pairs: &[(&str, &str)],
) -> Result<Before, StoreError> {
    let ids = agent_ids(pairs);
    let rows = sqlx::query(
        "SELECT id, cohort_id, hostname, grp FROM agents WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let (cohorts, agents) = agents_of(&rows)?;
    let agents_col = pairs.iter().map(|p| p.0).collect::<Vec<_>>();
    let policies_col = pairs.iter().map(|p| p.1).collect::<Vec<_>>();
    let rows = sqlx::query(concat!(
        "SELECT l.agent_id, l.policy_id, l.check_id, l.status, l.since FROM latest_results l JOIN ",
        batch_pairs!(),
        " ON l.agent_id = k.a AND l.policy_id = k.p"
    ))
    .bind(&agents_col)
    .bind(&policies_col)
    .fetch_all(&mut *conn)
    .await?;
    let mut stored = Vec::with_capacity(rows.len());
    for r in &rows {
        let agent: String = r.try_get("agent_id")?;
        stored.push(latest_row(&agent, r)?);
    }
    stored.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let rows = sqlx::query(concat!(
        "SELECT n.agent_id, n.policy_id, n.observed_at FROM policy_latest n JOIN ",
        batch_pairs!(),
        " ON n.agent_id = k.a AND n.policy_id = k.p"
    ))
    .bind(&agents_col)
    .bind(&policies_col)
    .fetch_all(&mut *conn)
    .await?;
    let mut observed = Observed::with_capacity(rows.len());
    for r in &rows {
        observed.insert(
            (r.try_get("agent_id")?, r.try_get("policy_id")?),
            r.try_get("observed_at")?,
        );
    }
    Ok(Before {
        cohorts,
        agents,
        deltas: Deltas::default(),
        stored,
        observed,
    })
}

/// Most rows per multi-row statement on SQLite (5 parameters each, far below its bind limit),
/// the rest in powers of two (`runs::in_pieces`): a batch's counter changes come in any number,
/// and a text per number would crowd the writer's prepared statements.
const CHUNK: usize = 1024;

/// Writes the counter changes, in key order.
pub(crate) async fn apply_sqlite(
    conn: &mut sqlx::SqliteConnection,
    d: &mut Deltas,
) -> Result<(), StoreError> {
    d.settle();
    let checks: Vec<_> = d.checks.iter().collect();
    for chunk in crate::runs::in_pieces(&checks, CHUNK) {
        let mut qb = sqlx::QueryBuilder::new(
            "INSERT INTO cohort_checks (cohort_id, policy_id, check_id, status, hosts) ",
        );
        qb.push_values(chunk, |mut b, ((c, p, k, s), n)| {
            b.push_bind(*c)
                .push_bind(p.as_str())
                .push_bind(k.as_str())
                .push_bind(s.as_str())
                .push_bind(**n);
        });
        qb.push(checks_conflict!());
        qb.build().execute(&mut *conn).await?;
    }
    let policies: Vec<_> = d.policies.iter().collect();
    for chunk in crate::runs::in_pieces(&policies, CHUNK) {
        let mut qb =
            sqlx::QueryBuilder::new("INSERT INTO cohort_policies (cohort_id, policy_id, hosts) ");
        qb.push_values(chunk, |mut b, ((c, p), n)| {
            b.push_bind(*c).push_bind(p.as_str()).push_bind(**n);
        });
        qb.push(policies_conflict!());
        qb.build().execute(&mut *conn).await?;
    }
    let failing: Vec<_> = d.failing.iter().collect();
    for chunk in crate::runs::in_pieces(&failing, CHUNK) {
        let mut qb = sqlx::QueryBuilder::new(
            "INSERT INTO cohort_failing (cohort_id, policy_id, check_id, since_hour, hosts) ",
        );
        qb.push_values(chunk, |mut b, ((c, p, k, h), n)| {
            b.push_bind(*c)
                .push_bind(p.as_str())
                .push_bind(k.as_str())
                .push_bind(*h)
                .push_bind(**n);
        });
        qb.push(failing_conflict!());
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// [`apply_sqlite`] on result ingestion's own connection (`batch.rs`): a statement prepared
/// once per table, a row at a time.
pub(crate) fn apply_blocking(
    conn: &rusqlite::Connection,
    d: &mut Deltas,
) -> Result<(), StoreError> {
    d.settle();
    let mut checks = conn.prepare_cached(concat!(
        "INSERT INTO cohort_checks (cohort_id, policy_id, check_id, status, hosts) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        checks_conflict!()
    ))?;
    for ((c, p, k, s), n) in &d.checks {
        checks.execute(rusqlite::params![c, p, k, s, n])?;
    }
    let mut policies = conn.prepare_cached(concat!(
        "INSERT INTO cohort_policies (cohort_id, policy_id, hosts) VALUES (?1, ?2, ?3)",
        policies_conflict!()
    ))?;
    for ((c, p), n) in &d.policies {
        policies.execute(rusqlite::params![c, p, n])?;
    }
    let mut failing = conn.prepare_cached(concat!(
        "INSERT INTO cohort_failing (cohort_id, policy_id, check_id, since_hour, hosts) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        failing_conflict!()
    ))?;
    for ((c, p, k, h), n) in &d.failing {
        failing.execute(rusqlite::params![c, p, k, h, n])?;
    }
    Ok(())
}

/// [`apply_sqlite`] for PostgreSQL: one statement per counter table, arrays in key order.
pub(crate) async fn apply_postgres(
    conn: &mut sqlx::PgConnection,
    d: &mut Deltas,
) -> Result<(), StoreError> {
    d.settle();
    if !d.checks.is_empty() {
        sqlx::query(concat!(
            "INSERT INTO cohort_checks (cohort_id, policy_id, check_id, status, hosts) \
             SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::text[], $5::int8[])",
            checks_conflict!()
        ))
        .bind(d.checks.keys().map(|k| k.0).collect::<Vec<_>>())
        .bind(d.checks.keys().map(|k| k.1.as_str()).collect::<Vec<_>>())
        .bind(d.checks.keys().map(|k| k.2.as_str()).collect::<Vec<_>>())
        .bind(d.checks.keys().map(|k| k.3.as_str()).collect::<Vec<_>>())
        .bind(d.checks.values().copied().collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    if !d.policies.is_empty() {
        sqlx::query(concat!(
            "INSERT INTO cohort_policies (cohort_id, policy_id, hosts) \
             SELECT * FROM UNNEST($1::int8[], $2::text[], $3::int8[])",
            policies_conflict!()
        ))
        .bind(d.policies.keys().map(|k| k.0).collect::<Vec<_>>())
        .bind(d.policies.keys().map(|k| k.1.as_str()).collect::<Vec<_>>())
        .bind(d.policies.values().copied().collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    if !d.failing.is_empty() {
        sqlx::query(concat!(
            "INSERT INTO cohort_failing (cohort_id, policy_id, check_id, since_hour, hosts) \
             SELECT * FROM UNNEST($1::int8[], $2::text[], $3::text[], $4::int8[], $5::int8[])",
            failing_conflict!()
        ))
        .bind(d.failing.keys().map(|k| k.0).collect::<Vec<_>>())
        .bind(d.failing.keys().map(|k| k.1.as_str()).collect::<Vec<_>>())
        .bind(d.failing.keys().map(|k| k.2.as_str()).collect::<Vec<_>>())
        .bind(d.failing.keys().map(|k| k.3).collect::<Vec<_>>())
        .bind(d.failing.values().copied().collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(status: &str, since: i64) -> Latest {
        Latest {
            status: status.into(),
            since,
        }
    }

    fn key(check: &str) -> Key {
        ("a1".into(), "p".into(), check.into())
    }

    #[test]
    fn a_first_report_counts_the_host_once_and_each_check_once() {
        let mut d = Deltas::default();
        d.first_report(7, "p");
        d.moved(7, "p", "c1", None, ("fail", 7200));
        d.moved(7, "p", "c2", None, ("pass", 7200));
        d.settle();
        assert_eq!(d.policies, BTreeMap::from([((7, "p".into()), 1)]));
        assert_eq!(
            d.checks,
            BTreeMap::from([
                ((7, "p".into(), "c1".into(), "fail".into()), 1),
                ((7, "p".into(), "c2".into(), "pass".into()), 1),
            ])
        );
        assert_eq!(
            d.failing,
            BTreeMap::from([((7, "p".into(), "c1".into(), 2), 1)])
        );
    }

    #[test]
    fn a_status_change_moves_one_count_and_the_failing_hour() {
        // c1 failing since 3600 (hour 1), now passes; c2 passing, now fails at 10800 (hour 3).
        let mut d = Deltas::default();
        d.moved(7, "p", "c1", Some(&l("fail", 3600)), ("pass", 10_800));
        d.moved(7, "p", "c2", Some(&l("pass", 0)), ("fail", 10_800));
        d.settle();
        assert!(d.policies.is_empty(), "the host already reported p");
        assert_eq!(
            d.checks,
            BTreeMap::from([
                ((7, "p".into(), "c1".into(), "fail".into()), -1),
                ((7, "p".into(), "c1".into(), "pass".into()), 1),
                ((7, "p".into(), "c2".into(), "fail".into()), 1),
                ((7, "p".into(), "c2".into(), "pass".into()), -1),
            ])
        );
        assert_eq!(
            d.failing,
            BTreeMap::from([
                ((7, "p".into(), "c1".into(), 1), -1),
                ((7, "p".into(), "c2".into(), 3), 1),
            ])
        );
    }

    #[test]
    fn moves_that_cancel_settle_to_nothing_and_a_dropped_check_leaves_every_count() {
        // Two agents of one cohort trade statuses on c1: the counters do not move.
        let mut d = Deltas::default();
        d.moved(7, "p", "c1", Some(&l("pass", 0)), ("fail", 10_800));
        d.moved(7, "p", "c1", Some(&l("fail", 10_800)), ("pass", 14_400));
        d.settle();
        assert!(d.checks.is_empty() && d.failing.is_empty(), "{d:?}");
        // c2, failing since hour 1, is gone from the policy: its status and its failing hour
        // leave the counts; the host still reports the policy.
        d.left(7, "p", "c2", &l("fail", 3600));
        d.settle();
        assert!(d.policies.is_empty());
        assert_eq!(
            d.checks,
            BTreeMap::from([((7, "p".into(), "c2".into(), "fail".into()), -1)])
        );
        assert_eq!(
            d.failing,
            BTreeMap::from([((7, "p".into(), "c2".into(), 1), -1)])
        );
    }

    #[test]
    fn moving_an_agent_moves_every_count() {
        let held = [(key("c1"), l("fail", 3600)), (key("c2"), l("pass", 0))];
        let mut d = Deltas::default();
        d.move_agent(&held, Some(1), 2);
        d.settle();
        assert_eq!(
            d.policies,
            BTreeMap::from([((1, "p".into()), -1), ((2, "p".into()), 1)])
        );
        assert_eq!(d.checks.len(), 4);
        assert_eq!(d.checks[&(1, "p".into(), "c1".into(), "fail".into())], -1);
        assert_eq!(d.checks[&(2, "p".into(), "c2".into(), "pass".into())], 1);
        assert_eq!(
            d.failing,
            BTreeMap::from([
                ((1, "p".into(), "c1".into(), 1), -1),
                ((2, "p".into(), "c1".into(), 1), 1),
            ])
        );
        // An agent counted nowhere yet only joins.
        let mut d = Deltas::default();
        d.move_agent(&held[1..], None, 2);
        d.settle();
        assert_eq!(d.policies, BTreeMap::from([((2, "p".into()), 1)]));
        assert_eq!(d.checks.len(), 1);
    }
}
