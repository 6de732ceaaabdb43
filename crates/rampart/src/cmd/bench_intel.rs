//! `rampart bench intel`: lookup rate and memory of the indicator index on a synthetic set,
//! and end-to-end ingestion into the embedded store.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use rampart_intel::synthetic::{self, Rng};
use rampart_intel::{Index, Ioc, IocKind};
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

/// A feed definition for the benchmark: file-only, reliability 80, 30-day TTL.
fn bench_feed(name: &str, format: &str) -> rampart_store::NewIntelFeed {
    rampart_store::NewIntelFeed {
        name: name.into(),
        format: format.into(),
        url: None,
        interval_secs: 3600,
        reliability: 80,
        tlp: "clear".into(),
        terms: None,
        ttl_secs: 30 * 86_400,
    }
}

/// Every indicator of the real feed files given with `--feed`.
fn feed_indicators(feeds: &[(rampart_intel::Format, PathBuf)]) -> anyhow::Result<Vec<Ioc>> {
    let mut out = Vec::new();
    for (format, path) in feeds {
        let mut input = std::fs::File::open(path)
            .with_context(|| format!("--feed {}: cannot open", path.display()))?;
        rampart_intel::parse(
            *format,
            &mut input,
            &rampart_intel::Limits::default(),
            &mut |record| out.extend(record.indicators),
        )
        .with_context(|| format!("--feed {}", path.display()))?;
    }
    Ok(out)
}

/// Ingests each `--feed` file into `store` (after the generated feed: real rows deduplicated
/// against a large store) and reports what each did and how long it took.
async fn ingest_feeds(
    store: &rampart_store::Store,
    feeds: &[(rampart_intel::Format, PathBuf)],
    now: i64,
) -> anyhow::Result<serde_json::Value> {
    let mut out = Vec::new();
    for (format, path) in feeds {
        let name = path.file_name().map_or_else(
            || format.as_str().to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        let feed = store
            .intel_put_feed(&bench_feed(&name, format.as_str()), now)
            .await?;
        let input = Box::new(
            std::fs::File::open(path)
                .with_context(|| format!("--feed {}: cannot open", path.display()))?,
        );
        let started = Instant::now();
        let report = rampart_feeds::ingest::ingest(
            store,
            &feed,
            *format,
            input,
            rampart_intel::Limits::default(),
            now,
            None,
        )
        .await?;
        out.push(json!({
            "file": name,
            "format": format.as_str(),
            "records": report.parse.records,
            "problems": report.parse.problems,
            "new_indicators": report.stored.new_indicators,
            "updated_indicators": report.stored.updated_indicators,
            "seconds": started.elapsed().as_secs_f64(),
        }));
    }
    Ok(serde_json::Value::Array(out))
}

/// Writes a generated feed (one indicator per line, as blocklists are) and ingests it end to
/// end into a fresh embedded store: parse, canonicalise, dedup, store with observations. Then
/// the `--feed` files, into the same store.
fn ingest_phase(
    dir: &std::path::Path,
    n: u64,
    database_url: Option<&str>,
    feeds: &[(rampart_intel::Format, PathBuf)],
) -> anyhow::Result<(
    f64,
    f64,
    rampart_store::IntelIngestCounts,
    serde_json::Value,
)> {
    use std::io::Write as _;
    let feed_path = dir.join("feed.txt");
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
            None => rampart_store::Store::open_sqlite(&dir.join("rampart.db")).await?,
        };
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let feed = store
            .intel_put_feed(&bench_feed("bench", "plain"), now)
            .await?;
        let input = Box::new(std::fs::File::open(&feed_path)?);
        let started = Instant::now();
        let report = rampart_feeds::ingest::ingest(
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
        let real = ingest_feeds(&store, feeds, now).await?;
        store.close().await;
        std::fs::remove_file(&feed_path)?;
        Ok((n as f64 / seconds * 60.0, seconds, report.stored, real))
    })
}

/// SQLite's own cost of storing the same rows Rampart's ingestion stored, in the same run: a
/// fresh database with the store's own schema (its migrations, so the same tables and
/// indexes), and one transaction of prepared `INSERT`s (rusqlite, the C API's statements) of
/// each generated indicator with its key, record and observation, every value computed before
/// the clock starts. Nothing parses, canonicalises, hashes or deduplicates. Keys are spread
/// like the store's SHA-256 keys (a multiplicative hash), so the key table costs what it does
/// for real. One statement per row is the plain way to load rows, not the cheapest (set-based
/// inserts cost about a third: docs/performance.md). Returns indicators per minute.
fn sqlite_floor(dir: &std::path::Path, n: u64) -> anyhow::Result<f64> {
    let path = dir.join("floor.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let feed_id = runtime.block_on(async {
        let store = rampart_store::Store::open_sqlite(&path).await?;
        let feed = store
            .intel_put_feed(&bench_feed("bench", "plain"), now)
            .await?;
        store.close().await;
        anyhow::Ok(feed.id)
    })?;
    struct Row {
        key: i64,
        kind: i64,
        value: String,
        hash: String,
    }
    let rows: Vec<Row> = (0..n)
        .map(|i| {
            let ioc = synthetic::indicator(i);
            Row {
                key: i64::from_ne_bytes(
                    (i.wrapping_add(1))
                        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                        .to_ne_bytes(),
                ),
                kind: i64::from(ioc.kind.code()),
                hash: rampart_feeds::ingest::record_hash(feed_id, &ioc.value),
                value: ioc.value,
            }
        })
        .collect();
    let mut conn = rusqlite::Connection::open(&path)?;
    // The pragmas of the store's intel writer (which leaves foreign keys unenforced).
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = OFF; \
         PRAGMA mmap_size = 2147418112; PRAGMA cache_size = -1048576; PRAGMA temp_store = memory;",
    )?;
    let expires = now + 30 * 86_400;
    let started = Instant::now();
    let tx = conn.transaction()?;
    {
        let mut indicator = tx.prepare(
            "INSERT INTO intel_indicators (id, key, kind, value, first_seen, last_seen, \
             first_reported, last_reported, expires_at, base_score, version) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?5, ?5, ?6, 80, ?7)",
        )?;
        let mut record = tx.prepare(
            "INSERT INTO intel_records (id, anchor, hash, feed_id, malware, tags, attack, raw, \
             first_fetched, last_fetched) VALUES (?1, ?1, ?2, ?3, '[]', '[]', '[]', ?4, ?5, ?5)",
        )?;
        let mut observation =
            tx.prepare("INSERT INTO intel_observations (indicator_id, record_id) VALUES (?1, ?1)")?;
        let mut key = tx.prepare("INSERT INTO intel_indicator_keys (key, id) VALUES (?1, ?2)")?;
        for (i, r) in rows.iter().enumerate() {
            let id = i64::try_from(i)? + 1;
            indicator.execute(rusqlite::params![
                id, r.key, r.kind, r.value, now, expires, id
            ])?;
            record.execute(rusqlite::params![id, r.hash, feed_id, r.value, now])?;
            observation.execute(rusqlite::params![id])?;
            key.execute(rusqlite::params![r.key, id])?;
        }
    }
    tx.commit()?;
    let seconds = started.elapsed().as_secs_f64();
    drop(conn);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("floor.db{suffix}")));
    }
    Ok(n as f64 / seconds * 60.0)
}

/// Starts a real `rampart server` on the ingested store and sends `rate` lookups per second
/// for `seconds` through its API (TLS, admin token), open loop: each request's latency is
/// measured from when it was due, so a slow server cannot hide behind a slowed-down client.
fn api_phase(
    dir: &std::path::Path,
    database_url: Option<&str>,
    n: u64,
    rate: u64,
    seconds: u64,
) -> anyhow::Result<serde_json::Value> {
    use crate::cmd::bench::{start_server_on, tls};
    let started = Instant::now();
    let server = start_server_on(dir, database_url, &[])?;
    let root = std::fs::read_to_string(server.data.join("root-ca.pem"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let client = tls(&root, None)?;
        let base = format!(
            "https://127.0.0.1:{}/api/v1/intel/lookup?value=",
            server.api
        );
        // Wait for the index: the server serves requests only once it has loaded it.
        let mut ready = false;
        for _ in 0..600 {
            if let Ok(r) = client
                .get(format!("https://127.0.0.1:{}/api/v1/health", server.api))
                .send()
                .await
                && r.status().is_success()
            {
                ready = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        anyhow::ensure!(ready, "the server did not answer within 60 s");
        let startup = started.elapsed().as_secs_f64();
        let mut rng = Rng::new(7);
        let values: Vec<String> = (0..10_000)
            .map(|_| {
                let q = synthetic::query(&mut rng, n);
                q.value
                    .bytes()
                    .map(|b| match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                            (b as char).to_string()
                        }
                        _ => format!("%{b:02X}"),
                    })
                    .collect()
            })
            .collect();
        let token = server.token.clone();
        let mut figures = crate::cmd::bench::open_loop(
            &client,
            server.child_id(),
            rate,
            seconds,
            |k| {
                let url = format!("{base}{}", values[(k % values.len() as u64) as usize]);
                (url, Some(token.clone()))
            },
            |status| status == 200,
        )
        .await?;
        figures["startup_seconds"] = json!(startup);
        Ok(figures)
    })
}

/// Runs the intel benchmark.
pub fn run(args: BenchIntelArgs) -> anyhow::Result<ExitCode> {
    let mut figures = serde_json::Map::new();
    figures.insert("cpu".into(), json!(super::bench::cpu_model()));
    // The real feeds' indicators join the index (ids after the generated ones).
    let real = feed_indicators(&args.feeds)?;
    let rss_before = rss_bytes();
    let started = Instant::now();
    let capacity = args.indicators as usize + real.len();
    let mut index = Index::with_capacity(capacity, capacity * 32);
    for i in 0..args.indicators {
        index.upsert(&synthetic::indicator(i), i + 1, 50)?;
    }
    for (k, ioc) in real.iter().enumerate() {
        index.upsert(ioc, args.indicators + 1 + k as u64, 50)?;
    }
    index.commit();
    let build = started.elapsed().as_secs_f64();
    let rss_after = rss_bytes();
    let len = index.len() as f64;
    figures.insert("indicators".into(), json!(index.len()));
    figures.insert("feed_indicators".into(), json!(real.len()));
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
            .map(|k| match real.get(k as usize / 10 % real.len().max(1)) {
                // Every tenth query is a real feed's indicator, looked up exactly.
                Some(ioc) if k % 10 == 9 => ioc.clone(),
                _ => synthetic::query(&mut rng, n),
            })
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

    // The same queries in batches, as bulk and fleet matching look them up
    // (`Index::lookup_each`): the count of queries with a match must be the same.
    let batched = |offset: u64| -> u64 {
        let (len, mut done, mut found) = (queries.len() as u64, 0u64, 0u64);
        while done < args.lookups {
            let start = (done + offset) % len;
            let take = (len - start).min(args.lookups - done);
            index.lookup_each(&queries[start as usize..(start + take) as usize], |_, _| {
                found += 1;
                false
            });
            done += take;
        }
        found
    };
    let started = Instant::now();
    let batched_hits = batched(0);
    let batched_one = args.lookups as f64 / started.elapsed().as_secs_f64();
    if batched_hits != hits {
        anyhow::bail!("batched lookups found {batched_hits} matches, one by one {hits}");
    }
    figures.insert(
        "batched_lookups_per_second_1_thread".into(),
        json!(batched_one),
    );

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
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let batched = &batched;
            s.spawn(move || batched(t as u64 * 7919));
        }
    });
    let all = (args.lookups * threads as u64) as f64 / started.elapsed().as_secs_f64();
    figures.insert("batched_lookups_per_second_all_threads".into(), json!(all));
    drop(index);

    // The memory floor of the same run: a plain hash-map probe of the same query sequence
    // against the same indicators (exact matches only, none of the index's network, parent
    // domain and URL-host work), one thread. The ratio says how close the index is to what
    // this machine's memory allows, whatever the machine.
    let floor = {
        let mut map: std::collections::HashMap<(IocKind, String), u64> =
            std::collections::HashMap::with_capacity(capacity);
        for i in 0..args.indicators {
            let ioc = synthetic::indicator(i);
            map.insert((ioc.kind, ioc.value), i + 1);
        }
        for (k, ioc) in real.iter().enumerate() {
            map.insert(
                (ioc.kind, ioc.value.clone()),
                args.indicators + 1 + k as u64,
            );
        }
        let keys: Vec<(IocKind, String)> =
            queries.iter().map(|q| (q.kind, q.value.clone())).collect();
        let mut found = 0u64;
        let started = Instant::now();
        for k in 0..args.lookups {
            let key = &keys[(k % keys.len() as u64) as usize];
            found += u64::from(map.contains_key(key));
        }
        let rate = args.lookups as f64 / started.elapsed().as_secs_f64();
        std::hint::black_box(found);
        rate
    };
    figures.insert(
        "floor_hashmap_probes_per_second_1_thread".into(),
        json!(floor),
    );
    figures.insert(
        "lookups_vs_hashmap_floor_1_thread".into(),
        json!(one / floor),
    );
    figures.insert(
        "batched_lookups_vs_hashmap_floor_1_thread".into(),
        json!(batched_one / floor),
    );

    if args.ingest > 0 {
        let dir = tempfile::tempdir()?;
        let (rate, seconds, stored, real) = ingest_phase(
            dir.path(),
            args.ingest,
            args.database_url.as_deref(),
            &args.feeds,
        )?;
        if !args.feeds.is_empty() {
            figures.insert("feed_ingest".into(), real);
        }
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
        if args.database_url.is_none() {
            let floor = sqlite_floor(dir.path(), args.ingest)?;
            figures.insert(
                "floor_sqlite_prepared_inserts_per_minute".into(),
                json!(floor),
            );
            figures.insert("ingest_vs_sqlite_floor".into(), json!(rate / floor));
        }
        figures.insert("ingest_new_indicators".into(), json!(stored.new_indicators));
        figures.insert(
            "ingest_new_observations".into(),
            json!(stored.new_observations),
        );
        if args.api_rate > 0 {
            let api = api_phase(
                dir.path(),
                args.database_url.as_deref(),
                args.ingest,
                args.api_rate,
                args.api_seconds,
            )?;
            figures.insert("api_lookup".into(), api);
        }
    }

    if args.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        for (k, v) in &figures {
            eprintln!("{k:>42}: {v}");
        }
    }
    Ok(ExitCode::from(exit::OK))
}
