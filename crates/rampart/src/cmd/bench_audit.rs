//! `rampart bench audit`: what the tamper-evident log costs, on SQLite or PostgreSQL.
//!
//! Appends as the server makes them: one entry per transaction (a lone request, latency-bound)
//! and 64 per transaction (the writer's batch when many requests record at once), each beside
//! its storage floor in the same database: plain transactions inserting the same rows into a
//! table with no tree, head or indexes. Then, on a log of `--entries` entries with a signed
//! checkpoint, inclusion and consistency proofs for random entries and sizes (two tasks, each
//! proof checked against the signed root), beside the floor of one entry read by its index.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rampart_audit::merkle::{verify_consistency, verify_inclusion};
use rampart_audit::{Event, LogKey, LogVerifier, Outcome};
use rampart_store::Store;
use serde_json::json;
use sqlx::Connection as _;
use time::OffsetDateTime;

use crate::cli::BenchAuditArgs;

/// Entries per transaction in the batched phase.
const BATCH: usize = 64;

fn event(i: u64) -> Event {
    Event::new(
        format!("user{}", i % 50),
        ["login", "token.create", "policy.assign", "agent.enrol"][(i % 4) as usize],
        format!("agent:{:032x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        Outcome::Success,
    )
    .via("token:cli")
    .source("10.1.2.3")
    .detail("group", "web")
}

/// A small deterministic generator: reproducible picks without a dependency.
struct Pick(u64);

impl Pick {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// The floor's own connection: the same database, the same durability as the store's.
enum Floor {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Floor {
    async fn open(url: Option<&str>, sqlite: &std::path::Path) -> anyhow::Result<Floor> {
        let create = "CREATE TABLE bench_floor (seq BIGINT PRIMARY KEY, body TEXT NOT NULL)";
        Ok(match url {
            Some(u) => {
                let mut c = sqlx::PgConnection::connect(u).await?;
                sqlx::query(create).execute(&mut c).await?;
                Floor::Postgres(c)
            }
            None => {
                use std::str::FromStr as _;
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(&format!(
                    "sqlite://{}",
                    sqlite.display()
                ))?
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(30));
                let mut c = sqlx::SqliteConnection::connect_with(&options).await?;
                sqlx::query(create).execute(&mut c).await?;
                Floor::Sqlite(c)
            }
        })
    }

    /// One transaction inserting `rows` rows from `seq` on.
    async fn insert(&mut self, seq: u64, rows: &[String]) -> anyhow::Result<()> {
        macro_rules! tx {
            ($c:expr) => {{
                let mut tx = $c.begin().await?;
                let mut qb = sqlx::QueryBuilder::new("INSERT INTO bench_floor (seq, body) ");
                qb.push_values(rows.iter().enumerate(), |mut b, (i, body)| {
                    b.push_bind((seq + i as u64) as i64).push_bind(body);
                });
                qb.build().execute(&mut *tx).await?;
                tx.commit().await?;
            }};
        }
        match self {
            Floor::Sqlite(c) => tx!(c),
            Floor::Postgres(c) => tx!(c),
        }
        Ok(())
    }

    async fn close(self) -> anyhow::Result<()> {
        match self {
            Floor::Sqlite(mut c) => {
                sqlx::query("DROP TABLE bench_floor")
                    .execute(&mut c)
                    .await?;
                c.close().await?;
            }
            Floor::Postgres(mut c) => {
                sqlx::query("DROP TABLE bench_floor")
                    .execute(&mut c)
                    .await?;
                c.close().await?;
            }
        }
        Ok(())
    }
}

/// Rate of `f` (units per call) run back to back for `secs` seconds.
async fn rate<F, Fut>(secs: u64, per_call: u64, mut f: F) -> anyhow::Result<(f64, u64)>
where
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let end = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut calls = 0;
    while Instant::now() < end {
        f(calls).await?;
        calls += 1;
    }
    let done = calls * per_call;
    Ok((done as f64 / started.elapsed().as_secs_f64(), done))
}

/// Runs the benchmark.
pub fn run(args: BenchAuditArgs) -> anyhow::Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    let sqlite = dir.path().join("audit.db");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let figures = runtime.block_on(async {
        let store = match &args.database_url {
            Some(url) => Store::open_postgres(url).await?,
            None => Store::open_sqlite(&sqlite).await?,
        };
        if store.audit_size().await? != 0 {
            bail!("the database already holds an audit log: use an empty database or schema");
        }
        let mut floor = Floor::open(args.database_url.as_deref(), &sqlite).await?;
        let key = LogKey::generate("rampart.audit/bench")?;
        let body = |i: u64| {
            rampart_audit::Entry {
                index: i,
                time: OffsetDateTime::now_utc(),
                event: event(i),
            }
            .to_leaf()
        };

        // Appends, one per transaction, beside the floor.
        let mut next = 0u64;
        let phase = Duration::from_secs(args.seconds);
        let started = Instant::now();
        let mut i = 0u64;
        while started.elapsed() < phase {
            floor.insert(i, &[body(i)]).await?;
            i += 1;
        }
        let floor_one = i as f64 / started.elapsed().as_secs_f64();
        let (one, n) = rate(args.seconds, 1, |i| {
            let store = store.clone();
            async move {
                store
                    .audit_append(&[event(i)], OffsetDateTime::now_utc())
                    .await?;
                Ok(())
            }
        })
        .await?;
        next += n;

        // Batched, beside the floor.
        let started = Instant::now();
        let mut i = 10_000_000u64;
        let mut rows_done = 0u64;
        while started.elapsed() < phase {
            let rows: Vec<String> = (0..BATCH as u64).map(|j| body(i + j)).collect();
            floor.insert(i, &rows).await?;
            i += BATCH as u64;
            rows_done += BATCH as u64;
        }
        let floor_batch = rows_done as f64 / started.elapsed().as_secs_f64();
        let start = next;
        let (batched, n) = rate(args.seconds, BATCH as u64, |i| {
            let store = store.clone();
            let events: Vec<Event> = (0..BATCH as u64)
                .map(|j| event(start + i * BATCH as u64 + j))
                .collect();
            async move {
                store
                    .audit_append(&events, OffsetDateTime::now_utc())
                    .await?;
                Ok(())
            }
        })
        .await?;
        next += n;
        floor.close().await?;

        // Fill to --entries, sign, prove.
        while next < args.entries {
            let k = (args.entries - next).min(1024);
            let events: Vec<Event> = (next..next + k).map(event).collect();
            store
                .audit_append(&events, OffsetDateTime::now_utc())
                .await?;
            next += k;
        }
        let cp = store
            .audit_checkpoint(&key, OffsetDateTime::now_utc(), 1)
            .await?
            .context("nothing to sign")?;
        let head = LogVerifier::new(key.vkey())?.open(&cp.note)?;
        let size = head.size;
        let root = head.root;

        let stop = Arc::new(AtomicBool::new(false));
        let mut out = Vec::new();
        for kind in ["entry_read", "inclusion", "consistency"] {
            stop.store(false, Ordering::Relaxed);
            let done = Arc::new(AtomicU64::new(0));
            let bad = Arc::new(AtomicU64::new(0));
            let started = Instant::now();
            let mut tasks = Vec::new();
            for t in 0..2u64 {
                let (store, stop, done, bad) =
                    (store.clone(), stop.clone(), done.clone(), bad.clone());
                tasks.push(tokio::spawn(async move {
                    let mut pick = Pick(0x2545_f491_4f6c_dd1d ^ (t + 1));
                    while !stop.load(Ordering::Relaxed) {
                        match kind {
                            "entry_read" => {
                                let i = pick.below(size);
                                store.audit_entry(i).await?.context("entry missing")?;
                            }
                            "inclusion" => {
                                let i = pick.below(size);
                                let path = store.audit_inclusion_proof(i, size).await?;
                                // Every proof is checked against the signed root; the leaf
                                // comes from its entry only now and then (that is a read more).
                                if pick.below(64) == 0 {
                                    let e = store.audit_entry(i).await?.context("entry missing")?;
                                    let leaf = rampart_audit::merkle::leaf_hash(e.body.as_bytes());
                                    if verify_inclusion(
                                        &leaf,
                                        i as usize,
                                        size as usize,
                                        &path,
                                        &root,
                                    )
                                    .is_err()
                                    {
                                        bad.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                            }
                            _ => {
                                let m = 1 + pick.below(size);
                                let path = store.audit_consistency_proof(m, size).await?;
                                if pick.below(64) == 0 {
                                    let old = store.audit_root(m).await?;
                                    if verify_consistency(
                                        m as usize,
                                        size as usize,
                                        &path,
                                        &old,
                                        &root,
                                    )
                                    .is_err()
                                    {
                                        bad.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                            }
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    anyhow::Ok(())
                }));
            }
            tokio::time::sleep(Duration::from_secs(args.seconds)).await;
            stop.store(true, Ordering::Relaxed);
            for task in tasks {
                task.await??;
            }
            let per_sec = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
            if bad.load(Ordering::Relaxed) > 0 {
                bail!(
                    "{kind}: {} proofs did not verify",
                    bad.load(Ordering::Relaxed)
                );
            }
            out.push((kind, per_sec));
        }
        store.close().await;
        anyhow::Ok(json!({
            "cpu": super::bench::cpu_model(),
            "backend": if args.database_url.is_some() { "postgres" } else { "sqlite" },
            "appends_per_sec_one_per_tx": one,
            "floor_rows_per_sec_one_per_tx": floor_one,
            "appends_per_sec_batch_64": batched,
            "floor_rows_per_sec_batch_64": floor_batch,
            "log_entries": size,
            "entry_reads_per_sec_floor": out[0].1,
            "inclusion_proofs_per_sec": out[1].1,
            "consistency_proofs_per_sec": out[2].1,
        }))
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        let f = |k: &str| figures[k].as_f64().unwrap_or(0.0);
        println!(
            "audit log on {} — {}",
            figures["backend"].as_str().unwrap_or(""),
            figures["cpu"].as_str().unwrap_or("")
        );
        println!(
            "appends, 1 per transaction: {:>10.0}/s   floor (same rows, plain table): {:>10.0}/s   ratio {:.2}",
            f("appends_per_sec_one_per_tx"),
            f("floor_rows_per_sec_one_per_tx"),
            f("appends_per_sec_one_per_tx") / f("floor_rows_per_sec_one_per_tx")
        );
        println!(
            "appends, 64 per transaction: {:>9.0}/s   floor (same rows, plain table): {:>10.0}/s   ratio {:.2}",
            f("appends_per_sec_batch_64"),
            f("floor_rows_per_sec_batch_64"),
            f("appends_per_sec_batch_64") / f("floor_rows_per_sec_batch_64")
        );
        println!(
            "on {} entries, 2 tasks: inclusion proofs {:.0}/s, consistency proofs {:.0}/s   floor (one entry read by index): {:.0}/s",
            figures["log_entries"],
            f("inclusion_proofs_per_sec"),
            f("consistency_proofs_per_sec"),
            f("entry_reads_per_sec_floor")
        );
    }
    Ok(ExitCode::SUCCESS)
}
