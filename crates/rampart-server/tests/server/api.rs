use serde_json::{Value, json};

use super::harness::{Db, TestAgent, TestServer};
use crate::server_test;

const SNAPSHOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");

/// The OpenAPI document is generated from the route table; this snapshot makes every change to
/// the API surface visible in review. Regenerate with `RAMPART_UPDATE_SNAPSHOTS=1`.
#[test]
fn openapi_snapshot() {
    let doc = rampart_server::openapi_document(None, None);
    let text = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    if std::env::var("RAMPART_UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        std::fs::write(SNAPSHOT, &text).unwrap();
    }
    let committed = std::fs::read_to_string(SNAPSHOT).expect("openapi.json snapshot exists");
    assert!(
        committed == text,
        "OpenAPI document changed; review and run with RAMPART_UPDATE_SNAPSHOTS=1"
    );
    // Every $ref resolves.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let marker = "\"$ref\": \"#/components/schemas/";
    for (at, _) in text.match_indices(marker) {
        let rest = &text[at + marker.len()..];
        let name = &rest[..rest.find('"').unwrap()];
        assert!(schemas.contains_key(name), "dangling $ref {name}");
    }
    // Query parameters come from the handlers' Query types: names, types, bounds, required.
    let query = |path: &str| -> Vec<Value> {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .map(|ps| ps.iter().filter(|p| p["in"] == "query").cloned().collect())
            .unwrap_or_default()
    };
    let lookup = query("/api/v1/intel/lookup");
    assert!(
        lookup.iter().any(|p| p["name"] == "value"
            && p["required"] == true
            && p["schema"]["type"] == "string"),
        "{lookup:?}"
    );
    let objects = query("/taxii2/api/collections/{id}/objects/");
    assert!(
        objects
            .iter()
            .any(|p| p["name"] == "limit" && p["schema"]["minimum"] == 1 && p["required"] == false),
        "{objects:?}"
    );
    assert_eq!(objects.len(), 7, "{objects:?}");
    let results = query("/api/v1/results");
    let names: Vec<&str> = results
        .iter()
        .filter_map(|p| p["name"].as_str())
        .map(|n| match n {
            "agent" | "policy" | "status" | "limit" => n,
            other => panic!("unexpected parameter {other}"),
        })
        .collect();
    assert_eq!(names.len(), 4);
}

async fn served_document_errors_and_admin_auth(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let served = s.get_public("/api/v1/openapi.json").await;
    assert_eq!(served["servers"][0]["url"], s.api_url);
    assert_eq!(
        served["paths"],
        rampart_server::openapi_document(None, None)["paths"]
    );
    let health: Value = s
        .http
        .get(s.url("/api/v1/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        health["backend"],
        if db == Db::Sqlite {
            "sqlite"
        } else {
            "postgres"
        }
    );

    // Admin calls need the token; errors are problem objects.
    let r = s.http.get(s.url("/api/v1/agents")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["code"], "missing_token");
    let r = s
        .http
        .get(s.url("/api/v1/agents"))
        .bearer_auth("rpt_nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // A broken policy is refused with its location.
    let (st, p) = s
        .call(reqwest::Method::POST, "/api/v1/policies", Some(json!({"file_name": "bad.yml", "content": "rampart: 1\npolicy:\n  id: x\n  name: y\nchecks:\n  - id: A\n    title: t\n    severity: extreme\n    rules: [{file: /x}]\n"})))
        .await;
    assert_eq!(st, 422, "{p}");
    assert_eq!(p["code"], "invalid_policy");
    assert!(p["detail"].as_str().unwrap().contains("bad.yml:8"), "{p}");
    // Bad JSON names the field.
    let (st, p) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/tokens",
            Some(json!({"group": 5})),
        )
        .await;
    assert_eq!((st, p["code"].as_str()), (400, Some("invalid_json")));
    assert!(p["detail"].as_str().unwrap().contains("group"), "{p}");
    // Bad schedule.
    s.call(
        reqwest::Method::POST,
        "/api/v1/policies",
        Some(json!({"file_name": "p.yml", "content": super::harness::POLICY_V1})),
    )
    .await;
    let (st, p) = s
        .call(
            reqwest::Method::PUT,
            "/api/v1/policies/test-ssh/assignments",
            Some(json!({"target": {"kind": "group", "name": "web"}, "schedule": "every day"})),
        )
        .await;
    assert_eq!((st, p["code"].as_str()), (400, Some("invalid_schedule")));
    // Unknown things are 404 problems.
    let (st, p) = s
        .call(reqwest::Method::GET, "/api/v1/runs/nope", None)
        .await;
    assert_eq!((st, p["code"].as_str()), (404, Some("not_found")));
    // Uploading the same content twice keeps one version.
    let (st, v) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/policies",
            Some(json!({"file_name": "p.yml", "content": super::harness::POLICY_V1})),
        )
        .await;
    assert_eq!(
        (st, v["created"].as_bool(), v["version"].as_i64()),
        (200, Some(false), Some(1))
    );
    s.finish().await;
}
server_test!(served_document_errors_and_admin_auth);

/// Authentication as a hostile client meets it: every 401 carries its challenge, the scheme is
/// case-insensitive, HTTP Basic is for TAXII only, and an address that keeps failing is refused
/// with 429 and Retry-After before any token is checked — the right token included. A request
/// with no credential is answered with the challenge and not counted.
async fn failed_authentications_are_challenged_and_limited(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let get = |auth: Option<String>| {
        let mut req = s.http.get(s.url("/api/v1/agents"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send()
    };
    let r = get(None).await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"rampart\"");
    // RFC 9110: the scheme is case-insensitive.
    let r = get(Some(format!("bearer {}", s.admin_token)))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = get(Some(format!("BEARER {}", s.admin_token)))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Basic with the right token: refused on the admin API, accepted on TAXII.
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("x:{}", s.admin_token))
    );
    let r = get(Some(basic.clone())).await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let p: Value = r.json().await.unwrap();
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("Basic is accepted on TAXII only"),
        "{p}"
    );
    let r = s
        .http
        .get(s.url("/taxii2/"))
        .header("authorization", &basic)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // No credential at all is not a guess: it is never counted, however often it comes.
    for _ in 0..20 {
        assert_eq!(get(None).await.unwrap().status().as_u16(), 401);
    }
    // Nine wrong tokens make ten failures in the window (the Basic attempt on the admin API
    // counted too); the next request is refused whatever it carries.
    for i in 0..9 {
        let r = get(Some(format!("Bearer rpt_guess{i}"))).await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "guess {i}");
    }
    let r = get(Some(format!("Bearer {}", s.admin_token)))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["code"], "too_many_failures");
}
server_test!(failed_authentications_are_challenged_and_limited);

/// A token is judged by its state at the time of the call: the first start's token is an
/// admin's; an expired, a revoked and a disabled user's token are each refused with their own
/// reason, and a viewer's is refused listing enrolment tokens (a permission viewers lack).
async fn tokens_are_judged_by_their_state(db: Db) {
    use rampart_access::Role;
    use rampart_store::{NewApiToken, NewUser};
    use time::{Duration, OffsetDateTime};
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let store = s.store().await;
    let now = OffsetDateTime::now_utc();
    let first = store
        .api_token_by_hash(&rampart_access::secret::digest(&s.admin_token))
        .await
        .unwrap()
        .expect("the login's token is stored by its hash");
    assert_eq!(first.user.name, "admin");
    assert_eq!(
        (first.credential.name.as_str(), first.credential.role),
        ("cli", Role::Admin)
    );
    assert!(s.admin_token.starts_with("rpt_"));
    let left = first.credential.expires_at - now;
    assert!(
        left > Duration::days(89) && left <= Duration::days(90),
        "{left}"
    );

    let user = |name: &str, role| NewUser {
        name: name.into(),
        role,
        groups: Vec::new(),
        password_hash: None,
        must_change_password: false,
        oidc_subject: None,
        created_at: now,
    };
    let ops = store.insert_user(&user("ops", Role::Admin)).await.unwrap();
    let view = store
        .insert_user(&user("view", Role::Viewer))
        .await
        .unwrap();
    let admin = first.user;
    let token = |owner: &rampart_store::User, name: &str, expires_at| {
        let secret = rampart_access::secret::new_token();
        let t = NewApiToken {
            user_id: owner.id,
            name: name.into(),
            token_hash: rampart_access::secret::digest(&secret),
            shown: rampart_access::secret::shown(&secret),
            role: owner.role,
            groups: Vec::new(),
            created_at: now - Duration::days(1),
            expires_at,
        };
        (secret, t)
    };
    let cases = [
        (
            token(&admin, "expired", now - Duration::seconds(1)),
            401,
            "token_expired",
        ),
        (
            token(&admin, "revoked", now + Duration::days(1)),
            401,
            "token_revoked",
        ),
        (
            token(&ops, "ops", now + Duration::days(1)),
            401,
            "user_disabled",
        ),
        (
            token(&view, "view", now + Duration::days(1)),
            403,
            "permission_denied",
        ),
        (token(&admin, "good", now + Duration::days(1)), 200, ""),
    ];
    for ((_, t), _, _) in &cases {
        store.insert_api_token(t).await.unwrap();
    }
    store
        .revoke_api_token("admin", "revoked", now)
        .await
        .unwrap()
        .unwrap();
    store.set_user_disabled("ops", Some(now)).await.unwrap();
    for ((secret, t), status, code) in cases {
        let r = s
            .http
            .get(s.url("/api/v1/tokens"))
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{}", t.name);
        if status != 200 {
            let p: Value = r.json().await.unwrap();
            assert_eq!(p["code"], code, "{}: {p}", t.name);
        }
    }
    store.close().await;
}
server_test!(tokens_are_judged_by_their_state);

/// What the server keeps on disk is private to it: the data directory 0700, the SQLite files
/// 0600, and the first admin's one-time password in a 0600 file (never printed: stdout is the
/// journal).
async fn data_at_rest_is_private(db: Db) {
    use std::os::unix::fs::PermissionsExt;
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let data = &s.config.data_dir;
    assert_eq!(mode(data), 0o700);
    let password_file = data.join("admin-password");
    assert_eq!(mode(&password_file), 0o600);
    let server = s.server.as_ref().unwrap();
    assert_eq!(
        std::fs::read_to_string(&password_file).unwrap().trim(),
        server.initial_admin_password.as_deref().unwrap()
    );
    assert_eq!(
        server.initial_admin_password_file.as_deref(),
        Some(password_file.as_path())
    );
    if db == Db::Sqlite {
        // A write, so the WAL exists too.
        let (st, _) = s
            .call(
                reqwest::Method::POST,
                "/api/v1/tokens",
                Some(json!({"group": "web"})),
            )
            .await;
        assert_eq!(st, 201);
        for f in ["rampart.db", "rampart.db-wal", "rampart.db-shm"] {
            assert_eq!(mode(&data.join(f)), 0o600, "{f}");
        }
    }
}
server_test!(data_at_rest_is_private);

/// Security headers on every response: success, refusal and unknown route alike.
async fn every_response_carries_security_headers(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let responses = [
        s.http.get(s.url("/api/v1/health")).send().await.unwrap(),
        s.http.get(s.url("/api/v1/agents")).send().await.unwrap(),
        s.http
            .get(s.url("/api/v1/agents"))
            .bearer_auth(&s.admin_token)
            .send()
            .await
            .unwrap(),
        s.http.get(s.url("/no/such/route")).send().await.unwrap(),
        s.http.get(s.url("/taxii2/")).send().await.unwrap(),
    ];
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses, [200, 401, 200, 404, 401]);
    for r in &responses {
        let h = r.headers();
        assert_eq!(
            h["strict-transport-security"],
            "max-age=31536000",
            "{}",
            r.url()
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
    }
}
server_test!(every_response_carries_security_headers);

/// Names and labels are checked where they enter: a path-like feed name, a group with a slash
/// and an oversized label are refused with the field named, and nothing is stored.
async fn names_and_labels_are_validated(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let (st, p) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/intel/feeds",
            Some(json!({"name": "../../etc/x", "format": "plain"})),
        )
        .await;
    assert_eq!(st, 400, "{p}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .starts_with("name: feed \"../../etc/x\""),
        "{p}"
    );
    for (body, field) in [
        (json!({"group": "web/../db"}), "group \"web/../db\""),
        (
            json!({"group": "web", "labels": {"env": "x".repeat(100_000)}}),
            "label env:",
        ),
        (
            json!({"group": "web", "labels": {"a b": "x"}}),
            "label \"a b\"",
        ),
    ] {
        let (st, p) = s
            .call(reqwest::Method::POST, "/api/v1/tokens", Some(body))
            .await;
        assert_eq!(st, 400, "{p}");
        assert!(
            p["detail"].as_str().unwrap().starts_with(field),
            "{field}: {p}"
        );
    }
    let (st, v) = s
        .call(reqwest::Method::GET, "/api/v1/intel/feeds", None)
        .await;
    assert_eq!(st, 200);
    assert!(!v.to_string().contains("etc/x"), "{v}");
}
server_test!(names_and_labels_are_validated);

/// Bodies as a hostile client sends them: a body larger than the endpoint takes is refused by
/// its declared length before it is read (413, anonymous enrolment included), one without a
/// length is cut at the same limit (413, not 400), and JSON endpoints take only JSON (415).
async fn bodies_are_bounded_per_endpoint_and_typed(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // 1 MiB declared to the anonymous enrolment endpoint (it takes 64 KiB): answered at once,
    // without the server waiting for a byte of the body.
    let mut tls = super::harness::raw_tls(&s).await;
    tls.write_all(
        b"POST /api/v1/enrol HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), tls.read(&mut answer))
        .await
        .expect("answered before the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("body_too_large"), "{answer}");
    assert!(answer.contains("at most 65536 bytes"), "{answer}");
    // The same without a Content-Length (chunked): cut while read, still 413.
    let mut tls = super::harness::raw_tls(&s).await;
    tls.write_all(
        b"POST /api/v1/enrol HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await
    .unwrap();
    // One byte over the limit, in two chunks, and nothing more: the server reads all of it,
    // so its close is orderly and the answer cannot be lost to a reset.
    let mut frame = format!("{:x}\r\n", 64 * 1024).into_bytes();
    frame.extend_from_slice(&vec![b' '; 64 * 1024]);
    frame.extend_from_slice(b"\r\n1\r\n \r\n");
    tls.write_all(&frame).await.unwrap();
    let _ = tls.write_all(b"0\r\n\r\n").await;
    // Read until the problem object is in (the connection may stay open).
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("body_too_large") {
        match tokio::time::timeout(std::time::Duration::from_secs(10), tls.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("body_too_large"), "{answer}");
    // An admin JSON endpoint refuses a form body.
    let r = s
        .http
        .post(s.url("/api/v1/tokens"))
        .bearer_auth(&s.admin_token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("group=web")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["code"], "unsupported_media_type", "{p}");
    // JSON with a charset parameter is JSON.
    let r = s
        .http
        .post(s.url("/api/v1/tokens"))
        .bearer_auth(&s.admin_token)
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"group": "web"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
}
server_test!(bodies_are_bounded_per_endpoint_and_typed);

/// Errors no handler writes — a query string that does not parse, a method a path does not
/// take — are problem objects too, with the status and the router's own explanation.
async fn extractor_and_router_rejections_are_problem_objects(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let r = s
        .http
        .get(s.url("/api/v1/intel/export?format=csv&min_score=abc"))
        .bearer_auth(&s.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["status"], 400);
    assert!(p["detail"].as_str().unwrap().contains("min_score"), "{p}");
    let r = s.http.delete(s.url("/api/v1/health")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert!(r.headers().contains_key("allow"), "{:?}", r.headers());
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["code"], "method_not_allowed", "{p}");
}
server_test!(extractor_and_router_rejections_are_problem_objects);

/// A number with no fractional part is an integer, as JSON Schema (and so the document) counts
/// it: `3600.0` is taken where an integer is due, `3600.5` is refused naming the field.
async fn integral_numbers_are_integers(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let (status, v) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/tokens",
            Some(json!({"group": "web", "ttl_secs": 3600.0, "max_uses": 2e0})),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let (_, tokens) = s.call(reqwest::Method::GET, "/api/v1/tokens", None).await;
    assert_eq!(tokens[0]["max_uses"], 2, "{tokens}");
    let (status, v) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/tokens",
            Some(json!({"group": "web", "ttl_secs": 3600.5})),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("ttl_secs"), "{v}");
    s.finish().await;
}
server_test!(integral_numbers_are_integers);

/// Where `scripts/setup-test-deps.sh` installs schemathesis (its own virtual environment).
const SCHEMATHESIS: &str = "/opt/rampart-test/schemathesis/bin/schemathesis";

/// One schemathesis run against the served document (`scripts/schemathesis.toml`), from
/// `dir`: every check, the coverage, fuzzing and stateful phases, a bounded number of examples
/// per operation and a fixed seed. Returns whether it passed and what it printed. A request
/// that fails at the network level is retried (twice): the server closes a kept-alive
/// connection after 10 s without a request (its defence against idle connections), and a
/// client sending on one it just closed sees an EOF that says nothing about the contract.
async fn schemathesis(dir: &std::path::Path, s: &TestServer, args: &[&str]) -> (bool, String) {
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/schemathesis.toml"
    );
    let bin = std::env::var("RAMPART_SCHEMATHESIS").unwrap_or_else(|_| SCHEMATHESIS.into());
    let out = tokio::process::Command::new(&bin)
        .current_dir(dir)
        .args(["--config-file", config, "run"])
        .arg(s.url("/api/v1/openapi.json"))
        .args([
            "--phases",
            "coverage,fuzzing,stateful",
            "--max-examples",
            "20",
            "--seed",
            "20261203",
            "--generation-database",
            "none",
            "--request-retries",
            "2",
            "--no-color",
        ])
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{bin}: {e} (scripts/setup-test-deps.sh installs it)"));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// How many operations a schemathesis run selected and tested (`Selected: 44/48`,
/// `Tested: 44`).
fn operations(report: &str) -> (usize, usize) {
    let number = |label: &str| -> usize {
        report
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|rest| rest.trim().split('/').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {label:?} line in:\n{report}"))
    };
    (number("Selected:"), number("Tested:"))
}

/// The API keeps its contract by the judgement of PyPI schemathesis, run against the document
/// the server serves: every operation of the API port with the admin token, then every
/// operation of the agent port with an enrolled agent's certificate. Schema-valid requests are
/// accepted, schema-violating ones refused, every status, content type and body is the one
/// the document declares, and an unauthenticated call is refused. Zero failures. (The
/// limiter on failed authentications is raised: the run makes hundreds on purpose.) Its
/// stateful phase follows links between operations, so it also revokes what it lists.
async fn schemathesis_finds_the_served_contract_kept(db: Db) {
    let Some(s) = TestServer::start_with(db, |c| c.max_auth_failures = 1_000_000).await else {
        return;
    };
    let token = s.token("web", 1).await;
    let agent = TestAgent::enrol(&s, &token).await.expect("enrols");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root.pem");
    std::fs::write(&root, &s.root_pem).unwrap();
    let root = root.to_str().unwrap();
    // The agent port first: the API pass may revoke the agent (it finds it by listing).
    let agent_url = format!("https://127.0.0.1:{}", s.config.agent_listen.port());
    let cert = agent.state.root().join("agent-cert.pem");
    let key = agent.state.root().join("agent-key.pem");
    let (ok, report) = schemathesis(
        dir.path(),
        &s,
        &[
            "--url",
            &agent_url,
            "--tls-verify",
            root,
            "--request-cert",
            cert.to_str().unwrap(),
            "--request-cert-key",
            key.to_str().unwrap(),
            "--include-tag",
            "agent",
        ],
    )
    .await;
    assert!(ok, "agent port:\n{report}");
    assert_eq!(operations(&report), (4, 4), "agent port:\n{report}");
    let bearer = format!("Authorization: Bearer {}", s.admin_token);
    let (ok, report) = schemathesis(
        dir.path(),
        &s,
        &[
            "--url",
            &s.api_url,
            "--tls-verify",
            root,
            "-H",
            &bearer,
            "--exclude-tag",
            "agent",
        ],
    )
    .await;
    assert!(ok, "API port:\n{report}");
    let (selected, tested) = operations(&report);
    assert!(selected >= 40 && tested == selected, "API port:\n{report}");

    s.finish().await;
}
server_test!(schemathesis_finds_the_served_contract_kept);
