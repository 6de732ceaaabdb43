use rampart_core::Status;
use rampart_store::testing::TestStore;
use rampart_store::{IngestOutcome, Store};
use time::Duration;

use super::harness::{enrolled, outcome, run, t0};
use crate::backend_test;

/// The fleet's page of a check of the harness's policy: every host, failing first.
async fn check_page(store: &Store, check: &str) -> Vec<rampart_store::CheckOnHost> {
    store
        .fleet_check(
            &rampart_store::FleetScope::default(),
            "baseline",
            check,
            None,
            10,
            0,
        )
        .await
        .unwrap()
}

async fn retried_post_is_stored_once(store: &Store) {
    enrolled(store, "a1", "web").await;
    let r = run(
        "r1",
        "a1",
        t0(),
        vec![outcome("1", Status::Pass), outcome("2", Status::Fail)],
    );
    assert_eq!(
        store.ingest_runs(std::slice::from_ref(&r)).await.unwrap(),
        [IngestOutcome::Stored]
    );
    // The same run again, alone and inside a batch with a new one.
    let r2 = run(
        "r2",
        "a1",
        t0() + Duration::hours(1),
        vec![outcome("1", Status::Pass)],
    );
    assert_eq!(
        store.ingest_runs(&[r.clone(), r2]).await.unwrap(),
        [IngestOutcome::Duplicate, IngestOutcome::Stored]
    );
    let runs = store.agent_runs("a1", None, 10).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["r2", "r1"]
    );
    let detail = store.run("r1").await.unwrap().unwrap();
    assert_eq!(detail.checks.len(), 2, "the duplicate added no rows");
}
backend_test!(retried_post_is_stored_once);

async fn run_round_trips_with_evidence(store: &Store) {
    enrolled(store, "a1", "web").await;
    let checks: Vec<_> = (1..=12)
        .map(|i| {
            outcome(
                &i.to_string(),
                if i % 3 == 0 {
                    Status::Fail
                } else {
                    Status::Pass
                },
            )
        })
        .collect();
    let r = run("r1", "a1", t0(), checks.clone());
    store.ingest_runs(std::slice::from_ref(&r)).await.unwrap();
    let got = store.run("r1").await.unwrap().unwrap();
    assert_eq!(
        got.checks, checks,
        "every field, evidence included, in policy order (10 after 9)"
    );
    assert_eq!(got.run.summary, r.summary);
    assert_eq!(got.run.host, r.host);
    assert_eq!(got.run.warnings, r.warnings);
    assert_eq!(
        (got.run.started_at, got.run.policy_version),
        (t0(), Some(1))
    );
    assert!(store.run("missing").await.unwrap().is_none());
}
backend_test!(run_round_trips_with_evidence);

/// The newest run of each policy: the latest start wins, a tie goes to the greater run id,
/// another agent's runs never count.
async fn latest_runs_are_the_newest_per_policy(store: &Store) {
    enrolled(store, "a1", "web").await;
    enrolled(store, "a2", "web").await;
    let mut runs = vec![
        run("r1", "a1", t0(), vec![outcome("1", Status::Pass)]),
        run(
            "r2",
            "a1",
            t0() + Duration::hours(1),
            vec![outcome("1", Status::Fail)],
        ),
        run(
            "r3",
            "a1",
            t0() + Duration::hours(1),
            vec![outcome("1", Status::Pass)],
        ),
        run(
            "r4",
            "a1",
            t0() + Duration::hours(2),
            vec![outcome("1", Status::Pass)],
        ),
        run(
            "r5",
            "a2",
            t0() + Duration::hours(5),
            vec![outcome("1", Status::Pass)],
        ),
    ];
    for r in &mut runs[..3] {
        r.policy_id = "cis".into();
    }
    store.ingest_runs(&runs).await.unwrap();
    let ids = |rs: Vec<rampart_store::RunSummary>| {
        rs.into_iter()
            .map(|r| (r.policy_id, r.id))
            .collect::<Vec<_>>()
    };
    let s = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        ids(store.latest_runs("a1", None).await.unwrap()),
        [s("baseline", "r4"), s("cis", "r3")]
    );
    assert_eq!(
        ids(store.latest_runs("a1", Some("cis")).await.unwrap()),
        [s("cis", "r3")]
    );
    assert!(store.latest_runs("a3", None).await.unwrap().is_empty());
}
backend_test!(latest_runs_are_the_newest_per_policy);

/// A batch is one transaction: a run the database refuses (unknown agent) takes the whole
/// batch down, so the server never acknowledges half of what it was sent.
async fn failed_batch_stores_nothing(store: &Store) {
    enrolled(store, "a1", "web").await;
    let good = run("r1", "a1", t0(), vec![outcome("1", Status::Pass)]);
    let bad = run("r2", "ghost", t0(), vec![outcome("1", Status::Pass)]);
    assert!(store.ingest_runs(&[good.clone(), bad]).await.is_err());
    assert!(store.run("r1").await.unwrap().is_none());
    assert!(store.latest_results("a1", None).await.unwrap().is_empty());
    assert_eq!(
        store.ingest_runs(&[good]).await.unwrap(),
        [IngestOutcome::Stored]
    );
}
backend_test!(failed_batch_stores_nothing);

async fn latest_state_tracks_since_and_ignores_late_runs(store: &Store) {
    enrolled(store, "a1", "web").await;
    let h = |n: i64| t0() + Duration::hours(n);
    store
        .ingest_runs(&[run(
            "r1",
            "a1",
            h(0),
            vec![outcome("1", Status::Pass), outcome("2", Status::Fail)],
        )])
        .await
        .unwrap();
    store
        .ingest_runs(&[run(
            "r2",
            "a1",
            h(1),
            vec![outcome("1", Status::Fail), outcome("2", Status::Fail)],
        )])
        .await
        .unwrap();
    store
        .ingest_runs(&[run(
            "r4",
            "a1",
            h(3),
            vec![outcome("1", Status::Fail), outcome("2", Status::Pass)],
        )])
        .await
        .unwrap();
    // A spooled run from hour 2 arrives last: history gets it, the latest state does not move.
    store
        .ingest_runs(&[run(
            "r3",
            "a1",
            h(2),
            vec![outcome("1", Status::Pass), outcome("2", Status::Pass)],
        )])
        .await
        .unwrap();

    let latest = store.latest_results("a1", Some("baseline")).await.unwrap();
    let got: Vec<(&str, Status, &str, i64)> = latest
        .iter()
        .map(|l| {
            (
                l.check_id.as_str(),
                l.status,
                l.run_id.as_str(),
                (l.since - t0()).whole_hours(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [("1", Status::Fail, "r4", 1), ("2", Status::Pass, "r4", 3)]
    );

    let history = store
        .check_history("a1", "baseline", "1", 100)
        .await
        .unwrap();
    let statuses: Vec<(&str, Status)> = history
        .iter()
        .map(|p| (p.run_id.as_str(), p.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("r1", Status::Pass),
            ("r2", Status::Fail),
            ("r3", Status::Pass),
            ("r4", Status::Fail)
        ]
    );
    let last_two = store.check_history("a1", "baseline", "1", 2).await.unwrap();
    assert_eq!(
        last_two
            .iter()
            .map(|p| p.run_id.as_str())
            .collect::<Vec<_>>(),
        ["r3", "r4"]
    );
}
backend_test!(latest_state_tracks_since_and_ignores_late_runs);

async fn fleet_score_by_bucket_and_retention(store: &Store) {
    enrolled(store, "a1", "web").await;
    enrolled(store, "a2", "web").await;
    let day = |n: i64| t0() + Duration::days(n);
    let pf = |p: usize, f: usize| {
        let mut v = Vec::new();
        for i in 0..p {
            v.push(outcome(&format!("p{i}"), Status::Pass));
        }
        for i in 0..f {
            v.push(outcome(&format!("f{i}"), Status::Fail));
        }
        v.push(outcome("na", Status::NotApplicable));
        v
    };
    store
        .ingest_runs(&[
            run("r1", "a1", day(0), pf(3, 1)),
            run("r2", "a2", day(0) + Duration::hours(2), pf(1, 3)),
            run("r3", "a1", day(1), pf(4, 0)),
        ])
        .await
        .unwrap();
    let bucket = 86_400;
    let points = store
        .policy_score_history("baseline", day(-1), bucket)
        .await
        .unwrap();
    // t0 is not midnight-aligned; the two day-0 runs share a bucket only if they fall in the same
    // UTC day, which the test data ensures (t0 + 2 h stays in t0's day).
    assert_eq!(
        t0().unix_timestamp() / bucket,
        (t0() + Duration::hours(2)).unix_timestamp() / bucket
    );
    let got: Vec<(i64, i64, i64, i64, f64)> = points
        .iter()
        .map(|p| (p.runs, p.agents, p.passed, p.failed, p.score))
        .collect();
    assert_eq!(got, [(2, 2, 4, 4, 50.0), (1, 1, 4, 0, 100.0)]);

    // Retention: everything before day 1 goes, with its check rows; the rest stays.
    assert_eq!(store.prune_runs(day(1)).await.unwrap(), 2);
    assert!(store.run("r1").await.unwrap().is_none());
    assert_eq!(store.run("r3").await.unwrap().unwrap().checks.len(), 5);
    assert!(
        store
            .check_history("a2", "baseline", "p0", 10)
            .await
            .unwrap()
            .is_empty()
    );
}
backend_test!(fleet_score_by_bucket_and_retention);

/// A run deleted behind the store's back (an operator's `DELETE FROM runs`) takes its check
/// results with it: on PostgreSQL a statement trigger does what the foreign key's cascade did.
async fn a_deleted_run_takes_its_check_results(t: &TestStore) {
    let store = &t.store;
    enrolled(store, "a1", "web").await;
    let checks = vec![outcome("1", Status::Pass), outcome("2", Status::Fail)];
    store
        .ingest_runs(&[
            run("r1", "a1", t0(), checks),
            run("r2", "a1", t0(), vec![outcome("1", Status::Fail)]),
        ])
        .await
        .unwrap();
    t.tamper("DELETE FROM runs WHERE id = 'r1'").await;
    assert!(store.run("r1").await.unwrap().is_none());
    assert_eq!(store.run("r2").await.unwrap().unwrap().checks.len(), 1);
    // A run stored again under that id holds only its own results: none of the deleted run's
    // rows were left behind to join it.
    let again = run(
        "r1",
        "a1",
        t0() + Duration::hours(1),
        vec![outcome("3", Status::Pass)],
    );
    assert_eq!(
        store.ingest_runs(&[again]).await.unwrap(),
        [IngestOutcome::Stored]
    );
    let ids: Vec<String> = store
        .run("r1")
        .await
        .unwrap()
        .unwrap()
        .checks
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, ["3"]);
}
backend_test!(a_deleted_run_takes_its_check_results, test_store);

async fn reopening_applies_no_migration_twice(store: &Store) {
    // The harness opened (and migrated) the store; a run stored now survives a second open of
    // the same database in the same process, which re-runs the migrator.
    enrolled(store, "a1", "web").await;
    assert_eq!(store.agents(None).await.unwrap().len(), 1);
}
backend_test!(reopening_applies_no_migration_twice);

async fn flat_view_joins_runs_and_agents(store: &Store) {
    enrolled(store, "a1", "web").await;
    enrolled(store, "a2", "db").await;
    store
        .ingest_runs(&[
            run(
                "r1",
                "a1",
                t0(),
                vec![outcome("1", Status::Pass), outcome("2", Status::Fail)],
            ),
            run(
                "r2",
                "a2",
                t0() + Duration::hours(1),
                vec![outcome("1", Status::Fail)],
            ),
        ])
        .await
        .unwrap();
    let all = store.flat_results(None, None, None, 100).await.unwrap();
    let got: Vec<(&str, &str, &str, Status)> = all
        .iter()
        .map(|f| {
            (
                f.run_id.as_str(),
                f.group.as_str(),
                f.check_id.as_str(),
                f.status,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("r2", "db", "1", Status::Fail),
            ("r1", "web", "1", Status::Pass),
            ("r1", "web", "2", Status::Fail)
        ]
    );
    assert_eq!(all[1].hostname, "host-a1");
    let failing = store
        .flat_results(None, Some("baseline"), Some(Status::Fail), 100)
        .await
        .unwrap();
    assert_eq!(failing.len(), 2);
    assert_eq!(
        store
            .flat_results(Some("a1"), None, None, 1)
            .await
            .unwrap()
            .len(),
        1
    );
}
backend_test!(flat_view_joins_runs_and_agents);

/// One batch carrying a retry of the same run and two runs of one agent, newest first: the
/// retry is stored once and the latest state is the newest run's, whatever the order.
async fn batch_with_retry_and_out_of_order_runs(store: &Store) {
    enrolled(store, "a1", "web").await;
    let h = |n: i64| t0() + Duration::hours(n);
    let newer = run("r2", "a1", h(1), vec![outcome("1", Status::Fail)]);
    let older = run("r1", "a1", h(0), vec![outcome("1", Status::Pass)]);
    let got = store
        .ingest_runs(&[newer.clone(), older, newer])
        .await
        .unwrap();
    assert_eq!(
        got,
        [
            IngestOutcome::Stored,
            IngestOutcome::Stored,
            IngestOutcome::Duplicate
        ]
    );
    let latest = store.latest_results("a1", None).await.unwrap();
    assert_eq!(
        (latest[0].run_id.as_str(), latest[0].status),
        ("r2", Status::Fail)
    );
    assert_eq!(store.run("r2").await.unwrap().unwrap().checks.len(), 1);
}
backend_test!(batch_with_retry_and_out_of_order_runs);

/// Latest results as (check, status, run, hours from `t0` to when it was observed, and to
/// since when it has had its status).
fn state(rows: Vec<rampart_store::LatestResult>) -> Vec<(String, Status, String, i64, i64)> {
    rows.into_iter()
        .map(|l| {
            (
                l.check_id,
                l.status,
                l.run_id,
                (l.observed_at - t0()).whole_hours(),
                (l.since - t0()).whole_hours(),
            )
        })
        .collect()
}

/// One batch that both updates stored latest states (a status that moves, one that stays) and
/// creates first ones: a new check of a known agent, and an agent's first run.
async fn a_batch_updates_stored_latest_states_and_adds_first_ones(store: &Store) {
    enrolled(store, "a1", "web").await;
    enrolled(store, "a2", "web").await;
    let h = |n: i64| t0() + Duration::hours(n);
    store
        .ingest_runs(&[run(
            "r1",
            "a1",
            h(0),
            vec![outcome("1", Status::Pass), outcome("2", Status::Fail)],
        )])
        .await
        .unwrap();
    let got = store
        .ingest_runs(&[
            run(
                "r2",
                "a1",
                h(1),
                vec![
                    outcome("1", Status::Pass),
                    outcome("2", Status::Pass),
                    outcome("3", Status::Fail),
                ],
            ),
            run("r3", "a2", h(1), vec![outcome("1", Status::Fail)]),
            // Older than what a1 holds for check 2 once r2 is in: ignored by the latest state.
            run("r0", "a1", h(-1), vec![outcome("2", Status::Error)]),
        ])
        .await
        .unwrap();
    assert_eq!(got, [IngestOutcome::Stored; 3]);
    // Every newer observation moves the run and `observed_at`, whether or not the status
    // changed; `since` moves with the status.
    assert_eq!(
        state(store.latest_results("a1", None).await.unwrap()),
        [
            ("1".into(), Status::Pass, "r2".into(), 1, 0),
            ("2".into(), Status::Pass, "r2".into(), 1, 1),
            ("3".into(), Status::Fail, "r2".into(), 1, 1),
        ]
    );
    assert_eq!(
        state(store.latest_results("a2", None).await.unwrap()),
        [("1".into(), Status::Fail, "r3".into(), 1, 1)]
    );
}
backend_test!(a_batch_updates_stored_latest_states_and_adds_first_ones);

/// An agent's newest run of a policy says what its latest state is: a check that run no longer
/// has (a policy version that dropped it) leaves; one it keeps stays with its `since`, last
/// observed by that run. A run without check results (requirements not met), a late run and,
/// within one batch, an older run change nothing.
async fn the_newest_run_says_which_checks_have_a_latest_state(store: &Store) {
    enrolled(store, "a1", "web").await;
    let h = |n: i64| t0() + Duration::hours(n);
    let three = vec![
        outcome("1", Status::Fail),
        outcome("2", Status::Fail),
        outcome("3", Status::Pass),
    ];
    store
        .ingest_runs(&[run("r1", "a1", h(0), three.clone())])
        .await
        .unwrap();
    store
        .ingest_runs(&[
            run(
                "r2",
                "a1",
                h(2),
                vec![
                    outcome("1", Status::Fail),
                    outcome("3", Status::Pass),
                    outcome("4", Status::Fail),
                ],
            ),
            // Older, in the same batch: it would have kept check 2.
            run("r1b", "a1", h(1), three.clone()),
        ])
        .await
        .unwrap();
    let after = vec![
        ("1".to_string(), Status::Fail, "r2".to_string(), 2, 0),
        ("3".to_string(), Status::Pass, "r2".to_string(), 2, 0),
        ("4".to_string(), Status::Fail, "r2".to_string(), 2, 2),
    ];
    assert_eq!(
        state(store.latest_results("a1", None).await.unwrap()),
        after
    );
    store
        .ingest_runs(&[run("r3", "a1", h(3), Vec::new())])
        .await
        .unwrap();
    store
        .ingest_runs(&[run("r0", "a1", h(-1), three)])
        .await
        .unwrap();
    assert_eq!(
        state(store.latest_results("a1", None).await.unwrap()),
        after
    );
    // The dropped check comes back: a first result again.
    store
        .ingest_runs(&[run(
            "r4",
            "a1",
            h(4),
            vec![outcome("1", Status::Fail), outcome("2", Status::Fail)],
        )])
        .await
        .unwrap();
    assert_eq!(
        state(store.latest_results("a1", None).await.unwrap()),
        [
            ("1".to_string(), Status::Fail, "r4".to_string(), 4, 0),
            ("2".to_string(), Status::Fail, "r4".to_string(), 4, 4),
        ]
    );
    // Its evidence is the newest run's.
    let page = check_page(store, "1").await;
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].run_id, "r4");
    assert!(page[0].outcome.is_some());
}
backend_test!(the_newest_run_says_which_checks_have_a_latest_state);

/// The write-ahead log's passive checkpoint, which the server runs beside its writer: on SQLite
/// it copies every frame the hot writers left into the database file; PostgreSQL has none.
async fn a_passive_checkpoint_copies_the_writers_log(store: &Store) {
    enrolled(store, "a1", "web").await;
    let checks: Vec<_> = (0..50)
        .map(|i| outcome(&i.to_string(), Status::Fail))
        .collect();
    store
        .ingest_runs(&[run("r1", "a1", t0(), checks)])
        .await
        .unwrap();
    match store.backend() {
        rampart_store::Backend::Postgres => {
            assert_eq!(store.checkpoint_wal().await.unwrap(), None);
        }
        rampart_store::Backend::Sqlite => {
            let c = store.checkpoint_wal().await.unwrap().unwrap();
            assert!(!c.busy);
            // The batch's frames were still in the log (the writer did not copy them itself)
            // and are all in the database now: no reader holds an older snapshot.
            assert!(c.frames > 0, "{c:?}");
            assert_eq!(c.copied, c.frames, "{c:?}");
        }
    }
    // What was copied still reads back.
    assert_eq!(store.run("r1").await.unwrap().unwrap().checks.len(), 50);
}
backend_test!(a_passive_checkpoint_copies_the_writers_log);

/// Batches from several tasks at once, each run posted twice (an agent's retry racing its
/// first post): every run is stored once whichever batch carries it, and each agent's latest
/// state is its newest run's, with `since` where its status last changed. On SQLite the
/// batches take the write turn and run on the ingestion connection one after another.
async fn concurrent_batches_store_each_run_once(store: &Store) {
    for a in 0..4 {
        enrolled(store, &format!("a{a}"), "web").await;
    }
    let mut tasks = Vec::new();
    for _copy in 0..2 {
        for a in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for i in 0..5 {
                    // Check 1 fails until the newest run; check 2 always passes. (Whichever
                    // order the copies' batches land in, the first applied is an r0 and
                    // anything older than r4 that lands after it is stale.)
                    let first = if i == 4 { Status::Pass } else { Status::Fail };
                    let r = run(
                        &format!("a{a}-r{i}"),
                        &format!("a{a}"),
                        t0() + Duration::hours(i),
                        vec![outcome("1", first), outcome("2", Status::Pass)],
                    );
                    outcomes.extend(store.ingest_runs(&[r]).await.unwrap());
                }
                outcomes
            }));
        }
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.extend(t.await.unwrap());
    }
    let stored = outcomes
        .iter()
        .filter(|o| **o == IngestOutcome::Stored)
        .count();
    assert_eq!((stored, outcomes.len()), (20, 40), "{outcomes:?}");
    for a in 0..4 {
        let agent = format!("a{a}");
        assert_eq!(store.agent_runs(&agent, None, 10).await.unwrap().len(), 5);
        for i in 0..5 {
            let detail = store.run(&format!("a{a}-r{i}")).await.unwrap().unwrap();
            assert_eq!(detail.checks.len(), 2, "{agent} run {i}: stored once");
        }
        let latest: Vec<_> = store
            .latest_results(&agent, None)
            .await
            .unwrap()
            .into_iter()
            .map(|l| {
                (
                    l.check_id,
                    l.status,
                    l.run_id,
                    (l.since - t0()).whole_hours(),
                )
            })
            .collect();
        let newest = format!("a{a}-r4");
        assert_eq!(
            latest,
            [
                ("1".into(), Status::Pass, newest.clone(), 4),
                ("2".into(), Status::Pass, newest, 0),
            ],
            "{agent}"
        );
    }
}
backend_test!(concurrent_batches_store_each_run_once);

/// A policy's words for a check (title, remediation, compliance…) are written once however
/// many agents report the check, each result keeping only what its host gave, and every
/// result reads back whole: the same outcome, and the same text attestations digest.
async fn a_checks_policy_words_are_stored_once(t: &TestStore) {
    let store = &t.store;
    enrolled(store, "a1", "web").await;
    enrolled(store, "a2", "web").await;
    let checks = vec![outcome("1", Status::Pass), outcome("2", Status::Fail)];
    store
        .ingest_runs(&[
            run("r1", "a1", t0(), checks.clone()),
            run("r2", "a2", t0(), checks.clone()),
        ])
        .await
        .unwrap();
    store
        .ingest_runs(&[run("r3", "a1", t0() + Duration::hours(1), checks.clone())])
        .await
        .unwrap();
    assert_eq!(t.count("SELECT COUNT(*) FROM check_texts").await, 2);
    assert_eq!(
        t.count("SELECT COUNT(*) FROM check_results WHERE text_id IS NOT NULL")
            .await,
        6
    );
    // The harness's remediation is a policy word: in no result row.
    assert_eq!(
        t.count("SELECT COUNT(*) FROM check_results WHERE outcome LIKE '%Set it right%'")
            .await,
        0
    );
    assert_eq!(
        t.count("SELECT COUNT(*) FROM check_texts WHERE text LIKE '%Set it right%'")
            .await,
        2
    );
    for id in ["r1", "r2", "r3"] {
        assert_eq!(store.run(id).await.unwrap().unwrap().checks, checks, "{id}");
        let texts: Vec<String> = checks
            .iter()
            .map(|c| serde_json::to_string(c).unwrap())
            .collect();
        assert_eq!(store.run_evidence(id).await.unwrap().unwrap().checks, texts);
    }
    // An agent that reports other words for check 1 of the same policy version gets them
    // stored and read back as its own; the other runs keep theirs.
    let mut reworded = outcome("1", Status::Fail);
    reworded.title = "Check 1, as a2's policy copy words it".into();
    store
        .ingest_runs(&[run(
            "r4",
            "a2",
            t0() + Duration::hours(1),
            vec![reworded.clone()],
        )])
        .await
        .unwrap();
    assert_eq!(t.count("SELECT COUNT(*) FROM check_texts").await, 3);
    assert_eq!(
        store.run("r4").await.unwrap().unwrap().checks,
        [reworded.clone()]
    );
    assert_eq!(store.run("r1").await.unwrap().unwrap().checks, checks);
    // The fleet's check page reads the newest run's evidence through the same join.
    let by_agent: Vec<(String, Option<String>)> = check_page(store, "1")
        .await
        .into_iter()
        .map(|h| (h.agent_id, h.outcome.map(|o| o.title)))
        .collect();
    assert_eq!(
        by_agent,
        [
            ("a2".to_string(), Some(reworded.title)),
            ("a1".to_string(), Some("Check 1".to_string())),
        ]
    );
}
backend_test!(a_checks_policy_words_are_stored_once, test_store);

/// A split result whose policy text is gone (removed behind the store's back) is an error
/// naming the column, not a result missing its words.
async fn a_result_without_its_policy_text_is_reported_corrupt(t: &TestStore) {
    let store = &t.store;
    enrolled(store, "a1", "web").await;
    store
        .ingest_runs(&[run("r1", "a1", t0(), vec![outcome("1", Status::Pass)])])
        .await
        .unwrap();
    t.tamper("DELETE FROM check_texts").await;
    let err = store.run("r1").await.unwrap_err().to_string();
    assert!(err.contains("check_results.text_id"), "{err}");
    let err = store.run_evidence("r1").await.unwrap_err().to_string();
    assert!(err.contains("check_results.text_id"), "{err}");
}
backend_test!(
    a_result_without_its_policy_text_is_reported_corrupt,
    test_store
);

/// A result whose text does not open with the policy's words as the store writes them (here
/// its fields in key order) is stored whole, beside results stored split in the same
/// batch, and both read back byte for byte: on PostgreSQL the batch's rows go through `COPY`,
/// where the whole one is the row whose `text_id` is NULL.
async fn a_result_in_another_field_order_is_stored_whole(t: &TestStore) {
    let store = &t.store;
    enrolled(store, "a1", "web").await;
    let checks = vec![
        outcome("1", Status::Pass),
        outcome("2", Status::Fail),
        outcome("3", Status::Pass),
    ];
    let mut r = run("r1", "a1", t0(), checks.clone());
    // A JSON value's fields come out in key order: `compliance` first, not the check's id.
    let reordered = serde_json::to_value(&checks[1]).unwrap().to_string();
    assert!(reordered.starts_with("{\"compliance\""), "{reordered}");
    r.check_texts[1] = reordered.clone();
    store.ingest_runs(&[r]).await.unwrap();
    assert_eq!(
        t.count("SELECT COUNT(*) FROM check_results WHERE text_id IS NULL")
            .await,
        1
    );
    assert_eq!(
        t.count("SELECT COUNT(*) FROM check_results WHERE text_id IS NOT NULL")
            .await,
        2
    );
    assert_eq!(store.run("r1").await.unwrap().unwrap().checks, checks);
    let texts = store.run_evidence("r1").await.unwrap().unwrap().checks;
    assert_eq!(texts[1], reordered);
    assert_eq!(texts[0], serde_json::to_string(&checks[0]).unwrap());
    assert_eq!(texts[2], serde_json::to_string(&checks[2]).unwrap());
}
backend_test!(a_result_in_another_field_order_is_stored_whole, test_store);
