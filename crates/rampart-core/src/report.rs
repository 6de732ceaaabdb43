//! The scan report model: what was checked, what was found, and why.
//!
//! Field names are part of Rampart's stable JSON schema (`docs/report-format.md`); renaming one is
//! a breaking change.

use crate::{Framework, Severity, Status};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// The JSON Schema of the report (`rampart schema report`).
pub fn report_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(ScanReport)).unwrap_or(serde_json::Value::Null)
}

/// Version of the JSON report schema.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// One scan of one host (or root directory) against one or more policies.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct ScanReport {
    /// Schema version of this document.
    pub schema_version: u32,
    /// Producer and version, e.g. `rampart 0.1.0`.
    pub generator: String,
    /// Random identifier of this scan.
    pub scan_id: String,
    /// What was scanned.
    pub host: HostInfo,
    /// When the scan started (UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::timestamp::Rfc3339")]
    pub started_at: OffsetDateTime,
    /// When the scan finished (UTC).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "crate::timestamp::Rfc3339")]
    pub finished_at: OffsetDateTime,
    /// One entry per policy evaluated.
    pub policies: Vec<PolicyReport>,
    /// Non-fatal problems (expired waivers, skipped checks) a reader should know about.
    pub warnings: Vec<String>,
    /// SHA-256 over the canonical serialisation of the results (see [`crate::digest`]).
    pub results_digest: String,
}

impl ScanReport {
    /// A report of one policy and its checks, summaries and digest computed; for importers and
    /// tests that build reports by hand.
    pub fn single(policy: PolicyInfo, checks: Vec<CheckOutcome>, at: OffsetDateTime) -> ScanReport {
        let mut report = ScanReport {
            schema_version: REPORT_SCHEMA_VERSION,
            generator: format!("rampart {}", env!("CARGO_PKG_VERSION")),
            scan_id: String::new(),
            host: HostInfo::default(),
            started_at: at,
            finished_at: at,
            policies: vec![PolicyReport {
                policy,
                requirements: None,
                checks,
                summary: Summary::default(),
                frameworks: BTreeMap::new(),
                severities: BTreeMap::new(),
            }],
            warnings: vec![],
            results_digest: String::new(),
        };
        report.refresh();
        report
    }

    /// Recomputes every summary and the results digest after statuses changed (waivers applied,
    /// filters applied).
    pub fn refresh(&mut self) {
        for p in &mut self.policies {
            p.refresh();
        }
        self.results_digest = crate::digest::results_digest(self);
    }

    /// Totals over all policies.
    pub fn totals(&self) -> Summary {
        let mut s = Summary::default();
        for p in &self.policies {
            for c in &p.checks {
                s.add(c.status);
            }
        }
        s.finish();
        s
    }
}

/// The scanned host.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
pub struct HostInfo {
    /// Host name.
    pub hostname: String,
    /// Operating system, as `/etc/os-release` names it.
    pub os: String,
    /// Kernel release.
    pub kernel: String,
    /// The root directory scanned, when not `/`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub root: Option<String>,
}

/// Identity of an evaluated policy.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
pub struct PolicyInfo {
    /// Policy id, unique among loaded policies.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Description.
    pub description: String,
    /// File the policy came from (or `builtin:<name>`).
    pub file: String,
    /// Source format: `rampart`, `wazuh-sca-4`, `wazuh-sca-5`, `xccdf-results`.
    pub format: String,
    /// SHA-256 of the policy file's bytes.
    pub sha256: String,
    /// References listed by the policy.
    #[serde(default)]
    pub references: Vec<String>,
}

/// Result of the policy's requirements gate.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct RequirementsOutcome {
    /// Title of the requirements block.
    pub title: String,
    /// Whether the policy applies to this host.
    pub satisfied: bool,
    /// Why not, when it does not.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    /// How they were judged, when not as on a live host (an image's own files, or skipped).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub note: Option<String>,
}

/// Everything about one policy's evaluation.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct PolicyReport {
    /// Which policy.
    pub policy: PolicyInfo,
    /// The requirements gate, when the policy has one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub requirements: Option<RequirementsOutcome>,
    /// One entry per check, in policy order.
    pub checks: Vec<CheckOutcome>,
    /// Counts and score over all checks.
    pub summary: Summary,
    /// Counts and score per compliance framework the checks map to.
    pub frameworks: BTreeMap<Framework, Summary>,
    /// Counts per severity.
    #[schemars(extend("propertyNames" = {"enum": ["unknown", "info", "low", "medium", "high", "critical"]}))]
    pub severities: BTreeMap<Severity, Summary>,
}

impl PolicyReport {
    /// Recomputes `summary`, `frameworks` and `severities` from the check statuses.
    pub fn refresh(&mut self) {
        let mut summary = Summary::default();
        let mut frameworks: BTreeMap<Framework, Summary> = BTreeMap::new();
        let mut severities: BTreeMap<Severity, Summary> = BTreeMap::new();
        for c in &self.checks {
            summary.add(c.status);
            severities.entry(c.severity).or_default().add(c.status);
            for f in c.frameworks() {
                frameworks.entry(f).or_default().add(c.status);
            }
        }
        summary.finish();
        for s in frameworks.values_mut().chain(severities.values_mut()) {
            s.finish();
        }
        self.summary = summary;
        self.frameworks = frameworks;
        self.severities = severities;
    }
}

/// Counts per status and the score.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq, Default)]
pub struct Summary {
    /// Checks that passed.
    pub passed: u32,
    /// Checks that failed.
    pub failed: u32,
    /// Checks that do not apply.
    pub not_applicable: u32,
    /// Checks not run this time (5.x timeouts).
    pub not_run: u32,
    /// Checks Rampart could not evaluate.
    pub error: u32,
    /// Checks covered by a waiver.
    pub waived: u32,
    /// All checks.
    pub total: u32,
    /// `passed / (passed + failed) * 100`, 0 when nothing passed or failed (Wazuh's formula).
    pub score: f64,
}

impl Summary {
    /// Counts one check.
    pub fn add(&mut self, status: Status) {
        self.total += 1;
        match status {
            Status::Pass => self.passed += 1,
            Status::Fail => self.failed += 1,
            Status::NotApplicable => self.not_applicable += 1,
            Status::NotRun => self.not_run += 1,
            Status::Error => self.error += 1,
            Status::Waived => self.waived += 1,
        }
    }

    /// Computes the score from the counts.
    pub fn finish(&mut self) {
        self.score = score(self.passed, self.failed);
    }

    /// Count for one status.
    pub fn count(&self, status: Status) -> u32 {
        match status {
            Status::Pass => self.passed,
            Status::Fail => self.failed,
            Status::NotApplicable => self.not_applicable,
            Status::NotRun => self.not_run,
            Status::Error => self.error,
            Status::Waived => self.waived,
        }
    }
}

/// Wazuh's score: passed over decided checks, in percent; 0 when no check was decided.
pub fn score(passed: u32, failed: u32) -> f64 {
    if passed + failed == 0 {
        0.0
    } else {
        f64::from(passed) / f64::from(passed + failed) * 100.0
    }
}

/// The outcome of one check, with the evidence behind it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct CheckOutcome {
    /// Check id as written in the policy (Wazuh ids are numbers; kept as text).
    pub id: String,
    /// Title.
    pub title: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Rationale.
    #[serde(default)]
    pub rationale: String,
    /// How to fix a failure.
    #[serde(default)]
    pub remediation: String,
    /// Severity.
    pub severity: Severity,
    /// References.
    #[serde(default)]
    pub references: Vec<String>,
    /// Compliance mappings exactly as the policy states them: key → control ids.
    #[serde(default)]
    pub compliance: BTreeMap<String, Vec<String>>,
    /// MITRE ATT&CK ids (tactics, techniques, mitigations).
    #[serde(default)]
    pub mitre: Vec<String>,
    /// Rule aggregation (`all`, `any`, `none`).
    pub condition: String,
    /// The rules as written.
    pub rules: Vec<String>,
    /// Final status.
    pub status: Status,
    /// Why the check is not applicable / not run / an error; for pass and fail, a one-line
    /// explanation.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    /// What the engine saw, rule by rule.
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    /// The waiver applied, when status is `waived`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub waiver: Option<WaiverInfo>,
    /// Status the check had before a waiver was applied.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub original_status: Option<Status>,
}

impl CheckOutcome {
    /// An outcome with identity and status only (other fields empty, severity unknown), for
    /// importers and tests that build reports by hand.
    pub fn new(id: impl Into<String>, title: impl Into<String>, status: Status) -> CheckOutcome {
        CheckOutcome {
            id: id.into(),
            title: title.into(),
            description: String::new(),
            rationale: String::new(),
            remediation: String::new(),
            severity: Severity::Unknown,
            references: vec![],
            compliance: BTreeMap::new(),
            mitre: vec![],
            condition: "all".into(),
            rules: vec![],
            status,
            reason: None,
            evidence: vec![],
            waiver: None,
            original_status: None,
        }
    }

    /// The frameworks this check maps to (MITRE keys excluded), deduplicated.
    pub fn frameworks(&self) -> Vec<Framework> {
        let mut out: Vec<Framework> = self
            .compliance
            .keys()
            .filter(|k| !Framework::is_mitre_key(k))
            .map(|k| Framework::from_key(k))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Control ids this check maps to within a framework.
    pub fn controls(&self, framework: &Framework) -> Vec<&str> {
        self.compliance
            .iter()
            .filter(|(k, _)| !Framework::is_mitre_key(k) && Framework::from_key(k) == *framework)
            .flat_map(|(_, v)| v.iter().map(String::as_str))
            .collect()
    }
}

/// A waiver that covers a check.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct WaiverInfo {
    /// The server's id of the waiver, when it was one of the server's (local waiver files have
    /// none).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<String>,
    /// The id or glob that matched.
    pub pattern: String,
    /// Why the risk is accepted.
    pub justification: String,
    /// Who approved it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub approver: Option<String>,
    /// Last day the waiver is valid (ISO date).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expires: Option<String>,
}

/// Outcome of one rule of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleVerdict {
    /// The rule's condition held (after `not`).
    Found,
    /// The rule's condition did not hold (after `not`).
    NotFound,
    /// The rule could not be evaluated.
    Invalid,
    /// The rule was not evaluated because an earlier rule decided the check.
    Skipped,
}

/// What one rule looked at and what it saw.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Evidence {
    /// The rule as written.
    pub rule: String,
    /// Its verdict.
    pub verdict: RuleVerdict,
    /// Observations, most telling first.
    pub observations: Vec<Observation>,
}

/// Kind of thing observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ObservationKind {
    /// A file (existence or a line of it).
    File,
    /// A directory.
    Directory,
    /// A command and its output.
    Command,
    /// A running process.
    Process,
    /// A Windows registry key or value.
    Registry,
    /// File metadata (mode, owner, group).
    Metadata,
    /// Anything else (a kernel parameter, a package database, a note).
    Other,
}

/// One observation: where, and what was there.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct Observation {
    /// What kind of thing.
    pub kind: ObservationKind,
    /// Path, command line, process name or key.
    pub target: String,
    /// Line number within the file or output (1-based).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub line: Option<u64>,
    /// The matching or offending text (an excerpt for long outputs).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub text: Option<String>,
    /// A short explanation: "file does not exist", "exit status 1", "no line matched".
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_is_wazuh_formula() {
        assert_eq!(score(0, 0), 0.0);
        assert_eq!(score(1, 1), 50.0);
        assert_eq!(score(3, 0), 100.0);
        assert!((score(1, 2) - 33.333_333).abs() < 1e-4);
    }

    #[test]
    fn summary_excludes_non_decided_from_score() {
        let mut s = Summary::default();
        for st in [
            Status::Pass,
            Status::Fail,
            Status::NotApplicable,
            Status::Waived,
            Status::Error,
            Status::NotRun,
        ] {
            s.add(st);
        }
        s.finish();
        assert_eq!(s.total, 6);
        assert_eq!(s.score, 50.0);
        assert_eq!(s.count(Status::Waived), 1);
    }
}
