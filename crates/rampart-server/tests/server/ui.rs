//! The web dashboard as a browser meets it: sign-in form, session cookie, pages filtered by
//! role and group, hostile agent data escaped, the pages' security headers, sign-out with the
//! CSRF token.

use reqwest::Method;
use serde_json::json;
use tokio::io::AsyncBufReadExt as _;

use super::harness::{ADMIN_PASSWORD, Db, TestAgent, TestServer, submission};
use crate::server_test;

/// A page: status, `Location`, `Content-Security-Policy` and body.
pub(super) struct Page {
    pub(super) status: u16,
    location: String,
    csp: String,
    pub(super) body: String,
}

pub(super) async fn page(s: &TestServer, path: &str, cookie: Option<&str>) -> Page {
    let mut req = s.http.get(s.url(path));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    read(req.send().await.unwrap()).await
}

async fn read(r: reqwest::Response) -> Page {
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (status, location, csp) = (
        r.status().as_u16(),
        header("location"),
        header("content-security-policy"),
    );
    Page {
        status,
        location,
        csp,
        body: r.text().await.unwrap(),
    }
}

/// Posts a form as a browser on this origin does; the response and its `Set-Cookie`.
async fn post_form(
    s: &TestServer,
    path: &str,
    form: &[(&str, &str)],
    cookie: Option<&str>,
    site: &str,
) -> (Page, String) {
    let mut req = s
        .http
        .post(s.url(path))
        .header("sec-fetch-site", site)
        .form(form);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let r = req.send().await.unwrap();
    let set_cookie = r
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (read(r).await, set_cookie)
}

/// Signs in through the form; the cookie to send back.
pub(super) async fn sign_in(s: &TestServer, user: &str, password: &str) -> String {
    let (p, set_cookie) = post_form(
        s,
        "/ui/login",
        &[("user", user), ("password", password)],
        None,
        "same-origin",
    )
    .await;
    assert_eq!((p.status, p.location.as_str()), (303, "/ui/"), "{}", p.body);
    set_cookie.split(';').next().unwrap().to_owned()
}

/// A new user with `role` (limited to `groups` when given), signed in through the form: the
/// one-time password is replaced at once. The cookie to send back.
pub(super) async fn new_user_session(
    s: &TestServer,
    name: &str,
    role: &str,
    groups: &[&str],
) -> String {
    let mut user = json!({"name": name, "role": role});
    if !groups.is_empty() {
        user["groups"] = json!(groups);
    }
    let (st, v) = s.call(Method::POST, "/api/v1/users", Some(user)).await;
    assert_eq!(st, 201, "{v}");
    let once = v["one_time_password"].as_str().unwrap();
    let (p, cookie) = post_form(
        s,
        "/ui/login",
        &[
            ("user", name),
            ("password", once),
            ("new_password", "a long enough new passphrase"),
        ],
        None,
        "same-origin",
    )
    .await;
    assert_eq!(p.status, 303, "{}", p.body);
    cookie.split(';').next().unwrap().to_owned()
}

/// The value of the hidden CSRF field of a page's sign-out form.
fn csrf_of(body: &str) -> String {
    let at = body
        .find("name=\"csrf\" value=\"")
        .expect("a sign-out form")
        + 19;
    body[at..at + body[at..].find('"').unwrap()].to_owned()
}

pub(super) const HOSTILE: &str = "<script>alert('pwned')</script>";

/// Two agents in group web, one with a hostile name and OS, each with a run of the test
/// policy: 1 passed, 3 failed, 1 not applicable between them; SSH-1 fails on both.
pub(super) async fn seed(s: &TestServer) -> (TestAgent, TestAgent) {
    let token = s.token("web", 2).await;
    let evil = TestAgent::enrol_as(s, &token, HOSTILE, HOSTILE)
        .await
        .unwrap();
    let good = TestAgent::enrol(s, &token).await.unwrap();
    let version = s
        .push_policy(super::harness::POLICY_V1, "web", "0 */6 * * *")
        .await;
    let now = time::OffsetDateTime::now_utc();
    use rampart_core::Status::{Fail, NotApplicable, Pass};
    for (agent, run, statuses) in [
        (
            &evil,
            "run-evil-0001",
            &[("SSH-1", Fail), ("SSH-2", Fail)][..],
        ),
        (
            &good,
            "run-good-0001",
            &[("SSH-1", Fail), ("SSH-2", Pass), ("SSH-3", NotApplicable)][..],
        ),
    ] {
        let mut sub = submission(run, version, statuses, now);
        if agent.id == evil.id {
            // What the hostile host "saw": markup in a file line.
            sub.report.policies[0].checks[0].evidence = vec![rampart_core::Evidence {
                rule: "f:/etc/ssh/sshd_config -> r:^PermitRootLogin".into(),
                verdict: rampart_core::RuleVerdict::Found,
                observations: vec![rampart_core::Observation {
                    kind: rampart_core::ObservationKind::File,
                    target: "/etc/ssh/sshd_config".into(),
                    line: Some(7),
                    text: Some(HOSTILE.into()),
                    detail: None,
                }],
            }];
            sub.report.refresh();
        }
        let (st, v) = agent.poster(s).post(&sub).await;
        assert_eq!(st, 200, "{v}");
    }
    (evil, good)
}

/// Sign-in, the overview, the agent list and page with hostile data, sign-out.
async fn sign_in_overview_and_sign_out(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    // No session: every page sends the browser to the form.
    for path in ["/ui/", "/ui/agents", "/ui/agents/x"] {
        let p = page(&s, path, None).await;
        assert_eq!(
            (p.status, p.location.as_str()),
            (303, "/ui/login"),
            "{path}"
        );
    }
    let form = page(&s, "/ui/login", None).await;
    assert_eq!(form.status, 200);
    assert!(
        form.body
            .contains("<form method=\"post\" action=\"/ui/login\">")
    );
    assert_eq!(
        form.csp,
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    let css = s
        .http
        .get(s.url("/ui/static/rampart.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");

    // A wrong password, and a post from another site (even with the right password).
    let (p, cookie) = post_form(
        &s,
        "/ui/login",
        &[("user", "admin"), ("password", "not it")],
        None,
        "same-origin",
    )
    .await;
    assert_eq!(p.status, 401);
    assert!(p.body.contains("The user name or the password is wrong."));
    assert!(
        p.body.contains("value=\"admin\""),
        "the name stays filled in"
    );
    assert!(cookie.is_empty());
    let (p, cookie) = post_form(
        &s,
        "/ui/login",
        &[("user", "admin"), ("password", ADMIN_PASSWORD)],
        None,
        "cross-site",
    )
    .await;
    assert_eq!(p.status, 403);
    assert!(cookie.is_empty());

    let cookie = sign_in(&s, "admin", ADMIN_PASSWORD).await;
    assert!(cookie.starts_with("__Host-rampart_session="), "{cookie}");

    // An empty fleet.
    let p = page(&s, "/ui/", Some(&cookie)).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("No results stored yet."));

    let (evil, good) = seed(&s).await;

    let p = page(&s, "/ui/", Some(&cookie)).await;
    assert_eq!(p.status, 200);
    // test-ssh over both hosts: 1 passed, 3 failed, 1 not applicable: 25 %.
    assert!(
        p.body.contains("<th scope=\"row\">test-ssh</th>"),
        "{}",
        p.body
    );
    assert!(
        p.body.contains("<td class=\"num\">25.0 %</td>"),
        "{}",
        p.body
    );
    assert!(
        p.body.contains("<span class=\"counts\">1 / 3 / 1</span>"),
        "{}",
        p.body
    );
    assert!(
        p.body
            .contains("aria-label=\"1 passed, 3 failed, 1 other\"")
    );
    // SSH-1 fails on both hosts, first in the top list; both are new today.
    let top = p.body.find("id=\"top-h\"").unwrap();
    assert!(p.body[top..].contains(
        "<th scope=\"row\"><a href=\"/ui/checks/test-ssh/SSH-1\">SSH-1</a></th><td class=\"num\">2</td>"
    ));
    assert!(p.body.contains(
        "<a href=\"/ui/checks/test-ssh/SSH-1\"><strong>SSH-1</strong></a> of test-ssh newly failing on 2 hosts"
    ));
    assert!(p.body.contains("<span class=\"n\">2</span> enrolled"));
    assert!(p.body.contains("<span class=\"n\">2</span> online"));
    // The hostile OS is an escaped filter choice, never markup.
    assert!(!p.body.contains(HOSTILE));
    assert!(
        p.body
            .contains("&#60;script&#62;alert(&#39;pwned&#39;)&#60;/script&#62;"),
        "{}",
        p.body
    );

    // Filtering by the other OS leaves the good host only.
    let p = page(&s, "/ui/?os=Debian+GNU%2FLinux+12", Some(&cookie)).await;
    assert!(
        p.body.contains("<span class=\"counts\">1 / 1 / 1</span>"),
        "{}",
        p.body
    );
    assert!(
        p.body
            .contains("<option value=\"Debian GNU/Linux 12\" selected>")
    );
    // A bad filter is a page saying what is wrong.
    let p = page(&s, "/ui/?group=..%2Fetc", Some(&cookie)).await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("group"), "{}", p.body);

    let p = page(&s, "/ui/agents", Some(&cookie)).await;
    assert_eq!(p.status, 200);
    assert!(!p.body.contains(HOSTILE));
    assert!(p.body.contains(&format!(
        "<a href=\"/ui/agents/{}\">&#60;script&#62;",
        evil.id
    )));
    assert!(
        p.body
            .contains(&format!("<a href=\"/ui/agents/{}\">web-01</a>", good.id))
    );

    let p = page(&s, &format!("/ui/agents/{}", evil.id), Some(&cookie)).await;
    assert_eq!(p.status, 200);
    assert!(!p.body.contains(HOSTILE));
    assert!(p.body.contains("<title>&#60;script&#62;"));
    assert!(p.body.contains("<code>run-evil-0001</code>"));
    assert!(p.body.contains(
        "<a href=\"/ui/checks/test-ssh/SSH-2\">SSH-2</a></th><td><span class=\"status fail\">fail</span>"
    ));

    // One check across the fleet: both hosts fail it, the hostile one's evidence is text.
    let p = page(&s, "/ui/checks/test-ssh/SSH-1", Some(&cookie)).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(
        p.body.contains("<span class=\"n\">2</span> failing"),
        "{}",
        p.body
    );
    assert!(p.body.contains("<span class=\"n\">0</span> passing"));
    assert!(!p.body.contains(HOSTILE));
    assert!(
        p.body
            .contains("<code>/etc/ssh/sshd_config:7: &#60;script&#62;"),
        "{}",
        p.body
    );
    assert!(p.body.contains("<strong>found</strong>"));
    assert!(p.body.contains(
        "<a href=\"/ui/waivers?check=test-ssh%3ASSH-1#request\">Ask for a waiver of this check</a>"
    ));
    let p = page(&s, "/ui/checks/test-ssh/SSH-2?status=pass", Some(&cookie)).await;
    assert!(
        p.body
            .contains(&format!("<a href=\"/ui/agents/{}\">web-01</a>", good.id)),
        "{}",
        p.body
    );
    assert!(!p.body.contains(&format!("/ui/agents/{}", evil.id)));
    assert!(p.body.contains("<option value=\"pass\" selected>"));
    // The counts cover the fleet whatever the status filter; the list says what it shows.
    assert!(
        p.body.contains("<span class=\"n\">1</span> failing"),
        "{}",
        p.body
    );
    assert!(p.body.contains("Hosts 1 to 1 of 1."), "{}", p.body);
    assert!(!p.body.contains("rel=\"next\""));
    // A page past the end shows no host and links back, keeping the filters.
    let p = page(
        &s,
        "/ui/checks/test-ssh/SSH-2?status=pass&page=2",
        Some(&cookie),
    )
    .await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("No host matches."));
    assert!(
        p.body.contains("page=1\" rel=\"prev\">Previous hosts</a>"),
        "{}",
        p.body
    );
    assert!(p.body.contains("?status=pass&"), "{}", p.body);
    for bad in ["0", "x", "50001", "-1"] {
        let p = page(
            &s,
            &format!("/ui/checks/test-ssh/SSH-2?page={bad}"),
            Some(&cookie),
        )
        .await;
        assert_eq!(p.status, 400, "page={bad}");
        assert!(
            p.body.contains("page: a number from 1 to 50000"),
            "{}",
            p.body
        );
    }
    assert_eq!(
        page(&s, "/ui/checks/test-ssh/SSH-2?status=bogus", Some(&cookie))
            .await
            .status,
        400
    );
    // The run's attestation, once the issuer signed it, with its bundle to download; no
    // intel match.
    let jti = loop {
        let v = s
            .get(&format!("/api/v1/agents/{}/attestations", evil.id))
            .await;
        if let Some(jti) = v[0]["jti"].as_str() {
            break jti.to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let p = page(&s, &format!("/ui/agents/{}", evil.id), Some(&cookie)).await;
    let bundle = format!("/api/v1/agents/{}/attestations/{jti}/bundle", evil.id);
    assert!(
        p.body.contains(&format!(
            "<a href=\"{bundle}\" download=\"attestation-{jti}.json\">"
        )),
        "{}",
        p.body
    );
    assert!(
        p.body
            .contains("<td>noncompliant</td><td class=\"num\">0.0 %</td>"),
        "{}",
        p.body
    );
    assert!(p.body.contains("<td>current</td>"));
    assert!(
        p.body
            .contains("Nothing this agent reported matches a known-bad indicator.")
    );
    let r = s
        .http
        .get(s.url(&bundle))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: serde_json::Value = r.json().await.unwrap();
    assert!(b["attestation"].as_str().unwrap().starts_with("ey"));
    let p = page(&s, "/ui/no/such/page", Some(&cookie)).await;
    assert_eq!(p.status, 404);
    assert!(p.body.contains("There is no such page.") && p.body.contains("Sign out"));
    let p = page(&s, "/ui/no/such/page", None).await;
    assert_eq!(p.status, 404);
    assert!(p.body.contains("There is no such page.") && !p.body.contains("Sign out"));
    let p = page(&s, "/ui/agents/no-such-agent", Some(&cookie)).await;
    assert_eq!(p.status, 404);
    assert!(
        p.body.contains("Sign out"),
        "the error page keeps the navigation"
    );

    // Sign-out needs the page's CSRF token.
    let (p, _) = post_form(
        &s,
        "/ui/logout",
        &[("csrf", "forged")],
        Some(&cookie),
        "same-origin",
    )
    .await;
    assert_eq!(p.status, 403);
    assert_eq!(page(&s, "/ui/", Some(&cookie)).await.status, 200);
    let csrf = csrf_of(&page(&s, "/ui/", Some(&cookie)).await.body);
    let (p, cleared) = post_form(
        &s,
        "/ui/logout",
        &[("csrf", &csrf)],
        Some(&cookie),
        "same-origin",
    )
    .await;
    assert_eq!((p.status, p.location.as_str()), (303, "/ui/login"));
    assert!(cleared.starts_with("__Host-rampart_session=;"), "{cleared}");
    let p = page(&s, "/ui/", Some(&cookie)).await;
    assert_eq!((p.status, p.location.as_str()), (303, "/ui/login"));
    s.finish().await;
}
server_test!(sign_in_overview_and_sign_out);

/// A one-time password is replaced at the first sign-in; a viewer limited to one group sees
/// that group only, and an agent of another group is as absent as a missing one.
async fn roles_and_groups(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let (st, v) = s
        .call(
            Method::POST,
            "/api/v1/users",
            Some(json!({"name": "vera", "role": "viewer", "groups": ["db"]})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let once = v["one_time_password"].as_str().unwrap().to_owned();
    // The one-time password asks for a new one, then signs in.
    let (p, cookie) = post_form(
        &s,
        "/ui/login",
        &[("user", "vera"), ("password", &once)],
        None,
        "same-origin",
    )
    .await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("one-time password: choose a new one"));
    assert!(p.body.contains("id=\"new_password\""));
    assert!(cookie.is_empty());
    let new = "a long enough new passphrase";
    let (p, cookie) = post_form(
        &s,
        "/ui/login",
        &[("user", "vera"), ("password", &once), ("new_password", new)],
        None,
        "same-origin",
    )
    .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let vera = cookie.split(';').next().unwrap().to_owned();

    let web = TestAgent::enrol(&s, &s.token("web", 1).await)
        .await
        .unwrap();
    let db_agent = TestAgent::enrol_as(&s, &s.token("db", 1).await, "db-01", "Debian GNU/Linux 12")
        .await
        .unwrap();
    let p = page(&s, "/ui/agents", Some(&vera)).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("db-01"));
    assert!(!p.body.contains("web-01"), "{}", p.body);
    let p = page(&s, "/ui/", Some(&vera)).await;
    assert!(
        p.body.contains("<span class=\"n\">1</span> enrolled"),
        "{}",
        p.body
    );
    assert!(p.body.contains("<option value=\"db\""));
    assert!(!p.body.contains("<option value=\"web\""));
    assert_eq!(page(&s, "/ui/?group=web", Some(&vera)).await.status, 403);
    assert_eq!(
        page(&s, &format!("/ui/agents/{}", web.id), Some(&vera))
            .await
            .status,
        404
    );
    assert_eq!(
        page(&s, &format!("/ui/agents/{}", db_agent.id), Some(&vera))
            .await
            .status,
        200
    );
    // A viewer's navigation: the fleet and the agents, nothing an admin has besides.
    let admin = sign_in(&s, "admin", ADMIN_PASSWORD).await;
    let p = page(&s, "/ui/agents", Some(&admin)).await;
    assert!(p.body.contains("web-01") && p.body.contains("db-01"));
    s.finish().await;
}
server_test!(roles_and_groups);

/// The dashboard in a real browser (Debian's Chromium driven by playwright-core): sign in by
/// typing and Enter, open every page, no console error and no failed request (the strict
/// policy would report a blocked resource as one), no serious or critical axe-core finding, a
/// screenshot of each page (kept in `RAMPART_UI_SCREENSHOTS` when set, to look at).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser() {
    super::harness::bounded(async {
        let s = TestServer::start(Db::Sqlite).await.unwrap();
        let (evil, _good) = seed(&s).await;
        second_run(&s, &evil).await;
        super::intel::upload_feodo(&s).await;
        // A waiver someone else asked for, for the browser's user (admin) to approve.
        let olga = new_user_session(&s, "olga", "operator", &[]).await;
        let csrf = csrf_of(&page(&s, "/ui/waivers", Some(&olga)).await.body);
        let (p, _) = post_form(
            &s,
            "/ui/waivers",
            &[
                ("csrf", &csrf),
                ("check", "test-ssh:SSH-1"),
                ("scope", "fleet"),
                ("until", &day(60)),
                ("justification", "legacy jump host, replaced in Q1"),
            ],
            Some(&olga),
            "same-origin",
        )
        .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let scratch = tempfile::tempdir().unwrap();
        let out = std::env::var_os("RAMPART_UI_SCREENSHOTS")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| scratch.path().to_path_buf());
        std::fs::create_dir_all(&out).unwrap();
        let pages = [
            ("fleet", "/ui/".to_owned()),
            ("agents", "/ui/agents".to_owned()),
            ("agent", format!("/ui/agents/{}", evil.id)),
            ("check", "/ui/checks/test-ssh/SSH-1".to_owned()),
            ("run", "/ui/runs/run-evil-0001".to_owned()),
            (
                "diff",
                "/ui/diff?from=run-evil-0001&to=run-evil-0002".to_owned(),
            ),
            ("waivers", "/ui/waivers".to_owned()),
            ("tokens", "/ui/tokens".to_owned()),
            ("users", "/ui/users".to_owned()),
            ("policies", "/ui/policies".to_owned()),
            ("intel", "/ui/intel".to_owned()),
            ("lookup", "/ui/intel/lookup?value=67.213.75.205".to_owned()),
            ("audit", "/ui/audit?verify=1".to_owned()),
        ];
        let job = json!({
            "base": s.api_url,
            "user": "admin",
            "password": ADMIN_PASSWORD,
            "pages": pages.iter().map(|(n, p)| json!({"name": n, "path": p})).collect::<Vec<_>>(),
            "out": out,
            "approve": {"check": "test-ssh:SSH-1", "note": "accepted until the Q1 rebuild"},
            "token_group": "web",
            "policy": {
                "file_name": "ssh-v2.yml",
                "content": super::harness::POLICY_V1.replace("Root login disabled", "Root login is disabled"),
                "group": "web",
                "schedule": "0 0 1 1 *",
                "agent": evil.id,
            },
        });
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ui/browse.mjs");
        let mut node = tokio::process::Command::new("node")
            .arg(script)
            .arg(job.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("node (scripts/setup-test-deps.sh installs Chromium and playwright-core)");
        // The browser says when it watches the agent's page after "Scan now": the agent then
        // runs, and the page must show the run without a reload.
        let mut lines =
            tokio::io::BufReader::new(node.stderr.take().unwrap()).lines();
        let mut stderr = String::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            stderr.push_str(&line);
            stderr.push('\n');
            if line == "rampart: waiting for a run" {
                evil.run_once().await.unwrap();
            }
        }
        let run = node.wait_with_output().await.unwrap();
        assert!(run.status.success(), "the browser run failed: {stderr}");
        let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        assert_eq!(report["login_url"], "/ui/login", "{report}");
        assert_eq!(report["signed_in"], true);
        assert_eq!(report["console_errors"], json!([]), "{report}");
        assert_eq!(report["failed_requests"], json!([]), "{report}");
        let seen = report["pages"].as_array().unwrap();
        let names: Vec<_> = pages
            .iter()
            .map(|(n, _)| *n)
            .chain(["waivers-approved", "token-made", "policy", "agent-live"])
            .collect();
        assert_eq!(seen.len(), names.len());
        for (p, name) in seen.iter().zip(&names) {
            let made = *name == "token-made";
            assert_eq!(p["status"], if made { 201 } else { 200 }, "{p}");
            let grave: Vec<_> = p["violations"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
                .collect();
            assert!(grave.is_empty(), "{name}: {grave:?}");
            assert!(out.join(format!("{name}.png")).metadata().unwrap().len() > 1000);
        }
        assert_eq!(seen[0]["h1"], "Fleet overview");
        // The hostile host name is text in the title, never a script that ran.
        assert_eq!(seen[2]["h1"], HOSTILE);
        assert_eq!(seen[2]["title"], format!("{HOSTILE} · Rampart"));
        // The waiver approved by clicking, as the API now sees it.
        assert_eq!(
            report["approved"],
            "Approved: runs that start from now until its last day are judged with it."
        );
        let w = &s.get("/api/v1/waivers").await[0];
        assert_eq!(
            (w["state"].as_str(), w["decided_by"].as_str()),
            (Some("approved"), Some("admin"))
        );
        assert_eq!(w["decision_note"], "accepted until the Q1 rebuild");
        // The token the page showed once enrols an agent into web.
        let token = report["token"].as_str().unwrap();
        let agent = TestAgent::enrol_as(&s, token, "web-09", "Debian GNU/Linux 12")
            .await
            .unwrap();
        assert_eq!(
            s.get(&format!("/api/v1/agents/{}", agent.id)).await["group"],
            "web"
        );
        s.finish().await;
    })
    .await;
}

/// The day `days` from today (UTC), as a date field sends it.
fn day(days: i64) -> String {
    (time::OffsetDateTime::now_utc().date() + time::Duration::days(days)).to_string()
}

/// The waivers inbox: an operator asks (refused with the form kept when wrong), cannot decide
/// on the request; an auditor approves and denies with a note, with the CSRF token and from
/// this origin only; expiring soon, in force, denied; a viewer of another group does not see
/// a group's waiver.
async fn waivers_inbox(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let olga = new_user_session(&s, "olga", "operator", &[]).await;
    let audrey = new_user_session(&s, "audrey", "auditor", &[]).await;
    let vic = new_user_session(&s, "vic", "viewer", &["db"]).await;

    let p = page(&s, "/ui/waivers", Some(&olga)).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("No request waits for a decision."));
    assert!(
        p.body
            .contains("<form class=\"stacked\" method=\"post\" action=\"/ui/waivers\">")
    );
    assert!(
        p.body
            .contains("<a href=\"/ui/waivers\" aria-current=\"page\">Waivers</a>")
    );
    // A check's page links here with the form filled in.
    let p = page(
        &s,
        "/ui/waivers?check=test-ssh%3ASSH-1&scope=group&name=web",
        Some(&olga),
    )
    .await;
    assert!(
        p.body.contains(
            "id=\"check\" name=\"check\" required maxlength=\"256\" value=\"test-ssh:SSH-1\""
        ),
        "{}",
        p.body
    );
    assert!(
        p.body
            .contains("<option value=\"group\" selected>one group</option>")
    );

    let csrf = csrf_of(&p.body);
    let ask = |check: &'static str, scope: &'static str, name: &'static str, until: String| {
        let csrf = csrf.clone();
        let olga = olga.clone();
        let s = &s;
        async move {
            post_form(
                s,
                "/ui/waivers",
                &[
                    ("csrf", &csrf),
                    ("check", check),
                    ("scope", scope),
                    ("name", name),
                    ("until", &until),
                    ("justification", HOSTILE),
                ],
                Some(&olga),
                "same-origin",
            )
            .await
            .0
        }
    };
    // Refused: a past day, a group scope without a group. The form keeps what was typed.
    let p = ask("test-ssh:SSH-1", "fleet", "", day(-1)).await;
    assert_eq!(p.status, 422, "{}", p.body);
    assert!(
        p.body
            .contains("<p class=\"error\" role=\"alert\">until: from today to 366 days ahead"),
        "{}",
        p.body
    );
    assert!(!p.body.contains(HOSTILE));
    assert!(
        p.body.contains(
            "rows=\"3\">&#60;script&#62;alert(&#39;pwned&#39;)&#60;/script&#62;</textarea>"
        ),
        "{}",
        p.body
    );
    assert!(p.body.contains(&format!("value=\"{}\"", day(-1))));
    let p = ask("test-ssh:SSH-1", "group", "", day(30)).await;
    assert_eq!(p.status, 422);
    assert!(
        p.body.contains("name: the group the waiver covers"),
        "{}",
        p.body
    );
    let p = ask("", "fleet", "", day(30)).await;
    assert_eq!(p.status, 422);
    // Without the CSRF token, or from another site: refused before anything is stored.
    let (p, _) = post_form(
        &s,
        "/ui/waivers",
        &[
            ("check", "test-ssh:SSH-1"),
            ("scope", "fleet"),
            ("until", &day(30)),
            ("justification", "x"),
        ],
        Some(&olga),
        "same-origin",
    )
    .await;
    assert_eq!(p.status, 403);
    let (p, _) = post_form(
        &s,
        "/ui/waivers",
        &[
            ("csrf", &csrf),
            ("check", "test-ssh:SSH-1"),
            ("scope", "fleet"),
            ("until", &day(30)),
            ("justification", "x"),
        ],
        Some(&olga),
        "cross-site",
    )
    .await;
    assert_eq!(p.status, 403);
    assert_eq!(s.get("/api/v1/waivers").await, json!([]));

    // Three requests: the fleet for 30 days, the fleet for 3, group web for 10.
    for (scope, name, days) in [("fleet", "", 30), ("fleet", "", 3), ("group", "web", 10)] {
        let p = ask("test-ssh:SSH-1", scope, name, day(days)).await;
        assert_eq!(
            (p.status, p.location.as_str()),
            (303, "/ui/waivers?done=requested"),
            "{}",
            p.body
        );
    }
    let stored = s.get("/api/v1/waivers").await;
    let id_until = |until: String| {
        stored
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["expires_on"] == until.as_str())
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (long, short, web) = (id_until(day(30)), id_until(day(3)), id_until(day(10)));
    let p = page(&s, "/ui/waivers?done=requested", Some(&olga)).await;
    assert!(
        p.body
            .contains("<p class=\"done\" role=\"status\">Your request is recorded")
    );
    assert!(p.body.contains("Waiting for a decision (3)"));
    assert_eq!(
        p.body
            .matches("Your request: someone else decides.")
            .count(),
        3
    );
    assert!(
        !p.body.contains("/decide\""),
        "an operator decides on nothing"
    );
    assert!(!p.body.contains(HOSTILE));
    assert!(
        p.body
            .contains("<a href=\"/ui/checks/test-ssh/SSH-1\">test-ssh:SSH-1</a>")
    );
    // Deciding anyway: the role may not.
    let (p, _) = post_form(
        &s,
        &format!("/ui/waivers/{long}/decide"),
        &[("csrf", &csrf), ("decision", "approve")],
        Some(&olga),
        "same-origin",
    )
    .await;
    assert_eq!(p.status, 403);

    // The auditor: a decision form per request, no request form.
    let p = page(&s, "/ui/waivers", Some(&audrey)).await;
    assert!(
        p.body
            .contains(&format!("action=\"/ui/waivers/{long}/decide\"")),
        "{}",
        p.body
    );
    assert!(!p.body.contains("action=\"/ui/waivers\">"));
    let audrey_csrf = csrf_of(&p.body);
    let decide = |id: String, decision: &'static str, csrf: String, site: &'static str| {
        let audrey = audrey.clone();
        let s = &s;
        async move {
            post_form(
                s,
                &format!("/ui/waivers/{id}/decide"),
                &[
                    ("csrf", &csrf),
                    ("decision", decision),
                    ("note", "until the <b>fix</b> ships"),
                ],
                Some(&audrey),
                site,
            )
            .await
            .0
        }
    };
    assert_eq!(
        decide(long.clone(), "approve", "forged".into(), "same-origin")
            .await
            .status,
        403
    );
    assert_eq!(
        decide(long.clone(), "approve", audrey_csrf.clone(), "cross-site")
            .await
            .status,
        403
    );
    assert_eq!(
        decide(long.clone(), "maybe", audrey_csrf.clone(), "same-origin")
            .await
            .status,
        400
    );
    assert_eq!(
        s.get(&format!("/api/v1/waivers/{long}")).await["state"],
        "pending"
    );
    for (id, decision, to) in [
        (&long, "approve", "/ui/waivers?done=approved"),
        (&short, "approve", "/ui/waivers?done=approved"),
        (&web, "deny", "/ui/waivers?done=denied"),
    ] {
        let p = decide(id.clone(), decision, audrey_csrf.clone(), "same-origin").await;
        assert_eq!((p.status, p.location.as_str()), (303, to), "{}", p.body);
    }
    let w = s.get(&format!("/api/v1/waivers/{long}")).await;
    assert_eq!(
        (w["state"].as_str(), w["decided_by"].as_str()),
        (Some("approved"), Some("audrey"))
    );
    assert_eq!(w["decision_note"], "until the <b>fix</b> ships");
    assert_eq!(
        s.get(&format!("/api/v1/waivers/{web}")).await["state"],
        "denied"
    );
    // Deciding twice: the page says so.
    let p = decide(long.clone(), "deny", audrey_csrf.clone(), "same-origin").await;
    assert_eq!(p.status, 409);
    assert!(
        p.body
            .contains(&format!("waiver {long} was approved already")),
        "{}",
        p.body
    );

    let p = page(&s, "/ui/waivers", Some(&audrey)).await;
    assert!(p.body.contains("Waiting for a decision (0)"));
    assert!(p.body.contains("Expiring within 14 days (1)"), "{}", p.body);
    assert!(p.body.contains(&format!("<td>{}</td>", day(3))));
    assert!(p.body.contains("<td class=\"num\">3</td>"));
    assert!(p.body.contains("In force (2)"));
    assert!(p.body.contains("Denied and expired (1)"));
    assert!(p.body.contains("<td>denied</td>"));
    assert!(
        p.body
            .contains("“until the &#60;b&#62;fix&#60;/b&#62; ships”")
    );
    // A viewer limited to group db sees the fleet's waivers, not group web's; decides nothing.
    let p = page(&s, "/ui/waivers", Some(&vic)).await;
    assert_eq!(p.status, 200);
    assert!(
        p.body.contains("In force (2)") && p.body.contains("Denied and expired (0)"),
        "{}",
        p.body
    );
    assert!(!p.body.contains("action=\"/ui/waivers"));
    // A check's page links the request form for who may ask only.
    let link = "Ask for a waiver of this check";
    let p = page(&s, "/ui/checks/test-ssh/SSH-1", Some(&vic)).await;
    assert_eq!(p.status, 200);
    assert!(!p.body.contains(link));
    assert!(
        page(&s, "/ui/checks/test-ssh/SSH-1", Some(&olga))
            .await
            .body
            .contains(link)
    );
    s.finish().await;
}
server_test!(waivers_inbox);

/// Enrolment tokens: made through the form and shown once, used by an agent, listed with
/// their use and labels (escaped), revoked; refused inputs keep the form; a role or group
/// without the right gets neither the form nor the action.
async fn enrolment_tokens(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let admin = sign_in(&s, "admin", ADMIN_PASSWORD).await;
    let p = page(&s, "/ui/tokens", Some(&admin)).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("No enrolment token."));
    let csrf = csrf_of(&p.body);
    let make =
        |group: &'static str, labels: &'static str, ttl: &'static str, uses: &'static str| {
            let (csrf, admin, s) = (csrf.clone(), admin.clone(), &s);
            async move {
                post_form(
                    s,
                    "/ui/tokens",
                    &[
                        ("csrf", &csrf),
                        ("group", group),
                        ("labels", labels),
                        ("ttl_secs", ttl),
                        ("max_uses", uses),
                    ],
                    Some(&admin),
                    "same-origin",
                )
                .await
                .0
            }
        };
    for (group, labels, ttl, uses, says) in [
        ("../etc", "", "3600", "1", "group"),
        (
            "web",
            "env",
            "3600",
            "1",
            "labels: line 1: key=value, not &#34;env&#34;",
        ),
        (
            "web",
            "",
            "99",
            "1",
            "ttl_secs: one of the lifetimes offered",
        ),
        ("web", "", "3600", "0", "max_uses: a whole number from 1"),
    ] {
        let p = make(group, labels, ttl, uses).await;
        assert_eq!(p.status, 400, "{group} {labels} {ttl} {uses}: {}", p.body);
        assert!(p.body.contains(says), "{says}: {}", p.body);
    }
    assert_eq!(s.get("/api/v1/tokens").await, json!([]));

    let p = make(
        "web",
        "env=prod\nowner=<script>alert('pwned')</script>",
        "86400",
        "2",
    )
    .await;
    assert_eq!(p.status, 201, "{}", p.body);
    let opening = "<textarea id=\"new-token\" readonly rows=\"5\">";
    let at = p.body.find(opening).unwrap() + opening.len();
    let token = p.body[at..at + p.body[at..].find('<').unwrap()].to_owned();
    assert!(token.starts_with("ey"), "{token}");
    assert!(p.body.contains(&format!(
        "rampart agent enroll --server {} --token-file FILE",
        s.api_url
    )));
    let agent = TestAgent::enrol(&s, &token).await.unwrap();
    let listed = s.get("/api/v1/tokens").await;
    let jti = listed[0]["jti"].as_str().unwrap().to_owned();
    assert_eq!(listed[0]["labels"]["owner"], HOSTILE);
    let p = page(&s, "/ui/tokens", Some(&admin)).await;
    assert!(!p.body.contains(&token), "the token is shown once only");
    assert!(!p.body.contains(HOSTILE));
    assert!(
        p.body
            .contains("<span class=\"label\">owner=&#60;script&#62;")
    );
    assert!(
        p.body.contains("<td class=\"num\">1 / 2</td>"),
        "{}",
        p.body
    );
    assert!(
        p.body
            .contains("<span class=\"token active\">active</span>")
    );
    assert!(
        p.body
            .contains(&format!("action=\"/ui/tokens/{jti}/revoke\""))
    );
    assert!(s.get(&format!("/api/v1/agents/{}", agent.id)).await["labels"]["env"] == "prod");

    // An operator of group db: no web token listed, none made for web, web's not revoked.
    let otto = new_user_session(&s, "otto", "operator", &["db"]).await;
    let p = page(&s, "/ui/tokens", Some(&otto)).await;
    assert!(p.body.contains("No enrolment token."), "{}", p.body);
    let otto_csrf = csrf_of(&p.body);
    let (p, _) = post_form(
        &s,
        "/ui/tokens",
        &[
            ("csrf", &otto_csrf),
            ("group", "web"),
            ("ttl_secs", "3600"),
            ("max_uses", "1"),
        ],
        Some(&otto),
        "same-origin",
    )
    .await;
    assert_eq!(p.status, 403, "{}", p.body);
    let (p, _) = post_form(
        &s,
        &format!("/ui/tokens/{jti}/revoke"),
        &[("csrf", &otto_csrf)],
        Some(&otto),
        "same-origin",
    )
    .await;
    assert_eq!(p.status, 404, "{}", p.body);
    // A viewer: no section, no page.
    let vic = new_user_session(&s, "vic", "viewer", &[]).await;
    let p = page(&s, "/ui/", Some(&vic)).await;
    assert!(!p.body.contains("href=\"/ui/tokens\""));
    assert_eq!(page(&s, "/ui/tokens", Some(&vic)).await.status, 403);

    // Revoked: listed so, no button, and the second use is refused.
    let (p, _) = post_form(
        &s,
        &format!("/ui/tokens/{jti}/revoke"),
        &[("csrf", &csrf)],
        Some(&admin),
        "same-origin",
    )
    .await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/ui/tokens?done=revoked"),
        "{}",
        p.body
    );
    let p = page(&s, "/ui/tokens?done=revoked", Some(&admin)).await;
    assert!(p.body.contains("Revoked: the token enrols no more agents."));
    assert!(
        p.body
            .contains("<span class=\"token revoked\">revoked</span>")
    );
    assert!(!p.body.contains("/revoke\""));
    assert!(TestAgent::enrol(&s, &token).await.is_err());
    s.finish().await;
}
server_test!(enrolment_tokens);

/// The audit log page: search by action prefix, actor, outcome and day, a hostile user name
/// as text, the whole log verified intact, then the same verification catching an entry
/// edited in the database; a role or a group-limited grant without the whole log gets no
/// section.
async fn audit_log(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let (evil, _) = seed(&s).await;
    // A failed sign-in naming a hostile user.
    let (p, _) = post_form(
        &s,
        "/ui/login",
        &[("user", HOSTILE), ("password", "x")],
        None,
        "same-origin",
    )
    .await;
    assert_eq!(p.status, 401);
    let admin = sign_in(&s, "admin", ADMIN_PASSWORD).await;
    // The run's attestation is anchored: a signed checkpoint covers the log by then.
    while s
        .get(&format!("/api/v1/agents/{}/attestations", evil.id))
        .await[0]["jti"]
        .is_null()
    {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let p = page(&s, "/ui/audit", Some(&admin)).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(
        p.body
            .contains("<a href=\"/ui/audit\" aria-current=\"page\">Audit</a>")
    );
    assert!(
        p.body.contains("the latest signed checkpoint covers"),
        "{}",
        p.body
    );
    assert!(p.body.contains("<th scope=\"row\">session.start</th>"));
    assert!(
        p.body
            .contains("<th scope=\"row\">enrolment_token.create</th>")
    );
    assert!(!p.body.contains(HOSTILE));
    assert!(p.body.contains("&#60;script&#62;alert("), "{}", p.body);

    let p = page(&s, "/ui/audit?action=session.*&actor=admin", Some(&admin)).await;
    assert!(p.body.contains("<th scope=\"row\">session.start</th>"));
    assert!(
        !p.body
            .contains("<th scope=\"row\">enrolment_token.create</th>")
    );
    assert!(
        p.body
            .contains("id=\"action\" name=\"action\" maxlength=\"256\" value=\"session.*\"")
    );
    let p = page(&s, "/ui/audit?outcome=failure", Some(&admin)).await;
    assert!(
        p.body
            .contains("<span class=\"outcome failure\">failure</span>"),
        "{}",
        p.body
    );
    assert!(!p.body.contains("<span class=\"outcome success\">"));
    assert!(p.body.contains("<option value=\"failure\" selected>"));
    let today = day(0);
    let p = page(
        &s,
        &format!("/ui/audit?since={today}&until={today}"),
        Some(&admin),
    )
    .await;
    assert!(p.body.contains("session.start"));
    let p = page(&s, &format!("/ui/audit?until={}", day(-1)), Some(&admin)).await;
    assert!(p.body.contains("No entry matches."), "{}", p.body);
    for bad in ["since=yesterday", "outcome=maybe", "before=x"] {
        assert_eq!(
            page(&s, &format!("/ui/audit?{bad}"), Some(&admin))
                .await
                .status,
            400,
            "{bad}"
        );
    }

    let p = page(&s, "/ui/audit?verify=1", Some(&admin)).await;
    assert_eq!(p.status, 200);
    assert!(
        p.body
            .contains("<p class=\"done\" role=\"status\">Intact: the "),
        "{}",
        p.body
    );
    // An intruder with database access changes what an entry says.
    s.tamper(
        "UPDATE audit_entries SET body = REPLACE(body, '\"outcome\":\"success\"', \
         '\"outcome\":\"failure\"') WHERE seq = 1",
    )
    .await;
    let p = page(&s, "/ui/audit?verify=1", Some(&admin)).await;
    assert!(
        p.body.contains("The log is not what it signed"),
        "{}",
        p.body
    );
    assert!(
        p.body.contains("do not match the checkpoint of size"),
        "{}",
        p.body
    );

    // An auditor of group web only, and an operator: no section, no page.
    for (name, role, groups) in [("gail", "auditor", &["web"][..]), ("otto", "operator", &[])] {
        let c = new_user_session(&s, name, role, groups).await;
        assert!(
            !page(&s, "/ui/", Some(&c))
                .await
                .body
                .contains("href=\"/ui/audit\"")
        );
        assert_eq!(page(&s, "/ui/audit", Some(&c)).await.status, 403, "{name}");
    }
    s.finish().await;
}
server_test!(audit_log);

/// Users and API tokens: a user made through the form (its one-time password shown once and
/// working), its role changed, disabled (its session ends) and enabled, given a new one-time
/// password; a token revoked; the last admin kept; an auditor reads without forms; a viewer
/// gets no section.
async fn users_and_tokens(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let admin = sign_in(&s, "admin", ADMIN_PASSWORD).await;
    let p = page(&s, "/ui/users", Some(&admin)).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(
        p.body
            .contains("<th scope=\"row\">admin <span class=\"muted\">(you)</span></th>")
    );
    let csrf = csrf_of(&p.body);
    let post = |path: String, form: Vec<(&'static str, String)>| {
        let (csrf, admin, s) = (csrf.clone(), admin.clone(), &s);
        async move {
            let mut fields: Vec<(&str, &str)> = vec![("csrf", &csrf)];
            fields.extend(form.iter().map(|(k, v)| (*k, v.as_str())));
            post_form(s, &path, &fields, Some(&admin), "same-origin")
                .await
                .0
        }
    };
    let one_time = |body: &str| {
        let opening = "id=\"one-time\" readonly value=\"";
        let at = body.find(opening).expect("a one-time password") + opening.len();
        body[at..at + body[at..].find('"').unwrap()].to_owned()
    };

    // Refused: a bad name (kept in the form, escaped), a bad role, a bad group.
    let p = post(
        "/ui/users".into(),
        vec![("name", HOSTILE.into()), ("role", "viewer".into())],
    )
    .await;
    assert_eq!(p.status, 400, "{}", p.body);
    assert!(!p.body.contains(HOSTILE));
    assert!(p.body.contains("value=\"&#60;script&#62;"), "{}", p.body);
    let p = post(
        "/ui/users".into(),
        vec![("name", "alice".into()), ("role", "root".into())],
    )
    .await;
    assert_eq!(p.status, 400);
    assert!(p.body.contains("role: role &#34;root&#34;"), "{}", p.body);
    let p = post(
        "/ui/users".into(),
        vec![
            ("name", "alice".into()),
            ("role", "viewer".into()),
            ("groups", "web, ../x".into()),
        ],
    )
    .await;
    assert_eq!(p.status, 400, "{}", p.body);

    let p = post(
        "/ui/users".into(),
        vec![
            ("name", "alice".into()),
            ("role", "viewer".into()),
            ("groups", "web, db".into()),
        ],
    )
    .await;
    assert_eq!(p.status, 201, "{}", p.body);
    let first = one_time(&p.body);
    let u = s.get("/api/v1/users/alice").await;
    assert_eq!(
        (u["role"].as_str(), u["groups"].clone()),
        (Some("viewer"), json!(["web", "db"]))
    );
    // The password works once, to choose her own.
    let (p, alice) = post_form(
        &s,
        "/ui/login",
        &[
            ("user", "alice"),
            ("password", &first),
            ("new_password", "correct horse battery staple"),
        ],
        None,
        "same-origin",
    )
    .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let alice = alice.split(';').next().unwrap().to_owned();
    // A viewer: no Users section, no page.
    assert!(
        !page(&s, "/ui/", Some(&alice))
            .await
            .body
            .contains("href=\"/ui/users\"")
    );
    assert_eq!(page(&s, "/ui/users", Some(&alice)).await.status, 403);

    let p = post(
        "/ui/users/alice".into(),
        vec![
            ("act", "role".into()),
            ("role", "auditor".into()),
            ("groups", "".into()),
        ],
    )
    .await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/ui/users?done=role"),
        "{}",
        p.body
    );
    let u = s.get("/api/v1/users/alice").await;
    assert_eq!(
        (u["role"].as_str(), u["groups"].clone()),
        (Some("auditor"), json!([]))
    );
    // An auditor reads the page, without a form, and cannot post one.
    let p = page(&s, "/ui/users", Some(&alice)).await;
    assert_eq!(p.status, 200);
    assert!(!p.body.contains("Make the user") && !p.body.contains("<details>"));
    let alice_csrf = csrf_of(&p.body);
    let (p, _) = post_form(
        &s,
        "/ui/users/admin",
        &[("csrf", &alice_csrf), ("act", "disable")],
        Some(&alice),
        "same-origin",
    )
    .await;
    assert_eq!(p.status, 403);

    // Disabled: her session ends at once; enabled again.
    let p = post("/ui/users/alice".into(), vec![("act", "disable".into())]).await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/ui/users?done=disabled")
    );
    assert_eq!(page(&s, "/ui/", Some(&alice)).await.location, "/ui/login");
    let p = page(&s, "/ui/users?done=disabled", Some(&admin)).await;
    assert!(
        p.body
            .contains("<span class=\"account disabled\">disabled</span>"),
        "{}",
        p.body
    );
    assert!(
        p.body
            .contains("name=\"act\" value=\"enable\">Enable</button>")
    );
    let p = post("/ui/users/alice".into(), vec![("act", "enable".into())]).await;
    assert_eq!(p.status, 303);
    assert!(s.get("/api/v1/users/alice").await["disabled_at"].is_null());
    // A new one-time password, shown once; her own no longer works.
    let p = post("/ui/users/alice".into(), vec![("act", "reset".into())]).await;
    assert_eq!(p.status, 200);
    let second = one_time(&p.body);
    assert_ne!(second, first);
    let (p, _) = post_form(
        &s,
        "/ui/login",
        &[
            ("user", "alice"),
            ("password", "correct horse battery staple"),
        ],
        None,
        "same-origin",
    )
    .await;
    assert_eq!(p.status, 401);
    // The last admin stays one.
    let p = post("/ui/users/admin".into(), vec![("act", "disable".into())]).await;
    assert_eq!(p.status, 409);
    assert!(
        p.body.contains("admin is the last enabled admin"),
        "{}",
        p.body
    );
    let p = post("/ui/users/nobody".into(), vec![("act", "enable".into())]).await;
    assert_eq!(p.status, 404);
    let p = post("/ui/users/alice".into(), vec![("act", "explode".into())]).await;
    assert_eq!(p.status, 400);

    // An API token of the admin's, listed by its first characters, revoked from the page.
    let (st, v) = s
        .call(
            Method::POST,
            "/api/v1/me/tokens",
            Some(json!({"name": "ci", "ttl_days": 7})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let ci = v["token"].as_str().unwrap().to_owned();
    let p = page(&s, "/ui/users", Some(&admin)).await;
    assert!(p.body.contains("<th scope=\"row\">ci</th>"), "{}", p.body);
    assert!(!p.body.contains(&ci), "the token itself is never shown");
    assert!(p.body.contains("aria-label=\"Revoke admin's token ci\""));
    let p = post(
        "/ui/users/admin".into(),
        vec![("act", "revoke_token".into()), ("token", "ci".into())],
    )
    .await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/ui/users?done=revoked"),
        "{}",
        p.body
    );
    let r = s
        .http
        .get(s.url("/api/v1/users"))
        .bearer_auth(&ci)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        page(&s, "/ui/users", Some(&admin))
            .await
            .body
            .contains("<span class=\"token revoked\">revoked</span>")
    );
    s.finish().await;
}
server_test!(users_and_tokens);

/// The hostile host's second run, a minute after the first: SSH-1 fixed, SSH-2 still
/// failing, SSH-3 new (not applicable).
async fn second_run(s: &TestServer, evil: &TestAgent) {
    use rampart_core::Status::{Fail, NotApplicable, Pass};
    let later = time::OffsetDateTime::now_utc() + time::Duration::minutes(1);
    // `seed` pushed the policy once: version 1.
    let sub = submission(
        "run-evil-0002",
        1,
        &[("SSH-1", Pass), ("SSH-2", Fail), ("SSH-3", NotApplicable)],
        later,
    );
    let (st, v) = evil.poster(s).post(&sub).await;
    assert_eq!(st, 200, "{v}");
}

/// A run with every check and its evidence, and what changed between two runs of one policy
/// on one agent; another group's run is absent; two runs of different agents are not compared.
async fn runs_and_diff(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let (evil, good) = seed(&s).await;
    second_run(&s, &evil).await;
    let admin = sign_in(&s, "admin", ADMIN_PASSWORD).await;

    let p = page(&s, "/ui/runs/run-evil-0001", Some(&admin)).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(!p.body.contains(HOSTILE));
    assert!(
        p.body
            .contains("<code>/etc/ssh/sshd_config:7: &#60;script&#62;"),
        "{}",
        p.body
    );
    assert!(p.body.contains("Checks (2)"));
    assert!(
        p.body.contains("(0 passed, 2 failed, 0 other)"),
        "{}",
        p.body
    );
    assert!(
        p.body.contains("<option value=\"run-evil-0002\">"),
        "{}",
        p.body
    );
    assert!(
        p.body
            .contains("<input type=\"hidden\" name=\"to\" value=\"run-evil-0001\">")
    );
    // The agent page links each run.
    let p = page(&s, &format!("/ui/agents/{}", evil.id), Some(&admin)).await;
    assert!(
        p.body
            .contains("<a href=\"/ui/runs/run-evil-0002\"><code>run-evil-0002</code></a>")
    );

    let p = page(
        &s,
        "/ui/diff?from=run-evil-0001&to=run-evil-0002",
        Some(&admin),
    )
    .await;
    assert_eq!(p.status, 200, "{}", p.body);
    let section = |id: &str| {
        let at = p.body.find(&format!("<h2 id=\"{id}-h\">")).unwrap();
        let end = p.body[at..].find("</section>").unwrap();
        p.body[at..at + end].to_owned()
    };
    assert!(section("failing").contains("Newly failing (0)"));
    let passing = section("passing");
    assert!(passing.contains("Newly passing (1)"), "{passing}");
    assert!(passing.contains(">SSH-1</a>"));
    assert!(passing.contains("<span class=\"status fail\">fail</span></td>\n  <td><span class=\"status pass\">pass</span>"), "{passing}");
    // The evidence before: the hostile line, as text.
    assert!(passing.contains("sshd_config:7: &#60;script&#62;"));
    let other = section("other");
    assert!(
        other.contains("Other changes (1)") && other.contains(">SSH-3</a>"),
        "{other}"
    );
    assert!(other.contains("<span class=\"status absent\">absent</span>"));
    assert!(section("evidence").contains("Same status, different evidence (0)"));
    // Named the other way round: the same page, earlier run first.
    let swapped = page(
        &s,
        "/ui/diff?from=run-evil-0002&to=run-evil-0001",
        Some(&admin),
    )
    .await;
    assert_eq!(swapped.body, p.body);

    // Not two agents' runs; not a missing run.
    let p = page(
        &s,
        "/ui/diff?from=run-evil-0001&to=run-good-0001",
        Some(&admin),
    )
    .await;
    assert_eq!(p.status, 400);
    assert!(
        p.body
            .contains("compare two runs of one policy on one agent"),
        "{}",
        p.body
    );
    assert_eq!(
        page(&s, "/ui/runs/no-such-run", Some(&admin)).await.status,
        404
    );
    assert_eq!(
        page(&s, "/ui/diff?from=run-evil-0001", Some(&admin))
            .await
            .status,
        404
    );
    // A viewer of group db: web's runs are absent.
    let vic = new_user_session(&s, "vic", "viewer", &["db"]).await;
    assert_eq!(
        page(&s, "/ui/runs/run-good-0001", Some(&vic)).await.status,
        404
    );
    let _ = good;
    s.finish().await;
}
server_test!(runs_and_diff);

/// Threat intel: a feed's health and count, the fleet's match with a link to the indicator,
/// the indicator looked up (defanged) with its source and its score term by term, a value
/// that is not an indicator, and a viewer of another group who does not see the match.
async fn intel_pages(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    super::intel::upload_feodo(&s).await;
    let a = TestAgent::enrol(&s, &s.token("web", 1).await)
        .await
        .unwrap();
    std::fs::write(
        a.opts.scan_root.join("etc/hosts"),
        "127.0.0.1 localhost\n67.213.75.205 update.example.net\n",
    )
    .unwrap();
    s.push_policy(super::harness::POLICY_V1, "web", "0 */6 * * *")
        .await;
    a.run_once().await.unwrap();
    let admin = sign_in(&s, "admin", ADMIN_PASSWORD).await;

    let p = page(&s, "/ui/intel", Some(&admin)).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(
        p.body
            .contains("<a href=\"/ui/intel\" aria-current=\"page\">Intel</a>")
    );
    assert!(
        p.body
            .contains("<th scope=\"row\">feodo<br><span class=\"muted\">feodo-csv</span></th>"),
        "{}",
        p.body
    );
    assert!(
        p.body
            .contains("<span class=\"health warn\">file only</span>")
    );
    assert!(p.body.contains(&format!(
        "<td><a href=\"/ui/agents/{}\">web-01</a></td>",
        a.id
    )));
    assert!(
        p.body.contains(
            "<a href=\"/ui/intel/lookup?value=67.213.75.205\"><code>67.213.75.205</code></a>"
        ),
        "{}",
        p.body
    );

    let p = page(
        &s,
        "/ui/intel/lookup?value=67%5B.%5D213%5B.%5D75%5B.%5D205",
        Some(&admin),
    )
    .await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("<code>67.213.75.205</code>"), "{}", p.body);
    assert!(p.body.contains("How the score is made"));
    assert!(p.body.contains("feodo: reliability 90"), "{}", p.body);
    assert!(
        p.body
            .contains("feodo<br><span class=\"muted\">reliability 90, TLP:green</span>"),
        "{}",
        p.body
    );
    assert!(p.body.contains("threat: botnet_cc"), "{}", p.body);
    // The same score the API gives.
    let api = s.get("/api/v1/intel/lookup?value=67.213.75.205").await;
    let score = api["matches"][0]["score"].as_u64().unwrap();
    assert!(
        p.body.contains(&format!("<strong>{score}</strong> / 100")),
        "{}",
        p.body
    );

    let p = page(
        &s,
        "/ui/intel/lookup?value=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        Some(&admin),
    )
    .await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("Not an indicator:"), "{}", p.body);
    assert!(!p.body.contains("<script>alert(1)"));
    let p = page(&s, "/ui/intel/lookup?value=", Some(&admin)).await;
    assert_eq!(p.status, 400);

    // A viewer of group db: the feeds, not web's match.
    let vic = new_user_session(&s, "vic", "viewer", &["db"]).await;
    let p = page(&s, "/ui/intel", Some(&vic)).await;
    assert_eq!(p.status, 200);
    assert!(
        p.body.contains("feodo") && !p.body.contains("web-01"),
        "{}",
        p.body
    );
    s.finish().await;
}
server_test!(intel_pages);

/// Posts the policy upload form (multipart) as a browser does.
async fn upload_policy_form(
    s: &TestServer,
    cookie: &str,
    csrf: &str,
    file_name: &str,
    content: &str,
    site: &str,
) -> Page {
    let boundary = "----rampart-test-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"policy\"; filename=\"{file_name}\"\r\n\
         Content-Type: application/yaml\r\n\r\n{content}\r\n--{boundary}--\r\n"
    );
    let r = s
        .http
        .post(s.url("/ui/policies"))
        .header("cookie", cookie)
        .header("sec-fetch-site", site)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    read(r).await
}

/// Policies: an upload refused with its place, a new version (larger than any other form),
/// the same content again, versions with a diff and content, assignments made and removed
/// (refused with the form kept), group rights, and "scan now" that the agent then runs.
async fn policies_pages(db: Db) {
    use super::harness::POLICY_V1;
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let agent = TestAgent::enrol(&s, &s.token("web", 1).await)
        .await
        .unwrap();
    let admin = sign_in(&s, "admin", ADMIN_PASSWORD).await;
    let p = page(&s, "/ui/policies", Some(&admin)).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("No policy yet."));
    assert!(p.body.contains("enctype=\"multipart/form-data\""));
    let csrf = csrf_of(&p.body);

    // Refused: the loader's words, with the file and line.
    let broken = "rampart: 1\npolicy:\n  id: broken\n  name: Broken\nchecks:\n  - id: B-1\n    title: x\n    severity: loud\n    rules: []\n";
    let p = upload_policy_form(&s, &admin, &csrf, "broken.yml", broken, "same-origin").await;
    assert_eq!(p.status, 422, "{}", p.body);
    assert!(
        p.body
            .contains("<p class=\"error\" role=\"alert\">broken.yml:"),
        "{}",
        p.body
    );
    // Without the CSRF token, from another site: refused, nothing stored.
    let p = upload_policy_form(&s, &admin, "forged", "p.yml", POLICY_V1, "same-origin").await;
    assert_eq!(p.status, 403);
    let p = upload_policy_form(&s, &admin, &csrf, "p.yml", POLICY_V1, "cross-site").await;
    assert_eq!(p.status, 403);
    assert_eq!(s.get("/api/v1/policies").await, json!([]));

    let p = upload_policy_form(&s, &admin, &csrf, "ssh.yml", POLICY_V1, "same-origin").await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/ui/policies/test-ssh?done=uploaded"),
        "{}",
        p.body
    );
    // Version 2: a new title and a 40 KiB comment (more than any other form may post).
    let v2 = format!(
        "{}# {}\n",
        POLICY_V1.replace("Root login disabled", "Root login is disabled"),
        "x".repeat(40 * 1024)
    );
    let p = upload_policy_form(&s, &admin, &csrf, "ssh.yml", &v2, "same-origin").await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/ui/policies/test-ssh?done=uploaded"),
        "{}",
        p.body
    );
    let p = upload_policy_form(&s, &admin, &csrf, "ssh.yml", &v2, "same-origin").await;
    assert_eq!(p.location, "/ui/policies/test-ssh?done=unchanged");

    let p = page(&s, "/ui/policies/test-ssh?done=unchanged", Some(&admin)).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("The same content as the newest version"));
    assert!(p.body.contains("Versions (2)"));
    assert!(
        p.body
            .contains("<a href=\"/ui/policies/test-ssh/diff?from=1&amp;to=2\">from version 1</a>")
    );
    assert!(p.body.contains("Not assigned: no agent runs it."));
    let p = page(&s, "/ui/policies/test-ssh/diff?from=1&to=2", Some(&admin)).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("2 lines added, 1 removed."), "{}", p.body);
    assert!(
        p.body.contains(
            "<code><span aria-hidden=\"true\">− </span>    title: Root login disabled</code>"
        ),
        "{}",
        p.body
    );
    assert!(p.body.contains(
        "<code><span aria-hidden=\"true\">+ </span>    title: Root login is disabled</code>"
    ));
    let p = page(&s, "/ui/policies/test-ssh/versions/1", Some(&admin)).await;
    assert!(
        p.body
            .contains("<td class=\"ln\">6</td><td><code>  - id: SSH-1</code></td>"),
        "{}",
        p.body
    );
    assert_eq!(
        page(&s, "/ui/policies/test-ssh/versions/9", Some(&admin))
            .await
            .status,
        404
    );
    assert_eq!(
        page(&s, "/ui/policies/nope", Some(&admin)).await.status,
        404
    );

    // Assignments: a bad schedule keeps the form; then the group, and one agent on version 1.
    let assign =
        |kind: &'static str, name: String, version: &'static str, schedule: &'static str| {
            let (csrf, admin, s) = (csrf.clone(), admin.clone(), &s);
            async move {
                post_form(
                    s,
                    "/ui/policies/test-ssh/assign",
                    &[
                        ("csrf", &csrf),
                        ("kind", kind),
                        ("name", &name),
                        ("version", version),
                        ("schedule", schedule),
                    ],
                    Some(&admin),
                    "same-origin",
                )
                .await
                .0
            }
        };
    let p = assign("group", "web".into(), "", "every tuesday").await;
    assert_eq!(p.status, 400, "{}", p.body);
    assert!(
        p.body.contains("schedule &#34;every tuesday&#34;"),
        "{}",
        p.body
    );
    assert!(p.body.contains("value=\"every tuesday\""));
    let p = assign("group", "web".into(), "", "0 0 1 1 *").await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/ui/policies/test-ssh?done=assigned"),
        "{}",
        p.body
    );
    let p = assign("agent", agent.id.clone(), "1", "@daily").await;
    assert_eq!(p.status, 303, "{}", p.body);
    let listed = s.get("/api/v1/assignments").await;
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    let p = page(&s, "/ui/policies/test-ssh", Some(&admin)).await;
    assert!(
        p.body.contains(&format!(
            "<a href=\"/ui/agents/{}\">agent web-01</a>",
            agent.id
        )),
        "{}",
        p.body
    );
    assert!(
        p.body
            .contains("<th scope=\"row\">group web</th>\n  <td class=\"num\">2</td>"),
        "{}",
        p.body
    );
    let (p, _) = post_form(
        &s,
        "/ui/policies/test-ssh/unassign",
        &[("csrf", &csrf), ("kind", "agent"), ("name", &agent.id)],
        Some(&admin),
        "same-origin",
    )
    .await;
    assert_eq!(
        (p.status, p.location.as_str()),
        (303, "/ui/policies/test-ssh?done=unassigned")
    );
    let listed = s.get("/api/v1/assignments").await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    // An operator of group db: may not assign to web nor remove web's; a viewer gets no forms.
    let otto = new_user_session(&s, "otto", "operator", &["db"]).await;
    let p = page(&s, "/ui/policies/test-ssh", Some(&otto)).await;
    assert!(
        p.body.contains("Assignments (0)"),
        "web's assignment is not otto's to see: {}",
        p.body
    );
    let otto_csrf = csrf_of(&p.body);
    let (p, _) = post_form(
        &s,
        "/ui/policies/test-ssh/assign",
        &[
            ("csrf", &otto_csrf),
            ("kind", "group"),
            ("name", "web"),
            ("schedule", "@daily"),
        ],
        Some(&otto),
        "same-origin",
    )
    .await;
    assert_eq!(p.status, 403, "{}", p.body);
    let vic = new_user_session(&s, "vic", "viewer", &[]).await;
    let p = page(&s, "/ui/policies", Some(&vic)).await;
    assert_eq!(p.status, 200);
    assert!(!p.body.contains("enctype=\"multipart/form-data\""));
    let p = upload_policy_form(
        &s,
        &vic,
        &csrf_of(&p.body),
        "p.yml",
        POLICY_V1,
        "same-origin",
    )
    .await;
    assert_eq!(p.status, 403);

    // Scan now: the yearly schedule ran once; the button makes the agent scan again.
    agent.run_once().await.unwrap();
    let p = page(&s, &format!("/ui/agents/{}", agent.id), Some(&admin)).await;
    assert!(
        p.body
            .contains(&format!("action=\"/ui/agents/{}/scan\"", agent.id))
    );
    assert!(
        !page(&s, &format!("/ui/agents/{}", agent.id), Some(&vic))
            .await
            .body
            .contains("/scan\"")
    );
    let (p, _) = post_form(
        &s,
        &format!("/ui/agents/{}/scan", agent.id),
        &[("csrf", &csrf)],
        Some(&admin),
        "same-origin",
    )
    .await;
    assert_eq!(
        (p.status, p.location.clone()),
        (303, format!("/ui/agents/{}?done=scan", agent.id))
    );
    agent.run_once().await.unwrap();
    let runs = s.get(&format!("/api/v1/agents/{}/runs", agent.id)).await;
    assert_eq!(runs.as_array().unwrap().len(), 2, "{runs}");
    assert_eq!(runs[0]["trigger"], "on_demand");
    s.finish().await;
}
server_test!(policies_pages);

/// A live stream (`/ui/events`) with the session cookie.
async fn open_events(http: &reqwest::Client, base: &str, cookie: &str) -> reqwest::Response {
    let r = http
        .get(format!("{base}/ui/events"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    r
}

/// Reads a live stream until `want` appears (within 20 s); everything read.
async fn read_until(stream: &mut reqwest::Response, want: &str) -> String {
    let mut seen = String::new();
    let read = async {
        while !seen.contains(want) {
            let chunk = stream.chunk().await.unwrap().expect("the stream ended");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), read)
        .await
        .unwrap_or_else(|_| panic!("no {want:?} in the stream: {seen:?}"));
    seen
}

/// Live updates: a run stored is announced to the dashboards watching, on this replica and,
/// with PostgreSQL, on another one (LISTEN/NOTIFY); a viewer of another group is not told of
/// it; no session, no stream.
async fn live_updates(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    let p = page(&s, "/ui/events", None).await;
    assert_eq!((p.status, p.location.as_str()), (303, "/ui/login"));
    let js = s
        .http
        .get(s.url("/ui/static/live.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let admin = sign_in(&s, "admin", ADMIN_PASSWORD).await;
    let vic = new_user_session(&s, "vic", "viewer", &["db"]).await;
    // With PostgreSQL, a second replica: the admin watches there, the runs arrive here.
    let mut cfg2 = s.config.clone();
    cfg2.listen = "127.0.0.1:0".parse().unwrap();
    cfg2.agent_listen = "127.0.0.1:0".parse().unwrap();
    let replica = match cfg2.database_url {
        Some(_) => Some(rampart_server::RunningServer::start(cfg2).await.unwrap()),
        None => None,
    };
    let watched = match &replica {
        Some(r) => format!("https://localhost:{}", r.api_addr.port()),
        None => s.url(""),
    };
    let web = TestAgent::enrol(&s, &s.token("web", 1).await)
        .await
        .unwrap();
    let db_agent = TestAgent::enrol_as(&s, &s.token("db", 1).await, "db-01", "Debian GNU/Linux 12")
        .await
        .unwrap();
    let version = s
        .push_policy(super::harness::POLICY_V1, "web", "0 0 1 1 *")
        .await;
    let mut admin_stream = open_events(&s.http, &watched, &admin).await;
    let mut vic_stream = open_events(&s.http, &s.url(""), &vic).await;
    // Subscribed once the response started; the runs come after.
    use rampart_core::Status::Pass;
    let now = time::OffsetDateTime::now_utc();
    for (agent, run) in [(&web, "run-live-web"), (&db_agent, "run-live-db")] {
        let (st, v) = agent
            .poster(&s)
            .post(&submission(run, version, &[("SSH-1", Pass)], now))
            .await;
        assert_eq!(st, 200, "{v}");
    }
    let seen = read_until(&mut admin_stream, "run-live-db").await;
    assert!(
        seen.contains(&format!(
            "event: run\ndata: {{\"agent\":\"{}\",\"run\":\"run-live-web\",\"policy\":\"test-ssh\"}}",
            web.id
        )),
        "{seen}"
    );
    let seen = read_until(&mut vic_stream, "run-live-db").await;
    assert!(
        !seen.contains("run-live-web"),
        "another group's run: {seen}"
    );
    drop((admin_stream, vic_stream));
    if let Some(r) = replica {
        r.shutdown().await;
    }
    s.finish().await;
}
server_test!(live_updates);

/// The overview per compliance framework (from the policy's mappings) and sliced by label.
async fn frameworks_and_labels(db: Db) {
    let Some(s) = TestServer::start(db).await else {
        return;
    };
    // SSH-1 maps to CIS and PCI DSS, SSH-2 to CIS only.
    let policy = super::harness::POLICY_V1
        .replace(
            "    severity: high\n",
            "    severity: high\n    compliance: {cis: [\"5.2.10\"], pci_dss: [\"2.2.4\"]}\n",
        )
        .replace(
            "    severity: medium\n",
            "    severity: medium\n    compliance: {cis: [\"5.2.12\"]}\n",
        );
    let version = s.push_policy(&policy, "web", "0 0 1 1 *").await;
    // Two hosts: labelled env=test (the harness's token) and env=prod.
    let test_host = TestAgent::enrol(&s, &s.token("web", 1).await)
        .await
        .unwrap();
    let (st, v) = s
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"group": "web", "labels": {"env": "prod"}})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let prod_host = TestAgent::enrol_as(
        &s,
        v["token"].as_str().unwrap(),
        "web-02",
        "Debian GNU/Linux 12",
    )
    .await
    .unwrap();
    use rampart_core::Status::{Fail, Pass};
    let now = time::OffsetDateTime::now_utc();
    for (agent, run, statuses) in [
        (
            &test_host,
            "run-fw-test",
            [("SSH-1", Pass), ("SSH-2", Fail)],
        ),
        (
            &prod_host,
            "run-fw-prod",
            [("SSH-1", Fail), ("SSH-2", Fail)],
        ),
    ] {
        let mut sub = submission(run, version, &statuses, now);
        // The run evaluated this policy, not the harness's.
        let digest = rampart_core::digest::sha256_hex(policy.as_bytes());
        sub.policy_digest = digest.clone();
        sub.report.policies[0].policy.sha256 = digest;
        sub.report.refresh();
        let (st, v) = agent.poster(&s).post(&sub).await;
        assert_eq!(st, 200, "{v}");
    }
    let admin = sign_in(&s, "admin", ADMIN_PASSWORD).await;
    let p = page(&s, "/ui/", Some(&admin)).await;
    assert_eq!(p.status, 200, "{}", p.body);
    let at = p.body.find("id=\"frameworks-h\"").unwrap();
    let section = &p.body[at..at + p.body[at..].find("</section>").unwrap()];
    // CIS: SSH-1 and SSH-2 on both hosts: 1 passed, 3 failed. PCI DSS: SSH-1: 1 and 1.
    assert!(section.contains("<th scope=\"row\">CIS Benchmarks</th>\n  <td class=\"num\">2</td>\n  <td class=\"num\">25.0 %</td>"), "{section}");
    assert!(section.contains("<th scope=\"row\">PCI DSS 4.0</th>\n  <td class=\"num\">1</td>\n  <td class=\"num\">50.0 %</td>"), "{section}");
    assert!(p.body.contains("<option value=\"env=prod\">"), "{}", p.body);
    // Sliced by label: the prod host only.
    let p = page(&s, "/ui/?label=env%3Dprod", Some(&admin)).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("<option value=\"env=prod\" selected>"));
    assert!(
        p.body.contains("<span class=\"n\">1</span> enrolled"),
        "{}",
        p.body
    );
    assert!(
        p.body.contains("<span class=\"counts\">0 / 2 / 0</span>"),
        "{}",
        p.body
    );
    let at = p.body.find("id=\"frameworks-h\"").unwrap();
    assert!(p.body[at..].contains(
        "<th scope=\"row\">PCI DSS 4.0</th>\n  <td class=\"num\">1</td>\n  <td class=\"num\">0.0 %</td>"
    ));
    for bad in ["label=env", "label=..%3Dx", "label=%3Dprod"] {
        assert_eq!(
            page(&s, &format!("/ui/?{bad}"), Some(&admin)).await.status,
            400,
            "{bad}"
        );
    }
    s.finish().await;
}
server_test!(frameworks_and_labels);
