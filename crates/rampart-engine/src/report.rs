//! A whole scan as one [`ScanReport`]: what `rampart scan` prints and what agents post.

use rampart_core::ScanReport;
use rampart_policy::ir::Policy;
use std::sync::atomic::Ordering;
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
    if let Some(w) = denied_warning(&ctx.denied_paths()) {
        report.warnings.push(w);
    }
    let commands = ctx.counters.commands_run.load(Ordering::Relaxed);
    let uid = rustix::process::geteuid();
    if commands > 0 && !uid.is_root() {
        // A command's own "permission denied" is only text in its output; the engine cannot
        // tell it from a finding, so it says how the commands were run.
        let what = if commands == 1 { "command" } else { "commands" };
        report.warnings.push(format!(
            "not run as root (uid {}): the {commands} {what} the checks ran had only that user's privileges, so checks based on them may differ from a scan as root",
            uid.as_raw()
        ));
    }
    report.refresh();
    report
}

/// How many paths listed by name in the permission warning.
const DENIED_NAMED: usize = 5;

/// The warning for paths the scan could not read: their checks are not applicable, so the
/// score of an unprivileged scan looks better than the host is, and the report must say so.
fn denied_warning(denied: &[String]) -> Option<String> {
    let (first, rest) = denied.split_at(denied.len().min(DENIED_NAMED));
    if first.is_empty() {
        return None;
    }
    let mut names = first.join(", ");
    if !rest.is_empty() {
        names.push_str(&format!(" and {} more", rest.len()));
    }
    let what = if denied.len() == 1 { "path" } else { "paths" };
    Some(format!(
        "permission denied reading {} {what} ({names}): the checks that need them are not applicable; scan with the privileges to read them (usually as root) for complete results",
        denied.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denied_warning_names_the_first_paths_and_counts_the_rest() {
        assert_eq!(denied_warning(&[]), None);
        let one = denied_warning(&["/etc/shadow".into()]).expect("warning");
        assert!(
            one.starts_with("permission denied reading 1 path (/etc/shadow): "),
            "{one}"
        );
        let many: Vec<String> = (1..=7).map(|i| format!("/p{i}")).collect();
        let w = denied_warning(&many).expect("warning");
        assert!(
            w.starts_with(
                "permission denied reading 7 paths (/p1, /p2, /p3, /p4, /p5 and 2 more): "
            ),
            "{w}"
        );
    }
}
