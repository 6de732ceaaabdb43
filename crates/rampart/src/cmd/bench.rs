//! `rampart bench fleet`: a real server process, simulated agents with real mTLS identities.
//!
//! Phases: (1) enrol every simulated agent through the API (real tokens, CSRs, certificates);
//! (2) every agent heartbeats on its own TLS identity once per interval, offsets spread over the
//! interval, while the server's RSS is sampled from /proc; (3) uploaders post pre-built results
//! (gzip JSON, as agents send them) and the acknowledged check results per second are counted.
//! The load generator runs on the same machine and competes for the same cores: the figures are
//! a lower bound for the server alone.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use rampart_core::fleet::{EnrolRequest, EnrolResponse, RunSubmission};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::cli::{BenchCommand, BenchFleetArgs};
use crate::exit;

/// Runs a benchmark.
pub fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Fleet(args) => fleet(args),
        BenchCommand::Intel(args) => super::bench_intel::run(args),
        BenchCommand::Auth(args) => super::bench_auth::run(args),
        BenchCommand::Audit(args) => super::bench_audit::run(args),
        BenchCommand::Dashboard(args) => super::bench_dashboard::run_bench(args),
        BenchCommand::Attest(args) => super::bench_attest::run(args),
        BenchCommand::Events(args) => super::bench_events::run(args),
        BenchCommand::Alerts(args) => super::bench_alerts::run_bench(args),
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The CPU model and the cores this process may use, recorded with every figure: a rate means
/// little without the machine that made it.
pub(crate) fn cpu_model() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{model} ({cores} cores)")
}

/// User and system CPU time of a process, in clock ticks (1/100 s on Linux).
pub(crate) fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

pub(crate) fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

pub(crate) struct Server {
    child: std::process::Child,
    pub data: std::path::PathBuf,
    pub api: u16,
    pub agent: u16,
    pub token: String,
}

impl Server {
    /// The server's process id.
    pub(crate) fn child_id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(dir: &std::path::Path, args: &BenchFleetArgs) -> anyhow::Result<Server> {
    start_server_on(
        &dir.join("data"),
        args.database_url.as_deref(),
        // 10,000 simulated agents enrol from one address as fast as the server takes them.
        &[
            "--heartbeat-secs",
            &args.interval.to_string(),
            "--rate-enrol",
            "0",
        ],
    )
}

/// Starts `rampart server` (this executable) on `data` and free loopback ports; returns once it
/// set the first admin's password and the benchmark logged in, so the store must have no users.
pub(crate) fn start_server_on(
    data: &std::path::Path,
    database_url: Option<&str>,
    extra: &[&str],
) -> anyhow::Result<Server> {
    let (api, agent) = (free_port()?, free_port()?);
    let data = data.to_path_buf();
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["server", "--data-dir"])
        .arg(&data)
        .args([
            "--listen",
            &format!("127.0.0.1:{api}"),
            "--agent-listen",
            &format!("127.0.0.1:{agent}"),
        ])
        .args(["--name", "localhost", "--name", "127.0.0.1"])
        .args(extra)
        .env("RAMPART_CA_PASSPHRASE", "benchmark passphrase")
        .env("RAMPART_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    match database_url {
        Some(url) => cmd.args(["--database-url", url]),
        None => cmd.env_remove("RAMPART_DATABASE_URL"),
    };
    let mut child = cmd.spawn().context("spawning rampart server")?;
    let out = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no server stdout"))?;
    // The first start writes the first admin's one-time password to a 0600 file in the data
    // directory and prints only where it went; the rest of stdout is drained so the server
    // never blocks on it.
    let mut lines = BufReader::new(out).lines();
    let mut written = false;
    for line in lines.by_ref() {
        if line?.starts_with("admin password written to ") {
            written = true;
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    anyhow::ensure!(
        written,
        "the server set no first admin password (is the database empty?)"
    );
    let token = first_login(&data, api)?;
    Ok(Server {
        child,
        data,
        api,
        agent,
        token,
    })
}

/// Logs the first admin in as an operator would on a new server: the one-time password from
/// the data directory, a new password, an API token out.
fn first_login(data: &std::path::Path, api: u16) -> anyhow::Result<String> {
    let file = data.join("admin-password");
    let password = std::fs::read_to_string(&file).with_context(|| file.display().to_string())?;
    let http = super::login::client(&data.join("root-ca.pem"))?;
    let req = rampart_server::api::LoginRequest {
        user: "admin".to_owned(),
        password: password.trim().to_owned(),
        new_password: Some("benchmark: a long enough passphrase".to_owned()),
        token_name: Some("bench".to_owned()),
        ttl_days: Some(1),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let resp = http
            .post(format!("https://127.0.0.1:{api}/api/v1/login"))
            .json(&req)
            .send()
            .await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        anyhow::ensure!(
            status.is_success(),
            "first login: {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
        let issued: rampart_server::api::IssuedToken = serde_json::from_slice(&bytes)?;
        Ok(issued.token)
    })
}

/// How many of the slowest requests [`open_loop`] reports.
const SLOWEST: usize = 10;

/// Sends `rate` requests a second for `seconds` (after one second of warm-up, not recorded),
/// open loop: each request's latency counts from when it was due, so a slow server cannot slow
/// the client down and hide it. `request(k)` gives the k-th request's URL and bearer token;
/// `ok(status)` says whether its answer counts as served. Figures: latency percentiles, errors,
/// the achieved rate, and the server's CPU time and RSS (what queueing on a slower or busier
/// machine grows from, steadier from run to run than the latency tail), and the slowest
/// requests with the second of the phase they were due in.
///
/// Beside the latencies, what the machine and the client themselves added to them, so a tail
/// can be told apart from the server's: how late the client sent each request after it was due
/// (`send_lag_*`), and the machine's own hiccups (see [`HiccupMeter`]), with the largest one
/// inside each of the slowest requests' time in flight.
pub(crate) async fn open_loop(
    client: &reqwest::Client,
    server_pid: u32,
    rate: u64,
    seconds: u64,
    request: impl Fn(u64) -> (String, Option<String>),
    ok: fn(u16) -> bool,
) -> anyhow::Result<serde_json::Value> {
    let period = std::time::Duration::from_nanos(1_000_000_000 / rate.max(1));
    let warmup = rate;
    let total = warmup + rate * seconds;
    let mut tick = tokio::time::interval(period);
    let mut tasks = tokio::task::JoinSet::new();
    // Each served request's latency and when it was due: the slowest of them show whether a
    // tail comes from one stall of the server (or the machine), as neighbours in time, or from
    // slow requests spread evenly.
    let mut served_at: Vec<(u64, f64)> = Vec::with_capacity((rate * seconds) as usize);
    let mut send_lag: Vec<u64> = Vec::with_capacity((rate * seconds) as usize);
    let mut errors = 0u64;
    let mut record = |r: Result<(bool, bool, u64, f64), tokio::task::JoinError>| {
        let (recorded, served, micros, at) = r?;
        if recorded {
            if served {
                served_at.push((micros, at));
            } else {
                errors += 1;
            }
        }
        anyhow::Ok(())
    };
    let cpu0 = cpu_ticks(server_pid).unwrap_or(0);
    let phase = tokio::time::Instant::now();
    let hiccups = HiccupMeter::start(phase.into_std());
    for k in 0..total {
        let due = tick.tick().await;
        if k >= warmup {
            send_lag.push(due.elapsed().as_micros() as u64);
        }
        let (url, token) = request(k);
        let mut req = client.get(url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        tasks.spawn(async move {
            let served = req
                .send()
                .await
                .map(|r| ok(r.status().as_u16()))
                .unwrap_or(false);
            let at = due.saturating_duration_since(phase).as_secs_f64();
            (k >= warmup, served, due.elapsed().as_micros() as u64, at)
        });
        // Finished requests are collected as the phase goes: a task's memory is kept until it
        // is joined, and a set grown to every request of the phase had the sending loop itself
        // stop for milliseconds at a time to have fresh pages zeroed (seen in a profile).
        while let Some(r) = tasks.try_join_next() {
            record(r)?;
        }
    }
    while let Some(r) = tasks.join_next().await {
        record(r)?;
    }
    let elapsed = phase.elapsed().as_secs_f64();
    let hiccups = hiccups.stop();
    let cpu = cpu_ticks(server_pid).unwrap_or(0).saturating_sub(cpu0);
    served_at.sort_unstable_by_key(|s| s.0);
    send_lag.sort_unstable();
    let latencies: Vec<u64> = served_at.iter().map(|s| s.0).collect();
    let rss = rss_kib(server_pid).unwrap_or(0);
    Ok(serde_json::json!({
        "requests": latencies.len() as u64 + errors,
        "errors": errors,
        "offered_rate": rate,
        "achieved_rate": total as f64 / elapsed,
        "p50_ms": percentile(&latencies, 0.50),
        "p90_ms": percentile(&latencies, 0.90),
        "p99_ms": percentile(&latencies, 0.99),
        "max_ms": percentile(&latencies, 1.0),
        "slowest": served_at
            .iter()
            .rev()
            .take(SLOWEST)
            .map(|&(micros, at)| serde_json::json!({
                "due_s": at,
                "ms": micros as f64 / 1000.0,
                "machine_hiccup_ms": hiccups.largest_within(at, at + micros as f64 / 1e6) as f64 / 1000.0,
            }))
            .collect::<Vec<_>>(),
        "send_lag_p99_ms": percentile(&send_lag, 0.99),
        "send_lag_max_ms": percentile(&send_lag, 1.0),
        "machine_hiccups": hiccups.summary(),
        "server_rss_mib": rss as f64 / 1024.0,
        // Ticks are 1/100 s: 10,000 µs each.
        "server_cpu_us_per_request": cpu as f64 * 10_000.0 / total.max(1) as f64,
    }))
}

/// The machine's own stalls during a latency phase, the floor under its tail: a thread that
/// only sleeps a millisecond at a time and records how much longer than that each sleep took
/// (as jHiccup does). On a shared virtual machine the whole guest is now and then not run for
/// milliseconds (a profile showed neither core taking a sample for 8.7 ms while a request
/// waited); no server can answer faster than the machine runs it, so a request slower than the
/// target during such a hiccup is the machine's, and one without is the server's. Its own cost
/// is a thousand wake-ups a second, a few µs of CPU each.
pub(crate) struct HiccupMeter {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<(f64, u64)>>,
}

/// What [`HiccupMeter`] saw: each sleep's overshoot in µs, and when it ended (seconds since the
/// phase began).
pub(crate) struct Hiccups {
    /// (end of the sleep in seconds since the phase began, overshoot in µs), in time order.
    samples: Vec<(f64, u64)>,
}

/// Hiccups at least this long are listed one by one (µs), the first 50 of a phase.
const HICCUP_LISTED_US: u64 = 2_000;

impl HiccupMeter {
    pub(crate) fn start(phase: Instant) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let nap = Duration::from_millis(1);
            let mut samples = Vec::with_capacity(64 * 1024);
            while !flag.load(Ordering::Relaxed) {
                let before = Instant::now();
                std::thread::sleep(nap);
                let after = Instant::now();
                let over = after.duration_since(before).saturating_sub(nap);
                samples.push((
                    after.duration_since(phase).as_secs_f64(),
                    over.as_micros() as u64,
                ));
            }
            samples
        });
        Self { stop, thread }
    }

    pub(crate) fn stop(self) -> Hiccups {
        self.stop.store(true, Ordering::Relaxed);
        Hiccups {
            samples: self.thread.join().unwrap_or_default(),
        }
    }
}

impl Hiccups {
    /// The longest hiccup that overlapped `[from, to]` (seconds since the phase began), in µs:
    /// a sleep that ended at `end` after overshooting by `over` covered `end - 1 ms - over` to
    /// `end`.
    pub(crate) fn largest_within(&self, from: f64, to: f64) -> u64 {
        self.samples
            .iter()
            .filter(|&&(end, over)| end >= from && end - 0.001 - over as f64 / 1e6 <= to)
            .map(|&(_, over)| over)
            .max()
            .unwrap_or(0)
    }

    fn summary(&self) -> serde_json::Value {
        let mut over: Vec<u64> = self.samples.iter().map(|s| s.1).collect();
        over.sort_unstable();
        let listed: Vec<serde_json::Value> = self
            .samples
            .iter()
            .filter(|s| s.1 >= HICCUP_LISTED_US)
            .take(50)
            .map(|&(end, us)| json!({ "at_s": end, "ms": us as f64 / 1000.0 }))
            .collect();
        json!({
            "sleeps": over.len(),
            "p99_ms": percentile(&over, 0.99),
            "max_ms": percentile(&over, 1.0),
            "total_over_2ms_ms": over.iter().filter(|&&u| u >= HICCUP_LISTED_US).sum::<u64>() as f64 / 1000.0,
            "over_2ms": listed,
        })
    }
}

pub(crate) fn tls(
    root_pem: &str,
    identity: Option<(&str, &str)>,
) -> anyhow::Result<reqwest::Client> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(root_pem.as_bytes())?)?;
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots);
    let cfg = match identity {
        Some((chain, key)) => {
            let chain =
                CertificateDer::pem_slice_iter(chain.as_bytes()).collect::<Result<Vec<_>, _>>()?;
            b.with_client_auth_cert(chain, PrivateKeyDer::from_pem_slice(key.as_bytes())?)?
        }
        None => b.with_no_client_auth(),
    };
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(cfg)
        .pool_idle_timeout(Duration::from_secs(90))
        .timeout(Duration::from_secs(60))
        .build()?)
}

pub(crate) async fn enrol_one(
    http: &reqwest::Client,
    api: &str,
    token: &str,
    i: usize,
    root: &str,
) -> anyhow::Result<reqwest::Client> {
    let key = rcgen::KeyPair::generate()?;
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)?
        .pem()?;
    let req = EnrolRequest {
        token: token.to_string(),
        csr_pem: csr,
        hostname: format!("sim-{i:05}"),
        os: "simulated".into(),
        arch: "x86_64".into(),
        agent_version: env!("CARGO_PKG_VERSION").into(),
    };
    let resp = http
        .post(format!("{api}/api/v1/enrol"))
        .json(&req)
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!(
            "enrolment {i}: {} {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
    }
    let e: EnrolResponse = resp.json().await?;
    tls(root, Some((&e.certificate_chain_pem, &key.serialize_pem())))
}

/// The check outcomes every simulated run reports: a third failing, one rule of evidence each.
fn bench_checks(checks: usize) -> Vec<rampart_core::CheckOutcome> {
    use rampart_core::{CheckOutcome, Evidence, Observation, ObservationKind, RuleVerdict, Status};
    (0..checks)
        .map(|i| {
            let mut c = CheckOutcome::new(
                format!("RMP-{i:03}"),
                format!("Benchmark check {i}"),
                if i % 3 == 0 {
                    Status::Fail
                } else {
                    Status::Pass
                },
            );
            c.remediation = "Set the value as the benchmark recommends.".into();
            c.evidence = vec![Evidence {
                rule: "f:/etc/ssh/sshd_config -> r:^PermitRootLogin\\s+no".into(),
                verdict: RuleVerdict::Found,
                observations: vec![Observation {
                    kind: ObservationKind::File,
                    target: "/etc/ssh/sshd_config".into(),
                    line: Some(33),
                    text: Some("PermitRootLogin no".into()),
                    detail: None,
                }],
            }];
            c
        })
        .collect()
}

fn submission(run_id: &str, checks: usize) -> anyhow::Result<Vec<u8>> {
    gzipped_run(run_id, bench_checks(checks))
}

/// A run of the benchmark policy with these outcomes, gzipped JSON as agents post it.
pub(crate) fn gzipped_run(
    run_id: &str,
    outcomes: Vec<rampart_core::CheckOutcome>,
) -> anyhow::Result<Vec<u8>> {
    use rampart_core::{PolicyInfo, ScanReport};
    let info = PolicyInfo {
        id: "bench".into(),
        name: "bench".into(),
        ..PolicyInfo::default()
    };
    let report = ScanReport::single(info, outcomes, time::OffsetDateTime::now_utc());
    let sub = RunSubmission {
        run_id: run_id.into(),
        policy_version: None,
        policy_digest: "00".repeat(32),
        trigger: "manual".into(),
        report,
        observables: Vec::new(),
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&serde_json::to_vec(&sub)?)?;
    Ok(gz.finish()?)
}

/// SQLite's own cost of storing what the server stored, in the same run: a fresh database with
/// the store's schema (its migrations: the same tables, keys and indexes), and one transaction
/// of prepared statements (rusqlite, the C API's statements): every run row, every check result
/// as the server stores it (the host's part of its JSON, the policy's words once in
/// `check_texts`), and the latest states written as the server writes them: each run's pair
/// (agent, policy) upserted with its run and time, a check's first result inserted, a changed
/// status updated by its rowid, a kept one not written (the floor keeps the statuses and rowids
/// in memory where the server reads them once per batch). Runs are spread over `agents` agents
/// as the uploaders spread them, so the latest-state table sees the same mix of inserts and
/// updates. Nothing is parsed,
/// decompressed, digested, waived, attested or audited, and nothing crosses TLS: what is left is
/// the storage engine on this machine's disk and cores. Returns check results per second.
fn sqlite_floor(
    dir: &std::path::Path,
    runs: usize,
    checks: usize,
    agents: usize,
) -> anyhow::Result<f64> {
    let path = dir.join("floor.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = rampart_store::Store::open_sqlite(&path).await?;
        store.close().await;
        anyhow::Ok(())
    })?;
    let outcomes = bench_checks(checks);
    // Each result as the server stores it: the policy's words once per check in
    // `check_texts`, the host's part and the words' key in the result's row.
    let mut parts = Vec::with_capacity(outcomes.len());
    for (c, full) in outcomes
        .iter()
        .zip(rampart_store::outcome_texts(&outcomes)?)
    {
        let split = rampart_store::split_check_text(c, &full)
            .ok_or_else(|| anyhow::anyhow!("check {}: its text does not split", c.id))?;
        parts.push(split);
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let run_ids: Vec<String> = (0..runs)
        .map(|r| format!("floor-{r:08}-{}", uuid::Uuid::new_v4().simple()))
        .collect();
    let agents = agents.max(1);
    let mut conn = rusqlite::Connection::open(&path)?;
    // The pragmas of the store's fleet connections (synchronous FULL: fleet data is fsynced).
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
    )?;
    {
        let tx = conn.transaction()?;
        let mut agent = tx.prepare(
            "INSERT INTO agents (id, hostname, os, arch, agent_version, labels, grp, cert_serial, \
             cert_not_after, enrolled_at, status) \
             VALUES (?1, ?1, 'simulated', 'x86_64', 'bench', '{}', 'bench', ?1, ?2, ?2, 'active')",
        )?;
        for a in 0..agents {
            agent.execute(rusqlite::params![format!("floor-agent-{a:05}"), now])?;
        }
        drop(agent);
        tx.commit()?;
    }
    let started = Instant::now();
    let tx = conn.transaction()?;
    {
        let mut run = tx.prepare(
            "INSERT INTO runs (id, agent_id, policy_id, policy_version, policy_digest, \
             run_trigger, started_at, finished_at, received_at, passed, failed, not_applicable, \
             not_run, errors, waived, total, score, results_digest, host, warnings, generator, \
             cert_sha256, cert_not_after) VALUES (?1, ?2, 'bench', NULL, ?3, 'manual', ?4, ?4, \
             ?4, ?5, ?6, 0, 0, 0, 0, ?7, 66.7, ?3, '{}', '[]', 'bench', ?3, ?4) \
             ON CONFLICT (id) DO NOTHING",
        )?;
        let mut text = tx.prepare(
            "INSERT INTO check_texts (id, text) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
        )?;
        for (t, _) in &parts {
            text.execute(rusqlite::params![t.id.as_slice(), t.text])?;
        }
        let mut result = tx.prepare(
            "INSERT INTO check_results (run_id, check_id, status, severity, title, outcome, \
             text_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut newest = tx.prepare(
            "INSERT INTO policy_latest (agent_id, policy_id, run_id, observed_at) \
             VALUES (?1, 'bench', ?2, ?3) ON CONFLICT (agent_id, policy_id) \
             DO UPDATE SET run_id = excluded.run_id, observed_at = excluded.observed_at",
        )?;
        let mut first = tx.prepare(
            "INSERT INTO latest_results (agent_id, policy_id, check_id, status, since) \
             VALUES (?1, 'bench', ?2, ?3, ?4)",
        )?;
        let mut moved =
            tx.prepare("UPDATE latest_results SET status = ?2, since = ?3 WHERE rowid = ?1")?;
        // (agent, check) → the row and its status.
        let mut stored: std::collections::HashMap<(usize, &str), (i64, &str)> =
            std::collections::HashMap::new();
        let digest = "00".repeat(32);
        let failed = outcomes
            .iter()
            .filter(|c| c.status == rampart_core::Status::Fail)
            .count();
        for (r, id) in run_ids.iter().enumerate() {
            let agent = format!("floor-agent-{:05}", r % agents);
            let at = now + i64::try_from(r)?;
            run.execute(rusqlite::params![
                id,
                agent,
                digest,
                at,
                i64::try_from(checks - failed)?,
                i64::try_from(failed)?,
                i64::try_from(checks)?
            ])?;
            newest.execute(rusqlite::params![agent, id, at])?;
            for (c, (t, rest)) in outcomes.iter().zip(&parts) {
                result.execute(rusqlite::params![
                    id,
                    c.id,
                    c.status.as_str(),
                    c.severity.as_str(),
                    c.title,
                    rest,
                    t.id.as_slice()
                ])?;
                let status = c.status.as_str();
                match stored.get_mut(&(r % agents, c.id.as_str())) {
                    Some((_, was)) if *was == status => {}
                    Some((rowid, was)) => {
                        moved.execute(rusqlite::params![*rowid, status, at])?;
                        *was = status;
                    }
                    None => {
                        first.execute(rusqlite::params![agent, c.id, status, at])?;
                        stored.insert(
                            (r % agents, c.id.as_str()),
                            (tx.last_insert_rowid(), status),
                        );
                    }
                }
            }
        }
    }
    tx.commit()?;
    let seconds = started.elapsed().as_secs_f64();
    drop(conn);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("floor.db{suffix}")));
    }
    Ok((runs * checks) as f64 / seconds)
}

fn fleet(args: BenchFleetArgs) -> anyhow::Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    let server = start_server(dir.path(), &args)?;
    let pid = server.child.id();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(async {
        let root = std::fs::read_to_string(server.data.join("root-ca.pem"))?;
        let admin = tls(&root, None)?;
        let api = format!("https://localhost:{}", server.api);
        let agent_url = format!("https://localhost:{}", server.agent);
        let n = args.agents.max(args.uploaders);
        let request = rampart_server::api::TokenRequest {
            group: "bench".into(),
            labels: Default::default(),
            ttl_secs: 6 * 3600,
            max_uses: u32::try_from(n).unwrap_or(u32::MAX),
            agent_id: None,
        };
        let created: rampart_server::api::TokenCreated = admin
            .post(format!("{api}/api/v1/tokens"))
            .bearer_auth(&server.token)
            .json(&request)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = created.token;

        // Phase 1: enrolment.
        eprintln!("enrolling {n} agents…");
        let started = Instant::now();
        let sem = Arc::new(Semaphore::new(args.enrol_concurrency.max(1)));
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let (sem, admin, api, token, root) = (sem.clone(), admin.clone(), api.clone(), token.clone(), root.clone());
            tasks.push(tokio::spawn(async move {
                let _p = sem.acquire().await?;
                enrol_one(&admin, &api, &token, i, &root).await
            }));
        }
        let mut clients = Vec::with_capacity(n);
        for t in tasks {
            clients.push(t.await??);
        }
        let enrol_secs = started.elapsed().as_secs_f64();
        let rss_after_enrol = rss_kib(pid).unwrap_or(0);
        eprintln!("enrolled {n} in {enrol_secs:.1} s");

        // Phase 2: heartbeats.
        let mut hb = json!(null);
        if !args.skip_heartbeats {
            eprintln!("heartbeats: {} agents every {} s for {} s…", args.agents, args.interval, args.duration);
            let peak = Arc::new(AtomicUsize::new(0));
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let sampler = {
                let (peak, stop) = (peak.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(r) = rss_kib(pid) {
                            peak.fetch_max(r as usize, Ordering::Relaxed);
                        }
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                })
            };
            let cpu0 = cpu_ticks(pid).unwrap_or(0);
            let deadline = Instant::now() + Duration::from_secs(args.duration);
            let interval = Duration::from_secs(args.interval.max(1));
            let errors = Arc::new(AtomicUsize::new(0));
            let mut tasks = Vec::new();
            for (i, c) in clients.iter().take(args.agents).enumerate() {
                let (c, url, errors) = (c.clone(), format!("{agent_url}/agent/v1/heartbeat"), errors.clone());
                let offset = interval.mul_f64(i as f64 / args.agents as f64);
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut next = Instant::now() + offset;
                    loop {
                        if next >= deadline {
                            break;
                        }
                        tokio::time::sleep_until(next.into()).await;
                        let t = Instant::now();
                        let r = c.post(&url).json(&json!({"state": "idle", "spooled_runs": 0, "agent_version": "bench"})).send().await;
                        match r {
                            Ok(resp) if resp.status().is_success() => {
                                let _ = resp.bytes().await;
                                lat.push(t.elapsed().as_micros() as u64);
                            }
                            _ => {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        next += interval;
                    }
                    lat
                }));
            }
            let mut lat = Vec::new();
            for t in tasks {
                lat.extend(t.await?);
            }
            stop.store(true, Ordering::Relaxed);
            let _ = sampler.await;
            let cpu1 = cpu_ticks(pid).unwrap_or(0);
            lat.sort_unstable();
            hb = json!({
                "agents": args.agents,
                "interval_s": args.interval,
                "duration_s": args.duration,
                "heartbeats": lat.len(),
                "errors": errors.load(Ordering::Relaxed),
                "rate_per_s": lat.len() as f64 / args.duration as f64,
                "p50_ms": percentile(&lat, 0.50),
                "p90_ms": percentile(&lat, 0.90),
                "p99_ms": percentile(&lat, 0.99),
                "max_ms": percentile(&lat, 1.0),
                "server_peak_rss_mib": peak.load(Ordering::Relaxed) as f64 / 1024.0,
                "server_cpu_s": (cpu1.saturating_sub(cpu0)) as f64 / 100.0,
            });
            eprintln!("heartbeats: {hb}");
        }

        // Phase 3: ingestion.
        let uploaders = args.uploaders.max(1).min(clients.len());
        eprintln!("building {} runs of {} checks…", args.runs, args.checks_per_run);
        let mut bodies: Vec<Vec<Vec<u8>>> = vec![Vec::new(); uploaders];
        for r in 0..args.runs {
            bodies[r % uploaders].push(submission(&format!("bench-{r:08}-{}", uuid::Uuid::new_v4().simple()), args.checks_per_run)?);
        }
        let bytes: usize = bodies.iter().flatten().map(Vec::len).sum();
        eprintln!("posting ({:.1} MiB gzip)…", bytes as f64 / 1048576.0);
        let rss_before = rss_kib(pid).unwrap_or(0);
        let cpu0 = cpu_ticks(pid).unwrap_or(0);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (c, bodies) in clients.iter().zip(bodies) {
            let (c, url) = (c.clone(), format!("{agent_url}/agent/v1/runs"));
            tasks.push(tokio::spawn(async move {
                let mut ok = 0usize;
                for b in bodies {
                    let r = c
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("content-encoding", "gzip")
                        .body(b)
                        .send()
                        .await?;
                    if !r.status().is_success() {
                        bail!("upload refused: {} {}", r.status(), r.text().await.unwrap_or_default());
                    }
                    ok += 1;
                }
                anyhow::Ok(ok)
            }));
        }
        let mut stored = 0;
        for t in tasks {
            stored += t.await??;
        }
        let secs = started.elapsed().as_secs_f64();
        let cpu1 = cpu_ticks(pid).unwrap_or(0);
        let results = stored * args.checks_per_run;
        let ingest = json!({
            "runs": stored,
            "checks_per_run": args.checks_per_run,
            "check_results": results,
            "seconds": secs,
            "check_results_per_s": results as f64 / secs,
            "runs_per_s": stored as f64 / secs,
            "uploaders": uploaders,
            "server_cpu_s": (cpu1.saturating_sub(cpu0)) as f64 / 100.0,
            "server_rss_mib_after": rss_kib(pid).unwrap_or(rss_before) as f64 / 1024.0,
        });
        eprintln!("ingestion: {ingest}");
        anyhow::Ok(json!({
            "cpu": cpu_model(),
            "backend": if args.database_url.is_some() { "postgres" } else { "sqlite" },
            "enrolment": {"agents": n, "seconds": enrol_secs, "per_s": n as f64 / enrol_secs, "concurrency": args.enrol_concurrency, "server_rss_mib_after": rss_after_enrol as f64 / 1024.0},
            "heartbeats": hb,
            "ingestion": ingest,
        }))
    })?;
    drop(server);
    // The storage floor of the same rows, measured after the server stopped so that nothing
    // else competes for the cores.
    let mut report = report;
    let results = report["ingestion"]["check_results"].as_u64().unwrap_or(0);
    if results > 0 {
        let runs = usize::try_from(results)? / args.checks_per_run.max(1);
        let floor = sqlite_floor(dir.path(), runs, args.checks_per_run, args.uploaders)?;
        let rate = report["ingestion"]["check_results_per_s"]
            .as_f64()
            .unwrap_or(0.0);
        report["ingestion"]["floor_sqlite_prepared_inserts_per_s"] = json!(floor);
        report["ingestion"]["ingestion_vs_sqlite_floor"] = json!(rate / floor);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("backend      {}", report["backend"].as_str().unwrap_or("?"));
        let e = &report["enrolment"];
        println!(
            "enrolment    {} agents in {:.1} s = {:.0}/s",
            e["agents"],
            e["seconds"].as_f64().unwrap_or(0.0),
            e["per_s"].as_f64().unwrap_or(0.0)
        );
        let h = &report["heartbeats"];
        if !h.is_null() {
            println!(
                "heartbeats   {} agents / {} s: {} beats, {} errors, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; server peak RSS {:.0} MiB",
                h["agents"],
                h["interval_s"],
                h["heartbeats"],
                h["errors"],
                h["p50_ms"].as_f64().unwrap_or(0.0),
                h["p99_ms"].as_f64().unwrap_or(0.0),
                h["max_ms"].as_f64().unwrap_or(0.0),
                h["server_peak_rss_mib"].as_f64().unwrap_or(0.0)
            );
        }
        let i = &report["ingestion"];
        println!(
            "ingestion    {} check results in {:.1} s = {:.0} results/s ({:.0} runs/s); server CPU {:.1} s",
            i["check_results"],
            i["seconds"].as_f64().unwrap_or(0.0),
            i["check_results_per_s"].as_f64().unwrap_or(0.0),
            i["runs_per_s"].as_f64().unwrap_or(0.0),
            i["server_cpu_s"].as_f64().unwrap_or(0.0)
        );
        println!(
            "floor        SQLite's prepared inserts of the same rows, one transaction: {:.0} results/s (ingestion at {:.2} of it)",
            i["floor_sqlite_prepared_inserts_per_s"]
                .as_f64()
                .unwrap_or(0.0),
            i["ingestion_vs_sqlite_floor"].as_f64().unwrap_or(0.0)
        );
        println!("cpu          {}", report["cpu"].as_str().unwrap_or("?"));
    }
    Ok(ExitCode::from(exit::OK))
}
