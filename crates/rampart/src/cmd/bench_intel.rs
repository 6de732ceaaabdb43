//! `rampart bench intel`: lookup rate and memory of the indicator index on a synthetic set,
//! and end-to-end ingestion into the embedded store.

use std::process::ExitCode;
use std::time::Instant;

use rampart_intel::synthetic::{self, Rng};
use rampart_intel::{Index, Ioc};
use serde_json::json;

use crate::cli::BenchIntelArgs;
use crate::exit;

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// Writes a generated feed (one indicator per line, as blocklists are) and ingests it end to
/// end into a fresh embedded store: parse, canonicalise, dedup, store with observations.
fn ingest_phase(
    n: u64,
    database_url: Option<&str>,
) -> anyhow::Result<(f64, f64, rampart_store::IntelIngestCounts)> {
    use std::io::Write as _;
    let dir = tempfile::tempdir()?;
    let feed_path = dir.path().join("feed.txt");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&feed_path)?);
        writeln!(out, "# generated benchmark feed")?;
        for i in 0..n {
            writeln!(out, "{}", synthetic::indicator(i).value)?;
        }
        out.flush()?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = match database_url {
            Some(url) => rampart_store::Store::open_postgres(url).await?,
            None => rampart_store::Store::open_sqlite(&dir.path().join("rampart.db")).await?,
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let feed = store
            .intel_put_feed(
                &rampart_store::NewIntelFeed {
                    name: "bench".into(),
                    format: "plain".into(),
                    url: None,
                    interval_secs: 3600,
                    reliability: 80,
                    tlp: "clear".into(),
                    terms: None,
                    ttl_secs: 30 * 86_400,
                },
                now,
            )
            .await?;
        let input = Box::new(std::fs::File::open(&feed_path)?);
        let started = Instant::now();
        let report = rampart_intel::ingest::ingest(
            &store,
            &feed,
            rampart_intel::Format::Plain,
            input,
            rampart_intel::Limits::default(),
            now,
            None,
        )
        .await?;
        let seconds = started.elapsed().as_secs_f64();
        store.close().await;
        Ok((n as f64 / seconds * 60.0, seconds, report.stored))
    })
}

/// Runs the intel benchmark.
pub fn run(args: BenchIntelArgs) -> anyhow::Result<ExitCode> {
    let mut figures = serde_json::Map::new();
    let rss_before = rss_bytes();
    let started = Instant::now();
    let mut index = Index::with_capacity(args.indicators as usize, args.indicators as usize * 32);
    for i in 0..args.indicators {
        index.upsert(&synthetic::indicator(i), i + 1, 50)?;
    }
    index.commit();
    let build = started.elapsed().as_secs_f64();
    let rss_after = rss_bytes();
    let len = index.len() as f64;
    figures.insert("indicators".into(), json!(index.len()));
    figures.insert("index_build_seconds".into(), json!(build));
    figures.insert("index_bytes".into(), json!(index.memory_bytes()));
    figures.insert(
        "index_bytes_per_indicator".into(),
        json!(index.memory_bytes() as f64 / len),
    );
    figures.insert(
        "rss_growth_bytes_per_indicator".into(),
        json!(rss_after.saturating_sub(rss_before) as f64 / len),
    );

    // Queries are generated up front so the loop measures lookups only.
    let n = args.indicators;
    let queries: Vec<Ioc> = {
        let mut rng = Rng::new(42);
        (0..1_000_000.min(args.lookups))
            .map(|_| synthetic::query(&mut rng, n))
            .collect()
    };
    let mut hits = 0u64;
    let started = Instant::now();
    for k in 0..args.lookups {
        if index
            .first(&queries[(k % queries.len() as u64) as usize])
            .is_some()
        {
            hits += 1;
        }
    }
    let one = args.lookups as f64 / started.elapsed().as_secs_f64();
    figures.insert("lookups_per_second_1_thread".into(), json!(one));
    figures.insert("hit_ratio".into(), json!(hits as f64 / args.lookups as f64));

    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (index, queries) = (&index, &queries);
            s.spawn(move || {
                let mut h = 0u64;
                for k in 0..args.lookups {
                    let q = &queries[((k + t as u64 * 7919) % queries.len() as u64) as usize];
                    h += u64::from(index.first(q).is_some());
                }
                h
            });
        }
    });
    let all = (args.lookups * threads as u64) as f64 / started.elapsed().as_secs_f64();
    figures.insert("threads".into(), json!(threads));
    figures.insert("lookups_per_second_all_threads".into(), json!(all));
    drop(index);

    if args.ingest > 0 {
        let (rate, seconds, stored) = ingest_phase(args.ingest, args.database_url.as_deref())?;
        figures.insert(
            "ingest_backend".into(),
            json!(if args.database_url.is_some() {
                "postgresql"
            } else {
                "sqlite"
            }),
        );
        figures.insert("ingest_indicators".into(), json!(args.ingest));
        figures.insert("ingest_seconds".into(), json!(seconds));
        figures.insert("ingest_indicators_per_minute".into(), json!(rate));
        figures.insert("ingest_new_indicators".into(), json!(stored.new_indicators));
        figures.insert(
            "ingest_new_observations".into(),
            json!(stored.new_observations),
        );
    }

    if args.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        for (k, v) in &figures {
            eprintln!("{k:>34}: {v}");
        }
    }
    Ok(ExitCode::from(exit::OK))
}
