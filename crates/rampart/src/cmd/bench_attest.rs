//! `rampart bench attest`: what signing and verifying attestations cost, per algorithm, and
//! how large an offline bundle is.
//!
//! For each algorithm, on one thread: JWS signed per second (claims serialised, base64, the
//! signature) beside the floor of the bare signature over the same signing input with the same
//! key; JWS verified per second beside the bare signature check; and whole offline bundles
//! verified per second (signature, checkpoint, inclusion proof, the evidence hashed, parsed and
//! the result recomputed from it). The run is a saved JSON report (`--report`, e.g. a
//! `rampart scan --format json` of a 207-check CIS policy) or, without one, 207 synthetic
//! checks with evidence of the same shape.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_lc_rs::signature::{self, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use rampart_attest::evidence::{self, Evidence, Issue, StoredRun};
use rampart_attest::sample::LogShape;
use rampart_attest::{Alg, Bundle, KeyState, SigningKey};
use rampart_audit::{LogKey, LogVerifier};
use rampart_core::{
    CheckOutcome, Evidence as RuleEvidence, HostInfo, Observation, ObservationKind, PolicyInfo,
    RuleVerdict, ScanReport, Status,
};
use serde_json::json;
use time::OffsetDateTime;

use crate::cli::BenchAttestArgs;

/// 207 checks shaped like a CIS run: mostly passing, a third failing, a few not applicable;
/// each with a rule, an observation and framework mappings.
fn synthetic() -> ScanReport {
    let checks = (0..207u32)
        .map(|i| {
            let status = match i % 20 {
                0 => Status::NotApplicable,
                1..=7 => Status::Fail,
                _ => Status::Pass,
            };
            let mut c = CheckOutcome::new(
                (35_000 + i).to_string(),
                format!("Ensure setting {i} is configured"),
                status,
            );
            c.rationale = "Attackers use weak configuration to escalate privileges.".into();
            c.remediation =
                format!("Set option_{i} in /etc/example/{i}.conf and restart the service.");
            c.compliance.insert(
                "cis".into(),
                vec![format!("{}.{}.{}", i / 50 + 1, i / 10 % 5 + 1, i % 10 + 1)],
            );
            c.compliance
                .insert("nist_sp_800-53".into(), vec![format!("CM-{}", i % 9 + 1)]);
            c.rules = vec![format!("f:/etc/example/{i}.conf -> r:^option_{i}\\s+yes")];
            c.evidence = vec![RuleEvidence {
                rule: c.rules[0].clone(),
                verdict: if status == Status::Pass {
                    RuleVerdict::Found
                } else {
                    RuleVerdict::NotFound
                },
                observations: vec![Observation {
                    kind: ObservationKind::File,
                    target: format!("/etc/example/{i}.conf"),
                    line: Some(u64::from(i % 40 + 1)),
                    text: Some(format!(
                        "option_{i} {}",
                        if status == Status::Pass { "yes" } else { "no" }
                    )),
                    detail: None,
                }],
            }];
            c
        })
        .collect();
    let policy = PolicyInfo {
        id: "cis_debian12".into(),
        name: "CIS Debian Linux 12 Benchmark".into(),
        sha256: "ab".repeat(32),
        ..PolicyInfo::default()
    };
    let mut r = ScanReport::single(policy, checks, OffsetDateTime::now_utc());
    r.host = HostInfo {
        hostname: "web-01".into(),
        os: "Debian GNU/Linux 12".into(),
        kernel: "6.1.0".into(),
        root: None,
    };
    r.refresh();
    r
}

/// The evidence document of a report's first policy, as the server would rebuild it.
fn document(report: &ScanReport) -> anyhow::Result<String> {
    let p = report
        .policies
        .first()
        .context("the report has no policy")?;
    let mut checks: Vec<&CheckOutcome> = p.checks.iter().collect();
    checks.sort_by(|a, b| rampart_core::digest::natural_cmp(&a.id, &b.id));
    let texts = checks
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()?;
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    Ok(evidence::document(
        &StoredRun {
            run_id: "0193a6c4-bench-run",
            agent_id: "0193a6c4-bench-agent",
            policy_id: &p.policy.id,
            policy_version: Some(1),
            policy_sha256: &p.policy.sha256,
            trigger: "schedule",
            started_at: report.started_at.unix_timestamp(),
            finished_at: report.finished_at.unix_timestamp(),
            generator: &report.generator,
            results_digest: &report.results_digest,
            host_json: &serde_json::to_string(&report.host)?,
            warnings_json: &serde_json::to_string(&report.warnings)?,
        },
        &texts,
    ))
}

/// Calls `f` for `seconds`; its rate per second.
fn rate(seconds: f64, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let started = Instant::now();
    let limit = Duration::from_secs_f64(seconds);
    let mut n = 0u64;
    while started.elapsed() < limit {
        for _ in 0..16 {
            f()?;
        }
        n += 16;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Signs bytes with a bare key.
type RawSign = Box<dyn Fn(&[u8]) -> anyhow::Result<Vec<u8>>>;

/// The bare signature over `input` with the key's own algorithm: the floor.
fn raw_signer(alg: Alg, pkcs8: &[u8]) -> anyhow::Result<RawSign> {
    Ok(match alg {
        Alg::EdDSA => {
            let k = signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Box::new(move |m| Ok(k.sign(m).as_ref().to_vec()))
        }
        Alg::ES256 => {
            let k = signature::EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                pkcs8,
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            let rng = aws_lc_rs::rand::SystemRandom::new();
            Box::new(move |m| {
                Ok(k.sign(&rng, m)
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .as_ref()
                    .to_vec())
            })
        }
        Alg::RS256 => {
            let k = signature::RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| anyhow::anyhow!("{e}"))?;
            let rng = aws_lc_rs::rand::SystemRandom::new();
            Box::new(move |m| {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, m, &mut sig)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                Ok(sig)
            })
        }
    })
}

fn raw_verifier(alg: Alg, pkcs8: &[u8]) -> anyhow::Result<signature::UnparsedPublicKey<Vec<u8>>> {
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("{e}");
    Ok(match alg {
        Alg::EdDSA => {
            let k = signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
                .map_err(|e| err(&e))?;
            signature::UnparsedPublicKey::new(&signature::ED25519, k.public_key().as_ref().to_vec())
        }
        Alg::ES256 => {
            let k = signature::EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                pkcs8,
            )
            .map_err(|e| err(&e))?;
            signature::UnparsedPublicKey::new(
                &signature::ECDSA_P256_SHA256_FIXED,
                k.public_key().as_ref().to_vec(),
            )
        }
        Alg::RS256 => {
            let k = signature::RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| err(&e))?;
            signature::UnparsedPublicKey::new(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                k.public_key().as_ref().to_vec(),
            )
        }
    })
}

/// `rampart bench attest`.
pub fn run(args: BenchAttestArgs) -> anyhow::Result<ExitCode> {
    let report: ScanReport = match &args.report {
        Some(path) => {
            let text = std::fs::read(path).with_context(|| path.display().to_string())?;
            serde_json::from_slice(&text)
                .with_context(|| format!("{}: not a JSON scan report", path.display()))?
        }
        None => synthetic(),
    };
    let text = document(&report)?;
    let parsed =
        Evidence::parse(&text).map_err(|e| anyhow::anyhow!("the evidence document: {e}"))?;
    let checks = parsed.checks.len();
    let log_key = LogKey::generate("rampart.audit/bench").map_err(|e| anyhow::anyhow!("{e}"))?;
    let verifier = LogVerifier::new(log_key.vkey()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let now = OffsetDateTime::now_utc();
    let seconds = args.seconds as f64;
    let mut rows = Vec::new();
    for alg in Alg::ALL {
        let key = SigningKey::generate(alg)?;
        let thumbprint = B64URL.encode([7u8; 32]);
        let claims = parsed.claims(
            &text,
            Issue {
                issuer: "https://rampart.example:8443",
                jti: "0193a6c4-0000-7000-8000-000000000000",
                issued_at: now.unix_timestamp(),
                expires_at: now.unix_timestamp() + 12 * 3600,
                cert_thumbprint: &thumbprint,
                log_origin: log_key.origin(),
            },
        );
        let keys = vec![KeyState {
            kid: key.kid().to_owned(),
            alg,
            state: "current".into(),
            created_at: now.unix_timestamp() - 3600,
            activated_at: Some(now.unix_timestamp() - 3600),
            retired_at: None,
        }];
        // A log of 100,000 entries: a 17-hash inclusion proof, as on a busy server.
        let bundle = rampart_attest::sample::bundle(
            &key,
            &log_key,
            claims.clone(),
            keys,
            Some(text.clone()),
            LogShape {
                before: 99_000,
                after: 999,
                entry_time: now,
                checkpoint_time: now + time::Duration::seconds(1),
            },
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let file = serde_json::to_vec_pretty(&bundle)?;
        let gz = {
            use std::io::Write as _;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&file)?;
            e.finish()?.len()
        };
        let jws = bundle.attestation.clone();
        let signing_input = jws
            .rsplit_once('.')
            .map(|(a, _)| a.to_owned())
            .context("JWS")?;
        let sig = B64URL.decode(jws.rsplit_once('.').map(|(_, s)| s).unwrap_or_default())?;

        let raw = raw_signer(alg, key.pkcs8())?;
        let floor_sign = rate(seconds, || raw(signing_input.as_bytes()).map(drop))?;
        let sign = rate(seconds, || {
            key.sign(rampart_attest::claims::TYP, &claims)
                .map(drop)
                .map_err(Into::into)
        })?;
        let public = raw_verifier(alg, key.pkcs8())?;
        let floor_verify = rate(seconds, || {
            public
                .verify(signing_input.as_bytes(), &sig)
                .map_err(|_| anyhow::anyhow!("bad signature"))
        })?;
        let decoding = jsonwebtoken::DecodingKey::from_jwk(key.public_jwk())?;
        let mut validation = jsonwebtoken::Validation::new(alg.jws());
        validation.validate_aud = false;
        let verify = rate(seconds, || {
            jsonwebtoken::decode::<rampart_attest::Claims>(&jws, &decoding, &validation)
                .map(drop)
                .map_err(Into::into)
        })?;
        let reparsed =
            Bundle::parse(std::str::from_utf8(&file)?).map_err(|e| anyhow::anyhow!("{e}"))?;
        let bundles = rate(seconds, || {
            reparsed
                .verify(&verifier)
                .map(drop)
                .map_err(|e| anyhow::anyhow!("{e}"))
        })?;
        if !reparsed.verify(&verifier)?.evidence_checked {
            bail!("the bundle's evidence was not checked");
        }
        rows.push(json!({
            "alg": alg.as_str(),
            "jws_signed_per_sec": sign,
            "floor_signatures_per_sec": floor_sign,
            "jws_verified_per_sec": verify,
            "floor_signature_checks_per_sec": floor_verify,
            "bundles_verified_per_sec": bundles,
            "jws_bytes": jws.len(),
            "bundle_bytes": file.len(),
            "bundle_gzip_bytes": gz,
            "evidence_bytes": text.len(),
        }));
    }
    let figures = json!({
        "cpu": super::bench::cpu_model(),
        "checks": checks,
        "run": if args.report.is_some() { "report" } else { "synthetic" },
        "algorithms": rows,
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "attestations of a {checks}-check run ({}) — {}, one thread",
        figures["run"].as_str().unwrap_or(""),
        figures["cpu"].as_str().unwrap_or("")
    );
    for r in figures["algorithms"].as_array().into_iter().flatten() {
        let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
        println!(
            "{:<6} signed {:>8.0}/s (floor {:>8.0}/s, {:.2})   verified {:>8.0}/s (floor {:>8.0}/s, {:.2})   bundles verified {:>6.0}/s",
            r["alg"].as_str().unwrap_or(""),
            f("jws_signed_per_sec"),
            f("floor_signatures_per_sec"),
            f("jws_signed_per_sec") / f("floor_signatures_per_sec"),
            f("jws_verified_per_sec"),
            f("floor_signature_checks_per_sec"),
            f("jws_verified_per_sec") / f("floor_signature_checks_per_sec"),
            f("bundles_verified_per_sec"),
        );
        println!(
            "       JWS {} bytes; bundle {} bytes ({} gzip), of which evidence {} bytes",
            r["jws_bytes"], r["bundle_bytes"], r["bundle_gzip_bytes"], r["evidence_bytes"]
        );
    }
    Ok(ExitCode::SUCCESS)
}
