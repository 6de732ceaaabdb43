//! An agent's report as OSCAL assessment results, judged by compliance-trestle (IBM's OSCAL
//! library, OSCAL 1.1.3 models): loaded by its assessment-results model, passed by `trestle
//! validate`, and what trestle read compared with what the runs say.

use rampart_core::Status;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::harness::{Db, TestServer, submission};
use crate::server_test;

/// compliance-trestle's virtual environment (scripts/setup-test-deps.sh).
pub const TRESTLE_PYTHON: &str = "/opt/rampart-test/trestle/bin/python";

/// Runs tests/oscal/check_ar.py on a document: what trestle read, as JSON.
pub fn trestle_read(doc: &[u8]) -> Value {
    assert!(
        std::path::Path::new(TRESTLE_PYTHON).exists(),
        "{TRESTLE_PYTHON} is missing: run scripts/setup-test-deps.sh"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ar.json");
    std::fs::write(&file, doc).unwrap();
    let out = std::process::Command::new(TRESTLE_PYTHON)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/oscal/check_ar.py"
        ))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "trestle refused the document: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(read["validate"]["status"], 0, "{}", read["validate"]);
    assert!(
        read["validate"]["output"]
            .as_str()
            .unwrap()
            .starts_with("VALID:"),
        "{}",
        read["validate"]
    );
    read
}

async fn report(s: &TestServer, path: &str) -> (u16, Vec<u8>) {
    let r = s.get_response(path).await;
    let status = r.status().as_u16();
    (status, r.bytes().await.unwrap().to_vec())
}

async fn oscal_report_is_trestle_valid_and_reproducible(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let (a, version) = s.agent_with_policy().await;

    // SSH-3's failure is waived: requested by the admin, approved by an auditor.
    let waiver = s
        .approved_waiver(
            "test-ssh:SSH-3",
            json!({"kind": "fleet"}),
            "legacy jump host until the migration",
        )
        .await;
    let until = waiver["expires_on"].as_str().unwrap().to_owned();

    // Checks mapped to controls: SSH-1 (pass) to NIST AC-2(1) and CIS Controls 4.1, SSH-2
    // (fail) to CIS Controls 4.1 and PCI 2.2.4, SSH-3 (fail, waived) to PCI 8.2, SSH-4 (not
    // applicable) to SOC 2 CC6.1, SSH-5 (fail) to nothing.
    let mut sub = submission(
        "run-oscal-0001",
        version,
        &[
            ("SSH-1", Status::Pass),
            ("SSH-2", Status::Fail),
            ("SSH-3", Status::Fail),
            ("SSH-4", Status::NotApplicable),
            ("SSH-5", Status::Fail),
        ],
        OffsetDateTime::now_utc(),
    );
    let map: [&[(&str, &[&str])]; 5] = [
        &[("nist_sp_800-53", &["AC-2(1)"]), ("cis_csc_v8", &["4.1"])],
        &[("cis_csc_v8", &["4.1"]), ("pci_dss_v4.0", &["2.2.4"])],
        &[("pci_dss_v4.0", &["8.2"])],
        &[("soc_2", &["CC6.1"])],
        &[],
    ];
    for (c, m) in sub.report.policies[0].checks.iter_mut().zip(map) {
        c.compliance = m
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|x| x.to_string()).collect()))
            .collect();
    }
    sub.report.refresh();
    let (status, receipt) = a.poster(&s).post(&sub).await;
    assert_eq!(status, 200, "{receipt}");
    let jti = receipt["attestation"].as_str().unwrap();
    let jws = s.attestation(&a.id, jti).await["jws"]
        .as_str()
        .unwrap()
        .to_owned();

    let path = format!("/api/v1/agents/{}/report?format=oscal", a.id);
    let (status, doc) = report(&s, &path).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&doc));
    let (_, again) = report(&s, &path).await;
    assert_eq!(doc, again, "the same runs give the same bytes");

    let read = trestle_read(&doc);
    assert_eq!(read["oscal_version"], "1.1.3");
    assert_eq!(read["trestle_oscal_version"], "1.1.3");
    let results = read["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    let r = &results[0];
    assert_eq!(r["observations"], 5);
    assert_eq!(r["props"]["run-id"], "run-oscal-0001");
    assert_eq!(r["props"]["policy-id"], "test-ssh");
    assert_eq!(r["props"]["attestation-jti"], jti);
    assert_eq!(
        r["attestation_jws"],
        jws.as_str(),
        "the embedded JWS is the issued one"
    );
    let f = |t: &str, state: &str, checks: &[&str]| json!([t, state, checks]);
    assert_eq!(
        r["findings"],
        json!([
            f("cis_csc_v8_4.1", "not-satisfied", &["SSH-1", "SSH-2"]),
            f("ac-2.1", "satisfied", &["SSH-1"]),
            f("pci_dss_4.0_2.2.4", "not-satisfied", &["SSH-2"]),
            f("pci_dss_4.0_8.2", "not-satisfied", &["SSH-3"]),
            f("test-ssh_SSH-5", "not-satisfied", &["SSH-5"]),
        ]),
        "{r}"
    );
    assert_eq!(
        r["reviewed"],
        json!([
            "cis_csc_v8_4.1",
            "ac-2.1",
            "pci_dss_4.0_2.2.4",
            "pci_dss_4.0_8.2"
        ])
    );
    assert_eq!(
        r["risks"],
        json!([["deviation-approved", format!("{until} 23:59:59+00:00")]]),
        "the waived failure is an approved deviation until the waiver's last day"
    );

    // A newer run replaces the older one in the report.
    let (status, _) = a
        .poster(&s)
        .post(&submission(
            "run-oscal-0002",
            version,
            &[("SSH-1", Status::Pass)],
            OffsetDateTime::now_utc() + Duration::seconds(1),
        ))
        .await;
    assert_eq!(status, 200);
    let (_, newer) = report(&s, &path).await;
    let newer: Value = serde_json::from_slice(&newer).unwrap();
    let props = &newer["assessment-results"]["results"][0]["props"];
    assert!(
        props
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "run-id" && p["value"] == "run-oscal-0002"),
        "{props}"
    );

    // Refusals: another format, an agent or a policy without runs.
    let (status, body) = report(&s, &format!("/api/v1/agents/{}/report?format=docx", a.id)).await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    let (status, _) = report(&s, "/api/v1/agents/nobody/report?format=oscal").await;
    assert_eq!(status, 404);
    let (status, _) = report(&s, &format!("{path}&policy=other")).await;
    assert_eq!(status, 404);
    s.finish().await;
}
server_test!(oscal_report_is_trestle_valid_and_reproducible);
