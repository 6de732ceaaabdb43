use std::collections::BTreeMap;

use rampart_store::{AgentStatus, CaMaterial, Store, StoreError};
use time::Duration;

use super::harness::{agent, cert, enrolled, t0};
use crate::backend_test;

async fn enrol_and_reenrol_keep_identity(store: &Store) {
    let a = store
        .enrol_agent(&agent("a1", "web"), &cert("01", "a1", t0()), t0())
        .await
        .unwrap();
    assert_eq!(a.status, AgentStatus::Active);
    assert_eq!(a.cert_serial, "01");
    assert_eq!(a.labels["env"], "prod");
    assert_eq!(a.enrolled_at, t0());

    store
        .revoke_agent("a1", "laptop stolen", t0())
        .await
        .unwrap();
    // Re-enrolment with a new certificate: same id, first enrolment time kept, active again.
    let later = t0() + Duration::days(3);
    let mut again = agent("a1", "db");
    again.hostname = "renamed".into();
    let a = store
        .enrol_agent(&again, &cert("02", "a1", later), later)
        .await
        .unwrap();
    assert_eq!(a.status, AgentStatus::Active);
    assert_eq!(a.enrolled_at, t0());
    assert_eq!(
        (
            a.hostname.as_str(),
            a.group.as_str(),
            a.cert_serial.as_str()
        ),
        ("renamed", "db", "02")
    );
    let certs = store.agent_certificates("a1").await.unwrap();
    assert_eq!(
        certs.iter().map(|c| c.serial.as_str()).collect::<Vec<_>>(),
        ["02", "01"]
    );
    assert!(certs[1].revoked_at.is_some());
    assert_eq!(certs[1].revocation_reason.as_deref(), Some("laptop stolen"));
}
backend_test!(enrol_and_reenrol_keep_identity);

async fn revocation_lists_only_unexpired_certificates(store: &Store) {
    enrolled(store, "a1", "web").await;
    // A second, renewed certificate, and an old one that has already expired.
    let renewed = cert("a1-c2", "a1", t0() + Duration::hours(16));
    store.record_renewal(&renewed).await.unwrap();
    let mut old = cert("a1-c0", "a1", t0() - Duration::days(3));
    old.not_after = t0() - Duration::days(2);
    store.record_renewal(&old).await.unwrap();

    let at = t0() + Duration::hours(17);
    let mut serials = store
        .revoke_agent("a1", "decommissioned", at)
        .await
        .unwrap();
    serials.sort();
    assert_eq!(
        serials,
        ["a1-c1", "a1-c2"],
        "the expired one needs no revocation"
    );
    let listed: Vec<String> = store
        .revoked_certificates(at)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.serial)
        .collect();
    assert_eq!(listed, ["a1-c1", "a1-c2"]);
    // A day later c1 has expired and drops off the list; c2 is still there.
    let listed: Vec<String> = store
        .revoked_certificates(t0() + Duration::hours(25))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.serial)
        .collect();
    assert_eq!(listed, ["a1-c2"]);
    assert_eq!(
        store.agent("a1").await.unwrap().unwrap().status,
        AgentStatus::Revoked
    );
    assert!(matches!(
        store.revoke_agent("ghost", "x", at).await,
        Err(StoreError::NotFound { .. })
    ));
}
backend_test!(revocation_lists_only_unexpired_certificates);

async fn heartbeats_only_move_forward(store: &Store) {
    enrolled(store, "a1", "web").await;
    enrolled(store, "a2", "db").await;
    let later = t0() + Duration::minutes(5);
    store
        .touch_agents(&BTreeMap::from([
            ("a1".to_string(), later),
            ("a2".to_string(), t0() - Duration::hours(1)),
        ]))
        .await
        .unwrap();
    assert_eq!(store.agent("a1").await.unwrap().unwrap().last_seen, later);
    assert_eq!(
        store.agent("a2").await.unwrap().unwrap().last_seen,
        t0(),
        "an older beat never rewinds"
    );
    assert_eq!(store.agents(Some("db")).await.unwrap().len(), 1);
    assert_eq!(store.agents(None).await.unwrap().len(), 2);
}
backend_test!(heartbeats_only_move_forward);

/// A heartbeat flush on PostgreSQL does not wait for a result batch holding its agents' rows
/// (ingestion locks them first, `tallies.rs`): the times are recorded at once, the held agent's
/// included. (SQLite has no row locks; its writers take turns.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_do_not_wait_for_a_batch_holding_their_agents() {
    use sqlx::Connection as _;
    let Some(t) = super::harness::postgres().await else {
        return;
    };
    let store = &t.store;
    enrolled(store, "a1", "web").await;
    enrolled(store, "a2", "web").await;
    let later = t0() + Duration::minutes(5);
    let beats = BTreeMap::from([
        ("a1".to_string(), later),
        ("a2".to_string(), later),
        ("gone".to_string(), later),
    ]);
    // A result batch holds a1's row, as ingestion does.
    let mut batch = sqlx::PgConnection::connect(&t.url).await.unwrap();
    sqlx::raw_sql("BEGIN; SELECT id FROM agents WHERE id = 'a1' FOR NO KEY UPDATE")
        .execute(&mut batch)
        .await
        .unwrap();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        store.touch_agents(&beats),
    )
    .await
    .expect("the flush waited for the batch")
    .unwrap();
    assert_eq!(store.agent("a1").await.unwrap().unwrap().last_seen, later);
    assert_eq!(store.agent("a2").await.unwrap().unwrap().last_seen, later);
    assert!(store.agent("gone").await.unwrap().is_none());
    sqlx::raw_sql("COMMIT").execute(&mut batch).await.unwrap();
    batch.close().await.unwrap();
    t.finish().await;
}

async fn scan_request_is_delivered_once(store: &Store) {
    enrolled(store, "a1", "web").await;
    assert!(!store.take_scan_request("a1").await.unwrap());
    assert!(store.request_scan("a1", t0()).await.unwrap());
    assert!(!store.request_scan("ghost", t0()).await.unwrap());
    assert_eq!(
        store.agent("a1").await.unwrap().unwrap().scan_requested_at,
        Some(t0())
    );
    assert!(store.take_scan_request("a1").await.unwrap());
    assert!(!store.take_scan_request("a1").await.unwrap());
}
backend_test!(scan_request_is_delivered_once);

async fn first_ca_material_wins(store: &Store) {
    let m = |cert: &str| CaMaterial {
        name: "root".into(),
        cert_pem: cert.into(),
        key_pem: "encrypted".into(),
        created_at: t0(),
    };
    assert!(
        store
            .insert_ca_material_if_absent(&m("first"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .insert_ca_material_if_absent(&m("second"))
            .await
            .unwrap()
    );
    assert_eq!(
        store.ca_material("root").await.unwrap().unwrap().cert_pem,
        "first"
    );
    store.replace_ca_material(&m("rotated")).await.unwrap();
    assert_eq!(
        store.ca_material("root").await.unwrap().unwrap().cert_pem,
        "rotated"
    );
    assert!(store.ca_material("intermediate").await.unwrap().is_none());
}
backend_test!(first_ca_material_wins);

/// The reads every API request makes (its credential, the intel rules' generation) see each
/// committed write at once, also when more requests ask at the same moment than SQLite has
/// reader connections for them.
async fn request_reads_see_each_write_under_concurrency(store: &Store) {
    let before = store.intel_rules_generation().await.unwrap();
    let admin = crate::store::harness::user(store, "admin", rampart_access::Role::Admin).await;
    crate::store::harness::api_token(store, &admin, "a", "hash-a").await;
    store
        .intel_put_decay_model(&rampart_store::IntelDecayRow {
            scope: "ipv4".into(),
            lifetime_days: Some(30.0),
            speed: 0.3,
        })
        .await
        .unwrap();
    let asks = (0..40).map(|k| {
        let store = store.clone();
        tokio::spawn(async move {
            let hash = if k % 2 == 0 { "hash-a" } else { "hash-b" };
            (
                k,
                store
                    .api_token_by_hash(hash)
                    .await
                    .unwrap()
                    .map(|t| t.credential.name),
                store.intel_rules_generation().await.unwrap(),
            )
        })
    });
    for ask in asks.collect::<Vec<_>>() {
        let (k, label, generation) = ask.await.unwrap();
        let expected = (k % 2 == 0).then(|| "a".to_owned());
        assert_eq!(label, expected, "request {k}");
        assert!(
            generation > before,
            "request {k} saw generation {generation}"
        );
    }
}
backend_test!(request_reads_see_each_write_under_concurrency);
