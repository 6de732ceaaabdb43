//! The fleet's counters against the latest results they count: after every kind of change
//! (first runs, status changes, late and retried runs, re-enrolment into another group and
//! label, revocation, concurrent batches) each fleet view's sums equal a recount from every
//! agent's latest results, and a few are also checked against numbers worked out by hand.

use std::collections::BTreeMap;

use rampart_core::Status;
use rampart_store::{AgentStatus, FleetScope, Store};
use time::{Duration, OffsetDateTime};

use super::harness::{agent, cert, enrolled, outcome, run, t0};
use crate::backend_test;

fn h(n: i64) -> OffsetDateTime {
    t0() + Duration::hours(n)
}

/// (passed, failed, not applicable, other) by (policy, check).
type Tallies = BTreeMap<(String, String), (u64, u64, u64, u64)>;

/// What the scope's tallies must be, recounted from each agent's latest results.
async fn recount(store: &Store, scope: &FleetScope<'_>) -> (Tallies, BTreeMap<String, u64>) {
    let mut checks = Tallies::new();
    let mut hosts = BTreeMap::new();
    for a in store.agents(None).await.unwrap() {
        if a.status == AgentStatus::Revoked
            || !scope.narrows_to(&a)
            || scope.visible.is_some_and(|v| !v.contains(&a.group))
        {
            continue;
        }
        let latest = store.latest_results(&a.id, None).await.unwrap();
        let mut policies = std::collections::BTreeSet::new();
        for l in latest {
            policies.insert(l.policy_id.clone());
            let t = checks.entry((l.policy_id, l.check_id)).or_default();
            match l.status {
                Status::Pass => t.0 += 1,
                Status::Fail => t.1 += 1,
                Status::NotApplicable => t.2 += 1,
                _ => t.3 += 1,
            }
        }
        for p in policies {
            *hosts.entry(p).or_default() += 1;
        }
    }
    (checks, hosts)
}

async fn counted(store: &Store, scope: &FleetScope<'_>) -> (Tallies, BTreeMap<String, u64>) {
    let checks = store
        .fleet_check_tallies(scope)
        .await
        .unwrap()
        .into_iter()
        .map(|t| {
            (
                (t.policy_id, t.check_id),
                (t.passed, t.failed, t.not_applicable, t.waived + t.other),
            )
        })
        .collect();
    let hosts = store
        .fleet_policy_hosts(scope)
        .await
        .unwrap()
        .into_iter()
        .collect();
    (checks, hosts)
}

/// Every scope the dashboard offers agrees with the recount.
async fn agree(store: &Store, when: &str) {
    let web = ["web".to_string()];
    let scopes = [
        FleetScope::default(),
        FleetScope {
            group: Some("web"),
            ..FleetScope::default()
        },
        FleetScope {
            group: Some("db"),
            ..FleetScope::default()
        },
        FleetScope {
            os: Some("Debian GNU/Linux 12"),
            ..FleetScope::default()
        },
        FleetScope {
            label: Some(("env", "prod")),
            ..FleetScope::default()
        },
        FleetScope {
            visible: Some(&web),
            ..FleetScope::default()
        },
        FleetScope {
            visible: Some(&[][..]),
            ..FleetScope::default()
        },
    ];
    for scope in &scopes {
        assert_eq!(
            counted(store, scope).await,
            recount(store, scope).await,
            "{when}, {scope:?}"
        );
    }
}

fn check(policy: &str, check: &str) -> (String, String) {
    (policy.into(), check.into())
}

async fn counters_follow_every_change(store: &Store) {
    enrolled(store, "a1", "web").await;
    let mut dev = agent("a2", "web");
    dev.labels.insert("env".into(), "dev".into());
    store
        .enrol_agent(&dev, &cert("a2-c1", "a2", t0()), t0())
        .await
        .unwrap();
    enrolled(store, "a3", "db").await;
    agree(store, "enrolled, nothing reported").await;
    assert_eq!(store.agent_groups().await.unwrap(), ["db", "web"]);

    store
        .ingest_runs(&[
            run(
                "a1-r1",
                "a1",
                h(0),
                vec![
                    outcome("1", Status::Pass),
                    outcome("2", Status::Fail),
                    outcome("3", Status::NotApplicable),
                ],
            ),
            run(
                "a2-r1",
                "a2",
                h(0),
                vec![outcome("1", Status::Fail), outcome("2", Status::Fail)],
            ),
        ])
        .await
        .unwrap();
    store
        .ingest_runs(&[run(
            "a3-r1",
            "a3",
            h(0),
            vec![
                outcome("1", Status::Pass),
                outcome("2", Status::Error),
                outcome("4", Status::Waived),
            ],
        )])
        .await
        .unwrap();
    agree(store, "first runs").await;
    // Worked out by hand: check 1 passes on a1 and a3 and fails on a2; check 2 fails on a1 and
    // a2 and errs on a3; check 3 is not applicable on a1. Three hosts report the policy.
    let (checks, hosts) = counted(store, &FleetScope::default()).await;
    assert_eq!(checks[&check("baseline", "1")], (2, 1, 0, 0));
    assert_eq!(checks[&check("baseline", "2")], (0, 2, 0, 1));
    assert_eq!(checks[&check("baseline", "3")], (0, 0, 1, 0));
    assert_eq!(hosts, BTreeMap::from([("baseline".to_string(), 3)]));
    // Check 4 is waived on a3: counted as waived, apart from errors and not-run results.
    let four = store
        .fleet_check_tally(&FleetScope::default(), "baseline", "4")
        .await
        .unwrap();
    assert_eq!((four.waived, four.other, four.passed), (1, 0, 0));
    let two = store
        .fleet_check_tally(&FleetScope::default(), "baseline", "2")
        .await
        .unwrap();
    assert_eq!((two.waived, two.other, two.failed), (0, 1, 2));
    let prod = FleetScope {
        label: Some(("env", "prod")),
        ..FleetScope::default()
    };
    let (checks, hosts) = counted(store, &prod).await;
    assert_eq!(checks[&check("baseline", "1")], (2, 0, 0, 0));
    assert_eq!(hosts["baseline"], 2);

    // a1 changes two checks at hour 5; in the same batch a retry of a2's first run and a run
    // of a2's delivered late (older than what is stored) change nothing.
    store
        .ingest_runs(&[
            run(
                "a1-r2",
                "a1",
                h(5),
                vec![
                    outcome("1", Status::Fail),
                    outcome("2", Status::Pass),
                    outcome("3", Status::NotApplicable),
                ],
            ),
            run(
                "a2-r1",
                "a2",
                h(0),
                vec![outcome("1", Status::Fail), outcome("2", Status::Fail)],
            ),
            run(
                "a2-r0",
                "a2",
                h(-1),
                vec![outcome("1", Status::Pass), outcome("2", Status::Pass)],
            ),
        ])
        .await
        .unwrap();
    agree(store, "a status change, a retry and a late run").await;
    let (checks, _) = counted(store, &FleetScope::default()).await;
    assert_eq!(checks[&check("baseline", "1")], (1, 2, 0, 0));
    assert_eq!(checks[&check("baseline", "2")], (1, 1, 0, 1));

    // Newly failing since hour 4: check 1 on a1 (hour 5) only; a2 has failed it since hour 0.
    let newly = store
        .fleet_failing_checks(&FleetScope::default(), h(4), 10)
        .await
        .unwrap();
    assert_eq!(newly.len(), 1, "{newly:?}");
    assert_eq!(
        (newly[0].check_id.as_str(), newly[0].hosts),
        ("1", 1),
        "{newly:?}"
    );
    // To the hour: the start of the hour in which a1 started failing it.
    let hour = h(5).unix_timestamp() / 3600 * 3600;
    assert_eq!(newly[0].latest_hour.unix_timestamp(), hour);
    let all = store
        .fleet_failing_checks(&FleetScope::default(), h(-10), 10)
        .await
        .unwrap();
    let got: Vec<(&str, u64)> = all.iter().map(|f| (f.check_id.as_str(), f.hosts)).collect();
    assert_eq!(got, [("1", 2), ("2", 1)]);

    // a2 re-enrols into group db with env=prod: its counts move with it.
    store
        .enrol_agent(&agent("a2", "db"), &cert("a2-c2", "a2", h(6)), h(6))
        .await
        .unwrap();
    agree(store, "re-enrolment into another group and label").await;
    let (checks, hosts) = counted(
        store,
        &FleetScope {
            group: Some("db"),
            ..FleetScope::default()
        },
    )
    .await;
    assert_eq!(hosts["baseline"], 2);
    assert_eq!(checks[&check("baseline", "1")], (1, 1, 0, 0));

    // a3 is revoked: out of every view, and back when it re-enrols.
    store.revoke_agent("a3", "retired", h(7)).await.unwrap();
    agree(store, "revocation").await;
    let (checks, hosts) = counted(store, &FleetScope::default()).await;
    assert_eq!(hosts["baseline"], 2);
    assert_eq!(checks[&check("baseline", "2")], (1, 1, 0, 0));
    assert_eq!(
        store.fleet_oses(&FleetScope::default()).await.unwrap(),
        ["Debian GNU/Linux 12"]
    );
    store
        .enrol_agent(&agent("a3", "db"), &cert("a3-c2", "a3", h(8)), h(8))
        .await
        .unwrap();
    agree(store, "re-enrolment after revocation").await;
    assert_eq!(
        counted(store, &FleetScope::default()).await.1["baseline"],
        3
    );

    // The check page's count of one status the tallies lump together.
    let errs = store
        .fleet_check_status_count(&FleetScope::default(), "baseline", "2", Status::Error)
        .await
        .unwrap();
    assert_eq!(errs, 1);

    // The check's hosts in pages: failures first, then by host name, each with its result.
    let all = FleetScope::default();
    let page = |status, limit, offset| {
        let all = &all;
        async move {
            store
                .fleet_check(all, "baseline", "1", status, limit, offset)
                .await
                .unwrap()
                .into_iter()
                .map(|h| {
                    assert_eq!(h.outcome.unwrap().title, "Check 1");
                    (h.hostname, h.status)
                })
                .collect::<Vec<_>>()
        }
    };
    let host = |n: &str, s| (format!("host-{n}"), s);
    assert_eq!(
        page(None, 10, 0).await,
        [
            host("a1", Status::Fail),
            host("a2", Status::Fail),
            host("a3", Status::Pass)
        ]
    );
    assert_eq!(
        page(None, 2, 1).await,
        [host("a2", Status::Fail), host("a3", Status::Pass)]
    );
    assert_eq!(
        page(Some(Status::Pass), 10, 0).await,
        [host("a3", Status::Pass)]
    );
    assert!(page(None, 10, 3).await.is_empty());

    // a2's next run is of a policy version that dropped check 2 (failed on a2 since hour 0)
    // and added check 5: check 2 leaves a2's counts and its failing hours, the host still
    // reports the policy. Worked out by hand: check 2 passes on a1 and errs on a3.
    store
        .ingest_runs(&[run(
            "a2-r2",
            "a2",
            h(9),
            vec![outcome("1", Status::Fail), outcome("5", Status::Fail)],
        )])
        .await
        .unwrap();
    agree(store, "a check dropped by a newer policy version").await;
    let (checks, hosts) = counted(store, &FleetScope::default()).await;
    assert_eq!(checks[&check("baseline", "2")], (1, 0, 0, 1));
    assert_eq!(checks[&check("baseline", "5")], (0, 1, 0, 0));
    assert_eq!(hosts["baseline"], 3);
    let mut failing: Vec<(String, u64)> = store
        .fleet_failing_checks(&FleetScope::default(), h(-10), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.check_id, f.hosts))
        .collect();
    failing.sort();
    assert_eq!(failing, [("1".to_string(), 2), ("5".to_string(), 1)]);
    let on_two: Vec<String> = store
        .fleet_check(&all, "baseline", "2", None, 10, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.hostname)
        .collect();
    // a3's error before a1's pass: failures, then errors, then the rest.
    assert_eq!(on_two, ["host-a3", "host-a1"]);
    // A run without check results (requirements not met) and a late run that still had
    // check 2 leave the latest state as it is.
    store
        .ingest_runs(&[
            run("a2-r3", "a2", h(10), Vec::new()),
            run("a2-r-late", "a2", h(8), vec![outcome("2", Status::Fail)]),
        ])
        .await
        .unwrap();
    agree(store, "an empty run and a late one").await;
    let a2: Vec<(String, String)> = store
        .latest_results("a2", None)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.check_id, l.run_id))
        .collect();
    assert_eq!(
        a2,
        [
            ("1".to_string(), "a2-r2".to_string()),
            ("5".to_string(), "a2-r2".to_string())
        ]
    );
}
backend_test!(counters_follow_every_change);

/// Batches for agents of one cohort, posted at once in opposite orders, all land, and the
/// counters they share add up (on PostgreSQL, transactions that could deadlock on them).
async fn concurrent_batches_keep_the_counters_exact(store: &Store) {
    let ids: Vec<String> = (0..8).map(|i| format!("c{i}")).collect();
    for id in &ids {
        enrolled(store, id, "web").await;
    }
    let mut posts = Vec::new();
    for round in 0..4 {
        let mut batch: Vec<_> = ids
            .iter()
            .map(|id| {
                let status = if (round + id.len()) % 2 == 0 {
                    Status::Pass
                } else {
                    Status::Fail
                };
                run(
                    &format!("{id}-{round}"),
                    id,
                    h(round as i64),
                    (0..20).map(|c| outcome(&c.to_string(), status)).collect(),
                )
            })
            .collect();
        if round % 2 == 1 {
            batch.reverse();
        }
        let store = store.clone();
        posts.push(tokio::spawn(async move {
            store.ingest_runs(&batch).await.unwrap();
        }));
    }
    for p in posts {
        p.await.unwrap();
    }
    agree(store, "concurrent batches").await;
    let (checks, hosts) = counted(store, &FleetScope::default()).await;
    assert_eq!(hosts["baseline"], 8);
    let (p, f, _, _) = checks[&check("baseline", "0")];
    assert_eq!(p + f, 8);
}
backend_test!(concurrent_batches_keep_the_counters_exact);

/// Ingestion while agents enrol, re-enrol and are revoked at the same moment: every batch and
/// every enrolment lands (on SQLite the batch's first statements read the agents' state, so it
/// must hold the write lock before it reads, or another writer's commit in between refuses
/// its first write), and the counters still agree with the latest results.
async fn ingestion_beside_enrolments_never_fails(store: &Store) {
    for i in 0..4 {
        enrolled(store, &format!("w{i}"), "web").await;
    }
    let ingest = {
        let store = store.clone();
        tokio::spawn(async move {
            for round in 0..40 {
                let batch: Vec<_> = (0..4)
                    .map(|i| {
                        let status = if (round + i) % 3 == 0 {
                            Status::Fail
                        } else {
                            Status::Pass
                        };
                        run(
                            &format!("w{i}-{round}"),
                            &format!("w{i}"),
                            h(round as i64),
                            (0..10).map(|c| outcome(&c.to_string(), status)).collect(),
                        )
                    })
                    .collect();
                store.ingest_runs(&batch).await.unwrap();
            }
        })
    };
    let enrol = {
        let store = store.clone();
        tokio::spawn(async move {
            for n in 0..40 {
                let id = format!("e{n}");
                store
                    .enrol_agent(
                        &agent(&id, "db"),
                        &cert(&format!("{id}-c"), &id, t0()),
                        t0(),
                    )
                    .await
                    .unwrap();
                // And an ingesting agent moves group and back, its counts with it.
                let w = format!("w{}", n % 4);
                let group = if n % 2 == 0 { "db" } else { "web" };
                store
                    .enrol_agent(
                        &agent(&w, group),
                        &cert(&format!("{w}-r{n}"), &w, t0()),
                        t0(),
                    )
                    .await
                    .unwrap();
            }
        })
    };
    ingest.await.unwrap();
    enrol.await.unwrap();
    agree(store, "ingestion beside enrolments").await;
}
backend_test!(ingestion_beside_enrolments_never_fails);

/// What a metrics scrape reads: agents by group and state with their certificates' expiry,
/// and each group's latest results per policy, all worked out by hand.
async fn the_census_counts_groups_states_and_scores(store: &Store) {
    assert_eq!(
        store.agent_census(h(0), h(-1)).await.unwrap(),
        rampart_store::AgentCensus::default()
    );
    // a1 and a2 in web, a3 and a4 in db; certificates issued at t0 last 24 hours, a4's at h(2).
    for (id, group) in [("a1", "web"), ("a2", "web"), ("a3", "db")] {
        enrolled(store, id, group).await;
    }
    store
        .enrol_agent(&agent("a4", "db"), &cert("a4-c1", "a4", h(2)), h(2))
        .await
        .unwrap();
    // a1 beat at hour 10, a3 at hour 3; a2 revoked.
    store
        .touch_agents(&BTreeMap::from([("a1".into(), h(10)), ("a3".into(), h(3))]))
        .await
        .unwrap();
    store.revoke_agent("a2", "test", h(1)).await.unwrap();
    store
        .ingest_runs(&[
            run(
                "a1-r1",
                "a1",
                h(0),
                vec![outcome("1", Status::Pass), outcome("2", Status::Fail)],
            ),
            run(
                "a2-r1",
                "a2",
                h(0),
                vec![outcome("1", Status::Fail), outcome("2", Status::Fail)],
            ),
            run(
                "a3-r1",
                "a3",
                h(0),
                vec![
                    outcome("1", Status::Pass),
                    outcome("2", Status::Pass),
                    outcome("3", Status::Waived),
                    outcome("4", Status::Error),
                ],
            ),
        ])
        .await
        .unwrap();

    // At hour 12 with a 5-hour offline threshold: a1 online, a3 and a4 offline, a2 revoked.
    // The earliest current certificate of an agent not revoked ends at h(24) (a1's and a3's);
    // none has expired yet; at hour 25 two have (a4's lasts until h(26)).
    let census = store.agent_census(h(12), h(7)).await.unwrap();
    let states: Vec<(&str, &str, u64)> = census
        .groups
        .iter()
        .map(|g| (g.group.as_str(), g.state.as_str(), g.agents))
        .collect();
    assert_eq!(
        states,
        [
            ("db", "offline", 2),
            ("web", "online", 1),
            ("web", "revoked", 1)
        ]
    );
    assert_eq!(census.earliest_cert_expiry, Some(h(24)));
    assert_eq!(census.expired_certs, 0);
    assert_eq!(
        store
            .agent_census(h(25), h(20))
            .await
            .unwrap()
            .expired_certs,
        2
    );

    // Revoked a2's results are not the fleet's any more.
    let tallies = store.group_policy_tallies().await.unwrap();
    let got: Vec<(&str, &str, [u64; 6])> = tallies
        .iter()
        .map(|t| {
            (
                t.group.as_str(),
                t.policy_id.as_str(),
                [
                    t.hosts,
                    t.passed,
                    t.failed,
                    t.not_applicable,
                    t.waived,
                    t.other,
                ],
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("db", "baseline", [1, 2, 0, 0, 1, 1]),
            ("web", "baseline", [1, 1, 1, 0, 0, 0]),
        ]
    );
}
backend_test!(the_census_counts_groups_states_and_scores);
