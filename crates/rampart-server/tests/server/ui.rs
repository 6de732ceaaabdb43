//! The web dashboard as a browser meets it: sign-in form, session cookie, pages filtered by
//! role and group, hostile agent data escaped, the pages' security headers, sign-out with the
//! CSRF token.

use reqwest::Method;
use serde_json::json;

use super::harness::{ADMIN_PASSWORD, Db, TestAgent, TestServer, submission};
use crate::server_test;

/// A page: status, `Location`, `Content-Security-Policy` and body.
struct Page {
    status: u16,
    location: String,
    csp: String,
    body: String,
}

async fn page(s: &TestServer, path: &str, cookie: Option<&str>) -> Page {
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
async fn sign_in(s: &TestServer, user: &str, password: &str) -> String {
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

/// The value of the hidden CSRF field of a page's sign-out form.
fn csrf_of(body: &str) -> String {
    let at = body
        .find("name=\"csrf\" value=\"")
        .expect("a sign-out form")
        + 19;
    body[at..at + body[at..].find('"').unwrap()].to_owned()
}

const HOSTILE: &str = "<script>alert('pwned')</script>";

/// Two agents in group web, one with a hostile name and OS, each with a run of the test
/// policy: 1 passed, 3 failed, 1 not applicable between them; SSH-1 fails on both.
async fn seed(s: &TestServer) -> (TestAgent, TestAgent) {
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
    let p = page(&s, "/ui/checks/test-ssh/SSH-2?status=pass", Some(&cookie)).await;
    assert!(
        p.body
            .contains(&format!("<a href=\"/ui/agents/{}\">web-01</a>", good.id)),
        "{}",
        p.body
    );
    assert!(!p.body.contains(&format!("/ui/agents/{}", evil.id)));
    assert!(p.body.contains("<option value=\"pass\" selected>"));
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
        ];
        let job = json!({
            "base": s.api_url,
            "user": "admin",
            "password": ADMIN_PASSWORD,
            "pages": pages.iter().map(|(n, p)| json!({"name": n, "path": p})).collect::<Vec<_>>(),
            "out": out,
        });
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ui/browse.mjs");
        let run = tokio::process::Command::new("node")
            .arg(script)
            .arg(job.to_string())
            .output()
            .await
            .expect("node (scripts/setup-test-deps.sh installs Chromium and playwright-core)");
        assert!(
            run.status.success(),
            "the browser run failed: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
        assert_eq!(report["login_url"], "/ui/login", "{report}");
        assert_eq!(report["signed_in"], true);
        assert_eq!(report["console_errors"], json!([]), "{report}");
        assert_eq!(report["failed_requests"], json!([]), "{report}");
        let seen = report["pages"].as_array().unwrap();
        assert_eq!(seen.len(), pages.len());
        for (p, (name, _)) in seen.iter().zip(&pages) {
            assert_eq!(p["status"], 200, "{p}");
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
        s.finish().await;
    })
    .await;
}
