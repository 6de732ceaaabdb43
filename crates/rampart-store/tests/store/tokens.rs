use std::collections::BTreeMap;

use rampart_store::{EnrolmentToken, Redemption, Store};
use time::Duration;

use super::harness::t0;
use crate::backend_test;

fn token(jti: &str, max_uses: u32, ttl: Duration) -> EnrolmentToken {
    EnrolmentToken {
        jti: jti.into(),
        group: "web".into(),
        labels: BTreeMap::from([("team".to_string(), "blue".to_string())]),
        audience: "https://rampart.example:8443/api/v1/enrol".into(),
        max_uses,
        uses: 0,
        expires_at: t0() + ttl,
        created_at: t0(),
        revoked_at: None,
        reenrol_agent_id: None,
    }
}

async fn single_use_token_cannot_be_replayed(store: &Store) {
    store
        .insert_enrolment_token(&token("j1", 1, Duration::minutes(5)))
        .await
        .unwrap();
    let first = store
        .redeem_enrolment_token("j1", t0(), Duration::minutes(1))
        .await
        .unwrap();
    let Redemption::Accepted(t) = first else {
        panic!("first use refused: {first:?}")
    };
    assert_eq!(t.uses, 1);
    assert_eq!(t.group, "web");
    assert_eq!(t.labels["team"], "blue");
    assert_eq!(
        store
            .redeem_enrolment_token("j1", t0(), Duration::minutes(1))
            .await
            .unwrap(),
        Redemption::Exhausted
    );
    assert_eq!(
        store
            .redeem_enrolment_token("nope", t0(), Duration::minutes(1))
            .await
            .unwrap(),
        Redemption::Unknown
    );
}
backend_test!(single_use_token_cannot_be_replayed);

async fn expiry_honours_leeway(store: &Store) {
    store
        .insert_enrolment_token(&token("j2", 5, Duration::minutes(5)))
        .await
        .unwrap();
    let leeway = Duration::minutes(1);
    // 30 s past expiry: inside the leeway.
    let r = store
        .redeem_enrolment_token("j2", t0() + Duration::seconds(330), leeway)
        .await
        .unwrap();
    assert!(matches!(r, Redemption::Accepted(_)), "{r:?}");
    // 61 s past expiry: refused as expired, and the refusal did not count a use.
    let r = store
        .redeem_enrolment_token("j2", t0() + Duration::seconds(361), leeway)
        .await
        .unwrap();
    assert_eq!(r, Redemption::Expired);
    assert_eq!(store.enrolment_token("j2").await.unwrap().unwrap().uses, 1);
}
backend_test!(expiry_honours_leeway);

async fn revoked_token_is_refused(store: &Store) {
    store
        .insert_enrolment_token(&token("j3", 5, Duration::minutes(5)))
        .await
        .unwrap();
    assert!(store.revoke_enrolment_token("j3", t0()).await.unwrap());
    assert!(!store.revoke_enrolment_token("unknown", t0()).await.unwrap());
    assert_eq!(
        store
            .redeem_enrolment_token("j3", t0(), Duration::minutes(1))
            .await
            .unwrap(),
        Redemption::Revoked
    );
}
backend_test!(revoked_token_is_refused);

/// Twenty concurrent redemptions of a three-use token: exactly three win, whatever the
/// interleaving, because check-and-count is one statement.
async fn max_uses_hold_under_concurrency(store: &Store) {
    store
        .insert_enrolment_token(&token("j4", 3, Duration::minutes(5)))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.redeem_enrolment_token("j4", t0(), Duration::minutes(1))
                .await
                .unwrap()
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Redemption::Accepted(_) => accepted += 1,
            Redemption::Exhausted => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(accepted, 3);
    assert_eq!(store.enrolment_token("j4").await.unwrap().unwrap().uses, 3);
    let listed = store.enrolment_tokens().await.unwrap();
    assert_eq!(listed.len(), 1);
}
backend_test!(max_uses_hold_under_concurrency);
