use std::time::Duration;

use rampart_agent::AgentError;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::harness::{Db, POLICY_V1, TestAgent, TestServer};
use crate::server_test;

fn runs(v: &Value) -> Vec<Value> {
    v.as_array().unwrap().clone()
}

async fn enrol_scan_and_results_are_visible(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let a = TestAgent::enrol(&s, &s.token("web", 1).await)
        .await
        .unwrap();
    s.push_policy(POLICY_V1, "web", "0 */6 * * *").await;
    let status = a.run_once().await.unwrap();
    assert_eq!(status.state, "idle");
    assert_eq!(status.spooled_runs, 0, "delivered");
    assert_eq!(status.policies.len(), 1);
    assert!(status.policies[0].next_scan.is_some());

    let list = runs(&s.get(&format!("/api/v1/agents/{}/runs", a.id)).await);
    assert_eq!(list.len(), 1);
    let r = &list[0];
    assert_eq!(
        (
            r["policy_id"].as_str(),
            r["trigger"].as_str(),
            r["policy_version"].as_i64()
        ),
        (Some("test-ssh"), Some("policy_update"), Some(1))
    );
    assert_eq!(
        (
            r["summary"]["passed"].as_u64(),
            r["summary"]["failed"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(r["summary"]["score"].as_f64(), Some(50.0));

    // Evidence travels all the way: file, line and text of the matching line.
    let detail = s
        .get(&format!("/api/v1/runs/{}", r["id"].as_str().unwrap()))
        .await;
    let ssh1 = detail["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "SSH-1")
        .unwrap();
    assert_eq!(ssh1["status"], "pass");
    let obs = &ssh1["evidence"][0]["observations"][0];
    assert_eq!(
        (
            obs["target"].as_str(),
            obs["line"].as_u64(),
            obs["text"].as_str()
        ),
        (
            Some("/etc/ssh/sshd_config"),
            Some(1),
            Some("PermitRootLogin no")
        )
    );

    let latest = runs(&s.get(&format!("/api/v1/agents/{}/latest", a.id)).await);
    let states: Vec<(&str, &str)> = latest
        .iter()
        .map(|l| {
            (
                l["check_id"].as_str().unwrap(),
                l["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(states, [("SSH-1", "pass"), ("SSH-2", "fail")]);
    let score = runs(
        &s.get("/api/v1/policies/test-ssh/score?days=2&bucket=hour")
            .await,
    );
    assert_eq!((score.len(), score[0]["score"].as_f64()), (1, Some(50.0)));
    s.finish().await;
}
server_test!(enrol_scan_and_results_are_visible);

/// Pretends the agent's last scan of `test-ssh` was two hours ago, so an hourly schedule is due.
fn make_hourly_scan_due(a: &TestAgent) {
    let sched_path = a.state.root().join("schedule.json");
    let mut sched: Value = serde_json::from_slice(&std::fs::read(&sched_path).unwrap()).unwrap();
    sched["last"]["test-ssh"][1] = json!(OffsetDateTime::now_utc().unix_timestamp() - 7200);
    std::fs::write(&sched_path, serde_json::to_vec(&sched).unwrap()).unwrap();
}

/// Server down: the scheduled scan still runs and waits in the spool; back up: delivered once.
/// A result whose acknowledgement was lost (sent twice) is stored once.
async fn offline_results_are_spooled_and_delivered_exactly_once(db: Db) {
    let Some(mut s) = TestServer::start(db).await else {
        return;
    };
    let a = TestAgent::enrol(&s, &s.token("web", 1).await)
        .await
        .unwrap();
    s.push_policy(POLICY_V1, "web", "0 * * * *").await;
    a.run_once().await.unwrap();

    s.stop().await;
    make_hourly_scan_due(&a);
    match a.run_once().await {
        Err(e @ AgentError::Unreachable { .. }) => assert!(e.is_transient()),
        other => panic!("expected the server to be unreachable, got {other:?}"),
    }
    let st = rampart_agent::AgentStatusReport::load(&a.state).unwrap();
    assert_eq!((st.state.as_str(), st.spooled_runs), ("offline", 1));
    // The ack of this result is "lost": the same file is queued twice.
    let spool = a.spool();
    let entry = spool.entries().unwrap().remove(0);
    let dup = entry.with_file_name(format!(
        "00000000000000000001-dup-{}",
        entry.file_name().unwrap().to_str().unwrap()
    ));
    std::fs::copy(&entry, &dup).unwrap();

    s.restart().await;
    a.run_once().await.unwrap();
    assert!(a.spool().is_empty());
    let list = runs(&s.get(&format!("/api/v1/agents/{}/runs", a.id)).await);
    assert_eq!(
        list.len(),
        2,
        "first run + the spooled one, the duplicate not stored"
    );
    assert_eq!(list[0]["trigger"], "schedule");
    a.run_once().await.unwrap();
    assert_eq!(
        runs(&s.get(&format!("/api/v1/agents/{}/runs", a.id)).await).len(),
        2,
        "nothing resent"
    );
    s.finish().await;
}
server_test!(offline_results_are_spooled_and_delivered_exactly_once);

/// A revoked agent says it was revoked (status `revoked`, not `offline`), keeps what it had
/// spooled, and its loop stops instead of retrying as if the network were down.
async fn a_revoked_agent_says_so_keeps_its_spool_and_stops(db: Db) {
    let Some(mut s) = TestServer::start(db).await else {
        return;
    };
    let a = TestAgent::enrol(&s, &s.token("web", 1).await)
        .await
        .unwrap();
    s.push_policy(POLICY_V1, "web", "0 * * * *").await;
    a.run_once().await.unwrap();
    // A scan while the server is down waits in the spool.
    s.stop().await;
    make_hourly_scan_due(&a);
    assert!(matches!(
        a.run_once().await,
        Err(AgentError::Unreachable { .. })
    ));
    let spooled = a.spool().entries().unwrap();
    assert_eq!(spooled.len(), 1);
    s.restart().await;
    let (status, v) = s
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/agents/{}/revoke", a.id),
            Some(json!({"reason": "host decommissioned"})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let e = a.run_once().await.unwrap_err();
    assert!(matches!(e, AgentError::Revoked { .. }), "{e:?}");
    assert!(!e.is_transient());
    assert!(e.to_string().contains("re-enrolment token"), "{e}");
    let st = rampart_agent::AgentStatusReport::load(&a.state).unwrap();
    assert_eq!(st.state, "revoked");
    assert_eq!(st.spooled_runs, 1);
    assert_eq!(a.spool().entries().unwrap(), spooled, "the spool is kept");
    // The daemon loop returns the error at once rather than retrying every beat.
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let looped = tokio::time::timeout(
        Duration::from_secs(30),
        rampart_agent::run(&a.state, &a.opts, rx),
    )
    .await
    .expect("the loop stops on its own");
    assert!(
        matches!(looped, Err(AgentError::Revoked { .. })),
        "{looped:?}"
    );
    assert_eq!(a.spool().entries().unwrap(), spooled);
    s.finish().await;
}
server_test!(a_revoked_agent_says_so_keeps_its_spool_and_stops);

async fn scan_now_new_versions_history_and_diff(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let a = TestAgent::enrol(&s, &s.token("web", 1).await)
        .await
        .unwrap();
    s.push_policy(POLICY_V1, "web", "0 0 1 1 *").await;
    a.run_once().await.unwrap();
    a.run_once().await.unwrap();
    assert_eq!(
        runs(&s.get(&format!("/api/v1/agents/{}/runs", a.id)).await).len(),
        1,
        "yearly schedule: no second scan"
    );

    // Scan now, delivered with the next heartbeat.
    let (st, _) = s
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/agents/{}/scan", a.id),
            None,
        )
        .await;
    assert_eq!(st, 200);
    a.run_once().await.unwrap();
    let list = runs(&s.get(&format!("/api/v1/agents/{}/runs", a.id)).await);
    assert_eq!(
        (list.len(), list[0]["trigger"].as_str()),
        (2, Some("on_demand"))
    );

    // The host changes, and a new policy version arrives: picked up at the next heartbeat.
    std::fs::write(
        a.opts.scan_root.join("etc/ssh/sshd_config"),
        "PermitRootLogin yes\nPasswordAuthentication no\n",
    )
    .unwrap();
    let v2 = POLICY_V1.replace("Root login disabled", "Root login is disabled");
    assert_eq!(s.push_policy(&v2, "web", "0 0 1 1 *").await, 2);
    a.run_once().await.unwrap();
    let list = runs(&s.get(&format!("/api/v1/agents/{}/runs", a.id)).await);
    assert_eq!(
        (
            list.len(),
            list[0]["policy_version"].as_i64(),
            list[0]["trigger"].as_str()
        ),
        (3, Some(2), Some("policy_update"))
    );

    let (newest, oldest) = (
        list[0]["id"].as_str().unwrap(),
        list[2]["id"].as_str().unwrap(),
    );
    let d = s.get(&format!("/api/v1/runs/{oldest}/diff/{newest}")).await;
    let ids = |k: &str| {
        d[k].as_array()
            .unwrap()
            .iter()
            .map(|c| c["check_id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids("newly_failing"), ["SSH-1"]);
    assert_eq!(ids("newly_passing"), ["SSH-2"]);
    let middle = list[1]["id"].as_str().unwrap();
    let same = s.get(&format!("/api/v1/runs/{oldest}/diff/{middle}")).await;
    assert!(
        same["newly_failing"].as_array().unwrap().is_empty()
            && same["evidence_changed"].as_array().unwrap().is_empty()
    );

    // "When did SSH-1 start failing?"
    let h = s
        .get(&format!("/api/v1/agents/{}/checks/test-ssh/SSH-1", a.id))
        .await;
    let statuses: Vec<&str> = h["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pass", "pass", "fail"]);
    assert_eq!(h["current"]["status"], "fail");
    assert_eq!(h["current"]["since"], list[0]["started_at"]);
    s.finish().await;
}
server_test!(scan_now_new_versions_history_and_diff);

async fn renewal_and_expiry(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let a = TestAgent::enrol(&s, &s.token("web", 1).await)
        .await
        .unwrap();
    let before = s.get(&format!("/api/v1/agents/{}", a.id)).await["cert_serial"].clone();
    let old_key = std::fs::read_to_string(a.state.root().join("agent-key.pem")).unwrap();
    rampart_agent::renew_now(&a.state).await.unwrap();
    assert_ne!(
        std::fs::read_to_string(a.state.root().join("agent-key.pem")).unwrap(),
        old_key,
        "key rotated"
    );
    a.run_once()
        .await
        .expect("works with the renewed certificate");
    let after = s.get(&format!("/api/v1/agents/{}", a.id)).await;
    assert_ne!(after["cert_serial"], before);
    assert_eq!(after["certificates"].as_array().unwrap().len(), 2);

    // A certificate that expired while the host was off: a clear error with the way out.
    let (ca, _) = s.ca().await;
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let old = ca
        .issue_agent(
            &csr,
            &a.id,
            OffsetDateTime::now_utc() - time::Duration::days(3),
        )
        .unwrap();
    std::fs::write(a.state.root().join("agent-cert.pem"), old.chain_pem).unwrap();
    std::fs::write(a.state.root().join("agent-key.pem"), key.serialize_pem()).unwrap();
    let err = a.run_once().await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, AgentError::CertificateExpired { .. }),
        "{text}"
    );
    assert!(
        text.contains(&format!("rampart token create --agent {}", a.id))
            && text.contains("rampart agent enroll"),
        "{text}"
    );
    let st = rampart_agent::AgentStatusReport::load(&a.state).unwrap();
    assert_eq!(st.state, "certificate_expired");
    s.finish().await;
}
server_test!(renewal_and_expiry);

async fn agents_go_offline_after_missed_heartbeats(db: Db) {
    let Some(s) = TestServer::start_with(db, |c| {
        c.heartbeat = Duration::from_secs(1);
        c.offline_after_missed = 2;
    })
    .await
    else {
        return;
    };
    let a = TestAgent::enrol(&s, &s.token("web", 1).await)
        .await
        .unwrap();
    a.run_once().await.unwrap();
    let list = s.get("/api/v1/agents").await;
    assert_eq!(list[0]["connection"], "online");
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let list = s.get("/api/v1/agents?group=web").await;
    assert_eq!(list[0]["connection"], "offline");
    a.run_once().await.unwrap();
    assert_eq!(s.get("/api/v1/agents").await[0]["connection"], "online");
    assert!(
        s.get("/api/v1/agents?group=db")
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    s.finish().await;
}
server_test!(agents_go_offline_after_missed_heartbeats);

/// Automatic renewal: a certificate past about two thirds of its life is renewed by the next
/// pass of the loop, over mTLS, and an unchanged policy is not downloaded again.
async fn due_renewal_happens_in_the_loop(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let a = TestAgent::enrol(&s, &s.token("web", 1).await)
        .await
        .unwrap();
    s.push_policy(POLICY_V1, "web", "0 0 1 1 *").await;
    a.run_once().await.unwrap();
    let policy_file = std::fs::read_dir(a.state.root().join("policies"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "yml"))
        .unwrap();
    let fetched_at = std::fs::metadata(&policy_file).unwrap().modified().unwrap();

    // A certificate issued 17 h ago (renewal is due between 15.2 h and 17.2 h… so use 17.5 h).
    let (ca, _) = s.ca().await;
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let aged = ca
        .issue_agent(
            &csr,
            &a.id,
            OffsetDateTime::now_utc() - time::Duration::minutes(17 * 60 + 30),
        )
        .unwrap();
    std::fs::write(a.state.root().join("agent-cert.pem"), &aged.chain_pem).unwrap();
    std::fs::write(a.state.root().join("agent-key.pem"), key.serialize_pem()).unwrap();
    let st = a.run_once().await.unwrap();
    let chain = std::fs::read_to_string(a.state.root().join("agent-cert.pem")).unwrap();
    assert_ne!(chain, aged.chain_pem, "renewed");
    let not_after = OffsetDateTime::parse(
        st.certificate_not_after.as_deref().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        not_after - OffsetDateTime::now_utc() > time::Duration::hours(23),
        "a fresh 24 h certificate"
    );
    assert_eq!(
        std::fs::metadata(&policy_file).unwrap().modified().unwrap(),
        fetched_at,
        "same digest: not downloaded again"
    );
    s.finish().await;
}
server_test!(due_renewal_happens_in_the_loop);

/// The server trusts a run's content, not the agent's word for it: the results digest is
/// recomputed and a run claiming a policy version must have evaluated exactly that version.
async fn posted_runs_are_judged_by_their_content(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let a = TestAgent::enrol(&s, &s.token("web", 1).await)
        .await
        .unwrap();
    let version = s.push_policy(POLICY_V1, "web", "0 0 1 1 *").await;
    let poster = a.poster(&s);
    // A run as the agent would post it: version 1 of test-ssh, one check passing.
    let run = |run_id: &str| {
        super::harness::submission(
            run_id,
            version,
            &[("SSH-1", rampart_core::Status::Pass)],
            OffsetDateTime::now_utc(),
        )
    };
    let post = |sub: rampart_core::fleet::RunSubmission| {
        let poster = &poster;
        async move { poster.post(&sub).await }
    };
    // As it is: stored.
    let (status, v) = post(run("run-honest-0001")).await;
    assert_eq!(
        (status, v["outcome"].as_str()),
        (200, Some("stored")),
        "{v}"
    );
    // A status changed after the digest was computed: refused, and not stored.
    let mut forged = run("run-forged-0001");
    forged.report.policies[0].checks[0].status = rampart_core::Status::Fail;
    let (status, v) = post(forged).await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["code"], "results_digest_mismatch");
    // A digest that matches nothing.
    let mut forged = run("run-forged-0002");
    forged.report.results_digest = "00".repeat(32);
    let (status, v) = post(forged).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (422, Some("results_digest_mismatch"))
    );
    // Other content than the version it claims (its digest recomputed, so only the policy
    // check can tell).
    let mut other = run("run-forged-0003");
    other.report.policies[0].policy.sha256 = "ab".repeat(32);
    other.report.refresh();
    let (status, v) = post(other).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (422, Some("policy_mismatch")),
        "{v}"
    );
    // A version that does not exist.
    let mut missing = run("run-forged-0004");
    missing.policy_version = Some(version + 7);
    let (status, v) = post(missing).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (422, Some("policy_mismatch")),
        "{v}"
    );
    let list = runs(&s.get(&format!("/api/v1/agents/{}/runs", a.id)).await);
    assert_eq!(list.len(), 1, "only the honest run is stored");
    s.finish().await;
}
server_test!(posted_runs_are_judged_by_their_content);
