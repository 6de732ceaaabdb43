//! `rampart bench events`: events per second from the outbox to each kind of destination.
//!
//! Starts a real server and, in this process, a receiver of each kind on loopback (a webhook
//! and a Splunk HEC endpoint answering as fast as they can, a syslog collector counting
//! octet-counted messages over TCP and datagrams over UDP; Kafka when `--kafka-brokers` names
//! a cluster). For one destination at a time it writes `--events` events into the server's
//! outbox in one transaction (the store's own `append_events`, as ingestion writes them) and
//! times the server's dispatcher from the first event received to the last. Beside the figures, the same-run
//! floor: the outbox alone, claiming and settling the same number of deliveries with nothing
//! sent (the server stopped), which no sink can beat.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rampart_events::{AgentRef, RunStored};
use rampart_store::{NewDestination, Store};
use serde_json::json;
use time::OffsetDateTime;
use tokio::io::AsyncReadExt;

use crate::cli::BenchEventsArgs;
use crate::cmd::bench::{cpu_model, start_server_on, tls};

/// Agents the events are spread over (Kafka keys).
const AGENTS: usize = 100;

/// What a receiver has seen: how many events, and when the first and the latest came.
#[derive(Default)]
struct Seen {
    count: AtomicUsize,
    times: std::sync::Mutex<(Option<Instant>, Option<Instant>)>,
}

impl Seen {
    fn add(&self, n: usize) {
        if n == 0 {
            return;
        }
        let now = Instant::now();
        let mut t = self
            .times
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        t.0.get_or_insert(now);
        t.1 = Some(now);
        self.count.fetch_add(n, Ordering::SeqCst);
    }

    fn reset(&self) {
        self.count.store(0, Ordering::SeqCst);
        *self
            .times
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (None, None);
    }

    fn span(&self) -> Option<Duration> {
        let t = self
            .times
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Some(t.1? - t.0?)
    }
}

/// One figure.
#[derive(serde::Serialize)]
struct Figure {
    sink: String,
    events: usize,
    received: usize,
    seconds: f64,
    per_second: f64,
}

fn events(n: usize, offset: usize) -> Vec<rampart_events::Event> {
    let now = OffsetDateTime::now_utc();
    (0..n)
        .map(|i| {
            let a = (offset + i) % AGENTS;
            rampart_events::make::run_stored(
                uuid::Uuid::now_v7().to_string(),
                now,
                AgentRef {
                    id: format!("bench-agent-{a:03}"),
                    hostname: format!("host-{a:03}"),
                    group: format!("g{:02}", a % 20),
                },
                RunStored {
                    run: uuid::Uuid::now_v7().to_string(),
                    policy: "cis_debian12".into(),
                    policy_version: Some(1),
                    trigger: "schedule".into(),
                    score: 87.5,
                    passed: 175,
                    failed: 25,
                    not_applicable: 7,
                    waived: 0,
                    other: 0,
                    started_at: now,
                    finished_at: now,
                },
            )
        })
        .collect()
}

/// Loopback receivers; their addresses.
struct Receivers {
    webhook: String,
    hec: String,
    tcp: String,
    udp: String,
}

async fn receivers(seen: Arc<Seen>) -> anyhow::Result<Receivers> {
    let hook = seen.clone();
    let hec = seen.clone();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(move || {
                let seen = hook.clone();
                async move {
                    seen.add(1);
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        )
        .route(
            "/services/collector/event",
            axum::routing::post(move |body: axum::body::Bytes| {
                let seen = hec.clone();
                async move {
                    seen.add(
                        body.split(|b| *b == b'\n')
                            .filter(|l| !l.is_empty())
                            .count(),
                    );
                    r#"{"text":"Success","code":0}"#
                }
            }),
        );
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let http_addr = http.local_addr()?;
    tokio::spawn(async move { axum::serve(http, app).await });

    // Syslog over TCP: count the octet-counted frames of every connection.
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let tcp_addr = tcp.local_addr()?;
    let on_tcp = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = tcp.accept().await {
            let seen = on_tcp.clone();
            tokio::spawn(async move {
                let mut data = Vec::new();
                if conn.read_to_end(&mut data).await.is_err() {
                    return;
                }
                let mut frames = 0;
                let mut rest = &data[..];
                while let Some(sp) = rest.iter().position(|b| *b == b' ') {
                    let Some(len) = std::str::from_utf8(&rest[..sp])
                        .ok()
                        .and_then(|l| l.parse::<usize>().ok())
                    else {
                        break;
                    };
                    if rest.len() < sp + 1 + len {
                        break;
                    }
                    rest = &rest[sp + 1 + len..];
                    frames += 1;
                }
                seen.add(frames);
            });
        }
    });
    // Syslog over UDP: a datagram a message.
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let udp_addr = udp.local_addr()?;
    let on_udp = seen;
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while udp.recv_from(&mut buf).await.is_ok() {
            on_udp.add(1);
        }
    });
    Ok(Receivers {
        webhook: format!("http://{http_addr}/hook"),
        hec: format!("http://{http_addr}"),
        tcp: tcp_addr.to_string(),
        udp: udp_addr.to_string(),
    })
}

/// The sum of a topic's high watermarks.
async fn kafka_offsets(client: &rskafka::client::Client, topic: &str) -> anyhow::Result<i64> {
    let partitions = client
        .list_topics()
        .await?
        .into_iter()
        .find(|t| t.name == topic)
        .with_context(|| format!("topic {topic} is not on the cluster"))?
        .partitions;
    let mut sum = 0;
    for p in partitions {
        let pc = client
            .partition_client(
                topic,
                p,
                rskafka::client::partition::UnknownTopicHandling::Error,
            )
            .await?;
        sum += pc
            .get_offset(rskafka::client::partition::OffsetAt::Latest)
            .await?;
    }
    Ok(sum)
}

/// `n` deliveries claimed and settled `batch` at a time, nothing sent.
async fn floor(store: &Store, n: usize, batch: u32) -> anyhow::Result<Figure> {
    let name = format!("bench-floor-{batch}");
    store
        .put_destination(
            &NewDestination {
                name: name.clone(),
                kind: "webhook".into(),
                config: json!({"kind": "webhook", "url": "http://127.0.0.1:9/"}).to_string(),
                filter: "{}".into(),
                enabled: true,
                max_attempts: 10,
            },
            OffsetDateTime::now_utc(),
        )
        .await?;
    store.append_events(&events(n, 0)).await?;
    let started = Instant::now();
    let mut settled = 0;
    loop {
        let claimed = store
            .claim_deliveries(
                &name,
                OffsetDateTime::now_utc(),
                time::Duration::seconds(60),
                batch,
            )
            .await?;
        if claimed.is_empty() {
            break;
        }
        let seqs: Vec<i64> = claimed.iter().map(|c| c.seq).collect();
        settled += seqs.len();
        store
            .settle_deliveries(&name, &seqs, &[], OffsetDateTime::now_utc())
            .await?;
    }
    let seconds = started.elapsed().as_secs_f64();
    store.delete_destination(&name).await?;
    if settled != n {
        bail!("the floor settled {settled} of {n} deliveries");
    }
    Ok(Figure {
        sink: format!("floor: outbox claim + settle by {batch}, nothing sent"),
        events: n,
        received: settled,
        seconds,
        per_second: settled as f64 / seconds,
    })
}

/// Runs the benchmark.
pub fn run(args: BenchEventsArgs) -> anyhow::Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let server = start_server_on(&data, args.database_url.as_deref(), &[])?;
    let root = std::fs::read_to_string(server.data.join("root-ca.pem"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let n = args.events;
    let figures = runtime.block_on(async {
        let client = tls(&root, None)?;
        let base = format!("https://127.0.0.1:{}", server.api);
        let store = match &args.database_url {
            Some(url) => Store::open(url).await?,
            None => Store::open_sqlite(&data.join("rampart.db")).await?,
        };
        let seen = Arc::new(Seen::default());
        let r = receivers(seen.clone()).await?;
        let mut sinks: Vec<(String, serde_json::Value, Option<&str>)> = vec![
            (
                "webhook".into(),
                json!({"kind": "webhook", "url": r.webhook}),
                None,
            ),
            (
                "splunk_hec".into(),
                json!({"kind": "splunk_hec", "url": r.hec}),
                Some("bench-token"),
            ),
            (
                "syslog_tcp".into(),
                json!({"kind": "syslog", "address": r.tcp, "transport": "tcp", "payload": "json"}),
                None,
            ),
            (
                "syslog_udp".into(),
                json!({"kind": "syslog", "address": r.udp, "transport": "udp", "payload": "cef"}),
                None,
            ),
        ];
        let kafka = match &args.kafka_brokers {
            Some(brokers) => {
                let list: Vec<String> = brokers.split(',').map(str::to_owned).collect();
                sinks.push((
                    "kafka".into(),
                    json!({"kind": "kafka", "brokers": list, "topic": args.kafka_topic}),
                    None,
                ));
                Some(rskafka::client::ClientBuilder::new(list).build().await?)
            }
            None => None,
        };
        let mut figures = Vec::new();
        for (name, sink, credential) in sinks {
            if let Some(only) = &args.sink
                && *only != name
            {
                continue;
            }
            seen.reset();
            // Only the benchmark's events: the destination's own audit events pass by unsent.
            let mut body = json!({ "sink": sink, "filter": {"kinds": ["run.stored"]} });
            if let Some(c) = credential {
                body["credential"] = json!(c);
            }
            let dest = format!("bench-{}", name.replace('_', "-"));
            client
                .put(format!("{base}/api/v1/event-destinations/{dest}"))
                .bearer_auth(&server.token)
                .json(&body)
                .send()
                .await?
                .error_for_status()
                .with_context(|| format!("defining {dest}"))?;
            let kafka_before = match &kafka {
                Some(c) if name == "kafka" => kafka_offsets(c, &args.kafka_topic).await?,
                _ => 0,
            };
            // One transaction: the dispatcher finds them all at once, and what is timed is
            // its sending, not the writing.
            store.append_events(&events(n, 0)).await?;
            // Until every event arrived, or none did for 3 s (UDP drops what the receiver's
            // socket buffer cannot hold: syslog over UDP has no flow control).
            let mut last = (0, Instant::now());
            let received = loop {
                let got = match &kafka {
                    Some(c) if name == "kafka" => {
                        let now = kafka_offsets(c, &args.kafka_topic).await?;
                        let got = usize::try_from(now - kafka_before).unwrap_or(0);
                        seen.count.store(0, Ordering::SeqCst);
                        seen.add(got);
                        got
                    }
                    _ => seen.count.load(Ordering::SeqCst),
                };
                if got != last.0 {
                    last = (got, Instant::now());
                }
                let stalled = last.1.elapsed() > Duration::from_secs(if got == 0 { 30 } else { 3 });
                if got >= n || stalled {
                    break got;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            // From the first event received to the last (for Kafka, as the topic's offsets
            // showed them, polled every 20 ms): the dispatcher notices events another process
            // wrote within a second, which is not what is measured here.
            let seconds = seen.span().map_or(0.0, |d| d.as_secs_f64());
            client
                .delete(format!("{base}/api/v1/event-destinations/{dest}"))
                .bearer_auth(&server.token)
                .send()
                .await?
                .error_for_status()?;
            figures.push(Figure {
                sink: name,
                events: n,
                received,
                seconds,
                per_second: if seconds > 0.0 {
                    received.saturating_sub(1) as f64 / seconds
                } else {
                    0.0
                },
            });
        }
        drop(server);
        // The floors: the same deliveries claimed and settled with nothing sent, in the
        // dispatcher's batches (100 for webhooks, 500 for the others).
        for batch in [100u32, 500] {
            figures.push(floor(&store, n, batch).await?);
        }
        store.close().await;
        anyhow::Ok(figures)
    })?;
    let backend = if args.database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    if args.json {
        println!(
            "{}",
            json!({"cpu": cpu_model(), "backend": backend, "events": n, "figures": figures})
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "rampart bench events: {n} events per sink, {backend}, {}",
        cpu_model()
    );
    println!(
        "{:<44} {:>9} {:>9} {:>12}",
        "sink", "received", "seconds", "events/s"
    );
    for f in &figures {
        println!(
            "{:<44} {:>9} {:>9.2} {:>12.0}",
            f.sink, f.received, f.seconds, f.per_second
        );
    }
    if figures
        .iter()
        .any(|f| f.received < f.events && f.sink != "syslog_udp")
    {
        bail!("a sink did not receive every event within 5 minutes");
    }
    Ok(ExitCode::SUCCESS)
}
