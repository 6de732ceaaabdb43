//! `rampart bench alerts`: how long after a run is stored its alert leaves for the people
//! who must act.
//!
//! Starts a real server and, in this process, a loopback receiver speaking Slack's webhook
//! protocol and a plain webhook. One simulated agent (enrolled over the API, posting over
//! mTLS as agents do) posts runs that alternately fail and pass every check; a `score_below`
//! rule on its group therefore fires and resolves with every run, told to the Slack
//! destination (quiet period 0). Each run is timed from the moment it was sent to the moment
//! the Slack message arrived; beside it, the same run's baselines from the same moment: the
//! server's acknowledgement (the run stored, with its events, in one transaction: what "run
//! stored" means) and its `run.stored` event reaching a webhook, the outbox's delivery with no
//! rule in between. The alert's time past those is what judging the rule costs: the
//! evaluator's turn (read the events, measure the group's score from the fleet's counters,
//! write the state and the alert) and a second pass of the dispatcher.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Bytes;
use serde_json::{Value, json};

use crate::cli::BenchAlertsArgs;
use crate::cmd::bench::{cpu_model, enrol_one, gzipped_run, percentile, start_server_on, tls};

/// When each message arrived: Slack texts, and webhook events by run id.
#[derive(Default)]
struct Arrivals {
    slack: Mutex<Vec<(Instant, String)>>,
    runs: Mutex<HashMap<String, Instant>>,
}

async fn receiver(seen: Arc<Arrivals>) -> anyhow::Result<String> {
    let slack = seen.clone();
    let hook = seen;
    let app = axum::Router::new()
        .route(
            "/services/T0/B0/bench",
            axum::routing::post(move |body: Bytes| {
                let seen = slack.clone();
                async move {
                    let now = Instant::now();
                    let text = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|v| v["text"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    seen.slack
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push((now, text));
                    "ok"
                }
            }),
        )
        .route(
            "/hook",
            axum::routing::post(move |body: Bytes| {
                let seen = hook.clone();
                async move {
                    let now = Instant::now();
                    if let Ok(v) = serde_json::from_slice::<Value>(&body)
                        && v["kind"] == "run.stored"
                        && let Some(run) = v["data"]["run"].as_str()
                    {
                        seen.runs
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .insert(run.to_owned(), now);
                    }
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}"))
}

/// A run whose every check fails (or passes), gzipped as agents send it.
fn run(run_id: &str, checks: usize, fail: bool) -> anyhow::Result<Vec<u8>> {
    use rampart_core::{CheckOutcome, Status};
    let status = if fail { Status::Fail } else { Status::Pass };
    let outcomes = (0..checks)
        .map(|i| {
            CheckOutcome::new(
                format!("RMP-{i:03}"),
                format!("Benchmark check {i}"),
                status,
            )
        })
        .collect();
    gzipped_run(run_id, outcomes)
}

#[derive(serde::Serialize)]
struct Summary {
    what: &'static str,
    samples: usize,
    p50_ms: f64,
    p95_ms: f64,
    max_ms: f64,
}

fn summary(what: &'static str, mut micros: Vec<u64>) -> Summary {
    micros.sort_unstable();
    Summary {
        what,
        samples: micros.len(),
        // `percentile` reads microseconds and answers milliseconds.
        p50_ms: percentile(&micros, 0.5),
        p95_ms: percentile(&micros, 0.95),
        max_ms: micros.last().copied().unwrap_or(0) as f64 / 1000.0,
    }
}

/// Runs the benchmark.
pub fn run_bench(args: BenchAlertsArgs) -> anyhow::Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    let server = start_server_on(&dir.path().join("data"), args.database_url.as_deref(), &[])?;
    let root = std::fs::read_to_string(server.data.join("root-ca.pem"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (alert, event, ack) = runtime.block_on(async {
        let admin = tls(&root, None)?;
        let api = format!("https://127.0.0.1:{}", server.api);
        let seen = Arc::new(Arrivals::default());
        let base = receiver(seen.clone()).await?;
        let put = |path: String, body: Value| {
            let (admin, api, token) = (admin.clone(), api.clone(), server.token.clone());
            async move {
                admin
                    .put(format!("{api}{path}"))
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await?
                    .error_for_status()
                    .with_context(|| format!("PUT {path}"))?;
                anyhow::Ok(())
            }
        };
        put(
            "/api/v1/event-destinations/bench-slack".into(),
            json!({"sink": {"kind": "slack"}, "credential": format!("{base}/services/T0/B0/bench")}),
        )
        .await?;
        put(
            "/api/v1/event-destinations/bench-hook".into(),
            json!({"sink": {"kind": "webhook", "url": format!("{base}/hook")},
                   "filter": {"kinds": ["run.stored"]}}),
        )
        .await?;
        put(
            "/api/v1/alert-rules/bench-score".into(),
            json!({"condition": {"kind": "score_below", "threshold": 50, "group": "bench"},
                   "notify": ["bench-slack"], "quiet_minutes": 0}),
        )
        .await?;
        let created: rampart_server::api::TokenCreated = admin
            .post(format!("{api}/api/v1/tokens"))
            .bearer_auth(&server.token)
            .json(&rampart_server::api::TokenRequest {
                group: "bench".into(),
                labels: Default::default(),
                ttl_secs: 3600,
                max_uses: 1,
                agent_id: None,
            })
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let agent = enrol_one(&admin, &api, &created.token, 0, &root).await?;
        let runs_url = format!("https://127.0.0.1:{}/agent/v1/runs", server.agent);

        let mut alert = Vec::with_capacity(args.runs);
        let mut event = Vec::with_capacity(args.runs);
        let mut ack = Vec::with_capacity(args.runs);
        for i in 0..args.runs {
            let run_id = uuid::Uuid::now_v7().to_string();
            let body = run(&run_id, args.checks, i % 2 == 0)?;
            let told_before = seen
                .slack
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .len();
            let sent = Instant::now();
            let resp = agent
                .post(&runs_url)
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(body)
                .send()
                .await?;
            if !resp.status().is_success() {
                bail!("run {i}: {} {}", resp.status(), resp.text().await.unwrap_or_default());
            }
            // Stored: the server answers once the run and its events are committed. The
            // alert often arrives before this process has read that answer, so every time is
            // taken from the moment the run was sent: the acknowledgement is the baseline.
            let acknowledged = Instant::now();
            let deadline = acknowledged + Duration::from_secs(30);
            let (told, delivered) = loop {
                let told = seen
                    .slack
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(told_before)
                    .map(|(t, _)| *t);
                let delivered = seen
                    .runs
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get(&run_id)
                    .copied();
                if let (Some(t), Some(d)) = (told, delivered) {
                    break (t, d);
                }
                if Instant::now() > deadline {
                    bail!("run {i}: no alert or no run.stored event within 30 s");
                }
                tokio::time::sleep(Duration::from_micros(500)).await;
            };
            alert.push(told.saturating_duration_since(sent).as_micros() as u64);
            event.push(delivered.saturating_duration_since(sent).as_micros() as u64);
            ack.push(acknowledged.saturating_duration_since(sent).as_micros() as u64);
        }
        let texts = seen
            .slack
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(_, t)| t.clone())
            .collect::<Vec<_>>();
        let firing = texts.iter().filter(|t| t.starts_with("[FIRING]")).count();
        let resolved = texts.iter().filter(|t| t.starts_with("[RESOLVED]")).count();
        if firing != args.runs.div_ceil(2) || resolved != args.runs / 2 {
            bail!("expected alternating alerts, got {firing} firing and {resolved} resolved");
        }
        anyhow::Ok((alert, event, ack))
    })?;
    drop(server);
    let backend = if args.database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let figures = [
        summary("run sent -> its alert received (Slack webhook)", alert),
        summary(
            "baseline: run sent -> stored and acknowledged (HTTP answer)",
            ack,
        ),
        summary(
            "baseline: run sent -> its run.stored event received (webhook)",
            event,
        ),
    ];
    if args.json {
        println!(
            "{}",
            json!({"cpu": cpu_model(), "backend": backend, "runs": args.runs,
                   "checks": args.checks, "figures": figures})
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "rampart bench alerts: {} runs of {} checks, each changing the alert, {backend}, {}",
        args.runs,
        args.checks,
        cpu_model()
    );
    println!("{:<66} {:>8} {:>8} {:>8}", "", "p50 ms", "p95 ms", "max ms");
    for f in &figures {
        println!(
            "{:<66} {:>8.1} {:>8.1} {:>8.1}",
            f.what, f.p50_ms, f.p95_ms, f.max_ms
        );
    }
    Ok(ExitCode::SUCCESS)
}
