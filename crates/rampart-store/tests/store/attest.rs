use rampart_core::Status;
use rampart_store::{AttestationKey, Store, StoreError, StoredAttestation};
use time::{Duration, OffsetDateTime};

use super::harness::{enrolled, outcome, run, t0};
use crate::backend_test;

fn key(kid: &str, state: &str, at: OffsetDateTime) -> AttestationKey {
    AttestationKey {
        kid: kid.into(),
        alg: "EdDSA".into(),
        state: state.into(),
        public_jwk: format!("{{\"kid\":\"{kid}\"}}"),
        private_key: "encrypted".into(),
        created_at: at,
        activated_at: (state == "current").then_some(at),
        retired_at: None,
    }
}

async fn keys_are_created_once_and_rotate_next_to_current(store: &Store) {
    assert_eq!(store.current_attestation_kid().await.unwrap(), None);
    assert!(
        store
            .init_attestation_keys(&key("k1", "current", t0()), &key("k2", "next", t0()))
            .await
            .unwrap()
    );
    // A second replica starting at once: its keys are not stored.
    assert!(
        !store
            .init_attestation_keys(&key("x1", "current", t0()), &key("x2", "next", t0()))
            .await
            .unwrap()
    );
    assert_eq!(
        store.current_attestation_kid().await.unwrap().as_deref(),
        Some("k1")
    );

    // The next key was published at t0: a rotation that wants it older than that is refused.
    let later = t0() + Duration::hours(1);
    let err = store
        .rotate_attestation_keys(
            &key("k3", "next", later),
            later,
            Some(t0() - Duration::minutes(10)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(
        store.current_attestation_kid().await.unwrap().as_deref(),
        Some("k1")
    );

    let r = store
        .rotate_attestation_keys(
            &key("k3", "next", later),
            later,
            Some(later - Duration::minutes(10)),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.retired.as_deref(), r.current.as_str(), r.next.as_str()),
        (Some("k1"), "k2", "k3")
    );
    let keys = store.attestation_keys().await.unwrap();
    let state = |kid: &str| keys.iter().find(|k| k.kid == kid).unwrap().clone();
    assert_eq!(state("k1").state, "retired");
    assert_eq!(state("k1").retired_at, Some(later));
    assert_eq!(state("k2").state, "current");
    assert_eq!(state("k2").activated_at, Some(later));
    assert_eq!(state("k3").state, "next");
    assert_eq!(
        store
            .attestation_key("k2")
            .await
            .unwrap()
            .unwrap()
            .public_jwk,
        "{\"kid\":\"k2\"}"
    );
    // A second rotation at once promotes k3 (no age asked) and keeps one current, one next.
    store
        .rotate_attestation_keys(&key("k4", "next", later), later, None)
        .await
        .unwrap();
    let live: Vec<_> = store
        .attestation_keys()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.state != "retired")
        .map(|k| (k.kid, k.state))
        .collect();
    assert_eq!(live.len(), 2);
    assert!(
        live.contains(&("k3".into(), "current".into()))
            && live.contains(&("k4".into(), "next".into()))
    );
}
backend_test!(keys_are_created_once_and_rotate_next_to_current);

fn attestation(
    jti: &str,
    run_id: &str,
    policy: &str,
    started: OffsetDateTime,
    index: u64,
) -> StoredAttestation {
    StoredAttestation {
        jti: jti.into(),
        run_id: run_id.into(),
        agent_id: "a1".into(),
        policy_id: policy.into(),
        kid: "k1".into(),
        status: "noncompliant".into(),
        score: 50.0,
        started_at: started,
        issued_at: started + Duration::minutes(1),
        expires_at: started + Duration::hours(24),
        log_index: index,
        jws: format!("jws-{jti}"),
        stale: false,
    }
}

/// Agent a1 enrolled and the first key set (k1 current, k2 next): what issuing needs.
async fn issuer_with_agent(store: &Store) {
    enrolled(store, "a1", "web").await;
    store
        .init_attestation_keys(&key("k1", "current", t0()), &key("k2", "next", t0()))
        .await
        .unwrap();
}

/// A batch as the issuer stores it: one attestation per run, whether the other was stored
/// before or is earlier in the same batch; the rest of the batch is stored.
async fn a_batch_stores_one_attestation_per_run(store: &Store) {
    issuer_with_agent(store).await;
    assert!(
        store
            .insert_attestation(&attestation("j1", "r1", "p", t0(), 1))
            .await
            .unwrap()
    );
    let batch = [
        attestation("j2", "r2", "p", t0(), 2),
        attestation("j1b", "r1", "p", t0(), 3),
        attestation("j3", "r3", "q", t0(), 4),
        attestation("j2b", "r2", "p", t0(), 5),
    ];
    assert_eq!(
        store.insert_attestations(&batch).await.unwrap(),
        [true, false, true, false]
    );
    for (run, jti, index) in [("r1", "j1", 1), ("r2", "j2", 2), ("r3", "j3", 4)] {
        let a = store.run_attestation(run).await.unwrap().unwrap();
        assert_eq!((a.jti.as_str(), a.log_index), (jti, index));
    }
    assert_eq!(store.attestation("j1b").await.unwrap(), None);
    assert_eq!(store.attestation("j2b").await.unwrap(), None);
}
backend_test!(a_batch_stores_one_attestation_per_run);

/// The issuer's batch: its audit entries, a checkpoint covering them and the attestations that
/// name them in one transaction, each entry also an event of the stream naming the agent as
/// stored; a run that has an attestation keeps it. A batch whose signing fails leaves no
/// entry, checkpoint, event or row behind.
async fn a_batch_is_issued_with_its_log_entries(store: &Store) {
    issuer_with_agent(store).await;
    let log = rampart_audit::LogKey::from_seed("rampart.audit/test", [3; 32]).unwrap();
    assert!(
        store
            .insert_attestation(&attestation("j0", "r0", "p", t0(), 0))
            .await
            .unwrap()
    );
    let issue = |run: &str| {
        rampart_audit::Event::new(
            "system",
            "attestation.issue",
            "agent:a1",
            rampart_audit::Outcome::Success,
        )
        .detail("run", run)
        .detail("policy", "p")
        .detail("status", "noncompliant")
    };
    let events_before = store.latest_event_seq().await.unwrap();
    let runs = ["r1", "r0", "r2"];
    let events: Vec<_> = runs.iter().map(|r| issue(r)).collect();
    let mut covered = None;
    let stored = store
        .record_attestations(&events, &log, t0(), |first, checkpoint| {
            covered = Some((first, checkpoint.clone()));
            Ok((first..)
                .zip(runs)
                .map(|(index, run)| attestation(&format!("j-{run}"), run, "p", t0(), index))
                .collect())
        })
        .await
        .unwrap();
    assert_eq!(stored, [true, false, true]);
    let (first, checkpoint) = covered.unwrap();
    assert_eq!((first, checkpoint.size), (0, 3));
    let opened = rampart_audit::LogVerifier::new(log.vkey())
        .unwrap()
        .open(&checkpoint.note)
        .unwrap();
    assert_eq!(opened.root, store.audit_root(3).await.unwrap());
    assert_eq!(
        store.audit_latest_checkpoint().await.unwrap(),
        Some(checkpoint)
    );
    for (index, run) in (0..).zip(runs) {
        let body = store.audit_entry(index).await.unwrap().unwrap().body;
        assert!(body.contains(&format!("\"run\":\"{run}\"")), "{body}");
    }
    // r0 kept its earlier attestation; the other two name their entries.
    let log_index = |jti: &'static str| async move {
        store
            .attestation(jti)
            .await
            .unwrap()
            .map(|a| (a.run_id, a.log_index))
    };
    assert_eq!(log_index("j-r1").await, Some(("r1".into(), 0)));
    assert_eq!(log_index("j-r0").await, None);
    assert_eq!(log_index("j0").await, Some(("r0".into(), 0)));
    assert_eq!(log_index("j-r2").await, Some(("r2".into(), 2)));
    let stream = store.events_after(events_before, 10).await.unwrap();
    assert_eq!(stream.len(), 3);
    for e in &stream {
        assert_eq!(
            (e.kind.as_str(), e.group.as_deref()),
            ("attestation.issued", Some("web"))
        );
        assert!(e.body.contains("host-a1"), "{}", e.body);
    }

    // The key cannot sign: the transaction is rolled back whole.
    let seq = store.latest_event_seq().await.unwrap();
    let err = store
        .record_attestations(&[issue("r3")], &log, t0(), |_, _| {
            Err("the signing key is unavailable".into())
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Attest(_)), "{err}");
    assert!(
        err.to_string().contains("the signing key is unavailable"),
        "{err}"
    );
    assert_eq!(store.audit_size().await.unwrap(), 3);
    assert_eq!(
        store.audit_latest_checkpoint().await.unwrap().unwrap().size,
        3
    );
    assert_eq!(store.latest_event_seq().await.unwrap(), seq);
    assert_eq!(store.run_attestation("r3").await.unwrap(), None);
}
backend_test!(a_batch_is_issued_with_its_log_entries);

async fn a_later_run_makes_the_earlier_attestation_stale(store: &Store) {
    issuer_with_agent(store).await;
    assert!(
        store
            .insert_attestation(&attestation("j1", "r1", "p", t0(), 7))
            .await
            .unwrap()
    );
    // One attestation per run: a retried post racing the original stores nothing.
    assert!(
        !store
            .insert_attestation(&attestation("j1b", "r1", "p", t0(), 8))
            .await
            .unwrap()
    );
    assert!(!store.attestation("j1").await.unwrap().unwrap().stale);
    // Another policy's run does not make it stale; a later run of the same policy does, and a
    // spooled older run delivered late is stale from the start.
    store
        .insert_attestation(&attestation("j2", "r2", "q", t0() + Duration::hours(1), 9))
        .await
        .unwrap();
    assert!(!store.attestation("j1").await.unwrap().unwrap().stale);
    store
        .insert_attestation(&attestation("j3", "r3", "p", t0() + Duration::hours(2), 10))
        .await
        .unwrap();
    store
        .insert_attestation(&attestation("j4", "r4", "p", t0() - Duration::hours(2), 11))
        .await
        .unwrap();
    let all = store.agent_attestations("a1", Some("p"), 10).await.unwrap();
    let seen: Vec<_> = all.iter().map(|a| (a.jti.as_str(), a.stale)).collect();
    assert_eq!(seen, [("j3", false), ("j1", true), ("j4", true)]);
    let one = store.run_attestation("r1").await.unwrap().unwrap();
    assert_eq!(
        (one.jti.as_str(), one.log_index, one.jws.as_str()),
        ("j1", 7, "jws-j1")
    );
    assert_eq!(
        store
            .agent_attestations("a1", None, 10)
            .await
            .unwrap()
            .len(),
        4
    );
    assert!(store.attestation("nope").await.unwrap().is_none());
}
backend_test!(a_later_run_makes_the_earlier_attestation_stale);

async fn run_evidence_is_the_stored_text_in_check_order(store: &Store) {
    enrolled(store, "a1", "web").await;
    let checks = vec![
        outcome("10", Status::Pass),
        outcome("9", Status::Fail),
        outcome("100", Status::NotApplicable),
    ];
    store
        .ingest_runs(&[run("r1", "a1", t0(), checks.clone())])
        .await
        .unwrap();
    let e = store.run_evidence("r1").await.unwrap().unwrap();
    assert_eq!(
        (e.run_id.as_str(), e.agent_id.as_str(), e.policy_id.as_str()),
        ("r1", "a1", "baseline")
    );
    assert_eq!(e.generator, "rampart 0.1.0");
    assert_eq!(e.started_at, t0().unix_timestamp());
    // Natural order, and each text exactly what serde wrote at ingestion.
    let expected: Vec<String> = [&checks[1], &checks[0], &checks[2]]
        .iter()
        .map(|c| serde_json::to_string(c).unwrap())
        .collect();
    assert_eq!(e.checks, expected);
    assert_eq!(e.warnings, "[\"a warning\"]");
    assert_eq!(
        (e.cert_sha256.as_str(), e.cert_not_after),
        (&*"ee".repeat(32), t0() + Duration::hours(24))
    );
    assert!(store.run_evidence("nope").await.unwrap().is_none());

    // Without an attestation it is found by the sweep (received at t0 + 3 s), within the
    // window only; with one, no longer.
    let (from, to) = (t0(), t0() + Duration::minutes(1));
    assert_eq!(store.unattested_runs(from, to, 10).await.unwrap(), ["r1"]);
    assert!(
        store
            .unattested_runs(to, to + Duration::hours(1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .init_attestation_keys(&key("k1", "current", t0()), &key("k2", "next", t0()))
        .await
        .unwrap();
    store
        .insert_attestation(&attestation("j1", "r1", "baseline", t0(), 1))
        .await
        .unwrap();
    assert!(
        store
            .unattested_runs(from, to, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
backend_test!(run_evidence_is_the_stored_text_in_check_order);
