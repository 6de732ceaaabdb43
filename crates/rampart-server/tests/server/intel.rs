//! Threat intelligence through the running server: feeds defined over the API, a file uploaded
//! for an air-gapped feed, a feed fetched from a local HTTP server that serves the fixture, and
//! lookups, bulk matches, exports and sightings answered from the server's in-memory index —
//! which a restart rebuilds from the store.

use reqwest::Method;
use serde_json::{Value, json};

use super::harness::{Db, POLICY_V1, TestAgent, TestServer, intel_fixture};
use crate::server_test;

async fn lookup(s: &TestServer, value: &str) -> Value {
    let (status, v) = s
        .call(
            Method::GET,
            &format!("/api/v1/intel/lookup?value={}", url_escape(value)),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v
}

/// Percent-encodes everything but unreserved characters.
fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Serves `body` at `/feed.csv` on loopback (public feeds cannot be reached from tests).
async fn feed_server(body: Vec<u8>) -> String {
    let app = axum::Router::new().route(
        "/feed.csv",
        axum::routing::get(move || {
            let body = body.clone();
            async move { body }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/feed.csv")
}

/// Defines the `feodo` feed (no URL) and uploads its fixture file.
pub(super) async fn upload_feodo(s: &TestServer) {
    let (status, v) = s
        .call(
            Method::POST,
            "/api/v1/intel/feeds",
            Some(
                json!({"name": "feodo", "format": "feodo-csv", "reliability": 90, "tlp": "GREEN"}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["tlp"], "green");
    let resp = s
        .http
        .post(s.url("/api/v1/intel/feeds/feodo/upload"))
        .bearer_auth(&s.admin_token)
        .body(intel_fixture(
            "abusech/feodo_ipblocklist_csv.excerpt_2021.csv",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let report: Value = resp.json().await.unwrap();
    assert!(report["parse"]["records"].as_u64().unwrap() > 0, "{report}");
    assert!(report["stored"]["new_indicators"].as_u64().unwrap() > 0);
}

async fn feeds_lookups_exports_and_sightings(db: Db) {
    let Some(mut s) = TestServer::start(db).await else {
        return;
    };
    // A feed definition with a bad field is refused, naming the field.
    let (status, v) = s
        .call(
            Method::POST,
            "/api/v1/intel/feeds",
            Some(json!({"name": "feodo", "format": "feodo-csv", "reliability": 150})),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["detail"].as_str().unwrap().starts_with("reliability:"),
        "{v}"
    );
    let (status, v) = s
        .call(
            Method::POST,
            "/api/v1/intel/feeds",
            Some(json!({"name": "feodo", "format": "no-such-format"})),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(v["detail"].as_str().unwrap().starts_with("format:"), "{v}");

    // An air-gapped feed: defined without a URL, its file uploaded.
    upload_feodo(&s).await;

    // Lookups: exact, defanged, ip:port down to its address, with the source row.
    let v = lookup(&s, "67.213.75.205").await;
    let m = &v["matches"][0];
    assert_eq!(
        m["indicator"],
        json!({"kind": "ipv4", "value": "67.213.75.205"}),
        "{v}"
    );
    assert_eq!(m["how"], "exact");
    assert_eq!(m["sources"][0]["feed"], "feodo");
    assert!(
        m["sources"][0]["raw"]
            .as_str()
            .unwrap()
            .contains("67.213.75.205")
    );
    // Feodo last saw it online in 2021: past the 120-day lifetime, its score has decayed to 0.
    assert_eq!(m["score"], 0, "{m}");
    let v = lookup(&s, "67[.]213[.]75[.]205").await;
    assert_eq!(v["matches"][0]["indicator"]["value"], "67.213.75.205");
    let v = lookup(&s, "198.51.100.7").await;
    assert_eq!(v["matches"], json!([]), "{v}");
    let (status, v) = s
        .call(Method::GET, "/api/v1/intel/lookup?value=%21%21", None)
        .await;
    // Not an indicator is an answer, not a bad request: it says why, as the CLI does.
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["query"], "!!");
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    assert!(v.get("matches").is_none(), "{v}");

    // Bulk match: hits keep the observable and its position; invalid ones say why.
    let (status, v) = s
        .call(
            Method::POST,
            "/api/v1/intel/match",
            Some(json!({"observables": ["8.8.8.8", "67.213.75.205:443", "not an indicator"]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let hits = v["matches"].as_array().unwrap();
    assert!(!hits.is_empty(), "{v}");
    assert!(hits.iter().all(|h| h["index"] == 1), "{v}");
    assert!(
        hits.iter()
            .any(|h| h["indicator"]["value"] == "67.213.75.205"),
        "{v}"
    );
    assert_eq!(v["invalid"][0]["index"], 2);

    // Export: the address is in the IP blocklist; the headers count what was written.
    let resp = s
        .get_response("/api/v1/intel/export?format=blocklist-ip")
        .await;
    assert_eq!(resp.status(), 200);
    let written: u64 = resp.headers()["x-rampart-exported"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = resp.text().await.unwrap();
    assert!(body.lines().any(|l| l == "67.213.75.205"), "{body}");
    assert_eq!(
        body.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .count() as u64,
        written
    );
    let (status, _) = s
        .call(Method::GET, "/api/v1/intel/export?format=pdf", None)
        .await;
    assert_eq!(status, 400);

    // Sightings: recorded for a known indicator, 404 for an unknown one. The score lookups
    // report moves at once, not at the next index rebuild. This 2021 feed entry has decayed to
    // 0; a false positive must not revive it, a confirmed sighting restarts its decay, and a
    // false positive then takes 25 off.
    let score = |v: Value| v["matches"][0]["score"].as_u64().unwrap();
    assert_eq!(score(lookup(&s, "67.213.75.205").await), 0);
    let (status, v) = s
        .call(
            Method::POST,
            "/api/v1/intel/sightings",
            Some(json!({"value": "67.213.75.205", "false_positive": true})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(score(lookup(&s, "67.213.75.205").await), 0);
    let (status, v) = s
        .call(
            Method::POST,
            "/api/v1/intel/sightings",
            Some(json!({"value": "67.213.75.205", "source": "soc"})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let revived = score(lookup(&s, "67.213.75.205").await);
    assert!(
        revived > 25,
        "a confirmed sighting restarts the decay: {revived}"
    );
    let (status, v) = s
        .call(
            Method::POST,
            "/api/v1/intel/sightings",
            Some(json!({"value": "67.213.75.205", "false_positive": true, "note": "lab"})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let after = score(lookup(&s, "67.213.75.205").await);
    assert_eq!(after, revived - 25, "a false positive takes 25 off at once");
    let (status, _) = s
        .call(
            Method::POST,
            "/api/v1/intel/sightings",
            Some(json!({"value": "198.51.100.7"})),
        )
        .await;
    assert_eq!(status, 404);

    // A feed with a URL, fetched on request from a local server.
    let url = feed_server(intel_fixture("abusech/urlhaus_csv_recent.excerpt.csv")).await;
    let (status, v) = s
        .call(
            Method::POST,
            "/api/v1/intel/feeds",
            Some(
                json!({"name": "urlhaus", "format": "urlhaus-csv", "url": url, "reliability": 80}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = s
        .call(Method::POST, "/api/v1/intel/feeds/urlhaus/sync", None)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["outcome"], "ingested", "{v}");
    let (status, v) = s
        .call(Method::POST, "/api/v1/intel/feeds/feodo/sync", None)
        .await;
    // The feed's state is in the way, not the request.
    assert_eq!(status, 409, "a feed without a URL cannot be fetched: {v}");
    assert_eq!(v["code"], "no_url", "{v}");
    let stats = s.get("/api/v1/intel/stats").await;
    let urls = stats["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "url")
        .expect("urls counted");
    assert!(urls["live"].as_u64().unwrap() > 0, "{stats}");
    let indexed = stats["indexed"].as_u64().unwrap();
    assert!(indexed > 0);
    let per_kind: u64 = stats["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["live"].as_u64().unwrap())
        .sum();
    assert_eq!(per_kind, indexed, "per-kind counts add up: {stats}");
    assert_eq!(stats["expired"], 0);
    let feeds = s.get("/api/v1/intel/feeds").await;
    let urlhaus = feeds["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "urlhaus")
        .unwrap();
    assert!(urlhaus["last_success"].is_i64(), "{urlhaus}");

    // A restart rebuilds the index from the store: same size, same answers.
    s.restart().await;
    let stats = s.get("/api/v1/intel/stats").await;
    assert_eq!(stats["indexed"].as_u64().unwrap(), indexed);
    let v = lookup(&s, "67.213.75.205").await;
    assert_eq!(v["matches"][0]["indicator"]["value"], "67.213.75.205");
    s.finish().await;
}
server_test!(feeds_lookups_exports_and_sightings);

/// An indicator that enters the running index — by an upload or by a feed sync — is checked
/// against the allowlists at once: a documentation address a feed lists answers "allowlisted"
/// immediately, not only after the next rebuild, and agents connected to it raise no hit.
async fn uploads_and_syncs_apply_the_allowlists_at_once(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let allowlisted = |v: &Value| v["matches"][0]["allowlisted"]["list"].clone();
    // Upload.
    let (status, v) = s
        .call(
            Method::POST,
            "/api/v1/intel/feeds",
            Some(json!({"name": "docs", "format": "plain"})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let resp = s
        .http
        .post(s.url("/api/v1/intel/feeds/docs/upload"))
        .bearer_auth(&s.admin_token)
        .body("192.0.2.44\n203.0.114.9\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v = lookup(&s, "192.0.2.44").await;
    assert_eq!(allowlisted(&v), "builtin-non-routable", "{v}");
    let v = lookup(&s, "203.0.114.9").await;
    assert_eq!(v["matches"][0]["allowlisted"], Value::Null, "{v}");
    // Feed sync.
    let url = feed_server(b"198.51.100.23\n".to_vec()).await;
    let (status, v) = s
        .call(
            Method::POST,
            "/api/v1/intel/feeds",
            Some(json!({"name": "docs2", "format": "plain", "url": url})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = s
        .call(Method::POST, "/api/v1/intel/feeds/docs2/sync", None)
        .await;
    assert_eq!(status, 200, "{v}");
    let v = lookup(&s, "198.51.100.23").await;
    assert_eq!(allowlisted(&v), "builtin-non-routable", "{v}");
    // Bulk matching (what agents' observables go through) leaves them out.
    let (status, v) = s
        .call(
            Method::POST,
            "/api/v1/intel/match",
            Some(json!({"observables": ["192.0.2.44", "198.51.100.23", "203.0.114.9"]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let text = v.to_string();
    assert!(text.contains("\"value\":\"203.0.114.9\""), "{v}");
    assert!(
        !text.contains("\"value\":\"192.0.2.44\"") && !text.contains("\"value\":\"198.51.100.23\""),
        "{v}"
    );
}
server_test!(uploads_and_syncs_apply_the_allowlists_at_once);

/// An allowlist or decay model changed in the store behind a running server's back (the CLI,
/// another replica) applies before the server's next lookup, bulk match, export, TAXII page and
/// fleet hit: no waiting for the periodic rebuild.
async fn rule_changes_apply_before_the_next_answer(db: Db) {
    if cfg!(target_endian = "big") {
        return; // TCP_TO_FEODO_C2 is little-endian
    }
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    upload_feodo(&s).await;
    let c2 = "67.213.75.205";
    assert_eq!(
        lookup(&s, c2).await["matches"][0]["allowlisted"],
        Value::Null
    );
    let score = |v: &Value| v["matches"][0]["score"].as_u64().unwrap();
    // Feodo's 2021 C2 addresses have decayed to 0 under the built-in botnet_cc model.
    assert_eq!(score(&lookup(&s, c2).await), 0);
    let store = s.store().await;
    store
        .intel_put_allowlist(&rampart_store::IntelAllowlist {
            name: "lab".into(),
            match_type: "cidr".into(),
            entries: vec!["67.213.75.0/24".into()],
            description: Some("our lab's range".into()),
            created_at: 0,
        })
        .await
        .unwrap();
    store
        .intel_put_decay_model(&rampart_store::IntelDecayRow {
            scope: "threat:botnet_cc".into(),
            lifetime_days: None,
            speed: 1.0,
        })
        .await
        .unwrap();
    // Lookup: allowlisted at once, and scored under the new model.
    let v = lookup(&s, c2).await;
    assert_eq!(v["matches"][0]["allowlisted"]["list"], "lab", "{v}");
    assert!(score(&v) > 0, "{v}");
    assert_eq!(
        v["matches"][0]["score_explained"]["model_scope"], "threat:botnet_cc",
        "{v}"
    );
    // Bulk match leaves it out.
    let (status, v) = s
        .call(
            Method::POST,
            "/api/v1/intel/match",
            Some(json!({"observables": [c2]})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert!(
        !v.to_string().contains(&format!("\"value\":\"{c2}\"")),
        "{v}"
    );
    // Export leaves it out and counts it.
    let resp = s
        .get_response("/api/v1/intel/export?format=blocklist-ip")
        .await;
    assert_eq!(resp.status(), 200);
    assert_ne!(resp.headers()["x-rampart-allowlisted"], "0");
    let text = resp.text().await.unwrap();
    assert!(!text.lines().any(|l| l == c2), "{text}");
    // TAXII leaves it out.
    let resp = s
        .get_response(
            "/taxii2/api/collections/3f6d9a52-5c1e-4b8a-9e27-6a0c1d4e7b90/objects/?match[type]=indicator",
        )
        .await;
    let page: Value = resp.json().await.unwrap();
    assert!(!page.to_string().contains(&format!("'{c2}'")), "{page}");
    // An agent connected to it raises no fleet hit.
    let a = TestAgent::enrol(&s, &s.token("web", 1).await)
        .await
        .unwrap();
    let root = &a.opts.scan_root;
    std::fs::create_dir_all(root.join("proc/net")).unwrap();
    std::fs::write(root.join("proc/net/tcp"), TCP_TO_FEODO_C2).unwrap();
    s.push_policy(POLICY_V1, "web", "0 */6 * * *").await;
    a.run_once().await.unwrap();
    let v = s.get(&format!("/api/v1/intel/hits?agent={}", a.id)).await;
    assert_eq!(v["hits"], json!([]), "{v}");
    // Removing the list applies as fast: the next lookup is not allowlisted.
    assert!(store.intel_delete_allowlist("lab").await.unwrap());
    let v = lookup(&s, c2).await;
    assert_eq!(v["matches"][0]["allowlisted"], Value::Null, "{v}");
    store.close().await;
    s.finish().await;
}
server_test!(rule_changes_apply_before_the_next_answer);

/// The TAXII 2.1 server as the OASIS `taxii2-client` sees it (installed by
/// `scripts/setup-test-deps.sh`), plus what that client does not exercise: content
/// negotiation and TAXII-shaped errors.
async fn taxii_server_serves_taxii2_client(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    upload_feodo(&s).await;
    let summary = taxii_script(&s, "taxii-client-check.py", &["67.213.75.205"]).await;
    assert!(summary["indicators"].as_u64().unwrap() > 5, "{summary}");

    // Content negotiation: TAXII 2.1 or nothing.
    let objects = s.url(&format!(
        "/taxii2/api/collections/{}/objects/",
        "3f6d9a52-5c1e-4b8a-9e27-6a0c1d4e7b90"
    ));
    let resp = s
        .http
        .get(&objects)
        .bearer_auth(&s.admin_token)
        .header("Accept", "application/taxii+json;version=2.0")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 406);
    assert_eq!(
        resp.headers()["content-type"],
        "application/taxii+json;version=2.1"
    );
    // Errors are TAXII error messages; a missing token asks for Basic credentials.
    let resp = s.http.get(&objects).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["http_status"], "401", "{err}");
    assert!(
        err["description"].as_str().unwrap().contains("token"),
        "{err}"
    );
    let resp = s
        .http
        .get(s.url("/taxii2/api/collections/nope/"))
        .basic_auth("anyone", Some(&s.admin_token))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = s
        .http
        .get(format!("{objects}?limit=0"))
        .basic_auth("anyone", Some(&s.admin_token))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // Pages carry the date headers and resume exactly where they stopped.
    let resp = s
        .http
        .get(format!("{objects}?limit=4"))
        .basic_auth("anyone", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "a wrong Basic password is refused");
    let resp = s
        .http
        .get(format!("{objects}?limit=4"))
        .basic_auth("anyone", Some(&s.admin_token))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-taxii-date-added-first"));
    let page: Value = resp.json().await.unwrap();
    assert_eq!(page["more"], true);
    assert_eq!(page["objects"].as_array().unwrap().len(), 4);
    // Every error under /taxii2/ is a TAXII error, whoever raised it: an extractor, the
    // router's 404 and 405.
    for (method, url, status) in [
        (Method::GET, format!("{objects}?limit=many"), 400),
        (Method::GET, s.url("/taxii2/api/nowhere/"), 404),
        (Method::POST, objects.clone(), 405),
    ] {
        let resp = s
            .http
            .request(method.clone(), &url)
            .bearer_auth(&s.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{method} {url}");
        assert_eq!(
            resp.headers()["content-type"],
            "application/taxii+json;version=2.1",
            "{method} {url}"
        );
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["http_status"], status.to_string(), "{err}");
        assert!(!err["description"].as_str().unwrap().is_empty(), "{err}");
    }
    s.finish().await;
}
server_test!(taxii_server_serves_taxii2_client);

/// Runs a Python check script against the server's TAXII root; returns its JSON summary.
async fn taxii_script(s: &TestServer, script: &str, extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("root.pem");
    std::fs::write(&ca, &s.root_pem).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts")
        .join(script);
    // requests lets these variables override a session's own CA file (psf/requests#3829).
    let out = tokio::process::Command::new("python3")
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .arg(&script)
        .arg(s.url("/taxii2/"))
        .arg(&s.admin_token)
        .arg(&ca)
        .args(extra)
        .output()
        .await
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named"),
        "a Python package is missing: run scripts/setup-test-deps.sh\n{stderr}"
    );
    assert!(out.status.success(), "{script:?} failed:\n{stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A poller that sends back each response's `X-TAXII-Date-Added-Last` as `added_after` gets
/// every addition and every update exactly once, including an addition in the same second as
/// its last poll (taxii2-client and stix2's TAXIICollectionSource, scripts/taxii-poll-check.py).
async fn taxii_pollers_miss_nothing(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    upload_feodo(&s).await;
    let summary = taxii_script(&s, "taxii-poll-check.py", &[]).await;
    assert_eq!(summary["rounds"], 5, "{summary}");
    s.finish().await;
}
server_test!(taxii_pollers_miss_nothing);

/// A TAXII poller's cursor and what it has received: (pattern, modified) of each indicator.
#[derive(Default)]
struct Poller {
    cursor: Option<String>,
    seen: Vec<(String, String)>,
}

impl Poller {
    /// Polls `objects` from the cursor until `more` is false, advancing the cursor to each
    /// response's `X-TAXII-Date-Added-Last`.
    async fn poll(&mut self, s: &TestServer, objects: &str) {
        loop {
            let url = match &self.cursor {
                Some(c) => format!("{objects}&added_after={c}"),
                None => objects.to_owned(),
            };
            let resp = s
                .http
                .get(&url)
                .bearer_auth(&s.admin_token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            if let Some(last) = resp.headers().get("x-taxii-date-added-last") {
                self.cursor = Some(last.to_str().unwrap().to_owned());
            }
            let page: Value = resp.json().await.unwrap();
            let batch = page["objects"].as_array().cloned().unwrap_or_default();
            assert!(batch.len() <= 7);
            self.seen.extend(batch.iter().map(|o| {
                (
                    o["pattern"].as_str().unwrap().to_owned(),
                    o["modified"].as_str().unwrap().to_owned(),
                )
            }));
            if page["more"] != true {
                return;
            }
        }
    }
}

/// The same cursor holds while two replicas on one PostgreSQL database ingest at once: values
/// uploaded through both, concurrently, all reach a poller that polls throughout, each once.
async fn taxii_cursor_holds_across_replicas(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let mut cfg2 = s.config.clone();
    cfg2.listen = "127.0.0.1:0".parse().unwrap();
    cfg2.agent_listen = "127.0.0.1:0".parse().unwrap();
    // Two SQLite servers on one file is not a supported deployment: there, one server's
    // concurrent uploads stand in for the replicas.
    let replica = if cfg2.database_url.is_some() {
        Some(rampart_server::RunningServer::start(cfg2).await.unwrap())
    } else {
        None
    };
    let bases: Vec<String> = match &replica {
        Some(r) => vec![
            s.url(""),
            format!("https://localhost:{}", r.api_addr.port()),
        ],
        None => vec![s.url(""), s.url("")],
    };
    let (status, v) = s
        .call(
            Method::POST,
            "/api/v1/intel/feeds",
            Some(json!({"name": "burst", "format": "plain"})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    const WRITERS: usize = 4;
    const UPLOADS: usize = 15;
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let http = s.http.clone();
        let token = s.admin_token.clone();
        let url = format!("{}/api/v1/intel/feeds/burst/upload", bases[w % bases.len()]);
        writers.push(tokio::spawn(async move {
            for n in 0..UPLOADS {
                // Each upload adds one value and re-reports one from before (an update).
                let mut body = format!("burst-{w}-{n}.evil-example.cy\n");
                if n > 0 {
                    body.push_str(&format!(
                        "burst-{}-{}.evil-example.cy\n",
                        (w + 1) % WRITERS,
                        n - 1
                    ));
                }
                let resp = http
                    .post(&url)
                    .bearer_auth(&token)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
            }
        }));
    }
    let objects = s.url(&format!(
        "/taxii2/api/collections/{}/objects/?match[type]=indicator&limit=7",
        "3f6d9a52-5c1e-4b8a-9e27-6a0c1d4e7b90"
    ));
    let mut poller = Poller::default();
    while !writers.iter().all(|w| w.is_finished()) {
        poller.poll(&s, &objects).await;
        // A poller's pace, not a busy loop: TAXII pages are limited to 600 a minute per
        // credential, and on a loaded machine (the rest of the suite beside it) the uploads
        // took long enough for an unpaced loop to be refused with 429.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for w in writers {
        w.await.unwrap();
    }
    poller.poll(&s, &objects).await;
    // Each version once, and every indicator's current version among them.
    let mut versions = poller.seen.clone();
    versions.sort();
    versions.dedup();
    assert_eq!(
        versions.len(),
        poller.seen.len(),
        "a version was polled twice"
    );
    let mut everything = Poller::default();
    everything.poll(&s, &objects).await;
    assert_eq!(everything.seen.len(), WRITERS * UPLOADS);
    for current in &everything.seen {
        assert!(
            poller.seen.contains(current),
            "the poller missed {current:?}"
        );
    }
    if let Some(r) = replica {
        r.shutdown().await;
    }
    s.finish().await;
}
server_test!(taxii_cursor_holds_across_replicas);

/// `67.213.75.205` as `/proc/net/tcp` prints it on a little-endian host (each 32-bit word in
/// host order, the port big-endian): the C2 address of the Feodo fixture, port 443.
const TCP_TO_FEODO_C2: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 20 1 0 100 0 0 10 0
   1: 0500000A:D0EE CD4BD543:01BB 01 00000000:00000000 02:000A7F0C 00000000  1000        0 22 2 0 20 4 30 10 -1
   2: 0500000A:D0F0 0100000A:01BB 01 00000000:00000000 02:000A7F0C 00000000  1000        0 23 2 0 20 4 30 10 -1
";

/// Agents report what their host talks to; the server matches it against the index and keeps
/// one row per finding, counting the runs that saw it again.
async fn agent_observables_are_matched(db: Db) {
    if cfg!(target_endian = "big") {
        return; // the /proc line above is little-endian
    }
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    upload_feodo(&s).await;
    let a = TestAgent::enrol(&s, &s.token("web", 1).await)
        .await
        .unwrap();
    let root = &a.opts.scan_root;
    std::fs::create_dir_all(root.join("proc/net")).unwrap();
    std::fs::write(root.join("proc/net/tcp"), TCP_TO_FEODO_C2).unwrap();
    std::fs::write(
        root.join("etc/hosts"),
        "127.0.0.1 localhost\n67.213.75.205 update.example.net # pinned by an installer\n",
    )
    .unwrap();
    s.push_policy(POLICY_V1, "web", "0 */6 * * *").await;
    a.run_once().await.unwrap();

    let v = s.get(&format!("/api/v1/intel/hits?agent={}", a.id)).await;
    let hits = v["hits"].as_array().unwrap();
    let found: Vec<(&str, &str, &str, &str)> = hits
        .iter()
        .map(|h| {
            (
                h["observable_kind"].as_str().unwrap(),
                h["observable"].as_str().unwrap(),
                h["indicator"].as_str().unwrap(),
                h["how"].as_str().unwrap(),
            )
        })
        .collect();
    // The connection matches the listed ip:port and its address; the hosts entry the address.
    // The listener (0.0.0.0:22) and the private peer (10.0.0.1) match nothing.
    let mut sorted = found.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            (
                "connection",
                "67.213.75.205:443",
                "67.213.75.205",
                "address"
            ),
            (
                "connection",
                "67.213.75.205:443",
                "67.213.75.205:443",
                "exact"
            ),
            ("resolver", "67.213.75.205", "67.213.75.205", "exact"),
        ],
        "{v}"
    );
    for h in hits {
        assert_eq!(h["hostname"], "web-01");
        assert_eq!(h["feeds"], json!(["feodo"]));
        assert_eq!(h["count"], 1);
    }
    let conn = hits
        .iter()
        .find(|h| h["how"] == "exact" && h["observable_kind"] == "connection")
        .unwrap();
    assert_eq!(conn["indicator_kind"], "ip_port");
    assert_eq!(conn["context"], "tcp 10.0.0.5:53486 -> 67.213.75.205:443");
    let resolver = hits
        .iter()
        .find(|h| h["observable_kind"] == "resolver")
        .unwrap();
    assert!(
        resolver["context"]
            .as_str()
            .unwrap()
            .starts_with("/etc/hosts:2 67.213.75.205 update.example.net"),
        "{resolver}"
    );

    // Each new match is an event of the stream, written with the hit.
    let store = s.store().await;
    let hit_events = |all: Vec<rampart_store::StoredEvent>| -> Vec<rampart_events::Event> {
        all.into_iter()
            .filter(|e| e.kind == "intel.hit")
            .map(|e| rampart_events::Event::from_json(&e.body).unwrap())
            .collect()
    };
    let events = hit_events(store.events_after(0, 10_000).await.unwrap());
    assert_eq!(events.len(), 3, "{events:?}");
    let conn_event = events
        .iter()
        .find(|e| matches!(&e.body, rampart_events::Body::IntelHit(h) if h.observable_kind == "connection" && h.how == "exact"))
        .unwrap();
    let rampart_events::Body::IntelHit(h) = &conn_event.body else {
        unreachable!()
    };
    assert_eq!(
        (
            h.indicator_kind.as_str(),
            h.indicator.as_str(),
            h.run.is_empty()
        ),
        ("ip_port", "67.213.75.205:443", false)
    );
    // Feodo last saw it in 2021: its score has decayed to 0, as the lookup above says, so the
    // event is of low severity; the feed's threat type and family travel with it.
    assert_eq!(h.score, 0, "{h:?}");
    assert_eq!(conn_event.severity, rampart_core::Severity::Low);
    assert_eq!(
        (h.threat_type.as_deref(), h.family.as_deref()),
        (Some("botnet_cc"), Some("dridex"))
    );
    assert_eq!(conn_event.agent.as_ref().unwrap().hostname, "web-01");
    assert!(
        conn_event.summary.contains("67.213.75.205:443"),
        "{}",
        conn_event.summary
    );

    // Another run sees the same: the same rows, counted twice.
    let (status, _) = s
        .call(Method::POST, &format!("/api/v1/agents/{}/scan", a.id), None)
        .await;
    assert_eq!(status, 200);
    a.run_once().await.unwrap();
    let runs = s.get(&format!("/api/v1/agents/{}/runs", a.id)).await;
    assert_eq!(runs.as_array().map(Vec::len), Some(2), "{runs}");
    let v = s.get("/api/v1/intel/hits").await;
    let hits = v["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 3, "{v}");
    assert!(hits.iter().all(|h| h["count"] == 2), "{v}");
    // Seen again: counted, not a new event.
    assert_eq!(
        hit_events(store.events_after(0, 10_000).await.unwrap()).len(),
        3
    );
    store.close().await;
    let (status, _) = s
        .call(Method::GET, "/api/v1/intel/hits?limit=0", None)
        .await;
    assert_eq!(status, 400);
    s.finish().await;
}
server_test!(agent_observables_are_matched);
