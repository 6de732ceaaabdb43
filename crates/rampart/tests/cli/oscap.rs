//! `--import-oscap` on result files produced by the real `oscap` at test time
//! (`scripts/setup-test-deps.sh` installs openscap-scanner and the SCAP Security Guide).

use super::harness::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

struct Generated {
    _dir: tempfile::TempDir,
    results: PathBuf,
    arf: PathBuf,
}

/// Runs `oscap xccdf eval` once per test process on the Debian 11 content with its platform
/// check widened to Debian 12 (the stock content reports everything not applicable here).
fn generated() -> &'static Generated {
    static G: OnceLock<Generated> = OnceLock::new();
    G.get_or_init(|| {
        let oscap = ["/usr/bin/oscap", "/usr/local/bin/oscap"].into_iter().find(|p| Path::new(p).exists()).unwrap_or_else(|| {
            panic!("oscap is not installed: run `bash scripts/setup-test-deps.sh` (the README's test command does)")
        });
        let content = Path::new("/usr/share/xml/scap/ssg/content/ssg-debian11-ds.xml");
        assert!(content.exists(), "SSG content missing: run `bash scripts/setup-test-deps.sh`");
        let dir = tempfile::tempdir().expect("tmp");
        let ds = std::fs::read_to_string(content).expect("read ds");
        let widened = ds.replace("^11.[0-9]+$", "^1[12]\\.[0-9]+$");
        let ds_path = dir.path().join("ds.xml");
        std::fs::write(&ds_path, widened).expect("write ds");
        let results = dir.path().join("results.xml");
        let arf = dir.path().join("arf.xml");
        let o = std::process::Command::new(oscap)
            .args(["xccdf", "eval", "--profile", "xccdf_org.ssgproject.content_profile_standard", "--results"])
            .arg(&results)
            .arg("--results-arf")
            .arg(&arf)
            .arg(&ds_path)
            .output()
            .expect("run oscap");
        // oscap exits 2 when a rule fails, 0 when all pass.
        assert!(matches!(o.status.code(), Some(0 | 2)), "oscap failed: {}", String::from_utf8_lossy(&o.stderr));
        Generated { _dir: dir, results, arf }
    })
}

fn import(path: &Path) -> serde_json::Value {
    let o = rampart(&["scan", "--import-oscap", s(path), "--format", "json"]);
    assert!(matches!(code(&o), 0 | 1), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("json")
}

fn oscap_counts(path: &Path) -> (usize, usize, usize) {
    let text = std::fs::read_to_string(path).expect("read");
    let doc = roxmltree::Document::parse(&text).expect("xml");
    let tr = doc
        .descendants()
        .rfind(|n| n.tag_name().name() == "TestResult")
        .expect("TestResult");
    let mut counts = (0, 0, 0);
    for rr in tr
        .children()
        .filter(|n| n.tag_name().name() == "rule-result")
    {
        let res = rr
            .children()
            .find(|n| n.tag_name().name() == "result")
            .and_then(|n| n.text())
            .unwrap_or("");
        match res {
            "pass" => counts.0 += 1,
            "fail" => counts.1 += 1,
            "notapplicable" => counts.2 += 1,
            _ => {}
        }
    }
    counts
}

#[test]
fn xccdf_results_import_matches_oscap_counts() {
    let g = generated();
    let v = import(&g.results);
    let (pass, fail, na) = oscap_counts(&g.results);
    assert!(
        pass + fail > 0,
        "the widened content should evaluate some rules"
    );
    let s = &v["policies"][0]["summary"];
    assert_eq!(s["passed"].as_u64(), Some(pass as u64));
    assert_eq!(s["failed"].as_u64(), Some(fail as u64));
    assert!(s["not_applicable"].as_u64().is_some_and(|n| n >= na as u64));
    assert_eq!(v["policies"][0]["policy"]["format"], "xccdf-results");
    // Titles and severities come from the benchmark.
    let checks = v["policies"][0]["checks"].as_array().expect("checks");
    assert!(checks.iter().all(|c| {
        c["title"]
            .as_str()
            .is_some_and(|t| !t.starts_with("xccdf_org"))
    }));
    assert!(checks.iter().any(|c| c["severity"] != "unknown"));
    assert!(
        checks
            .iter()
            .any(|c| c["compliance"].as_object().is_some_and(|m| !m.is_empty()))
    );
}

#[test]
fn arf_import_gives_the_same_results() {
    let g = generated();
    let a = import(&g.results);
    let b = import(&g.arf);
    let ids = |v: &serde_json::Value| -> Vec<(String, String)> {
        v["policies"][0]["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .map(|c| {
                (
                    c["id"].as_str().unwrap_or("").to_string(),
                    c["status"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    assert_eq!(ids(&a), ids(&b));
}

#[test]
fn imported_results_render_in_every_format() {
    let g = generated();
    for fmt in ["pretty", "junit", "csv", "html", "wazuh"] {
        let o = rampart(&["scan", "--import-oscap", s(&g.arf), "--format", fmt]);
        assert!(matches!(code(&o), 0 | 1), "{fmt}: {}", stderr(&o));
        assert!(!o.stdout.is_empty());
    }
}

#[test]
fn broken_result_files_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tmp");
    let cases = [
        (
            "truncated.xml",
            "<?xml version=\"1.0\"?>\n<Benchmark xmlns=\"http://checklists.nist.gov/xccdf/1.2\">\n  <TestResult",
            "not well-formed XML",
        ),
        ("other.xml", "<root/>", "no XCCDF <TestResult> found"),
        (
            "old.xml",
            "<TestResult xmlns=\"http://checklists.nist.gov/xccdf/1.1\"/>",
            "only XCCDF 1.2",
        ),
        (
            "dtd.xml",
            "<!DOCTYPE x [<!ENTITY a \"b\">]><x>&a;</x>",
            "dtd.xml:1:",
        ),
    ];
    for (name, content, want) in cases {
        let p = write(dir.path(), name, content);
        let o = rampart(&["scan", "--import-oscap", s(&p)]);
        assert_eq!(code(&o), 2, "{name}");
        assert!(stderr(&o).contains(want), "{name}: {}", stderr(&o));
    }
}
