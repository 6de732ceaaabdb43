//! OpenID Connect logins against a real, certified provider: panva's `oidc-provider` on the
//! machine's Node.js (tests/oidc/provider.mjs, installed by scripts/setup-test-deps.sh),
//! started by the test. The browser is played with plain HTTP redirects and cookies: the
//! code flow with PKCE end to end, roles from the `groups` claim, users created at first
//! login, the provider's key rotated under a running server, replays and foreign browsers
//! refused; and ID tokens the provider really issued refused for a wrong audience, expiry, a
//! bad signature and a wrong nonce.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use rampart_access::oidc::{Expected, JwkSet, Pkce, TokenError};
use rampart_server::OidcConfig;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;

use super::harness::{Db, TestServer};
use crate::server_test;

/// The provider process; killed when dropped.
struct Provider {
    child: Child,
    port: u16,
}

impl Provider {
    /// Starts the provider with signing key `key_id`, on `port` (a restart) or a port of its own.
    fn start(key_id: &str, port: Option<u16>) -> Provider {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc/provider.mjs");
        let mut args = vec![script.to_owned(), key_id.to_owned()];
        args.extend(port.map(|p| p.to_string()));
        let mut child = Command::new("node")
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node (scripts/setup-test-deps.sh installs the OpenID provider)");
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        let port = line
            .trim()
            .strip_prefix("ready ")
            .and_then(|p| p.parse().ok())
            .expect("oidc-provider did not start (run scripts/setup-test-deps.sh)");
        // Keep reading what it prints: a closed pipe would kill it at its next line.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Provider { child, port }
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser's cookies, per origin, as `name=value`.
#[derive(Default)]
struct Jar(BTreeMap<String, BTreeMap<String, String>>);

impl Jar {
    fn origin(url: &str) -> String {
        let u = reqwest::Url::parse(url).unwrap();
        format!("{}://{}", u.scheme(), u.authority())
    }

    fn take(&mut self, url: &str, resp: &reqwest::Response) {
        let jar = self.0.entry(Self::origin(url)).or_default();
        for c in resp.headers().get_all(SET_COOKIE) {
            let pair = c.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            jar.insert(name.trim().to_owned(), value.to_owned());
        }
    }

    fn header(&self, url: &str) -> String {
        self.0
            .get(&Self::origin(url))
            .map(|j| {
                j.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }
}

/// Follows the provider's redirects from `url` until one leaves for `until`; returns it.
async fn through_provider(jar: &mut Jar, mut url: String, until: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for _ in 0..10 {
        let resp = http
            .get(&url)
            .header(COOKIE, jar.header(&url))
            .send()
            .await
            .unwrap();
        jar.take(&url, &resp);
        let status = resp.status();
        let location = resp
            .headers()
            .get(LOCATION)
            .map(|l| l.to_str().unwrap().to_owned());
        let Some(next) = location else {
            panic!(
                "{url}: {status} without a redirect: {}",
                resp.text().await.unwrap()
            );
        };
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

/// A browser login as `user` through the server: `(status, body, session cookie)`.
async fn browser_login(
    s: &TestServer,
    provider: &Provider,
    user: &str,
    jar: &mut Jar,
) -> (u16, Value, Option<String>, String) {
    reqwest::get(format!("{}/test/login-as?user={user}", provider.issuer()))
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let start = s.url("/api/v1/oidc/login");
    let resp = s.http.get(&start).send().await.unwrap();
    let status = resp.status();
    assert_eq!(status, 303, "{start}: {}", resp.text().await.unwrap());
    jar.take(&start, &resp);
    let to_provider = resp.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(to_provider.starts_with(&provider.issuer()), "{to_provider}");
    assert!(
        to_provider.contains("code_challenge_method=S256"),
        "{to_provider}"
    );
    let callback = through_provider(jar, to_provider, &s.url("/api/v1/oidc/callback")).await;
    let (status, body, cookie) = finish(s, jar, &callback).await;
    (status, body, cookie, callback)
}

/// A login started on the dashboard's sign-in page (`/ui/oidc`) as `user`, through the
/// provider; the callback's response.
async fn dashboard_login(s: &TestServer, provider: &Provider, user: &str) -> reqwest::Response {
    reqwest::get(format!("{}/test/login-as?user={user}", provider.issuer()))
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let mut jar = Jar::default();
    let start = s.url("/ui/oidc");
    let resp = s.http.get(&start).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    jar.take(&start, &resp);
    let to_provider = resp.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(to_provider.starts_with(&provider.issuer()), "{to_provider}");
    let callback = through_provider(&mut jar, to_provider, &s.url("/api/v1/oidc/callback")).await;
    s.http
        .get(&callback)
        .header(COOKIE, jar.header(&callback))
        .send()
        .await
        .unwrap()
}

async fn finish(s: &TestServer, jar: &mut Jar, callback: &str) -> (u16, Value, Option<String>) {
    let resp = s
        .http
        .get(callback)
        .header(COOKIE, jar.header(callback))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let session = resp
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-rampart_session=") && !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap().to_owned());
    (status, resp.json().await.unwrap_or(Value::Null), session)
}

async fn me(s: &TestServer, session: &str) -> Value {
    let r = s
        .http
        .get(s.url("/api/v1/me"))
        .header(COOKIE, session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn oidc_logins_end_to_end(db: Db) {
    let mut provider = Provider::start("key-1", None);
    let port = provider.port;
    let issuer = provider.issuer();
    let Some(s) = TestServer::start_with(db, |c| {
        c.oidc = Some(OidcConfig {
            issuer: issuer.clone(),
            client_id: "rampart".into(),
            client_secret: "rampart-test-secret".into(),
            scopes: vec!["profile".into(), "email".into(), "groups".into()],
            role_claim: "groups".into(),
            mappings: vec![
                "rampart-admins=admin".parse().unwrap(),
                "web-ops=operator:web".parse().unwrap(),
            ],
            default_role: None,
        });
    })
    .await
    else {
        return;
    };

    // Alice, of rampart-admins: an admin, created at her first login.
    let mut jar = Jar::default();
    let (status, body, session, callback) = browser_login(&s, &provider, "alice", &mut jar).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["name"], "alice");
    assert_eq!(body["user"]["role"], "admin");
    let session = session.expect("a session cookie");
    let who = me(&s, &session).await;
    assert_eq!(who["user"]["oidc_subject"], format!("{issuer}#alice"));
    assert_eq!(who["user"]["has_password"], false);
    assert_eq!(who["token"], "session");
    // The same callback again: the state worked once.
    let (status, body, _) = finish(&s, &mut jar, &callback).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "oidc_state");

    // Bob, of web-ops: an operator limited to web.
    let (status, body, _, _) = browser_login(&s, &provider, "bob", &mut Jar::default()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["role"], "operator");
    assert_eq!(body["user"]["groups"], serde_json::json!(["web"]));

    // Carol's groups map to nothing: refused, and on the record.
    let (status, body, session, _) =
        browser_login(&s, &provider, "carol", &mut Jar::default()).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "oidc_no_role");
    assert!(session.is_none());
    let refused = s
        .get("/api/v1/audit/entries?action=session.start&outcome=failure")
        .await;
    let reason = refused["entries"][0]["detail"]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        reason.contains("no role for") && reason.contains("contractors"),
        "{reason}"
    );
    let ok = s
        .get("/api/v1/audit/entries?actor=alice&action=session.start")
        .await;
    assert_eq!(ok["entries"][0]["via"], "oidc");

    // A callback in a browser that did not start the login (no state cookie).
    reqwest::get(format!("{issuer}/test/login-as?user=alice"))
        .await
        .unwrap();
    let mut other = Jar::default();
    let resp = s
        .http
        .get(s.url("/api/v1/oidc/login"))
        .send()
        .await
        .unwrap();
    other.take(&s.url("/"), &resp);
    let to_provider = resp.headers()[LOCATION].to_str().unwrap().to_owned();
    let callback = through_provider(&mut other, to_provider, &s.url("/api/v1/oidc/callback")).await;
    let (status, body, _) = finish(&s, &mut Jar::default(), &callback).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "oidc_state");

    // The provider rotates its signing key: the server fetches the new JWKS and logs in.
    drop(provider);
    provider = Provider::start("key-2", Some(port));
    let (status, body, _, _) = browser_login(&s, &provider, "alice", &mut Jar::default()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["user"]["name"], "alice",
        "the same user, not a new one"
    );

    // From the dashboard's sign-in page: the same login, landing on the dashboard signed in.
    let resp = dashboard_login(&s, &provider, "alice").await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()[LOCATION], "/ui/");
    let cookies: Vec<_> = resp
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("rampart_oidc_to=ui;") && c.contains("Max-Age=0")),
        "{cookies:?}"
    );
    let session = cookies
        .iter()
        .find(|c| c.starts_with("__Host-rampart_session=") && !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap().to_owned())
        .expect("a session cookie");
    let r = s
        .http
        .get(s.url("/ui/"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("alice <span class=\"role\">(admin)</span>")
    );
    drop(provider);
    s.finish().await;
}
server_test!(oidc_logins_end_to_end);

/// An ID token the provider issues to `client`, straight from its token endpoint.
async fn id_token(
    provider: &Provider,
    client: (&str, &str),
    redirect: &str,
    nonce: &str,
) -> String {
    reqwest::get(format!("{}/test/login-as?user=alice", provider.issuer()))
        .await
        .unwrap();
    let pkce = Pkce::new();
    let mut url = reqwest::Url::parse(&format!("{}/auth", provider.issuer())).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", client.0)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", "openid profile groups")
        .append_pair("state", "s")
        .append_pair("nonce", nonce)
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256");
    let back = through_provider(&mut Jar::default(), url.to_string(), redirect).await;
    let code = reqwest::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let tokens: Value = reqwest::Client::new()
        .post(format!("{}/token", provider.issuer()))
        .basic_auth(client.0, Some(client.1))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", &pkce.verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    tokens["id_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_tokens_the_provider_issued_are_refused_when_they_must_be() {
    let redirect = "https://127.0.0.1:1/api/v1/oidc/callback";
    let provider = Provider::start("key-1", None);
    let port = provider.port;
    let issuer = provider.issuer();
    let jwks: JwkSet = reqwest::get(format!("{issuer}/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ours = id_token(
        &provider,
        ("rampart", "rampart-test-secret"),
        redirect,
        "n-1",
    )
    .await;
    let theirs = id_token(
        &provider,
        ("other", "other-test-secret"),
        "https://127.0.0.1/other",
        "n-1",
    )
    .await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let expected = Expected {
        issuer: &issuer,
        client_id: "rampart",
        nonce: "n-1",
        now,
    };
    // Ours, as it is: accepted, with the claims the role mapping reads.
    let claims = rampart_access::oidc::validate(&ours, &jwks, &expected).unwrap();
    assert_eq!(claims.sub, "alice");
    assert_eq!(
        rampart_access::oidc::claim_values(&claims, "groups"),
        ["rampart-admins", "everyone"]
    );
    // Issued to another client: a wrong audience.
    assert_eq!(
        rampart_access::oidc::validate(&theirs, &jwks, &expected),
        Err(TokenError::Audience)
    );
    // An hour past its expiry.
    let later = Expected {
        now: claims.exp + 3600,
        ..expected.clone()
    };
    assert_eq!(
        rampart_access::oidc::validate(&ours, &jwks, &later),
        Err(TokenError::Expired)
    );
    // One byte of the signature changed.
    let (head, sig) = ours.rsplit_once('.').unwrap();
    let mut raw = B64URL.decode(sig).unwrap();
    raw[10] ^= 0x01;
    let bent = format!("{head}.{}", B64URL.encode(raw));
    assert_eq!(
        rampart_access::oidc::validate(&bent, &jwks, &expected),
        Err(TokenError::Signature)
    );
    // The claims changed under the original signature.
    let parts: Vec<&str> = ours.split('.').collect();
    let mut body: Value = serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap();
    body["groups"] = serde_json::json!(["rampart-admins"]);
    body["sub"] = serde_json::json!("mallory");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        B64URL.encode(serde_json::to_vec(&body).unwrap()),
        parts[2]
    );
    assert_eq!(
        rampart_access::oidc::validate(&forged, &jwks, &expected),
        Err(TokenError::Signature)
    );
    // Another login's nonce: a replayed token.
    let other_login = Expected {
        nonce: "n-2",
        ..expected.clone()
    };
    assert_eq!(
        rampart_access::oidc::validate(&ours, &jwks, &other_login),
        Err(TokenError::Nonce)
    );
    // Another issuer.
    let elsewhere = Expected {
        issuer: "http://127.0.0.1:1",
        ..expected.clone()
    };
    assert_eq!(
        rampart_access::oidc::validate(&ours, &jwks, &elsewhere),
        Err(TokenError::Issuer)
    );
    // After the provider rotated its key, the old JWKS does not know the new token's key.
    drop(provider);
    let provider = Provider::start("key-2", Some(port));
    let rotated = id_token(
        &provider,
        ("rampart", "rampart-test-secret"),
        redirect,
        "n-1",
    )
    .await;
    assert_eq!(
        rampart_access::oidc::validate(&rotated, &jwks, &expected),
        Err(TokenError::UnknownKey("key-2".into()))
    );
}
