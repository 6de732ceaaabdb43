//! PDF reports of an agent, a group and the fleet, read as their readers read them: the text by
//! `pdftotext`, the pages rendered by `pdftoppm` (poppler-utils, scripts/setup-test-deps.sh).
//! Downloaded through the API with a token and through the dashboard's link with a session.

use rampart_core::Status::Pass;
use reqwest::Method;
use serde_json::json;
use time::OffsetDateTime;

use super::harness::{ADMIN_PASSWORD, Db, TestAgent, TestServer, submission};
use super::ui::{HOSTILE, new_user_session, page, seed, sign_in};
use crate::server_test;

/// A downloaded PDF: status, media type, `Content-Disposition`, bytes.
struct Download {
    status: u16,
    media_type: String,
    disposition: String,
    bytes: Vec<u8>,
}

async fn download(
    s: &TestServer,
    path: &str,
    bearer: Option<&str>,
    cookie: Option<&str>,
) -> Download {
    let mut req = s.http.get(s.url(path));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let r = req.send().await.unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (status, media_type, disposition) = (
        r.status().as_u16(),
        header("content-type"),
        header("content-disposition"),
    );
    Download {
        status,
        media_type,
        disposition,
        bytes: r.bytes().await.unwrap().to_vec(),
    }
}

fn poppler(tool: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{tool} (poppler-utils, installed by scripts/setup-test-deps.sh): {e}")
        });
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The PDF's text as `pdftotext` reads it (white space runs made one space, the layout's
/// break opportunities in long tokens dropped), after checking that every page renders.
fn read_pdf(d: &Download, name: &str) -> String {
    assert_eq!(d.status, 200, "{}", String::from_utf8_lossy(&d.bytes));
    assert_eq!(d.media_type, "application/pdf");
    assert!(d.bytes.starts_with(b"%PDF-"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{name}.pdf"));
    std::fs::write(&file, &d.bytes).unwrap();
    let text = poppler("pdftotext", &[file.to_str().unwrap(), "-"]);
    let text = text
        .replace('\u{200b}', "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let prefix = dir.path().join(name);
    poppler(
        "pdftoppm",
        &[
            "-r",
            "50",
            "-png",
            file.to_str().unwrap(),
            prefix.to_str().unwrap(),
        ],
    );
    let pages = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "png")
        })
        .count();
    assert!(pages >= 1);
    assert!(
        text.contains(&format!("Page 1 of {pages}")),
        "pdftoppm drew {pages} pages: {text}"
    );
    if let Ok(keep) = std::env::var("RAMPART_PDF_PAGES") {
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(
            &file,
            std::path::Path::new(&keep).join(format!("{name}.pdf")),
        )
        .unwrap();
    }
    text
}

fn has(text: &str, expected: &str) {
    assert!(
        text.contains(expected),
        "{expected:?} is not in the PDF:\n{text}"
    );
}

/// Web: a hostile host (SSH-1 and SSH-2 fail) and web-01 (SSH-1 fails, SSH-2 passes); db:
/// db-01 (both pass); an approved waiver for web; the reports of one agent, of the fleet as an
/// admin sees it and as a viewer limited to web sees it, as the API and the dashboard serve them.
async fn pdf_reports(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let (evil, good) = seed(&s).await;
    let db_host = TestAgent::enrol_as(&s, &s.token("db", 1).await, "db-01", "Debian GNU/Linux 12")
        .await
        .unwrap();
    let version = s.get("/api/v1/policies").await[0]["latest"]["version"]
        .as_i64()
        .unwrap();
    let (st, v) = db_host
        .poster(&s)
        .post(&submission(
            "run-db-0001",
            version,
            &[("SSH-1", Pass), ("SSH-2", Pass)],
            OffsetDateTime::now_utc(),
        ))
        .await;
    assert_eq!(st, 200, "{v}");
    s.approved_waiver(
        "test-ssh:SSH-2",
        json!({"kind": "group", "name": "web"}),
        "password logins until the bastion migration",
    )
    .await;
    // web-01's run is signed once stored; wait for its attestation.
    let path = format!("/api/v1/agents/{}/attestations", good.id);
    let started = std::time::Instant::now();
    let jti = loop {
        let list = s.get(&path).await;
        if let Some(j) = list
            .as_array()
            .and_then(|a| a.first())
            .and_then(|a| a["jti"].as_str())
        {
            break j.to_owned();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no attestation: {list}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };

    // One agent, through the API with a token.
    let admin = s.admin_token.clone();
    let d = download(
        &s,
        &format!("/api/v1/agents/{}/report?format=pdf", good.id),
        Some(&admin),
        None,
    )
    .await;
    let today = OffsetDateTime::now_utc().date();
    assert_eq!(
        d.disposition,
        format!("attachment; filename=\"rampart-report-web-01-{today}.pdf\"")
    );
    let text = read_pdf(&d, "agent");
    for expected in [
        "Compliance report: host web-01",
        &good.id,
        // SSH-1 fails, SSH-2 passes: 50 %.
        "50.0 %",
        "Failed checks and remediation",
        // The run's own words for its checks (the test's submission names them so).
        "test-ssh / SSH-1 — check SSH-1 Severity unknown · failing on 1 of 1 hosts judged",
        "password logins until the bastion migration",
        "audrey",
        &jti,
        "Evidence",
    ] {
        has(&text, expected);
    }
    // One policy's run only, when asked.
    let d = download(
        &s,
        &format!(
            "/api/v1/agents/{}/report?format=pdf&policy=test-ssh",
            good.id
        ),
        Some(&admin),
        None,
    )
    .await;
    has(
        &read_pdf(&d, "agent-policy"),
        "the newest run of policy test-ssh",
    );
    let failures =
        &text[text.rfind("3. Failed checks").unwrap()..text.rfind("4. Waivers").unwrap()];
    assert!(!failures.contains("SSH-2"), "SSH-2 passes: {failures}");

    // The hostile host's name and evidence are printed as text.
    let d = download(
        &s,
        &format!("/api/v1/agents/{}/report?format=pdf", evil.id),
        Some(&admin),
        None,
    )
    .await;
    let text = read_pdf(&d, "hostile");
    has(&text, &format!("Compliance report: host {HOSTILE}"));
    has(&text, &format!("/etc/ssh/sshd_config:7 — {HOSTILE}"));

    // The fleet as the admin sees it: three hosts; passed web-01 SSH-2 and db-01 both, failed
    // the hostile host's two and web-01's SSH-1: 50 %. SSH-1 fails on 2 of 3, listed first.
    let d = download(&s, "/api/v1/report?format=pdf", Some(&admin), None).await;
    assert_eq!(
        d.disposition,
        format!("attachment; filename=\"rampart-report-fleet-{today}.pdf\"")
    );
    let text = read_pdf(&d, "fleet");
    has(&text, "Compliance report: the fleet");
    has(&text, "Covers: 3 hosts");
    has(&text, "50.0 %");
    let ssh1 = text
        .find(
            "test-ssh / SSH-1 — Root login disabled Severity high · failing on 2 of 3 hosts judged",
        )
        .unwrap_or_else(|| panic!("{text}"));
    let ssh2 = text
        .find("test-ssh / SSH-2 — Password authentication disabled Severity medium · failing on 1 of 3 hosts judged")
        .unwrap_or_else(|| panic!("{text}"));
    assert!(ssh1 < ssh2);
    has(&text, "the evidence of up to 3 failing hosts");
    has(&text, "db-01");
    has(&text, &jti);

    // A viewer limited to web, through the dashboard: the overview links the report of what
    // it shows, and the session downloads it; db-01 is not in it, and db's report is refused.
    let wendy = new_user_session(&s, "wendy", "viewer", &["web"]).await;
    let p = page(&s, "/ui/?group=web", Some(&wendy)).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(
        p.body
            .contains("<a href=\"/api/v1/report?format=pdf&#38;group=web\" download>"),
        "{}",
        p.body
    );
    let d = download(
        &s,
        "/api/v1/report?format=pdf&group=web",
        None,
        Some(&wendy),
    )
    .await;
    assert_eq!(
        d.disposition,
        format!("attachment; filename=\"rampart-report-group-web-{today}.pdf\"")
    );
    let text = read_pdf(&d, "group");
    has(&text, "Compliance report: group web");
    has(&text, "Covers: 2 hosts");
    // Web alone: 1 passed, 3 failed.
    has(&text, "25.0 %");
    assert!(!text.contains("db-01"), "{text}");
    let d = download(&s, "/api/v1/report?format=pdf", None, Some(&wendy)).await;
    let text = read_pdf(&d, "wendy-fleet");
    has(&text, "Covers: 2 hosts");
    assert!(!text.contains("db-01"), "{text}");
    assert_eq!(
        download(&s, "/api/v1/report?format=pdf&group=db", None, Some(&wendy))
            .await
            .status,
        403
    );
    // A result waived on the host (a waiver the agent applied) counts as waived in the fleet's
    // report, not among the results outside the score for other reasons.
    let (st, v) = db_host
        .poster(&s)
        .post(&submission(
            "run-db-0002",
            version,
            &[("SSH-1", Pass), ("SSH-2", rampart_core::Status::Waived)],
            OffsetDateTime::now_utc(),
        ))
        .await;
    assert_eq!(st, 200, "{v}");
    let d = download(&s, "/api/v1/report?format=pdf", Some(&admin), None).await;
    let text = read_pdf(&d, "fleet-waived");
    // The other result outside the score is the seed's one not-applicable result.
    has(&text, "1 waived and 1 not applicable");

    // The agent page links its report.
    let cookie = sign_in(&s, "admin", ADMIN_PASSWORD).await;
    let p = page(&s, &format!("/ui/agents/{}", good.id), Some(&cookie)).await;
    assert!(
        p.body.contains(&format!(
            "<a href=\"/api/v1/agents/{}/report?format=pdf\" download>",
            good.id
        )),
        "{}",
        p.body
    );

    // Refusals name the parameter.
    for (path, status, word) in [
        ("/api/v1/report?format=docx".to_owned(), 400, "format"),
        (
            "/api/v1/report?format=pdf&group=..".to_owned(),
            400,
            "group",
        ),
        (
            "/api/v1/report?format=pdf&label=env".to_owned(),
            400,
            "label",
        ),
        (
            format!("/api/v1/agents/{}/report?format=pdf&policy=nope", good.id),
            404,
            "nope",
        ),
        (
            format!("/api/v1/agents/{}/report?format=docx", good.id),
            400,
            "format",
        ),
        (
            "/api/v1/agents/nobody/report?format=pdf".to_owned(),
            404,
            "agent",
        ),
    ] {
        let (st, v) = s.call(Method::GET, &path, None).await;
        assert_eq!(st, status, "{path}: {v}");
        assert!(
            v["detail"].as_str().unwrap_or_default().contains(word),
            "{path}: {v}"
        );
    }
    s.finish().await;
}
server_test!(pdf_reports);
