//! Rampart's JSON report: the [`ScanReport`] model, pretty-printed.

use crate::ReportError;
use rampart_core::ScanReport;

/// Renders the report as JSON.
pub fn render(report: &ScanReport) -> Result<Vec<u8>, ReportError> {
    let mut out =
        serde_json::to_vec_pretty(report).map_err(|e| ReportError::Render(e.to_string()))?;
    out.push(b'\n');
    Ok(out)
}

/// Reads a JSON report back (for `rampart report` conversions and tests).
pub fn parse(bytes: &[u8]) -> Result<ScanReport, ReportError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ReportError::Render(format!("not a Rampart JSON report: {e}")))
}
