//! `rampart bench dashboard`: how long each dashboard page takes with a large fleet.
//!
//! Starts a real server, fills its store with `--agents` agents (20 groups, two operating
//! systems, two label values) and one run each of a policy of `--checks` checks (mapped to
//! CIS and, every third, PCI DSS), so the store holds agents × checks latest results with
//! their evidence; then asks every page `--requests` times in turn over HTTPS with an API
//! token (the PDF reports of an agent, a group and the fleet too) and prints p50, p95 and the
//! slowest, beside the same-run floor: `GET /api/v1/health`,
//! a request that reads nothing.

use std::process::ExitCode;
use std::time::Instant;

use rampart_core::{CheckOutcome, Evidence, HostInfo, Observation, ObservationKind, Status};
use rampart_core::{RuleVerdict, Summary};
use rampart_store::{CertificateRecord, NewAgent, NewRun, Store};
use serde_json::json;
use time::OffsetDateTime;

use crate::cli::BenchDashboardArgs;
use crate::cmd::bench::{cpu_model, start_server_on, tls};

/// Runs stored per transaction while filling the store.
const BATCH: usize = 20;

/// The benchmark's policy: `checks` checks, each mapped to CIS, every third to PCI DSS too.
fn policy(checks: usize) -> String {
    let mut y =
        String::from("rampart: 1\npolicy:\n  id: bench\n  name: Benchmark policy\nchecks:\n");
    for i in 0..checks {
        let pci = if i.is_multiple_of(3) {
            format!(", pci_dss: [\"2.2.{i}\"]")
        } else {
            String::new()
        };
        y.push_str(&format!(
            "  - id: C-{i:04}\n    title: Benchmark check {i}\n    severity: medium\n    \
             compliance: {{cis: [\"5.{i}\"]{pci}}}\n    rules:\n      \
             - {{file: /etc/bench/{i}.conf, match: '^Setting{i}\\s+yes'}}\n"
        ));
    }
    y
}

/// One agent's run: a pseudo-random mix (about 60 % pass, 30 % fail, 10 % not applicable),
/// each check with a file line as its evidence.
fn run(agent: &str, n: usize, checks: usize, digest: &str, version: i64) -> anyhow::Result<NewRun> {
    let now = OffsetDateTime::now_utc();
    let outcomes: Vec<CheckOutcome> = (0..checks)
        .map(|i| {
            let roll = (n * 7919 + i * 104_729) % 10;
            let status = match roll {
                0..=5 => Status::Pass,
                6..=8 => Status::Fail,
                _ => Status::NotApplicable,
            };
            let mut c =
                CheckOutcome::new(format!("C-{i:04}"), format!("Benchmark check {i}"), status);
            c.evidence = vec![Evidence {
                rule: format!("f:/etc/bench/{i}.conf -> r:^Setting{i}\\s+yes"),
                verdict: if status == Status::Pass {
                    RuleVerdict::Found
                } else {
                    RuleVerdict::NotFound
                },
                observations: vec![Observation {
                    kind: ObservationKind::File,
                    target: format!("/etc/bench/{i}.conf"),
                    line: Some(3),
                    text: Some(format!(
                        "Setting{i} {}",
                        if status == Status::Pass { "yes" } else { "no" }
                    )),
                    detail: None,
                }],
            }];
            c
        })
        .collect();
    let mut summary = Summary::default();
    for c in &outcomes {
        summary.add(c.status);
    }
    summary.finish();
    Ok(NewRun {
        id: format!("bench-run-{n:06}"),
        agent_id: agent.to_owned(),
        policy_id: "bench".into(),
        policy_version: Some(version),
        policy_digest: digest.to_owned(),
        trigger: "schedule".into(),
        started_at: now,
        finished_at: now,
        received_at: now,
        summary,
        results_digest: String::new(),
        host: HostInfo {
            hostname: format!("host-{n:05}"),
            os: os(n).into(),
            kernel: "6.1.0".into(),
            root: None,
        },
        warnings: Vec::new(),
        generator: "rampart bench".into(),
        cert_sha256: String::new(),
        cert_not_after: now + time::Duration::days(1),
        check_texts: rampart_store::outcome_texts(&outcomes)?,
        checks: outcomes,
    })
}

fn os(n: usize) -> &'static str {
    if n.is_multiple_of(2) {
        "Debian GNU/Linux 12"
    } else {
        "Ubuntu 24.04 LTS"
    }
}

fn agent_id(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// Fills the store the server uses.
async fn fill(
    store: &Store,
    agents: usize,
    checks: usize,
    digest: &str,
    version: i64,
) -> anyhow::Result<()> {
    let now = OffsetDateTime::now_utc();
    for n in 0..agents {
        let id = agent_id(n);
        let agent = NewAgent {
            id: id.clone(),
            hostname: format!("host-{n:05}"),
            os: os(n).into(),
            arch: "x86_64".into(),
            agent_version: "bench".into(),
            labels: [(
                "env".to_owned(),
                if n.is_multiple_of(4) { "prod" } else { "test" }.to_owned(),
            )]
            .into_iter()
            .collect(),
            group: format!("g{:02}", n % 20),
        };
        let cert = CertificateRecord {
            serial: format!("{n:032x}"),
            agent_id: id,
            fingerprint: format!("{n:064x}"),
            not_before: now,
            not_after: now + time::Duration::days(1),
            issued_at: now,
            revoked_at: None,
            revocation_reason: None,
        };
        store.enrol_agent(&agent, &cert, now).await?;
    }
    for start in (0..agents).step_by(BATCH) {
        let runs = (start..(start + BATCH).min(agents))
            .map(|n| run(&agent_id(n), n, checks, digest, version))
            .collect::<anyhow::Result<Vec<_>>>()?;
        store.ingest_runs(&runs).await?;
    }
    Ok(())
}

/// Asks `url` `n` times after two warm-up requests; the latencies in milliseconds, sorted.
async fn time_page(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    n: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n + 2 {
        let t = Instant::now();
        let r = client.get(url).bearer_auth(token).send().await?;
        let status = r.status();
        let _ = r.bytes().await?;
        anyhow::ensure!(status.is_success(), "{url}: HTTP {status}");
        if i >= 2 {
            out.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0.0)
}

/// Runs the benchmark.
pub fn run_bench(args: BenchDashboardArgs) -> anyhow::Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let server = start_server_on(&data, args.database_url.as_deref(), &[])?;
    let root = std::fs::read_to_string(server.data.join("root-ca.pem"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let figures = runtime.block_on(async {
        let client = tls(&root, None)?;
        let base = format!("https://127.0.0.1:{}", server.api);
        let uploaded: serde_json::Value = client
            .post(format!("{base}/api/v1/policies"))
            .bearer_auth(&server.token)
            .json(&json!({"file_name": "bench.yml", "content": policy(args.checks)}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let version = uploaded["version"].as_i64().unwrap_or(1);
        let digest = uploaded["digest"].as_str().unwrap_or_default().to_owned();
        let store = match &args.database_url {
            Some(url) => Store::open(url).await?,
            None => Store::open_sqlite(&data.join("rampart.db")).await?,
        };
        let began = Instant::now();
        fill(&store, args.agents, args.checks, &digest, version).await?;
        let filled_secs = began.elapsed().as_secs_f64();
        store.close().await;
        let one = agent_id(0);
        let pages: Vec<(&str, String)> = vec![
            ("floor: GET /api/v1/health", "/api/v1/health".into()),
            ("fleet overview", "/ui/".into()),
            ("overview, one group", "/ui/?group=g03".into()),
            ("overview, one label", "/ui/?label=env%3Dprod".into()),
            ("agents", "/ui/agents".into()),
            ("one agent", format!("/ui/agents/{one}")),
            (
                "one check across the fleet",
                "/ui/checks/bench/C-0007".into(),
            ),
            ("one run", "/ui/runs/bench-run-000000".into()),
            ("policies", "/ui/policies".into()),
            ("one policy", "/ui/policies/bench".into()),
            ("waivers", "/ui/waivers".into()),
            ("enrolment tokens", "/ui/tokens".into()),
            ("users", "/ui/users".into()),
            ("audit log", "/ui/audit".into()),
            ("threat intel", "/ui/intel".into()),
            (
                "PDF report, one agent",
                format!("/api/v1/agents/{one}/report?format=pdf"),
            ),
            (
                "PDF report, one group",
                "/api/v1/report?format=pdf&group=g03".into(),
            ),
            ("PDF report, the fleet", "/api/v1/report?format=pdf".into()),
            ("Prometheus scrape /metrics", "/metrics".into()),
        ];
        let mut out = Vec::new();
        for (name, path) in pages {
            let t = time_page(
                &client,
                &format!("{base}{path}"),
                &server.token,
                args.requests,
            )
            .await?;
            out.push(json!({
                "page": name,
                "path": path,
                "p50_ms": pct(&t, 0.5),
                "p95_ms": pct(&t, 0.95),
                "max_ms": t.last().copied().unwrap_or(0.0),
            }));
        }
        anyhow::Ok(json!({
            "cpu": cpu_model(),
            "backend": if args.database_url.is_some() { "postgres" } else { "sqlite" },
            "agents": args.agents,
            "check_results": args.agents * args.checks,
            "fill_seconds": filled_secs,
            "requests_per_page": args.requests,
            "pages": out,
        }))
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        println!(
            "cpu: {}  backend: {}  agents: {}  latest check results: {}  (filled in {:.0} s)",
            figures["cpu"].as_str().unwrap_or(""),
            figures["backend"].as_str().unwrap_or(""),
            figures["agents"],
            figures["check_results"],
            figures["fill_seconds"].as_f64().unwrap_or(0.0)
        );
        for p in figures["pages"].as_array().into_iter().flatten() {
            println!(
                "{:30} p50 {:7.1} ms  p95 {:7.1} ms  max {:7.1} ms",
                p["page"].as_str().unwrap_or(""),
                p["p50_ms"].as_f64().unwrap_or(0.0),
                p["p95_ms"].as_f64().unwrap_or(0.0),
                p["max_ms"].as_f64().unwrap_or(0.0),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
