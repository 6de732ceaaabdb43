use rampart_store::{Store, StoredWaiver, WaiverScope};
use time::{Duration, OffsetDateTime};

use super::harness::t0;
use crate::backend_test;

fn waiver(id: &str, scope: WaiverScope, expires_on: &str) -> StoredWaiver {
    StoredWaiver {
        id: id.into(),
        check: "cis_debian12:3301*".into(),
        scope,
        justification: "tmpfs managed by systemd".into(),
        expires_on: expires_on.into(),
        state: "pending".into(),
        requested_by: "olga".into(),
        requested_at: t0(),
        decided_by: None,
        decided_at: None,
        decision_note: None,
    }
}

async fn waivers_apply_once_approved_within_scope_and_time(store: &Store) {
    // t0 is 2026-09-21T…Z (1,790,000,000 s).
    let day = |d: i64| t0() + Duration::days(d);
    store
        .insert_waiver(&waiver(
            "w1",
            WaiverScope::Group("web".into()),
            "2026-09-30",
        ))
        .await
        .unwrap();
    store
        .insert_waiver(&waiver("w2", WaiverScope::Agent("a2".into()), "2026-12-31"))
        .await
        .unwrap();
    store
        .insert_waiver(&waiver("w3", WaiverScope::Fleet, "2026-12-31"))
        .await
        .unwrap();
    assert!(
        store
            .insert_waiver(&waiver("w1", WaiverScope::Fleet, "2026-12-31"))
            .await
            .is_err()
    );
    // Pending: in force nowhere.
    assert!(
        store
            .waivers_in_force("a1", "web", day(1))
            .await
            .unwrap()
            .is_empty()
    );

    let w1 = store
        .decide_waiver("w1", true, "carol", Some("ok"), day(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (w1.state.as_str(), w1.decided_by.as_deref()),
        ("approved", Some("carol"))
    );
    // Decided once: a second decision finds nothing pending.
    assert!(
        store
            .decide_waiver("w1", false, "dave", None, day(1))
            .await
            .unwrap()
            .is_none()
    );
    store
        .decide_waiver("w2", true, "carol", None, day(1))
        .await
        .unwrap()
        .unwrap();
    store
        .decide_waiver("w3", false, "carol", Some("too broad"), day(1))
        .await
        .unwrap()
        .unwrap();

    let ids = |v: Vec<StoredWaiver>| v.into_iter().map(|w| w.id).collect::<Vec<_>>();
    // Before the approval, nothing; after it, the group's for a1 and the agent's for a2; the
    // denied fleet-wide one never.
    assert!(
        store
            .waivers_in_force("a1", "web", day(1) - Duration::hours(1))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ids(store.waivers_in_force("a1", "web", day(2)).await.unwrap()),
        ["w1"]
    );
    assert_eq!(
        ids(store.waivers_in_force("a2", "db", day(2)).await.unwrap()),
        ["w2"]
    );
    assert!(
        store
            .waivers_in_force("a3", "db", day(2))
            .await
            .unwrap()
            .is_empty()
    );
    // Through its last day, not after.
    let last = OffsetDateTime::parse(
        "2026-09-30T23:59:00Z",
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(
        ids(store.waivers_in_force("a1", "web", last).await.unwrap()),
        ["w1"]
    );
    assert!(
        store
            .waivers_in_force("a1", "web", last + Duration::minutes(2))
            .await
            .unwrap()
            .is_empty()
    );

    // Expiry is taken once.
    assert!(store.take_expired_waivers(last).await.unwrap().is_empty());
    assert_eq!(
        ids(store
            .take_expired_waivers(last + Duration::minutes(2))
            .await
            .unwrap()),
        ["w1"]
    );
    assert!(
        store
            .take_expired_waivers(last + Duration::days(1))
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(
        ids(store.waivers(Some("approved"), 10).await.unwrap()).len(),
        2
    );
    assert_eq!(store.waivers(None, 10).await.unwrap().len(), 3);
    assert_eq!(
        store
            .waiver("w3")
            .await
            .unwrap()
            .unwrap()
            .decision_note
            .as_deref(),
        Some("too broad")
    );
}
backend_test!(waivers_apply_once_approved_within_scope_and_time);
