//! Starts servers and agents for tests.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rampart_agent::{AgentOptions, EnrolOptions, StateDir};
use rampart_pki::{Ca, CaFiles, TokenSigner};
use rampart_server::{RunningServer, ServerConfig};
use rampart_store::Store;
use serde_json::{Value, json};

pub const PASSPHRASE: &[u8] = b"test passphrase";

/// No test request waits longer than this: a server that stops answering fails the test.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Which store a test server uses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub struct TestServer {
    pub server: Option<RunningServer>,
    pub config: ServerConfig,
    pub admin_token: String,
    pub root_pem: String,
    pub api_url: String,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

/// A URL to a fresh PostgreSQL schema and the schema's name, or `None` (with a SKIP line)
/// when there is no server — the store crate's shared test helper.
pub async fn pg_schema() -> Option<(String, String)> {
    let (scoped, _, schema) = rampart_store::testing::fresh_schema().await?;
    Some((scoped, schema))
}

pub fn http_client(root_pem: &str) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    // A redirect is an answer to check, not to follow (the OIDC login's 303).
    reqwest::Client::builder()
        .use_preconfigured_tls(cfg)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The password the harness gives the first admin at their first login.
pub const ADMIN_PASSWORD: &str = "harness: correct horse battery staple";

/// `POST /api/v1/login`; the issued token. Panics with the problem when refused.
pub async fn login(
    http: &reqwest::Client,
    api_url: &str,
    user: &str,
    password: &str,
    new_password: Option<&str>,
) -> String {
    let r = http
        .post(format!("{api_url}/api/v1/login"))
        .json(
            &serde_json::json!({"user": user, "password": password, "new_password": new_password}),
        )
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status.as_u16(), 201, "login as {user}: {v}");
    v["token"].as_str().unwrap().to_owned()
}

impl TestServer {
    /// A server on `db`, or `None` when that backend is unavailable (PostgreSQL absent).
    pub async fn start(db: Db) -> Option<TestServer> {
        Self::start_with(db, |_| {}).await
    }

    pub async fn start_with(db: Db, tweak: impl FnOnce(&mut ServerConfig)) -> Option<TestServer> {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::for_test(dir.path().join("data"));
        let pg = match db {
            Db::Sqlite => None,
            Db::Postgres => Some(pg_schema().await?),
        };
        config.database_url = pg.as_ref().map(|(u, _)| u.clone());
        tweak(&mut config);
        let server = RunningServer::start(config.clone())
            .await
            .expect("server starts");
        let password = server
            .initial_admin_password
            .clone()
            .expect("the first start sets the first admin's one-time password");
        let root_pem = server.root_pem.clone();
        let admin_token = login(
            &http_client(&root_pem),
            &server.api_url,
            "admin",
            &password,
            Some(ADMIN_PASSWORD),
        )
        .await;
        // Keep the ports for restarts.
        config.listen = server.api_addr;
        config.agent_listen = server.agent_addr;
        Some(TestServer {
            api_url: server.api_url.clone(),
            http: http_client(&root_pem),
            server: Some(server),
            config,
            admin_token,
            root_pem,
            _dir: dir,
            pg,
        })
    }

    /// Stops the server (the data stays).
    pub async fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }

    /// Starts it again on the same data and ports.
    pub async fn restart(&mut self) {
        self.stop().await;
        let mut last = None;
        for _ in 0..50 {
            match RunningServer::start(self.config.clone()).await {
                Ok(s) => {
                    assert!(
                        s.initial_admin_password.is_none(),
                        "the first admin's password is set only once"
                    );
                    self.server = Some(s);
                    return;
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("restart failed: {last:?}");
    }

    /// The store the server uses, opened separately (as another process would).
    pub async fn store(&self) -> Store {
        match &self.config.database_url {
            Some(url) => Store::open(url).await.unwrap(),
            None => Store::open_sqlite(&self.config.data_dir.join("rampart.db"))
                .await
                .unwrap(),
        }
    }

    /// Runs SQL on the server's database behind its back, as an intruder with database
    /// access would (tampering tests).
    pub async fn tamper(&self, sql: &str) {
        let url = match &self.config.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}",
                self.config.data_dir.join("rampart.db").display()
            ),
        };
        rampart_store::testing::tamper(&url, sql).await;
    }

    /// The server's CA and token signer, loaded from its store with the passphrase.
    pub async fn ca(&self) -> (Ca, TokenSigner) {
        let store = self.store().await;
        let f = |m: rampart_store::CaMaterial| CaFiles {
            cert_pem: m.cert_pem,
            key_pem: m.key_pem,
        };
        let root = f(store.ca_material("root").await.unwrap().unwrap());
        let inter = f(store.ca_material("intermediate").await.unwrap().unwrap());
        let signer = f(store.ca_material("token-signer").await.unwrap().unwrap());
        store.close().await;
        (
            Ca::load(&root, &inter, PASSPHRASE).unwrap(),
            TokenSigner::load(&signer, PASSPHRASE).unwrap(),
        )
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api_url)
    }

    /// An admin call; returns (status, JSON body).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.admin_token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// `GET path` with the admin token, the whole response (for its headers or a body that
    /// is not JSON).
    pub async fn get_response(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .unwrap()
    }

    /// `PUT /api/v1/event-destinations/{name}` as the admin.
    pub async fn put_destination(&self, name: &str, body: Value) -> (u16, Value) {
        self.call(
            reqwest::Method::PUT,
            &format!("/api/v1/event-destinations/{name}"),
            Some(body),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, v) = self.call(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    /// Event destination `name` as the API lists it (its health), once `done` holds for it;
    /// at most `within`. A delivery is settled a moment after its peer has the message.
    pub async fn destination_when(
        &self,
        name: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let started = std::time::Instant::now();
        loop {
            let list = self.get("/api/v1/event-destinations").await;
            let d = list
                .as_array()
                .and_then(|l| l.iter().find(|d| d["name"] == name))
                .cloned()
                .unwrap_or_else(|| panic!("no destination {name}: {list}"));
            if done(&d) {
                return d;
            }
            assert!(started.elapsed() < within, "{d}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `GET path` with no credential, as any client of a public endpoint makes it; the JSON
    /// body of a 200.
    pub async fn get_public(&self, path: &str) -> Value {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "GET {path}");
        r.json().await.unwrap()
    }

    /// An attestation's detail, once issued (the receipt names it before it is signed).
    pub async fn attestation(&self, agent: &str, jti: &str) -> Value {
        let path = format!("/api/v1/agents/{agent}/attestations/{jti}");
        let started = std::time::Instant::now();
        loop {
            let (status, v) = self.call(reqwest::Method::GET, &path, None).await;
            if status == 200 {
                return v;
            }
            assert!(
                status == 404 && started.elapsed() < Duration::from_secs(20),
                "GET {path}: {status} {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An agent enrolled in group `web`, with [`POLICY_V1`] assigned to the group every six
    /// hours (so attestations last about twelve); returns it and the policy's version.
    pub async fn agent_with_policy(&self) -> (TestAgent, i64) {
        let a = TestAgent::enrol(self, &self.token("web", 1).await)
            .await
            .unwrap();
        let version = self.push_policy(POLICY_V1, "web", "0 */6 * * *").await;
        (a, version)
    }

    pub async fn token(&self, group: &str, max_uses: u32) -> String {
        let (status, v) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/tokens",
                Some(json!({"group": group, "max_uses": max_uses, "labels": {"env": "test"}})),
            )
            .await;
        assert_eq!(status, 201, "{v}");
        v["token"].as_str().unwrap().to_string()
    }

    /// A waiver in force: requested by the admin for `check` (POLICY:GLOB) over `scope` for
    /// 30 days, approved by the auditor `audrey` (made here: nobody decides their own request).
    /// Returns the waiver as approved.
    pub async fn approved_waiver(&self, check: &str, scope: Value, justification: &str) -> Value {
        let until = (time::OffsetDateTime::now_utc() + time::Duration::days(30)).date();
        let (status, w) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/waivers",
                Some(json!({
                    "check": check,
                    "scope": scope,
                    "until": until.to_string(),
                    "justification": justification,
                })),
            )
            .await;
        assert_eq!(status, 201, "{w}");
        let audrey = self
            .user_token("audrey", rampart_access::Role::Auditor)
            .await;
        let r = self
            .http
            .post(self.url(&format!(
                "/api/v1/waivers/{}/approve",
                w["id"].as_str().unwrap()
            )))
            .bearer_auth(&audrey)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.json().await.unwrap()
    }

    /// Uploads a policy and assigns it to a group; returns the version.
    pub async fn push_policy(&self, content: &str, group: &str, schedule: &str) -> i64 {
        let (status, v) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/policies",
                Some(json!({"file_name": "p.yml", "content": content})),
            )
            .await;
        assert!(status == 201 || status == 200, "{status} {v}");
        let id = v["policy_id"].as_str().unwrap().to_string();
        let version = v["version"].as_i64().unwrap();
        let (status, v) = self
            .call(
                reqwest::Method::PUT,
                &format!("/api/v1/policies/{id}/assignments"),
                Some(json!({"target": {"kind": "group", "name": group}, "version": version, "schedule": schedule})),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        version
    }

    pub async fn finish(mut self) {
        self.stop().await;
        if let Some((_, schema)) = self.pg.take() {
            rampart_store::testing::drop_schema(&rampart_store::testing::database_url(), &schema)
                .await;
        }
    }
}

/// A test agent: a state directory and a scan root.
pub struct TestAgent {
    pub state: StateDir,
    pub opts: AgentOptions,
    pub id: String,
    _dir: tempfile::TempDir,
}

/// A scan root with an sshd_config that passes one check and fails another.
pub fn fixture_root(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("etc/ssh")).unwrap();
    std::fs::write(
        root.join("etc/ssh/sshd_config"),
        "PermitRootLogin no\nPasswordAuthentication yes\n",
    )
    .unwrap();
    root
}

pub const POLICY_V1: &str = r#"rampart: 1
policy:
  id: test-ssh
  name: Test SSH policy
checks:
  - id: SSH-1
    title: Root login disabled
    severity: high
    rules:
      - {file: /etc/ssh/sshd_config, match: '^PermitRootLogin\s+no'}
  - id: SSH-2
    title: Password authentication disabled
    severity: medium
    rules:
      - {file: /etc/ssh/sshd_config, match: '^PasswordAuthentication\s+no'}
"#;

impl TestAgent {
    pub async fn enrol(
        server: &TestServer,
        token: &str,
    ) -> Result<TestAgent, rampart_agent::AgentError> {
        Self::enrol_as(server, token, "web-01", "Debian GNU/Linux 12").await
    }

    /// Enrols with the host name and operating system the agent reports.
    pub async fn enrol_as(
        server: &TestServer,
        token: &str,
        hostname: &str,
        os: &str,
    ) -> Result<TestAgent, rampart_agent::AgentError> {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        let opts = AgentOptions {
            scan_root: fixture_root(dir.path()),
            jobs: 2,
            ..AgentOptions::default()
        };
        let identity = rampart_agent::enroll(
            &state,
            token,
            &EnrolOptions {
                server: Some(server.api_url.clone()),
                hostname: hostname.into(),
                os: os.into(),
                arch: "x86_64".into(),
            },
        )
        .await?;
        Ok(TestAgent {
            state,
            opts,
            id: identity.agent_id,
            _dir: dir,
        })
    }

    pub async fn run_once(
        &self,
    ) -> Result<rampart_agent::AgentStatusReport, rampart_agent::AgentError> {
        rampart_agent::run_once(&self.state, &self.opts).await
    }

    pub fn spool(&self) -> rampart_agent::Spool {
        rampart_agent::Spool::new(self.state.root().join("spool"), 1000, u64::MAX)
    }

    /// The agent's own mTLS client on the agent port, for posting runs made by hand.
    pub fn poster(&self, server: &TestServer) -> RunPoster {
        let chain = std::fs::read_to_string(self.state.root().join("agent-cert.pem")).unwrap();
        let key = std::fs::read_to_string(self.state.root().join("agent-key.pem")).unwrap();
        use rustls::pki_types::pem::PemObject as _;
        let leaf = rustls::pki_types::CertificateDer::pem_slice_iter(chain.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        RunPoster {
            client: mtls_client(&server.root_pem, Some((&chain, &key))),
            url: format!(
                "https://127.0.0.1:{}/agent/v1/runs",
                server.config.agent_listen.port()
            ),
            cert_der: leaf.to_vec(),
        }
    }
}

/// Posts runs as an agent does: gzip JSON over the agent's certificate.
pub struct RunPoster {
    client: reqwest::Client,
    url: String,
    /// The agent's certificate (DER), which attestations are bound to.
    pub cert_der: Vec<u8>,
}

impl RunPoster {
    pub async fn post(&self, sub: &rampart_core::fleet::RunSubmission) -> (u16, Value) {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&serde_json::to_vec(sub).unwrap()).unwrap();
        let r = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(gz.finish().unwrap())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap())
    }
}

/// A run of [`POLICY_V1`] (SHA-256 of its text, server version `version`) as an agent would
/// post it: the given statuses, started at `started`.
pub fn submission(
    run_id: &str,
    version: i64,
    statuses: &[(&str, rampart_core::Status)],
    started: time::OffsetDateTime,
) -> rampart_core::fleet::RunSubmission {
    let digest = rampart_core::digest::sha256_hex(POLICY_V1.as_bytes());
    let info = rampart_core::PolicyInfo {
        id: "test-ssh".into(),
        name: "Test SSH policy".into(),
        sha256: digest.clone(),
        ..rampart_core::PolicyInfo::default()
    };
    let outcomes = statuses
        .iter()
        .map(|(id, status)| rampart_core::CheckOutcome::new(*id, format!("check {id}"), *status))
        .collect();
    let mut report = rampart_core::ScanReport::single(info, outcomes, started);
    report.host = rampart_core::HostInfo {
        hostname: "web-01".into(),
        os: "Debian GNU/Linux 12".into(),
        kernel: "6.1.0".into(),
        root: None,
    };
    report.refresh();
    rampart_core::fleet::RunSubmission {
        run_id: run_id.into(),
        policy_version: Some(version),
        policy_digest: digest,
        trigger: "manual".into(),
        report,
        observables: Vec::new(),
    }
}

/// How long one server test may take before it fails: a hang must be a failure with the test's
/// name, never a CI run that waits for ever.
pub const TEST_DEADLINE: Duration = Duration::from_secs(180);

/// Runs a test body, failing it when it is not done within [`TEST_DEADLINE`].
pub async fn bounded(test: impl std::future::Future<Output = ()>) {
    if tokio::time::timeout(TEST_DEADLINE, test).await.is_err() {
        panic!("test did not finish within {TEST_DEADLINE:?}: it hangs");
    }
}

/// Declares `name::sqlite` and `name::postgres` for `async fn name(db: Db)`.
#[macro_export]
macro_rules! server_test {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::server::harness::bounded(super::$name($crate::server::harness::Db::Sqlite))
                    .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::server::harness::bounded(super::$name(
                    $crate::server::harness::Db::Postgres,
                ))
                .await;
            }
        }
    };
}

/// A client presenting `chain_pem`/`key_pem` (or nothing) to the agent port.
pub fn mtls_client(root_pem: &str, identity: Option<(&str, &str)>) -> reqwest::Client {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let cfg = match identity {
        Some((chain, key)) => {
            let chain: Vec<_> = CertificateDer::pem_slice_iter(chain.as_bytes())
                .map(|c| c.unwrap())
                .collect();
            builder
                .with_client_auth_cert(
                    chain,
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                )
                .unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    reqwest::Client::builder()
        .use_preconfigured_tls(cfg)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap()
}

/// Every message in an error's cause chain.
pub fn chain_text(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

/// A threat-intel fixture from `../shared/fixtures/intel/` (read in place, never copied).
pub fn intel_fixture(rel: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/intel")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A TLS connection to the API port that speaks no HTTP yet: for requests a client library
/// will not send (chunked bodies of a chosen shape, silence).
pub async fn raw_tls(s: &TestServer) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(s.config.listen)
        .await
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(s.root_pem.as_bytes()).unwrap())
        .unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect(
            rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap(),
            tcp,
        )
        .await
        .expect("handshake completes")
}

pub fn new_user(name: &str, role: rampart_access::Role, groups: &[&str]) -> rampart_store::NewUser {
    rampart_store::NewUser {
        name: name.into(),
        role,
        groups: groups.iter().map(|g| g.to_string()).collect(),
        password_hash: None,
        must_change_password: false,
        oidc_subject: None,
        created_at: time::OffsetDateTime::now_utc(),
    }
}

/// Stores a token for `user` with `role` and `groups`, `expires_in` from now; returns it.
pub async fn token(
    store: &Store,
    user: &rampart_store::User,
    name: &str,
    role: rampart_access::Role,
    groups: &[&str],
    expires_in: time::Duration,
) -> String {
    let secret = rampart_access::secret::new_token();
    let now = time::OffsetDateTime::now_utc();
    store
        .insert_api_token(&rampart_store::NewApiToken {
            user_id: user.id,
            name: name.into(),
            token_hash: rampart_access::secret::digest(&secret),
            shown: rampart_access::secret::shown(&secret),
            role,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            created_at: now - time::Duration::days(1),
            expires_at: now + expires_in,
        })
        .await
        .unwrap();
    secret
}

impl TestServer {
    /// A user of `role` (fleet-wide) and an API token of theirs valid for a day.
    pub async fn user_token(&self, name: &str, role: rampart_access::Role) -> String {
        let store = self.store().await;
        let user = store.insert_user(&new_user(name, role, &[])).await.unwrap();
        token(&store, &user, "test", role, &[], time::Duration::days(1)).await
    }
}

/// A private CA and a certificate for 127.0.0.1 it issued: (CA PEM, cert PEM, key PEM).
pub fn test_pki() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "SIEM test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), leaf.pem(), key.serialize_pem())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
