//! Users, API tokens and sessions: what is stored, found by hash, revoked, and kept to the
//! minute, on both backends.

use rampart_access::{Grant, Role, Scope};
use rampart_store::{NewUser, Session, Store, StoreError};
use time::Duration;

use crate::backend_test;
use crate::store::harness::{api_token, t0, user};

async fn users_and_their_grants(store: &Store) {
    let alice = store
        .insert_user(&NewUser {
            name: "alice".into(),
            role: Role::Operator,
            groups: vec!["web".into(), "db".into()],
            password_hash: Some("$argon2id$phc-of-alice".into()),
            must_change_password: true,
            oidc_subject: None,
            created_at: t0(),
        })
        .await
        .unwrap();
    assert_eq!(alice.name, "alice");
    assert_eq!(alice.role, Role::Operator);
    assert_eq!(alice.groups, ["web", "db"]);
    assert!(alice.has_password && alice.must_change_password);
    assert_eq!(alice.password_changed_at, Some(t0()));
    assert_eq!(alice.disabled_at, None);
    assert_eq!(
        alice.grant(),
        Grant {
            role: Role::Operator,
            scope: Scope::from_groups(["db", "web"]).unwrap()
        }
    );
    let (found, hash) = store.user_with_password("alice").await.unwrap().unwrap();
    assert_eq!(found, alice);
    assert_eq!(hash.as_deref(), Some("$argon2id$phc-of-alice"));

    let dup = store
        .insert_user(&NewUser {
            name: "alice".into(),
            role: Role::Viewer,
            groups: Vec::new(),
            password_hash: None,
            must_change_password: false,
            oidc_subject: None,
            created_at: t0(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&dup, StoreError::Conflict { what: "user", id } if id == "alice"),
        "{dup}"
    );
    assert_eq!(dup.to_string(), "user \"alice\" already exists");

    let bob = store
        .insert_user(&NewUser {
            name: "bob@example.com".into(),
            role: Role::Viewer,
            groups: Vec::new(),
            password_hash: None,
            must_change_password: false,
            oidc_subject: Some("https://idp.example|248289761001".into()),
            created_at: t0(),
        })
        .await
        .unwrap();
    assert!(!bob.has_password);
    assert_eq!(bob.password_changed_at, None);
    assert_eq!(bob.grant(), Grant::fleet(Role::Viewer));
    assert_eq!(
        store
            .user_by_oidc_subject("https://idp.example|248289761001")
            .await
            .unwrap(),
        Some(bob.clone())
    );
    assert_eq!(
        store
            .user_by_oidc_subject("https://idp.example|1")
            .await
            .unwrap(),
        None
    );
    let names: Vec<String> = store
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["alice", "bob@example.com"]);

    let changed = store
        .set_user_grant("alice", Role::Viewer, &[])
        .await
        .unwrap();
    assert_eq!(changed.grant(), Grant::fleet(Role::Viewer));
    let off = t0() + Duration::hours(1);
    let disabled = store.set_user_disabled("alice", Some(off)).await.unwrap();
    assert_eq!(disabled.disabled_at, Some(off));
    assert_eq!(
        store
            .set_user_disabled("alice", None)
            .await
            .unwrap()
            .disabled_at,
        None
    );
    let later = t0() + Duration::days(1);
    let reset = store
        .set_user_password("bob@example.com", "$argon2id$new", false, later)
        .await
        .unwrap();
    assert!(reset.has_password && !reset.must_change_password);
    assert_eq!(reset.password_changed_at, Some(later));
    for missing in [
        store
            .set_user_grant("nobody", Role::Admin, &[])
            .await
            .unwrap_err(),
        store.set_user_disabled("nobody", None).await.unwrap_err(),
        store
            .set_user_password("nobody", "x", false, later)
            .await
            .unwrap_err(),
    ] {
        assert_eq!(missing.to_string(), "user \"nobody\" not found");
    }
    assert_eq!(store.user("nobody").await.unwrap(), None);
}
backend_test!(users_and_their_grants);

async fn api_tokens_found_listed_revoked_and_touched(store: &Store) {
    let alice = user(store, "alice", Role::Operator).await;
    let carol = user(store, "carol", Role::Admin).await;
    let ci = api_token(store, &alice, "ci", "hash-ci").await;
    assert_eq!(ci.user, "alice");
    assert_eq!(ci.shown, "rpt_ci");
    assert_eq!(ci.expires_at, t0() + Duration::days(90));
    assert_eq!((ci.last_used_at, ci.revoked_at), (None, None));
    api_token(store, &carol, "ci", "hash-carol-ci").await;

    let found = store.api_token_by_hash("hash-ci").await.unwrap().unwrap();
    assert_eq!(found.credential, ci);
    assert_eq!(found.user, alice);
    assert_eq!(store.api_token_by_hash("hash-none").await.unwrap(), None);

    // A second live token of the same name for the same user is refused; another user's is not.
    let dup = store
        .insert_api_token(&rampart_store::NewApiToken {
            user_id: alice.id,
            name: "ci".into(),
            token_hash: "hash-ci-2".into(),
            shown: "rpt_x".into(),
            role: Role::Viewer,
            groups: Vec::new(),
            created_at: t0(),
            expires_at: t0() + Duration::days(1),
        })
        .await
        .unwrap_err();
    assert_eq!(dup.to_string(), "token \"ci\" already exists");

    let all: Vec<(String, String)> = store
        .api_tokens(None)
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.user, t.name))
        .collect();
    assert_eq!(
        all,
        [("carol".into(), "ci".into()), ("alice".into(), "ci".into())]
    );
    assert_eq!(
        store.api_tokens(Some("alice")).await.unwrap(),
        std::slice::from_ref(&ci)
    );

    // Last use is kept to the minute: a use 30 s after the last one writes nothing.
    let t = t0() + Duration::hours(2);
    store.touch_api_token(ci.id, t).await.unwrap();
    store
        .touch_api_token(ci.id, t + Duration::seconds(30))
        .await
        .unwrap();
    let used = |s: &Store| {
        let s = s.clone();
        async move {
            s.api_token_by_hash("hash-ci")
                .await
                .unwrap()
                .unwrap()
                .credential
                .last_used_at
        }
    };
    assert_eq!(used(store).await, Some(t));
    store
        .touch_api_token(ci.id, t + Duration::seconds(60))
        .await
        .unwrap();
    assert_eq!(used(store).await, Some(t + Duration::seconds(60)));

    let gone = t0() + Duration::days(2);
    let revoked = store
        .revoke_api_token("alice", "ci", gone)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(gone));
    assert_eq!(
        store.revoke_api_token("alice", "ci", gone).await.unwrap(),
        None
    );
    assert_eq!(
        store.revoke_api_token("nobody", "ci", gone).await.unwrap(),
        None
    );
    // Carol's token of the same name is untouched, and alice may reuse the name.
    let carols = store
        .api_token_by_hash("hash-carol-ci")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(carols.credential.revoked_at, None);
    api_token(store, &alice, "ci", "hash-ci-again").await;
}
backend_test!(api_tokens_found_listed_revoked_and_touched);

fn session(hash: &str, user_id: i64) -> Session {
    Session {
        id_hash: hash.into(),
        user_id,
        csrf_token: format!("csrf-{hash}"),
        created_at: t0(),
        last_seen_at: t0(),
        expires_at: t0() + Duration::hours(12),
        revoked_at: None,
        client: "192.0.2.7".into(),
        user_agent: "Mozilla/5.0".into(),
    }
}

async fn sessions_found_touched_and_ended(store: &Store) {
    let alice = user(store, "alice", Role::Auditor).await;
    let bob = user(store, "bob", Role::Viewer).await;
    for (hash, owner) in [("s1", &alice), ("s2", &alice), ("s3", &bob)] {
        store
            .insert_session(&session(hash, owner.id))
            .await
            .unwrap();
    }
    api_token(store, &alice, "ci", "hash-ci").await;
    let found = store.session_by_hash("s1").await.unwrap().unwrap();
    assert_eq!(found.credential, session("s1", alice.id));
    assert_eq!(found.user, alice);
    assert_eq!(store.session_by_hash("nope").await.unwrap(), None);

    store
        .touch_session("s1", t0() + Duration::seconds(59), Duration::MINUTE)
        .await
        .unwrap();
    let seen = |h: &'static str| {
        let s = store.clone();
        async move {
            s.session_by_hash(h)
                .await
                .unwrap()
                .unwrap()
                .credential
                .last_seen_at
        }
    };
    assert_eq!(seen("s1").await, t0());
    store
        .touch_session("s1", t0() + Duration::minutes(5), Duration::MINUTE)
        .await
        .unwrap();
    assert_eq!(seen("s1").await, t0() + Duration::minutes(5));

    let out = t0() + Duration::hours(1);
    assert!(store.revoke_session("s1", out).await.unwrap());
    assert!(!store.revoke_session("s1", out).await.unwrap());
    // A revoked session is not moved forward any more.
    store
        .touch_session("s1", out + Duration::hours(1), Duration::MINUTE)
        .await
        .unwrap();
    assert_eq!(seen("s1").await, t0() + Duration::minutes(5));

    // "Log out everywhere" ends alice's other session and keeps her tokens; disabling ends both.
    assert_eq!(
        store
            .revoke_user_credentials(alice.id, false, out)
            .await
            .unwrap(),
        (0, 1)
    );
    let s2 = store
        .session_by_hash("s2")
        .await
        .unwrap()
        .unwrap()
        .credential;
    assert_eq!(s2.revoked_at, Some(out));
    let token = store
        .api_token_by_hash("hash-ci")
        .await
        .unwrap()
        .unwrap()
        .credential;
    assert_eq!(token.revoked_at, None);
    assert_eq!(
        store
            .revoke_user_credentials(alice.id, true, out)
            .await
            .unwrap(),
        (1, 0)
    );
    let s3 = store
        .session_by_hash("s3")
        .await
        .unwrap()
        .unwrap()
        .credential;
    assert_eq!(s3.revoked_at, None, "bob's session is his own");
}
backend_test!(sessions_found_touched_and_ended);
