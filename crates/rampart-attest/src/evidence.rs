//! The evidence document: a run's full results, one JSON text whose SHA-256 an attestation
//! signs.
//!
//! The document is assembled from the texts the store keeps (each check outcome's JSON, the
//! host's, the warnings') without parsing and re-serialising them, so the server can rebuild it
//! byte for byte whenever a bundle is asked for, whatever later releases change in how an
//! outcome is serialised. The scalars around them are JSON strings and integers, whose spelling
//! does not change.

use rampart_core::{CheckOutcome, HostInfo, PolicyInfo, ScanReport};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::claims::{Claims, ResultClaim};

/// The document's `format`.
pub const FORMAT: &str = "rampart-evidence/1";

/// A run as stored: scalars, and the stored JSON texts of its host and warnings.
#[derive(Debug, Clone)]
pub struct StoredRun<'a> {
    /// Run id.
    pub run_id: &'a str,
    /// Agent id.
    pub agent_id: &'a str,
    /// Policy id.
    pub policy_id: &'a str,
    /// The server's version number, if any.
    pub policy_version: Option<i64>,
    /// SHA-256 of the policy content evaluated.
    pub policy_sha256: &'a str,
    /// What started it.
    pub trigger: &'a str,
    /// Start (Unix seconds).
    pub started_at: i64,
    /// End (Unix seconds).
    pub finished_at: i64,
    /// The scanner (`rampart 0.1.0`).
    pub generator: &'a str,
    /// The canonical results digest.
    pub results_digest: &'a str,
    /// The host's stored JSON text.
    pub host_json: &'a str,
    /// The warnings' stored JSON text.
    pub warnings_json: &'a str,
}

/// The document's text: the run's fields, then the stored check outcomes in the order given
/// (the store's: natural check id order).
pub fn document(run: &StoredRun<'_>, checks: &[&str]) -> String {
    let s = |v: &str| serde_json::Value::from(v).to_string();
    let mut out = String::with_capacity(512 + checks.iter().map(|c| c.len() + 1).sum::<usize>());
    out.push_str("{\"format\":");
    out.push_str(&s(FORMAT));
    for (k, v) in [
        ("run_id", run.run_id),
        ("agent_id", run.agent_id),
        ("policy_id", run.policy_id),
    ] {
        out.push_str(&format!(",\"{k}\":{}", s(v)));
    }
    out.push_str(",\"policy_version\":");
    out.push_str(
        &run.policy_version
            .map_or("null".to_owned(), |v| v.to_string()),
    );
    for (k, v) in [
        ("policy_sha256", run.policy_sha256),
        ("trigger", run.trigger),
    ] {
        out.push_str(&format!(",\"{k}\":{}", s(v)));
    }
    out.push_str(&format!(
        ",\"started_at\":{},\"finished_at\":{}",
        run.started_at, run.finished_at
    ));
    for (k, v) in [
        ("generator", run.generator),
        ("results_digest", run.results_digest),
    ] {
        out.push_str(&format!(",\"{k}\":{}", s(v)));
    }
    out.push_str(",\"host\":");
    out.push_str(run.host_json);
    out.push_str(",\"warnings\":");
    out.push_str(run.warnings_json);
    out.push_str(",\"checks\":[");
    for (i, c) in checks.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(c);
    }
    out.push_str("]}");
    out
}

/// SHA-256 (hex) of a document's text.
pub fn digest(document: &str) -> String {
    hex::encode(Sha256::digest(document.as_bytes()))
}

/// The claims an issuer makes for a run whose evidence document is `text`: everything but the
/// time, the ids, the agent's certificate and the log position comes from the run. The same
/// function serves a run just received (its checks in memory) and one read back.
pub fn claims_of(
    run: &StoredRun<'_>,
    host: &HostInfo,
    checks: &[CheckOutcome],
    text: &str,
    issue: Issue<'_>,
) -> Claims {
    use crate::claims::*;
    Claims {
        iss: issue.issuer.to_owned(),
        sub: run.agent_id.to_owned(),
        iat: issue.issued_at,
        nbf: issue.issued_at,
        exp: issue.expires_at,
        jti: issue.jti.to_owned(),
        cnf: Confirmation {
            x5t_s256: issue.cert_thumbprint.to_owned(),
        },
        eat_profile: PROFILE.to_owned(),
        host: HostClaim {
            hostname: host.hostname.clone(),
            os: host.os.clone(),
            kernel: host.kernel.clone(),
            agent_version: run.generator.to_owned(),
        },
        policy: PolicyClaim {
            id: run.policy_id.to_owned(),
            version: run.policy_version,
            sha256: run.policy_sha256.to_owned(),
        },
        result: ResultClaim::of(checks),
        evidence: EvidenceClaim {
            sha256: digest(text),
            results_digest: run.results_digest.to_owned(),
        },
        scan: ScanClaim {
            run_id: run.run_id.to_owned(),
            trigger: run.trigger.to_owned(),
            started_at: run.started_at,
            finished_at: run.finished_at,
        },
        waivers: WaiverClaim::of(checks),
        log: LogClaim {
            origin: issue.log_origin.to_owned(),
            index: 0,
            checkpoint_size: 0,
            checkpoint_root: String::new(),
        },
    }
}

/// What the issuer adds to the evidence's claims.
#[derive(Debug, Clone, Copy)]
pub struct Issue<'a> {
    /// `iss`: the server's public URL.
    pub issuer: &'a str,
    /// `jti`.
    pub jti: &'a str,
    /// `iat` and `nbf` (Unix seconds).
    pub issued_at: i64,
    /// `exp` (Unix seconds).
    pub expires_at: i64,
    /// base64url SHA-256 of the agent certificate's DER.
    pub cert_thumbprint: &'a str,
    /// The audit log's origin (the index and checkpoint are filled in once logged).
    pub log_origin: &'a str,
}

/// A document read back.
#[derive(Debug, Clone, Deserialize)]
pub struct Evidence {
    /// Must be [`FORMAT`].
    pub format: String,
    /// Run id.
    pub run_id: String,
    /// Agent id.
    pub agent_id: String,
    /// Policy id.
    pub policy_id: String,
    /// Version number, if any.
    pub policy_version: Option<i64>,
    /// Policy content SHA-256.
    pub policy_sha256: String,
    /// What started the run.
    pub trigger: String,
    /// Start.
    pub started_at: i64,
    /// End.
    pub finished_at: i64,
    /// The scanner.
    pub generator: String,
    /// The canonical results digest as stored.
    pub results_digest: String,
    /// The host.
    pub host: HostInfo,
    /// Warnings of the scan.
    pub warnings: Vec<String>,
    /// Every check outcome with its evidence.
    pub checks: Vec<CheckOutcome>,
}

impl Evidence {
    /// Reads a document; the error says where it is broken.
    pub fn parse(text: &str) -> Result<Evidence, String> {
        let mut de = serde_json::Deserializer::from_str(text);
        let e: Evidence = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| format!("{}: {}", e.path(), e.inner()))?;
        if e.format != FORMAT {
            return Err(format!("format {:?}, expected {FORMAT:?}", e.format));
        }
        Ok(e)
    }

    /// The canonical results digest recomputed from the checks.
    pub fn recomputed_results_digest(&self) -> String {
        let policy = PolicyInfo {
            id: self.policy_id.clone(),
            sha256: self.policy_sha256.clone(),
            ..PolicyInfo::default()
        };
        let report = ScanReport::single(policy, self.checks.clone(), OffsetDateTime::UNIX_EPOCH);
        rampart_core::digest::results_digest(&report)
    }

    /// The claims an issuer makes for this evidence (whose exact text is `text`).
    pub fn claims(&self, text: &str, issue: Issue<'_>) -> Claims {
        claims_of(
            &StoredRun {
                run_id: &self.run_id,
                agent_id: &self.agent_id,
                policy_id: &self.policy_id,
                policy_version: self.policy_version,
                policy_sha256: &self.policy_sha256,
                trigger: &self.trigger,
                started_at: self.started_at,
                finished_at: self.finished_at,
                generator: &self.generator,
                results_digest: &self.results_digest,
                host_json: "",
                warnings_json: "",
            },
            &self.host,
            &self.checks,
            text,
            issue,
        )
    }

    /// Every way the claims disagree with this evidence (empty when they agree).
    pub fn disagreements(&self, claims: &Claims) -> Vec<String> {
        let mut out = Vec::new();
        let mut differ =
            |what: &str, claimed: &dyn std::fmt::Debug, found: &dyn std::fmt::Debug| {
                out.push(format!(
                    "{what}: the attestation says {claimed:?}, the evidence {found:?}"
                ));
            };
        if claims.sub != self.agent_id {
            differ("agent", &claims.sub, &self.agent_id);
        }
        if claims.scan.run_id != self.run_id {
            differ("run", &claims.scan.run_id, &self.run_id);
        }
        if claims.policy.id != self.policy_id {
            differ("policy", &claims.policy.id, &self.policy_id);
        }
        if claims.policy.version != self.policy_version {
            differ(
                "policy version",
                &claims.policy.version,
                &self.policy_version,
            );
        }
        if claims.policy.sha256 != self.policy_sha256 {
            differ("policy SHA-256", &claims.policy.sha256, &self.policy_sha256);
        }
        if (claims.scan.started_at, claims.scan.finished_at) != (self.started_at, self.finished_at)
        {
            differ(
                "scan times",
                &(claims.scan.started_at, claims.scan.finished_at),
                &(self.started_at, self.finished_at),
            );
        }
        if claims.host.hostname != self.host.hostname {
            differ("host", &claims.host.hostname, &self.host.hostname);
        }
        let recomputed = self.recomputed_results_digest();
        if recomputed != self.results_digest || recomputed != claims.evidence.results_digest {
            differ(
                "results digest",
                &claims.evidence.results_digest,
                &recomputed,
            );
        }
        let result = ResultClaim::of(&self.checks);
        if result != claims.result {
            differ("result", &claims.result, &result);
        }
        let waivers = crate::claims::WaiverClaim::of(&self.checks);
        if waivers != claims.waivers {
            differ("waivers", &claims.waivers, &waivers);
        }
        out
    }
}
