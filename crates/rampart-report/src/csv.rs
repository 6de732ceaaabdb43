//! CSV: one row per check, for spreadsheets and ticketing imports.

use crate::ReportError;
use crate::text::{compliance_text, evidence_text};
use rampart_core::ScanReport;

/// Column names, in order.
pub const COLUMNS: [&str; 12] = [
    "policy_id",
    "check_id",
    "title",
    "severity",
    "status",
    "reason",
    "compliance",
    "mitre",
    "remediation",
    "waiver_justification",
    "waiver_expires",
    "evidence",
];

/// Renders the report as CSV (RFC 4180 quoting).
pub fn render(report: &ScanReport) -> Result<Vec<u8>, ReportError> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let err = |e: ::csv::Error| ReportError::Render(e.to_string());
    w.write_record(COLUMNS).map_err(err)?;
    for p in &report.policies {
        for c in &p.checks {
            let waiver = c.waiver.as_ref();
            w.write_record([
                p.policy.id.as_str(),
                c.id.as_str(),
                c.title.as_str(),
                c.severity.as_str(),
                c.status.as_str(),
                c.reason.as_deref().unwrap_or(""),
                &compliance_text(c),
                &c.mitre.join(", "),
                c.remediation.as_str(),
                waiver.map_or("", |w| w.justification.as_str()),
                waiver.and_then(|w| w.expires.as_deref()).unwrap_or(""),
                evidence_text(&c.evidence).trim_end(),
            ])
            .map_err(err)?;
        }
    }
    w.into_inner()
        .map_err(|e| ReportError::Render(e.to_string()))
}
