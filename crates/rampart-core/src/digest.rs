//! The results digest: a SHA-256 over a canonical serialisation of what was found.
//!
//! Attestations sign this digest, so it must not depend on anything incidental: not on timing, not
//! on evidence wording (which may improve between releases), not on check order in the file. It
//! covers, per policy sorted by id: the policy id and the policy file's SHA-256; per check sorted by
//! id: the id, the status, and the waiver justification when waived. The canonical form is one line
//! per item, fields separated by a tab:
//!
//! ```text
//! policy\t<policy id>\t<policy sha256>\n
//! check\t<check id>\t<status>\t<waiver justification or empty>\n
//! ```

use crate::ScanReport;
use sha2::{Digest, Sha256};

/// Canonical text the digest is computed over (exposed so a verifier can show it).
pub fn canonical_results(report: &ScanReport) -> String {
    let mut policies: Vec<_> = report.policies.iter().collect();
    policies.sort_by(|a, b| a.policy.id.cmp(&b.policy.id));
    let mut out = String::new();
    for p in policies {
        out.push_str("policy\t");
        out.push_str(&escape(&p.policy.id));
        out.push('\t');
        out.push_str(&p.policy.sha256);
        out.push('\n');
        let mut checks: Vec<_> = p.checks.iter().collect();
        checks.sort_by(|a, b| natural_cmp(&a.id, &b.id));
        for c in checks {
            out.push_str("check\t");
            out.push_str(&escape(&c.id));
            out.push('\t');
            out.push_str(c.status.as_str());
            out.push('\t');
            if let Some(w) = &c.waiver {
                out.push_str(&escape(&w.justification));
            }
            out.push('\n');
        }
    }
    out
}

/// SHA-256 (lower-case hex) of [`canonical_results`].
pub fn results_digest(report: &ScanReport) -> String {
    hex::encode(Sha256::digest(canonical_results(report).as_bytes()))
}

/// SHA-256 (lower-case hex) of arbitrary bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
}

/// Orders numeric ids numerically (Wazuh ids) and everything else lexically.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Status;
    use crate::report::*;

    fn check(id: &str, status: Status) -> CheckOutcome {
        let mut c = CheckOutcome::new(id, format!("check {id}"), status);
        c.reason = Some("timing-dependent wording".into());
        c
    }

    fn report(checks: Vec<CheckOutcome>) -> ScanReport {
        let policy = PolicyInfo {
            id: "p".into(),
            sha256: "ab".into(),
            ..Default::default()
        };
        ScanReport::single(policy, checks, time::OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn canonical_form_is_sorted_and_ignores_wording() {
        let a = report(vec![check("10", Status::Pass), check("9", Status::Fail)]);
        let mut b = report(vec![check("9", Status::Fail), check("10", Status::Pass)]);
        b.policies[0].checks[0].reason = Some("other words".into());
        assert_eq!(canonical_results(&a), canonical_results(&b));
        assert_eq!(
            canonical_results(&a),
            "policy\tp\tab\ncheck\t9\tfail\t\ncheck\t10\tpass\t\n"
        );
        assert_eq!(results_digest(&a), results_digest(&b));
    }

    #[test]
    fn status_change_changes_digest() {
        let a = report(vec![check("1", Status::Pass)]);
        let b = report(vec![check("1", Status::Fail)]);
        assert_ne!(results_digest(&a), results_digest(&b));
    }
}
