//! Fleet commands: thin clients of the server's API (`token`, `agents`, `results`,
//! `policy push|list|unassign`) and the agent runtime (`agent`).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use rampart_core::Status;
use rampart_server::api::{
    AgentDetail, AgentView, AssignRequest, CheckHistory, Done, HitList, PolicyUpload,
    PolicyUploaded, Problem, RevokeRequest, Revoked, RunDiff, TokenCreated, TokenRequest,
};
use rampart_store::{
    Assignment, EnrolmentToken, Labels, PolicySummary, RunDetail, RunSummary, Target,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use time::OffsetDateTime;

use crate::cli::{
    AgentCommand, AgentsCommand, PolicyCommand, ResultsCommand, ServerConn, TokenCommand,
};
use crate::exit;

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// An authenticated API client.
pub(crate) struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
    pub(crate) json: bool,
}

impl Api {
    pub(crate) fn new(conn: &ServerConn) -> anyhow::Result<Api> {
        let token = super::login::token_for(conn)?;
        let http = super::login::client(&conn.ca_file)?;
        Ok(Api {
            base: conn.server.trim_end_matches('/').to_string(),
            token: token.trim().to_string(),
            http,
            json: conn.json,
        })
    }

    /// `method path` with a JSON body (or none), the answer read as `T`; an error answer
    /// becomes an [`exit::ApiFailure`] with the server's code and detail.
    pub(crate) async fn request<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<T> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b);
        }
        let resp = req.send().await.map_err(|e| {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(x) = src {
                s.push_str(": ");
                s.push_str(&x.to_string());
                src = x.source();
            }
            exit::ApiFailure::Unreachable {
                url: url.clone(),
                detail: s,
            }
        })?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        if !status.is_success() {
            return Err(refused(status, &bytes));
        }
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{url}: the server's answer is not what this client reads"))
    }

    /// `GET path`, the response itself once it is known to be a success (for bodies read as
    /// a stream).
    pub(crate) async fn get_response(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| exit::ApiFailure::Unreachable {
                url: url.clone(),
                detail: e.to_string(),
            })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let bytes = resp.bytes().await?;
        Err(refused(status, &bytes))
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.request(reqwest::Method::GET, path, None).await
    }

    pub(crate) async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        self.request(method, path, Some(serde_json::to_vec(body)?))
            .await
    }
}

/// An error answer as an [`exit::ApiFailure`], with the server's code and detail.
fn refused(status: reqwest::StatusCode, bytes: &[u8]) -> anyhow::Error {
    let (code, detail) = match serde_json::from_slice::<Problem>(bytes) {
        Ok(p) => (p.code, p.detail),
        Err(_) => (
            "error".to_owned(),
            String::from_utf8_lossy(bytes).into_owned(),
        ),
    };
    exit::ApiFailure::Refused {
        status: status.as_u16(),
        code,
        detail,
    }
    .into()
}

pub(crate) fn print_json(v: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// An RFC 3339 time, as the API writes it.
pub(crate) fn t(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

/// An optional value, `-` when absent.
pub(crate) fn opt(v: Option<impl ToString>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// Prints rows as aligned columns.
pub(crate) fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r);
    }
}

pub(crate) fn parse_ttl(t: &str) -> anyhow::Result<i64> {
    parse_duration("--ttl", t)
}

/// `1h`, `15m`, `90s`, `2d` or plain seconds, for the option `flag`.
pub(crate) fn parse_duration(flag: &str, t: &str) -> anyhow::Result<i64> {
    let t = t.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| anyhow!("{flag} {t:?}: expected a number with s, m, h or d"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => bail!("{flag} {t:?}: unit must be s, m, h or d"),
    };
    n.checked_mul(mult)
        .ok_or_else(|| anyhow!("{flag} {t:?}: too large"))
}

/// `rampart token …`.
pub fn token(cmd: TokenCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            TokenCommand::Create {
                group,
                labels,
                ttl,
                max_uses,
                agent,
                output,
                conn,
            } => {
                let api = Api::new(&conn)?;
                let mut map = Labels::new();
                for l in labels {
                    let (k, v) = l
                        .split_once('=')
                        .ok_or_else(|| anyhow!("--label {l:?}: expected KEY=VALUE"))?;
                    map.insert(k.to_string(), v.to_string());
                }
                let request = TokenRequest {
                    group: group.clone(),
                    labels: map,
                    ttl_secs: parse_ttl(&ttl)?,
                    max_uses,
                    agent_id: agent,
                };
                let created: TokenCreated = api
                    .send(reqwest::Method::POST, "/api/v1/tokens", &request)
                    .await?;
                match output {
                    Some(path) => {
                        write_secret(&path, &created.token)?;
                        eprintln!(
                            "token {} written to {} (expires {})",
                            created.jti,
                            path.display(),
                            created.expires_at
                        );
                    }
                    None if api.json => print_json(&created)?,
                    None => {
                        println!("{}", created.token);
                        eprintln!(
                            "token {} for group {group}, {max_uses} use(s), expires {}",
                            created.jti, created.expires_at
                        );
                    }
                }
            }
            TokenCommand::List { conn } => {
                let api = Api::new(&conn)?;
                let tokens: Vec<EnrolmentToken> = api.get("/api/v1/tokens").await?;
                if api.json {
                    return print_json(&tokens);
                }
                let rows = tokens
                    .iter()
                    .map(|x| {
                        vec![
                            x.jti.clone(),
                            x.group.clone(),
                            format!("{}/{}", x.uses, x.max_uses),
                            t(x.expires_at),
                            if x.revoked_at.is_some() {
                                "revoked"
                            } else {
                                ""
                            }
                            .to_owned(),
                        ]
                    })
                    .collect();
                table(&["JTI", "GROUP", "USES", "EXPIRES", ""], rows);
            }
            TokenCommand::Revoke { jti, conn } => {
                let api = Api::new(&conn)?;
                let _: Done = api
                    .request(
                        reqwest::Method::DELETE,
                        &format!("/api/v1/tokens/{jti}"),
                        None,
                    )
                    .await?;
                if api.json {
                    print_json(&json!({"revoked": jti}))?;
                } else {
                    println!("token {jti} revoked");
                }
            }
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::from(exit::OK))
}

pub(crate) fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("--output {}", path.display()))?;
    writeln!(f, "{secret}").with_context(|| format!("--output {}", path.display()))?;
    Ok(())
}

/// `rampart policy push | list | unassign`.
pub fn policy(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            PolicyCommand::Push {
                file,
                group,
                agent,
                schedule,
                conn,
            } => {
                let api = Api::new(&conn)?;
                let content = std::fs::read_to_string(&file)
                    .with_context(|| format!("{}", file.display()))?;
                let file_name = file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("policy.yml")
                    .to_string();
                let uploaded: PolicyUploaded = api
                    .send(
                        reqwest::Method::POST,
                        "/api/v1/policies",
                        &PolicyUpload { file_name, content },
                    )
                    .await?;
                let v = &uploaded.version;
                if !api.json {
                    println!(
                        "policy {} version {} ({}){}",
                        v.policy_id,
                        v.version,
                        v.digest.chars().take(12).collect::<String>(),
                        if uploaded.created { "" } else { ", unchanged" }
                    );
                }
                let target = match (group, agent) {
                    (Some(g), _) => Some(Target::Group(g)),
                    (None, Some(a)) => Some(Target::Agent(a)),
                    (None, None) => None,
                };
                let mut assignment: Option<Assignment> = None;
                if let Some(target) = target {
                    let a: Assignment = api
                        .send(
                            reqwest::Method::PUT,
                            &format!("/api/v1/policies/{}/assignments", v.policy_id),
                            &AssignRequest {
                                target,
                                version: Some(v.version),
                                schedule,
                            },
                        )
                        .await?;
                    if !api.json {
                        println!(
                            "assigned to {} on schedule {:?}",
                            target_text(&a.target),
                            a.schedule
                        );
                    }
                    assignment = Some(a);
                }
                if api.json {
                    print_json(&json!({"policy": uploaded, "assignment": assignment}))?;
                }
            }
            PolicyCommand::List { conn } => {
                let api = Api::new(&conn)?;
                let policies: Vec<PolicySummary> = api.get("/api/v1/policies").await?;
                let assignments: Vec<Assignment> = api.get("/api/v1/assignments").await?;
                if api.json {
                    return print_json(&json!({"policies": policies, "assignments": assignments}));
                }
                let rows = policies
                    .iter()
                    .map(|x| {
                        vec![
                            x.id.clone(),
                            x.latest.version.to_string(),
                            x.versions.to_string(),
                            x.latest.format.clone(),
                            x.latest.check_count.to_string(),
                            x.name.clone(),
                        ]
                    })
                    .collect();
                table(
                    &["POLICY", "LATEST", "VERSIONS", "FORMAT", "CHECKS", "NAME"],
                    rows,
                );
                println!();
                let rows = assignments
                    .iter()
                    .map(|x| {
                        vec![
                            x.policy_id.clone(),
                            x.version.to_string(),
                            target_text(&x.target),
                            x.schedule.clone(),
                        ]
                    })
                    .collect();
                table(&["POLICY", "VERSION", "TARGET", "SCHEDULE"], rows);
            }
            PolicyCommand::Unassign {
                policy,
                group,
                agent,
                conn,
            } => {
                let (kind, name) = match (group, agent) {
                    (Some(g), _) => ("group", g),
                    (None, Some(a)) => ("agent", a),
                    (None, None) => bail!("--group or --agent is required"),
                };
                let api = Api::new(&conn)?;
                let _: Done = api
                    .request(
                        reqwest::Method::DELETE,
                        &format!("/api/v1/policies/{policy}/assignments/{kind}/{name}"),
                        None,
                    )
                    .await?;
                if api.json {
                    print_json(
                        &json!({"policy": policy, "unassigned": {"kind": kind, "name": name}}),
                    )?;
                } else {
                    println!("policy {policy} unassigned from {kind} {name}");
                }
            }
            _ => bail!("not a server command"),
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::from(exit::OK))
}

/// `group web`, `agent 3f…`.
fn target_text(target: &Target) -> String {
    match target {
        Target::Group(g) => format!("group {g}"),
        Target::Agent(a) => format!("agent {a}"),
    }
}

/// `rampart agents …`.
pub fn agents(cmd: AgentsCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            AgentsCommand::List { group, conn } => {
                let api = Api::new(&conn)?;
                let path = match group {
                    Some(g) => format!("/api/v1/agents?group={g}"),
                    None => "/api/v1/agents".into(),
                };
                let agents: Vec<AgentView> = api.get(&path).await?;
                if api.json {
                    return print_json(&agents);
                }
                let rows = agents
                    .iter()
                    .map(|a| {
                        vec![
                            a.agent.id.clone(),
                            a.agent.hostname.clone(),
                            a.agent.group.clone(),
                            a.connection.clone(),
                            t(a.agent.last_seen),
                            t(a.agent.cert_not_after),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "ID",
                        "HOSTNAME",
                        "GROUP",
                        "STATE",
                        "LAST SEEN",
                        "CERT EXPIRES",
                    ],
                    rows,
                );
            }
            AgentsCommand::Show { id, conn } => {
                let api = Api::new(&conn)?;
                let detail: AgentDetail = api.get(&format!("/api/v1/agents/{id}")).await?;
                print_json(&detail)?;
            }
            AgentsCommand::Revoke { id, reason, conn } => {
                let api = Api::new(&conn)?;
                let revoked: Revoked = api
                    .send(
                        reqwest::Method::POST,
                        &format!("/api/v1/agents/{id}/revoke"),
                        &RevokeRequest { reason },
                    )
                    .await?;
                if api.json {
                    print_json(&revoked)?;
                } else {
                    println!(
                        "agent {id} revoked; certificates refused from the next handshake: {}",
                        revoked.serials.join(", ")
                    );
                }
            }
            AgentsCommand::Scan { id, conn } => {
                let api = Api::new(&conn)?;
                let done: Done = api
                    .request(
                        reqwest::Method::POST,
                        &format!("/api/v1/agents/{id}/scan"),
                        None,
                    )
                    .await?;
                if api.json {
                    print_json(&done)?;
                } else {
                    println!("scan requested; agent {id} starts it at its next heartbeat");
                }
            }
            AgentsCommand::Hits { id, limit, conn } => {
                let api = Api::new(&conn)?;
                let mut path = format!("/api/v1/intel/hits?limit={limit}");
                if let Some(id) = &id {
                    path.push_str(&format!("&agent={id}"));
                }
                let hits: HitList = api.get(&path).await?;
                if api.json {
                    return print_json(&hits);
                }
                let rows = hits
                    .hits
                    .iter()
                    .map(|h| {
                        vec![
                            h.hostname.clone(),
                            h.observable_kind.clone(),
                            h.observable.clone(),
                            format!("{} {}", h.indicator_kind, h.indicator),
                            h.how.clone(),
                            h.count.to_string(),
                            h.feeds.join(","),
                            h.context.clone(),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "HOST",
                        "SEEN AS",
                        "OBSERVABLE",
                        "INDICATOR",
                        "HOW",
                        "RUNS",
                        "FEEDS",
                        "WHERE",
                    ],
                    rows,
                );
            }
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::from(exit::OK))
}

/// `rampart results …`.
pub fn results(cmd: ResultsCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            ResultsCommand::Show {
                agent,
                policy,
                limit,
                run,
                diff,
                conn,
            } => {
                let api = Api::new(&conn)?;
                if let Some(ids) = diff {
                    let d: RunDiff = api
                        .get(&format!("/api/v1/runs/{}/diff/{}", ids[0], ids[1]))
                        .await?;
                    if api.json {
                        return print_json(&d);
                    }
                    for (items, label) in [
                        (&d.newly_failing, "Newly failing"),
                        (&d.newly_passing, "Newly passing"),
                        (&d.other_changes, "Other status changes"),
                        (&d.evidence_changed, "Same status, different evidence"),
                    ] {
                        println!("{label} ({}):", items.len());
                        for c in items {
                            println!(
                                "  {:<12} {} → {}  {}",
                                c.check_id,
                                opt(c.before.map(Status::as_str)),
                                opt(c.after.map(Status::as_str)),
                                c.title
                            );
                        }
                    }
                    return Ok(());
                }
                if let Some(run) = run {
                    let r: RunDetail = api.get(&format!("/api/v1/runs/{run}")).await?;
                    if api.json {
                        return print_json(&r);
                    }
                    println!(
                        "run {} of {} v{} on {}: score {:?}",
                        r.run.id,
                        r.run.policy_id,
                        opt(r.run.policy_version),
                        r.run.host.hostname,
                        r.run.summary.score
                    );
                    let rows = r
                        .checks
                        .iter()
                        .map(|c| {
                            vec![
                                c.id.clone(),
                                c.status.as_str().to_owned(),
                                c.severity.as_str().to_owned(),
                                c.title.clone(),
                            ]
                        })
                        .collect();
                    table(&["CHECK", "STATUS", "SEVERITY", "TITLE"], rows);
                    return Ok(());
                }
                let mut path = format!("/api/v1/agents/{agent}/runs?limit={limit}");
                if let Some(p) = policy {
                    path.push_str(&format!("&policy={p}"));
                }
                let runs: Vec<RunSummary> = api.get(&path).await?;
                if api.json {
                    return print_json(&runs);
                }
                let rows = runs
                    .iter()
                    .map(|r| {
                        vec![
                            r.id.clone(),
                            r.policy_id.clone(),
                            opt(r.policy_version),
                            t(r.started_at),
                            r.trigger.clone(),
                            r.summary.passed.to_string(),
                            r.summary.failed.to_string(),
                            format!("{:.1}", r.summary.score),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "RUN", "POLICY", "VER", "STARTED", "TRIGGER", "PASS", "FAIL", "SCORE",
                    ],
                    rows,
                );
            }
            ResultsCommand::History {
                agent,
                policy,
                check,
                conn,
            } => {
                let api = Api::new(&conn)?;
                let h: CheckHistory = api
                    .get(&format!("/api/v1/agents/{agent}/checks/{policy}/{check}"))
                    .await?;
                if api.json {
                    return print_json(&h);
                }
                if let Some(current) = &h.current {
                    println!(
                        "{check} is {} since {}",
                        current.status.as_str(),
                        t(current.since)
                    );
                }
                let rows = h
                    .points
                    .iter()
                    .map(|p| {
                        vec![
                            t(p.started_at),
                            p.status.as_str().to_owned(),
                            p.run_id.clone(),
                        ]
                    })
                    .collect();
                table(&["STARTED", "STATUS", "RUN"], rows);
            }
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::from(exit::OK))
}

/// The enrolment token: from a file ('-' = stdin) or RAMPART_ENROL_TOKEN.
fn read_token(file: Option<&Path>) -> anyhow::Result<String> {
    let t = match file {
        Some(p) if p == Path::new("-") => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).context("reading the token from stdin")?;
            s
        }
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("--token-file {}", p.display()))?,
        None => std::env::var("RAMPART_ENROL_TOKEN")
            .map_err(|_| anyhow!("no enrolment token: pass --token-file FILE ('-' for stdin) or set RAMPART_ENROL_TOKEN"))?,
    };
    let t = t.trim().to_string();
    if t.is_empty() {
        bail!("the enrolment token is empty");
    }
    Ok(t)
}

pub(crate) fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| std::env::consts::OS.to_string())
}

/// `rampart agent …`.
pub fn agent(cmd: AgentCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AgentCommand::Enroll {
            server,
            token_file,
            state,
            json,
        } => {
            let token = read_token(token_file.as_deref())?;
            let dir = rampart_agent::StateDir::new(state.state_dir);
            let opts = rampart_agent::EnrolOptions {
                server,
                hostname: hostname(),
                os: os_name(),
                arch: std::env::consts::ARCH.to_string(),
            };
            let id = runtime()?.block_on(rampart_agent::enroll(&dir, &token, &opts))?;
            if json {
                print_json(&serde_json::to_value(&id)?)?;
            } else {
                println!("enrolled as agent {} with {}", id.agent_id, id.api_url);
            }
            Ok(ExitCode::from(exit::OK))
        }
        AgentCommand::Run {
            state,
            scan_root,
            command_timeout,
            spool_max,
            once,
            json,
        } => {
            let dir = rampart_agent::StateDir::new(state.state_dir);
            let opts = rampart_agent::AgentOptions {
                scan_root,
                command_timeout: std::time::Duration::from_secs(command_timeout),
                spool_max_entries: spool_max,
                ..rampart_agent::AgentOptions::default()
            };
            let rt = runtime()?;
            if once {
                let st = rt.block_on(rampart_agent::run_once(&dir, &opts))?;
                if json {
                    print_json(&serde_json::to_value(&st)?)?;
                } else {
                    println!(
                        "{}: {} policies, {} result(s) spooled",
                        st.state,
                        st.policies.len(),
                        st.spooled_runs
                    );
                }
                return Ok(ExitCode::from(exit::OK));
            }
            rt.block_on(async {
                let (tx, rx) = tokio::sync::watch::channel(false);
                tokio::spawn(async move {
                    use tokio::signal::unix::{SignalKind, signal};
                    if let Ok(mut term) = signal(SignalKind::terminate()) {
                        tokio::select! {
                            _ = tokio::signal::ctrl_c() => {}
                            _ = term.recv() => {}
                        }
                    } else {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                    let _ = tx.send(true);
                });
                rampart_agent::run(&dir, &opts, rx).await
            })?;
            Ok(ExitCode::from(exit::OK))
        }
        AgentCommand::Status { state, json } => {
            let dir = rampart_agent::StateDir::new(state.state_dir);
            let identity = dir.load_identity()?;
            let mut st = rampart_agent::AgentStatusReport::load(&dir).unwrap_or_default();
            // The identity is known from enrolment on, before the first loop writes a status.
            st.agent_id.clone_from(&identity.agent_id);
            if st.server.is_empty() {
                st.server.clone_from(&identity.agent_url);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&st)?);
                return Ok(ExitCode::from(exit::OK));
            }
            println!("agent        {}", identity.agent_id);
            println!("server       {}", identity.agent_url);
            println!(
                "state        {}",
                if st.state.is_empty() {
                    "not run yet"
                } else {
                    &st.state
                }
            );
            println!(
                "heartbeat    {}",
                st.last_heartbeat.as_deref().unwrap_or("never")
            );
            println!(
                "certificate  expires {}, renewal planned {}",
                st.certificate_not_after.as_deref().unwrap_or("?"),
                st.renew_at.as_deref().unwrap_or("?")
            );
            println!("spool        {} result(s) waiting", st.spooled_runs);
            if let Some(e) = &st.last_error {
                println!("last error   {e}");
            }
            for p in &st.policies {
                println!(
                    "policy       {} v{}  schedule {:?}  last {}  next {}",
                    p.policy_id,
                    p.version,
                    p.schedule,
                    p.last_scan.as_deref().unwrap_or("never"),
                    p.next_scan.as_deref().unwrap_or("-")
                );
            }
            println!(
                "updated      {}",
                if st.updated_at.is_empty() {
                    "never"
                } else {
                    &st.updated_at
                }
            );
            Ok(ExitCode::from(exit::OK))
        }
        AgentCommand::Renew { state, json } => {
            let dir = rampart_agent::StateDir::new(state.state_dir);
            let cert = runtime()?.block_on(rampart_agent::renew_now(&dir))?;
            let rfc3339 = |t: time::OffsetDateTime| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            };
            if json {
                print_json(&json!({
                    "agent_id": cert.agent_id,
                    "serial": cert.serial,
                    "not_before": rfc3339(cert.not_before),
                    "not_after": rfc3339(cert.not_after),
                    "fingerprint": cert.fingerprint,
                }))?;
            } else {
                println!(
                    "certificate renewed: serial {}, valid until {}",
                    cert.serial,
                    rfc3339(cert.not_after)
                );
            }
            Ok(ExitCode::from(exit::OK))
        }
    }
}
