//! The audit log through the API: security events land in it as they happen, with who, from
//! where, what, to what and how it ended; search finds them; the export, checkpoints and
//! proofs verify with the pure verifier against the key the server publishes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rampart_audit::merkle::{Hash, leaf_hash, verify_consistency, verify_inclusion};
use rampart_audit::{LogCheck, LogVerifier};
use reqwest::Method;
use serde_json::{Value, json};

use super::harness::{Db, TestAgent, TestServer, login};
use crate::server_test;

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| B64.decode(h.as_str().unwrap()).unwrap().try_into().unwrap())
        .collect()
}

/// Entries matching a query string, newest first.
async fn search(s: &TestServer, query: &str) -> Vec<Value> {
    s.get(&format!("/api/v1/audit/entries?{query}")).await["entries"]
        .as_array()
        .unwrap()
        .clone()
}

async fn events_are_recorded_searchable_and_provable(db: Db) {
    let Some(mut s) = TestServer::start_with(db, |c| {
        // Signed every 5 entries, and each second: the test sees checkpoints without waiting.
        c.audit_checkpoints.every_entries = 5;
        c.audit_checkpoints.every = std::time::Duration::from_secs(1);
    })
    .await
    else {
        return;
    };
    // A wrong password, then a user made, given a token, demoted; a viewer reaching too far.
    let bad = s
        .http
        .post(s.url("/api/v1/login"))
        .json(&json!({"user": "admin", "password": "not the password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let (status, created) = s
        .call(
            Method::POST,
            "/api/v1/users",
            Some(json!({"name": "vera", "role": "operator"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let otp = created["one_time_password"].as_str().unwrap();
    let (status, _) = s
        .call(
            Method::PUT,
            "/api/v1/users/vera/role",
            Some(json!({"role": "viewer", "groups": []})),
        )
        .await;
    assert_eq!(status, 200);
    let vera = login(
        &s.http,
        &s.api_url,
        "vera",
        otp,
        Some("correct horse battery staple 7"),
    )
    .await;
    let denied = s
        .http
        .post(s.url("/api/v1/users"))
        .bearer_auth(&vera)
        .json(&json!({"name": "mallory", "role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    // Enrolment and a policy.
    let token = s.token("web", 1).await;
    let agent = TestAgent::enrol(&s, &token).await.unwrap();
    s.push_policy(super::harness::POLICY_V1, "web", "0 0 * * *")
        .await;

    // Each event by hand: who, how, what, to what, how it ended.
    let failed = search(&s, "action=login&outcome=failure").await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["actor"], "-");
    assert_eq!(failed[0]["target"], "user:admin");
    assert_eq!(failed[0]["via"], "password");
    assert_eq!(failed[0]["source"], "127.0.0.1");
    assert_eq!(failed[0]["detail"]["reason"], "wrong password");
    let made = search(&s, "action=user.create").await;
    assert_eq!(made.len(), 1);
    assert_eq!(made[0]["actor"], "admin");
    assert_eq!(made[0]["via"], "token:cli");
    assert_eq!(made[0]["target"], "user:vera");
    assert_eq!(made[0]["detail"]["role"], "operator");
    let role = search(&s, "action=user.role").await;
    assert_eq!(role[0]["detail"]["role"], "viewer");
    assert_eq!(role[0]["detail"]["previous_role"], "operator");
    let vera_did = search(&s, "actor=vera").await;
    let actions: Vec<&str> = vera_did
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    // Newest first: the refusal, the login, the one-time password changed at it.
    assert_eq!(actions, ["access.denied", "login", "password.change"]);
    assert_eq!(vera_did[0]["outcome"], "denied");
    assert_eq!(vera_did[0]["target"], "/api/v1/users");
    assert_eq!(vera_did[0]["detail"]["permission"], "users_manage");
    let enrolled = search(&s, &format!("target=agent:{}", agent.id)).await;
    assert_eq!(enrolled.len(), 1);
    assert_eq!(enrolled[0]["action"], "agent.enrol");
    assert_eq!(enrolled[0]["actor"], format!("agent:{}", agent.id));
    assert!(
        enrolled[0]["via"]
            .as_str()
            .unwrap()
            .starts_with("enrolment-token:")
    );
    assert_eq!(enrolled[0]["detail"]["group"], "web");
    let policy = search(&s, "action=policy.*").await;
    let actions: Vec<&str> = policy
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["policy.assign", "policy.upload"]);
    assert_eq!(policy[0]["detail"]["to"], "group:web");
    // The server's own start, with its settings.
    let start = search(&s, "action=server.start").await;
    assert_eq!(start[0]["actor"], "system");
    assert_eq!(start[0]["detail"]["retention_days"], "400");
    // Bad queries name the parameter.
    let (status, v) = s
        .call(Method::GET, "/api/v1/audit/entries?since=yesterday", None)
        .await;
    assert_eq!(status, 400);
    assert!(v["detail"].as_str().unwrap().starts_with("since:"), "{v}");

    // The viewer cannot read the log; the auditor role can (by the access matrix).
    let r = s
        .http
        .get(s.url("/api/v1/audit/entries"))
        .bearer_auth(&vera)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Wait for a checkpoint covering everything so far.
    let key = s.get("/api/v1/audit/key").await;
    let verifier = LogVerifier::new(key["vkey"].as_str().unwrap()).unwrap();
    assert_eq!(verifier.origin(), key["origin"].as_str().unwrap());
    let size = key["size"].as_u64().unwrap();
    let mut cp;
    loop {
        cp = s.get("/api/v1/audit/checkpoint").await;
        if cp["size"].as_u64().unwrap() >= size {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let head = verifier.open(cp["note"].as_str().unwrap()).unwrap();

    // An inclusion proof of the failed login against the signed root.
    let index = failed[0]["index"].as_u64().unwrap();
    let one = s.get(&format!("/api/v1/audit/entries/{index}")).await;
    let leaf = one["leaf"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(leaf).unwrap(),
        failed[0].clone()
    );
    let proof = s
        .get(&format!("/api/v1/audit/proof/inclusion?index={index}"))
        .await;
    assert_eq!(proof["size"].as_u64().unwrap(), head.size);
    verify_inclusion(
        &leaf_hash(leaf.as_bytes()),
        index as usize,
        head.size as usize,
        &hashes(&proof["path"]),
        &head.root,
    )
    .unwrap();
    // Consistency from the first checkpoint to the latest.
    let all = s.get("/api/v1/audit/checkpoints").await;
    let all = all.as_array().unwrap();
    assert!(all.len() >= 2, "{all:?}");
    let first = verifier.open(all[0]["note"].as_str().unwrap()).unwrap();
    let c = s
        .get(&format!(
            "/api/v1/audit/proof/consistency?from={}&to={}",
            first.size, head.size
        ))
        .await;
    verify_consistency(
        first.size as usize,
        head.size as usize,
        &hashes(&c["path"]),
        &first.root,
        &head.root,
    )
    .unwrap();
    // Proofs for what does not exist are refused.
    let (status, _) = s
        .call(
            Method::GET,
            &format!(
                "/api/v1/audit/proof/inclusion?index={}&size={}",
                head.size, head.size
            ),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = s
        .call(Method::GET, "/api/v1/audit/entries/99999", None)
        .await;
    assert_eq!(status, 404);

    // The whole export verifies against every checkpoint.
    let export = s.get_response("/api/v1/audit/export").await;
    assert_eq!(export.status(), 200);
    assert_eq!(
        export.headers()["content-type"].to_str().unwrap(),
        "application/jsonl"
    );
    let exported: u64 = export.headers()["x-audit-size"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let text = export.text().await.unwrap();
    assert_eq!(text.lines().count() as u64, exported);
    let cps = all
        .iter()
        .map(|c| verifier.open(c["note"].as_str().unwrap()).unwrap())
        .collect();
    let mut check = LogCheck::new(cps, None);
    for line in text.lines() {
        check.push(line.as_bytes());
    }
    let report = check.finish();
    assert_eq!(report.problems, vec![]);
    assert!(report.checkpoints_matched >= 2);

    // A restart with another setting: the change is on the record.
    s.config.retention_days = 30;
    s.restart().await;
    let change = search(&s, "action=config.change").await;
    assert_eq!(change.len(), 1, "{change:?}");
    let detail = change[0]["detail"].as_object().unwrap();
    assert_eq!(detail["retention_days"], "400 → 30");
    // The first start asked for port 0; only the changed settings are listed.
    for key in detail.keys() {
        assert!(
            ["retention_days", "listen", "agent_listen"].contains(&key.as_str()),
            "{detail:?}"
        );
    }
    s.finish().await;
}
server_test!(events_are_recorded_searchable_and_provable);
