//! Authorization as docs/access.md writes it: the tables there are read and the served API is
//! held to them, endpoint by endpoint and role by role.

use std::collections::BTreeMap;

use rampart_access::Role;
use rampart_store::{CertificateRecord, NewAgent, Store};
use reqwest::Method;
use serde_json::Value;
use time::{Duration, OffsetDateTime};

use super::harness::{Db, TestServer, new_user, token};
use crate::server_test;

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/access.md");

/// The two tables of docs/access.md: permission → roles holding it, and (method, path) →
/// permission.
struct Matrix {
    roles: BTreeMap<String, Vec<Role>>,
    endpoints: Vec<(Method, String, String)>,
}

fn cells(line: &str) -> Vec<String> {
    line.trim()
        .trim_matches('|')
        .split('|')
        .map(|c| c.trim().trim_matches('`').to_owned())
        .collect()
}

fn matrix() -> Matrix {
    let text = std::fs::read_to_string(DOC).unwrap();
    let section = |title: &str| -> Vec<Vec<String>> {
        let start = text
            .find(title)
            .unwrap_or_else(|| panic!("{title} in {DOC}"));
        text[start..]
            .lines()
            .skip(1)
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2) // header and separator
            .map(cells)
            .collect()
    };
    let order = [Role::Admin, Role::Operator, Role::Auditor, Role::Viewer];
    let roles = section("## Roles")
        .into_iter()
        .map(|c| {
            assert_eq!(c.len(), 6, "{c:?}");
            let held = order
                .iter()
                .zip(&c[2..])
                .filter(|(_, yes)| match yes.as_str() {
                    "yes" => true,
                    "no" => false,
                    other => panic!("{other:?} in the roles table"),
                })
                .map(|(r, _)| *r)
                .collect();
            (c[0].clone(), held)
        })
        .collect();
    let endpoints = section("## Endpoints")
        .into_iter()
        .map(|c| {
            assert_eq!(c.len(), 4, "{c:?}");
            (c[0].parse().unwrap(), c[1].clone(), c[2].clone())
        })
        .collect();
    Matrix { roles, endpoints }
}

/// A path with every parameter filled by a name nothing has.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if s.starts_with('{') {
                "nothing-here"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// One call: the status and the problem code of a refusal.
async fn call(
    s: &TestServer,
    method: &Method,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut req = s.http.request(method.clone(), s.url(path)).header(
        "accept",
        "application/taxii+json;version=2.1, application/json",
    );
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if *method == Method::POST || *method == Method::PUT {
        req = req
            .header("content-type", "application/json")
            .body(body.unwrap_or("{}").to_owned());
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    // A live stream is judged by its status alone: its body never ends.
    let streaming = r
        .headers()
        .get("content-type")
        .is_some_and(|v| v == "text/event-stream");
    let v: Value = if streaming {
        Value::Null
    } else {
        r.json().await.unwrap_or(Value::Null)
    };
    let code = v["code"]
        .as_str()
        .or(v["title"].as_str())
        .unwrap_or("")
        .to_owned();
    (status, code)
}

/// `GET path` with `token`: the JSON answer.
async fn get_json(s: &TestServer, path: &str, token: &str) -> Value {
    s.http
        .get(s.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Every endpoint of the doc × every role, and every bad credential on every endpoint.
async fn every_endpoint_for_every_role(db: Db) {
    let Some(s) = TestServer::start_with(db, |c| c.max_auth_failures = 1_000_000).await else {
        return;
    };
    let m = matrix();

    // The doc and the served document name the same operations with the same permissions.
    let doc: Value = s.get("/api/v1/openapi.json").await;
    let mut served = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            if let Some(p) = op["x-rampart-permission"].as_str() {
                served.push((method.to_uppercase(), path.clone(), p.to_owned()));
            }
        }
    }
    let mut written: Vec<_> = m
        .endpoints
        .iter()
        .map(|(me, p, perm)| (me.to_string(), p.clone(), perm.clone()))
        .collect();
    served.sort();
    written.sort();
    assert_eq!(
        served, written,
        "docs/access.md against the served document"
    );
    let all_permissions: Vec<String> = rampart_access::Permission::ALL
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(
        m.roles.keys().cloned().collect::<Vec<_>>(),
        {
            let mut sorted = all_permissions.clone();
            sorted.sort();
            sorted
        },
        "every permission in the roles table"
    );

    let store = s.store().await;
    let mut tokens = Vec::new();
    for role in Role::ALL {
        let u = store
            .insert_user(&new_user(&format!("{role}-user"), role, &[]))
            .await
            .unwrap();
        tokens.push((
            role,
            token(&store, &u, "t", role, &[], Duration::days(1)).await,
        ));
    }
    for (method, path, permission) in &m.endpoints {
        let allowed = &m.roles[permission];
        for (role, secret) in &tokens {
            let (status, code) = call(&s, method, &concrete(path), Some(secret), None).await;
            if allowed.contains(role) {
                assert!(
                    status != 401 && status != 403 && status < 500,
                    "{method} {path} as {role}: {status} {code}"
                );
            } else {
                assert_eq!(
                    (status, code.as_str()),
                    (403, "permission_denied"),
                    "{method} {path} as {role}"
                );
            }
        }
    }

    // Bad credentials, on every endpoint.
    let admin = store.user("admin").await.unwrap().unwrap();
    let expired = token(
        &store,
        &admin,
        "expired",
        Role::Admin,
        &[],
        -Duration::seconds(1),
    )
    .await;
    let revoked = token(
        &store,
        &admin,
        "revoked",
        Role::Admin,
        &[],
        Duration::days(1),
    )
    .await;
    store
        .revoke_api_token("admin", "revoked", OffsetDateTime::now_utc())
        .await
        .unwrap()
        .unwrap();
    let gone = store
        .insert_user(&new_user("gone", Role::Admin, &[]))
        .await
        .unwrap();
    let disabled = token(&store, &gone, "t", Role::Admin, &[], Duration::days(1)).await;
    store
        .set_user_disabled("gone", Some(OffsetDateTime::now_utc()))
        .await
        .unwrap();
    for (method, path, _) in &m.endpoints {
        let path = concrete(path);
        for (secret, expected) in [
            (None, "missing_token"),
            (Some("rpt_not-a-token"), "invalid_token"),
            (Some(expired.as_str()), "token_expired"),
            (Some(revoked.as_str()), "token_revoked"),
            (Some(disabled.as_str()), "user_disabled"),
        ] {
            let (status, code) = call(&s, method, &path, secret, None).await;
            // TAXII errors carry no code; their status says it.
            if path.starts_with("/taxii2/") {
                assert_eq!(status, 401, "{method} {path} with {expected}");
            } else {
                assert_eq!((status, code.as_str()), (401, expected), "{method} {path}");
            }
        }
    }
    store.close().await;
}
server_test!(every_endpoint_for_every_role);

fn agent(id: &str, group: &str) -> (NewAgent, CertificateRecord) {
    let now = OffsetDateTime::now_utc();
    (
        NewAgent {
            id: id.into(),
            hostname: format!("host-{id}"),
            os: "Debian GNU/Linux 12".into(),
            arch: "x86_64".into(),
            agent_version: "0.1.0".into(),
            labels: BTreeMap::new(),
            group: group.into(),
        },
        CertificateRecord {
            serial: format!("serial-{id}"),
            agent_id: id.into(),
            fingerprint: format!("fp-{id}"),
            not_before: now - Duration::minutes(1),
            not_after: now + Duration::hours(24),
            issued_at: now,
            revoked_at: None,
            revocation_reason: None,
        },
    )
}

/// Group limits: an operator of web acts on web's agents only, sees only them, keeps fleet-wide
/// reads but no fleet-wide change; a token limited below its user is held to its own limit; a
/// demoted user's older admin token shrinks with them.
async fn group_limits_and_demotion(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let store = s.store().await;
    for (id, group) in [("agent-web", "web"), ("agent-db", "db")] {
        let (a, c) = agent(id, group);
        store
            .enrol_agent(&a, &c, OffsetDateTime::now_utc())
            .await
            .unwrap();
    }
    let web_op = store
        .insert_user(&new_user("web-op", Role::Operator, &["web"]))
        .await
        .unwrap();
    let op = token(
        &store,
        &web_op,
        "t",
        Role::Operator,
        &["web"],
        Duration::days(1),
    )
    .await;
    let get = Method::GET;
    let post = Method::POST;
    let cases: &[(&Method, &str, Option<&str>, u16)] = &[
        (&get, "/api/v1/agents/agent-web", None, 200),
        (&get, "/api/v1/agents/agent-db", None, 403),
        (&post, "/api/v1/agents/agent-web/scan", None, 200),
        (&post, "/api/v1/agents/agent-db/scan", None, 403),
        (&get, "/api/v1/agents/agent-web/runs", None, 200),
        (&get, "/api/v1/agents/agent-db/latest", None, 403),
        (&post, "/api/v1/tokens", Some(r#"{"group":"web"}"#), 201),
        (&post, "/api/v1/tokens", Some(r#"{"group":"db"}"#), 403),
        (
            &post,
            "/api/v1/tokens",
            Some(r#"{"group":"web","agent_id":"agent-db"}"#),
            403,
        ),
        // Fleet-wide reads stay, fleet-wide changes and all-group views do not.
        (&get, "/api/v1/intel/stats", None, 200),
        (&get, "/api/v1/policies", None, 200),
        (&post, "/api/v1/intel/feeds", Some("{}"), 403),
        (&post, "/api/v1/policies", Some("{}"), 403),
        (&get, "/api/v1/results", None, 403),
        (&get, "/api/v1/intel/hits", None, 403),
        // An agent that does not exist is the handler's 404, as for anyone.
        (&get, "/api/v1/agents/agent-none", None, 404),
    ];
    for (method, path, body, expected) in cases {
        let (status, code) = call(&s, method, path, Some(&op), *body).await;
        assert_eq!(status, *expected, "{method} {path} {body:?}: {code}");
        if *expected == 403 {
            assert_eq!(code, "permission_denied", "{method} {path}");
        }
    }
    let listed = get_json(&s, "/api/v1/agents", &op).await;
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["agent-web"]);
    let tokens = get_json(&s, "/api/v1/tokens", &op).await;
    let tokens = tokens.as_array().unwrap();
    assert!(!tokens.is_empty());
    assert!(tokens.iter().all(|t| t["group"] == "web"), "{tokens:?}");

    // An admin's token limited to db: held to db, whatever its user may do.
    let admin = store.user("admin").await.unwrap().unwrap();
    let db_only = token(
        &store,
        &admin,
        "db-only",
        Role::Admin,
        &["db"],
        Duration::days(1),
    )
    .await;
    assert_eq!(
        call(&s, &get, "/api/v1/agents/agent-db", Some(&db_only), None)
            .await
            .0,
        200
    );
    assert_eq!(
        call(&s, &get, "/api/v1/agents/agent-web", Some(&db_only), None)
            .await
            .0,
        403
    );

    // An admin demoted to viewer: their admin token now reads, and changes nothing.
    let demoted = store
        .insert_user(&new_user("demoted", Role::Admin, &[]))
        .await
        .unwrap();
    let old = token(&store, &demoted, "t", Role::Admin, &[], Duration::days(1)).await;
    assert_eq!(
        call(
            &s,
            &post,
            "/api/v1/tokens",
            Some(&old),
            Some(r#"{"group":"web"}"#)
        )
        .await
        .0,
        201
    );
    store
        .set_user_grant("demoted", Role::Viewer, &[])
        .await
        .unwrap();
    let (status, code) = call(
        &s,
        &post,
        "/api/v1/tokens",
        Some(&old),
        Some(r#"{"group":"web"}"#),
    )
    .await;
    assert_eq!((status, code.as_str()), (403, "permission_denied"));
    assert_eq!(
        call(&s, &get, "/api/v1/agents", Some(&old), None).await.0,
        200
    );
    store.close().await;
}
server_test!(group_limits_and_demotion);

/// Password login: one-time passwords must be changed, the policy holds, every wrong answer
/// looks the same, logging in again replaces the token of that name, and an address that keeps
/// failing is held off for a while (the account itself is never locked).
async fn password_login(db: Db) {
    let Some(s) = TestServer::start_with(db, |c| c.max_auth_failures = 9).await else {
        return;
    };
    let store = s.store().await;
    let otp = rampart_access::secret::new_one_time_password();
    let mut carol = new_user("carol", Role::Auditor, &[]);
    carol.password_hash = Some(rampart_access::password::hash(&otp).unwrap());
    carol.must_change_password = true;
    store.insert_user(&carol).await.unwrap();
    let login = |user: &str, password: &str, new: Option<&str>| {
        let body = serde_json::json!({"user": user, "password": password, "new_password": new});
        let (http, url) = (s.http.clone(), s.url("/api/v1/login"));
        async move {
            let r = http.post(url).json(&body).send().await.unwrap();
            let status = r.status().as_u16();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let v: Value = r.json().await.unwrap();
            (status, v, retry)
        }
    };
    let code = |v: &Value| v["code"].as_str().unwrap_or("").to_owned();

    // Wrong password, unknown user, malformed name: one answer.
    for (user, pw) in [
        ("carol", "not the password"),
        ("nobody", "whatever it is"),
        ("Bad Name", "x"),
    ] {
        let (st, v, _) = login(user, pw, None).await;
        assert_eq!(
            (st, code(&v).as_str()),
            (401, "bad_credentials"),
            "{user}: {v}"
        );
    }
    let (st, v, _) = login("carol", &otp, None).await;
    assert_eq!(
        (st, code(&v).as_str()),
        (403, "password_change_required"),
        "{v}"
    );
    let (st, v, _) = login("carol", &otp, Some("Password2024!")).await;
    assert_eq!((st, code(&v).as_str()), (400, "weak_password"), "{v}");
    assert!(v["detail"].as_str().unwrap().contains("well-known"), "{v}");
    let (st, v, _) = login("carol", &otp, Some("mauve lantern 7 quietly")).await;
    assert_eq!(st, 201, "{v}");
    let first = v["token"].as_str().unwrap().to_owned();
    assert_eq!(v["info"]["name"], "cli");
    assert_eq!(v["info"]["role"], "auditor");

    // The token works and says who it is; the one-time password does not any more.
    let me = get_json(&s, "/api/v1/me", &first).await;
    assert_eq!(me["user"]["name"], "carol");
    assert_eq!(me["user"]["must_change_password"], false);
    let held: Vec<&str> = me["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(
        held,
        [
            "self_service",
            "agents_read",
            "enrolment_read",
            "policies_read",
            "results_read",
            "intel_read",
            "users_read",
            "audit_read",
            "waivers_decide",
            "metrics_read"
        ]
    );
    assert_eq!(me["groups"], Value::Null);
    let (st, _, _) = login("carol", &otp, None).await;
    assert_eq!(st, 401);

    // Logging in again replaces the token of the same name.
    let (st, v, _) = login("carol", "mauve lantern 7 quietly", None).await;
    assert_eq!(st, 201, "{v}");
    let second = v["token"].as_str().unwrap().to_owned();
    let (st, c) = call(&s, &Method::GET, "/api/v1/me", Some(&first), None).await;
    assert_eq!((st, c.as_str()), (401, "token_revoked"));
    assert_eq!(
        call(&s, &Method::GET, "/api/v1/me", Some(&second), None)
            .await
            .0,
        200
    );

    // Changing one's password needs the current one.
    let change =
        |current: &str, new: &str| serde_json::json!({"current": current, "new": new}).to_string();
    let (st, c) = call(
        &s,
        &Method::POST,
        "/api/v1/me/password",
        Some(&second),
        Some(&change("wrong one here", "another fine phrase 9")),
    )
    .await;
    assert_eq!((st, c.as_str()), (403, "bad_credentials"));
    let (st, c) = call(
        &s,
        &Method::POST,
        "/api/v1/me/password",
        Some(&second),
        Some(&change("mauve lantern 7 quietly", "another fine phrase 9")),
    )
    .await;
    assert_eq!(st, 200, "{c}");
    assert_eq!(login("carol", "mauve lantern 7 quietly", None).await.0, 401);
    assert_eq!(login("carol", "another fine phrase 9", None).await.0, 201);

    // The first admin's one-time password stopped working when the harness changed it.
    let otp_file = s.config.data_dir.join("admin-password");
    let first_otp = std::fs::read_to_string(otp_file).unwrap();
    assert_eq!(login("admin", first_otp.trim(), None).await.0, 401);

    // A disabled user cannot log in, and is told nothing more than a wrong password.
    store
        .set_user_disabled("carol", Some(OffsetDateTime::now_utc()))
        .await
        .unwrap();
    let (st, v, _) = login("carol", "another fine phrase 9", None).await;
    assert_eq!((st, code(&v).as_str()), (401, "bad_credentials"));

    // Nine failures from this address so far (three wrong answers, the spent one-time
    // password, the replaced token, the wrong current password, the changed password, the
    // admin's spent one-time password, the disabled user): the tenth try is held off, even with
    // the right password.
    let (st, v, retry) = login("admin", super::harness::ADMIN_PASSWORD, None).await;
    assert_eq!((st, code(&v).as_str()), (429, "too_many_failures"), "{v}");
    assert!(retry.unwrap().parse::<u64>().unwrap() > 0);
    store.close().await;
}
server_test!(password_login);

/// An install upgraded from admin tokens has a first admin with no password: its first start
/// gives them a one-time password (the harness logs in with it), and the migrated token keeps
/// working beside it.
async fn an_upgraded_install_gets_a_first_admin_password(db: Db) {
    let kept = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let seed = kept.clone();
    let Some(s) = TestServer::start_with(db, move |c| {
        let (dir, url) = (c.data_dir.clone(), c.database_url.clone());
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async move {
                std::fs::create_dir_all(&dir).unwrap();
                let store = match url {
                    Some(url) => Store::open(&url).await.unwrap(),
                    None => Store::open_sqlite(&dir.join("rampart.db")).await.unwrap(),
                };
                // What the users migration leaves: an admin with no password, a token of theirs.
                let mut admin = new_user("admin", Role::Admin, &[]);
                admin.must_change_password = true;
                let admin = store.insert_user(&admin).await.unwrap();
                let t = token(
                    &store,
                    &admin,
                    "legacy-admin-1",
                    Role::Admin,
                    &[],
                    Duration::days(90),
                )
                .await;
                *seed.lock().unwrap() = Some(t);
                store.close().await;
            })
        });
    })
    .await
    else {
        return;
    };
    // The harness logged in with the one-time password this start wrote.
    let me: Value = s.get("/api/v1/me").await;
    assert_eq!(me["user"]["name"], "admin");
    assert_eq!(me["user"]["has_password"], true);
    assert_eq!(me["user"]["must_change_password"], false);
    assert_eq!(me["token"], "cli");
    // The migrated token still works.
    let legacy = kept.lock().unwrap().clone().unwrap();
    let (status, _) = call(&s, &Method::GET, "/api/v1/me", Some(&legacy), None).await;
    assert_eq!(status, 200);
}
server_test!(an_upgraded_install_gets_a_first_admin_password);

/// Users and tokens through the API: an admin creates, changes, disables, enables and resets
/// users; a user makes tokens within their own grant and revokes them; the last enabled admin
/// cannot be disabled or demoted.
async fn users_and_tokens_through_the_api(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let admin = s.admin_token.clone();
    let send = |method: Method, path: &str, token: &str, body: Option<Value>| {
        let req = s.http.request(method, s.url(path)).bearer_auth(token);
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let login = |user: &str, password: &str, new: Option<&str>| {
        let body = serde_json::json!({"user": user, "password": password, "new_password": new});
        let req = s.http.post(s.url("/api/v1/login")).json(&body);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };

    let (st, v) = send(
        Method::POST,
        "/api/v1/users",
        &admin,
        Some(serde_json::json!({"name": "dave", "role": "operator", "groups": ["web"]})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let otp = v["one_time_password"].as_str().unwrap().to_owned();
    assert_eq!(otp.len(), 27);
    assert_eq!(v["user"]["must_change_password"], true);
    assert_eq!(v["user"]["groups"], serde_json::json!(["web"]));
    let (st, v) = send(
        Method::POST,
        "/api/v1/users",
        &admin,
        Some(serde_json::json!({"name": "dave", "role": "viewer"})),
    )
    .await;
    assert_eq!((st, v["code"].as_str()), (409, Some("conflict")), "{v}");
    let (st, _) = send(
        Method::POST,
        "/api/v1/users",
        &admin,
        Some(serde_json::json!({"name": "Dave", "role": "viewer"})),
    )
    .await;
    assert_eq!(st, 400);

    let (st, v) = login("dave", &otp, Some("blue harbour lights at nine")).await;
    assert_eq!(st, 201, "{v}");
    let dave = v["token"].as_str().unwrap().to_owned();
    assert_eq!(send(Method::GET, "/api/v1/users", &dave, None).await.0, 403);

    // Tokens within one's own grant only.
    let mk = |body: Value| send(Method::POST, "/api/v1/me/tokens", &dave, Some(body));
    let (st, v) = mk(serde_json::json!({"name": "ci", "role": "viewer", "ttl_days": 30})).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(
        v["info"]["groups"],
        serde_json::json!(["web"]),
        "inherits the user's groups"
    );
    let ci = v["token"].as_str().unwrap().to_owned();
    let me = send(Method::GET, "/api/v1/me", &ci, None).await.1;
    assert_eq!(me["groups"], serde_json::json!(["web"]));
    assert!(
        !me["permissions"]
            .as_array()
            .unwrap()
            .contains(&Value::from("agents_manage"))
    );
    for (body, why) in [
        (
            serde_json::json!({"name": "x", "role": "admin"}),
            "a role above the user's",
        ),
        (
            serde_json::json!({"name": "x", "groups": ["db"]}),
            "another group",
        ),
        (
            serde_json::json!({"name": "x", "groups": []}),
            "the whole fleet",
        ),
    ] {
        let (st, v) = mk(body).await;
        assert_eq!(
            (st, v["code"].as_str()),
            (403, Some("permission_denied")),
            "{why}: {v}"
        );
    }
    assert_eq!(mk(serde_json::json!({"name": "ci"})).await.0, 409);
    let (_, mine) = send(Method::GET, "/api/v1/me/tokens", &dave, None).await;
    let names: Vec<&str> = mine
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ci", "cli"]);
    assert!(
        mine.to_string()
            .find("rpt_")
            .is_some_and(|_| !mine.to_string().contains(&ci))
    );
    assert_eq!(
        send(Method::DELETE, "/api/v1/me/tokens/ci", &dave, None)
            .await
            .0,
        200
    );
    assert_eq!(
        send(Method::DELETE, "/api/v1/me/tokens/ci", &dave, None)
            .await
            .0,
        404
    );
    assert_eq!(
        call(&s, &Method::GET, "/api/v1/me", Some(&ci), None)
            .await
            .0,
        401
    );

    // An admin sees and revokes anyone's tokens.
    let (st, theirs) = send(Method::GET, "/api/v1/users/dave/tokens", &admin, None).await;
    assert_eq!(st, 200);
    assert_eq!(theirs.as_array().unwrap().len(), 2);
    assert_eq!(
        send(
            Method::DELETE,
            "/api/v1/users/dave/tokens/cli",
            &admin,
            None
        )
        .await
        .0,
        200
    );
    let (st, c) = call(&s, &Method::GET, "/api/v1/me", Some(&dave), None).await;
    assert_eq!((st, c.as_str()), (401, "token_revoked"));

    // Role, disable, enable, reset.
    let (st, v) = send(
        Method::PUT,
        "/api/v1/users/dave/role",
        &admin,
        Some(serde_json::json!({"role": "auditor"})),
    )
    .await;
    assert_eq!(
        (st, v["role"].as_str(), v["groups"].clone()),
        (200, Some("auditor"), serde_json::json!([]))
    );
    assert_eq!(
        send(Method::POST, "/api/v1/users/dave/disable", &admin, None)
            .await
            .0,
        200
    );
    assert_eq!(
        login("dave", "blue harbour lights at nine", None).await.0,
        401
    );
    assert_eq!(
        send(Method::POST, "/api/v1/users/dave/enable", &admin, None)
            .await
            .0,
        200
    );
    assert_eq!(
        login("dave", "blue harbour lights at nine", None).await.0,
        201
    );
    let (st, v) = send(
        Method::POST,
        "/api/v1/users/dave/reset-password",
        &admin,
        None,
    )
    .await;
    assert_eq!(st, 200);
    let otp = v["one_time_password"].as_str().unwrap().to_owned();
    assert_eq!(
        login("dave", "blue harbour lights at nine", None).await.0,
        401
    );
    let (st, v) = login("dave", &otp, None).await;
    assert_eq!(
        (st, v["code"].as_str()),
        (403, Some("password_change_required"))
    );
    assert_eq!(
        send(Method::GET, "/api/v1/users/nobody", &admin, None)
            .await
            .0,
        404
    );

    // The last enabled admin stays.
    let (st, v) = send(Method::POST, "/api/v1/users/admin/disable", &admin, None).await;
    assert_eq!((st, v["code"].as_str()), (409, Some("last_admin")), "{v}");
    let (st, v) = send(
        Method::PUT,
        "/api/v1/users/admin/role",
        &admin,
        Some(serde_json::json!({"role": "admin", "groups": ["web"]})),
    )
    .await;
    assert_eq!((st, v["code"].as_str()), (409, Some("last_admin")), "{v}");
    let (st, _) = send(
        Method::POST,
        "/api/v1/users",
        &admin,
        Some(serde_json::json!({"name": "erin", "role": "admin"})),
    )
    .await;
    assert_eq!(st, 201);
    let (st, v) = send(
        Method::PUT,
        "/api/v1/users/erin/role",
        &admin,
        Some(serde_json::json!({"role": "viewer"})),
    )
    .await;
    assert_eq!(
        (st, v["role"].as_str()),
        (200, Some("viewer")),
        "another admin remains"
    );
}
server_test!(users_and_tokens_through_the_api);

/// Browser sessions: the cookie's attributes, CSRF on every change, logout, logout
/// everywhere, the idle and absolute timeouts, a disabled user.
async fn browser_sessions(db: Db) {
    let Some(s) = TestServer::start_with(db, |c| {
        c.session_idle = std::time::Duration::from_secs(3);
        c.session_max = std::time::Duration::from_secs(8);
    })
    .await
    else {
        return;
    };
    let start = || {
        let req = s
            .http
            .post(s.url("/api/v1/session"))
            .json(&serde_json::json!(
            {"user": "admin", "password": super::harness::ADMIN_PASSWORD}));
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status().as_u16(), 201);
            let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
            let v: Value = r.json().await.unwrap();
            (cookie, v["csrf_token"].as_str().unwrap().to_owned(), v)
        }
    };
    let (set_cookie, csrf, v) = start().await;
    let (pair, attributes) = set_cookie.split_once(';').unwrap();
    let (name, id) = pair.split_once('=').unwrap();
    assert_eq!(name, "__Host-rampart_session");
    assert!(id.starts_with("rps_") && id.len() == 47, "{id}");
    assert_eq!(
        attributes.trim(),
        "Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=8"
    );
    assert_eq!(v["idle_minutes"], 0);
    let cookie = format!("{name}={id}");
    let with = |method: Method, path: &str, cookie: &str, csrf: Option<&str>| {
        let mut req = s.http.request(method, s.url(path)).header("cookie", cookie);
        if let Some(t) = csrf {
            req = req.header("x-csrf-token", t);
        }
        async move {
            let r = req
                .json(&serde_json::json!({"name": "from-browser"}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            (status, v["code"].as_str().unwrap_or("").to_owned())
        }
    };
    // Reads need only the cookie; changes need the CSRF token too.
    assert_eq!(with(Method::GET, "/api/v1/me", &cookie, None).await.0, 200);
    assert_eq!(
        with(Method::POST, "/api/v1/me/tokens", &cookie, None).await,
        (403, "csrf_failed".into())
    );
    assert_eq!(
        with(Method::POST, "/api/v1/me/tokens", &cookie, Some("wrong")).await,
        (403, "csrf_failed".into())
    );
    assert_eq!(
        with(Method::POST, "/api/v1/me/tokens", &cookie, Some(&csrf))
            .await
            .0,
        201
    );
    // Logging out with a token is a mistake the server names.
    let (st, code) = call(
        &s,
        &Method::DELETE,
        "/api/v1/session",
        Some(&s.admin_token),
        None,
    )
    .await;
    assert_eq!((st, code.as_str()), (409, "not_a_session"));

    // Logout: the cookie is cleared and the session ends server-side.
    let r = s
        .http
        .delete(s.url("/api/v1/session"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("__Host-rampart_session=; ")
    );
    assert_eq!(
        with(Method::GET, "/api/v1/me", &cookie, None).await,
        (401, "session_ended".into())
    );

    // Logout everywhere ends the others; API tokens stay.
    let (a, csrf_a, _) = start().await;
    let (b, _, _) = start().await;
    let a = a.split(';').next().unwrap().to_owned();
    let b = b.split(';').next().unwrap().to_owned();
    assert_eq!(
        with(
            Method::POST,
            "/api/v1/me/logout-everywhere",
            &a,
            Some(&csrf_a)
        )
        .await
        .0,
        200
    );
    assert_eq!(
        with(Method::GET, "/api/v1/me", &b, None).await,
        (401, "session_ended".into())
    );
    assert_eq!(
        call(&s, &Method::GET, "/api/v1/me", Some(&s.admin_token), None)
            .await
            .0,
        200
    );

    // Idle: three seconds without a request end it; requests keep it alive up to the
    // absolute end at eight.
    let (c, _, _) = start().await;
    let c = c.split(';').next().unwrap().to_owned();
    // A request a second keeps it alive well past the idle timeout, until the absolute end
    // (times are kept to the second, so the end comes within a second of it).
    let started = std::time::Instant::now();
    let mut alive = 0;
    while with(Method::GET, "/api/v1/me", &c, None).await.0 == 200 {
        alive += 1;
        assert!(alive < 15, "the absolute end never came");
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(5),
        "kept alive by use: {alive}"
    );
    assert_eq!(
        with(Method::GET, "/api/v1/me", &c, None).await,
        (401, "session_expired".into())
    );
    let (d, _, _) = start().await;
    let d = d.split(';').next().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert_eq!(
        with(Method::GET, "/api/v1/me", &d, None).await,
        (401, "session_expired".into()),
        "idle"
    );

    // A disabled user's session stops at once.
    let store = s.store().await;
    let mut erin = new_user("erin", Role::Viewer, &[]);
    erin.password_hash = Some(rampart_access::password::hash("erin's fine long phrase").unwrap());
    store.insert_user(&erin).await.unwrap();
    let r = s
        .http
        .post(s.url("/api/v1/session"))
        .json(&serde_json::json!(
        {"user": "erin", "password": "erin's fine long phrase"}))
        .send()
        .await
        .unwrap();
    let e = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(with(Method::GET, "/api/v1/agents", &e, None).await.0, 200);
    store
        .set_user_disabled("erin", Some(OffsetDateTime::now_utc()))
        .await
        .unwrap();
    assert_eq!(
        with(Method::GET, "/api/v1/agents", &e, None).await,
        (401, "user_disabled".into())
    );
    store.close().await;
}
server_test!(browser_sessions);

/// Rate limits: lookups and exports per credential (another token keeps its own budget),
/// logins and enrolments per address; each refusal is 429 with Retry-After.
async fn rates_per_client(db: Db) {
    let Some(s) = TestServer::start_with(db, |c| {
        c.rate_limits = rampart_server::RateLimits {
            login_per_minute: 3,
            enrol_per_minute: 2,
            lookup_per_minute: 4,
            export_per_minute: 2,
        };
    })
    .await
    else {
        return;
    };
    let store = s.store().await;
    let admin = store.user("admin").await.unwrap().unwrap();
    let other = token(&store, &admin, "other", Role::Admin, &[], Duration::days(1)).await;
    let get = |path: &'static str, token: String| {
        let req = s.http.get(s.url(path)).bearer_auth(token);
        async move {
            let r = req.send().await.unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            (status, v["code"].as_str().unwrap_or("").to_owned(), retry)
        }
    };
    let lookup = "/api/v1/intel/lookup?value=192.0.2.1";
    for _ in 0..4 {
        assert_eq!(get(lookup, s.admin_token.clone()).await.0, 200);
    }
    let (st, code, retry) = get(lookup, s.admin_token.clone()).await;
    assert_eq!((st, code.as_str()), (429, "rate_limited"));
    assert_eq!(
        retry,
        Some(15),
        "a request's worth refills in 15 s at 4 a minute"
    );
    assert_eq!(
        get(lookup, other.clone()).await.0,
        200,
        "another token has its own budget"
    );
    // Exports count apart from lookups.
    let export = "/api/v1/intel/export?format=csv";
    assert_eq!(get(export, other.clone()).await.0, 200);
    assert_eq!(get(export, other.clone()).await.0, 200);
    assert_eq!(get(export, other.clone()).await.1, "rate_limited");
    // Logins per address: the harness's first login and two more; the fourth is refused before
    // its password is even checked.
    for _ in 0..2 {
        let r = s
            .http
            .post(s.url("/api/v1/login"))
            .json(&serde_json::json!({"user": "admin", "password": super::harness::ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
    let r = s
        .http
        .post(s.url("/api/v1/login"))
        .json(&serde_json::json!({"user": "admin", "password": super::harness::ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // Enrolments per address: refused before the token is looked at.
    for expected in [400, 400, 429] {
        let r = s
            .http
            .post(s.url("/api/v1/enrol"))
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), expected);
    }
    store.close().await;
}
server_test!(rates_per_client);
