//! The event outbox: events written by the transactions they report (audit entries, runs and
//! their status changes), queued per enabled destination, claimed under leases (once per
//! destination, also by concurrent claimers), settled, retried, dead-lettered, pruned.

use std::collections::BTreeSet;

use rampart_audit::{Event as AuditEvent, Outcome};
use rampart_core::Status;
use rampart_events::{Body, Event};
use rampart_store::{Failed, NewDestination, Store};
use time::Duration;

use super::harness::{enrolled, outcome, run, t0};
use crate::backend_test;

fn destination(name: &str, enabled: bool, max_attempts: u32) -> NewDestination {
    NewDestination {
        name: name.into(),
        kind: "webhook".into(),
        config: r#"{"url":"https://siem.example/hook"}"#.into(),
        filter: "{}".into(),
        enabled,
        max_attempts,
    }
}

fn parsed(body: &str) -> Event {
    Event::from_json(body).unwrap()
}

async fn claim_all(store: &Store, dest: &str, at: time::OffsetDateTime) -> Vec<(i64, Event)> {
    store
        .claim_deliveries(dest, at, Duration::seconds(30), 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.seq, parsed(&c.body)))
        .collect()
}

async fn events_are_written_by_what_they_report(store: &Store) {
    store
        .put_destination(&destination("siem", true, 5), t0())
        .await
        .unwrap();
    store
        .put_destination(&destination("off", false, 5), t0())
        .await
        .unwrap();
    enrolled(store, "a1", "web").await;
    // An audit entry about the agent: one typed event, the agent's group looked up.
    store
        .audit_append(
            &[
                AuditEvent::new("alice", "agent.revoke", "agent:a1", Outcome::Success)
                    .detail("reason", "lost laptop"),
            ],
            t0(),
        )
        .await
        .unwrap();
    // A first run: only run.stored (first results are not changes). Then a run where check 1
    // went from pass to fail and check 2 stayed: run.stored and one check.changed.
    store
        .ingest_runs(&[run(
            "r1",
            "a1",
            t0(),
            vec![outcome("1", Status::Pass), outcome("2", Status::Fail)],
        )])
        .await
        .unwrap();
    store
        .ingest_runs(&[run(
            "r2",
            "a1",
            t0() + Duration::hours(1),
            vec![outcome("1", Status::Fail), outcome("2", Status::Fail)],
        )])
        .await
        .unwrap();
    // A retry of r2 stores nothing and says nothing.
    store
        .ingest_runs(&[run(
            "r2",
            "a1",
            t0() + Duration::hours(1),
            vec![outcome("1", Status::Fail), outcome("2", Status::Fail)],
        )])
        .await
        .unwrap();

    let got = claim_all(store, "siem", t0() + Duration::hours(2)).await;
    let kinds: Vec<&str> = got.iter().map(|(_, e)| e.body.kind()).collect();
    assert_eq!(
        kinds,
        ["agent.revoked", "run.stored", "run.stored", "check.changed"]
    );
    let seqs: Vec<i64> = got.iter().map(|(s, _)| *s).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let ids: BTreeSet<&str> = got.iter().map(|(_, e)| e.id.as_str()).collect();
    assert_eq!(ids.len(), 4, "unique ids");
    let revoked = &got[0].1;
    assert_eq!(revoked.agent.as_ref().unwrap().group, "web");
    assert_eq!(revoked.agent.as_ref().unwrap().hostname, "host-a1");
    let Body::AgentRevoked(f) = &revoked.body else {
        panic!("{revoked:?}")
    };
    assert_eq!(f.detail["reason"], "lost laptop");
    let Body::RunStored(r) = &got[2].1.body else {
        panic!()
    };
    assert_eq!((r.run.as_str(), r.passed, r.failed), ("r2", 0, 2));
    let Body::CheckChanged(c) = &got[3].1.body else {
        panic!()
    };
    assert_eq!(
        (c.check.as_str(), c.from, c.to, c.run.as_str()),
        ("1", Some(Status::Pass), Status::Fail, "r2")
    );
    assert_eq!(
        got[3].1.time,
        t0() + Duration::hours(1) + Duration::seconds(2)
    );
    // Nothing for the disabled destination; the live reader sees all four.
    assert!(
        claim_all(store, "off", t0() + Duration::hours(2))
            .await
            .is_empty()
    );
    let live = store.events_after(0, 100).await.unwrap();
    assert_eq!(live.len(), 4);
    assert_eq!(live[0].group.as_deref(), Some("web"));
    assert_eq!(store.events_after(seqs[1], 100).await.unwrap().len(), 2);
}
backend_test!(events_are_written_by_what_they_report);

/// One audit batch naming several agents (one twice, one unknown) and something else: each
/// event carries its own agent as stored.
async fn an_audit_batch_names_each_events_agent(store: &Store) {
    store
        .put_destination(&destination("siem", true, 5), t0())
        .await
        .unwrap();
    enrolled(store, "a1", "web").await;
    enrolled(store, "a2", "db").await;
    let revoke = |target: &str| AuditEvent::new("alice", "agent.revoke", target, Outcome::Success);
    store
        .audit_append(
            &[
                revoke("agent:a2"),
                revoke("agent:gone"),
                AuditEvent::new("alice", "user.create", "user:bob", Outcome::Success),
                revoke("agent:a1"),
                revoke("agent:a2"),
            ],
            t0(),
        )
        .await
        .unwrap();
    let got = claim_all(store, "siem", t0() + Duration::hours(1)).await;
    let agents: Vec<Option<(&str, &str, &str)>> = got
        .iter()
        .map(|(_, e)| {
            e.agent
                .as_ref()
                .map(|a| (a.id.as_str(), a.hostname.as_str(), a.group.as_str()))
        })
        .collect();
    assert_eq!(
        agents,
        [
            Some(("a2", "host-a2", "db")),
            None,
            None,
            Some(("a1", "host-a1", "web")),
            Some(("a2", "host-a2", "db")),
        ]
    );
}
backend_test!(an_audit_batch_names_each_events_agent);

async fn leases_retries_and_dead_letters(store: &Store) {
    store
        .put_destination(&destination("siem", true, 2), t0())
        .await
        .unwrap();
    let events: Vec<AuditEvent> = (0..4)
        .map(|i| AuditEvent::new("alice", "login", format!("user:u{i}"), Outcome::Failure))
        .collect();
    store.audit_append(&events, t0()).await.unwrap();
    let t = t0() + Duration::seconds(1);
    let first = claim_all(store, "siem", t).await;
    assert_eq!(first.len(), 4);
    let s: Vec<i64> = first.iter().map(|(s, _)| *s).collect();
    // Leased: nobody else gets them meanwhile.
    assert!(claim_all(store, "siem", t).await.is_empty());
    // Two delivered, one failed (back in a minute); the fourth's dispatcher died.
    store
        .settle_deliveries(
            "siem",
            &[s[0], s[1]],
            &[Failed {
                seq: s[2],
                error: "HTTP 503".into(),
                retry_at: t + Duration::seconds(60),
            }],
            t,
        )
        .await
        .unwrap();
    let d = store.destination("siem").await.unwrap().unwrap();
    assert_eq!((d.delivered, d.failed, d.consecutive_failures), (2, 1, 1));
    assert_eq!(d.last_error.as_deref(), Some("HTTP 503"));
    assert!(
        claim_all(store, "siem", t + Duration::seconds(5))
            .await
            .is_empty()
    );
    // The dead dispatcher's lease ends: its event is claimed again (at least once).
    let again = claim_all(store, "siem", t + Duration::seconds(31)).await;
    assert_eq!(again.iter().map(|x| x.0).collect::<Vec<_>>(), [s[3]]);
    store
        .settle_deliveries("siem", &[s[3]], &[], t + Duration::seconds(31))
        .await
        .unwrap();
    assert_eq!(
        store
            .destination("siem")
            .await
            .unwrap()
            .unwrap()
            .consecutive_failures,
        0
    );
    // The failed one is due after its minute, fails again: out of its two attempts.
    let due = store
        .claim_deliveries("siem", t + Duration::seconds(61), Duration::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!((due.len(), due[0].seq, due[0].attempts), (1, s[2], 1));
    store
        .settle_deliveries(
            "siem",
            &[],
            &[Failed {
                seq: s[2],
                error: "HTTP 500".into(),
                retry_at: t + Duration::seconds(120),
            }],
            t + Duration::seconds(61),
        )
        .await
        .unwrap();
    assert!(
        claim_all(store, "siem", t + Duration::hours(1))
            .await
            .is_empty()
    );
    let dead = store.dead_letters("siem", 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].seq, dead[0].attempts, dead[0].last_error.as_deref()),
        (s[2], 2, Some("HTTP 500"))
    );
    let backlog = store.backlogs().await.unwrap();
    assert_eq!(backlog.len(), 1);
    assert_eq!((backlog[0].1.pending, backlog[0].1.dead), (0, 1));
    // Retried by an operator: claimable at once, with fresh attempts.
    let now = t + Duration::hours(1);
    assert_eq!(
        store
            .resolve_dead_letters("siem", None, true, now)
            .await
            .unwrap(),
        1
    );
    let back = store
        .claim_deliveries("siem", now, Duration::seconds(30), 10)
        .await
        .unwrap();
    assert_eq!((back.len(), back[0].attempts), (1, 0));
    store
        .settle_deliveries(
            "siem",
            &[],
            &[Failed {
                seq: s[2],
                error: "x".into(),
                retry_at: now,
            }],
            now,
        )
        .await
        .unwrap();
    // Still one attempt left; failing it makes it dead again, and dropping removes it.
    let back = claim_all(store, "siem", now + Duration::minutes(1)).await;
    assert_eq!(back.len(), 1);
    store
        .settle_deliveries(
            "siem",
            &[],
            &[Failed {
                seq: s[2],
                error: "x".into(),
                retry_at: now,
            }],
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .resolve_dead_letters("siem", Some(&[s[2]]), false, now)
            .await
            .unwrap(),
        1
    );
    assert!(store.dead_letters("siem", 10).await.unwrap().is_empty());
    // Delivered everywhere and old: pruned; a newer event stays.
    store
        .audit_append(
            &[AuditEvent::new(
                "bob",
                "login",
                "user:bob",
                Outcome::Success,
            )],
            t0() + Duration::days(10),
        )
        .await
        .unwrap();
    assert_eq!(
        store.prune_events(t0() + Duration::days(5)).await.unwrap(),
        4
    );
    let left = store.events_after(0, 100).await.unwrap();
    assert_eq!(left.len(), 1);
    // An event still queued for a destination is never pruned.
    assert_eq!(
        store.prune_events(t0() + Duration::days(20)).await.unwrap(),
        0
    );
    assert!(store.delete_destination("siem").await.unwrap());
    assert_eq!(
        store.prune_events(t0() + Duration::days(20)).await.unwrap(),
        1
    );
}
backend_test!(leases_retries_and_dead_letters);

/// Two dispatchers (two replicas) claim from one queue at once: every event is claimed by
/// exactly one of them.
async fn concurrent_claimers_never_share_an_event(store: &Store) {
    store
        .put_destination(&destination("siem", true, 5), t0())
        .await
        .unwrap();
    let events: Vec<AuditEvent> = (0..300)
        .map(|i| AuditEvent::new("alice", "login", format!("user:u{i}"), Outcome::Success))
        .collect();
    store.audit_append(&events, t0()).await.unwrap();
    let claimer = |store: Store| {
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store
                    .claim_deliveries("siem", t0(), Duration::seconds(60), 7)
                    .await
                    .unwrap();
                if got.is_empty() {
                    break;
                }
                let seqs: Vec<i64> = got.iter().map(|c| c.seq).collect();
                store
                    .settle_deliveries("siem", &seqs, &[], t0())
                    .await
                    .unwrap();
                mine.extend(seqs);
            }
            mine
        })
    };
    let (a, b) = (claimer(store.clone()), claimer(store.clone()));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let a: BTreeSet<i64> = a.into_iter().collect();
    let b: BTreeSet<i64> = b.into_iter().collect();
    assert!(a.is_disjoint(&b), "an event went to both claimers");
    assert_eq!(a.len() + b.len(), 300);
    assert_eq!(
        store.destination("siem").await.unwrap().unwrap().delivered,
        300
    );
}
backend_test!(concurrent_claimers_never_share_an_event);

/// Each spell of an agent's silence is one `agent.offline` event: announced once, again only
/// after the agent came back; revoked agents are not announced.
async fn offline_agents_are_announced_once_per_silence(store: &Store) {
    store
        .put_destination(&destination("siem", true, 5), t0())
        .await
        .unwrap();
    enrolled(store, "a1", "web").await;
    enrolled(store, "a2", "web").await;
    enrolled(store, "a3", "db").await;
    store.revoke_agent("a3", "gone", t0()).await.unwrap();
    let h = |n: i64| t0() + Duration::hours(n);
    // a2 beats at hour 2; at hour 3 with a 90-minute threshold only a1 is silent.
    store
        .touch_agents(&std::collections::BTreeMap::from([(
            "a2".to_string(),
            h(2),
        )]))
        .await
        .unwrap();
    let offline = |at: i64| store.announce_offline(h(at), h(at) - Duration::minutes(90));
    assert_eq!(offline(3).await.unwrap(), 1);
    assert_eq!(offline(3).await.unwrap(), 0, "announced once");
    assert_eq!(offline(4).await.unwrap(), 1, "a2 now");
    assert_eq!(offline(5).await.unwrap(), 0);
    // a1 comes back at hour 6 and falls silent again: a second announcement.
    store
        .touch_agents(&std::collections::BTreeMap::from([(
            "a1".to_string(),
            h(6),
        )]))
        .await
        .unwrap();
    assert_eq!(offline(7).await.unwrap(), 0);
    assert_eq!(offline(8).await.unwrap(), 1);
    let got = claim_all(store, "siem", h(9)).await;
    let offline: Vec<(&str, time::OffsetDateTime)> = got
        .iter()
        .filter_map(|(_, e)| match &e.body {
            Body::AgentOffline(o) => Some((e.agent.as_ref().unwrap().id.as_str(), o.last_seen)),
            _ => None,
        })
        .collect();
    assert_eq!(offline, [("a1", t0()), ("a2", h(2)), ("a1", h(6))]);
    let first = got
        .iter()
        .find(|(_, e)| e.body.kind() == "agent.offline")
        .unwrap();
    assert_eq!(first.1.time, h(3));
    assert_eq!(first.1.agent.as_ref().unwrap().group, "web");
}
backend_test!(offline_agents_are_announced_once_per_silence);
