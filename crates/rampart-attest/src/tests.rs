//! Bundles built the way the server builds them, and each way one can be wrong.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use rampart_audit::{Checkpoint, Entry, Event, LogKey, LogVerifier, Outcome, merkle};
use rampart_core::{CheckOutcome, Status, WaiverInfo};
use time::OffsetDateTime;

use crate::evidence::{self, StoredRun};
use crate::*;

/// Issue time of the fixture.
const IAT: i64 = 1_790_000_000;

struct Fixture {
    key: SigningKey,
    log_key: LogKey,
    claims: Claims,
    checks: Vec<String>,
    /// Entries before the issue entry.
    before: usize,
    /// Seconds after IAT the checkpoint is signed.
    checkpoint_after: i64,
    keys: Vec<KeyState>,
}

fn outcomes() -> Vec<CheckOutcome> {
    let mut c1 = CheckOutcome::new("1", "ssh root login disabled", Status::Pass);
    c1.compliance.insert("cis".into(), vec!["5.2.7".into()]);
    let mut c2 = CheckOutcome::new("2", "password max days", Status::Fail);
    c2.compliance.insert("cis".into(), vec!["5.4.1.1".into()]);
    c2.compliance
        .insert("nist_800_53".into(), vec!["IA-5".into()]);
    c2.reason = Some("PASS_MAX_DAYS 99999".into());
    let mut c3 = CheckOutcome::new("3", "tmp noexec", Status::Waived);
    c3.original_status = Some(Status::Fail);
    c3.waiver = Some(WaiverInfo {
        id: Some("w-7".into()),
        pattern: "3".into(),
        justification: "build host".into(),
        approver: Some("carol".into()),
        expires: Some("2027-03-31".into()),
    });
    vec![c1, c2, c3]
}

fn evidence_text(checks: &[String], run_id: &str) -> String {
    let parsed: Vec<CheckOutcome> = checks
        .iter()
        .map(|c| serde_json::from_str(c).unwrap())
        .collect();
    let report = rampart_core::ScanReport::single(
        rampart_core::PolicyInfo {
            id: "cis_debian12".into(),
            sha256: "ab".repeat(32),
            ..Default::default()
        },
        parsed,
        OffsetDateTime::UNIX_EPOCH,
    );
    let refs: Vec<&str> = checks.iter().map(String::as_str).collect();
    evidence::document(
        &StoredRun {
            run_id,
            agent_id: "agent-1",
            policy_id: "cis_debian12",
            policy_version: Some(3),
            policy_sha256: &"ab".repeat(32),
            trigger: "schedule",
            started_at: IAT - 30,
            finished_at: IAT - 2,
            generator: "rampart 0.1.0",
            results_digest: &rampart_core::digest::results_digest(&report),
            host_json: r#"{"hostname":"web-1","os":"Debian 12","kernel":"6.1.0"}"#,
            warnings_json: "[]",
        },
        &refs,
    )
}

impl Fixture {
    fn new(alg: Alg) -> Fixture {
        let key = SigningKey::generate(alg).unwrap();
        let checks: Vec<String> = outcomes()
            .iter()
            .map(|c| serde_json::to_string(c).unwrap())
            .collect();
        let outcomes: Vec<CheckOutcome> = outcomes();
        let text = evidence_text(&checks, "run-0001");
        let parsed = evidence::Evidence::parse(&text).unwrap();
        let claims = Claims {
            iss: "https://rampart.example".into(),
            sub: "agent-1".into(),
            iat: IAT,
            nbf: IAT,
            exp: IAT + 86_400,
            jti: "att-1".into(),
            cnf: Confirmation {
                x5t_s256: B64URL.encode([7u8; 32]),
            },
            eat_profile: claims::PROFILE.into(),
            host: HostClaim {
                hostname: "web-1".into(),
                os: "Debian 12".into(),
                kernel: "6.1.0".into(),
                agent_version: "rampart 0.1.0".into(),
            },
            policy: PolicyClaim {
                id: "cis_debian12".into(),
                version: Some(3),
                sha256: "ab".repeat(32),
            },
            result: ResultClaim::of(&outcomes),
            evidence: EvidenceClaim {
                sha256: evidence::digest(&text),
                results_digest: parsed.results_digest.clone(),
            },
            scan: ScanClaim {
                run_id: "run-0001".into(),
                trigger: "schedule".into(),
                started_at: IAT - 30,
                finished_at: IAT - 2,
            },
            waivers: WaiverClaim::of(&outcomes),
            log: LogClaim {
                origin: String::new(),
                index: 0,
                checkpoint_size: 0,
                checkpoint_root: String::new(),
            },
        };
        Fixture {
            keys: vec![KeyState {
                kid: key.kid().to_owned(),
                alg,
                state: "current".into(),
                created_at: IAT - 1000,
                activated_at: Some(IAT - 900),
                retired_at: None,
            }],
            key,
            log_key: LogKey::generate("rampart.audit/test").unwrap(),
            claims,
            checks,
            before: 5,
            checkpoint_after: 3,
        }
    }

    fn entry(&self, index: u64, event: Event) -> String {
        Entry {
            index,
            time: OffsetDateTime::from_unix_timestamp(IAT + 1).unwrap(),
            event,
        }
        .to_leaf()
    }

    /// The log as the server writes it, the claims signed, the bundle assembled.
    fn bundle(&self) -> Bundle {
        let mut leaves = Vec::new();
        for i in 0..self.before {
            leaves.push(self.entry(
                i as u64,
                Event::new("alice", "login", "user:alice", Outcome::Success),
            ));
        }
        let index = leaves.len() as u64;
        leaves.push(self.entry(
            index,
            self.claims.issue_event(self.key.kid(), self.key.alg()),
        ));
        leaves.push(self.entry(
            index + 1,
            Event::new("bob", "login", "user:bob", Outcome::Success),
        ));
        let hashes: Vec<_> = leaves
            .iter()
            .map(|l| merkle::leaf_hash(l.as_bytes()))
            .collect();
        let checkpoint = Checkpoint {
            origin: self.log_key.origin().to_owned(),
            size: hashes.len() as u64,
            root: merkle::root(&hashes),
            time: OffsetDateTime::from_unix_timestamp(IAT + self.checkpoint_after).unwrap(),
        };
        let mut claims = self.claims.clone();
        claims.log = LogClaim {
            origin: checkpoint.origin.clone(),
            index,
            checkpoint_size: checkpoint.size,
            checkpoint_root: B64.encode(checkpoint.root),
        };
        let proof = merkle::inclusion_proof(index as usize, &hashes).unwrap();
        Bundle {
            format: bundle::FORMAT.into(),
            attestation: self.key.sign(claims::TYP, &claims).unwrap(),
            jwks: JwkSet {
                keys: vec![self.key.public_jwk().clone()],
            },
            keys: self.keys.clone(),
            log: LogAnchor {
                vkey: self.log_key.vkey().to_owned(),
                checkpoint: self.log_key.sign(&checkpoint).unwrap(),
                entry: leaves[index as usize].clone(),
                inclusion: proof.iter().map(|h| B64.encode(h)).collect(),
            },
            evidence: Some(evidence_text(&self.checks, "run-0001")),
        }
    }

    fn verifier(&self) -> LogVerifier {
        LogVerifier::new(self.log_key.vkey()).unwrap()
    }
}

fn refused(b: &Bundle, v: &LogVerifier) -> Refusal {
    b.verify(v).expect_err("the bundle verified")
}

#[test]
fn honest_bundles_verify_for_every_algorithm() {
    for alg in Alg::ALL {
        let f = Fixture::new(alg);
        let b = f.bundle();
        // Through its text, as an auditor receives it.
        let b = Bundle::parse(&serde_json::to_string(&b).unwrap()).unwrap();
        let v = b.verify(&f.verifier()).unwrap();
        assert_eq!(v.alg, alg);
        assert_eq!(v.kid, f.key.kid());
        assert!(v.evidence_checked);
        assert_eq!(v.claims.log.index, 5);
        assert_eq!(v.logged_at.unix_timestamp(), IAT + 3);
        assert_eq!(v.claims.result.status, ComplianceStatus::Noncompliant);
        assert_eq!(v.claims.waivers[0].id.as_deref(), Some("w-7"));
    }
}

#[test]
fn a_bundle_without_evidence_verifies_and_says_so() {
    let f = Fixture::new(Alg::EdDSA);
    let mut b = f.bundle();
    b.evidence = None;
    assert!(!b.verify(&f.verifier()).unwrap().evidence_checked);
}

/// Replaces the payload of a JWS, keeping its header and signature.
fn with_payload(jws: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let parts: Vec<&str> = jws.split('.').collect();
    let mut payload: serde_json::Value =
        serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap();
    edit(&mut payload);
    let payload = B64URL.encode(serde_json::to_vec(&payload).unwrap());
    format!("{}.{}.{}", parts[0], payload, parts[2])
}

#[test]
fn an_edited_claim_breaks_the_signature() {
    let f = Fixture::new(Alg::ES256);
    let mut b = f.bundle();
    b.attestation = with_payload(&b.attestation, |p| p["result"]["score"] = 100.0.into());
    let r = refused(&b, &f.verifier());
    assert_eq!(r.code(), "tampered_claim", "{r}");
    assert!(r.to_string().contains("signature"), "{r}");
}

#[test]
fn claims_resigned_with_the_real_key_are_not_what_the_log_recorded() {
    // A stolen signing key cannot rewrite a result: the log holds the claims' digest.
    let f = Fixture::new(Alg::EdDSA);
    let mut b = f.bundle();
    let (_, mut claims) = decode_unverified(&b.attestation).unwrap();
    claims.result.status = ComplianceStatus::Compliant;
    b.attestation = f.key.sign(claims::TYP, &claims).unwrap();
    let r = refused(&b, &f.verifier());
    assert_eq!(r.code(), "tampered_claim", "{r}");
    assert!(
        r.to_string().contains("differ from those the log recorded"),
        "{r}"
    );
}

#[test]
fn a_key_missing_or_swapped_in_the_set_is_unknown() {
    let f = Fixture::new(Alg::EdDSA);
    let mut b = f.bundle();
    b.jwks.keys.clear();
    assert_eq!(refused(&b, &f.verifier()).code(), "unknown_key");

    // Another key published under the trusted kid: its thumbprint gives it away.
    let mut b = f.bundle();
    let other = SigningKey::generate(Alg::EdDSA).unwrap();
    let mut jwk = other.public_jwk().clone();
    jwk.common.key_id = Some(f.key.kid().to_owned());
    b.jwks.keys = vec![jwk];
    let r = refused(&b, &f.verifier());
    assert_eq!(r.code(), "unknown_key", "{r}");
    assert!(r.to_string().contains("is another key"), "{r}");
}

#[test]
fn a_key_retired_before_the_issue_was_logged_is_refused() {
    let mut f = Fixture::new(Alg::RS256);
    f.keys[0].state = "retired".into();
    f.keys[0].retired_at = Some(IAT - 3600);
    let r = refused(&f.bundle(), &f.verifier());
    assert_eq!(r.code(), "retired_key", "{r}");
    // Retired after it was logged, or a moment before (a rotation racing the issue on another
    // replica): still valid.
    f.keys[0].retired_at = Some(IAT + 100);
    f.bundle().verify(&f.verifier()).unwrap();
    f.keys[0].retired_at = Some(IAT - 30);
    f.bundle().verify(&f.verifier()).unwrap();
}

#[test]
fn validity_is_judged_at_the_checkpoint_time() {
    let mut f = Fixture::new(Alg::EdDSA);
    // Expired long ago by any clock, but valid when logged: verifies.
    f.claims.exp = IAT + 600;
    f.bundle().verify(&f.verifier()).unwrap();
    // First logged in a checkpoint signed after it expired.
    f.checkpoint_after = 3600;
    let r = refused(&f.bundle(), &f.verifier());
    assert_eq!(r.code(), "expired", "{r}");
    // A checkpoint signed before the attestation claims to have been issued.
    f.checkpoint_after = -3600;
    let r = refused(&f.bundle(), &f.verifier());
    assert_eq!(r.code(), "stale_checkpoint", "{r}");
}

#[test]
fn an_older_checkpoint_that_does_not_cover_the_entry_is_stale() {
    let f = Fixture::new(Alg::EdDSA);
    let mut b = f.bundle();
    let older = Checkpoint {
        origin: f.log_key.origin().to_owned(),
        size: 3,
        root: [1; 32],
        time: OffsetDateTime::from_unix_timestamp(IAT - 100).unwrap(),
    };
    b.log.checkpoint = f.log_key.sign(&older).unwrap();
    assert_eq!(refused(&b, &f.verifier()).code(), "stale_checkpoint");
}

#[test]
fn a_checkpoint_under_another_log_key_is_untrusted() {
    let f = Fixture::new(Alg::EdDSA);
    let b = f.bundle();
    let other = LogKey::generate("rampart.audit/test").unwrap();
    let v = LogVerifier::new(other.vkey()).unwrap();
    assert_eq!(refused(&b, &v).code(), "untrusted_checkpoint");
}

#[test]
fn a_changed_proof_or_entry_is_a_proof_mismatch() {
    let f = Fixture::new(Alg::EdDSA);
    let mut b = f.bundle();
    b.log.inclusion[0] = B64.encode([9u8; 32]);
    assert_eq!(refused(&b, &f.verifier()).code(), "proof_mismatch");
    let mut b = f.bundle();
    b.log.entry = b
        .log
        .entry
        .replace("attestation.issue", "attestation.issuf");
    assert_eq!(refused(&b, &f.verifier()).code(), "proof_mismatch");
}

#[test]
fn evidence_that_is_not_the_signed_evidence_is_a_mismatch() {
    let f = Fixture::new(Alg::EdDSA);
    let mut b = f.bundle();
    let text = b.evidence.take().unwrap();
    b.evidence = Some(text.replace("PASS_MAX_DAYS 99999", "PASS_MAX_DAYS 90"));
    let r = refused(&b, &f.verifier());
    assert_eq!(r.code(), "evidence_mismatch", "{r}");
    assert!(r.to_string().contains("SHA-256"), "{r}");
}

#[test]
fn signed_evidence_that_contradicts_the_claims_is_a_mismatch() {
    // The server signed an evidence digest whose content says otherwise: recomputation says so.
    let mut f = Fixture::new(Alg::EdDSA);
    f.claims.result.failed_checks.clear();
    f.claims.result.failed = 0;
    let r = refused(&f.bundle(), &f.verifier());
    assert_eq!(r.code(), "evidence_mismatch", "{r}");
    assert!(r.to_string().contains("result"), "{r}");
}

#[test]
fn broken_bundles_say_where() {
    let r =
        Bundle::parse(r#"{"format":"rampart-attestation-bundle/1","attestation":1}"#).unwrap_err();
    assert_eq!(r.code(), "malformed");
    assert!(r.to_string().contains("attestation"), "{r}");
    let r = Bundle::parse(r#"{"format":"other"}"#).unwrap_err();
    assert_eq!(r.code(), "malformed");
    let f = Fixture::new(Alg::EdDSA);
    let mut b = f.bundle();
    b.attestation = "not.a.jws".into();
    assert_eq!(refused(&b, &f.verifier()).code(), "malformed");
    let mut b = f.bundle();
    b.evidence = Some("{\"format\":\"rampart-evidence/1\"}".into());
    assert_eq!(refused(&b, &f.verifier()).code(), "evidence_mismatch");
}
