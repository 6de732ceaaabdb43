//! `rampart login --oidc` against a server process configured for a real OpenID provider
//! (panva's `oidc-provider`, the script the server's tests start): the command prints the
//! address, the "browser" (plain HTTP with cookies) logs in at the provider and comes back to
//! the command's loopback port, and the command keeps the API token it traded the code for.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use super::fleet::{ServerProc, free_port};
use super::harness::{code, stderr, stdout};

/// Follows redirects from `url` (keeping cookies per origin) until one leaves for `until`.
async fn follow(
    http: &reqwest::Client,
    jar: &mut BTreeMap<String, String>,
    mut url: String,
    until: &str,
) -> String {
    for _ in 0..12 {
        let origin = {
            let u = reqwest::Url::parse(&url).unwrap();
            format!("{}://{}", u.scheme(), u.authority())
        };
        let cookies = jar.get(&origin).cloned().unwrap_or_default();
        let resp = http
            .get(&url)
            .header("cookie", cookies)
            .send()
            .await
            .unwrap();
        for c in resp.headers().get_all("set-cookie") {
            let pair = c.to_str().unwrap().split(';').next().unwrap().to_owned();
            let entry = jar.entry(origin.clone()).or_default();
            if !entry.is_empty() {
                entry.push_str("; ");
            }
            entry.push_str(&pair);
        }
        let next = resp
            .headers()
            .get("location")
            .unwrap_or_else(|| panic!("{url}: {} without a redirect", resp.status()))
            .to_str()
            .unwrap()
            .to_owned();
        let next = reqwest::Url::parse(&url)
            .unwrap()
            .join(&next)
            .unwrap()
            .to_string();
        if next.starts_with(until) {
            return next;
        }
        url = next;
    }
    panic!("too many redirects");
}

#[test]
fn login_through_the_browser_keeps_a_token() {
    // The provider, on a port of its own.
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../rampart-server/tests/oidc/provider.mjs"
    );
    let mut provider = Command::new("node")
        .args([script, "key-1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node (scripts/setup-test-deps.sh installs the OpenID provider)");
    let mut lines = BufReader::new(provider.stdout.take().unwrap()).lines();
    let ready = lines.next().unwrap().unwrap();
    let port: u16 = ready.strip_prefix("ready ").unwrap().parse().unwrap();
    std::thread::spawn(move || for _ in lines {});
    let issuer = format!("http://127.0.0.1:{port}");

    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("oidc-secret");
    std::fs::write(&secret, "rampart-test-secret\n").unwrap();
    let server = ServerProc::start_db(
        &dir.path().join("data"),
        free_port(),
        free_port(),
        None,
        true,
        &[
            "--oidc-issuer",
            &issuer,
            "--oidc-client-secret-file",
            secret.to_str().unwrap(),
            "--oidc-role",
            "rampart-admins=admin",
        ],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let root =
        reqwest::Certificate::from_pem(&std::fs::read(server.data.join("root-ca.pem")).unwrap())
            .unwrap();
    let browser = reqwest::Client::builder()
        .add_root_certificate(root)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    rt.block_on(
        browser
            .get(format!("{issuer}/test/login-as?user=alice"))
            .send(),
    )
    .unwrap();

    let config = dir.path().join("alice-config");
    let mut login = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["login", "--oidc"])
        .env("RAMPART_SERVER", server.url())
        .env("RAMPART_CA_FILE", server.data.join("root-ca.pem"))
        .env("RAMPART_CONFIG_DIR", &config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(login.stderr.take().unwrap()).lines();
    let start = err
        .by_ref()
        .map(|l| l.unwrap())
        .find(|l| l.starts_with("https://"))
        .expect("the address to open");
    assert!(start.contains("/api/v1/oidc/login?cli_port="), "{start}");

    // The browser: our server (its CA trusted), the provider, back to our server, which sends
    // it on to the command's loopback port.
    let mut jar = BTreeMap::new();
    let cli_port = reqwest::Url::parse(&start)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "cli_port")
        .unwrap()
        .1
        .into_owned();
    let back = format!("http://127.0.0.1:{cli_port}/");
    let to_cli = rt.block_on(follow(&browser, &mut jar, start, &back));
    assert!(to_cli.contains("/callback?code="), "{to_cli}");
    let page = rt.block_on(browser.get(&to_cli).send()).unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        rt.block_on(page.text())
            .unwrap()
            .contains("Logged in to Rampart")
    );

    let out = login.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(
        said.starts_with(&format!("logged in to {} as alice (admin)", server.url())),
        "{said}"
    );
    // The kept token works: alice, an admin by her provider group, lists users.
    let o = server.cli_logged_in(&config, &["users", "list"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let listed = stdout(&o);
    let alice = listed.lines().find(|l| l.starts_with("alice ")).unwrap();
    assert!(
        alice.contains("admin") && alice.contains("oidc"),
        "{listed}"
    );
    // The one-time code is spent: trading it again is refused.
    let code_again = to_cli.split("code=").nth(1).unwrap();
    let again = rt
        .block_on(
            browser
                .post(format!("{}/api/v1/oidc/token", server.url()))
                .json(&serde_json::json!({"code": code_again, "verifier": "a".repeat(43)}))
                .send(),
        )
        .unwrap();
    assert_eq!(again.status(), 401);
    let _ = provider.kill();
    let _ = provider.wait();
}
