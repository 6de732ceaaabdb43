//! Real Wazuh policies from `../shared/fixtures/sca`, evaluated on this machine.

use super::harness::*;
use rampart_core::Status;
use rampart_policy::{LoadOptions, load_file};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/sca")
        .join(name)
}

fn assert_no_errors(r: &rampart_core::PolicyReport) {
    let errors: Vec<_> = r
        .checks
        .iter()
        .filter(|c| c.status == Status::Error)
        .map(|c| &c.id)
        .collect();
    assert!(errors.is_empty(), "checks in error: {errors:?}");
}

fn evaluate(name: &str) -> rampart_core::PolicyReport {
    let p = load_file(&fixture(name), LoadOptions::default()).expect("loads");
    scan_with(&p, options(Path::new("/"))).0
}

#[test]
fn cis_debian12_evaluates_without_errors() {
    let r = evaluate("cis_debian12.yml");
    let is_debian12 =
        std::fs::read_to_string("/etc/debian_version").is_ok_and(|v| v.starts_with("12."));
    let req = r
        .requirements
        .as_ref()
        .expect("the policy has requirements");
    if !is_debian12 {
        assert!(!req.satisfied, "requirements must fail off Debian 12");
        eprintln!("cis_debian12: host is not Debian 12; only the requirements gate was checked");
        return;
    }
    assert!(req.satisfied, "requirements: {:?}", req.reason);
    assert_eq!(r.checks.len(), 207);
    assert_no_errors(&r);
    assert_eq!(
        r.summary.passed + r.summary.failed + r.summary.not_applicable,
        207
    );
    // Known stock defects evaluate as Wazuh evaluates them: `(d+)` never matches, so the numeric
    // rule is not found.
    let c = r.checks.iter().find(|c| c.id == "33188").expect("33188");
    assert!(
        c.rules.iter().any(|rule| rule.contains("(d+)")),
        "fixture changed: {:?}",
        c.rules
    );
}

#[test]
fn parallel_and_sequential_scans_agree() {
    let p = load_file(&fixture("cis_debian12.yml"), LoadOptions::default()).expect("loads");
    let statuses = |jobs: usize| -> Vec<(String, Status, Option<String>)> {
        let opts = rampart_engine::ScanOptions {
            jobs,
            ..options(Path::new("/"))
        };
        let (r, _) = scan_with(&p, opts);
        r.checks
            .into_iter()
            .map(|c| (c.id, c.status, c.reason))
            .collect()
    };
    assert_eq!(statuses(1), statuses(16));
}

#[test]
fn sca_unix_audit_evaluates_without_errors() {
    let r = evaluate("sca_unix_audit.yml");
    assert!(r.requirements.as_ref().is_none_or(|q| q.satisfied));
    assert!(!r.checks.is_empty());
    assert_no_errors(&r);
}

#[test]
fn cis_debian12_under_root_needs_chroot_for_commands() {
    // A fixture tree that satisfies the Debian 12 requirements: file rules are evaluated in the
    // tree, command rules are not applicable with a reason.
    let t = Tree::new();
    t.file("/etc/debian_version", "12.11\n")
        .file("/proc/sys/kernel/ostype", "Linux\n")
        .file("/etc/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION=\"12 (bookworm)\"\nID=debian\n")
        .file("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n");
    let p = load_file(&fixture("cis_debian12.yml"), LoadOptions::default()).expect("loads");
    let r = scan_root(&p, t.path());
    assert!(r.requirements.as_ref().is_some_and(|q| q.satisfied));
    let cmd_only = r.checks.iter().find(|c| c.id == "33010").expect("33010");
    assert_eq!(cmd_only.status, Status::NotApplicable);
    assert!(
        cmd_only
            .reason
            .as_deref()
            .is_some_and(|w| w.contains("--chroot-commands"))
    );
    // 33300: `not f:/etc/passwd -> r:^\w+:x:` is evaluated inside the tree.
    let c = r.checks.iter().find(|c| c.id == "33300").expect("33300");
    assert_eq!(c.status, Status::Fail);
    assert!(r.checks.iter().all(|c| c.status != Status::Error));
}
