//! `rampart scan` and `rampart policy` from the command line.

use super::harness::*;
use std::path::Path;
use std::process::Command;

/// A policy over a fixture tree: one pass, one fail, one not applicable; mapped to frameworks.
const POLICY: &str = r#"rampart: 1
policy:
  id: cli-test
  name: CLI test policy
checks:
  - id: T-PASS
    title: passes
    severity: low
    compliance: {nist_800_53: [AC-1], soc_2: [CC6.1]}
    rules:
      - {file: /etc/app.conf, match: '^secure = yes$'}
  - id: T-FAIL
    title: fails
    severity: high
    remediation: set debug = no
    compliance: {nist_800_53: [AC-2], pci_dss_4.0: ["2.2.6"]}
    rules:
      - {file: /etc/app.conf, no_match: '^debug = yes$'}
  - id: T-NA
    title: not applicable
    severity: medium
    compliance: {cis: ["1.1"]}
    applies_if: [{file: /etc/absent.conf}]
    rules:
      - {file: /etc/absent.conf, match: x}
"#;

fn setup() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path().join("root");
    write(&root, "etc/app.conf", "secure = yes\ndebug = yes\n");
    let policy = write(dir.path(), "policy.yml", POLICY);
    (dir, root, policy)
}

#[test]
fn exit_codes_follow_results() {
    let (dir, root, policy) = setup();
    let o = rampart(&["scan", "-q", "--policy", s(&policy), "--root", s(&root)]);
    assert_eq!(code(&o), 1, "a failing check exits 1:\n{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains("FAIL") && out.contains("T-FAIL") && out.contains("fix: set debug = no"),
        "{out}"
    );
    assert!(out.contains("Score 50.0%"), "{out}");

    // Waiving the failure leaves only a pass and an N/A: exit 0.
    let waivers = write(
        dir.path(),
        "w.yml",
        "waivers:\n  - check: T-FAIL\n    justification: debug needed for the pilot\n    approver: sec team\n    expires: 2099-12-31\n",
    );
    let o = rampart(&[
        "scan",
        "-q",
        "--policy",
        s(&policy),
        "--root",
        s(&root),
        "--waivers",
        s(&waivers),
    ]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));

    // --fail-under decides alone when given.
    let o = rampart(&[
        "scan",
        "-q",
        "--policy",
        s(&policy),
        "--root",
        s(&root),
        "--fail-under",
        "40",
    ]);
    assert_eq!(code(&o), 0);
    let o = rampart(&[
        "scan",
        "-q",
        "--policy",
        s(&policy),
        "--root",
        s(&root),
        "--fail-under",
        "60",
    ]);
    assert_eq!(code(&o), 1);
}

#[test]
fn usage_and_input_errors_exit_2_with_a_place() {
    let (dir, root, policy) = setup();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["scan".into(), "--policy".into(), "/nonexistent/p.yml".into()], "/nonexistent/p.yml: cannot read policy"),
        (
            vec!["scan".into(), "--policy".into(), s(&write(dir.path(), "bad.yml", "rampart: 1\npolicy:\n  id: x\n  name: y\nchecks:\n  - id: A\n    title: t\n    severity: low\n    rules:\n      - {file: /x, match: '(('}\n")).into()],
            "bad.yml:10:9",
        ),
        (vec!["scan".into(), "--policy".into(), s(&policy).into(), "--framework".into(), "nist_800_35".into()], "unknown framework 'nist_800_35'"),
        (vec!["scan".into(), "--policy".into(), s(&policy).into(), "--waivers".into(), s(&write(dir.path(), "w.yml", "waivers:\n  - check: T-FAIL\n")).into()], "'justification' is required"),
        (vec!["scan".into(), "--policy".into(), s(&policy).into(), "--fail-under".into(), "120".into()], "--fail-under"),
        (vec!["scan".into(), "--root".into(), "/nonexistent-root".into()], "--root /nonexistent-root"),
        (vec!["scan".into(), "--format".into(), "yaml".into()], "invalid value 'yaml'"),
        (vec!["scan".into(), "--policy".into(), s(&policy).into(), "--jobs".into(), "0".into()], "--jobs: must be at least 1"),
        (vec!["scan".into(), "--policy".into(), s(&policy).into(), "--command-slots".into(), "0".into()], "--command-slots: must be at least 1"),
        (vec!["scan".into(), "--policy".into(), s(&policy).into(), "--policy".into(), s(&policy).into()], "already used"),
    ];
    for (args, want) in cases {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = rampart(&argv);
        assert_eq!(code(&o), 2, "{argv:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(want),
            "{argv:?}: expected {want:?} in:\n{}",
            stderr(&o)
        );
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }
    let _ = root;
}

#[test]
fn json_report_round_trips_and_has_evidence() {
    let (dir, root, policy) = setup();
    let out = dir.path().join("r.json");
    let o = rampart(&[
        "scan",
        "-q",
        "--policy",
        s(&policy),
        "--root",
        s(&root),
        "--format",
        "json",
        "--output",
        s(&out),
    ]);
    assert_eq!(code(&o), 1);
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("report")).expect("json");
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["host"]["root"], s(&root));
    let checks = v["policies"][0]["checks"].as_array().expect("checks");
    let fail = checks.iter().find(|c| c["id"] == "T-FAIL").expect("T-FAIL");
    assert_eq!(fail["status"], "fail");
    let obs = &fail["evidence"][0]["observations"][0];
    assert_eq!(obs["target"], "/etc/app.conf");
    assert_eq!(obs["line"], 2);
    assert_eq!(obs["text"], "debug = yes");
    assert_eq!(v["policies"][0]["summary"]["score"], 50.0);
    assert_eq!(v["policies"][0]["frameworks"]["nist_800_53"]["failed"], 1);
    assert_eq!(v["results_digest"].as_str().map(str::len), Some(64));
}

#[test]
fn saved_json_reports_re_render_with_later_waivers() {
    let (dir, root, policy) = setup();
    let json = dir.path().join("r.json");
    let o = rampart(&[
        "scan",
        "-q",
        "--policy",
        s(&policy),
        "--root",
        s(&root),
        "--format",
        "json",
        "--output",
        s(&json),
    ]);
    assert_eq!(code(&o), 1);
    // Same verdicts, another format.
    let o = rampart(&["report", s(&json), "--format", "csv"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stdout(&o).contains("T-FAIL"));
    // And as a PDF (chosen by the file's extension), read back by pdftotext (poppler-utils,
    // scripts/setup-test-deps.sh): the failing check is listed with its title.
    let pdf = dir.path().join("r.pdf");
    let o = rampart(&["report", s(&json), "--output", s(&pdf)]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let text = std::process::Command::new("pdftotext")
        .args([s(&pdf), "-"])
        .output()
        .expect("pdftotext (poppler-utils)");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Failed checks and remediation"), "{text}");
    assert!(text.contains("T-FAIL"), "{text}");
    assert!(
        text.contains(&format!("scan report {}", s(&json))),
        "{text}"
    );
    // A waiver approved after the scan turns the exit code green.
    let waivers = write(
        dir.path(),
        "w.yml",
        "waivers:\n  - check: T-FAIL\n    justification: accepted after review\n",
    );
    let o = rampart(&[
        "report",
        s(&json),
        "--waivers",
        s(&waivers),
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let fail = v["policies"][0]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["id"] == "T-FAIL")
        .cloned()
        .expect("T-FAIL");
    assert_eq!(fail["status"], "waived");
    assert_eq!(fail["original_status"], "fail");
    // As OSCAL assessment results: the same bytes every time, read and validated by
    // compliance-trestle, the waived failure an approved deviation.
    let ar = dir.path().join("ar.json");
    let oscal = |out: Option<&Path>| {
        let mut args = vec!["report", s(&json), "--waivers", s(&waivers), "-f", "oscal"];
        if let Some(out) = out {
            args.extend(["-o", s(out)]);
        }
        rampart(&args)
    };
    let o = oscal(Some(&ar));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        oscal(None).stdout,
        std::fs::read(&ar).unwrap(),
        "reproducible"
    );
    let read = trestle_read(&ar);
    let result = &read["results"][0];
    assert_eq!(
        result["observations"].as_u64(),
        v["policies"][0]["checks"]
            .as_array()
            .map(|c| c.len() as u64)
    );
    assert_eq!(
        result["risks"],
        serde_json::json!([["deviation-approved", null]])
    );
    // --policy picks a server run, not part of a file.
    let o = rampart(&["report", s(&json), "--policy", "x", "-f", "oscal"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    // Not a report: a clear error naming the file.
    let bad = write(dir.path(), "bad.json", "{\"schema_version\": 1}");
    let o = rampart(&["report", s(&bad)]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("bad.json") && stderr(&o).contains("not a Rampart JSON report"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn framework_filter_keeps_mapped_checks_only() {
    let (_dir, root, policy) = setup();
    let o = rampart(&[
        "scan",
        "-q",
        "--policy",
        s(&policy),
        "--root",
        s(&root),
        "--format",
        "json",
        "--framework",
        "pci_dss_4.0",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let ids: Vec<&str> = v["policies"][0]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids, ["T-FAIL"]);
    // Aliases work: `soc2` is SOC 2.
    let o = rampart(&[
        "scan",
        "-q",
        "--policy",
        s(&policy),
        "--root",
        s(&root),
        "--format",
        "json",
        "--framework",
        "soc2",
    ]);
    assert_eq!(code(&o), 0);
}

#[test]
fn junit_csv_html_and_wazuh_formats() {
    let (dir, root, policy) = setup();
    let run = |fmt: &str| {
        let o = rampart(&[
            "scan",
            "-q",
            "--policy",
            s(&policy),
            "--root",
            s(&root),
            "--format",
            fmt,
        ]);
        assert_eq!(code(&o), 1, "{fmt}: {}", stderr(&o));
        stdout(&o)
    };
    let junit = run("junit");
    let doc = roxmltree::Document::parse(&junit).expect("well-formed JUnit XML");
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 3);
    let failed = cases
        .iter()
        .find(|n| n.attribute("name").is_some_and(|a| a.starts_with("T-FAIL")))
        .expect("case");
    assert!(failed.children().any(|c| c.has_tag_name("failure")));
    let na = cases
        .iter()
        .find(|n| n.attribute("name").is_some_and(|a| a.starts_with("T-NA")))
        .expect("case");
    assert!(na.children().any(|c| c.has_tag_name("skipped")));

    let csv = run("csv");
    let mut rdr = csv::Reader::from_reader(csv.as_bytes());
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(&rows[1][1], "T-FAIL");
    assert_eq!(&rows[1][4], "fail");

    let html = run("html");
    assert!(html.starts_with("<!DOCTYPE html>"));
    for external in ["src=\"http", "href=\"http", "<link", "@import", "url("] {
        assert!(
            !html.contains(external),
            "HTML must be self-contained; found {external}"
        );
    }
    assert!(html.contains("T-FAIL") && html.contains("debug = yes"));

    let wazuh = run("wazuh");
    let events: Vec<serde_json::Value> = wazuh
        .lines()
        .map(|l| serde_json::from_str(l).expect("ndjson"))
        .collect();
    assert_eq!(events.len(), 4);
    assert_eq!(events[1]["check"]["result"], "failed");
    assert_eq!(events[2]["check"]["status"], "Not applicable");
    assert_eq!(events[3]["type"], "summary");
    assert_eq!(events[3]["passed"], 1);
    assert_eq!(events[3]["invalid"], 1);
    let _ = dir;
}

#[test]
fn output_extension_picks_the_format() {
    let (dir, root, policy) = setup();
    for (name, check) in [
        ("r.html", "<!DOCTYPE html>"),
        ("r.json", "{"),
        ("r.csv", "policy_id,check_id"),
        ("r.xml", "<?xml"),
        ("r.ndjson", "\"type\":\"check\""),
        ("r.txt", "CLI test policy"),
    ] {
        let out = dir.path().join(name);
        let o = rampart(&[
            "scan",
            "-q",
            "--policy",
            s(&policy),
            "--root",
            s(&root),
            "--output",
            s(&out),
        ]);
        assert_eq!(code(&o), 1, "{name}: {}", stderr(&o));
        let text = std::fs::read_to_string(&out).expect("written");
        assert!(
            text.trim_start().starts_with(check) || text.contains(check),
            "{name}: {}",
            &text[..text.len().min(80)]
        );
    }
    // An explicit --format wins over the extension.
    let out = dir.path().join("forced.html");
    let o = rampart(&[
        "scan",
        "-q",
        "--policy",
        s(&policy),
        "--root",
        s(&root),
        "--format",
        "json",
        "--output",
        s(&out),
    ]);
    assert_eq!(code(&o), 1);
    assert!(
        std::fs::read_to_string(&out)
            .expect("written")
            .starts_with('{')
    );
}

#[test]
fn unmet_requirements_are_warned_about() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path().join("root");
    write(&root, "etc/hostname", "x\n");
    let o = rampart(&[
        "scan",
        "-q",
        "--policy",
        s(&shared("fixtures/sca/cis_debian12.yml")),
        "--root",
        s(&root),
        "--format",
        "json",
    ]);
    // Nothing was evaluated: never a success, and stderr says why and what to do.
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("policy cis_debian12: requirements not met (Check Debian version.)"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("no check was evaluated"),
        "{}",
        stderr(&o)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["policies"][0]["requirements"]["satisfied"], false);
    assert!(
        v["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("requirements not met"))
    );
}

/// A Debian 12 image tree as `debootstrap` leaves it for the requirements: its own identity
/// files and empty `/proc` and `/sys` (nothing is mounted in an image).
fn debian12_image(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("image");
    write(&root, "etc/debian_version", "12.8\n");
    write(
        &root,
        "etc/os-release",
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nID=debian\n",
    );
    write(&root, "etc/login.defs", "PASS_MAX_DAYS\t99999\n");
    std::fs::create_dir_all(root.join("proc")).expect("proc");
    std::fs::create_dir_all(root.join("sys")).expect("sys");
    root
}

#[test]
fn image_scans_judge_requirements_by_the_image_and_never_pass_on_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = debian12_image(dir.path());
    let policy = shared("fixtures/sca/cis_debian12.yml");
    let scan = |extra: &[&str]| {
        let mut args = vec![
            "scan",
            "-q",
            "--policy",
            s(&policy),
            "--root",
            s(&root),
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        rampart(&args)
    };

    // As on a live host: the image has no /proc, the requirements fail, nothing is evaluated.
    let o = scan(&[]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("'/proc/sys/kernel/ostype' is live kernel state, not available in an image"),
        "{err}"
    );
    assert!(err.contains("--requirements image"), "{err}");
    // --fail-under does not turn "nothing evaluated" into a pass.
    assert_eq!(code(&scan(&["--fail-under", "0"])), 3);

    // Judged by the image's own files: the checks run.
    let o = scan(&["--requirements", "image"]);
    assert_eq!(code(&o), 1, "failures in a bare image: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let req = &v["policies"][0]["requirements"];
    assert_eq!(req["satisfied"], true, "{req}");
    assert!(
        req["note"].as_str().is_some_and(|n| n.contains(
            "left out, as they read the running system: f:/proc/sys/kernel/ostype -> r:Linux"
        )),
        "{req}"
    );
    let checks = v["policies"][0]["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 207);
    assert!(checks.iter().any(|c| c["status"] == "fail"));

    // Skipped on request: the report says so.
    let o = scan(&["--requirements", "skip"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(
        v["policies"][0]["requirements"]["note"],
        "not evaluated: skipped on request"
    );

    // An image cannot be told from a host without --root.
    let o = rampart(&["scan", "--policy", s(&policy), "--requirements", "image"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--requirements image: needs --root"));

    // Every requirement reads the running system: the image cannot be judged, and says so.
    let live_only = write(
        dir.path(),
        "live.yml",
        "policy:\n  id: live\n  file: live.yml\n  name: live\n  description: d\nrequirements:\n  title: kernel\n  description: d\n  condition: all\n  rules:\n    - 'f:/proc/sys/kernel/ostype -> r:Linux'\nchecks:\n  - id: 1\n    title: t\n    condition: all\n    rules:\n      - 'f:/etc/debian_version'\n",
    );
    let o = rampart(&[
        "scan",
        "--policy",
        s(&live_only),
        "--root",
        s(&root),
        "--requirements",
        "image",
    ]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no requirement can be judged against an image"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn live_kernel_paths_in_an_image_are_not_available_rather_than_missing() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = debian12_image(dir.path());
    let policy = write(
        dir.path(),
        "kernel.yml",
        "policy:\n  id: kernel\n  file: kernel.yml\n  name: kernel\n  description: d\nchecks:\n  - id: 1\n    title: ipv6 on\n    condition: all\n    rules:\n      - 'f:/sys/module/ipv6/parameters/disable -> r:^0$'\n  - id: 2\n    title: no forwarding\n    condition: none\n    rules:\n      - 'f:/proc/sys/net/ipv4/ip_forward -> r:^1$'\n  - id: 3\n    title: debian\n    condition: all\n    rules:\n      - 'f:/etc/debian_version -> r:^12'\n",
    );
    let o = rampart(&[
        "scan",
        "-q",
        "--policy",
        s(&policy),
        "--root",
        s(&root),
        "--format",
        "json",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let checks = v["policies"][0]["checks"].as_array().expect("checks");
    for c in &checks[..2] {
        assert_eq!(c["status"], "not_applicable", "{c}");
        assert!(
            c["reason"]
                .as_str()
                .is_some_and(|r| r.contains("is live kernel state, not available in an image")),
            "{c}"
        );
        assert_eq!(
            c["evidence"][0]["observations"][0]["detail"],
            "not available in an image (live kernel state)",
            "{c}"
        );
    }
    assert_eq!(checks[2]["status"], "pass");
}

#[test]
fn html_escapes_untrusted_text() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path().join("root");
    write(&root, "etc/x", "<script>alert(1)</script>\n");
    let p = write(
        dir.path(),
        "p.yml",
        "rampart: 1\npolicy: {id: x, name: '<b>policy</b>'}\nchecks:\n  - id: X\n    title: '<img src=x onerror=alert(1)>'\n    severity: low\n    rules: [{file: /etc/x, match: 'nothing'}]\n",
    );
    let o = rampart(&[
        "scan",
        "-q",
        "--policy",
        s(&p),
        "--root",
        s(&root),
        "--format",
        "html",
    ]);
    let html = stdout(&o);
    assert!(!html.contains("<img src=x"), "title not escaped");
    assert!(!html.contains("<b>policy</b>"), "policy name not escaped");
    assert!(html.contains("&lt;img src=x"));
}

#[test]
fn output_file_is_written_atomically() {
    let (dir, root, policy) = setup();
    let out = dir.path().join("report.html");
    std::fs::write(&out, "previous report").expect("seed");
    // An invalid run leaves the previous report untouched.
    let o = rampart(&[
        "scan",
        "-q",
        "--policy",
        "/nonexistent.yml",
        "--format",
        "html",
        "--output",
        s(&out),
    ]);
    assert_eq!(code(&o), 2);
    assert_eq!(
        std::fs::read_to_string(&out).expect("read"),
        "previous report"
    );
    let o = rampart(&[
        "scan",
        "-q",
        "--policy",
        s(&policy),
        "--root",
        s(&root),
        "--format",
        "html",
        "--output",
        s(&out),
    ]);
    assert_eq!(code(&o), 1);
    assert!(
        std::fs::read_to_string(&out)
            .expect("read")
            .starts_with("<!DOCTYPE html>")
    );
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn output_to_special_files_and_symlinks_keeps_them() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let (dir, root, policy) = setup();
    // A FIFO (like /dev/null or /dev/stdout, it must be written to, not replaced).
    let fifo = dir.path().join("pipe");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(st.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).expect("read fifo"))
    };
    let o = rampart(&[
        "scan",
        "-q",
        "--policy",
        s(&policy),
        "--root",
        s(&root),
        "--format",
        "csv",
        "--output",
        s(&fifo),
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let got = reader.join().expect("reader");
    assert!(got.starts_with("policy_id,check_id"), "{got}");
    assert!(
        std::fs::symlink_metadata(&fifo)
            .expect("stat")
            .file_type()
            .is_fifo(),
        "the FIFO was replaced"
    );

    // A symlink: the link stays, its target gets the report, the target keeps its mode.
    let target = dir.path().join("real.json");
    std::fs::write(&target, "old").expect("seed");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    let o = rampart(&[
        "scan",
        "-q",
        "--policy",
        s(&policy),
        "--root",
        s(&root),
        "--format",
        "json",
        "--output",
        s(&link),
    ]);
    assert_eq!(code(&o), 1);
    assert!(
        std::fs::symlink_metadata(&link)
            .expect("lstat")
            .file_type()
            .is_symlink()
    );
    assert!(
        std::fs::read_to_string(&target)
            .expect("read")
            .starts_with('{')
    );
    assert_eq!(
        std::fs::metadata(&target)
            .expect("stat")
            .permissions()
            .mode()
            & 0o777,
        0o640
    );

    // A directory is an error.
    let o = rampart(&[
        "scan",
        "-q",
        "--policy",
        s(&policy),
        "--root",
        s(&root),
        "--output",
        s(dir.path()),
    ]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("is a directory"), "{}", stderr(&o));
}

#[test]
fn default_scan_uses_the_builtin_baseline() {
    let o = rampart(&["scan", "-q", "--format", "json"]);
    assert!(matches!(code(&o), 0 | 1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["policies"][0]["policy"]["id"], "rampart-linux-baseline");
    assert_eq!(
        v["policies"][0]["policy"]["file"],
        "builtin:linux-baseline.yml"
    );
    assert!(
        v["policies"][0]["summary"]["total"]
            .as_u64()
            .is_some_and(|n| n >= 80)
    );
    let statuses: Vec<&str> = v["policies"][0]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["status"].as_str())
        .collect();
    assert!(!statuses.contains(&"error"));
}

#[test]
fn real_wazuh_policy_runs_unmodified() {
    let o = rampart(&[
        "scan",
        "-q",
        "--policy",
        s(&shared("fixtures/sca/cis_debian12.yml")),
        "--format",
        "json",
    ]);
    assert!(matches!(code(&o), 0 | 1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["policies"][0]["policy"]["format"], "wazuh-sca-4");
}

#[test]
fn policy_lint_show_and_schema() {
    let o = rampart(&[
        "policy",
        "lint",
        s(&shared("fixtures/sca/cis_debian12.yml")),
    ]);
    assert_eq!(code(&o), 0);
    let out = stdout(&o);
    assert!(out.contains("warning[sca-d-plus]: check 33188"), "{out}");
    let o = rampart(&[
        "policy",
        "lint",
        "--deny-warnings",
        s(&shared("fixtures/sca/cis_debian12.yml")),
    ]);
    assert_eq!(code(&o), 1);
    let dir = tempfile::tempdir().expect("tmp");
    let bad = write(
        dir.path(),
        "bad.yml",
        "policy:\n  id: t\n  file: t\n  name: t\n  description: d\nchecks:\n  - id: 1\n    title: x\n    condition: all\n    rules: ['q:/x']\n",
    );
    let o = rampart(&["policy", "lint", s(&bad)]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("bad.yml:10:") && stderr(&o).contains("check 1"),
        "{}",
        stderr(&o)
    );
    // --json: the same findings, with the place as fields; the exit code unchanged.
    let o = rampart(&[
        "policy",
        "lint",
        "--json",
        s(&shared("fixtures/sca/cis_debian12.yml")),
        s(&bad),
    ]);
    assert_eq!(code(&o), 2);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("lint --json");
    let files = v["files"].as_array().expect("files");
    assert_eq!(files[0]["valid"], true);
    assert!(
        files[0]["diagnostics"]
            .as_array()
            .expect("diagnostics")
            .iter()
            .any(|d| d["code"] == "sca-d-plus" && d["check"] == "33188" && d["level"] == "warning"),
        "{v}"
    );
    assert_eq!(files[1]["valid"], false);
    assert_eq!(files[1]["diagnostics"][0]["location"]["line"], 10, "{v}");
    assert_eq!(files[1]["diagnostics"][0]["check"], "1", "{v}");

    let o = rampart(&["policy", "show"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("RMP-SSH-001"));
    let o = rampart(&[
        "policy",
        "show",
        "--json",
        s(&shared("fixtures/sca/sca_unix_audit.yml")),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(v["checks"].as_array().is_some_and(|c| !c.is_empty()));
    let o = rampart(&["policy", "schema"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("schema json");
    assert_eq!(v["title"], "Rampart policy");
    let o = rampart(&["schema", "policy"]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&o.stdout).expect("json")["title"],
        "Rampart policy"
    );
}

#[test]
fn report_schema_describes_every_field_a_report_has() {
    let (_dir, root, policy) = setup();
    let o = rampart(&["schema", "report"]);
    assert_eq!(code(&o), 0);
    let schema: serde_json::Value = serde_json::from_slice(&o.stdout).expect("schema json");
    let o = rampart(&[
        "scan",
        "-q",
        "--policy",
        s(&policy),
        "--root",
        s(&root),
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("report json");
    // Every key of the report, its policies and their checks is a property in the schema.
    let props = |v: &serde_json::Value| -> Vec<String> {
        v["properties"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let defs = &schema["$defs"];
    for (value, def) in [
        (&report, &schema),
        (&report["policies"][0], &defs["PolicyReport"]),
        (&report["policies"][0]["checks"][0], &defs["CheckOutcome"]),
        (
            &report["policies"][0]["checks"][0]["evidence"][0]["observations"][0],
            &defs["Observation"],
        ),
    ] {
        let known = props(def);
        assert!(!known.is_empty(), "schema has no properties for {value}");
        for key in value.as_object().expect("object").keys() {
            assert!(known.contains(key), "'{key}' is missing from the schema");
        }
    }
    let statuses = defs["Status"].to_string();
    for st in [
        "pass",
        "fail",
        "not_applicable",
        "not_run",
        "error",
        "waived",
    ] {
        assert!(statuses.contains(st), "{st}");
    }
}

/// A policy whose one check runs one command (`echo rampart-cost-test`), for the costs cache.
fn one_command_policy(dir: &Path) -> std::path::PathBuf {
    write(
        dir,
        "cmd.yml",
        "policy:\n  id: c\n  file: cmd.yml\n  name: C\n  description: d\nchecks:\n  \
         - id: 1\n    title: t\n    condition: all\n    rules:\n      \
         - 'c:echo rampart-cost-test -> r:rampart-cost-test'\n",
    )
}

#[test]
fn command_costs_are_cached_between_scans_and_a_broken_cache_is_only_a_warning() {
    let dir = tempfile::tempdir().expect("tmp");
    let policy = one_command_policy(dir.path());
    let cache_home = dir.path().join("cache");
    let file = cache_home.join("rampart/command-costs.json");
    let env = [("XDG_CACHE_HOME", cache_home.as_path())];
    let scan = |extra: &[&str]| {
        let mut args = vec!["scan", "-q", "--format", "json", "--policy", s(&policy)];
        args.extend_from_slice(extra);
        rampart_env(&args, &env)
    };
    // --no-cost-cache neither reads nor writes it.
    let o = scan(&["--no-cost-cache"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!file.exists());
    // A scan records how long each command took.
    let o = scan(&[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = std::fs::read_to_string(&file).expect("cache written");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    let entry = &json["commands"][0];
    assert_eq!(entry["root"], "/");
    assert_eq!(
        entry["argv"],
        serde_json::json!(["echo", "rampart-cost-test"])
    );
    assert!(entry["micros"].as_u64().is_some(), "{text}");
    // A broken cache: the scan still runs, says so, and leaves a good cache behind.
    std::fs::write(&file, "{\"format\": 1,\n \"commands\": 7}").expect("write");
    let o = scan(&[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: ignoring the command-costs cache")
            && stderr(&o).contains("command-costs.json:2:"),
        "{}",
        stderr(&o)
    );
    let text = std::fs::read_to_string(&file).expect("cache rewritten");
    assert!(text.contains("rampart-cost-test"), "{text}");
}

#[test]
fn root_keeps_no_command_costs_cache_in_another_users_home() {
    use std::os::unix::fs::MetadataExt;
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED: needs root to own files as another user (the `sudo -E` case)");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let policy = one_command_policy(dir.path());
    // An empty XDG_CACHE_HOME is ignored (not absolute), so HOME decides, as after `sudo -E`.
    let scan_with_home = |home: &Path| {
        rampart_env(
            &["scan", "-q", "--format", "json", "--policy", s(&policy)],
            &[("XDG_CACHE_HOME", Path::new("")), ("HOME", home)],
        )
    };
    // Root's own home: the cache is kept there.
    let own = dir.path().join("root-home");
    std::fs::create_dir(&own).expect("mkdir");
    let o = scan_with_home(&own);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(own.join(".cache/rampart/command-costs.json").exists());
    // Another user's home: nothing is created in it, and the scan is the same.
    let foreign = dir.path().join("user-home");
    std::fs::create_dir(&foreign).expect("mkdir");
    rustix::fs::chown(&foreign, Some(rustix::fs::Uid::from_raw(65534)), None).expect("chown");
    assert_eq!(std::fs::metadata(&foreign).expect("stat").uid(), 65534);
    let o = scan_with_home(&foreign);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    assert!(
        !foreign.join(".cache").exists(),
        "root wrote into another user's home"
    );
}

#[test]
fn an_unprivileged_scan_says_what_it_could_not_read_and_how_commands_ran() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path();
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let secret = write(root, "etc/secret.conf", "token = x\n");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    let open = write(root, "etc/open.conf", "token = x\n");
    let policy = write(
        root,
        "p.yml",
        &format!(
            "policy:\n  id: c\n  file: p.yml\n  name: C\n  description: d\nchecks:\n  \
             - id: 1\n    title: secret\n    condition: all\n    rules:\n      \
             - 'f:{} -> r:token'\n  \
             - id: 2\n    title: open\n    condition: all\n    rules:\n      \
             - 'f:{} -> r:token'\n  \
             - id: 3\n    title: command\n    condition: all\n    rules:\n      \
             - 'c:id -u -> r:^\\d+$'\n",
            secret.display(),
            open.display()
        ),
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart"));
    cmd.args(["scan", "--format", "json", "--no-cost-cache", "--policy"])
        .arg(&policy);
    // Root reads everything; the case is a scan by an ordinary user.
    let uid = if rustix::process::geteuid().is_root() {
        cmd.uid(65534).gid(65534);
        65534
    } else {
        rustix::process::geteuid().as_raw()
    };
    let o = cmd.output().expect("run rampart");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let statuses: Vec<_> = report["policies"][0]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["status"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(statuses, ["not_applicable", "pass", "pass"]);
    let denied = format!(
        "permission denied reading 1 path ({}): the checks that need them are not applicable",
        secret.display()
    );
    let commands = format!(
        "not run as root (uid {uid}): the 1 command the checks ran had only that user's privileges"
    );
    let warnings = report["warnings"].to_string();
    for expected in [&denied, &commands] {
        assert!(warnings.contains(expected.as_str()), "{warnings}");
        assert!(stderr(&o).contains(expected.as_str()), "{}", stderr(&o));
    }
}

#[test]
fn a_closed_pipe_ends_the_command_quietly_like_a_unix_tool() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    // `rampart policy show … | head -0`: more output than a pipe holds, and nobody reading.
    let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args([
            "policy",
            "show",
            s(&shared("fixtures/sca/cis_debian12.yml")),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.signal(), Some(13), "killed by SIGPIPE: {out:?}");
}
