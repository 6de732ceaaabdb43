//! A whole scan as one [`ScanReport`]: what `rampart scan` prints and what agents post.

use rampart_core::ScanReport;
use rampart_policy::ir::Policy;
use time::OffsetDateTime;

use crate::{Progress, ScanContext};

/// Scans `policies` and wraps the results with host, times, warnings and the results digest.
/// Policies whose requirements are not met are reported with a warning each.
pub fn scan_report(
    ctx: &ScanContext,
    policies: &[Policy],
    progress: Progress<'_>,
    scan_id: String,
) -> ScanReport {
    let started_at = OffsetDateTime::now_utc();
    let reports = crate::scan(ctx, policies, progress);
    let finished_at = OffsetDateTime::now_utc();
    let mut report = ScanReport {
        schema_version: rampart_core::report::REPORT_SCHEMA_VERSION,
        generator: format!("rampart {}", env!("CARGO_PKG_VERSION")),
        scan_id,
        host: crate::host::host_info(ctx),
        started_at,
        finished_at,
        policies: reports,
        warnings: Vec::new(),
        results_digest: String::new(),
    };
    for p in &report.policies {
        if let Some(req) = &p.requirements
            && !req.satisfied
        {
            report.warnings.push(format!(
                "policy {}: requirements not met ({}): {}",
                p.policy.id,
                req.title,
                req.reason.as_deref().unwrap_or("")
            ));
        }
    }
    report.refresh();
    report
}
