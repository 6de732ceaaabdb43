//! A report of one host from a scan report (`rampart scan --format json`).

use std::collections::BTreeMap;

use rampart_core::{CheckOutcome, ScanReport, Status};

use crate::model::{
    CheckResult, EvidenceSample, ReportInput, Subject, SubjectKind, TrendPoint, WaiverRow,
};

/// One host's results as a report counts them: a check result per outcome, and the evidence
/// of every outcome that has some. Shared by scan files and the server's stored runs, so a
/// host's report says the same of the same results wherever it is made.
#[derive(Debug, Default)]
pub struct HostResults {
    checks: Vec<CheckResult>,
    evidence: Vec<(u8, EvidenceSample)>,
}

impl HostResults {
    /// Adds one run's outcomes of `policy_id` on `host`.
    pub fn add_run(&mut self, policy_id: &str, outcomes: &[CheckOutcome], host: &str) {
        for c in outcomes {
            let mut r = CheckResult {
                policy_id: policy_id.to_owned(),
                check_id: c.id.clone(),
                title: c.title.clone(),
                severity: c.severity,
                rationale: c.rationale.clone(),
                remediation: c.remediation.clone(),
                compliance: c.compliance.clone(),
                ..CheckResult::default()
            };
            match c.status {
                Status::Pass => r.passed = 1,
                Status::Fail => r.failed = 1,
                Status::Waived => r.waived = 1,
                Status::NotApplicable | Status::NotRun | Status::Error => r.other = 1,
            }
            self.checks.push(r);
            if !c.evidence.is_empty() || c.reason.is_some() {
                self.evidence
                    .push((status_rank(c.status), evidence_sample(policy_id, c, host)));
            }
        }
    }

    /// The check results, and the evidence failed first, then errors, waived, passed, the rest.
    pub fn finish(mut self) -> (Vec<CheckResult>, Vec<EvidenceSample>) {
        self.evidence.sort_by_key(|(rank, _)| *rank);
        (
            self.checks,
            self.evidence.into_iter().map(|(_, e)| e).collect(),
        )
    }
}

/// The facts of a scan report: one host, every check once, the evidence of every check (failed
/// ones first), the waivers the scan applied. A scan file carries no signature, so the report
/// says the results are not attested.
pub fn from_scan(scan: &ScanReport, source: &str) -> ReportInput {
    let mut results = HostResults::default();
    let mut waivers: BTreeMap<String, WaiverRow> = BTreeMap::new();
    for p in &scan.policies {
        results.add_run(&p.policy.id, &p.checks, &scan.host.hostname);
        for w in p.checks.iter().filter_map(|c| c.waiver.as_ref()) {
            let id = w.id.clone().unwrap_or_else(|| w.pattern.clone());
            waivers.entry(id.clone()).or_insert_with(|| WaiverRow {
                id,
                policy_id: p.policy.id.clone(),
                check: w.pattern.clone(),
                applies_to: format!("host {}", scan.host.hostname),
                justification: w.justification.clone(),
                approved_by: w.approver.clone().unwrap_or_default(),
                expires: w.expires.clone().unwrap_or_default(),
            });
        }
    }
    let totals = scan.totals();
    let (checks, evidence) = results.finish();
    let mut details = vec![("Operating system".to_owned(), scan.host.os.clone())];
    if !scan.host.kernel.is_empty() {
        details.push(("Kernel".to_owned(), scan.host.kernel.clone()));
    }
    if let Some(root) = &scan.host.root {
        details.push(("Scanned root".to_owned(), root.clone()));
    }
    details.push(("Scan".to_owned(), scan.scan_id.clone()));
    details.push(("Results digest".to_owned(), scan.results_digest.clone()));
    ReportInput {
        subject: Subject {
            kind: SubjectKind::Host,
            name: scan.host.hostname.clone(),
            hosts: 1,
            details,
        },
        generated_at: scan.finished_at,
        generator: scan.generator.clone(),
        source: source.to_owned(),
        checks,
        trend: vec![TrendPoint {
            date: scan.started_at.date(),
            passed: u64::from(totals.passed),
            failed: u64::from(totals.failed),
        }],
        evidence,
        evidence_note: Some("Every check's evidence, failed checks first.".to_owned()),
        waivers: waivers.into_values().collect(),
        attestations: Vec::new(),
        attestation_note: Some(
            "A local scan report is not signed: these results carry no attestation. Reports \
             made by the server reference the signed attestation of each run."
                .to_owned(),
        ),
    }
}

/// Failed first, then errors, waived, passed, the rest.
fn status_rank(s: Status) -> u8 {
    match s {
        Status::Fail => 0,
        Status::Error => 1,
        Status::Waived => 2,
        Status::Pass => 3,
        Status::NotApplicable | Status::NotRun => 4,
    }
}

/// One check's evidence on one host, as lines: each rule with its verdict, then what was seen.
pub fn evidence_sample(policy_id: &str, c: &CheckOutcome, host: &str) -> EvidenceSample {
    let mut lines = Vec::new();
    for e in &c.evidence {
        lines.push(format!("[{}] {}", rampart_report::text::verdict(e), e.rule));
        for o in &e.observations {
            lines.push(format!("    {}", rampart_report::text::observation_line(o)));
        }
    }
    EvidenceSample {
        policy_id: policy_id.to_owned(),
        check_id: c.id.clone(),
        host: host.to_owned(),
        status: c.status.as_str().to_owned(),
        reason: c.reason.clone(),
        lines,
    }
}
