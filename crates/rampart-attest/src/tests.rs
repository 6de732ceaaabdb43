//! Bundles built the way the server builds them, and each way one can be wrong.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use rampart_audit::{Checkpoint, LogKey, LogVerifier};
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
        let text = evidence_text(&checks, "run-0001");
        let parsed = evidence::Evidence::parse(&text).unwrap();
        let claims = parsed.claims(
            &text,
            evidence::Issue {
                issuer: "https://rampart.example",
                jti: "att-1",
                issued_at: IAT,
                expires_at: IAT + 86_400,
                cert_thumbprint: &B64URL.encode([7u8; 32]),
                log_origin: "",
            },
        );
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

    /// The log as the server writes it, the claims signed, the bundle assembled.
    fn bundle(&self) -> Bundle {
        crate::sample::bundle(
            &self.key,
            &self.log_key,
            self.claims.clone(),
            self.keys.clone(),
            Some(evidence_text(&self.checks, "run-0001")),
            crate::sample::LogShape {
                before: self.before as u64,
                after: 1,
                entry_time: OffsetDateTime::from_unix_timestamp(IAT + 1).unwrap(),
                checkpoint_time: OffsetDateTime::from_unix_timestamp(IAT + self.checkpoint_after)
                    .unwrap(),
            },
        )
        .unwrap()
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
    f.claims.result.counts.failed = 0;
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
