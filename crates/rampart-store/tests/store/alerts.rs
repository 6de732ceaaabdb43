//! Alert rules' storage: definitions, the evaluator's turn (one holder at a time, taken over
//! after its lease), a turn committed only while held, states found again by key and by
//! activity, and the measurements rules read (a policy's pass/fail over a group, hosts newly
//! failing a check, silent agents).

use rampart_core::Status;
use rampart_store::{FleetScope, Store, StoredAlertState, TurnOutcome};
use time::Duration;

use super::harness::{enrolled, outcome, run, t0};
use crate::backend_test;

fn state(rule: &str, subject: &str, firing: bool, active: bool) -> StoredAlertState {
    StoredAlertState {
        rule: rule.into(),
        subject: subject.into(),
        firing,
        active,
        state: format!(r#"{{"firing":{firing}}}"#),
        updated_at: t0(),
    }
}

async fn the_turn_is_held_by_one_evaluator_and_commits_only_while_held(store: &Store) {
    let (rule, created) = store
        .put_alert_rule("web-score", r#"{"condition":{}}"#, t0())
        .await
        .unwrap();
    assert!(created);
    assert_eq!(rule.created_at, t0());
    let (_, created) = store
        .put_alert_rule(
            "web-score",
            r#"{"condition":{"x":1}}"#,
            t0() + Duration::minutes(1),
        )
        .await
        .unwrap();
    assert!(!created, "replaced");
    let r = store.alert_rule("web-score").await.unwrap().unwrap();
    assert_eq!(
        (r.definition.as_str(), r.created_at, r.updated_at),
        (
            r#"{"condition":{"x":1}}"#,
            t0(),
            t0() + Duration::minutes(1)
        )
    );

    let lease = Duration::seconds(30);
    let start = store.alert_cursor().await.unwrap();
    assert_eq!(
        store.claim_alert_turn("a", t0(), lease).await.unwrap(),
        Some(start)
    );
    assert_eq!(
        store.claim_alert_turn("b", t0(), lease).await.unwrap(),
        None,
        "a holds it"
    );
    assert_eq!(
        store
            .claim_alert_turn("a", t0() + Duration::seconds(5), lease)
            .await
            .unwrap(),
        Some(start),
        "its holder renews it"
    );
    // A turn writes states and events and moves the cursor.
    let alert = rampart_events::make::agent_offline(
        "ev-1".into(),
        t0(),
        rampart_events::AgentRef {
            id: "a1".into(),
            hostname: "h".into(),
            group: "web".into(),
        },
        t0(),
    );
    let outcome = TurnOutcome {
        cursor: start + 7,
        states: vec![
            state("web-score", "web/cis", true, true),
            state("web-score", "db/cis", false, false),
        ],
        forget: vec![],
        events: vec![alert],
    };
    assert!(store.finish_alert_turn("a", t0(), &outcome).await.unwrap());
    assert_eq!(store.alert_cursor().await.unwrap(), start + 7);
    let latest = store.latest_event_seq().await.unwrap();
    let written = store.events_after(latest - 1, 10).await.unwrap();
    assert_eq!(
        written[0].kind, "agent.offline",
        "the turn's events are in the outbox"
    );

    // Another takes over once the lease ran out; the old holder's commit is refused whole.
    let later = t0() + Duration::seconds(36);
    assert_eq!(
        store.claim_alert_turn("b", later, lease).await.unwrap(),
        Some(start + 7)
    );
    let stale = TurnOutcome {
        cursor: start + 99,
        states: vec![state("web-score", "web/cis", false, false)],
        forget: vec![],
        events: vec![],
    };
    assert!(!store.finish_alert_turn("a", later, &stale).await.unwrap());
    assert_eq!(
        store.alert_cursor().await.unwrap(),
        start + 7,
        "nothing written"
    );
    let active = store.active_alert_states().await.unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(
        (active[0].subject.as_str(), active[0].firing),
        ("web/cis", true)
    );

    // States by key; firing ones by rule.
    let found = store
        .alert_states_of(&[
            ("web-score".into(), "db/cis".into()),
            ("web-score".into(), "nope".into()),
            ("other".into(), "web/cis".into()),
        ])
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].subject, "db/cis");
    let (firing, n) = store.firing_alerts("web-score", 10).await.unwrap();
    assert_eq!((firing.len(), n), (1, 1));
    // Forgetting, and inactive states left long enough.
    let forget = TurnOutcome {
        cursor: start + 8,
        forget: vec![("web-score".into(), "web/cis".into())],
        ..TurnOutcome::default()
    };
    assert!(
        store
            .finish_alert_turn("b", later + Duration::days(9), &forget)
            .await
            .unwrap()
    );
    assert!(
        store
            .alert_states_of(&[
                ("web-score".into(), "web/cis".into()),
                ("web-score".into(), "db/cis".into()),
            ])
            .await
            .unwrap()
            .is_empty(),
        "one forgotten, one inactive for over eight days"
    );
    // A deleted rule takes its states along.
    let keep = TurnOutcome {
        cursor: start + 9,
        states: vec![state("web-score", "x", true, true)],
        ..TurnOutcome::default()
    };
    assert!(store.finish_alert_turn("b", later, &keep).await.unwrap());
    assert!(store.delete_alert_rule("web-score").await.unwrap());
    assert!(!store.delete_alert_rule("web-score").await.unwrap());
    assert!(store.active_alert_states().await.unwrap().is_empty());
}
backend_test!(the_turn_is_held_by_one_evaluator_and_commits_only_while_held);

async fn rules_measure_scores_failing_hosts_and_silence(store: &Store) {
    enrolled(store, "a1", "web").await;
    enrolled(store, "a2", "web").await;
    enrolled(store, "a3", "db").await;
    let checks = |c1: Status, c2: Status| vec![outcome("C1", c1), outcome("C2", c2)];
    store
        .ingest_runs(&[
            run("r1", "a1", t0(), checks(Status::Pass, Status::Fail)),
            run("r2", "a2", t0(), checks(Status::Fail, Status::Fail)),
            run("r3", "a3", t0(), checks(Status::Pass, Status::Pass)),
        ])
        .await
        .unwrap();
    let web = FleetScope {
        group: Some("web"),
        ..FleetScope::default()
    };
    assert_eq!(
        store.policy_pass_fail(&web, "baseline").await.unwrap(),
        (1, 3)
    );
    assert_eq!(
        store
            .policy_pass_fail(&FleetScope::default(), "baseline")
            .await
            .unwrap(),
        (3, 3)
    );
    assert_eq!(store.policy_pass_fail(&web, "other").await.unwrap(), (0, 0));
    // C2 fails on both web agents since t0 (to the hour); none started within the last hour
    // of a day later.
    let fleet = FleetScope::default();
    let n = |scope, since| store.newly_failing_hosts(scope, "baseline", "C2", since);
    assert_eq!(n(&web, t0() - Duration::hours(1)).await.unwrap(), 2);
    assert_eq!(n(&fleet, t0()).await.unwrap(), 2);
    assert_eq!(n(&web, t0() + Duration::days(1)).await.unwrap(), 0);

    // Silence: a2 beat at t0 + 2 h; revoked agents are not silent, they are gone.
    store
        .touch_agents(&std::collections::BTreeMap::from([(
            "a2".to_string(),
            t0() + Duration::hours(2),
        )]))
        .await
        .unwrap();
    store.revoke_agent("a3", "gone", t0()).await.unwrap();
    let silent = store
        .silent_agents(t0() + Duration::hours(1), None, 10)
        .await
        .unwrap();
    let ids: Vec<&str> = silent.iter().map(|s| s.agent.id.as_str()).collect();
    assert_eq!(ids, ["a1"]);
    assert_eq!(silent[0].agent.group, "web");
    assert!(
        store
            .silent_agents(t0() + Duration::hours(1), Some("db"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let seen = store
        .agents_seen(&["a2".into(), "a3".into(), "nobody".into()])
        .await
        .unwrap();
    let mut seen: Vec<(String, bool)> = seen.into_iter().map(|s| (s.agent.id, s.revoked)).collect();
    seen.sort();
    assert_eq!(seen, [("a2".to_owned(), false), ("a3".to_owned(), true)]);
}
backend_test!(rules_measure_scores_failing_hosts_and_silence);
