//! Attestations end to end: issued when a run is stored, listed with their staleness, bundled,
//! verified offline against the pinned audit-log key, keys rotated.

use base64::Engine as _;
use rampart_attest::{Bundle, ComplianceStatus};
use rampart_audit::LogVerifier;
use rampart_core::Status;
use serde_json::Value;
use sha2::Digest as _;
use time::{Duration, OffsetDateTime};

use super::harness::{Db, POLICY_V1, TestServer, submission};
use crate::server_test;

/// The pinned log key, as an auditor would have fetched it once.
async fn log_verifier(s: &TestServer) -> LogVerifier {
    let key = s.get("/api/v1/audit/key").await;
    LogVerifier::new(key["vkey"].as_str().unwrap()).unwrap()
}

/// The JWKS as any relying party fetches it (no credential), and the kids it lists.
async fn jwks_kids(s: &TestServer) -> (Value, Vec<String>) {
    let jwks = s.get_public("/.well-known/jwks.json").await;
    let kids = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    (jwks, kids)
}

async fn bundle(s: &TestServer, agent: &str, jti: &str) -> Bundle {
    let r = s
        .get_response(&format!("/api/v1/agents/{agent}/attestations/{jti}/bundle"))
        .await;
    assert_eq!(r.status(), 200);
    // Through its text, as the auditor receives the file.
    Bundle::parse(&r.text().await.unwrap()).unwrap()
}

async fn attestations_are_issued_for_each_run_and_verify_offline(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    // Every six hours: attestations last about twelve.
    let (a, version) = s.agent_with_policy().await;
    let poster = a.poster(&s);
    let t = OffsetDateTime::now_utc() - Duration::minutes(5);
    let first = submission(
        "run-attest-0001",
        version,
        &[("SSH-1", Status::Pass), ("SSH-2", Status::Fail)],
        t,
    );
    let (status, receipt) = poster.post(&first).await;
    assert_eq!(status, 200, "{receipt}");
    let jti = receipt["attestation"].as_str().unwrap().to_owned();

    let detail = s.attestation(&a.id, &jti).await;
    assert_eq!(detail["alg"], "EdDSA");
    assert_eq!(detail["stale"], false);
    let claims = &detail["claims"];
    assert_eq!(claims["sub"], a.id.as_str());
    assert_eq!(claims["iss"], s.api_url.as_str());
    assert_eq!(claims["eat_profile"], "urn:rampart:compliance:v1");
    assert_eq!(claims["policy"]["id"], "test-ssh");
    assert_eq!(claims["policy"]["version"], version);
    assert_eq!(
        claims["policy"]["sha256"],
        rampart_core::digest::sha256_hex(POLICY_V1.as_bytes())
    );
    // One of two checks failed: noncompliant, 50.
    assert_eq!(claims["result"]["status"], "noncompliant");
    assert_eq!(claims["result"]["score"], 50.0);
    assert_eq!(
        claims["result"]["failed_checks"],
        serde_json::json!(["SSH-2"])
    );
    assert_eq!(claims["host"]["hostname"], "web-01");
    assert_eq!(claims["scan"]["run_id"], "run-attest-0001");
    assert_eq!(claims["scan"]["started_at"], t.unix_timestamp());
    // Bound to the certificate the run was posted with.
    let thumbprint = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(&poster.cert_der));
    assert_eq!(claims["cnf"]["x5t#S256"], thumbprint.as_str());
    // Twice the six-hour interval, and never past the 24-hour certificate plus an hour.
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 12 * 3600, "{claims}");
    assert_eq!(claims["nbf"], iat);

    // The bundle verifies offline against the pinned log key alone.
    let verifier = log_verifier(&s).await;
    let b = bundle(&s, &a.id, &jti).await;
    let v = b.verify(&verifier).unwrap();
    assert!(v.evidence_checked);
    assert_eq!(v.claims.jti, jti);
    assert_eq!(v.claims.result.status, ComplianceStatus::Noncompliant);
    assert_eq!(v.claims.log.index, detail["log_index"].as_u64().unwrap());
    // The evidence is the stored run, check by check.
    let evidence =
        rampart_attest::evidence::Evidence::parse(b.evidence.as_deref().unwrap()).unwrap();
    let stored = s.get("/api/v1/runs/run-attest-0001").await;
    assert_eq!(
        serde_json::to_value(&evidence.checks).unwrap(),
        stored["checks"],
    );
    // The issue is in the audit log under the claimed index.
    let entry = s
        .get(&format!("/api/v1/audit/entries/{}", v.claims.log.index))
        .await;
    assert_eq!(entry["entry"]["action"], "attestation.issue", "{entry}");
    assert_eq!(entry["entry"]["detail"]["jti"], jti.as_str());

    // A resend is the same attestation, not a second one.
    let (status, again) = poster.post(&first).await;
    assert_eq!(
        (status, again["outcome"].as_str()),
        (200, Some("duplicate"))
    );
    assert_eq!(again["attestation"], jti.as_str());

    // A later run makes the first stale; a spooled earlier run delivered late is stale at once.
    let second = submission(
        "run-attest-0002",
        version,
        &[("SSH-1", Status::Pass), ("SSH-2", Status::Pass)],
        t + Duration::minutes(1),
    );
    let (_, r2) = poster.post(&second).await;
    let late = submission(
        "run-attest-0000",
        version,
        &[("SSH-1", Status::Fail), ("SSH-2", Status::Fail)],
        t - Duration::hours(1),
    );
    let (_, r0) = poster.post(&late).await;
    for r in [&r2, &r0] {
        s.attestation(&a.id, r["attestation"].as_str().unwrap())
            .await;
    }
    let list = s
        .get(&format!(
            "/api/v1/agents/{}/attestations?policy=test-ssh",
            a.id
        ))
        .await;
    let seen: Vec<(String, bool, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["jti"].as_str().unwrap().to_owned(),
                x["stale"].as_bool().unwrap(),
                x["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                r2["attestation"].as_str().unwrap().to_owned(),
                false,
                "compliant".to_owned()
            ),
            (jti.clone(), true, "noncompliant".to_owned()),
            (
                r0["attestation"].as_str().unwrap().to_owned(),
                true,
                "noncompliant".to_owned()
            ),
        ]
    );
    // Stale or not, what was signed still verifies.
    bundle(&s, &a.id, &jti).await.verify(&verifier).unwrap();

    // Another agent's path does not reach it.
    let (status, _) = s
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/agents/other/attestations/{jti}"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    s.finish().await;
}
server_test!(attestations_are_issued_for_each_run_and_verify_offline);

/// Runs posted at once are attested in batches whose audit entries share a checkpoint (its
/// signature checked once per batch): every attestation still claims its own index, and its
/// bundle verifies offline against the pinned log key.
async fn attestations_issued_together_each_verify_with_their_own_index(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let (a, version) = s.agent_with_policy().await;
    let poster = a.poster(&s);
    let t = OffsetDateTime::now_utc() - Duration::minutes(5);
    let subs: Vec<_> = (0..12)
        .map(|n| {
            submission(
                &format!("run-together-{n:02}"),
                version,
                &[("SSH-1", Status::Pass), ("SSH-2", Status::Fail)],
                t + Duration::seconds(n),
            )
        })
        .collect();
    let receipts = futures_util::future::join_all(subs.iter().map(|sub| poster.post(sub))).await;
    let verifier = log_verifier(&s).await;
    let mut indexes = Vec::new();
    for (n, (status, receipt)) in receipts.iter().enumerate() {
        assert_eq!(*status, 200, "{receipt}");
        let jti = receipt["attestation"].as_str().unwrap();
        let detail = s.attestation(&a.id, jti).await;
        let v = bundle(&s, &a.id, jti).await.verify(&verifier).unwrap();
        assert_eq!(v.claims.jti, jti);
        assert_eq!(v.claims.scan.run_id, format!("run-together-{n:02}"));
        assert_eq!(v.claims.log.index, detail["log_index"].as_u64().unwrap());
        let entry = s
            .get(&format!("/api/v1/audit/entries/{}", v.claims.log.index))
            .await;
        assert_eq!(entry["entry"]["detail"]["jti"], jti, "{entry}");
        indexes.push(v.claims.log.index);
    }
    indexes.sort_unstable();
    indexes.dedup();
    assert_eq!(
        indexes.len(),
        12,
        "each attestation has an index of its own"
    );
}

server_test!(attestations_issued_together_each_verify_with_their_own_index);

/// Runs posted one after another, each acknowledged before the next is sent, are attested in
/// one batch when they arrive within the issuer's window: one transaction, one checkpoint
/// covering all their entries (with no window, each run's attestation was signed as soon as
/// its draft was queued, before the next run arrived).
async fn runs_posted_within_the_window_are_attested_in_one_batch(db: Db) {
    let Some(s) = TestServer::start_with(db, |c| {
        c.attestation_window = std::time::Duration::from_secs(5);
    })
    .await
    else {
        return;
    };
    let (a, version) = s.agent_with_policy().await;
    let poster = a.poster(&s);
    let t = OffsetDateTime::now_utc() - Duration::minutes(5);
    let mut jtis = Vec::new();
    for n in 0..3 {
        let sub = submission(
            &format!("run-window-{n:02}"),
            version,
            &[("SSH-1", Status::Pass), ("SSH-2", Status::Fail)],
            t + Duration::seconds(n),
        );
        let (status, receipt) = poster.post(&sub).await;
        assert_eq!(status, 200, "{receipt}");
        jtis.push(receipt["attestation"].as_str().unwrap().to_owned());
    }
    let verifier = log_verifier(&s).await;
    let mut logs = Vec::new();
    for jti in &jtis {
        s.attestation(&a.id, jti).await;
        let v = bundle(&s, &a.id, jti).await.verify(&verifier).unwrap();
        logs.push((v.claims.log.index, v.claims.log.checkpoint_size));
    }
    let size = logs[0].1;
    assert!(
        logs.iter().all(|&(index, at)| at == size && index < size),
        "one checkpoint covers the three: {logs:?}"
    );
    let mut indexes: Vec<u64> = logs.iter().map(|l| l.0).collect();
    indexes.sort_unstable();
    indexes.dedup();
    assert_eq!(indexes.len(), 3, "{logs:?}");
    s.finish().await;
}
server_test!(runs_posted_within_the_window_are_attested_in_one_batch);

async fn keys_rotate_with_the_next_key_published_first(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let (a, version) = s.agent_with_policy().await;
    let poster = a.poster(&s);
    let now = OffsetDateTime::now_utc();
    let (_, r1) = poster
        .post(&submission(
            "run-rotate-0001",
            version,
            &[("SSH-1", Status::Pass)],
            now,
        ))
        .await;
    let old = r1["attestation"].as_str().unwrap().to_owned();
    s.attestation(&a.id, &old).await;

    let keys = s.get("/api/v1/attestation-keys").await;
    let kid = |state: &str, keys: &Value| -> String {
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["state"] == state)
            .unwrap()["kid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (current, next) = (kid("current", &keys), kid("next", &keys));
    // The JWKS publishes both before any rotation, without authentication.
    let (jwks, published) = jwks_kids(&s).await;
    assert!(
        published.contains(&current) && published.contains(&next),
        "{jwks}"
    );
    for k in jwks["keys"].as_array().unwrap() {
        assert_eq!(
            (k["use"].as_str(), k["alg"].as_str(), k["kty"].as_str()),
            (Some("sig"), Some("EdDSA"), Some("OKP"))
        );
        assert!(k.get("d").is_none(), "no private member: {k}");
    }

    // The next key was published just now: refused without force.
    let (status, v) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/attestation-keys/rotate",
            None,
        )
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("next_key_too_new")),
        "{v}"
    );
    let (status, v) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/attestation-keys/rotate?force=true",
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["retired"].as_str(), v["current"].as_str()),
        (Some(current.as_str()), Some(next.as_str()))
    );
    let newest = v["next"].as_str().unwrap().to_owned();

    // Retired, current and next are all published; new attestations use the promoted key.
    let (jwks, published) = jwks_kids(&s).await;
    for k in [&current, &next, &newest] {
        assert!(published.contains(k), "{k} in {jwks}");
    }
    let (_, r2) = poster
        .post(&submission(
            "run-rotate-0002",
            version,
            &[("SSH-1", Status::Pass)],
            now + Duration::minutes(1),
        ))
        .await;
    let fresh = s
        .attestation(&a.id, r2["attestation"].as_str().unwrap())
        .await;
    assert_eq!(fresh["kid"], next.as_str());

    // Signed before the rotation by the now retired key: still verifies.
    let verifier = log_verifier(&s).await;
    let b = bundle(&s, &a.id, &old).await;
    assert_eq!(b.verify(&verifier).unwrap().kid, current);

    // Every key event is in the audit log.
    let created = s
        .get("/api/v1/audit/entries?action=attestation.key.create")
        .await;
    assert_eq!(created["entries"].as_array().unwrap().len(), 2, "{created}");
    let rotated = s
        .get("/api/v1/audit/entries?action=attestation.key.rotate")
        .await;
    let e = &rotated["entries"][0];
    assert_eq!(e["detail"]["retired"], current.as_str(), "{rotated}");
    assert_eq!(e["detail"]["current"], next.as_str());
    assert_eq!(e["detail"]["next"], newest.as_str());
    assert_eq!(e["detail"]["force"], "true");
    s.finish().await;
}
server_test!(keys_rotate_with_the_next_key_published_first);

/// The JOSE libraries' virtual environment (scripts/setup-test-deps.sh).
const JOSE_PYTHON: &str = "/opt/rampart-test/jose/bin/python";

/// Runs tests/attest/verify_jose.py: (exit status, output lines).
fn jose_verify(dir: &std::path::Path, jwks: &str, jws: &str, alg: &str) -> (bool, Vec<String>) {
    assert!(
        std::path::Path::new(JOSE_PYTHON).exists(),
        "{JOSE_PYTHON} is missing: run scripts/setup-test-deps.sh"
    );
    std::fs::write(dir.join("jwks.json"), jwks).unwrap();
    std::fs::write(dir.join("attestation.jws"), jws).unwrap();
    let out = std::process::Command::new(JOSE_PYTHON)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/attest/verify_jose.py"
        ))
        .arg(dir.join("jwks.json"))
        .arg(dir.join("attestation.jws"))
        .arg(alg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success(),
        text.lines().map(str::to_owned).collect(),
    )
}

/// PyJWT and jwcrypto verify attestations of every algorithm from the JWKS document alone, and
/// refuse one whose claims were edited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyjwt_and_jwcrypto_verify_from_the_jwks_alone() {
    super::harness::bounded(async {
        let dir = tempfile::tempdir().unwrap();
        for alg in rampart_attest::Alg::ALL {
            let s = TestServer::start_with(Db::Sqlite, |c| c.attestation_alg = alg)
                .await
                .unwrap();
            let (a, version) = s.agent_with_policy().await;
            let (status, receipt) = a
                .poster(&s)
                .post(&submission(
                    "run-jose-0001",
                    version,
                    &[("SSH-1", Status::Pass), ("SSH-2", Status::Fail)],
                    OffsetDateTime::now_utc(),
                ))
                .await;
            assert_eq!(status, 200, "{receipt}");
            let jti = receipt["attestation"].as_str().unwrap();
            let detail = s.attestation(&a.id, jti).await;
            let (jws, kid) = (
                detail["jws"].as_str().unwrap(),
                detail["kid"].as_str().unwrap(),
            );
            // The document as any relying party fetches it: no credential.
            let jwks = s
                .http
                .get(s.url("/.well-known/jwks.json"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let (ok, lines) = jose_verify(dir.path(), &jwks, jws, alg.as_str());
            assert!(ok, "{alg}: {lines:?}");
            for lib in ["pyjwt", "jwcrypto"] {
                let expected = format!("{lib} ok {jti} {kid} rampart-compliance+jwt");
                assert!(
                    lines.contains(&expected),
                    "{alg}: {expected:?} in {lines:?}"
                );
            }

            // The score raised after signing: both refuse.
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let parts: Vec<&str> = jws.split('.').collect();
            let mut payload: Value =
                serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
            payload["result"]["score"] = 100.0.into();
            let forged = format!(
                "{}.{}.{}",
                parts[0],
                b64.encode(serde_json::to_vec(&payload).unwrap()),
                parts[2]
            );
            let (ok, lines) = jose_verify(dir.path(), &jwks, &forged, alg.as_str());
            assert!(!ok, "{alg}: a forged attestation verified: {lines:?}");
            assert!(
                lines.iter().all(|l| l.contains("refused")) && lines.len() == 2,
                "{alg}: {lines:?}"
            );
            s.finish().await;
        }
    })
    .await;
}

/// A run stored but never attested (the server stopped between the two): the sweep issues its
/// attestation from the stored run, bound to the certificate it was posted with.
async fn a_lost_attestation_is_issued_by_the_sweep(db: Db) {
    let Some(s) = TestServer::start_with(db, |c| {
        c.attestation_sweep = std::time::Duration::from_millis(500);
    })
    .await
    else {
        return;
    };
    let (a, version) = s.agent_with_policy().await;
    let sub = submission(
        "run-lost-0001",
        version,
        &[("SSH-1", Status::Pass), ("SSH-2", Status::Fail)],
        OffsetDateTime::now_utc() - Duration::minutes(5),
    );
    // Stored as the handler stores it, two minutes ago, with no attestation queued.
    let policy = &sub.report.policies[0];
    let mut summary = rampart_core::Summary::default();
    for c in &policy.checks {
        summary.add(c.status);
    }
    summary.finish();
    let cert = a.poster(&s).cert_der;
    let run = rampart_store::NewRun {
        id: sub.run_id.clone(),
        agent_id: a.id.clone(),
        policy_id: policy.policy.id.clone(),
        policy_version: sub.policy_version,
        policy_digest: sub.policy_digest.clone(),
        trigger: sub.trigger.clone(),
        started_at: sub.report.started_at,
        finished_at: sub.report.finished_at,
        received_at: OffsetDateTime::now_utc() - Duration::minutes(2),
        summary,
        results_digest: sub.report.results_digest.clone(),
        host: sub.report.host.clone(),
        warnings: Vec::new(),
        generator: sub.report.generator.clone(),
        check_texts: rampart_store::outcome_texts(&policy.checks).unwrap(),
        checks: policy.checks.clone(),
        cert_sha256: hex::encode(sha2::Sha256::digest(&cert)),
        cert_not_after: OffsetDateTime::now_utc() + Duration::hours(20),
    };
    let store = s.store().await;
    store.ingest_runs(&[run]).await.unwrap();
    let started = std::time::Instant::now();
    let list = loop {
        let list = s
            .get(&format!("/api/v1/agents/{}/attestations", a.id))
            .await;
        if !list.as_array().unwrap().is_empty() {
            break list;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "never issued"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(list[0]["run_id"], "run-lost-0001");
    let jti = list[0]["jti"].as_str().unwrap();
    let b = bundle(&s, &a.id, jti).await;
    let v = b.verify(&log_verifier(&s).await).unwrap();
    assert!(v.evidence_checked);
    let thumbprint =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&cert));
    assert_eq!(v.claims.cnf.x5t_s256, thumbprint);
    assert_eq!(v.claims.result.failed_checks, ["SSH-2"]);
    s.finish().await;
}
server_test!(a_lost_attestation_is_issued_by_the_sweep);
