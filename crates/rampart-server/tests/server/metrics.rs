//! `GET /metrics` scraped for real: by HTTP with a token, judged by `promtool check metrics`,
//! and by a real Prometheus server that scrapes it over TLS and evaluates the shipped alert
//! rules against it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::harness::{Db, POLICY_V1, TestAgent, TestServer, intel_fixture, new_user, token};
use crate::server_test;

/// The value of the sample `series` (name and labels exactly as exposed), if present.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

fn promtool() -> Command {
    Command::new("promtool")
}

/// Runs `promtool check metrics` over an exposition; its complaints, empty when it has none.
fn promtool_check_metrics(body: &str) -> String {
    use std::io::Write;
    let mut child = promtool()
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus, installed by scripts/setup-test-deps.sh)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        said
    } else {
        format!("exit {:?}: {said}", out.status.code())
    }
}

async fn scrape(s: &TestServer, token: &str, accept: Option<&str>) -> (u16, String, String) {
    let mut req = s.http.get(s.url("/metrics")).bearer_auth(token);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let media = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, media, r.text().await.unwrap())
}

/// A fleet worth scraping: an agent of `web` that scanned [`POLICY_V1`] (SSH-1 passes, SSH-2
/// fails), one of `db` revoked, a feed uploaded by hand, a feed with a URL never fetched, a
/// request no route serves. Returns the indicators the upload read.
async fn populate(s: &TestServer) -> u64 {
    let a = TestAgent::enrol(s, &s.token("web", 1).await).await.unwrap();
    s.push_policy(POLICY_V1, "web", "0 */6 * * *").await;
    a.run_once().await.unwrap();
    let b = TestAgent::enrol_as(s, &s.token("db", 1).await, "db-01", "Debian GNU/Linux 12")
        .await
        .unwrap();
    let (st, v) = s
        .call(
            Method::POST,
            &format!("/api/v1/agents/{}/revoke", b.id),
            Some(json!({"reason": "decommissioned"})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    for feed in [
        json!({"name": "feodo", "format": "feodo-csv", "reliability": 90}),
        json!({"name": "urlhaus", "format": "urlhaus-csv", "url": "http://127.0.0.1:9/urlhaus.csv", "interval_secs": 3600}),
    ] {
        let (st, v) = s
            .call(Method::POST, "/api/v1/intel/feeds", Some(feed))
            .await;
        assert_eq!(st, 201, "{v}");
    }
    let r = s
        .http
        .post(s.url("/api/v1/intel/feeds/feodo/upload"))
        .bearer_auth(&s.admin_token)
        .body(intel_fixture(
            "abusech/feodo_ipblocklist_csv.excerpt_2021.csv",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    let indicators = report["parse"]["indicators"].as_u64().unwrap();
    assert!(indicators > 0);
    let r = s
        .http
        .get(s.url("/no/such/path/12345"))
        .bearer_auth(&s.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    indicators
}

async fn metrics_count_the_fleet_and_promtool_accepts_them(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let indicators = populate(&s).await;

    // Without an Accept header: the Prometheus text format, which promtool lints clean.
    let (st, media, body) = scrape(&s, &s.admin_token, None).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(media, "text/plain; version=0.0.4; charset=utf-8");
    assert_eq!(promtool_check_metrics(&body), "", "promtool on:\n{body}");
    assert!(!body.contains("# EOF"));

    let v = |series: &str| {
        sample(&body, series).unwrap_or_else(|| panic!("no sample {series} in:\n{body}"))
    };
    assert_eq!(v(r#"rampart_agents{group="web",state="online"}"#), 1.0);
    assert_eq!(v(r#"rampart_agents{group="db",state="revoked"}"#), 1.0);
    assert_eq!(
        sample(&body, r#"rampart_agents{group="db",state="online"}"#),
        None
    );
    assert_eq!(v(r#"rampart_policy_score_ratio{policy="test-ssh"}"#), 0.5);
    assert_eq!(
        v(r#"rampart_group_policy_score_ratio{group="web",policy="test-ssh"}"#),
        0.5
    );
    assert_eq!(
        v(r#"rampart_policy_hosts{group="web",policy="test-ssh"}"#),
        1.0
    );
    for (status, n) in [("pass", 1.0), ("fail", 1.0), ("waived", 0.0)] {
        assert_eq!(
            v(&format!(
                r#"rampart_policy_results{{group="web",policy="test-ssh",status="{status}"}}"#
            )),
            n
        );
    }
    assert_eq!(v(r#"rampart_runs_received_total{outcome="stored"}"#), 1.0);
    assert_eq!(
        v(r#"rampart_check_results_stored_total{status="pass"}"#),
        1.0
    );
    assert_eq!(
        v(r#"rampart_check_results_stored_total{status="fail"}"#),
        1.0
    );
    assert_eq!(
        v(r#"rampart_scan_duration_seconds_count{policy="test-ssh"}"#),
        1.0
    );
    assert!(v("rampart_heartbeat_duration_seconds_count") >= 1.0);
    assert_eq!(
        v(
            r#"rampart_http_request_duration_seconds_count{port="agent",method="POST",route="/agent/v1/runs",status="200"}"#
        ),
        1.0
    );
    assert_eq!(
        v(
            r#"rampart_http_request_duration_seconds_count{port="api",method="GET",route="unmatched",status="404"}"#
        ),
        1.0
    );
    assert!(
        !body.contains("/no/such/path"),
        "raw paths never become labels"
    );
    assert_eq!(
        v(r#"rampart_intel_indicators_ingested_total{feed="feodo"}"#),
        indicators as f64
    );
    assert_eq!(
        v(r#"rampart_intel_feed_syncs_total{feed="feodo",outcome="ingested"}"#),
        1.0
    );
    assert!(v("rampart_intel_index_entries") >= 1.0);
    assert_eq!(v(r#"rampart_intel_feed_up{feed="feodo"}"#), 1.0);
    // Uploaded by hand, never fetched: no interval, so never "stale".
    assert_eq!(
        sample(
            &body,
            r#"rampart_intel_feed_interval_seconds{feed="feodo"}"#
        ),
        None
    );
    assert!(
        v("rampart_audit_log_entries") >= 3.0,
        "start, tokens, revocation"
    );
    let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
    let root = v(r#"rampart_ca_certificate_expiry_timestamp_seconds{certificate="root"}"#);
    assert!((root - (now + 3653.0 * 86400.0)).abs() < 3600.0, "{root}");
    let inter = v(r#"rampart_ca_certificate_expiry_timestamp_seconds{certificate="intermediate"}"#);
    assert!((inter - (now + 730.0 * 86400.0)).abs() < 3600.0, "{inter}");
    // Agent certificates last 24 hours.
    let earliest = v("rampart_agent_certificate_earliest_expiry_timestamp_seconds");
    assert!((earliest - (now + 86400.0)).abs() < 3600.0, "{earliest}");
    assert_eq!(v("rampart_agent_certificates_expired"), 0.0);
    let backend = if db == Db::Sqlite {
        "sqlite"
    } else {
        "postgres"
    };
    assert_eq!(
        v(&format!(
            r#"rampart_build_info{{version="{}",backend="{backend}"}}"#,
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );

    // Prometheus asks for OpenMetrics first, and gets it.
    let (st, media, om) = scrape(
        &s,
        &s.admin_token,
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(
        media,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(om.contains("# TYPE rampart_runs_received counter\n"));
    assert!(om.contains("# UNIT rampart_scan_duration_seconds seconds\n"));

    // A viewer may scrape; a grant limited to some groups may not (the metrics cover all).
    let viewer = s
        .user_token("prometheus", rampart_access::Role::Viewer)
        .await;
    assert_eq!(scrape(&s, &viewer, None).await.0, 200);
    let store = s.store().await;
    let user = store
        .insert_user(&new_user(
            "web-viewer",
            rampart_access::Role::Viewer,
            &["web"],
        ))
        .await
        .unwrap();
    let limited = token(
        &store,
        &user,
        "t",
        rampart_access::Role::Viewer,
        &["web"],
        time::Duration::days(1),
    )
    .await;
    assert_eq!(scrape(&s, &limited, None).await.0, 403);
    let r = s.http.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    s.finish().await;
}
server_test!(metrics_count_the_fleet_and_promtool_accepts_them);

fn deploy_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// The shipped alert rules are valid and their unit tests pass.
#[test]
fn shipped_alert_rules_pass_promtool() {
    let dir = deploy_dir().join("prometheus");
    for args in [
        vec!["check", "rules", "rampart-alerts.yml"],
        vec!["test", "rules", "rampart-alerts.test.yml"],
    ] {
        let out = promtool().args(&args).current_dir(&dir).output().expect(
            "promtool (Debian package prometheus, installed by scripts/setup-test-deps.sh)",
        );
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every query of the shipped Grafana dashboards is PromQL that Prometheus parses (checked
/// by promtool as recording rules) and names only metrics the server exposes.
#[test]
fn shipped_dashboards_query_what_the_server_exposes() {
    let exposed = exposed_metric_names();
    let dir = tempfile::tempdir().unwrap();
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    let mut queries = 0;
    for name in [
        "rampart-fleet.json",
        "rampart-server.json",
        "rampart-intel.json",
    ] {
        let path = deploy_dir().join("grafana").join(name);
        let d: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert!(d["uid"].as_str().is_some_and(|u| u.starts_with("rampart-")));
        let mut exprs: Vec<String> = Vec::new();
        for p in d["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().into_iter().flatten() {
                exprs.push(t["expr"].as_str().unwrap().to_owned());
            }
        }
        for v in d["templating"]["list"].as_array().unwrap() {
            if let Some(q) = v["query"]["query"].as_str() {
                // label_values(metric, label): the metric must exist.
                let metric = q
                    .strip_prefix("label_values(")
                    .and_then(|r| r.split(',').next())
                    .unwrap();
                exprs.push(metric.to_owned());
            }
        }
        assert!(!exprs.is_empty(), "{name} has queries");
        for e in exprs {
            for m in metric_names(&e) {
                assert!(exposed.contains(&m), "{name}: {m} in {e:?} is not exposed");
            }
            // Grafana's variables become values Prometheus parses.
            let promql = e
                .replace("$__all", ".*")
                .replace("$group", ".*")
                .replace("$policy", ".*")
                .replace("$feed", ".*")
                .replace("$instance", ".*");
            queries += 1;
            rules.push_str(&format!(
                "      - record: dashboard:query:{queries}\n        expr: {}\n",
                serde_json::to_string(&promql).unwrap()
            ));
        }
    }
    let file = dir.path().join("dashboards.yml");
    std::fs::write(&file, &rules).unwrap();
    let out = promtool()
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("promtool (Debian package prometheus, installed by scripts/setup-test-deps.sh)");
    assert!(
        out.status.success(),
        "{}{}\n{rules}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(queries > 30, "{queries}");
}

/// The metric names the server declares (`# TYPE` lines of the text format), from the source
/// of truth: a scrape of a real server.
fn exposed_metric_names() -> std::collections::BTreeSet<String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = TestServer::start(Db::Sqlite).await.unwrap();
        // Empty families are not exposed at all: populate every one the dashboards read.
        populate(&s).await;
        let (_, _, body) = scrape(&s, &s.admin_token, None).await;
        let mut names = std::collections::BTreeSet::new();
        for l in body.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                let mut parts = rest.split(' ');
                let name = parts.next().unwrap().to_owned();
                if parts.next() == Some("histogram") {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{name}{suffix}"));
                    }
                }
                names.insert(name);
            }
        }
        s.finish().await;
        names
    })
}

/// `rampart_…` identifiers in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("rampart_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    out
}

/// A real Prometheus scrapes the server over TLS with a bearer token (asking for OpenMetrics
/// as it does), and the shipped alert rules evaluate against what it scraped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_server_and_evaluates_the_rules() {
    let s = TestServer::start(Db::Sqlite).await.unwrap();
    let a = TestAgent::enrol(&s, &s.token("web", 1).await)
        .await
        .unwrap();
    s.push_policy(POLICY_V1, "web", "0 */6 * * *").await;
    a.run_once().await.unwrap();
    let scraper = s
        .user_token("prometheus", rampart_access::Role::Viewer)
        .await;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), &s.root_pem).unwrap();
    std::fs::write(dir.path().join("token"), &scraper).unwrap();
    let rules = deploy_dir().join("prometheus/rampart-alerts.yml");
    let target = s.api_url.trim_start_matches("https://").to_owned();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rules}\n\
             scrape_configs:\n  - job_name: rampart\n    scheme: https\n    metrics_path: /metrics\n\
             \x20   authorization:\n      credentials_file: {token}\n\
             \x20   tls_config:\n      ca_file: {ca}\n\
             \x20   static_configs:\n      - targets: ['{target}']\n",
            rules = rules.display(),
            token = dir.path().join("token").display(),
            ca = dir.path().join("ca.pem").display(),
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut prometheus = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
        .spawn()
        .expect("prometheus (Debian package prometheus, installed by scripts/setup-test-deps.sh)");
    let http = reqwest::Client::new();
    let api = format!("http://127.0.0.1:{port}/api/v1");
    let query = |q: &str| {
        let http = http.clone();
        let url = format!("{api}/query");
        let q = q.to_owned();
        async move {
            let r = http.get(&url).query(&[("query", q)]).send().await.ok()?;
            let v: Value = r.json().await.ok()?;
            let result = v["data"]["result"].as_array()?.first()?.clone();
            result["value"][1].as_str()?.parse::<f64>().ok()
        }
    };
    let started = std::time::Instant::now();
    let mut seen = None;
    while started.elapsed() < Duration::from_secs(60) {
        seen = query(r#"rampart_group_policy_score_ratio{group="web",policy="test-ssh"}"#).await;
        if seen.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let log = || std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
    assert_eq!(
        seen,
        Some(0.5),
        "Prometheus did not scrape the score:\n{}",
        log()
    );
    assert_eq!(query(r#"up{job="rampart"}"#).await, Some(1.0));
    assert_eq!(
        query(r#"rampart_agents{group="web",state="online"}"#).await,
        Some(1.0)
    );
    // Every shipped rule evaluated against the real series without an error.
    let mut rules_ok = false;
    while started.elapsed() < Duration::from_secs(60) {
        let v: Value = http
            .get(format!("{api}/rules"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let all: Vec<&Value> = v["data"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap())
            .collect();
        assert_eq!(all.len(), 9, "{v}");
        let evaluated = all
            .iter()
            .all(|r| r["lastEvaluation"] != "0001-01-01T00:00:00Z");
        if evaluated {
            for r in &all {
                assert_eq!(r["health"], "ok", "{r}");
                // A fresh, healthy fleet: nothing fires.
                assert_eq!(r["state"], "inactive", "{r}");
            }
            rules_ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    assert!(rules_ok, "the rules were never evaluated:\n{}", log());
    s.finish().await;
}
