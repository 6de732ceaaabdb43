//! Waivers governed on the server: requested by an operator, decided by someone else with the
//! auditor or admin role, applied to runs started while they are in force, carried into scores
//! and attestations, every step in the audit log.

use rampart_access::Role;
use rampart_core::Status;
use reqwest::Method;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::harness::{Db, POLICY_V1, TestAgent, TestServer, submission};
use crate::server_test;

async fn send(
    s: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let r = s
        .http
        .request(method, s.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn waivers_are_governed_and_applied(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let olga = s.user_token("olga", Role::Operator).await;
    let audrey = s.user_token("audrey", Role::Auditor).await;
    let vic = s.user_token("vic", Role::Viewer).await;
    let (a, version) = s.agent_with_policy().await;
    let until = (OffsetDateTime::now_utc() + Duration::days(30))
        .date()
        .to_string();
    let request = json!({
        "check": "test-ssh:SSH-2",
        "scope": {"kind": "group", "name": "web"},
        "until": until,
        "justification": "password logins needed until the bastion migration",
    });

    // Bad requests are refused, each naming the field.
    for (bad, field) in [
        (
            json!({"check": "test-ssh:", "scope": {"kind": "fleet"}, "until": until, "justification": "x"}),
            "check",
        ),
        (
            json!({"check": "SSH-2", "scope": {"kind": "fleet"}, "until": "2020-01-01", "justification": "x"}),
            "until",
        ),
        (
            json!({"check": "SSH-2", "scope": {"kind": "fleet"}, "until": "2099-01-01", "justification": "x"}),
            "until",
        ),
        (
            json!({"check": "SSH-2", "scope": {"kind": "agent", "name": "nobody"}, "until": until, "justification": "x"}),
            "scope",
        ),
        (
            json!({"check": "SSH-2", "scope": {"kind": "fleet"}, "until": until, "justification": "  "}),
            "justification",
        ),
    ] {
        let (status, v) = send(&s, &olga, Method::POST, "/api/v1/waivers", bad).await;
        assert_eq!(
            (status, v["code"].as_str()),
            (422, Some("invalid_waiver")),
            "{v}"
        );
        assert!(
            v["detail"].as_str().unwrap().starts_with(field),
            "{field}: {v}"
        );
    }
    // A viewer may not ask.
    let (status, _) = send(&s, &vic, Method::POST, "/api/v1/waivers", request.clone()).await;
    assert_eq!(status, 403);

    let (status, w) = send(&s, &olga, Method::POST, "/api/v1/waivers", request.clone()).await;
    assert_eq!(status, 201, "{w}");
    assert_eq!(
        (w["state"].as_str(), w["requested_by"].as_str()),
        (Some("pending"), Some("olga"))
    );
    let id = w["id"].as_str().unwrap().to_owned();

    // Pending: a run is judged without it.
    let poster = a.poster(&s);
    let statuses = [("SSH-1", Status::Pass), ("SSH-2", Status::Fail)];
    let (status, r) = poster
        .post(&submission(
            "run-waiver-0001",
            version,
            &statuses,
            OffsetDateTime::now_utc(),
        ))
        .await;
    assert_eq!(status, 200, "{r}");
    let run = s.get("/api/v1/runs/run-waiver-0001").await;
    assert_eq!(run["summary"]["failed"], 1, "{run}");

    // The requester cannot approve it, not even as an admin would; a viewer cannot decide.
    let path = format!("/api/v1/waivers/{id}/approve");
    let (status, v) = send(&s, &olga, Method::POST, &path, json!({})).await;
    assert_eq!(status, 403, "{v}");
    let (status, _) = send(&s, &vic, Method::POST, &path, json!({})).await;
    assert_eq!(status, 403);
    let (status, v) = send(
        &s,
        &audrey,
        Method::POST,
        &path,
        json!({"note": "until 2027 Q1"}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["state"].as_str(), v["decided_by"].as_str()),
        (Some("approved"), Some("audrey"))
    );
    // Decided once.
    let (status, v) = send(
        &s,
        &s.admin_token,
        Method::POST,
        &format!("/api/v1/waivers/{id}/deny"),
        json!({}),
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("not_pending")),
        "{v}"
    );

    // A run started now: SSH-2 waived with the waiver's id, excluded from the score.
    let started = OffsetDateTime::now_utc() + Duration::seconds(1);
    let (status, r) = poster
        .post(&submission("run-waiver-0002", version, &statuses, started))
        .await;
    assert_eq!(status, 200, "{r}");
    let run = s.get("/api/v1/runs/run-waiver-0002").await;
    assert_eq!(
        (
            run["summary"]["failed"].as_u64(),
            run["summary"]["waived"].as_u64(),
            run["summary"]["score"].as_f64()
        ),
        (Some(0), Some(1), Some(100.0)),
        "{run}"
    );
    let ssh2 = run["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "SSH-2")
        .unwrap();
    assert_eq!(ssh2["status"], "waived");
    assert_eq!(ssh2["original_status"], "fail");
    assert_eq!(ssh2["waiver"]["id"], id.as_str());
    assert_eq!(ssh2["waiver"]["approver"], "audrey");
    assert_eq!(ssh2["waiver"]["expires"], until.as_str());
    // The attestation says so, and its bundle verifies with the waived evidence.
    let detail = s
        .attestation(&a.id, r["attestation"].as_str().unwrap())
        .await;
    let claims = &detail["claims"];
    assert_eq!(claims["result"]["status"], "compliant", "{claims}");
    assert_eq!(claims["waivers"][0]["id"], id.as_str());
    assert_eq!(claims["waivers"][0]["check"], "SSH-2");
    // The run posted before the approval keeps its failure.
    let run = s.get("/api/v1/runs/run-waiver-0001").await;
    assert_eq!(run["summary"]["failed"], 1);

    // Another group is not covered.
    let other = TestAgent::enrol(&s, &s.token("db", 1).await).await.unwrap();
    s.push_policy(POLICY_V1, "db", "0 */6 * * *").await;
    let (status, _) = other
        .poster(&s)
        .post(&submission("run-waiver-0003", version, &statuses, started))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        s.get("/api/v1/runs/run-waiver-0003").await["summary"]["failed"],
        1
    );

    // Listing and the audit trail.
    let list = s.get("/api/v1/waivers?state=approved").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let trail = s
        .get(&format!("/api/v1/audit/entries?target=waiver:{id}"))
        .await;
    let actions: Vec<&str> = trail["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["waiver.approve", "waiver.request"], "{trail}");
    assert_eq!(trail["entries"][0]["actor"], "audrey");
    assert_eq!(trail["entries"][0]["detail"]["note"], "until 2027 Q1");
    s.finish().await;
}
server_test!(waivers_are_governed_and_applied);
