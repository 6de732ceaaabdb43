//! `rampart attest show|bundle|verify` and `rampart keys list|rotate` against a real server
//! process and a real agent run: the bundle verifies offline only against a pinned log key,
//! and an edited bundle is refused with its reason and exit 1.

use super::fleet::{ServerProc, free_port};
use super::harness::{code, s, stderr, stdout, trestle_read};

#[test]
fn attestations_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProc::start(&dir.path().join("data"), free_port(), free_port());
    let token = server.admin_token.clone().unwrap();
    let agent = server.agent_with_a_run(dir.path(), &token);
    let admin = server.config_dir();

    // The run's attestation is issued a moment after its receipt.
    let started = std::time::Instant::now();
    let o = loop {
        let o = server.cli_logged_in(&admin, &["attest", "show", &agent]);
        if code(&o) == 0 || started.elapsed() > std::time::Duration::from_secs(20) {
            break o;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    for line in [
        "policy       cli-ssh v1",
        "result       compliant — score 100.0",
        "checks       1 passed, 0 failed, 0 waived, 0 n/a, 0 not run, 0 errors (1 in all)",
        "stale        no",
    ] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }

    let o = server.cli_logged_in(&admin, &["keys", "list"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains(" current ") && out.contains(" next "), "{out}");

    let bundle = dir.path().join("b.json");
    let o = server.cli_logged_in(&admin, &["attest", "bundle", &agent, "-o", s(&bundle)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    // Offline, with no key pinned: refused, and told how to pin one.
    let stranger = dir.path().join("stranger");
    let o = server.cli_logged_in(&stranger, &["attest", "verify", s(&bundle)]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("NOT verified (untrusted_checkpoint)"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("--log-key"), "{}", stdout(&o));

    // The key pinned by `rampart audit verify`, or given: verified.
    let o = server.cli_logged_in(&admin, &["audit", "verify"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let o = server.cli_logged_in(&admin, &["attest", "verify", s(&bundle)]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("attestation verified\n"), "{out}");
    assert!(out.contains("included, matches the signed digest"), "{out}");
    let text = std::fs::read_to_string(&bundle).unwrap();
    let b: serde_json::Value = serde_json::from_str(&text).unwrap();
    let vkey = b["log"]["vkey"].as_str().unwrap();
    let o = server.cli_logged_in(
        &stranger,
        &["attest", "verify", s(&bundle), "--log-key", vkey, "--json"],
    );
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let claims: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(claims["sub"], agent.as_str());

    // Evidence edited after the fact: refused, the reason named.
    let edited = dir.path().join("edited.json");
    let mut e = b.clone();
    let evidence = e["evidence"]
        .as_str()
        .unwrap()
        .replace("\"pass\"", "\"fail\"");
    e["evidence"] = evidence.into();
    std::fs::write(&edited, serde_json::to_vec(&e).unwrap()).unwrap();
    let o = server.cli_logged_in(&admin, &["attest", "verify", s(&edited)]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(
        stdout(&o).contains("NOT verified (evidence_mismatch)"),
        "{}",
        stdout(&o)
    );
    let o = server.cli_logged_in(
        &admin,
        &["attest", "verify", s(&dir.path().join("missing.json"))],
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));

    // The agent's OSCAL assessment results, with this attestation embedded; the same bytes
    // twice. Without --format oscal, an agent id is not a report file.
    let ar = dir.path().join("ar.json");
    let o = server.cli_logged_in(&admin, &["report", &agent, "-f", "oscal", "-o", s(&ar)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = server.cli_logged_in(&admin, &["report", &agent, "--format", "oscal"]);
    assert_eq!(o.stdout, std::fs::read(&ar).unwrap(), "reproducible");
    let read = trestle_read(&ar);
    let result = &read["results"][0];
    assert_eq!(result["props"]["policy-id"], "cli-ssh");
    assert_eq!(result["observations"], 1);
    assert_eq!(
        result["attestation_jws"].as_str(),
        b["attestation"].as_str(),
        "the attestation embedded is the one in the bundle"
    );
    let o = server.cli_logged_in(&admin, &["report", &agent]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("--format oscal"), "{}", stderr(&o));
    // The agent's and the fleet's PDF reports; a PDF is not written to a terminal, and a group
    // report needs --format pdf.
    for (args, file) in [
        (
            vec!["report", agent.as_str(), "--format", "pdf"],
            "agent.pdf",
        ),
        (vec!["report", "--fleet"], "fleet.pdf"),
    ] {
        let out = dir.path().join(file);
        let mut args = args.clone();
        args.extend(["-o", s(&out)]);
        let o = server.cli_logged_in(&admin, &args);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let text = std::process::Command::new("pdftotext")
            .args([s(&out), "-"])
            .output()
            .expect("pdftotext (poppler-utils)");
        let text = String::from_utf8_lossy(&text.stdout);
        assert!(text.contains("cli-ssh"), "{file}: {text}");
        assert!(text.contains("Attestations"), "{file}: {text}");
    }
    let o = server.cli_logged_in(&admin, &["report", "--group", "web"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("--format pdf"), "{}", stderr(&o));

    // Rotation: refused while the next key is new (exit 5, the server's reason), then forced.
    let o = server.cli_logged_in(&admin, &["keys", "rotate"]);
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    assert!(stderr(&o).contains("next_key_too_new"), "{}", stderr(&o));
    let o = server.cli_logged_in(&admin, &["keys", "rotate", "--force"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("signing now"), "{}", stdout(&o));
}
