//! Runs and check results: ingestion, history, latest state, diffs' raw material, retention.

use std::collections::BTreeMap;

use rampart_core::{CheckOutcome, HostInfo, Status, Summary};
use sqlx::Row;
use time::OffsetDateTime;

use crate::texts::{StoredOutcome, TextCache};
use crate::{
    CheckHistoryPoint, FlatResult, IngestOutcome, LatestResult, NewRun, RunDetail, RunSummary,
    ScorePoint, Store, StoreError, from_secs, on_pool, secs,
};

/// How many rows each of a batch's multi-row statements carries: `max` (a power of two) while
/// that many are left, then the powers of two the rest is made of, largest first.
///
/// Why: a multi-row statement's text depends on its row count, and a sqlx connection keeps one
/// prepared statement per text. These sizes give a handful of texts whatever the batches'
/// sizes, all kept prepared; a statement per run (three per run, as before) each cost a round
/// trip to SQLite's thread, most of it the kernel switching threads (docs/performance.md).
fn pieces(mut n: usize, max: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    while n > 0 {
        let size = if n >= max { max } else { 1 << n.ilog2() };
        sizes.push(size);
        n -= size;
    }
    sizes
}

/// Each run's outcome, given the ids the batch's `INSERT … ON CONFLICT DO NOTHING` stored, and
/// the runs whose rows are to be written. A run stored before is a duplicate, and so is a
/// second copy of a run in the same batch (a retry racing the original): stored once.
fn sort_out<'a, 'r>(
    prepared: &'a [PreparedRun<'r>],
    stored: &[String],
) -> (Vec<IngestOutcome>, Vec<&'a PreparedRun<'r>>) {
    let stored: std::collections::HashSet<&str> = stored.iter().map(String::as_str).collect();
    let mut seen = std::collections::HashSet::new();
    let mut outcomes = Vec::with_capacity(prepared.len());
    let mut fresh = Vec::new();
    for p in prepared {
        if stored.contains(p.run.id.as_str()) && seen.insert(p.run.id.as_str()) {
            outcomes.push(IngestOutcome::Stored);
            fresh.push(p);
        } else {
            outcomes.push(IngestOutcome::Duplicate);
        }
    }
    (outcomes, fresh)
}

/// `items` split as [`pieces`] says: the rows of each multi-row statement, in order.
pub(crate) fn in_pieces<T>(items: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    pieces(items.len(), max).into_iter().map(move |size| {
        let (piece, tail) = rest.split_at(size);
        rest = tail;
        piece
    })
}

macro_rules! run_columns {
    () => {
        "id, agent_id, policy_id, policy_version, policy_digest, run_trigger, \
     started_at, finished_at, received_at, passed, failed, not_applicable, not_run, errors, \
     waived, total, score, results_digest, host, warnings, generator"
    };
}

/// The per-check rows of one run, serialised before the transaction opens so that no
/// serialisation work holds database locks.
struct PreparedRun<'a> {
    run: &'a NewRun,
    host: String,
    warnings: String,
    rows: Vec<(
        &'a str,
        &'static str,
        &'static str,
        &'a str,
        StoredOutcome<'a>,
    )>,
}

fn prepare<'a>(run: &'a NewRun, texts: &TextCache) -> Result<PreparedRun<'a>, StoreError> {
    if run.check_texts.len() != run.checks.len() {
        return Err(StoreError::corrupt(
            "run",
            format!(
                "{} checks but {} check texts",
                run.checks.len(),
                run.check_texts.len()
            ),
        ));
    }
    let stored = texts.store_form(&run.policy_digest, &run.checks, &run.check_texts);
    let mut rows = Vec::with_capacity(run.checks.len());
    for (c, outcome) in run.checks.iter().zip(stored) {
        rows.push((
            c.id.as_str(),
            c.status.as_str(),
            c.severity.as_str(),
            c.title.as_str(),
            outcome,
        ));
    }
    Ok(PreparedRun {
        run,
        host: serde_json::to_string(&run.host).map_err(|e| StoreError::corrupt("run host", e))?,
        warnings: serde_json::to_string(&run.warnings)
            .map_err(|e| StoreError::corrupt("run warnings", e))?,
        rows,
    })
}

/// The (agent, policy) pairs a batch writes latest results of, sorted, each once.
fn agent_policies<'a>(prepared: &[PreparedRun<'a>]) -> Vec<(&'a str, &'a str)> {
    prepared
        .iter()
        .map(|p| (p.run.agent_id.as_str(), p.run.policy_id.as_str()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The distinct policy texts of a batch's results, in key order (concurrent PostgreSQL
/// transactions adding the same new text then wait for each other in one order).
fn batch_texts<'a>(fresh: &[&'a PreparedRun<'_>]) -> BTreeMap<&'a [u8; 32], &'a str> {
    let mut texts = BTreeMap::new();
    for p in fresh {
        for row in &p.rows {
            if let StoredOutcome::Split { text, .. } = &row.4 {
                texts.insert(&text.id, text.text.as_str());
            }
        }
    }
    texts
}

macro_rules! run_from_row {
    ($r:expr) => {{
        let r = $r;
        let host: String = r.try_get("host")?;
        let warnings: String = r.try_get("warnings")?;
        let n = |c: &str| -> Result<u32, StoreError> {
            Ok(u32::try_from(r.try_get::<i64, _>(c)?).unwrap_or(0))
        };
        Ok::<RunSummary, StoreError>(RunSummary {
            id: r.try_get("id")?,
            agent_id: r.try_get("agent_id")?,
            policy_id: r.try_get("policy_id")?,
            policy_version: r.try_get("policy_version")?,
            policy_digest: r.try_get("policy_digest")?,
            trigger: r.try_get("run_trigger")?,
            started_at: from_secs(r.try_get("started_at")?),
            finished_at: from_secs(r.try_get("finished_at")?),
            received_at: from_secs(r.try_get("received_at")?),
            summary: Summary {
                passed: n("passed")?,
                failed: n("failed")?,
                not_applicable: n("not_applicable")?,
                not_run: n("not_run")?,
                error: n("errors")?,
                waived: n("waived")?,
                total: n("total")?,
                score: r.try_get("score")?,
            },
            results_digest: r.try_get("results_digest")?,
            host: serde_json::from_str::<HostInfo>(&host)
                .map_err(|e| StoreError::corrupt("runs.host", e))?,
            warnings: serde_json::from_str::<Vec<String>>(&warnings)
                .map_err(|e| StoreError::corrupt("runs.warnings", e))?,
            generator: r.try_get("generator")?,
        })
    }};
}

fn parse_status(s: &str) -> Result<Status, StoreError> {
    s.parse().map_err(|e| StoreError::corrupt("status", e))
}

/// The `run.stored` event of a run just stored, timed when its scan finished.
fn run_event(r: &NewRun, agent: &rampart_events::AgentRef) -> rampart_events::Event {
    let s = &r.summary;
    rampart_events::make::run_stored(
        crate::events::new_id(),
        r.finished_at,
        agent.clone(),
        rampart_events::RunStored {
            run: r.id.clone(),
            policy: r.policy_id.clone(),
            policy_version: r.policy_version,
            trigger: r.trigger.clone(),
            score: s.score,
            passed: s.passed,
            failed: s.failed,
            not_applicable: s.not_applicable,
            waived: s.waived,
            other: s.not_run + s.error,
            started_at: r.started_at,
            finished_at: r.finished_at,
        },
    )
}

/// The `check.changed` event of a check whose latest status moved from `from` (as stored).
/// Only real changes are events: an agent's first results are told by its `run.stored`, so a
/// fleet's first scans do not flood the stream with one event per check.
fn change_event(
    r: &NewRun,
    agent: &rampart_events::AgentRef,
    c: &CheckOutcome,
    from: &str,
) -> Result<rampart_events::Event, StoreError> {
    Ok(rampart_events::make::check_changed(
        crate::events::new_id(),
        r.finished_at,
        agent.clone(),
        rampart_events::CheckChanged {
            run: r.id.clone(),
            policy: r.policy_id.clone(),
            check: c.id.clone(),
            title: c.title.clone(),
            check_severity: c.severity,
            from: Some(parse_status(from)?),
            to: c.status,
        },
    ))
}

/// A pair's newest run replaces the stored one; the plan never holds an older one, which the
/// condition guards all the same.
macro_rules! policy_latest_conflict {
    () => {
        " ON CONFLICT (agent_id, policy_id) DO UPDATE SET \
         run_id = excluded.run_id, observed_at = excluded.observed_at \
         WHERE excluded.observed_at >= policy_latest.observed_at"
    };
}

/// A check's first result is inserted; a new status replaces the stored one, with its `since`.
macro_rules! latest_conflict {
    () => {
        " ON CONFLICT (agent_id, policy_id, check_id) DO UPDATE SET \
         status = excluded.status, since = excluded.since"
    };
}

/// Each (agent, policy) pair's newest run in a batch (the later one in the batch when two
/// started at once, as applying the runs in order would leave), in key order.
fn newest_per_pair<'a>(
    fresh: &[&'a PreparedRun<'a>],
) -> BTreeMap<(&'a str, &'a str), &'a PreparedRun<'a>> {
    let mut newest: BTreeMap<(&str, &str), &PreparedRun<'_>> = BTreeMap::new();
    for p in fresh {
        let key = (p.run.agent_id.as_str(), p.run.policy_id.as_str());
        match newest.get(&key) {
            Some(n) if n.run.started_at > p.run.started_at => {}
            _ => {
                newest.insert(key, p);
            }
        }
    }
    newest
}

/// What a batch changes in the latest states ([`plan_latest`]), each list in key order so that
/// concurrent PostgreSQL transactions lock rows in one order.
#[derive(Default)]
struct LatestPlan<'a> {
    /// Each pair's newest run, where it is not older than the stored one: (agent, policy, run,
    /// started). Every check of the pair was last observed by it.
    runs: Vec<(&'a str, &'a str, &'a str, i64)>,
    /// A check's first result, or a new status: (agent, policy, check, status, since).
    set: Vec<(&'a str, &'a str, &'a str, &'a str, i64)>,
    /// A stored check that the pair's newest run no longer has (a policy version that dropped
    /// it): (agent, policy, check).
    dropped: Vec<crate::tallies::Key>,
}

/// Works out what a batch changes in the latest states, feeds it to the fleet's counters and
/// adds a `check.changed` event for each stored status that moves.
///
/// Only each pair's newest run counts, and only if it is not older than the stored one (a
/// spooled run delivered late must not overwrite a fresher one); a run without check results
/// (a policy whose requirements the host did not meet) leaves the stored state as it is. A
/// check keeping its status is not written at all: when it was last observed is its pair's
/// (`policy_latest`), so a run rewrites one row per pair instead of one per check, which was
/// most of the latest states' cost (docs/performance.md). A check that changed and changed
/// back within one batch is one observation here: its newest result against what was stored.
fn plan_latest<'a>(
    fresh: &[&'a PreparedRun<'a>],
    before: &mut crate::tallies::Before,
    stream: &mut Vec<rampart_events::Event>,
) -> Result<LatestPlan<'a>, StoreError> {
    let mut plan = LatestPlan::default();
    for ((agent, policy), p) in newest_per_pair(fresh) {
        let started = secs(p.run.started_at);
        let stale = before
            .observed
            .get(&(agent.to_owned(), policy.to_owned()))
            .is_some_and(|t| started < *t);
        if stale || p.rows.is_empty() {
            continue;
        }
        plan.runs.push((agent, policy, p.run.id.as_str(), started));
        let cohort = before.cohorts.get(agent).copied();
        // The pair's stored checks: one range of the sorted stored states.
        let lo = before
            .stored
            .partition_point(|(k, _)| (k.0.as_str(), k.1.as_str()) < (agent, policy));
        let hi = before
            .stored
            .partition_point(|(k, _)| (k.0.as_str(), k.1.as_str()) <= (agent, policy));
        let held = &before.stored[lo..hi];
        if let (true, Some(cohort)) = (held.is_empty(), cohort) {
            before.deltas.first_report(cohort, policy);
        }
        let mut set = Vec::new();
        for ((id, status, _, _, _), c) in p.rows.iter().zip(&p.run.checks) {
            let was = held
                .binary_search_by(|(k, _)| k.2.as_str().cmp(id))
                .ok()
                .map(|i| &held[i].1);
            if was.is_some_and(|w| w.status == *status) {
                continue;
            }
            set.push((agent, policy, *id, *status, started));
            if let (Some(from), Some(a)) = (was, before.agents.get(agent)) {
                stream.push(change_event(p.run, a, c, &from.status)?);
            }
            if let Some(cohort) = cohort {
                before
                    .deltas
                    .moved(cohort, policy, id, was, (*status, started));
            }
        }
        set.sort_unstable_by_key(|r| r.2);
        plan.set.extend(set);
        let kept: std::collections::HashSet<&str> = p.rows.iter().map(|r| r.0).collect();
        for (key, was) in held {
            if !kept.contains(key.2.as_str()) {
                if let Some(cohort) = cohort {
                    before.deltas.left(cohort, policy, &key.2, was);
                }
                plan.dropped.push(key.clone());
            }
        }
    }
    Ok(plan)
}

/// [`Store::ingest_runs`] on SQLite, in the batch's one transaction on the ingestion connection
/// ([`Store::in_batch_transaction`]). The whole batch's runs, then all their check results,
/// then all their latest states, each through one statement prepared once.
fn ingest_sqlite(
    tx: &rusqlite::Transaction<'_>,
    prepared: &[PreparedRun<'_>],
    pairs: &[(&str, &str)],
) -> Result<Vec<IngestOutcome>, StoreError> {
    let mut before = crate::tallies::before_blocking(tx, pairs)?;
    let mut stored = Vec::with_capacity(prepared.len());
    {
        let mut insert = tx.prepare_cached(concat!(
            "INSERT INTO runs (",
            run_columns!(),
            ", cert_sha256, cert_not_after) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
             ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23) \
             ON CONFLICT (id) DO NOTHING"
        ))?;
        for pr in prepared {
            let (r, s) = (pr.run, &pr.run.summary);
            let inserted = insert.execute(rusqlite::params![
                r.id,
                r.agent_id,
                r.policy_id,
                r.policy_version,
                r.policy_digest,
                r.trigger,
                secs(r.started_at),
                secs(r.finished_at),
                secs(r.received_at),
                s.passed,
                s.failed,
                s.not_applicable,
                s.not_run,
                s.error,
                s.waived,
                s.total,
                s.score,
                r.results_digest,
                pr.host,
                pr.warnings,
                r.generator,
                r.cert_sha256,
                secs(r.cert_not_after),
            ])?;
            if inserted == 1 {
                stored.push(r.id.clone());
            }
        }
    }
    let (outcomes, fresh) = sort_out(prepared, &stored);
    let mut stream = Vec::new();
    {
        let mut text = tx.prepare_cached(
            "INSERT INTO check_texts (id, text) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
        )?;
        for (id, t) in batch_texts(&fresh) {
            text.execute(rusqlite::params![id.as_slice(), t])?;
        }
        let mut insert = tx.prepare_cached(
            "INSERT INTO check_results (run_id, check_id, status, severity, title, outcome, \
             text_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for pr in &fresh {
            let r = pr.run;
            if let Some(agent) = before.agents.get(&r.agent_id) {
                stream.push(run_event(r, agent));
            }
            for (id, status, severity, title, outcome) in &pr.rows {
                insert.execute(rusqlite::params![
                    r.id,
                    id,
                    status,
                    severity,
                    title,
                    outcome.column(),
                    outcome.text_id()
                ])?;
            }
        }
    }
    let plan = plan_latest(&fresh, &mut before, &mut stream)?;
    {
        let mut run = tx.prepare_cached(concat!(
            "INSERT INTO policy_latest (agent_id, policy_id, run_id, observed_at) \
             VALUES (?1, ?2, ?3, ?4)",
            policy_latest_conflict!()
        ))?;
        for (a, p, r, started) in &plan.runs {
            run.execute(rusqlite::params![a, p, r, started])?;
        }
        let mut set = tx.prepare_cached(concat!(
            "INSERT INTO latest_results (agent_id, policy_id, check_id, status, since) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            latest_conflict!()
        ))?;
        for (a, p, c, status, since) in &plan.set {
            set.execute(rusqlite::params![a, p, c, status, since])?;
        }
        let mut gone = tx.prepare_cached(
            "DELETE FROM latest_results WHERE agent_id = ?1 AND policy_id = ?2 AND check_id = ?3",
        )?;
        for (a, p, c) in &plan.dropped {
            gone.execute([a, p, c])?;
        }
    }
    crate::tallies::apply_blocking(tx, &mut before.deltas)?;
    crate::events::append_blocking(tx, &stream)?;
    Ok(outcomes)
}

impl Store {
    /// Stores runs posted by agents, all in one transaction: either every new run of the batch
    /// with all its check results and latest-state updates is durable when this returns `Ok`,
    /// or nothing is. A run whose id is already stored is reported [`IngestOutcome::Duplicate`]
    /// and left untouched, so a retried post is never stored twice.
    pub async fn ingest_runs(&self, runs: &[NewRun]) -> Result<Vec<IngestOutcome>, StoreError> {
        let prepared = runs
            .iter()
            .map(|r| prepare(r, &self.texts))
            .collect::<Result<Vec<_>, _>>()?;
        if let crate::Db::Postgres(pool) = &self.db {
            return ingest_postgres(pool, &prepared).await;
        }
        let pairs = agent_policies(&prepared);
        self.in_batch_transaction(|tx| ingest_sqlite(tx, &prepared, &pairs))
            .await
    }

    /// An agent's runs, newest first, optionally of one policy.
    pub async fn agent_runs(
        &self,
        agent_id: &str,
        policy_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RunSummary>, StoreError> {
        let sql = concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE agent_id = $1 AND ($2 IS NULL OR policy_id = $2) \
             ORDER BY started_at DESC, id DESC LIMIT $3"
        );
        let rows = on_pool!(&self.db, p => {
            let rows = sqlx::query(sql).bind(agent_id).bind(policy_id).bind(limit).fetch_all(p).await?;
            rows.iter().map(|r| run_from_row!(r)).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// The newest run of each policy on an agent (of one policy, if given), by policy id.
    pub async fn latest_runs(
        &self,
        agent_id: &str,
        policy_id: Option<&str>,
    ) -> Result<Vec<RunSummary>, StoreError> {
        let sql = concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs WHERE agent_id = $1 AND ($2 IS NULL OR policy_id = $2) \
             AND NOT EXISTS (SELECT 1 FROM runs n WHERE n.agent_id = runs.agent_id \
               AND n.policy_id = runs.policy_id AND (n.started_at > runs.started_at \
               OR (n.started_at = runs.started_at AND n.id > runs.id))) \
             ORDER BY policy_id"
        );
        let rows = on_pool!(&self.db, p => {
            let rows = sqlx::query(sql).bind(agent_id).bind(policy_id).fetch_all(p).await?;
            rows.iter().map(|r| run_from_row!(r)).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// One run with every check result, in the order the agent reported them.
    pub async fn run(&self, run_id: &str) -> Result<Option<RunDetail>, StoreError> {
        let sql = concat!("SELECT ", run_columns!(), " FROM runs WHERE id = $1");
        // Rows come back in no particular order: `sort_checks` puts them in the reports' order.
        const CHECKS: &str = "SELECT c.outcome, c.text_id, t.text FROM check_results c \
             LEFT JOIN check_texts t ON t.id = c.text_id WHERE c.run_id = $1";
        let out = on_pool!(&self.db, p => {
            match sqlx::query(sql).bind(run_id).fetch_optional(p).await? {
                None => None,
                Some(r) => {
                    let run = run_from_row!(&r)?;
                    let outcomes = sqlx::query_as::<_, (String, Option<Vec<u8>>, Option<String>)>(CHECKS)
                        .bind(run_id)
                        .fetch_all(p)
                        .await?
                        .into_iter()
                        .map(|(o, id, t)| crate::texts::joined(o, id, t))
                        .collect::<Result<Vec<String>, _>>()?;
                    Some((run, outcomes))
                }
            }
        });
        let Some((run, outcomes)) = out else {
            return Ok(None);
        };
        let checks = outcomes
            .iter()
            .map(|o| serde_json::from_str::<CheckOutcome>(o))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::corrupt("check_results.outcome", e))?;
        let mut checks = checks;
        sort_checks(&mut checks);
        Ok(Some(RunDetail { run, checks }))
    }

    /// Every observation of one check on one agent, oldest first.
    pub async fn check_history(
        &self,
        agent_id: &str,
        policy_id: &str,
        check_id: &str,
        limit: i64,
    ) -> Result<Vec<CheckHistoryPoint>, StoreError> {
        const SQL: &str = "SELECT r.id, r.started_at, c.status FROM runs r \
             JOIN check_results c ON c.run_id = r.id \
             WHERE r.agent_id = $1 AND r.policy_id = $2 AND c.check_id = $3 \
             ORDER BY r.started_at DESC, r.id DESC LIMIT $4";
        let mut rows = on_pool!(&self.db, p => {
            let rows = sqlx::query(SQL).bind(agent_id).bind(policy_id).bind(check_id).bind(limit).fetch_all(p).await?;
            rows.iter().map(|r| {
                let status: String = r.try_get("status")?;
                Ok::<_, StoreError>(CheckHistoryPoint {
                    run_id: r.try_get("id")?,
                    started_at: from_secs(r.try_get("started_at")?),
                    status: parse_status(&status)?,
                })
            }).collect::<Result<Vec<_>, _>>()?
        });
        rows.reverse();
        Ok(rows)
    }

    /// The latest state of every check an agent reported, optionally of one policy.
    pub async fn latest_results(
        &self,
        agent_id: &str,
        policy_id: Option<&str>,
    ) -> Result<Vec<LatestResult>, StoreError> {
        // Every check of a pair was last observed by the pair's newest run.
        const SQL: &str = "SELECT l.agent_id, l.policy_id, l.check_id, l.status, n.run_id, n.observed_at, l.since \
             FROM latest_results l JOIN policy_latest n ON n.agent_id = l.agent_id AND n.policy_id = l.policy_id \
             WHERE l.agent_id = $1 AND ($2 IS NULL OR l.policy_id = $2) \
             ORDER BY l.policy_id, l.check_id";
        let rows = on_pool!(&self.db, p => {
            let rows = sqlx::query(SQL).bind(agent_id).bind(policy_id).fetch_all(p).await?;
            rows.iter().map(|r| {
                let status: String = r.try_get("status")?;
                Ok::<_, StoreError>(LatestResult {
                    agent_id: r.try_get("agent_id")?,
                    policy_id: r.try_get("policy_id")?,
                    check_id: r.try_get("check_id")?,
                    status: parse_status(&status)?,
                    run_id: r.try_get("run_id")?,
                    observed_at: from_secs(r.try_get("observed_at")?),
                    since: from_secs(r.try_get("since")?),
                })
            }).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// A policy's fleet-wide score per time bucket of `bucket_secs` seconds, from `since` on:
    /// passed and failed checks summed over every run that started in the bucket.
    pub async fn policy_score_history(
        &self,
        policy_id: &str,
        since: OffsetDateTime,
        bucket_secs: i64,
    ) -> Result<Vec<ScorePoint>, StoreError> {
        let bucket_secs = bucket_secs.max(1);
        // SUM over BIGINT is NUMERIC in PostgreSQL, hence the casts.
        const SQL: &str = "SELECT (started_at / $3) * $3 AS bucket, COUNT(*) AS runs, \
             COUNT(DISTINCT agent_id) AS agents, CAST(SUM(passed) AS BIGINT) AS passed, CAST(SUM(failed) AS BIGINT) AS failed \
             FROM runs WHERE policy_id = $1 AND started_at >= $2 \
             GROUP BY (started_at / $3) * $3 ORDER BY bucket";
        let rows = on_pool!(&self.db, p => {
            let rows = sqlx::query(SQL).bind(policy_id).bind(secs(since)).bind(bucket_secs).fetch_all(p).await?;
            rows.iter().map(|r| {
                let passed: i64 = r.try_get("passed")?;
                let failed: i64 = r.try_get("failed")?;
                Ok::<_, StoreError>(ScorePoint {
                    bucket_start: from_secs(r.try_get("bucket")?),
                    runs: r.try_get("runs")?,
                    agents: r.try_get("agents")?,
                    passed,
                    failed,
                    score: if passed + failed == 0 { 0.0 } else { passed as f64 * 100.0 / (passed + failed) as f64 },
                })
            }).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// Rows of the flat results view (`results_flat`), newest runs first, optionally filtered by
    /// agent, policy and status: what a spreadsheet or a SIEM wants.
    pub async fn flat_results(
        &self,
        agent_id: Option<&str>,
        policy_id: Option<&str>,
        status: Option<Status>,
        limit: i64,
    ) -> Result<Vec<FlatResult>, StoreError> {
        const SQL: &str = "SELECT run_id, agent_id, hostname, grp, policy_id, policy_version, started_at, \
             check_id, title, severity, status FROM results_flat \
             WHERE ($1 IS NULL OR agent_id = $1) AND ($2 IS NULL OR policy_id = $2) \
             AND ($3 IS NULL OR status = $3) \
             ORDER BY started_at DESC, run_id, check_id LIMIT $4";
        let rows = on_pool!(&self.db, p => {
            let rows = sqlx::query(SQL)
                .bind(agent_id)
                .bind(policy_id)
                .bind(status.map(|s| s.as_str()))
                .bind(limit)
                .fetch_all(p)
                .await?;
            rows.iter().map(|r| {
                let status: String = r.try_get("status")?;
                Ok::<_, StoreError>(FlatResult {
                    run_id: r.try_get("run_id")?,
                    agent_id: r.try_get("agent_id")?,
                    hostname: r.try_get("hostname")?,
                    group: r.try_get("grp")?,
                    policy_id: r.try_get("policy_id")?,
                    policy_version: r.try_get("policy_version")?,
                    started_at: from_secs(r.try_get("started_at")?),
                    check_id: r.try_get("check_id")?,
                    title: r.try_get("title")?,
                    severity: r.try_get("severity")?,
                    status: parse_status(&status)?,
                })
            }).collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// Deletes runs (and their check results) that started before `before`. Returns how many
    /// runs went. The latest-state rows stay: they are the last word of agents that fell silent.
    /// The schema removes a deleted run's check results (SQLite's cascading foreign key,
    /// PostgreSQL's statement trigger of migration 0017), in the same statement.
    pub async fn prune_runs(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        const RUNS: &str = "DELETE FROM runs WHERE started_at < $1";
        let n = on_pool!(&self.db, p => {
            sqlx::query(RUNS).bind(secs(before)).execute(p).await?.rows_affected()
        });
        Ok(n)
    }
}

/// PostgreSQL ingestion: the whole batch in a few statements (the agents' locks and stored
/// state, runs, check results, latest state, counters), each binding one array per column and
/// expanding it with `UNNEST`, except the check results, which go in by `COPY` ([`copy_rows`]).
/// Per-row statements cost a round trip and a plan each.
async fn ingest_postgres(
    pool: &sqlx::PgPool,
    prepared: &[PreparedRun<'_>],
) -> Result<Vec<IngestOutcome>, StoreError> {
    const RUNS: &str = concat!(
        "INSERT INTO runs (",
        run_columns!(),
        ", cert_sha256, cert_not_after) SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], \
         $6::text[], $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], $12::int8[], \
         $13::int8[], $14::int8[], $15::int8[], $16::int8[], $17::float8[], $18::text[], \
         $19::text[], $20::text[], $21::text[], $22::text[], $23::int8[]) ON CONFLICT (id) DO NOTHING RETURNING id"
    );
    const TEXTS: &str = "INSERT INTO check_texts (id, text) \
         SELECT * FROM UNNEST($1::bytea[], $2::text[]) ON CONFLICT (id) DO NOTHING";
    const CHECKS: &str = "COPY check_results (run_id, check_id, status, severity, title, outcome, text_id) \
         FROM STDIN (FORMAT binary)";
    const RUN: &str = concat!(
        "INSERT INTO policy_latest (agent_id, policy_id, run_id, observed_at) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[])",
        policy_latest_conflict!()
    );
    const SET: &str = concat!(
        "INSERT INTO latest_results (agent_id, policy_id, check_id, status, since) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[])",
        latest_conflict!()
    );
    const DROP: &str = "DELETE FROM latest_results l \
         USING UNNEST($1::text[], $2::text[], $3::text[]) AS t(a, p, c) \
         WHERE l.agent_id = t.a AND l.policy_id = t.p AND l.check_id = t.c";
    let col =
        |f: &dyn Fn(&PreparedRun<'_>) -> String| prepared.iter().map(f).collect::<Vec<String>>();
    let int = |f: &dyn Fn(&PreparedRun<'_>) -> i64| prepared.iter().map(f).collect::<Vec<i64>>();
    let mut tx = pool.begin().await?;
    let pairs = agent_policies(prepared);
    let mut before = crate::tallies::before_postgres(&mut tx, &pairs).await?;
    let stored: Vec<String> = sqlx::query_scalar(RUNS)
        .bind(col(&|p| p.run.id.clone()))
        .bind(col(&|p| p.run.agent_id.clone()))
        .bind(col(&|p| p.run.policy_id.clone()))
        .bind(
            prepared
                .iter()
                .map(|p| p.run.policy_version)
                .collect::<Vec<Option<i64>>>(),
        )
        .bind(col(&|p| p.run.policy_digest.clone()))
        .bind(col(&|p| p.run.trigger.clone()))
        .bind(int(&|p| secs(p.run.started_at)))
        .bind(int(&|p| secs(p.run.finished_at)))
        .bind(int(&|p| secs(p.run.received_at)))
        .bind(int(&|p| i64::from(p.run.summary.passed)))
        .bind(int(&|p| i64::from(p.run.summary.failed)))
        .bind(int(&|p| i64::from(p.run.summary.not_applicable)))
        .bind(int(&|p| i64::from(p.run.summary.not_run)))
        .bind(int(&|p| i64::from(p.run.summary.error)))
        .bind(int(&|p| i64::from(p.run.summary.waived)))
        .bind(int(&|p| i64::from(p.run.summary.total)))
        .bind(
            prepared
                .iter()
                .map(|p| p.run.summary.score)
                .collect::<Vec<f64>>(),
        )
        .bind(col(&|p| p.run.results_digest.clone()))
        .bind(col(&|p| p.host.clone()))
        .bind(col(&|p| p.warnings.clone()))
        .bind(col(&|p| p.run.generator.clone()))
        .bind(col(&|p| p.run.cert_sha256.clone()))
        .bind(int(&|p| secs(p.run.cert_not_after)))
        .fetch_all(&mut *tx)
        .await?;
    let (outcomes, fresh) = sort_out(prepared, &stored);
    let mut stream = Vec::new();
    for p in &fresh {
        if let Some(agent) = before.agents.get(&p.run.agent_id) {
            stream.push(run_event(p.run, agent));
        }
    }
    let rows: usize = fresh.iter().map(|p| p.rows.len()).sum();
    if rows > 0 {
        let texts = batch_texts(&fresh);
        if !texts.is_empty() {
            sqlx::query(TEXTS)
                .bind(texts.keys().map(|id| id.as_slice()).collect::<Vec<_>>())
                .bind(texts.values().copied().collect::<Vec<_>>())
                .execute(&mut *tx)
                .await?;
        }
        let mut copy = tx.copy_in_raw(CHECKS).await?;
        copy.send(copy_rows(&fresh, rows)?).await?;
        copy.finish().await?;
        let plan = plan_latest(&fresh, &mut before, &mut stream)?;
        if !plan.runs.is_empty() {
            sqlx::query(RUN)
                .bind(plan.runs.iter().map(|r| r.0).collect::<Vec<_>>())
                .bind(plan.runs.iter().map(|r| r.1).collect::<Vec<_>>())
                .bind(plan.runs.iter().map(|r| r.2).collect::<Vec<_>>())
                .bind(plan.runs.iter().map(|r| r.3).collect::<Vec<_>>())
                .execute(&mut *tx)
                .await?;
        }
        if !plan.set.is_empty() {
            sqlx::query(SET)
                .bind(plan.set.iter().map(|r| r.0).collect::<Vec<_>>())
                .bind(plan.set.iter().map(|r| r.1).collect::<Vec<_>>())
                .bind(plan.set.iter().map(|r| r.2).collect::<Vec<_>>())
                .bind(plan.set.iter().map(|r| r.3).collect::<Vec<_>>())
                .bind(plan.set.iter().map(|r| r.4).collect::<Vec<_>>())
                .execute(&mut *tx)
                .await?;
        }
        if !plan.dropped.is_empty() {
            sqlx::query(DROP)
                .bind(
                    plan.dropped
                        .iter()
                        .map(|k| k.0.as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    plan.dropped
                        .iter()
                        .map(|k| k.1.as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    plan.dropped
                        .iter()
                        .map(|k| k.2.as_str())
                        .collect::<Vec<_>>(),
                )
                .execute(&mut *tx)
                .await?;
        }
        crate::tallies::apply_postgres(&mut tx, &mut before.deltas).await?;
    }
    crate::events::append_postgres(&mut tx, &stream).await?;
    tx.commit().await?;
    Ok(outcomes)
}

/// A batch's check results in PostgreSQL's binary `COPY` format: the largest part of what
/// ingestion writes by far (one row per check of every run). `COPY` skips what `INSERT … SELECT
/// FROM UNNEST(…)` costs per row on the server (the arrays' decoding, the set function's
/// tuple store, the executor's per-row insert) and fills heap pages in bulk. On the fleet
/// benchmark (ingestion only, 2 vCPU AMD EPYC) PostgreSQL's CPU fell 8–19 % and its WAL 8 %.
/// The rows and the `COPY`'s end go as two messages, the second right after the first: over a
/// connection without `TCP_NODELAY` (sqlx 0.9.0) the end waited for PostgreSQL's delayed ACK,
/// up to 40 ms a batch, which is why the workspace requires sqlx 0.9.1 or later.
fn copy_rows(fresh: &[&PreparedRun<'_>], rows: usize) -> Result<Vec<u8>, StoreError> {
    /// Signature, flags, header extension length (`COPY` binary format, PostgreSQL docs).
    const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
    fn field(buf: &mut Vec<u8>, value: Option<&[u8]>) -> Result<(), StoreError> {
        match value {
            Some(v) => {
                let len = i32::try_from(v.len())
                    .map_err(|_| StoreError::corrupt("check result", "a field over 2 GiB"))?;
                buf.extend_from_slice(&len.to_be_bytes());
                buf.extend_from_slice(v);
            }
            None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
        }
        Ok(())
    }
    let mut buf = Vec::with_capacity(HEADER.len() + 2 + rows * 320);
    buf.extend_from_slice(HEADER);
    for p in fresh {
        for (id, status, severity, title, outcome) in &p.rows {
            buf.extend_from_slice(&7i16.to_be_bytes());
            field(&mut buf, Some(p.run.id.as_bytes()))?;
            field(&mut buf, Some(id.as_bytes()))?;
            field(&mut buf, Some(status.as_bytes()))?;
            field(&mut buf, Some(severity.as_bytes()))?;
            field(&mut buf, Some(title.as_bytes()))?;
            field(&mut buf, Some(outcome.column().as_bytes()))?;
            field(&mut buf, outcome.text_id())?;
        }
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    Ok(buf)
}

/// Check results come back from the database unordered; order them the way reports do: by the
/// natural order of their ids (numeric Wazuh ids numerically, others lexically).
fn sort_checks(checks: &mut [CheckOutcome]) {
    checks.sort_by(|a, b| match (a.id.parse::<u64>(), b.id.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.id.cmp(&b.id),
    });
}

#[cfg(test)]
mod tests {
    use super::{in_pieces, pieces};

    #[test]
    fn pieces_cover_every_row_in_a_few_power_of_two_sizes() {
        assert_eq!(pieces(0, 64), Vec::<usize>::new());
        assert_eq!(pieces(1, 64), vec![1]);
        assert_eq!(pieces(100, 64), vec![64, 32, 4]);
        // 20 runs of 121 checks.
        assert_eq!(pieces(2420, 1024), vec![1024, 1024, 256, 64, 32, 16, 4]);
        let mut sizes = std::collections::BTreeSet::new();
        for n in 0..5000 {
            let p = pieces(n, 1024);
            assert_eq!(p.iter().sum::<usize>(), n);
            assert!(p.windows(2).all(|w| w[0] >= w[1]), "{p:?}");
            sizes.extend(p);
        }
        let rows: Vec<usize> = (0..100).collect();
        let split: Vec<&[usize]> = in_pieces(&rows, 64).collect();
        assert_eq!(
            split.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [64, 32, 4]
        );
        assert_eq!(split.concat(), rows);
        // Every batch size uses the same eleven statement texts.
        assert_eq!(sizes.len(), 11);
        assert!(sizes.iter().all(|s| s.is_power_of_two() && *s <= 1024));
    }
}
