//! `rampart server` and the fleet commands as real processes: the CLI end to end, a wrong CA
//! passphrase, and `kill -9` of the server while agents post results.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::harness::{code, s, stderr, stdout, write};

const PASS: &str = "cli test passphrase";

pub(super) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(super) struct ServerProc {
    database_url: Option<String>,
    child: Child,
    pub(super) data: PathBuf,
    pub(super) api: u16,
    pub(super) admin_token: Option<String>,
}

/// The first admin's password after the first login.
const ADMIN_PASSWORD: &str = "cli test: correct horse battery staple";

impl ServerProc {
    fn spawn(data: &Path, api: u16, agent: u16, passphrase: &str) -> Child {
        Self::spawn_db(data, api, agent, passphrase, None, &[])
    }

    fn spawn_db(
        data: &Path,
        api: u16,
        agent: u16,
        passphrase: &str,
        db: Option<&str>,
        extra: &[&str],
    ) -> Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart"));
        cmd.args(["server", "--data-dir", s(data)])
            .args([
                "--listen",
                &format!("127.0.0.1:{api}"),
                "--agent-listen",
                &format!("127.0.0.1:{agent}"),
            ])
            .args(["--name", "localhost", "--name", "127.0.0.1"])
            .env("RAMPART_CA_PASSPHRASE", passphrase)
            // Audit checkpoints every second: tests see their entries signed without waiting.
            .env("RAMPART_AUDIT_CHECKPOINT_SECS", "1")
            .env_remove("RAMPART_DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(url) = db {
            cmd.args(["--database-url", url]);
        }
        cmd.args(extra);
        cmd.spawn().expect("spawn rampart server")
    }

    /// Starts a server and waits until it prints its banner (and, on first start, where the first
    /// admin's password was written, then logs in as them).
    pub(super) fn start(data: &Path, api: u16, agent: u16) -> ServerProc {
        Self::start_db(
            data,
            api,
            agent,
            None,
            !data.join("rampart.db").exists(),
            &[],
        )
    }

    pub(super) fn start_db(
        data: &Path,
        api: u16,
        agent: u16,
        db: Option<&str>,
        first_start: bool,
        extra: &[&str],
    ) -> ServerProc {
        let mut child = Self::spawn_db(data, api, agent, PASS, db, extra);
        let out = child.stdout.take().unwrap();
        let mut lines = BufReader::new(out).lines();
        let mut password = None;
        let mut ready = false;
        while let Some(Ok(line)) = lines.next() {
            // The password itself never reaches stdout (the journal): only where it was written.
            if let Some(rest) = line.strip_prefix("admin password written to ") {
                let path = rest.split(" (").next().unwrap();
                assert_eq!(Path::new(path), data.join("admin-password"));
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{path}");
                let p = std::fs::read_to_string(path).unwrap().trim().to_string();
                assert_eq!(p.len(), 27, "{p}");
                assert!(!line.contains(&p), "admin password on stdout: {line}");
                password = Some(p);
                break;
            }
            if line.starts_with("root CA:") {
                ready = true;
                if !first_start {
                    break;
                }
            }
        }
        assert!(ready, "server did not start");
        std::thread::spawn(move || for _ in lines {});
        let mut server = ServerProc {
            database_url: db.map(str::to_string),
            child,
            data: data.to_path_buf(),
            api,
            admin_token: None,
        };
        if let Some(otp) = password {
            server.admin_token = Some(server.first_login(&otp));
        }
        server
    }

    /// Where `rampart login` keeps this test's credentials.
    /// An agent enrolled in group `web` that scanned once with [`POLICY`] assigned (its root:
    /// root login disabled, so SSH-1 passes); returns the agent id.
    pub(super) fn agent_with_a_run(&self, dir: &Path, token: &str) -> String {
        let tfile = dir.join("enrol-token.txt");
        let o = self.cli(
            token,
            &["token", "create", "--group", "web", "--output", s(&tfile)],
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let state = dir.join("agent");
        let o = self.cli(
            token,
            &[
                "agent",
                "enroll",
                "--token-file",
                s(&tfile),
                "--state-dir",
                s(&state),
            ],
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let agent_id = stdout(&o).split_whitespace().nth(3).unwrap().to_string();
        let pfile = write(dir, "p.yml", POLICY);
        let o = self.cli(
            token,
            &[
                "policy",
                "push",
                s(&pfile),
                "--group",
                "web",
                "--schedule",
                "0 */6 * * *",
            ],
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let root = dir.join("root");
        write(&root, "etc/ssh/sshd_config", "PermitRootLogin no\n");
        let o = self.cli(
            token,
            &[
                "agent",
                "run",
                "--once",
                "--state-dir",
                s(&state),
                "--scan-root",
                s(&root),
            ],
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        agent_id
    }

    pub(super) fn config_dir(&self) -> PathBuf {
        self.data.with_file_name("cli-config")
    }

    /// `rampart login` as the first admin, as an operator would on a new server: the one-time
    /// password, then a new one, both on standard input. Returns the token it kept.
    fn first_login(&self, otp: &str) -> String {
        self.login("admin", otp, ADMIN_PASSWORD, &self.config_dir())
    }

    /// `rampart login` as `user` with a one-time password, changed to `new`; the kept token.
    pub(super) fn login(&self, user: &str, otp: &str, new: &str, config: &Path) -> String {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(["login", "--user", user, "--password-stdin"])
            .env("RAMPART_SERVER", self.url())
            .env("RAMPART_CA_FILE", self.data.join("root-ca.pem"))
            .env("RAMPART_CONFIG_DIR", config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        write!(child.stdin.take().unwrap(), "{otp}\n{new}\n").unwrap();
        let o = child.wait_with_output().unwrap();
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        assert!(o.status.success(), "rampart login: {out}{err}");
        assert!(err.contains("one-time"), "{err}");
        assert!(
            out.starts_with(&format!("logged in to {} as {user} (", self.url())),
            "{out}"
        );
        use std::os::unix::fs::PermissionsExt;
        let file = config.join("credentials.json");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(config), 0o700);
        let saved: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let token = saved["servers"][self.url()]["token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(token.starts_with("rpt_"), "{token}");
        assert!(!out.contains(&token), "the token is not printed");
        token
    }

    pub(super) fn url(&self) -> String {
        format!("https://localhost:{}", self.api)
    }

    /// A command with no token given: the one `rampart login` kept in `config`.
    pub(super) fn cli_logged_in(&self, config: &Path, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(args)
            .env("RAMPART_SERVER", self.url())
            .env("RAMPART_CA_FILE", self.data.join("root-ca.pem"))
            .env("RAMPART_CONFIG_DIR", config)
            .env_remove("RAMPART_TOKEN")
            .env_remove("RAMPART_ADMIN_TOKEN")
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    pub(super) fn cli(&self, token: &str, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_rampart"))
            .args(args)
            .env("RAMPART_SERVER", self.url())
            .env("RAMPART_CA_FILE", self.data.join("root-ca.pem"))
            .env("RAMPART_ADMIN_TOKEN", token)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const POLICY: &str = r#"rampart: 1
policy:
  id: cli-ssh
  name: CLI SSH policy
checks:
  - id: SSH-1
    title: Root login disabled
    severity: high
    rules:
      - {file: /etc/ssh/sshd_config, match: '^PermitRootLogin\s+no'}
"#;

#[test]
fn fleet_commands_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProc::start(&dir.path().join("data"), free_port(), free_port());
    let token = server
        .admin_token
        .clone()
        .expect("the first start's login kept a token");
    // Without a token given, commands use the one `rampart login` kept for this server; with
    // none kept, they say how to log in.
    let o = server.cli_logged_in(&server.config_dir(), &["agents", "list", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "[]");
    let o = server.cli_logged_in(&dir.path().join("nobody"), &["agents", "list"]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains(&format!(
            "not logged in to {}: run `rampart login --server",
            server.url()
        )),
        "{}",
        stderr(&o)
    );
    let tfile = dir.path().join("t.txt");
    let o = server.cli(
        &token,
        &[
            "token",
            "create",
            "--group",
            "web",
            "--label",
            "env=prod",
            "--ttl",
            "15m",
            "--output",
            s(&tfile),
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&tfile).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The token is never a command-line argument.
    let o = server.cli(&token, &["agent", "enroll", "--token", "abc"]);
    assert_eq!(code(&o), 2);

    let state = dir.path().join("agent");
    let o = server.cli(
        &token,
        &[
            "agent",
            "enroll",
            "--token-file",
            s(&tfile),
            "--state-dir",
            s(&state),
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let agent_id = stdout(&o).split_whitespace().nth(3).unwrap().to_string();

    let pfile = write(dir.path(), "p.yml", POLICY);
    let push = [
        "policy",
        "push",
        s(&pfile),
        "--group",
        "web",
        "--schedule",
        "0 */6 * * *",
    ];
    let o = server.cli(&token, &push);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("policy cli-ssh version 1"),
        "{}",
        stdout(&o)
    );
    // --json: one JSON document, the stored version and the assignment, and nothing else.
    let o = server.cli(&token, &[&push[..], &["--json"]].concat());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("policy push --json");
    assert_eq!(v["policy"]["policy_id"], "cli-ssh", "{v}");
    assert_eq!(
        v["policy"]["created"], false,
        "the same content: unchanged: {v}"
    );
    assert_eq!(v["assignment"]["target"]["name"], "web", "{v}");

    let root = dir.path().join("root");
    write(&root, "etc/ssh/sshd_config", "PermitRootLogin no\n");
    let run_once = [
        "agent",
        "run",
        "--once",
        "--state-dir",
        s(&state),
        "--scan-root",
        s(&root),
    ];
    let o = server.cli(&token, &[&run_once[..], &["--json"]].concat());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("agent run --once --json");
    assert_eq!(
        (v["agent_id"].as_str(), v["state"].as_str()),
        (Some(agent_id.as_str()), Some("idle")),
        "{v}"
    );
    let o = server.cli(
        &token,
        &["agent", "renew", "--state-dir", s(&state), "--json"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("agent renew --json");
    assert_eq!(v["agent_id"].as_str(), Some(agent_id.as_str()), "{v}");
    assert!(v["serial"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
    let o = server.cli(&token, &["results", "show", &agent_id]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("cli-ssh") && out.contains("policy_update") && out.contains("100.0"),
        "{out}"
    );
    let o = server.cli(&token, &["agents", "list"]);
    assert!(
        stdout(&o).contains(&agent_id) && stdout(&o).contains("online"),
        "{}",
        stdout(&o)
    );
    // Every reading command prints from the API's own types, as tables or as JSON.
    let o = server.cli(&token, &["results", "show", &agent_id, "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let runs: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("results show --json");
    let run = runs[0]["id"].as_str().expect("a run id").to_owned();
    let o = server.cli(&token, &["results", "show", &agent_id, "--run", &run]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!("run {run} of cli-ssh v1 on ")) && out.contains("score 100.0"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("SSH-1") && l.contains(" pass ") && l.contains("high")),
        "{out}"
    );
    let o = server.cli(
        &token,
        &["results", "show", &agent_id, "--diff", &run, &run],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("Newly failing (0):"), "{}", stdout(&o));
    let o = server.cli(
        &token,
        &["results", "history", &agent_id, "cli-ssh", "SSH-1"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("SSH-1 is pass since 20"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.ends_with(&run) && l.contains(" pass ")),
        "{out}"
    );
    let o = server.cli(&token, &["policy", "list"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).lines().any(|l| l.starts_with("cli-ssh")
            && l.contains("group web")
            && l.contains("0 */6 * * *")),
        "{}",
        stdout(&o)
    );
    let o = server.cli(&token, &["agents", "show", &agent_id]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("agents show");
    assert_eq!(v["id"].as_str(), Some(agent_id.as_str()), "{v}");
    assert_eq!(v["connection"], "online", "{v}");
    assert_eq!(
        v["certificates"].as_array().map(Vec::len),
        Some(2),
        "enrolled, renewed: {v}"
    );

    // A spare token, revoked; the policy unassigned from the group: both report as JSON.
    let o = server.cli(
        &token,
        &[
            "token", "create", "--group", "web", "--ttl", "15m", "--json",
        ],
    );
    let spare: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("token create --json");
    let jti = spare["jti"].as_str().expect("jti").to_owned();
    let o = server.cli(&token, &["token", "revoke", &jti, "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("token revoke --json");
    assert_eq!(v["revoked"].as_str(), Some(jti.as_str()), "{v}");
    let o = server.cli(
        &token,
        &["policy", "unassign", "cli-ssh", "--group", "web", "--json"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("policy unassign --json");
    assert_eq!(v["unassigned"]["name"], "web", "{v}");

    // Revoked: the next pass is refused at the handshake and says so.
    let o = server.cli(
        &token,
        &["agents", "revoke", &agent_id, "--reason", "test", "--json"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("agents revoke --json");
    assert!(
        v["serials"].as_array().is_some_and(|a| !a.is_empty()),
        "{v}"
    );
    let o = server.cli(&token, &run_once);
    assert_eq!(code(&o), 6, "revoked has its own exit code: {}", stderr(&o));
    assert!(
        stderr(&o).contains("refuses this agent's certificate: an admin revoked this agent")
            && stderr(&o).contains("re-enrolment token"),
        "{}",
        stderr(&o)
    );
    let o = server.cli(&token, &["agent", "status", "--state-dir", s(&state)]);
    assert!(
        stdout(&o).contains("state        revoked") && stdout(&o).contains(&agent_id),
        "{}",
        stdout(&o)
    );
    let o = server.cli(
        &token,
        &["agent", "status", "--state-dir", s(&state), "--json"],
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("agent status --json");
    assert_eq!(
        (v["agent_id"].as_str(), v["state"].as_str()),
        (Some(agent_id.as_str()), Some("revoked"))
    );
    // Refused by the server (a wrong admin token): 5; no server at all: 4.
    let o = server.cli("rpt_wrong", &["agents", "list"]);
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    assert!(stderr(&o).contains("invalid_token"), "{}", stderr(&o));
    let o = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["agents", "list"])
        .env(
            "RAMPART_SERVER",
            format!("https://127.0.0.1:{}", free_port()),
        )
        .env("RAMPART_CA_FILE", server.data.join("root-ca.pem"))
        .env("RAMPART_ADMIN_TOKEN", &token)
        .output()
        .unwrap();
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot reach"), "{}", stderr(&o));
    // Rotating the intermediate reports its fingerprint, as JSON on request.
    let o = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["ca", "rotate-intermediate", "--json", "--data-dir"])
        .arg(&server.data)
        .env("RAMPART_CA_PASSPHRASE", PASS)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("rotate --json");
    assert!(
        v["intermediate_sha256"]
            .as_str()
            .is_some_and(|f| f.len() == 64 && f.bytes().all(|b| b.is_ascii_hexdigit())),
        "{v}"
    );
}

/// Users and API tokens from the CLI: an admin adds a group-limited operator, who logs in,
/// makes a viewer token within their grant, and is refused what their role lacks with the
/// permission named; the admin revokes the token and disables the user.
#[test]
fn users_and_tokens_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProc::start(&dir.path().join("data"), free_port(), free_port());
    let admin = server.admin_token.clone().unwrap();
    let o = server.cli(
        &admin,
        &[
            "users", "add", "dave", "--role", "operator", "--groups", "web",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("added dave (operator of web); one-time password"),
        "{out}"
    );
    let otp = out.lines().nth(1).unwrap().trim().to_owned();
    assert_eq!(otp.len(), 27, "{out}");
    let daves = dir.path().join("dave-config");
    let dave = server.login("dave", &otp, "blue harbour lights at nine", &daves);

    // Refused, naming the permission the role lacks.
    let o = server.cli_logged_in(&daves, &["users", "list"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("403 (permission_denied): this needs the users_read permission, which the operator role does not have"), "{}", stderr(&o));

    let file = dir.path().join("ci.token");
    let o = server.cli_logged_in(
        &daves,
        &[
            "tokens",
            "create",
            "--name",
            "ci",
            "--role",
            "viewer",
            "--ttl",
            "30d",
            "--output",
            s(&file),
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("token ci (viewer of web, until "),
        "{}",
        stdout(&o)
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let ci = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert!(ci.starts_with("rpt_"));
    let o = server.cli_logged_in(
        &daves,
        &["tokens", "create", "--name", "big", "--role", "admin"],
    );
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("permission_denied"), "{}", stderr(&o));
    let o = server.cli_logged_in(&daves, &["tokens", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{listed}");
    assert_eq!(names[0], "ci");
    assert!(!stdout(&o).contains(&ci) && !stdout(&o).contains(&dave));

    // The viewer token reads agents and may not issue enrolment tokens.
    let o = server.cli(&ci, &["agents", "list", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = server.cli(&ci, &["token", "create", "--group", "web"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("enrolment_manage"), "{}", stderr(&o));

    // The admin revokes it and disables dave.
    let o = server.cli(&admin, &["tokens", "revoke", "ci", "--user", "dave"]);
    assert_eq!(
        (code(&o), stdout(&o).trim()),
        (0, "token ci of dave revoked"),
        "{}",
        stderr(&o)
    );
    let o = server.cli(&ci, &["agents", "list"]);
    assert!(stderr(&o).contains("token_revoked"), "{}", stderr(&o));
    let o = server.cli(&admin, &["users", "disable", "dave"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).starts_with("dave disabled"), "{}", stdout(&o));
    let o = server.cli_logged_in(&daves, &["agents", "list"]);
    assert!(stderr(&o).contains("user_disabled"), "{}", stderr(&o));
    let o = server.cli(&admin, &["users", "list"]);
    let table = stdout(&o);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("dave") && l.contains("operator") && l.contains("disabled")),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("admin") && l.contains("active")),
        "{table}"
    );
}

#[test]
fn wrong_passphrase_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    drop(ServerProc::start(&data, free_port(), free_port()));
    let mut child = ServerProc::spawn(&data, free_port(), free_port(), "another passphrase!");
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("wrong CA passphrase"), "{err}");
    // And a missing one is explained.
    let o = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["server", "--data-dir", s(&data)])
        .env_remove("RAMPART_CA_PASSPHRASE")
        .output()
        .unwrap();
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("RAMPART_CA_PASSPHRASE"),
        "{}",
        stderr(&o)
    );
}

/// Agents post results as fast as they can; the server is killed with SIGKILL mid-stream and
/// restarted. Every result the server acknowledged must be there, complete.
#[test]
fn kill_9_during_ingestion_loses_no_acknowledged_result_sqlite() {
    kill_9_during_ingestion(None);
}

/// The same against PostgreSQL (a fresh schema of the server at `DATABASE_URL`).
#[test]
fn kill_9_during_ingestion_loses_no_acknowledged_result_postgres() {
    let Some(schema) = PgSchema::new("kill -9") else {
        return;
    };
    kill_9_during_ingestion(Some(schema.url.clone()));
    schema.drop();
}

/// A fresh schema on the PostgreSQL server at `DATABASE_URL` for a server process.
pub(super) struct PgSchema {
    pub(super) url: String,
    base: String,
    schema: String,
}

impl PgSchema {
    /// `None` (after a SKIP line) when no server answers, unless PostgreSQL is required.
    pub(super) fn new(test: &str) -> Option<PgSchema> {
        let base = std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let rt = tokio::runtime::Runtime::new().unwrap();
        let admin = match rt.block_on(sqlx::PgPool::connect(&base)) {
            Ok(p) => p,
            Err(e) => {
                assert_ne!(
                    std::env::var("RAMPART_REQUIRE_POSTGRES").as_deref(),
                    Ok("1"),
                    "PostgreSQL required: {e}"
                );
                eprintln!("SKIP: PostgreSQL {test} test: cannot reach {base}: {e}");
                return None;
            }
        };
        let schema = format!("rampart_k_{}", uuid::Uuid::new_v4().simple());
        rt.block_on(
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\""))).execute(&admin),
        )
        .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        Some(PgSchema {
            url: format!("{base}{sep}options=-c%20search_path%3D{schema}"),
            base,
            schema,
        })
    }

    pub(super) fn drop(self) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let admin = rt.block_on(sqlx::PgPool::connect(&self.base)).unwrap();
        rt.block_on(
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA \"{}\" CASCADE",
                self.schema
            )))
            .execute(&admin),
        )
        .unwrap();
    }
}

fn kill_9_during_ingestion(db: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (api, agent_port) = (free_port(), free_port());
    let mut server = ServerProc::start_db(&data, api, agent_port, db.as_deref(), true, &[]);
    let token = server.admin_token.clone().unwrap();
    let tfile = dir.path().join("t.txt");
    let o = server.cli(
        &token,
        &[
            "token",
            "create",
            "--group",
            "load",
            "--max-uses",
            "4",
            "--output",
            s(&tfile),
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let enrol_token = std::fs::read_to_string(&tfile).unwrap();
    let mut clients = Vec::new();
    for i in 0..4 {
        let state = rampart_agent::StateDir::new(dir.path().join(format!("agent{i}")));
        let opts = rampart_agent::EnrolOptions {
            server: None,
            hostname: format!("h{i}"),
            os: "t".into(),
            arch: "t".into(),
        };
        rt.block_on(rampart_agent::enroll(&state, &enrol_token, &opts))
            .unwrap();
        clients.push(agent_http(&state));
    }
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let url = format!("https://localhost:{agent_port}/agent/v1/runs");
    let body_checks = 50;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (i, client) in clients.into_iter().enumerate() {
        let (acked, url, stop) = (acked.clone(), url.clone(), stop.clone());
        tasks.push(rt.spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let run_id = format!("kill9-{i}-{n:08}");
                n += 1;
                let body = gz_submission(&run_id, body_checks);
                let sent = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("content-encoding", "gzip")
                    .body(body)
                    .send()
                    .await;
                if let Ok(r) = sent
                    && r.status().is_success()
                {
                    acked.lock().unwrap().push(run_id);
                }
            }
        }));
    }
    // Let ingestion run, then kill -9 while requests are in flight.
    let t = Instant::now();
    while acked.lock().unwrap().len() < 40 && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    rustix_kill(&server.child);
    let _ = server.child.wait();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        rt.block_on(t).unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 40,
        "only {} results acknowledged before the kill",
        acked.len()
    );

    let server = ServerProc::start_db(&data, api, agent_port, db.as_deref(), false, &[]);
    let store = match &server.database_url {
        Some(url) => rt.block_on(rampart_store::Store::open(url)).unwrap(),
        None => rt
            .block_on(rampart_store::Store::open_sqlite(&data.join("rampart.db")))
            .unwrap(),
    };
    for id in &acked {
        let run = rt
            .block_on(store.run(id))
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged run {id} lost"));
        assert_eq!(
            run.checks.len(),
            body_checks,
            "run {id} stored incompletely"
        );
    }
    drop(server);
    eprintln!(
        "kill -9 test: {} acknowledged results, all present and complete",
        acked.len()
    );
}

fn rustix_kill(child: &Child) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
}

fn agent_http(state: &rampart_agent::StateDir) -> reqwest::Client {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let read = |n: &str| std::fs::read_to_string(state.root().join(n)).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(read("root-ca.pem").as_bytes()).unwrap())
        .unwrap();
    let chain: Vec<_> = CertificateDer::pem_slice_iter(read("agent-cert.pem").as_bytes())
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_slice(read("agent-key.pem").as_bytes()).unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .unwrap();
    reqwest::Client::builder()
        .use_preconfigured_tls(cfg)
        .build()
        .unwrap()
}

fn gz_submission(run_id: &str, checks: usize) -> Vec<u8> {
    use rampart_core::{CheckOutcome, PolicyInfo, ScanReport, Status};
    let outcomes = (0..checks)
        .map(|i| {
            CheckOutcome::new(
                format!("C-{i}"),
                format!("check {i}"),
                if i % 3 == 0 {
                    Status::Fail
                } else {
                    Status::Pass
                },
            )
        })
        .collect();
    let info = PolicyInfo {
        id: "load".into(),
        name: "load".into(),
        ..PolicyInfo::default()
    };
    let report = ScanReport::single(info, outcomes, time::OffsetDateTime::now_utc());
    let sub = rampart_core::fleet::RunSubmission {
        run_id: run_id.into(),
        policy_version: None,
        policy_digest: "00".repeat(32),
        trigger: "manual".into(),
        report,
        observables: Vec::new(),
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&serde_json::to_vec(&sub).unwrap()).unwrap();
    gz.finish().unwrap()
}

/// The systemd units in `deploy/` are valid for systemd itself (checked with
/// `systemd-analyze verify`, pointing ExecStart at the binary under test).
#[test]
fn deploy_units_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP: systemd-analyze not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for unit in ["rampart-agent.service", "rampart-server.service"] {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../deploy")
                .join(unit),
        )
        .unwrap();
        assert!(text.contains("ExecStart=/usr/local/bin/rampart "), "{unit}");
        if unit == "rampart-agent.service" {
            // The codes of exit.rs for "revoked" and "certificate expired": no restart loop.
            assert!(text.contains("RestartPreventExitStatus=6 7"), "{unit}");
        }
        let path = write(
            dir.path(),
            unit,
            &text.replace("/usr/local/bin/rampart", env!("CARGO_BIN_EXE_rampart")),
        );
        let o = Command::new("systemd-analyze")
            .args(["verify", s(&path)])
            .output()
            .unwrap();
        assert!(
            o.status.success() && stderr(&o).trim().is_empty(),
            "{unit}: {}",
            stderr(&o)
        );
    }
}

/// `--log-format json`: every line the server writes is one JSON object, and every line
/// written while serving a request carries that request's id (here a refused credential's
/// warning and the request's access line share it).
#[test]
fn json_logs_carry_the_request_id_on_every_line_of_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (api, agent_port) = (free_port(), free_port());
    let mut server = ServerProc::start_db(
        &data,
        api,
        agent_port,
        None,
        true,
        &["--log-format", "json", "-v"],
    );
    let err = server.child.stderr.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(l);
        }
    });
    let o = server.cli("rpt_not_a_token_at_all", &["agents", "list"]);
    assert_ne!(code(&o), 0);
    let token = server.admin_token.clone().unwrap();
    let o = server.cli(&token, &["agents", "list"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    // The refused request: its warning and its access line.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (warning, answered) = loop {
        let got: Vec<serde_json::Value> = lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        let warning = got
            .iter()
            .find(|v| v["message"] == "authentication failed")
            .cloned();
        let answered = got
            .iter()
            .find(|v| v["message"] == "answered" && v["status"] == 401)
            .cloned();
        if let (Some(w), Some(a)) = (warning, answered) {
            break (w, a);
        }
        assert!(
            Instant::now() < deadline,
            "no warning and access line in:\n{}",
            lines.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let id = answered["span"]["id"].as_str().unwrap();
    assert_eq!(warning["span"]["id"], id, "{warning}");
    assert_eq!(answered["span"]["route"], "/api/v1/agents");
    assert_eq!(answered["span"]["method"], "GET");
    assert_eq!(warning["level"], "WARN");
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    // The secret itself is never logged.
    assert!(
        !lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("rpt_not_a_token")),
        "a credential reached the log"
    );
    // The admin's request got an id of its own.
    let ok = lines
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| {
            v["message"] == "answered"
                && v["status"] == 200
                && v["span"]["route"] == "/api/v1/agents"
        })
        .expect("the admin's request was logged");
    assert_ne!(ok["span"]["id"], id);
}

/// A webhook receiver on loopback for the server process: minimal HTTP/1.1 (keep-alive,
/// Content-Length bodies) that answers 503 while `refuse` is set and 204 otherwise, recording
/// what it accepted. Its URL.
fn webhook_receiver(
    got: Arc<Mutex<Vec<String>>>,
    refuse: Arc<std::sync::atomic::AtomicBool>,
) -> String {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let (got, refuse) = (got.clone(), refuse.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut writer = conn;
                loop {
                    let mut length = 0usize;
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            length = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let status = if refuse.load(std::sync::atomic::Ordering::SeqCst) {
                        "503 Service Unavailable"
                    } else {
                        got.lock().unwrap().push(String::from_utf8(body).unwrap());
                        "204 No Content"
                    };
                    let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
                    if writer.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}/hook")
}

/// Events queued while their webhook is down survive `kill -9` of the server: after a restart
/// every one arrives, each once.
#[test]
fn kill_9_loses_no_queued_event() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (api, agent_port) = (free_port(), free_port());
    let mut server = ServerProc::start_db(&data, api, agent_port, None, true, &[]);
    let token = server.admin_token.clone().unwrap();
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let refuse = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let url = webhook_receiver(got.clone(), refuse.clone());
    let o = Command::new("curl")
        .args(["-sS", "--fail-with-body", "-X", "PUT", "--cacert"])
        .arg(data.join("root-ca.pem"))
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["-H", "content-type: application/json"])
        .args([
            "-d",
            &format!(r#"{{"sink": {{"kind": "webhook", "url": "{url}"}}, "max_attempts": 100}}"#),
        ])
        .arg(format!("{}/api/v1/event-destinations/siem", server.url()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    for g in ["g1", "g2", "g3", "g4", "g5"] {
        let o = server.cli(&token, &["token", "create", "--group", g]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    // SIGKILL: no shutdown, nothing flushed.
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    refuse.store(false, std::sync::atomic::Ordering::SeqCst);
    let server2 = ServerProc::start_db(&data, api, agent_port, None, false, &[]);
    let deadline = Instant::now() + Duration::from_secs(90);
    let groups = loop {
        let groups: Vec<String> = got
            .lock()
            .unwrap()
            .iter()
            .map(|b| serde_json::from_str::<serde_json::Value>(b).unwrap())
            .filter(|e| e["data"]["action"] == "enrolment_token.create")
            .map(|e| e["data"]["detail"]["group"].as_str().unwrap().to_owned())
            .collect();
        if groups.len() >= 5 {
            break groups;
        }
        assert!(Instant::now() < deadline, "only {groups:?} arrived");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut sorted = groups.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["g1", "g2", "g3", "g4", "g5"],
        "each once: {groups:?}"
    );
    let ids: std::collections::BTreeSet<String> = got
        .lock()
        .unwrap()
        .iter()
        .map(|b| {
            serde_json::from_str::<serde_json::Value>(b).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), got.lock().unwrap().len(), "no event twice");
    drop(server2);
}

/// `rampart schema event` prints the JSON Schema of the event document (docs/events.md).
#[test]
fn the_event_schema_is_printed() {
    let o = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["schema", "event"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["title"], "Event");
    let text = stdout(&o);
    for kind in ["run.stored", "check.changed", "attestation.issued", "audit"] {
        assert!(text.contains(&format!("\"{kind}\"")), "{kind}");
    }
}
