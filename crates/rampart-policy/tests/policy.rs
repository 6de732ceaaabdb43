//! Integration tests of policy loading, linting and waivers (one test binary).

// Test code: panicking on a broken fixture is the right failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use rampart_core::{CheckOutcome, PolicyInfo, ScanReport, Severity, Status};
use rampart_policy::{Level, LoadOptions, PolicyError, Waivers, lint::lint, load_bytes, load_file};
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/sca")
}

fn load_str(yaml: &str) -> Result<rampart_policy::Policy, PolicyError> {
    load_bytes(yaml.as_bytes(), "p.yml", LoadOptions::default())
}

fn first_error(yaml: &str) -> String {
    match load_str(yaml) {
        Ok(_) => panic!("expected an error for:\n{yaml}"),
        Err(e) => e.to_string().lines().next().unwrap_or_default().to_string(),
    }
}

#[test]
fn all_shared_sca_fixtures_load() {
    let dir = fixtures();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures dir")
        .chain(std::fs::read_dir(dir.join("v5")).expect("v5 dir"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 7,
        "expected the shared SCA fixtures, found {files:?}"
    );
    for f in files {
        let p = load_file(&f, LoadOptions::default())
            .unwrap_or_else(|e| panic!("{} failed to load:\n{e}", f.display()));
        assert!(!p.checks.is_empty(), "{} has no checks", f.display());
        let v5 = f.parent().is_some_and(|d| d.ends_with("v5"));
        assert_eq!(
            p.format.as_str(),
            if v5 { "wazuh-sca-5" } else { "wazuh-sca-4" },
            "{}",
            f.display()
        );
    }
}

#[test]
fn stock_policy_counts_match_the_reference() {
    let p = load_file(&fixtures().join("cis_debian12.yml"), LoadOptions::default()).expect("loads");
    assert_eq!(p.checks.len(), 207);
    let rules: usize = p.checks.iter().map(|c| c.rules.len()).sum();
    assert_eq!(rules, 407);
    let win = load_file(
        &fixtures().join("cis_win11_enterprise.yml"),
        LoadOptions::default(),
    )
    .expect("loads");
    assert_eq!(win.checks.len(), 482);
}

#[test]
fn lint_reports_known_stock_defects_with_check_and_line() {
    let p = load_file(&fixtures().join("cis_debian12.yml"), LoadOptions::default()).expect("loads");
    let diags = lint(&p);
    assert!(diags.iter().all(|d| d.level == Level::Warning));
    let has = |code: &str, check: &str| {
        diags
            .iter()
            .any(|d| d.code == code && d.check.as_deref() == Some(check) && d.location.line > 0)
    };
    // `(d+)` instead of `(\d+)`: 33188 and 33193-33199.
    for id in [
        "33188", "33193", "33194", "33195", "33196", "33197", "33198", "33199",
    ] {
        assert!(has("sca-d-plus", id), "no (d+) warning for {id}");
    }
    // A literal minterm missing `r:`: 33267-33270.
    for id in ["33267", "33268", "33269", "33270"] {
        assert!(
            has("sca-literal-minterm", id),
            "no literal-minterm warning for {id}"
        );
    }
    // `d:` with a glob, a filter that is a content pattern, `| r:` as OR.
    assert!(diags.iter().any(|d| d.code == "sca-dir-glob"));
    assert!(has("sca-filter-is-pattern", "33179"));
    assert!(has("sca-or-prefix", "33217"));
    // Non-canonical compare operators.
    assert!(diags.iter().any(|d| d.code == "sca-compare-operator"));
    // The location is the rule's own line: 33267's literal minterm sits on its rule line.
    let d = diags
        .iter()
        .find(|d| d.code == "sca-literal-minterm" && d.check.as_deref() == Some("33267"))
        .expect("33267");
    let line = std::fs::read_to_string(fixtures().join("cis_debian12.yml"))
        .expect("read")
        .lines()
        .nth(d.location.line as usize - 1)
        .unwrap_or_default()
        .to_string();
    assert!(
        line.contains("auid!=unset"),
        "line {} is {line:?}",
        d.location.line
    );
}

#[test]
fn native_baseline_is_lint_clean() {
    let p = rampart_policy::builtin::linux_baseline().expect("baseline compiles");
    assert!(
        p.checks.len() >= 80,
        "baseline has {} checks",
        p.checks.len()
    );
    assert!(lint(&p).is_empty(), "{:?}", lint(&p));
    for c in &p.checks {
        assert_ne!(c.severity, Severity::Unknown, "{} has no severity", c.id);
        let keys: Vec<&str> = c.compliance.keys().map(String::as_str).collect();
        assert!(
            keys.contains(&"nist_800_53"),
            "{} lacks a NIST 800-53 mapping",
            c.id
        );
        assert!(keys.contains(&"soc_2"), "{} lacks a SOC 2 mapping", c.id);
    }
    let mapped = |k: &str| {
        p.checks
            .iter()
            .filter(|c| c.compliance.contains_key(k))
            .count()
    };
    assert!(
        mapped("cis") >= 80 && mapped("pci_dss_4.0") >= 80,
        "cis {} pci {}",
        mapped("cis"),
        mapped("pci_dss_4.0")
    );
}

#[test]
fn broken_yaml_points_at_line_and_column() {
    let msg = first_error("policy:\n  id: x\n  name: [unclosed\nchecks: []\n");
    assert!(msg.starts_with("p.yml:"), "{msg}");
    let pos: Vec<&str> = msg.split(':').collect();
    assert!(pos[1].parse::<u32>().is_ok_and(|l| l >= 3), "{msg}");
}

#[test]
fn sca_errors_name_the_check_and_place() {
    let base = "policy:\n  id: t\n  file: t.yml\n  name: T\n  description: d\nchecks:\n";
    let unknown_type = format!(
        "{base}  - id: 1\n    title: a\n    condition: all\n    rules:\n      - 'x:/etc/passwd'\n"
    );
    let msg = first_error(&unknown_type);
    assert!(
        msg.contains("p.yml:11:") && msg.contains("check 1") && msg.contains("invalid rule format"),
        "{msg}"
    );

    let bad_kind = format!(
        "{base}  - id: 1\n    title: a\n    condition: all\n    rules:\n      - 'file:/etc/passwd'\n"
    );
    assert!(first_error(&bad_kind).contains("unknown rule type 'file:'"));

    let dup = format!(
        "{base}  - id: 7\n    title: a\n    condition: all\n    rules: ['f:/a']\n  - id: 7\n    title: b\n    condition: all\n    rules: ['f:/b']\n"
    );
    let msg = first_error(&dup);
    assert!(
        msg.contains("duplicate check id 7") && msg.contains("p.yml:11:"),
        "{msg}"
    );

    let cond = format!("{base}  - id: 1\n    title: a\n    condition: most\n    rules: ['f:/a']\n");
    assert!(first_error(&cond).contains("invalid condition"));

    let id = format!("{base}  - id: abc\n    title: a\n    condition: all\n    rules: ['f:/a']\n");
    assert!(first_error(&id).contains("invalid check id"));

    let no_rules = format!("{base}  - id: 1\n    title: a\n    condition: all\n    rules: []\n");
    assert!(first_error(&no_rules).contains("no rules found"));

    let many: String = (0..256).map(|i| format!("'f:/a{i}',")).collect();
    let too_many = format!(
        "{base}  - id: 1\n    title: a\n    condition: all\n    rules: [{}]\n",
        many.trim_end_matches(',')
    );
    assert!(first_error(&too_many).contains("maximum is 255"));

    assert!(first_error("checks: []\n").contains("'policy' not found"));
    let var = base.replace("checks:\n", "variables:\n  nodollar: x\nchecks:\n  - id: 1\n    title: a\n    condition: all\n    rules: ['f:/a']\n");
    assert!(first_error(&var).contains("must start with '$'"));
}

#[test]
fn unreadable_and_non_utf8_files_are_errors() {
    let e = load_file(
        std::path::Path::new("/nonexistent/policy.yml"),
        LoadOptions::default(),
    )
    .expect_err("missing");
    assert!(
        e.to_string()
            .contains("/nonexistent/policy.yml: cannot read policy"),
        "{e}"
    );
    let e =
        load_bytes(b"policy:\n  id: \xff\n", "bin.yml", LoadOptions::default()).expect_err("utf8");
    assert!(e.to_string().starts_with("bin.yml:2:"), "{e}");
}

const NATIVE: &str = r#"rampart: 1
policy:
  id: demo
  name: Demo
checks:
  - id: DEMO-1
    title: t
    severity: high
    compliance: {nist_800_53: [AC-6]}
    rules:
      - {file: /etc/passwd, match: '^root:'}
"#;

#[test]
fn native_policies_load_and_errors_are_located() {
    let p = load_str(NATIVE).expect("native loads");
    assert_eq!(p.format.as_str(), "rampart");
    assert_eq!(p.checks[0].rules.len(), 1);

    let bad_re = NATIVE.replace("'^root:'", "'^(root'");
    let msg = first_error(&bad_re);
    assert!(
        msg.starts_with("p.yml:11:")
            && msg.contains("check DEMO-1")
            && msg.contains("invalid regex"),
        "{msg}"
    );

    let fw = NATIVE.replace("nist_800_53", "nist_800_35");
    assert!(first_error(&fw).contains("unknown compliance framework 'nist_800_35'"));

    let sev = NATIVE.replace("severity: high", "severity: urgent");
    assert!(first_error(&sev).contains("unknown severity 'urgent'"));

    let two = NATIVE.replace("{file: /etc/passwd,", "{file: /etc/passwd, command: [ls],");
    assert!(first_error(&two).contains("exactly one probe key"));

    let wrong = NATIVE.replace("match: '^root:'", "mode: \"0644\"");
    assert!(first_error(&wrong).contains("'mode' cannot be used with 'file'"));

    let unknown_key = NATIVE.replace("severity: high", "severity: high\n    colour: red");
    assert!(first_error(&unknown_key).contains("colour"));

    let dup = format!(
        "{NATIVE}  - id: DEMO-1\n    title: again\n    severity: low\n    rules: [{{file: /etc/x}}]\n"
    );
    assert!(first_error(&dup).contains("duplicate check id"));

    let empty = "rampart: 1\npolicy: {id: e, name: E}\nchecks: []\n";
    assert!(first_error(empty).contains("at least one check"));

    let cmp = NATIVE.replace("match: '^root:'", "match: '^x(\\d+)', compare: '=< 4'");
    assert!(first_error(&cmp).contains("compare"));
}

#[test]
fn schema_describes_the_native_format() {
    let s = rampart_policy::native::schema();
    let text = s.to_string();
    assert!(text.contains("\"rampart\""));
    assert!(text.contains("applies_if"));
    assert!(text.contains("no_match"));
}

fn report(statuses: &[(&str, Status)]) -> ScanReport {
    let checks = statuses
        .iter()
        .map(|(id, st)| CheckOutcome::new(*id, format!("check {id}"), *st))
        .collect();
    let policy = PolicyInfo {
        id: "cis_debian12".into(),
        ..Default::default()
    };
    ScanReport::single(policy, checks, time::OffsetDateTime::UNIX_EPOCH)
}

#[test]
fn waivers_apply_by_id_and_glob_and_expire() {
    let w = Waivers::parse(
        "waivers:\n  - check: '33010'\n    justification: tmpfs managed by systemd\n    approver: CISO\n    expires: 2030-01-31\n  - check: '331*'\n    policy: cis_debian12\n    justification: legacy hosts\n  - check: '332*'\n    justification: expired one\n    expires: 2020-01-01\n  - check: '333*'\n    policy: other_policy\n    justification: not this policy\n",
        "w.yml",
    )
    .expect("parses");
    let mut r = report(&[
        ("33010", Status::Fail),
        ("33101", Status::NotApplicable),
        ("33102", Status::Pass),
        ("33201", Status::Fail),
        ("33301", Status::Fail),
    ]);
    let before = r.results_digest.clone();
    let today = time::macros::date!(2026 - 11 - 23);
    let warnings = w.apply(&mut r, today);
    let st = |id: &str| {
        r.policies[0]
            .checks
            .iter()
            .find(|c| c.id == id)
            .expect("check")
            .status
    };
    assert_eq!(st("33010"), Status::Waived);
    assert_eq!(st("33101"), Status::Waived);
    assert_eq!(st("33102"), Status::Pass, "passing checks stay passing");
    assert_eq!(st("33201"), Status::Fail, "expired waivers are ignored");
    assert_eq!(st("33301"), Status::Fail, "waiver for another policy");
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].contains("expired on 2020-01-01"),
        "{warnings:?}"
    );
    let c = &r.policies[0].checks[0];
    assert_eq!(c.original_status, Some(Status::Fail));
    assert_eq!(
        c.waiver.as_ref().map(|w| w.justification.as_str()),
        Some("tmpfs managed by systemd")
    );
    // Waived checks leave the score: 1 pass, 2 fail.
    assert_eq!(r.policies[0].summary.waived, 2);
    assert!((r.policies[0].summary.score - 100.0 / 3.0).abs() < 1e-9);
    assert_ne!(r.results_digest, before, "the digest covers waivers");
}

#[test]
fn malformed_waivers_are_errors() {
    let cases = [
        ("waivers:\n  - check: '1'\n", "'justification' is required"),
        (
            "waivers:\n  - check: '1'\n    justification: '  '\n",
            "must not be empty",
        ),
        (
            "waivers:\n  - check: '1'\n    justification: x\n    expires: next week\n",
            "must be a date",
        ),
        (
            "waivers:\n  - check: '1'\n    justification: x\n    approved_by: me\n",
            "approved_by",
        ),
        (
            "waivers:\n  - check: '[1'\n    justification: x\n",
            "invalid glob",
        ),
        ("waivers: 3\n", "w.yml:1:"),
    ];
    for (yaml, want) in cases {
        let e = Waivers::parse(yaml, "w.yml").expect_err(yaml);
        assert!(e.to_string().contains(want), "{yaml:?} gave {e}");
        assert!(e.to_string().starts_with("w.yml:"), "{e}");
    }
}
