//! One fresh store per test, on either backend.

use std::collections::BTreeMap;

use rampart_core::{
    CheckOutcome, Evidence, HostInfo, Observation, ObservationKind, RuleVerdict, Status, Summary,
};
use rampart_store::{CertificateRecord, NewAgent, NewRun, Store};
use time::{Duration, OffsetDateTime};

pub use rampart_store::testing::{postgres, sqlite};

/// Runs the behaviour `async fn name(store: &Store)` once per backend: `backend_test!(name);`
/// declares `name::sqlite` and `name::postgres`. `backend_test!(name, test_store)` hands the
/// behaviour the whole [`rampart_store::testing::TestStore`] instead, for tests that also reach
/// the database behind the store's back.
#[macro_export]
macro_rules! backend_test {
    ($name:ident) => {
        $crate::backend_test!(@declare $name, |t| &t.store);
    };
    ($name:ident, test_store) => {
        $crate::backend_test!(@declare $name, |t| &t);
    };
    (@declare $name:ident, |$t:ident| $arg:expr) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $t = $crate::store::harness::sqlite().await;
                super::$name($arg).await;
                $t.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some($t) = $crate::store::harness::postgres().await else {
                    return;
                };
                super::$name($arg).await;
                $t.finish().await;
            }
        }
    };
}

pub fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap()
}

pub fn agent(id: &str, group: &str) -> NewAgent {
    NewAgent {
        id: id.into(),
        hostname: format!("host-{id}"),
        os: "Debian GNU/Linux 12".into(),
        arch: "x86_64".into(),
        agent_version: "0.1.0".into(),
        labels: BTreeMap::from([("env".to_string(), "prod".to_string())]),
        group: group.into(),
    }
}

pub fn cert(serial: &str, agent_id: &str, at: OffsetDateTime) -> CertificateRecord {
    CertificateRecord {
        serial: serial.into(),
        agent_id: agent_id.into(),
        fingerprint: format!("fp-{serial}"),
        not_before: at - Duration::minutes(1),
        not_after: at + Duration::hours(24),
        issued_at: at,
        revoked_at: None,
        revocation_reason: None,
    }
}

pub async fn enrolled(store: &Store, id: &str, group: &str) {
    store
        .enrol_agent(
            &agent(id, group),
            &cert(&format!("{id}-c1"), id, t0()),
            t0(),
        )
        .await
        .unwrap();
}

/// A check outcome with a file observation, so evidence round-trips are tested for real.
pub fn outcome(id: &str, status: Status) -> CheckOutcome {
    let mut c = CheckOutcome::new(id, format!("Check {id}"), status);
    c.remediation = "Set it right.".into();
    c.compliance = BTreeMap::from([("cis".to_string(), vec!["5.2.1".to_string()])]);
    c.evidence = vec![Evidence {
        rule: "f:/etc/ssh/sshd_config -> r:^PermitRootLogin\\s+no".into(),
        verdict: RuleVerdict::Found,
        observations: vec![Observation {
            kind: ObservationKind::File,
            target: "/etc/ssh/sshd_config".into(),
            line: Some(33),
            text: Some(format!("PermitRootLogin no # {id}")),
            detail: None,
        }],
    }];
    c
}

pub fn run(id: &str, agent_id: &str, started: OffsetDateTime, checks: Vec<CheckOutcome>) -> NewRun {
    let mut summary = Summary::default();
    for c in &checks {
        summary.add(c.status);
    }
    summary.finish();
    NewRun {
        id: id.into(),
        agent_id: agent_id.into(),
        policy_id: "baseline".into(),
        policy_version: Some(1),
        policy_digest: "ab".repeat(32),
        trigger: "schedule".into(),
        started_at: started,
        finished_at: started + Duration::seconds(2),
        received_at: started + Duration::seconds(3),
        summary,
        results_digest: "cd".repeat(32),
        host: HostInfo {
            hostname: format!("host-{agent_id}"),
            os: "Debian".into(),
            kernel: "6.1".into(),
            root: None,
        },
        warnings: vec!["a warning".into()],
        generator: "rampart 0.1.0".into(),
        check_texts: rampart_store::outcome_texts(&checks).unwrap(),
        cert_sha256: "ee".repeat(32),
        cert_not_after: started + Duration::hours(24),
        checks,
    }
}

/// A user with no password, created at [`t0`].
pub async fn user(store: &Store, name: &str, role: rampart_access::Role) -> rampart_store::User {
    store
        .insert_user(&rampart_store::NewUser {
            name: name.into(),
            role,
            groups: Vec::new(),
            password_hash: None,
            must_change_password: false,
            oidc_subject: None,
            created_at: t0(),
        })
        .await
        .unwrap()
}

/// An API token of `user` with their role, the hash given, made at [`t0`], for 90 days.
pub async fn api_token(
    store: &Store,
    user: &rampart_store::User,
    name: &str,
    hash: &str,
) -> rampart_store::ApiToken {
    store
        .insert_api_token(&rampart_store::NewApiToken {
            user_id: user.id,
            name: name.into(),
            token_hash: hash.into(),
            shown: format!("rpt_{name}"),
            role: user.role,
            groups: user.groups.clone(),
            created_at: t0(),
            expires_at: t0() + Duration::days(90),
        })
        .await
        .unwrap()
}
