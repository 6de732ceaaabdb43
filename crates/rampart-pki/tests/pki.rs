//! The CA, agent certificates, CRLs, handshake verification and enrolment tokens, checked
//! against rustls' and x509-parser's independent readings of what this crate produces.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::sync::Arc;

use rampart_pki::verifier::{AgentCertVerifier, RevocationSet};
use rampart_pki::{
    AGENT_CERT_LIFETIME, BACKDATE, Ca, PkiError, TokenError, TokenSigner, agent_identity,
    peek_claims,
};
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{FromDer, X509Certificate};

const PASS: &[u8] = b"correct horse battery staple";

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap()
}

fn unix(t: OffsetDateTime) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(t.unix_timestamp() as u64))
}

fn csr(cn: &str) -> String {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.serialize_request(&key).unwrap().pem().unwrap()
}

/// A CSR asking for everything an agent must not get: CA rights, server auth, other names.
fn greedy_csr() -> String {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec!["rampart.example".to_string()]).unwrap();
    p.distinguished_name.push(DnType::CommonName, "admin");
    p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    p.subject_alt_names
        .push(SanType::DnsName("evil.example".try_into().unwrap()));
    p.serialize_request(&key).unwrap().pem().unwrap()
}

fn chain(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn verifier(ca: &Ca, revoked: Arc<RevocationSet>) -> AgentCertVerifier {
    AgentCertVerifier::new(
        ca.root_der().clone(),
        revoked,
        Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
    )
    .unwrap()
}

#[test]
fn stored_ca_needs_the_right_passphrase() {
    let (ca, root, inter) = Ca::create(PASS, t0()).unwrap();
    assert!(root.key_pem.contains("ENCRYPTED PRIVATE KEY"));
    assert!(inter.key_pem.contains("ENCRYPTED PRIVATE KEY"));
    let loaded = Ca::load(&root, &inter, PASS).unwrap();
    assert_eq!(loaded.root_fingerprint(), ca.root_fingerprint());
    let err = Ca::load(&root, &inter, b"wrong").unwrap_err();
    assert!(matches!(err, PkiError::WrongPassphrase { .. }), "{err}");
    assert!(err.to_string().contains("wrong CA passphrase"));
}

#[test]
fn the_ca_knows_when_its_certificates_expire() {
    let (ca, root, inter) = Ca::create(PASS, t0()).unwrap();
    // Ten years for the root, two for the intermediate, as the certificates themselves say.
    assert_eq!(ca.root_not_after(), t0() + time::Duration::days(3653));
    assert_eq!(
        ca.intermediate_not_after(),
        t0() + time::Duration::days(730)
    );
    let loaded = Ca::load(&root, &inter, PASS).unwrap();
    assert_eq!(loaded.root_not_after(), ca.root_not_after());
    let later = t0() + time::Duration::days(100);
    let (rotated, _) = ca.rotate_intermediate(PASS, later).unwrap();
    assert_eq!(rotated.root_not_after(), ca.root_not_after());
    assert_eq!(
        rotated.intermediate_not_after(),
        later + time::Duration::days(730)
    );
}

#[test]
fn agent_certificate_ignores_everything_the_csr_asks_for() {
    let (ca, _, _) = Ca::create(PASS, t0()).unwrap();
    let issued = ca
        .issue_agent(&greedy_csr(), "0b7c5c1e-agent", t0())
        .unwrap();
    let ders = chain(&issued.chain_pem);
    assert_eq!(ders.len(), 2, "leaf then intermediate");
    let (_, cert) = X509Certificate::from_der(&ders[0]).unwrap();
    let cn: Vec<_> = cert
        .subject()
        .iter_common_name()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(cn, ["0b7c5c1e-agent"]);
    let bc = cert.basic_constraints().unwrap().map(|b| b.value.ca);
    assert_eq!(bc, Some(false), "never a CA");
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth, "client auth only");
    let san = cert.subject_alternative_name().unwrap().unwrap().value;
    let names: Vec<String> = san.general_names.iter().map(|g| g.to_string()).collect();
    assert_eq!(names, ["URI(urn:rampart:agent:0b7c5c1e-agent)"]);
    // 24 h, backdated one minute.
    assert_eq!(
        cert.validity().not_before.timestamp(),
        (t0() - BACKDATE).unix_timestamp()
    );
    assert_eq!(
        cert.validity().not_after.timestamp(),
        (t0() + AGENT_CERT_LIFETIME).unix_timestamp()
    );
    assert_eq!(
        (issued.not_before, issued.not_after),
        (t0() - BACKDATE, t0() + AGENT_CERT_LIFETIME)
    );
    let id = agent_identity(&ders[0]).unwrap();
    assert_eq!(
        (id.agent_id.as_str(), id.serial.as_str()),
        ("0b7c5c1e-agent", issued.serial.as_str())
    );
    assert_eq!(hex::encode(cert.raw_serial()), issued.serial);
    assert!(matches!(
        ca.issue_agent("garbage", "x", t0()),
        Err(PkiError::BadCsr(_))
    ));
}

#[test]
fn handshake_verifier_checks_chain_time_and_live_revocations() {
    let (ca, _, _) = Ca::create(PASS, t0()).unwrap();
    let revoked = Arc::new(RevocationSet::new());
    let v = verifier(&ca, revoked.clone());
    let issued = ca.issue_agent(&csr("a"), "a", t0()).unwrap();
    let ders = chain(&issued.chain_pem);
    let check = |at: OffsetDateTime| v.verify_client_cert(&ders[0], &ders[1..], unix(at));
    check(t0()).expect("fresh certificate accepted");
    check(t0() - Duration::seconds(30)).expect("backdating covers a clock 30 s behind");
    let expired = check(t0() + AGENT_CERT_LIFETIME + Duration::seconds(1)).unwrap_err();
    assert!(format!("{expired:?}").contains("Expired"), "{expired:?}");

    // Revocation applies to the next verification, same verifier.
    revoked.extend([issued.serial.clone()]);
    let err = check(t0()).unwrap_err();
    assert!(format!("{err:?}").contains("Revoked"), "{err:?}");
    revoked.replace(Default::default());
    check(t0()).expect("un-listed again");

    // A certificate from another CA does not chain.
    let (other, _, _) = Ca::create(PASS, t0()).unwrap();
    let foreign = chain(&other.issue_agent(&csr("a"), "a", t0()).unwrap().chain_pem);
    assert!(
        v.verify_client_cert(&foreign[0], &foreign[1..], unix(t0()))
            .is_err()
    );
}

#[test]
fn rotated_intermediate_keeps_old_certificates_valid() {
    let (ca, _, _) = Ca::create(PASS, t0()).unwrap();
    let old = chain(&ca.issue_agent(&csr("a"), "a", t0()).unwrap().chain_pem);
    let (rotated, files) = ca
        .rotate_intermediate(PASS, t0() + Duration::hours(1))
        .unwrap();
    assert_ne!(files.cert_pem, ca.intermediate_pem());
    assert_eq!(rotated.root_fingerprint(), ca.root_fingerprint());
    let new = chain(
        &rotated
            .issue_agent(&csr("a"), "a", t0() + Duration::hours(1))
            .unwrap()
            .chain_pem,
    );
    let v = verifier(&rotated, Arc::new(RevocationSet::new()));
    let at = unix(t0() + Duration::hours(2));
    v.verify_client_cert(&old[0], &old[1..], at)
        .expect("old intermediate still chains to root");
    v.verify_client_cert(&new[0], &new[1..], at)
        .expect("new intermediate chains to root");
}

#[test]
fn crl_lists_revoked_serials_signed_by_the_intermediate() {
    let (ca, _, _) = Ca::create(PASS, t0()).unwrap();
    let a = ca.issue_agent(&csr("a"), "a", t0()).unwrap();
    let b = ca.issue_agent(&csr("b"), "b", t0()).unwrap();
    let der = ca
        .crl(
            &[(a.serial.clone(), t0()), (b.serial.clone(), t0())],
            7,
            t0(),
            t0() + Duration::hours(1),
        )
        .unwrap();
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der).unwrap();
    let listed: Vec<String> = crl
        .iter_revoked_certificates()
        .map(|r| hex::encode(r.raw_serial()))
        .collect();
    assert_eq!(listed, [a.serial.clone(), b.serial.clone()]);
    // What an agent asks of it: is my serial listed?
    let c = ca.issue_agent(&csr("c"), "c", t0()).unwrap();
    assert!(rampart_pki::crl_lists_serial(&der, &a.serial).unwrap());
    assert!(!rampart_pki::crl_lists_serial(&der, &c.serial).unwrap());
    assert!(rampart_pki::crl_lists_serial(b"not a crl", &a.serial).is_err());
    let inter = chain(ca.intermediate_pem());
    let (_, inter) = X509Certificate::from_der(&inter[0]).unwrap();
    crl.verify_signature(inter.public_key())
        .expect("signed by the intermediate");
    assert_eq!(
        crl.crl_number().map(|n| n.to_string()),
        Some("7".to_string())
    );
}

#[test]
fn server_certificate_names() {
    let (ca, _, _) = Ca::create(PASS, t0()).unwrap();
    let s = ca
        .issue_server(&["rampart.example".into(), "127.0.0.1".into()], t0())
        .unwrap();
    let (_, cert) = X509Certificate::from_der(&s.chain[0]).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap().value;
    let names: Vec<String> = san.general_names.iter().map(|g| g.to_string()).collect();
    assert_eq!(
        names,
        ["DNSName(rampart.example)", "IPAddress(7f:00:00:01)"]
    );
    assert!(matches!(
        ca.issue_server(&["bad name!".into()], t0()),
        Err(PkiError::BadName(_))
    ));
}

#[test]
fn enrolment_tokens_are_refused_for_distinct_reasons() {
    let (signer, files) = TokenSigner::generate(PASS).unwrap();
    drop(signer);
    let signer = TokenSigner::load(&files, PASS).expect("reloaded from its sealed form");
    let aud = "https://rampart.example:8443/api/v1/enrol";
    let labels = BTreeMap::from([("env".to_string(), "prod".to_string())]);
    let (token, claims) = signer
        .issue(
            aud,
            "jti-1",
            "web",
            &labels,
            "ab12",
            None,
            t0(),
            Duration::minutes(5),
        )
        .unwrap();
    assert_eq!(signer.verify(&token, aud, t0()).unwrap(), claims);
    assert_eq!(
        peek_claims(&token).unwrap(),
        claims,
        "agents read aud and sha before verifying"
    );
    assert_eq!((claims.exp - claims.iat, claims.grp.as_str()), (300, "web"));

    // Inside the one-minute leeway, then past it.
    signer
        .verify(&token, aud, t0() + Duration::seconds(359))
        .expect("leeway");
    assert!(matches!(
        signer.verify(&token, aud, t0() + Duration::seconds(361)),
        Err(TokenError::Expired(_))
    ));
    assert!(matches!(
        signer.verify(&token, "https://other:8443/api/v1/enrol", t0()),
        Err(TokenError::WrongAudience { .. })
    ));
    // Another server's key: forged. A changed payload with the original signature: forged.
    let (other, _) = TokenSigner::generate(PASS).unwrap();
    let (foreign, _) = other
        .issue(
            aud,
            "j",
            "web",
            &labels,
            "ab12",
            None,
            t0(),
            Duration::minutes(5),
        )
        .unwrap();
    assert_eq!(signer.verify(&foreign, aud, t0()), Err(TokenError::Forged));
    let parts: Vec<&str> = token.split('.').collect();
    let evil_payload = {
        use base64::Engine;
        let mut c = claims.clone();
        c.grp = "admins".into();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap())
    };
    let tampered = format!("{}.{}.{}", parts[0], evil_payload, parts[2]);
    assert_eq!(signer.verify(&tampered, aud, t0()), Err(TokenError::Forged));
    assert!(matches!(
        signer.verify("not-a-token", aud, t0()),
        Err(TokenError::Malformed(_))
    ));
    assert!(matches!(peek_claims("a.b"), Err(TokenError::Malformed(_))));
    assert!(matches!(
        TokenSigner::load(&files, b"wrong"),
        Err(PkiError::WrongPassphrase { .. })
    ));
}
