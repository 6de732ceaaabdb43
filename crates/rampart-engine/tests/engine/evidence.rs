//! What a report shows a reader about *why*: the evidence behind verdicts.

use super::harness::*;
use rampart_core::{Observation, PolicyReport, Status};

fn observations<'a>(report: &'a PolicyReport, id: &str) -> Vec<&'a Observation> {
    report
        .checks
        .iter()
        .find(|c| c.id == id)
        .expect("check")
        .evidence
        .iter()
        .flat_map(|e| &e.observations)
        .collect()
}

#[test]
fn a_value_out_of_range_is_shown_on_its_line() {
    let t = Tree::new();
    t.file(
        "/etc/login.defs",
        "# PASS_MAX_DAYS 30 in a comment\nPASS_MAX_DAYS\t99999\nPASS_MIN_DAYS 0\n",
    );
    let p = load(&sca4(&[
        // Fails only by its value: the line that holds the setting is the evidence.
        (
            1,
            "all",
            &[r"f:/etc/login.defs -> n:^PASS_MAX_DAYS\s*\t*(\d+) compare <= 365"],
        ),
        // Fails because another part does not hold on that line: no line to point at.
        (
            2,
            "all",
            &[r"f:/etc/login.defs -> n:^PASS_MAX_DAYS\s*\t*(\d+) compare <= 365 && r:never"],
        ),
        // In range: passes, with the matching line.
        (
            3,
            "all",
            &[r"f:/etc/login.defs -> n:^PASS_MIN_DAYS\s+(\d+) compare <= 7"],
        ),
    ]));
    let r = scan_root(&p, t.path());

    assert_eq!(status(&r, "1"), Status::Fail);
    let o = observations(&r, "1");
    assert_eq!(o.len(), 1, "{o:?}");
    assert_eq!(o[0].target, "/etc/login.defs");
    assert_eq!(o[0].line, Some(2));
    assert_eq!(o[0].text.as_deref(), Some("PASS_MAX_DAYS\t99999"));
    assert_eq!(
        o[0].detail.as_deref(),
        Some("value 99999 is not <= 365 (no line of 3 matches)")
    );

    assert_eq!(status(&r, "2"), Status::Fail);
    let o = observations(&r, "2");
    assert_eq!((o[0].line, o[0].text.as_deref()), (None, None), "{o:?}");
    assert_eq!(o[0].detail.as_deref(), Some("no line of 3 matches"));

    assert_eq!(status(&r, "3"), Status::Pass);
    let o = observations(&r, "3");
    assert_eq!(o[0].line, Some(3));
    assert_eq!(o[0].detail.as_deref(), Some("line matches"));
}

#[test]
fn a_command_value_out_of_range_is_shown_on_its_output_line() {
    let p = load(&sca4(&[(
        1,
        "all",
        &[
            r#"c:sh -c "echo port 22; echo maxauthtries 10" -> n:^maxauthtries\s+(\d+) compare <= 4"#,
        ],
    )]));
    let (r, _) = scan_with(&p, options(std::path::Path::new("/")));
    assert_eq!(status(&r, "1"), Status::Fail);
    let o = observations(&r, "1");
    assert_eq!(o.len(), 1, "{o:?}");
    assert_eq!(o[0].line, Some(2));
    assert_eq!(o[0].text.as_deref(), Some("maxauthtries 10"));
    assert_eq!(
        o[0].detail.as_deref(),
        Some("exit status 0; value 10 is not <= 4 (no line matches)")
    );
}

#[test]
fn package_evidence_names_the_package() {
    let t = Tree::new();
    t.file(
        "/var/lib/dpkg/status",
        "Package: sudo\nStatus: install ok installed\n\nPackage: telnet\nStatus: deinstall ok config-files\n\n",
    );
    let p = load(
        "rampart: 1\npolicy:\n  id: pk\n  name: P\n  description: d\nchecks:\n  \
         - id: P1\n    title: packages\n    severity: low\n    condition: any\n    rules:\n      \
         - {package: telnet}\n      - {package: libpam-pwquality}\n      - {package: sudo}\n",
    );
    let r = scan_root(&p, t.path());
    let details: Vec<_> = observations(&r, "P1")
        .iter()
        .map(|o| (o.target.as_str(), o.detail.as_deref().unwrap_or_default()))
        .collect();
    assert_eq!(
        details,
        [
            ("/var/lib/dpkg/status", "telnet is not installed"),
            (
                "/var/lib/dpkg/status",
                "libpam-pwquality is not installed (not in the database)"
            ),
            ("/var/lib/dpkg/status", "sudo is installed"),
        ]
    );
}
