//! `rampart login`, and where the fleet commands find their API token.
//!
//! A login's token is kept per server in `credentials.json` under the user's configuration
//! directory (`$RAMPART_CONFIG_DIR`, else `$XDG_CONFIG_HOME/rampart`, else
//! `~/.config/rampart`): the directory 0700, the file 0600, written atomically.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use rampart_server::api::{IssuedToken, LoginRequest, Problem};
use serde::{Deserialize, Serialize};

use crate::cli::{LoginArgs, ServerConn};

/// What `credentials.json` holds: per server URL, the token a login issued.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Credentials {
    servers: BTreeMap<String, Saved>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Saved {
    user: String,
    token: String,
    expires_at: String,
}

pub(crate) fn config_dir() -> anyhow::Result<PathBuf> {
    if let Some(d) = std::env::var_os("RAMPART_CONFIG_DIR") {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("rampart"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| anyhow!("no HOME: set RAMPART_CONFIG_DIR to keep the login's token"))?;
    Ok(PathBuf::from(home).join(".config").join("rampart"))
}

fn credentials_path() -> anyhow::Result<PathBuf> {
    Ok(config_dir()?.join("credentials.json"))
}

pub(crate) fn server_key(server: &str) -> String {
    server.trim_end_matches('/').to_owned()
}

fn load(path: &Path) -> anyhow::Result<Credentials> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a credentials file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Credentials::default()),
        Err(e) => Err(e).with_context(|| path.display().to_string()),
    }
}

/// The API token for `conn`: `--token-file`, else `RAMPART_TOKEN` (or the older names), else
/// what `rampart login` kept for this server.
pub(crate) fn token_for(conn: &ServerConn) -> anyhow::Result<String> {
    let file = conn
        .token_file
        .clone()
        .or_else(|| std::env::var_os("RAMPART_ADMIN_TOKEN_FILE").map(PathBuf::from));
    if let Some(f) = file {
        let t =
            std::fs::read_to_string(&f).with_context(|| format!("--token-file {}", f.display()))?;
        return Ok(t.trim().to_owned());
    }
    for var in ["RAMPART_TOKEN", "RAMPART_ADMIN_TOKEN"] {
        if let Ok(t) = std::env::var(var) {
            return Ok(t.trim().to_owned());
        }
    }
    let path = credentials_path()?;
    let saved = load(&path)?;
    saved
        .servers
        .get(&server_key(&conn.server))
        .map(|s| s.token.clone())
        .ok_or_else(|| {
            anyhow!(
                "not logged in to {}: run `rampart login --server {} --user NAME` (or pass --token-file)",
                conn.server,
                conn.server
            )
        })
}

/// An HTTPS client trusting only the server's root CA.
pub(crate) fn client(ca_file: &Path) -> anyhow::Result<reqwest::Client> {
    let root = std::fs::read_to_string(ca_file).with_context(|| {
        format!(
            "--ca-file {}: the server's root CA is needed to trust it (the server writes DATA_DIR/root-ca.pem)",
            ca_file.display()
        )
    })?;
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(root.as_bytes()) {
        roots.add(c.context("--ca-file: not a PEM certificate")?)?;
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(cfg)
        .timeout(std::time::Duration::from_secs(60))
        .build()?)
}

/// Where the passwords come from: standard input (two lines at most) or prompts.
enum Input {
    Stdin(std::io::Lines<std::io::StdinLock<'static>>),
    Prompt,
}

impl Input {
    fn password(&mut self, prompt: &str) -> anyhow::Result<String> {
        match self {
            Input::Stdin(lines) => lines
                .next()
                .transpose()?
                .ok_or_else(|| anyhow!("--password-stdin: no line for {prompt}")),
            Input::Prompt => Ok(rpassword::prompt_password(format!("{prompt}: "))?),
        }
    }

    fn new_password(&mut self) -> anyhow::Result<String> {
        match self {
            Input::Stdin(_) => self.password("the new password"),
            Input::Prompt => {
                let first = rpassword::prompt_password("New password (12 or more characters): ")?;
                let again = rpassword::prompt_password("New password again: ")?;
                if first != again {
                    bail!("the two new passwords differ");
                }
                Ok(first)
            }
        }
    }
}

async fn post_login(
    http: &reqwest::Client,
    url: &str,
    req: &LoginRequest,
) -> anyhow::Result<Result<IssuedToken, Problem>> {
    let resp = http
        .post(url)
        .json(req)
        .send()
        .await
        .with_context(|| format!("{url}: cannot reach the server"))?;
    let ok = resp.status().is_success();
    let bytes = resp.bytes().await?;
    if ok {
        Ok(Ok(serde_json::from_slice(&bytes).with_context(|| {
            format!("{url}: the server's answer is not what this client reads")
        })?))
    } else {
        Ok(Err(serde_json::from_slice(&bytes).with_context(|| {
            format!("{url}: {}", String::from_utf8_lossy(&bytes))
        })?))
    }
}

/// `rampart login`.
pub fn run(args: LoginArgs) -> anyhow::Result<ExitCode> {
    let host = super::fleet::hostname();
    let token_name = args
        .token_name
        .clone()
        .unwrap_or_else(|| format!("cli-{host}"));
    let issued = match &args.user {
        Some(user) if !args.oidc => password_login(&args, user, &token_name)?,
        _ => oidc_login(&args, &token_name)?,
    };
    save(&args, issued)
}

/// A password login (prompted, or from standard input).
fn password_login(args: &LoginArgs, user: &str, token_name: &str) -> anyhow::Result<IssuedToken> {
    let mut input = if args.password_stdin {
        Input::Stdin(std::io::stdin().lock().lines())
    } else {
        Input::Prompt
    };
    let http = client(&args.ca_file)?;
    let url = format!("{}/api/v1/login", server_key(&args.server));
    let mut req = LoginRequest {
        user: user.to_owned(),
        password: input.password(&format!("Password for {user}"))?,
        new_password: None,
        token_name: Some(token_name.to_owned()),
        ttl_days: Some(args.ttl_days),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let issued = runtime.block_on(async {
        match post_login(&http, &url, &req).await? {
            Err(p) if p.code == "password_change_required" => {
                eprintln!("This password is one-time; choose a new one.");
                req.new_password = Some(input.new_password()?);
                post_login(&http, &url, &req).await
            }
            other => Ok(other),
        }
    })?;
    Ok(issued.map_err(|p| crate::exit::ApiFailure::Refused {
        status: p.status,
        code: p.code,
        detail: p.detail,
    })?)
}

/// How long `rampart login --oidc` waits for the browser.
const OIDC_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

/// An OIDC login through the browser (RFC 8252's loopback redirect, the server as the relying
/// party): listen on a loopback port, have the browser log in at the provider and come back to
/// that port with a one-time code, trade code and verifier for an API token.
fn oidc_login(args: &LoginArgs, token_name: &str) -> anyhow::Result<IssuedToken> {
    let http = client(&args.ca_file)?;
    let server = server_key(&args.server);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot listen on a loopback port for the browser's return")?;
        let port = listener.local_addr()?.port();
        let pkce = rampart_access::oidc::Pkce::new();
        let url = format!(
            "{server}/api/v1/oidc/login?cli_port={port}&cli_challenge={}",
            pkce.challenge
        );
        eprintln!("Open this address in a browser to log in (waiting up to 5 minutes):\n{url}");
        let code = tokio::time::timeout(OIDC_WAIT, loopback_code(&listener))
            .await
            .map_err(|_| anyhow!("no login came back from the browser within 5 minutes"))??;
        let req = rampart_server::api::OidcTokenRequest {
            code,
            verifier: pkce.verifier,
            token_name: Some(token_name.to_owned()),
            ttl_days: Some(u16::try_from(args.ttl_days).unwrap_or(u16::MAX)),
        };
        let resp = http
            .post(format!("{server}/api/v1/oidc/token"))
            .json(&req)
            .send()
            .await
            .map_err(|e| crate::exit::ApiFailure::Unreachable {
                url: server.clone(),
                detail: e.to_string(),
            })?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        if !status.is_success() {
            let p: Problem =
                serde_json::from_slice(&bytes).map_err(|_| anyhow!("{server}: HTTP {status}"))?;
            return Err(crate::exit::ApiFailure::Refused {
                status: p.status,
                code: p.code,
                detail: p.detail,
            }
            .into());
        }
        Ok(serde_json::from_slice(&bytes)?)
    })
}

/// Waits for the browser's `GET /callback?code=…` on the loopback listener; answers it with a
/// page saying the login is done (anything else gets a 404 and the wait goes on).
async fn loopback_code(listener: &tokio::net::TcpListener) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    loop {
        let (mut conn, _) = listener.accept().await?;
        let mut buf = vec![0u8; 8192];
        let mut len = 0;
        // The request line and headers, bounded; a slow or silent client is dropped.
        let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while len < buf.len() && !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut buf[len..]).await?;
                if n == 0 {
                    break;
                }
                len += n;
            }
            std::io::Result::Ok(())
        })
        .await;
        if !matches!(read, Ok(Ok(()))) {
            continue;
        }
        let head = String::from_utf8_lossy(&buf[..len]);
        let target = head
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("GET "))
            .and_then(|l| l.split(' ').next())
            .unwrap_or("");
        let code = target.strip_prefix("/callback?").and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
        });
        let (status, body) = match &code {
            Some(_) => ("200 OK", "Logged in to Rampart: you can close this window."),
            None => ("404 Not Found", "Not the login's return."),
        };
        let reply = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = conn.write_all(reply.as_bytes()).await;
        let _ = conn.shutdown().await;
        if let Some(code) = code {
            return Ok(code);
        }
    }
}

/// Keeps the token for this server and says so.
fn save(args: &LoginArgs, issued: IssuedToken) -> anyhow::Result<ExitCode> {
    let path = credentials_path()?;
    let mut saved = load(&path)?;
    let expires_at = issued
        .info
        .expires_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    saved.servers.insert(
        server_key(&args.server),
        Saved {
            user: issued.info.user.clone(),
            token: issued.token,
            expires_at: expires_at.clone(),
        },
    );
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| dir.display().to_string())?;
    }
    super::write_atomic_mode(&path, &serde_json::to_vec_pretty(&saved)?, Some(0o600))?;
    println!(
        "logged in to {} as {} ({}); token {} valid until {expires_at}, kept in {}",
        server_key(&args.server),
        issued.info.user,
        issued.info.role,
        issued.info.name,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}
