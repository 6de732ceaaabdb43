//! What an attestation says: the claim set (fleet-trust-prior-art §3.2, EAT and RFC 7800 names
//! where they exist), the result computed from check outcomes, and the audit-log entry that
//! records the issue.
//!
//! The result claim is computed by one function, [`ResultClaim::of`], from the same check
//! outcomes the evidence document holds, so an offline verifier recomputes it from the evidence
//! and any difference is a mismatch, not a matter of interpretation.

use std::collections::{BTreeMap, BTreeSet};

use rampart_core::{CheckOutcome, Status, Summary};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The JWS `typ` (RFC 8725 §3.11: explicit typing, so no other JWT is taken for one of these).
pub const TYP: &str = "rampart-compliance+jwt";

/// The EAT profile naming this claim set and its meaning.
pub const PROFILE: &str = "urn:rampart:compliance:v1";

/// The audit-log action that records an issue.
pub const ISSUE_ACTION: &str = "attestation.issue";

/// The signed claims.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Claims {
    /// The issuing server (its public URL; the JWKS is under it).
    pub iss: String,
    /// The agent id.
    pub sub: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not before (Unix seconds).
    pub nbf: i64,
    /// Expires (Unix seconds): about twice the scan interval, never past the agent
    /// certificate's expiry plus a grace period.
    pub exp: i64,
    /// Unique id of this attestation.
    pub jti: String,
    /// The agent's key, as the certificate it posted the run with (RFC 7800 confirmation).
    pub cnf: Confirmation,
    /// The claim set's profile.
    pub eat_profile: String,
    /// The host the run describes.
    pub host: HostClaim,
    /// The policy evaluated.
    pub policy: PolicyClaim,
    /// What came of it.
    pub result: ResultClaim,
    /// The full results behind it.
    pub evidence: EvidenceClaim,
    /// The scan.
    pub scan: ScanClaim,
    /// Waivers that covered checks of this run.
    pub waivers: Vec<WaiverClaim>,
    /// Where the issue is recorded in the audit log.
    pub log: LogClaim,
}

/// RFC 7800 `cnf`: the SHA-256 thumbprint of the agent's certificate (RFC 8705 `x5t#S256`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Confirmation {
    /// base64url SHA-256 of the certificate's DER.
    #[serde(rename = "x5t#S256")]
    pub x5t_s256: String,
}

/// The host, as the agent reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HostClaim {
    /// Host name.
    pub hostname: String,
    /// Operating system.
    pub os: String,
    /// Kernel.
    pub kernel: String,
    /// The scanner that produced the results (`rampart 0.1.0`).
    pub agent_version: String,
}

/// The policy, by content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PolicyClaim {
    /// Policy id.
    pub id: String,
    /// The server's version number, when the run was of an assigned version.
    pub version: Option<i64>,
    /// SHA-256 (hex) of the policy content evaluated.
    pub sha256: String,
}

/// compliant: no check failed and every check was decided; noncompliant: a check failed;
/// partial: nothing failed but some checks could not be decided (errors, not run) or none was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComplianceStatus {
    /// Nothing failed and every check was decided.
    Compliant,
    /// At least one check failed.
    Noncompliant,
    /// Nothing failed, but not everything could be decided.
    Partial,
}

impl ComplianceStatus {
    /// The claim's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ComplianceStatus::Compliant => "compliant",
            ComplianceStatus::Noncompliant => "noncompliant",
            ComplianceStatus::Partial => "partial",
        }
    }
}

/// Counts, score, and what failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResultClaim {
    /// Overall judgement.
    pub status: ComplianceStatus,
    /// Counts per status and Wazuh's score (passed over passed + failed, in percent), as
    /// every report of the run has them; flattened into the claim.
    #[serde(flatten)]
    pub counts: Summary,
    /// Ids of the checks that failed, in check order.
    pub failed_checks: Vec<String>,
    /// Per framework (`cis`, `nist_800_53`, `pci_dss`…): score, counts and failed control ids.
    pub frameworks: BTreeMap<String, FrameworkResult>,
}

/// One framework's share of the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FrameworkResult {
    /// Score over the checks mapped to the framework.
    pub score: f64,
    /// Of those, passed.
    pub passed: u32,
    /// Of those, failed.
    pub failed: u32,
    /// The framework's control ids mapped from failed checks, sorted, once each.
    pub failed_controls: Vec<String>,
}

impl ResultClaim {
    /// The result of these check outcomes.
    pub fn of(checks: &[CheckOutcome]) -> ResultClaim {
        let mut summary = Summary::default();
        let mut frameworks: BTreeMap<String, (Summary, BTreeSet<String>)> = BTreeMap::new();
        let mut failed_checks = Vec::new();
        for c in checks {
            summary.add(c.status);
            if c.status == Status::Fail {
                failed_checks.push(c.id.clone());
            }
            for f in c.frameworks() {
                let (s, failed) = frameworks.entry(f.as_str().to_owned()).or_default();
                s.add(c.status);
                if c.status == Status::Fail {
                    failed.extend(c.controls(&f).into_iter().map(str::to_owned));
                }
            }
        }
        summary.finish();
        let status = if summary.failed > 0 {
            ComplianceStatus::Noncompliant
        } else if summary.error > 0 || summary.not_run > 0 || summary.passed + summary.waived == 0 {
            ComplianceStatus::Partial
        } else {
            ComplianceStatus::Compliant
        };
        ResultClaim {
            status,
            counts: summary,
            failed_checks,
            frameworks: frameworks
                .into_iter()
                .map(|(name, (mut s, failed))| {
                    s.finish();
                    let r = FrameworkResult {
                        score: s.score,
                        passed: s.passed,
                        failed: s.failed,
                        failed_controls: failed.into_iter().collect(),
                    };
                    (name, r)
                })
                .collect(),
        }
    }
}

/// The evidence document, by digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EvidenceClaim {
    /// SHA-256 (hex) of the evidence document's exact text (`evidence::document`).
    pub sha256: String,
    /// The canonical results digest (rampart-core `digest`): statuses and waivers only.
    pub results_digest: String,
}

/// The scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScanClaim {
    /// The run id.
    pub run_id: String,
    /// What started it: `schedule`, `on_demand`, `manual`.
    pub trigger: String,
    /// Start (Unix seconds).
    pub started_at: i64,
    /// End (Unix seconds).
    pub finished_at: i64,
}

/// A waiver that covered a check of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WaiverClaim {
    /// The check it covered.
    pub check: String,
    /// The waiver's id on the server, when it was one of the server's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The id or glob that matched.
    pub pattern: String,
    /// Why the risk was accepted.
    pub justification: String,
    /// Who approved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// Its last day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

impl WaiverClaim {
    /// One claim per waived check, in check order.
    pub fn of(checks: &[CheckOutcome]) -> Vec<WaiverClaim> {
        checks
            .iter()
            .filter_map(|c| {
                let w = c.waiver.as_ref()?;
                Some(WaiverClaim {
                    check: c.id.clone(),
                    id: w.id.clone(),
                    pattern: w.pattern.clone(),
                    justification: w.justification.clone(),
                    approved_by: w.approver.clone(),
                    expires: w.expires.clone(),
                })
            })
            .collect()
    }
}

/// The audit-log entry recording the issue, and the signed checkpoint that first covered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LogClaim {
    /// The log's origin (its checkpoints' first line).
    pub origin: String,
    /// The entry's index.
    pub index: u64,
    /// Size of the checkpoint.
    pub checkpoint_size: u64,
    /// Its root hash, base64 (as in the checkpoint's text).
    pub checkpoint_root: String,
}

/// Every claim but `log`, in a fixed order: what the audit entry's `claims_sha256` covers (the
/// log position is only known once the entry is written).
#[derive(Serialize)]
struct Logged<'a> {
    iss: &'a str,
    sub: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: &'a str,
    cnf: &'a Confirmation,
    eat_profile: &'a str,
    host: &'a HostClaim,
    policy: &'a PolicyClaim,
    result: &'a ResultClaim,
    evidence: &'a EvidenceClaim,
    scan: &'a ScanClaim,
    waivers: &'a [WaiverClaim],
}

impl Claims {
    /// SHA-256 (hex) of every claim but `log`, as compact JSON in declaration order.
    pub fn logged_sha256(&self) -> String {
        let logged = Logged {
            iss: &self.iss,
            sub: &self.sub,
            iat: self.iat,
            nbf: self.nbf,
            exp: self.exp,
            jti: &self.jti,
            cnf: &self.cnf,
            eat_profile: &self.eat_profile,
            host: &self.host,
            policy: &self.policy,
            result: &self.result,
            evidence: &self.evidence,
            scan: &self.scan,
            waivers: &self.waivers,
        };
        // Strings, integers, floats and maps of them always serialise.
        let text = serde_json::to_vec(&logged).unwrap_or_default();
        hex::encode(Sha256::digest(&text))
    }

    /// The audit event recording the issue of these claims with key `kid`.
    pub fn issue_event(&self, kid: &str, alg: crate::Alg) -> rampart_audit::Event {
        rampart_audit::Event::new(
            "system",
            ISSUE_ACTION,
            format!("agent:{}", self.sub),
            rampart_audit::Outcome::Success,
        )
        .detail("jti", self.jti.clone())
        .detail("kid", kid)
        .detail("alg", alg.as_str())
        .detail("claims_sha256", self.logged_sha256())
        .detail("policy", self.policy.id.clone())
        .detail("run", self.scan.run_id.clone())
        .detail("status", self.result.status.as_str())
        .detail("evidence_sha256", self.evidence.sha256.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_core::WaiverInfo;

    fn check(id: &str, status: Status, cis: &[&str]) -> CheckOutcome {
        let mut c = CheckOutcome::new(id, format!("check {id}"), status);
        if !cis.is_empty() {
            c.compliance
                .insert("cis".into(), cis.iter().map(|s| (*s).to_owned()).collect());
        }
        c
    }

    #[test]
    fn result_counts_scores_and_failed_controls() {
        let mut waived = check("4", Status::Waived, &["1.3"]);
        waived.waiver = Some(WaiverInfo {
            id: Some("w1".into()),
            pattern: "4".into(),
            justification: "legacy host".into(),
            approver: Some("carol".into()),
            expires: Some("2027-03-31".into()),
        });
        let checks = vec![
            check("1", Status::Pass, &["1.1"]),
            check("2", Status::Fail, &["1.2", "1.1"]),
            check("3", Status::NotApplicable, &[]),
            waived,
            check("5", Status::Fail, &["1.2"]),
        ];
        let r = ResultClaim::of(&checks);
        // Worked by hand: 1 passed, 2 failed → 33.33…%.
        assert_eq!(
            (
                r.counts.passed,
                r.counts.failed,
                r.counts.not_applicable,
                r.counts.waived,
                r.counts.total
            ),
            (1, 2, 1, 1, 5)
        );
        assert!(
            (r.counts.score - 33.333).abs() < 0.001,
            "{}",
            r.counts.score
        );
        assert_eq!(r.status, ComplianceStatus::Noncompliant);
        assert_eq!(r.failed_checks, ["2", "5"]);
        let cis = &r.frameworks["cis"];
        assert_eq!((cis.passed, cis.failed), (1, 2));
        assert_eq!(cis.failed_controls, ["1.1", "1.2"]);
        let w = WaiverClaim::of(&checks);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].check, "4");
        assert_eq!(w[0].id.as_deref(), Some("w1"));
        assert_eq!(w[0].approved_by.as_deref(), Some("carol"));
    }

    #[test]
    fn status_rules() {
        let of = |s: &[Status]| {
            let checks: Vec<_> = s.iter().map(|&s| check("x", s, &[])).collect();
            ResultClaim::of(&checks).status
        };
        assert_eq!(
            of(&[Status::Pass, Status::NotApplicable]),
            ComplianceStatus::Compliant
        );
        assert_eq!(of(&[Status::Waived]), ComplianceStatus::Compliant);
        assert_eq!(
            of(&[Status::Pass, Status::Error]),
            ComplianceStatus::Partial
        );
        assert_eq!(
            of(&[Status::Pass, Status::NotRun]),
            ComplianceStatus::Partial
        );
        assert_eq!(of(&[Status::NotApplicable]), ComplianceStatus::Partial);
        assert_eq!(
            of(&[Status::Error, Status::Fail]),
            ComplianceStatus::Noncompliant
        );
    }
}
