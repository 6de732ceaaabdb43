//! What a PDF report says: the facts a caller gathers ([`ReportInput`]) and the sections made
//! of them ([`Report`]), computed here so that every caller — a scan file on the command line,
//! one agent, a group or the whole fleet on the server — gets the same arithmetic.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use rampart_core::{Framework, Severity};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Failed checks listed with their remediation, at most; the rest are counted.
pub const MAX_FAILURES: usize = 500;
/// Evidence excerpts in the appendix, at most.
pub const MAX_EVIDENCE: usize = 400;
/// Lines of one evidence excerpt, at most.
pub const MAX_EVIDENCE_LINES: usize = 40;
/// Characters of one evidence line before it is cut.
const MAX_LINE_CHARS: usize = 400;
/// Characters of a mono line before it wraps (A4, the appendix's type size).
const WRAP_AT: usize = 96;

/// Which hosts a report covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// One host.
    Host,
    /// One group of agents.
    Group,
    /// Every agent the reader may see.
    Fleet,
}

/// The hosts a report covers, as the cover page names them.
#[derive(Debug, Clone, Serialize)]
pub struct Subject {
    /// Host, group or fleet.
    pub kind: SubjectKind,
    /// The host name, the group name, or "the fleet".
    pub name: String,
    /// Hosts whose results are counted.
    pub hosts: u64,
    /// Facts worth a line on the cover: agent id, operating system, filters applied.
    pub details: Vec<(String, String)>,
}

/// One check's latest results over the subject's hosts (for one host, exactly one count is 1).
#[derive(Debug, Clone, Default)]
pub struct CheckResult {
    /// The policy.
    pub policy_id: String,
    /// The check, as the policy names it.
    pub check_id: String,
    /// Title (empty when unknown).
    pub title: String,
    /// Severity as the policy states it.
    pub severity: Severity,
    /// Why the check matters.
    pub rationale: String,
    /// How to fix a failure.
    pub remediation: String,
    /// Compliance mappings as the policy states them: key → control ids.
    pub compliance: BTreeMap<String, Vec<String>>,
    /// Hosts where it passes.
    pub passed: u64,
    /// Hosts where it fails.
    pub failed: u64,
    /// Hosts where a waiver in force covers it.
    pub waived: u64,
    /// Hosts where it does not apply, was not run or could not be evaluated.
    pub other: u64,
}

/// The subject's score over one day (or one run).
#[derive(Debug, Clone)]
pub struct TrendPoint {
    /// The day.
    pub date: time::Date,
    /// Checks passed that day.
    pub passed: u64,
    /// Checks failed that day.
    pub failed: u64,
}

/// What a host showed for a check, for the evidence appendix.
#[derive(Debug, Clone)]
pub struct EvidenceSample {
    /// The policy.
    pub policy_id: String,
    /// The check.
    pub check_id: String,
    /// The host it was seen on.
    pub host: String,
    /// Its status there.
    pub status: String,
    /// Why, in one line, when the engine said.
    pub reason: Option<String>,
    /// The evidence, one observation per line.
    pub lines: Vec<String>,
}

/// A waiver in force over the subject.
#[derive(Debug, Clone, Serialize)]
pub struct WaiverRow {
    /// The server's waiver id, or the pattern of a local waiver file.
    pub id: String,
    /// The policy (or `*`).
    pub policy_id: String,
    /// The check id or glob.
    pub check: String,
    /// Which hosts it covers: an agent, a group or the fleet.
    pub applies_to: String,
    /// Why the risk is accepted.
    pub justification: String,
    /// Who approved it.
    pub approved_by: String,
    /// Its last day.
    pub expires: String,
}

/// A signed attestation of one of the subject's runs.
#[derive(Debug, Clone, Serialize)]
pub struct AttestationRow {
    /// The host.
    pub host: String,
    /// The policy of the run.
    pub policy_id: String,
    /// The attestation's id (JWT `jti`).
    pub id: String,
    /// The signing key's id.
    pub key_id: String,
    /// `compliant`, `noncompliant`…
    pub status: String,
    /// When it was issued (RFC 3339).
    pub issued_at: String,
    /// When it stops being valid (RFC 3339).
    pub expires_at: String,
    /// The run's results digest the attestation signs.
    pub results_digest: String,
}

/// Everything a report is made of, as the caller found it.
#[derive(Debug, Clone)]
pub struct ReportInput {
    /// Who the report is about.
    pub subject: Subject,
    /// When the data was read.
    pub generated_at: OffsetDateTime,
    /// Producer and version.
    pub generator: String,
    /// Where the data came from (a server, a scan file).
    pub source: String,
    /// Every check's latest results.
    pub checks: Vec<CheckResult>,
    /// The score over time, oldest first.
    pub trend: Vec<TrendPoint>,
    /// Evidence excerpts, in the order to print them.
    pub evidence: Vec<EvidenceSample>,
    /// How the excerpts were chosen, when not every result's evidence is there.
    pub evidence_note: Option<String>,
    /// Waivers in force.
    pub waivers: Vec<WaiverRow>,
    /// Signed attestations of the runs reported.
    pub attestations: Vec<AttestationRow>,
    /// What to say when there is no attestation, or when the list is partial.
    pub attestation_note: Option<String>,
}

/// Counts and a score.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tally {
    /// Passing results.
    pub passed: u64,
    /// Failing results.
    pub failed: u64,
    /// Waived results.
    pub waived: u64,
    /// Not applicable, not run, errors.
    pub other: u64,
    /// `passed / (passed + failed)` as a percentage (Wazuh's formula, as every Rampart
    /// score); `None` when nothing passed or failed.
    pub score: Option<f64>,
    /// The score as printed: `72.4 %`, or `–`.
    pub score_text: String,
}

impl Tally {
    fn add(&mut self, c: &CheckResult) {
        self.passed += c.passed;
        self.failed += c.failed;
        self.waived += c.waived;
        self.other += c.other;
    }

    fn finish(mut self) -> Tally {
        let judged = self.passed + self.failed;
        self.score = (judged > 0).then(|| self.passed as f64 / judged as f64 * 100.0);
        self.score_text = score_text(self.score);
        self
    }
}

fn score_text(score: Option<f64>) -> String {
    match score {
        Some(s) => format!("{s:.1} %"),
        None => "–".to_owned(),
    }
}

/// One policy's line in the summary.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyLine {
    /// The policy.
    pub id: String,
    /// Its checks.
    pub checks: u64,
    /// Its results.
    pub tally: Tally,
}

/// One day of the trend.
#[derive(Debug, Clone, Serialize)]
pub struct TrendBar {
    /// `2026-12-04`.
    pub date: String,
    /// 0–100.
    pub score: f64,
}

/// One control of a framework.
#[derive(Debug, Clone, Serialize)]
pub struct ControlRow {
    /// The control id as the policies state it.
    pub id: String,
    /// `fail` when any mapped check fails anywhere, else `pass` when any passes, else `waived`
    /// when any is waived, else `n/a`.
    pub status: &'static str,
    /// The checks mapped to it, `policy/check`.
    pub checks: Vec<String>,
    /// Their results.
    pub tally: Tally,
}

/// One framework's control table.
#[derive(Debug, Clone, Serialize)]
pub struct FrameworkSection {
    /// Canonical key (`cis`, `pci_dss_4.0`).
    pub key: String,
    /// Human title.
    pub title: String,
    /// Results of every check mapped to any of its controls (each check counted once).
    pub tally: Tally,
    /// Controls failing / passing / neither.
    pub controls_failing: u64,
    /// See `controls_failing`.
    pub controls_passing: u64,
    /// Controls, in natural order of their ids.
    pub controls: Vec<ControlRow>,
}

/// A failed check with what to do about it.
#[derive(Debug, Clone, Serialize)]
pub struct FailureRow {
    /// The policy.
    pub policy_id: String,
    /// The check.
    pub check_id: String,
    /// Its title.
    pub title: String,
    /// Its severity.
    pub severity: &'static str,
    /// Hosts failing it.
    pub hosts_failing: u64,
    /// Hosts judged on it (passing or failing).
    pub hosts_judged: u64,
    /// Why it matters.
    pub rationale: String,
    /// How to fix it.
    pub remediation: String,
    /// `CIS: 1.1.1; PCI DSS 4.0: 2.2`.
    pub controls: String,
}

/// An evidence excerpt as printed.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceBlock {
    /// `policy / check`.
    pub policy_id: String,
    /// See `policy_id`.
    pub check_id: String,
    /// The check's title when known.
    pub title: String,
    /// The host.
    pub host: String,
    /// Its status there.
    pub status: String,
    /// Why, in one line.
    pub reason: String,
    /// Lines, wrapped to the page.
    pub lines: Vec<String>,
    /// Lines left out of a long excerpt.
    pub lines_omitted: usize,
}

/// A report, every section computed: what the template lays out.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Document title.
    pub title: String,
    /// Who it is about.
    pub subject: Subject,
    /// `2026-12-04 03:58 UTC`.
    pub generated: String,
    /// The same instant, RFC 3339.
    pub generated_rfc3339: String,
    /// The same instant, for the PDF's metadata.
    #[serde(skip)]
    pub generated_at: OffsetDateTime,
    /// Producer.
    pub generator: String,
    /// Data source.
    pub source: String,
    /// Every result.
    pub summary: Tally,
    /// Distinct checks.
    pub checks: u64,
    /// Per policy.
    pub policies: Vec<PolicyLine>,
    /// Score per day.
    pub trend: Vec<TrendBar>,
    /// Per framework, with its control table.
    pub frameworks: Vec<FrameworkSection>,
    /// Failed checks, most hosts first, then most severe.
    pub failures: Vec<FailureRow>,
    /// Failed checks not listed (over [`MAX_FAILURES`]).
    pub failures_omitted: usize,
    /// Evidence appendix.
    pub evidence: Vec<EvidenceBlock>,
    /// How the appendix was chosen.
    pub evidence_note: String,
    /// Waivers in force.
    pub waivers: Vec<WaiverRow>,
    /// Attestations.
    pub attestations: Vec<AttestationRow>,
    /// What to say about attestations beyond the table.
    pub attestation_note: String,
}

impl Report {
    /// Computes every section from what the caller found.
    pub fn build(input: ReportInput) -> Report {
        let ReportInput {
            subject,
            generated_at,
            generator,
            source,
            mut checks,
            trend,
            evidence,
            evidence_note,
            waivers,
            attestations,
            attestation_note,
        } = input;
        checks.sort_by(|a, b| {
            a.policy_id
                .cmp(&b.policy_id)
                .then_with(|| natural(&a.check_id, &b.check_id))
        });

        let mut summary = Tally::default();
        let mut policies: BTreeMap<&str, (u64, Tally)> = BTreeMap::new();
        for c in &checks {
            summary.add(c);
            let p = policies.entry(c.policy_id.as_str()).or_default();
            p.0 += 1;
            p.1.add(c);
        }
        let policies = policies
            .into_iter()
            .map(|(id, (n, t))| PolicyLine {
                id: id.to_owned(),
                checks: n,
                tally: t.finish(),
            })
            .collect();

        let frameworks = frameworks(&checks);
        let (failures, failures_omitted) = failures(&checks);
        let titles: BTreeMap<(&str, &str), &str> = checks
            .iter()
            .map(|c| {
                (
                    (c.policy_id.as_str(), c.check_id.as_str()),
                    c.title.as_str(),
                )
            })
            .collect();
        let evidence_total = evidence.len();
        let evidence: Vec<EvidenceBlock> = evidence
            .into_iter()
            .take(MAX_EVIDENCE)
            .map(|e| {
                let title = titles
                    .get(&(e.policy_id.as_str(), e.check_id.as_str()))
                    .map(|t| (*t).to_owned())
                    .unwrap_or_default();
                evidence_block(e, title)
            })
            .collect();
        let mut evidence_note = evidence_note.unwrap_or_default();
        if evidence_total > evidence.len() {
            if !evidence_note.is_empty() {
                evidence_note.push(' ');
            }
            evidence_note.push_str(&format!(
                "The first {} of {evidence_total} excerpts are printed.",
                evidence.len()
            ));
        }

        let attestation_note = attestation_note.unwrap_or_else(|| {
            if attestations.is_empty() {
                "No signed attestation covers these results.".to_owned()
            } else {
                String::new()
            }
        });
        Report {
            title: match subject.kind {
                SubjectKind::Host => format!("Compliance report: host {}", subject.name),
                SubjectKind::Group => format!("Compliance report: group {}", subject.name),
                SubjectKind::Fleet => "Compliance report: the fleet".to_owned(),
            },
            generated: generated_at
                .to_offset(time::UtcOffset::UTC)
                .format(time::macros::format_description!(
                    "[year]-[month]-[day] [hour]:[minute] UTC"
                ))
                .unwrap_or_default(),
            generated_rfc3339: generated_at
                .to_offset(time::UtcOffset::UTC)
                .format(&Rfc3339)
                .unwrap_or_default(),
            generated_at,
            subject,
            generator,
            source,
            summary: summary.finish(),
            checks: checks.len() as u64,
            policies,
            trend: trend
                .into_iter()
                .filter(|p| p.passed + p.failed > 0)
                .map(|p| TrendBar {
                    date: p.date.to_string(),
                    score: p.passed as f64 / (p.passed + p.failed) as f64 * 100.0,
                })
                .collect(),
            frameworks,
            failures,
            failures_omitted,
            evidence,
            evidence_note,
            waivers,
            attestations,
            attestation_note,
        }
    }
}

/// Control tables: every compliance key of every check, normalised to its framework (MITRE
/// keys are not frameworks); a framework's tally counts each check once however many of its
/// controls the check maps to.
fn frameworks(checks: &[CheckResult]) -> Vec<FrameworkSection> {
    struct Acc<'a> {
        tally: Tally,
        controls: BTreeMap<&'a str, (Vec<String>, Tally)>,
    }
    let mut by: BTreeMap<Framework, Acc<'_>> = BTreeMap::new();
    for c in checks {
        let mut counted: Vec<Framework> = Vec::new();
        for (key, ids) in &c.compliance {
            if Framework::is_mitre_key(key) {
                continue;
            }
            let f = Framework::from_key(key);
            let acc = by.entry(f.clone()).or_insert_with(|| Acc {
                tally: Tally::default(),
                controls: BTreeMap::new(),
            });
            if !counted.contains(&f) {
                acc.tally.add(c);
                counted.push(f);
            }
            for id in ids {
                let id = id.trim();
                if id.is_empty() {
                    continue;
                }
                let row = acc.controls.entry(id).or_default();
                let name = format!("{}/{}", c.policy_id, c.check_id);
                if !row.0.contains(&name) {
                    row.0.push(name);
                    row.1.add(c);
                }
            }
        }
    }
    by.into_iter()
        .map(|(f, acc)| {
            let mut controls: Vec<ControlRow> = acc
                .controls
                .into_iter()
                .map(|(id, (checks, tally))| ControlRow {
                    id: id.to_owned(),
                    status: if tally.failed > 0 {
                        "fail"
                    } else if tally.passed > 0 {
                        "pass"
                    } else if tally.waived > 0 {
                        "waived"
                    } else {
                        "n/a"
                    },
                    checks,
                    tally: tally.finish(),
                })
                .collect();
            controls.sort_by(|a, b| natural(&a.id, &b.id));
            FrameworkSection {
                key: f.as_str().to_owned(),
                title: f.title().to_owned(),
                tally: acc.tally.finish(),
                controls_failing: controls.iter().filter(|c| c.status == "fail").count() as u64,
                controls_passing: controls.iter().filter(|c| c.status == "pass").count() as u64,
                controls,
            }
        })
        .collect()
}

/// Failed checks, the ones failing on most hosts first, then the most severe, then by id; at
/// most [`MAX_FAILURES`], with the number left out.
fn failures(checks: &[CheckResult]) -> (Vec<FailureRow>, usize) {
    let mut failing: Vec<&CheckResult> = checks.iter().filter(|c| c.failed > 0).collect();
    failing.sort_by(|a, b| {
        b.failed
            .cmp(&a.failed)
            .then_with(|| severity_rank(b.severity).cmp(&severity_rank(a.severity)))
            .then_with(|| a.policy_id.cmp(&b.policy_id))
            .then_with(|| natural(&a.check_id, &b.check_id))
    });
    let omitted = failing.len().saturating_sub(MAX_FAILURES);
    let rows = failing
        .into_iter()
        .take(MAX_FAILURES)
        .map(|c| FailureRow {
            policy_id: c.policy_id.clone(),
            check_id: c.check_id.clone(),
            title: c.title.clone(),
            severity: c.severity.as_str(),
            hosts_failing: c.failed,
            hosts_judged: c.passed + c.failed,
            rationale: c.rationale.trim().to_owned(),
            remediation: c.remediation.trim().to_owned(),
            controls: c
                .compliance
                .iter()
                .filter(|(k, _)| !Framework::is_mitre_key(k))
                .map(|(k, ids)| format!("{}: {}", Framework::from_key(k).title(), ids.join(", ")))
                .collect::<Vec<_>>()
                .join("; "),
        })
        .collect();
    (rows, omitted)
}

fn severity_rank(s: Severity) -> u8 {
    match s {
        Severity::Unknown => 0,
        Severity::Info => 1,
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

/// An excerpt bounded to the page: at most [`MAX_EVIDENCE_LINES`] lines, each cut at
/// [`MAX_LINE_CHARS`] and wrapped at [`WRAP_AT`] (a mono line does not break by itself).
fn evidence_block(e: EvidenceSample, title: String) -> EvidenceBlock {
    let total = e.lines.len();
    let mut lines = Vec::new();
    for line in e.lines.into_iter().take(MAX_EVIDENCE_LINES) {
        let line: String = line
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let mut cut: String = line.chars().take(MAX_LINE_CHARS).collect();
        if line.chars().count() > MAX_LINE_CHARS {
            cut.push('…');
        }
        let chars: Vec<char> = cut.chars().collect();
        for (i, part) in chars.chunks(WRAP_AT).enumerate() {
            let part: String = part.iter().collect();
            lines.push(if i == 0 { part } else { format!("  {part}") });
        }
        if chars.is_empty() {
            lines.push(String::new());
        }
    }
    EvidenceBlock {
        policy_id: e.policy_id,
        check_id: e.check_id,
        title,
        host: e.host,
        status: e.status,
        reason: e.reason.unwrap_or_default(),
        lines,
        lines_omitted: total.saturating_sub(MAX_EVIDENCE_LINES),
    }
}

/// Orders ids the way a reader expects: `1.1.2` before `1.1.10`, `2.2` before `10.1`.
pub fn natural(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a, b);
    while !x.is_empty() && !y.is_empty() {
        let (px, rx) = run(x);
        let (py, ry) = run(y);
        let numeric = px.starts_with(|c: char| c.is_ascii_digit())
            && py.starts_with(|c: char| c.is_ascii_digit());
        let ord = if numeric {
            let (tx, ty) = (px.trim_start_matches('0'), py.trim_start_matches('0'));
            tx.len().cmp(&ty.len()).then_with(|| tx.cmp(ty))
        } else {
            px.cmp(py)
        };
        if ord != Ordering::Equal {
            return ord;
        }
        (x, y) = (rx, ry);
    }
    x.len().cmp(&y.len()).then_with(|| a.cmp(b))
}

/// The leading run of digits or of non-digits, and the rest.
fn run(s: &str) -> (&str, &str) {
    let digits = s.starts_with(|c: char| c.is_ascii_digit());
    let end = s
        .find(|c: char| c.is_ascii_digit() != digits)
        .unwrap_or(s.len());
    s.split_at(end)
}
