use std::collections::BTreeMap;

use rampart_agent::AgentError;
use rampart_pki::TokenSigner;
use time::{Duration, OffsetDateTime};

use super::harness::{Db, TestAgent, TestServer};
use crate::server_test;

fn refused_code(r: Result<TestAgent, AgentError>) -> String {
    match r {
        Err(AgentError::Refused { code, .. }) => code,
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(a) => panic!("expected a refusal, agent {} enrolled", a.id),
    }
}

async fn enrolment_and_token_refusals(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let token = s.token("web", 1).await;
    let a = TestAgent::enrol(&s, &token)
        .await
        .expect("first use enrols");
    let agent = s.get(&format!("/api/v1/agents/{}", a.id)).await;
    assert_eq!(agent["group"], "web");
    assert_eq!(agent["labels"]["env"], "test");
    assert_eq!(agent["hostname"], "web-01");
    assert_eq!(agent["connection"], "online");
    // 24 h certificate, backdated one minute.
    let cert = &agent["certificates"][0];
    let nb = OffsetDateTime::parse(
        cert["not_before"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let na = OffsetDateTime::parse(
        cert["not_after"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(na - nb, Duration::hours(24) + Duration::minutes(1));
    // The key never left the agent: only the agent's state dir holds it.
    let key = std::fs::read_to_string(a.state.root().join("agent-key.pem")).unwrap();
    assert!(key.contains("PRIVATE KEY"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(a.state.root().join("agent-key.pem"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // Replay of the single-use token.
    assert_eq!(
        refused_code(TestAgent::enrol(&s, &token).await),
        "token_already_used"
    );

    // Forged: signed by a key that is not this server's.
    let (ca, real) = s.ca().await;
    let (other, _) = TokenSigner::generate(b"x").unwrap();
    let aud = format!("{}/api/v1/enrol", s.api_url);
    let now = OffsetDateTime::now_utc();
    let labels = BTreeMap::new();
    let sha = ca.root_fingerprint();
    let (forged, _) = other
        .issue(
            &aud,
            "forged-jti",
            "web",
            &labels,
            &sha,
            None,
            now,
            Duration::minutes(5),
        )
        .unwrap();
    assert_eq!(
        refused_code(TestAgent::enrol(&s, &forged).await),
        "token_forged"
    );

    // Expired: the server's own key, but past expiry plus the one-minute leeway.
    let (expired, _) = real
        .issue(
            &aud,
            "old-jti",
            "web",
            &labels,
            &sha,
            None,
            now - Duration::minutes(10),
            Duration::minutes(5),
        )
        .unwrap();
    assert_eq!(
        refused_code(TestAgent::enrol(&s, &expired).await),
        "token_expired"
    );

    // Signed by this server but never recorded (e.g. minted with a stolen key backup).
    let (unknown, _) = real
        .issue(
            &aud,
            "never-issued",
            "web",
            &labels,
            &sha,
            None,
            now,
            Duration::minutes(5),
        )
        .unwrap();
    assert_eq!(
        refused_code(TestAgent::enrol(&s, &unknown).await),
        "token_unknown"
    );
    s.finish().await;
}
server_test!(enrolment_and_token_refusals);

async fn wrong_audience_and_wrong_root_are_refused(db: Db) {
    let Some(mut s) = TestServer::start(db).await else {
        return;
    };
    let token = s.token("web", 5).await;
    // The same server restarted under another public name: the token's audience no longer
    // matches; the agent, told to enrol there, refuses before sending anything.
    let old_url = s.api_url.clone();
    s.config.public_url = Some(old_url.replace("127.0.0.1", "localhost"));
    s.restart().await;
    s.api_url = s.config.public_url.clone().unwrap();
    match TestAgent::enrol(&s, &token).await {
        Err(AgentError::Token(rampart_pki::TokenError::WrongAudience { .. })) => {}
        other => panic!(
            "expected a wrong-audience refusal, got {:?}",
            other.map(|a| a.id)
        ),
    }
    // Sent anyway (bypassing the agent's check), the server refuses it with its own code.
    let resp = s
        .http
        .post(s.url("/api/v1/enrol"))
        .json(&serde_json::json!({"token": token, "csr_pem": "x", "hostname": "h", "os": "o", "arch": "a", "agent_version": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "token_wrong_audience", "{body}");
    assert_eq!(body["type"], "urn:rampart:problem:token_wrong_audience");
    s.finish().await;
}
server_test!(wrong_audience_and_wrong_root_are_refused);

async fn reenrolment_keeps_identity_and_history(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let token = s.token("web", 1).await;
    let a = TestAgent::enrol(&s, &token).await.unwrap();
    s.push_policy(super::harness::POLICY_V1, "web", "0 0 * * *")
        .await;
    a.run_once().await.unwrap();
    // The admin revokes it (say, the disk was imaged) and later lets it back with its identity.
    let (st, _) = s
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/agents/{}/revoke", a.id),
            Some(serde_json::json!({"reason": "disk imaged"})),
        )
        .await;
    assert_eq!(st, 200);
    let (st, v) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/tokens",
            Some(serde_json::json!({"group": "web", "agent_id": a.id})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let again = TestAgent::enrol(&s, v["token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(again.id, a.id, "same identity");
    let agent = s.get(&format!("/api/v1/agents/{}", a.id)).await;
    assert_eq!(agent["status"], "active");
    assert_eq!(agent["certificates"].as_array().unwrap().len(), 2);
    let runs = s.get(&format!("/api/v1/agents/{}/runs", a.id)).await;
    assert_eq!(runs.as_array().unwrap().len(), 1, "history kept");
    s.finish().await;
}
server_test!(reenrolment_keeps_identity_and_history);

/// `rampart ca rotate-intermediate`, then a restart: the agent keeps working with its old
/// certificate and renews onto the new intermediate, without re-enrolling.
async fn intermediate_rotation_needs_no_reenrolment(db: Db) {
    let Some(mut s) = TestServer::start(db).await else {
        return;
    };
    let a = TestAgent::enrol(&s, &s.token("web", 1).await)
        .await
        .unwrap();
    let old_chain = std::fs::read_to_string(a.state.root().join("agent-cert.pem")).unwrap();
    s.stop().await;
    let fp = rampart_server::rotate_intermediate(
        &s.config.data_dir,
        s.config.database_url.as_deref(),
        super::harness::PASSPHRASE,
    )
    .await
    .unwrap();
    s.restart().await;
    a.run_once().await.expect("old certificate still accepted");
    rampart_agent::renew_now(&a.state).await.unwrap();
    let new_chain = std::fs::read_to_string(a.state.root().join("agent-cert.pem")).unwrap();
    use rustls::pki_types::pem::PemObject;
    let certs = |pem: &str| {
        rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
            .map(|c| c.unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        rampart_pki::fingerprint(&certs(&new_chain)[1]),
        fp,
        "renewed under the new intermediate"
    );
    assert_ne!(certs(&old_chain)[1], certs(&new_chain)[1]);
    a.run_once().await.expect("new certificate accepted");
    // A wrong passphrase cannot rotate.
    assert!(
        rampart_server::rotate_intermediate(
            &s.config.data_dir,
            s.config.database_url.as_deref(),
            b"wrong"
        )
        .await
        .is_err()
    );
    s.finish().await;
}
server_test!(intermediate_rotation_needs_no_reenrolment);
