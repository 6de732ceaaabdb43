//! The audit log on both backends: appends, checkpoints and proofs that verify against them,
//! search, concurrent appends from two replicas without a fork, and tampering with the rows
//! directly in the database, caught by whole-log verification.

use rampart_audit::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use rampart_audit::{Event, LogCheck, LogKey, LogVerifier, Outcome, Problem, Report};
use rampart_store::testing::TestStore;
use rampart_store::{AuditQuery, Store, StoredCheckpoint};
use time::{Duration, OffsetDateTime};

use crate::backend_test;
use crate::store::harness::t0;

fn key() -> LogKey {
    LogKey::from_seed("rampart.audit/test", [9; 32]).unwrap()
}

fn event(i: u64) -> Event {
    let actor = if i.is_multiple_of(3) { "alice" } else { "bob" };
    let action = ["login", "token.create", "token.revoke", "user.create"][(i % 4) as usize];
    Event::new(actor, action, format!("user:u{}", i % 5), Outcome::Success)
        .source("127.0.0.1")
        .detail("n", i.to_string())
}

async fn append_n(store: &Store, from: u64, n: u64, at: OffsetDateTime) {
    let events: Vec<Event> = (from..from + n).map(event).collect();
    let first = store.audit_append(&events, at).await.unwrap();
    assert_eq!(first, from);
}

/// Appends `events` and signs a checkpoint covering them in one transaction, as the attestation
/// issuer does (here making no attestation): the first entry's index and the checkpoint.
async fn append_signed(
    store: &Store,
    events: &[Event],
    key: &LogKey,
    at: OffsetDateTime,
) -> (u64, StoredCheckpoint) {
    let mut signed = None;
    let stored = store
        .record_attestations(events, key, at, |first, checkpoint| {
            signed = Some((first, checkpoint.clone()));
            Ok(Vec::new())
        })
        .await
        .unwrap();
    assert_eq!(stored, Vec::<bool>::new());
    signed.expect("a checkpoint covering the entries")
}

/// The whole log as an auditor checks it: every entry, every checkpoint, opened with the key.
async fn verify(store: &Store, trusted: Option<rampart_audit::Checkpoint>) -> Report {
    let v = LogVerifier::new(key().vkey()).unwrap();
    let cps = store
        .audit_checkpoints(0, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|c| v.open(&c.note).unwrap())
        .collect();
    let mut check = LogCheck::new(cps, trusted);
    let mut from = 0;
    loop {
        let page = store.audit_entries(from, 7).await.unwrap();
        let Some(last) = page.last() else { break };
        from = last.index + 1;
        for row in &page {
            check.push(row.body.as_bytes());
        }
    }
    check.finish()
}

async fn appends_checkpoints_and_proofs(t: &TestStore) {
    let store = &t.store;
    let key = key();
    let v = LogVerifier::new(key.vkey()).unwrap();
    assert_eq!(store.audit_size().await.unwrap(), 0);
    // Nothing to sign in an empty log.
    assert_eq!(store.audit_checkpoint(&key, t0(), 1).await.unwrap(), None);

    append_n(store, 0, 5, t0()).await;
    append_n(store, 5, 8, t0() + Duration::seconds(1)).await;
    assert_eq!(store.audit_size().await.unwrap(), 13);
    // Fewer new entries than asked for: no checkpoint yet.
    assert_eq!(store.audit_checkpoint(&key, t0(), 14).await.unwrap(), None);
    let cp13 = store
        .audit_checkpoint(&key, t0() + Duration::seconds(2), 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cp13.size, 13);
    // Nothing new since: nothing signed.
    assert_eq!(store.audit_checkpoint(&key, t0(), 1).await.unwrap(), None);
    let opened13 = v.open(&cp13.note).unwrap();
    assert_eq!(opened13.size, 13);

    append_n(store, 13, 20, t0() + Duration::seconds(3)).await;
    // A replica with a clock behind: the checkpoint's time does not go back.
    let cp33 = store
        .audit_checkpoint(&key, t0() - Duration::hours(1), 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cp33.created_at, cp13.created_at);
    let opened33 = v.open(&cp33.note).unwrap();
    assert_eq!(
        store.audit_latest_checkpoint().await.unwrap(),
        Some(cp33.clone())
    );
    assert_eq!(
        store.audit_checkpoint_at(13).await.unwrap(),
        Some(cp13.clone())
    );
    assert_eq!(store.audit_checkpoint_at(14).await.unwrap(), None);
    assert_eq!(
        store.audit_checkpoints(13, 10).await.unwrap(),
        vec![cp33.clone()]
    );
    assert_eq!(store.audit_root(33).await.unwrap(), opened33.root);

    // The stored entry is the leaf: its text, index and time.
    let e7 = store.audit_entry(7).await.unwrap().unwrap();
    let parsed = rampart_audit::Entry::parse(e7.body.as_bytes()).unwrap();
    assert_eq!(parsed.index, 7);
    assert_eq!(parsed.event, event(7));
    assert_eq!(parsed.time, t0() + Duration::seconds(1));
    assert_eq!(store.audit_entry(33).await.unwrap(), None);

    // Every entry's inclusion proof verifies against both signed roots it falls under.
    for i in 0..33 {
        let body = store.audit_entry(i).await.unwrap().unwrap().body;
        let leaf = leaf_hash(body.as_bytes());
        let path = store.audit_inclusion_proof(i, 33).await.unwrap();
        verify_inclusion(&leaf, i as usize, 33, &path, &opened33.root).unwrap();
        if i < 13 {
            let path = store.audit_inclusion_proof(i, 13).await.unwrap();
            verify_inclusion(&leaf, i as usize, 13, &path, &opened13.root).unwrap();
        }
    }
    let proof = store.audit_consistency_proof(13, 33).await.unwrap();
    verify_consistency(13, 33, &proof, &opened13.root, &opened33.root).unwrap();
    // Beyond the log: refused, not invented.
    assert!(store.audit_inclusion_proof(33, 33).await.is_err());
    assert!(store.audit_inclusion_proof(0, 34).await.is_err());
    assert!(store.audit_consistency_proof(0, 33).await.is_err());
    assert!(store.audit_consistency_proof(13, 40).await.is_err());

    let report = verify(store, None).await;
    assert_eq!(report.problems, vec![]);
    assert_eq!(
        (report.entries, report.checkpoints_matched, report.unsigned),
        (33, 2, 0)
    );
}
backend_test!(appends_checkpoints_and_proofs, test_store);

/// Entries appended with their checkpoint: one transaction, the checkpoint covering exactly
/// them, its time never back from the last one's.
async fn an_append_can_sign_its_checkpoint(t: &TestStore) {
    let store = &t.store;
    let key = key();
    let v = LogVerifier::new(key.vkey()).unwrap();
    // Nothing appended: nothing to sign, and nothing asked of the signer.
    assert_eq!(
        store
            .record_attestations(&[], &key, t0(), |_, _| Err("nothing to sign".into()))
            .await
            .unwrap(),
        Vec::<bool>::new()
    );
    assert_eq!(store.audit_size().await.unwrap(), 0);
    append_n(store, 0, 5, t0()).await;
    let events: Vec<Event> = (5..12).map(event).collect();
    let (first, cp12) = append_signed(store, &events, &key, t0() + Duration::seconds(1)).await;
    assert_eq!(first, 5);
    assert_eq!(
        (cp12.size, cp12.created_at),
        (12, t0() + Duration::seconds(1))
    );
    let opened = v.open(&cp12.note).unwrap();
    assert_eq!(opened.size, 12);
    assert_eq!(store.audit_root(12).await.unwrap(), opened.root);
    assert_eq!(
        store.audit_latest_checkpoint().await.unwrap(),
        Some(cp12.clone())
    );
    // Nothing new since: the separate checkpoint has nothing to sign.
    assert_eq!(store.audit_checkpoint(&key, t0(), 1).await.unwrap(), None);
    // A replica with a clock behind.
    let events: Vec<Event> = (12..15).map(event).collect();
    let (first, cp15) = append_signed(store, &events, &key, t0() - Duration::hours(1)).await;
    assert_eq!(first, 12);
    assert_eq!((cp15.size, cp15.created_at), (15, cp12.created_at));
    let report = verify(store, None).await;
    assert_eq!(report.problems, vec![]);
    assert_eq!(
        (report.entries, report.checkpoints_matched, report.unsigned),
        (15, 2, 0)
    );
}
backend_test!(an_append_can_sign_its_checkpoint, test_store);

async fn search_filters(t: &TestStore) {
    let store = &t.store;
    for i in 0..40 {
        append_n(store, i, 1, t0() + Duration::seconds(i as i64)).await;
    }
    let all = |q: AuditQuery| async move {
        store
            .audit_search(&AuditQuery { limit: 100, ..q })
            .await
            .unwrap()
            .iter()
            .map(|r| r.index)
            .collect::<Vec<u64>>()
    };
    // By hand from event(): alice acts on multiples of 3, newest first.
    assert_eq!(
        all(AuditQuery {
            actor: Some("alice".into()),
            ..Default::default()
        })
        .await,
        (0..40).rev().filter(|i| i % 3 == 0).collect::<Vec<_>>()
    );
    assert_eq!(
        all(AuditQuery {
            action: Some("token.*".into()),
            ..Default::default()
        })
        .await,
        (0..40)
            .rev()
            .filter(|i| i % 4 == 1 || i % 4 == 2)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        all(AuditQuery {
            action: Some("token".into()),
            ..Default::default()
        })
        .await,
        Vec::<u64>::new()
    );
    assert_eq!(
        all(AuditQuery {
            target: Some("user:u2".into()),
            actor: Some("bob".into()),
            ..Default::default()
        })
        .await,
        vec![37, 32, 22, 17, 7, 2]
    );
    assert_eq!(
        all(AuditQuery {
            since: Some(t0() + Duration::seconds(10)),
            until: Some(t0() + Duration::seconds(13)),
            ..Default::default()
        })
        .await,
        vec![12, 11, 10]
    );
    assert_eq!(
        all(AuditQuery {
            outcome: Some(Outcome::Failure),
            ..Default::default()
        })
        .await,
        Vec::<u64>::new()
    );
    // Paging newest first.
    let page = store
        .audit_search(&AuditQuery {
            before: Some(30),
            limit: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|r| r.index).collect::<Vec<_>>(),
        vec![29, 28, 27]
    );
}
backend_test!(search_filters, test_store);

async fn two_replicas_append_one_history(t: &TestStore) {
    // A second store on the same database: another server replica.
    let other = Store::open(&t.url).await.unwrap();
    let key = key();
    let mut tasks = Vec::new();
    for (r, store) in [t.store.clone(), other.clone()].into_iter().enumerate() {
        let key = LogKey::from_seed("rampart.audit/test", *key.seed()).unwrap();
        tasks.push(tokio::spawn(async move {
            for i in 0..60u64 {
                let batch: Vec<Event> = (0..(i % 3 + 1))
                    .map(|j| {
                        Event::new(
                            format!("replica{r}"),
                            "login",
                            format!("user:{i}-{j}"),
                            Outcome::Success,
                        )
                    })
                    .collect();
                // One replica signs some of its batches as it appends them.
                if r == 1 && i % 7 == 3 {
                    let (first, signed) =
                        append_signed(&store, &batch, &key, OffsetDateTime::now_utc()).await;
                    assert_eq!(signed.size, first + batch.len() as u64);
                } else {
                    store
                        .audit_append(&batch, OffsetDateTime::now_utc())
                        .await
                        .unwrap();
                }
                if i % 10 == 0 {
                    store
                        .audit_checkpoint(&key, OffsetDateTime::now_utc(), 1)
                        .await
                        .unwrap();
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    t.store
        .audit_checkpoint(&key, OffsetDateTime::now_utc(), 1)
        .await
        .unwrap();
    // 2 replicas × 60 batches of 1, 2 or 3 (20 each) = 240 entries, indices 0..240 each once,
    // every checkpoint of either replica matching the one history.
    let report = verify(&t.store, None).await;
    assert_eq!(report.problems, vec![]);
    assert_eq!(report.entries, 240);
    assert!(report.checkpoints_matched >= 2, "{report:?}");
    assert_eq!(report.unsigned, 0);
    other.close().await;
}
backend_test!(two_replicas_append_one_history, test_store);

/// A log of 30 entries with checkpoints at 10 and 20, and the report after `sql`.
async fn tampered(t: &TestStore, sql: &str) -> Report {
    let key = key();
    append_n(&t.store, 0, 10, t0()).await;
    t.store
        .audit_checkpoint(&key, t0(), 1)
        .await
        .unwrap()
        .unwrap();
    append_n(&t.store, 10, 10, t0()).await;
    t.store
        .audit_checkpoint(&key, t0(), 1)
        .await
        .unwrap()
        .unwrap();
    append_n(&t.store, 20, 10, t0()).await;
    assert_eq!(verify(&t.store, None).await.problems, vec![]);
    t.tamper(sql).await;
    verify(&t.store, None).await
}

async fn an_edited_entry_is_caught(t: &TestStore) {
    let r = tampered(
        t,
        "UPDATE audit_entries SET body = REPLACE(body, '\"actor\":\"bob\"', '\"actor\":\"eve\"'), \
         actor = 'eve' WHERE seq = 14",
    )
    .await;
    assert_eq!(r.problems, vec![Problem::Changed { from: 10, size: 20 }]);
}
backend_test!(an_edited_entry_is_caught, test_store);

async fn a_deleted_entry_is_caught(t: &TestStore) {
    let r = tampered(t, "DELETE FROM audit_entries WHERE seq = 4").await;
    assert_eq!(
        r.problems,
        vec![
            Problem::Misplaced {
                position: 4,
                found: 5
            },
            Problem::Changed { from: 0, size: 10 },
        ]
    );
}
backend_test!(a_deleted_entry_is_caught, test_store);

async fn deleted_entries_at_the_end_are_caught(t: &TestStore) {
    let r = tampered(t, "DELETE FROM audit_entries WHERE seq >= 17").await;
    assert_eq!(
        r.problems,
        vec![Problem::Truncated {
            entries: 17,
            checkpoint: 20
        }]
    );
}
backend_test!(deleted_entries_at_the_end_are_caught, test_store);

async fn an_inserted_entry_is_caught(t: &TestStore) {
    // Room made at 12 by moving the later rows up, and a forged entry put there (its own
    // index right, so only the hashes can tell).
    let r = tampered(
        t,
        "UPDATE audit_entries SET seq = seq + 1000 WHERE seq >= 12; \
         UPDATE audit_entries SET seq = seq - 999 WHERE seq >= 1000; \
         INSERT INTO audit_entries (seq, at_ms, actor, action, target, outcome, body) VALUES \
         (12, 0, 'eve', 'login', 'user:eve', 'success', \
          '{\"index\":12,\"time\":\"2026-09-21T14:13:20.000Z\",\"actor\":\"eve\",\"action\":\"login\",\"target\":\"user:eve\",\"outcome\":\"success\"}')",
    )
    .await;
    assert_eq!(
        r.problems,
        vec![
            Problem::Misplaced {
                position: 13,
                found: 12
            },
            Problem::Changed { from: 10, size: 20 },
        ]
    );
}
backend_test!(an_inserted_entry_is_caught, test_store);

async fn reordered_entries_are_caught(t: &TestStore) {
    // Two rows swap places (bodies move with their rows' positions).
    let r = tampered(
        t,
        "UPDATE audit_entries SET seq = 1000 WHERE seq = 3; \
         UPDATE audit_entries SET seq = 3 WHERE seq = 6; \
         UPDATE audit_entries SET seq = 6 WHERE seq = 1000",
    )
    .await;
    assert_eq!(
        r.problems,
        vec![
            Problem::Misplaced {
                position: 3,
                found: 6
            },
            Problem::Misplaced {
                position: 6,
                found: 3
            },
            Problem::Changed { from: 0, size: 10 },
        ]
    );
}
backend_test!(reordered_entries_are_caught, test_store);

async fn a_forked_checkpoint_is_caught(t: &TestStore) {
    // Someone with the log key signs a checkpoint of size 15 over another history and slips
    // it in between the real ones.
    let key = key();
    let mut other = rampart_audit::Frontier::empty();
    for i in 0..15 {
        other.push(leaf_hash(format!("other history {i}").as_bytes()));
    }
    let forged = key
        .sign(&rampart_audit::Checkpoint {
            origin: key.origin().to_owned(),
            size: 15,
            root: other.root(),
            time: t0(),
        })
        .unwrap()
        .replace('\'', "''");
    let r = tampered(
        t,
        &format!(
            "INSERT INTO audit_checkpoints (size, created_at, note) VALUES (15, {}, '{forged}')",
            t0().unix_timestamp()
        ),
    )
    .await;
    assert_eq!(r.problems, vec![Problem::Fork { size: 15 }]);
}
backend_test!(a_forked_checkpoint_is_caught, test_store);

async fn a_rewritten_history_diverges_from_what_was_trusted(t: &TestStore) {
    let key = key();
    let v = LogVerifier::new(key.vkey()).unwrap();
    append_n(&t.store, 0, 10, t0()).await;
    let trusted = v
        .open(
            &t.store
                .audit_checkpoint(&key, t0(), 1)
                .await
                .unwrap()
                .unwrap()
                .note,
        )
        .unwrap();
    // Everything replaced by a history of its own, checkpoints and all, re-signed with the key.
    t.tamper(
        "DELETE FROM audit_checkpoints; DELETE FROM audit_nodes; DELETE FROM audit_entries; \
              UPDATE audit_head SET size = 0, frontier = substr(frontier, 1, 0)",
    )
    .await;
    append_n(&t.store, 0, 12, t0() + Duration::seconds(5)).await;
    t.store
        .audit_checkpoint(&key, t0() + Duration::seconds(5), 1)
        .await
        .unwrap();
    let r = verify(&t.store, Some(trusted)).await;
    assert_eq!(r.problems, vec![Problem::Diverged { size: 10 }]);
}
backend_test!(
    a_rewritten_history_diverges_from_what_was_trusted,
    test_store
);
