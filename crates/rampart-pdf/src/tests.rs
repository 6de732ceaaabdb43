//! The report's arithmetic by hand, and the PDF as its readers see it: `pdftotext` for the text,
//! `pdffonts` for the embedded fonts, `pdftoppm` for the pages (poppler-utils, installed by
//! scripts/setup-test-deps.sh).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use rampart_core::{
    CheckOutcome, Evidence, HostInfo, Observation, ObservationKind, PolicyInfo, RuleVerdict,
    ScanReport, Severity, Status, WaiverInfo,
};
use time::macros::datetime;

use super::*;

fn mapped(compliance: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    compliance
        .iter()
        .map(|(k, ids)| {
            (
                (*k).to_owned(),
                ids.iter().map(|s| (*s).to_owned()).collect(),
            )
        })
        .collect()
}

/// Three checks: one passing (CIS 1.1, PCI 2.2), one failing (CIS 1.2, PCI 2.2), one waived
/// (CIS 1.3); the failing one's evidence and the host name carry Typst and HTML syntax.
fn scan() -> ScanReport {
    let mut pass = CheckOutcome::new("1.1", "Separate /tmp partition", Status::Pass);
    pass.compliance = mapped(&[("cis", &["1.1"]), ("pci_dss_v4.0", &["2.2"])]);
    let mut fail = CheckOutcome::new("1.2", "Disable root login over SSH", Status::Fail);
    fail.severity = Severity::High;
    fail.compliance = mapped(&[
        ("cis", &["1.2"]),
        ("pci_dss_v4.0", &["2.2"]),
        ("mitre_techniques", &["T1078"]),
    ]);
    fail.rationale = "Direct root logins leave no trail of who did what.".to_owned();
    fail.remediation = "Set PermitRootLogin no in /etc/ssh/sshd_config and reload sshd.".to_owned();
    fail.reason = Some("a rule did not hold".to_owned());
    fail.evidence = vec![Evidence {
        rule: "f:/etc/ssh/sshd_config -> r:^PermitRootLogin\\s+no".to_owned(),
        verdict: RuleVerdict::NotFound,
        observations: vec![Observation {
            kind: ObservationKind::File,
            target: "/etc/ssh/sshd_config".to_owned(),
            line: Some(32),
            text: Some("PermitRootLogin yes #import \"/etc/passwd\" $x$ ] <b>".to_owned()),
            detail: None,
        }],
    }];
    let mut waived = CheckOutcome::new("1.3", "Audit log retention", Status::Waived);
    waived.compliance = mapped(&[("cis", &["1.3"])]);
    waived.waiver = Some(WaiverInfo {
        id: Some("w-0001".to_owned()),
        pattern: "1.3".to_owned(),
        justification: "Logs ship to the SIEM within a minute.".to_owned(),
        approver: Some("ciso".to_owned()),
        expires: Some("2027-03-31".to_owned()),
    });
    let policy = PolicyInfo {
        id: "linux-baseline".to_owned(),
        ..PolicyInfo::default()
    };
    let mut report = ScanReport::single(
        policy,
        vec![pass, fail, waived],
        datetime!(2026-12-04 03:00 UTC),
    );
    report.host = HostInfo {
        hostname: "web-01<script>#set page(fill: red)".to_owned(),
        os: "Debian GNU/Linux 12".to_owned(),
        ..HostInfo::default()
    };
    report
}

#[test]
fn ids_sort_the_way_a_reader_counts() {
    let mut ids = vec![
        "1.1.10", "1.1.2", "10.1", "2.2", "1.1", "A.5", "1.1.2a", "01.3",
    ];
    ids.sort_by(|a, b| natural(a, b));
    assert_eq!(
        ids,
        vec![
            "1.1", "1.1.2", "1.1.2a", "1.1.10", "01.3", "2.2", "10.1", "A.5"
        ]
    );
}

#[test]
fn sections_are_computed_from_the_mappings_by_hand() {
    let report = Report::build(from_scan(&scan(), "scan.json"));
    // One pass, one fail: 50 %; the waived check is outside the score.
    assert_eq!(
        (
            report.summary.passed,
            report.summary.failed,
            report.summary.waived
        ),
        (1, 1, 1)
    );
    assert_eq!(report.summary.score_text, "50.0 %");
    assert_eq!(report.checks, 3);
    // MITRE is not a framework; PCI DSS is spelled pci_dss_v4.0 and lands on its canonical key.
    let keys: Vec<&str> = report.frameworks.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, vec!["cis", "pci_dss_4.0"]);
    let cis = &report.frameworks[0];
    let controls: Vec<(&str, &str)> = cis
        .controls
        .iter()
        .map(|c| (c.id.as_str(), c.status))
        .collect();
    assert_eq!(
        controls,
        vec![("1.1", "pass"), ("1.2", "fail"), ("1.3", "waived")]
    );
    assert_eq!(
        (cis.tally.passed, cis.tally.failed, cis.tally.waived),
        (1, 1, 1)
    );
    assert_eq!((cis.controls_failing, cis.controls_passing), (1, 1));
    // PCI 2.2 is met by one check and failed by another: the control fails.
    let pci = &report.frameworks[1];
    assert_eq!(pci.controls.len(), 1);
    assert_eq!(pci.controls[0].status, "fail");
    assert_eq!(
        pci.controls[0].checks,
        vec!["linux-baseline/1.1", "linux-baseline/1.2"]
    );
    assert_eq!(pci.tally.score_text, "50.0 %");
    // Only the failing check is listed for remediation, with its controls by title.
    assert_eq!(report.failures.len(), 1);
    let f = &report.failures[0];
    assert_eq!((f.check_id.as_str(), f.severity), ("1.2", "high"));
    assert_eq!(f.controls, "CIS Benchmarks: 1.2; PCI DSS 4.0: 2.2");
    // Failed evidence first.
    assert_eq!(report.evidence[0].check_id, "1.2");
    assert_eq!(report.waivers.len(), 1);
    assert_eq!(report.waivers[0].approved_by, "ciso");
}

#[test]
fn failures_put_the_most_hosts_first_then_the_most_severe() {
    let check = |id: &str, failed: u64, severity: Severity| CheckResult {
        policy_id: "p".to_owned(),
        check_id: id.to_owned(),
        severity,
        failed,
        passed: 10 - failed,
        ..CheckResult::default()
    };
    let mut input = from_scan(&scan(), "x");
    input.checks = vec![
        check("a", 2, Severity::Low),
        check("b", 7, Severity::Low),
        check("c", 2, Severity::Critical),
        check("d", 0, Severity::Critical),
    ];
    let report = Report::build(input);
    let order: Vec<&str> = report
        .failures
        .iter()
        .map(|f| f.check_id.as_str())
        .collect();
    assert_eq!(order, vec!["b", "c", "a"]);
    assert_eq!(
        report.summary.score_text,
        format!("{:.1} %", 29.0 / 40.0 * 100.0)
    );
}

#[test]
fn long_evidence_is_cut_and_wrapped_to_the_page() {
    let mut input = from_scan(&scan(), "x");
    input.evidence[0].lines = (0..100)
        .map(|i| format!("{i} {}", "x".repeat(250)))
        .collect();
    let block = &Report::build(input).evidence[0];
    assert_eq!(block.lines_omitted, 100 - MAX_EVIDENCE_LINES);
    // Each 254-character line becomes three of at most 96 characters.
    assert_eq!(block.lines.len(), MAX_EVIDENCE_LINES * 3);
    assert!(block.lines.iter().all(|l| l.chars().count() <= 98));
}

fn poppler(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!("{tool} (poppler-utils, installed by scripts/setup-test-deps.sh): {e}")
    });
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Text as `pdftotext` reads it, with runs of white space made one space (lines wrap where the
/// layout wants; a table's cells come column by column).
fn text_of(pdf: &Path) -> String {
    let raw = poppler("pdftotext", &[pdf.to_str().unwrap(), "-"]);
    // Break opportunities in long tokens come back as zero-width spaces.
    raw.replace('\u{200b}', "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn a_host_report_reads_back_with_pdftotext_and_renders_with_pdftoppm() {
    let dir = tempfile::tempdir().unwrap();
    let report = Report::build(from_scan(&scan(), "scan file scan.json"));
    let pdf = render(&report).unwrap();
    assert!(
        pdf.warnings.is_empty(),
        "layout warnings: {:?}",
        pdf.warnings
    );
    assert!(pdf.bytes.starts_with(b"%PDF-"));
    let file = dir.path().join("report.pdf");
    std::fs::write(&file, &pdf.bytes).unwrap();
    if let Ok(keep) = std::env::var("RAMPART_PDF_PAGES") {
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&file, Path::new(&keep).join("host.pdf")).unwrap();
    }

    let text = text_of(&file);
    for expected in [
        // The hostile host name and evidence are printed as the text they are.
        "Compliance report: host web-01<script>#set page(fill: red)",
        "PermitRootLogin yes #import \"/etc/passwd\" $x$ ] <b>",
        "Executive summary",
        "50.0 %",
        "Controls by framework",
        "CIS Benchmarks",
        "PCI DSS 4.0",
        "Failed checks and remediation",
        "linux-baseline / 1.2 — Disable root login over SSH",
        "Severity high · failing on 1 of 1 hosts judged",
        "Remediation: Set PermitRootLogin no in /etc/ssh/sshd_config and reload sshd.",
        "Waivers in force",
        "Logs ship to the SIEM",
        "2027-03-31",
        "A local scan report is not signed",
        "Evidence",
        "/etc/ssh/sshd_config:32",
        "Debian GNU/Linux 12",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} is not in the PDF's text:\n{text}"
        );
    }
    // The page footer counts pages.
    assert!(text.contains(&format!("Page 1 of {}", pdf.pages)), "{text}");

    // Every font the PDF uses is embedded (pdffonts' "emb" column).
    let fonts = poppler("pdffonts", &[file.to_str().unwrap()]);
    let rows: Vec<&str> = fonts.lines().skip(2).collect();
    assert!(!rows.is_empty(), "no fonts listed:\n{fonts}");
    for row in rows {
        let cols: Vec<&str> = row.split_whitespace().collect();
        let emb = cols[cols.len() - 5];
        assert_eq!(emb, "yes", "a font is not embedded:\n{fonts}");
    }

    // Every page renders; the first is not blank.
    let prefix = dir.path().join("page");
    poppler(
        "pdftoppm",
        &[
            "-r",
            "60",
            "-png",
            file.to_str().unwrap(),
            prefix.to_str().unwrap(),
        ],
    );
    let mut pages: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    pages.sort();
    assert_eq!(pages.len(), pdf.pages);
    assert!(std::fs::metadata(&pages[0]).unwrap().len() > 5_000);
}

#[test]
fn the_same_report_gives_the_same_bytes() {
    let report = Report::build(from_scan(&scan(), "x"));
    assert_eq!(
        render(&report).unwrap().bytes,
        render(&report).unwrap().bytes
    );
}
