use rampart_store::{NewPolicyVersion, Store, StoreError, Target};
use time::Duration;

use super::harness::t0;
use crate::backend_test;

fn upload<'a>(id: &'a str, content: &'a [u8], digest: &'a str) -> NewPolicyVersion<'a> {
    NewPolicyVersion {
        policy_id: id,
        name: "Baseline",
        format: "rampart",
        file_name: "baseline.yml",
        content,
        digest,
        check_count: 3,
    }
}

async fn versions_are_immutable_and_deduplicated(store: &Store) {
    let (v1, new) = store
        .add_policy_version(&upload("base", b"v1 body", "d1"), t0())
        .await
        .unwrap();
    assert!(new);
    assert_eq!(v1.version, 1);
    let (same, new) = store
        .add_policy_version(&upload("base", b"v1 body", "d1"), t0())
        .await
        .unwrap();
    assert!(!new, "same content as the newest version adds nothing");
    assert_eq!(same.version, 1);
    let (v2, new) = store
        .add_policy_version(&upload("base", b"v2 body", "d2"), t0())
        .await
        .unwrap();
    assert!(new);
    assert_eq!(v2.version, 2);
    // Going back to v1's content is a new version: history is append-only.
    let (v3, _) = store
        .add_policy_version(&upload("base", b"v1 body", "d1"), t0())
        .await
        .unwrap();
    assert_eq!(v3.version, 3);

    let (meta, content) = store.policy_version("base", 2).await.unwrap().unwrap();
    assert_eq!(
        (meta.digest.as_str(), content.as_slice()),
        ("d2", b"v2 body".as_slice())
    );
    assert!(store.policy_version("base", 9).await.unwrap().is_none());
    let versions: Vec<i64> = store
        .policy_versions("base")
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(versions, [1, 2, 3]);
    let listed = store.policies().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].versions, listed[0].latest.version), (3, 3));
}
backend_test!(versions_are_immutable_and_deduplicated);

async fn agent_assignment_overrides_group(store: &Store) {
    store
        .add_policy_version(&upload("base", b"one", "d1"), t0())
        .await
        .unwrap();
    store
        .add_policy_version(&upload("base", b"two", "d2"), t0())
        .await
        .unwrap();
    store
        .add_policy_version(&upload("extra", b"x", "dx"), t0())
        .await
        .unwrap();
    let web = Target::Group("web".into());
    store
        .assign("base", 1, &web, "0 */6 * * *", t0())
        .await
        .unwrap();
    store
        .assign("extra", 1, &web, "@daily", t0())
        .await
        .unwrap();
    store
        .assign("base", 2, &Target::Agent("a1".into()), "*/5 * * * *", t0())
        .await
        .unwrap();

    let a1 = store.assignments_for_agent("a1", "web").await.unwrap();
    let got: Vec<(&str, i64, &str)> = a1
        .iter()
        .map(|a| (a.policy_id.as_str(), a.version, a.digest.as_str()))
        .collect();
    assert_eq!(got, [("base", 2, "d2"), ("extra", 1, "dx")]);
    let a2 = store.assignments_for_agent("a2", "web").await.unwrap();
    assert_eq!(a2.iter().map(|a| a.version).collect::<Vec<_>>(), [1, 1]);
    assert!(
        store
            .assignments_for_agent("a3", "db")
            .await
            .unwrap()
            .is_empty()
    );

    // Re-assigning replaces: the group moves to v2 with a new schedule.
    store
        .assign("base", 2, &web, "0 * * * *", t0() + Duration::hours(1))
        .await
        .unwrap();
    let a2 = store.assignments_for_agent("a2", "web").await.unwrap();
    assert_eq!((a2[0].version, a2[0].schedule.as_str()), (2, "0 * * * *"));
    assert_eq!(store.assignments(Some("base")).await.unwrap().len(), 2);

    assert!(store.unassign("extra", &web).await.unwrap());
    assert!(!store.unassign("extra", &web).await.unwrap());
    assert_eq!(
        store
            .assignments_for_agent("a2", "web")
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(matches!(
        store.assign("base", 7, &web, "@daily", t0()).await,
        Err(StoreError::NotFound { .. })
    ));
}
backend_test!(agent_assignment_overrides_group);
