//! `rampart attest show|bundle|verify` and `rampart keys list|rotate`.
//!
//! `verify` is offline: it reads a bundle file and trusts nothing but an audit-log key the
//! auditor pinned beforehand (given with `--log-key`, or pinned by `rampart audit verify`).
//! The server is not asked anything.

use std::io::Read as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use rampart_attest::{Bundle, Claims, Verified};
use rampart_audit::LogVerifier;
use rampart_server::api::{AttestationDetail, AttestationKeyInfo, AttestationSummary, KeyRotation};
use time::OffsetDateTime;

use super::fleet::{Api, runtime, t, table};
use crate::cli::{AttestCommand, KeysCommand, ServerConn};

/// `rampart attest …`.
pub fn run(cmd: AttestCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AttestCommand::Verify {
            bundle,
            log_key,
            json,
        } => verify(&bundle, log_key.as_deref(), json),
        AttestCommand::Show {
            agent,
            policy,
            conn,
        } => runtime()?.block_on(show(&conn, &agent, policy.as_deref())),
        AttestCommand::Bundle {
            agent,
            policy,
            jti,
            output,
            conn,
        } => runtime()?.block_on(async {
            let api = Api::new(&conn)?;
            let jti = match jti {
                Some(j) => j,
                None => latest(&api, &agent, policy.as_deref()).await?.jti,
            };
            let bundle: Bundle = api
                .get(&format!(
                    "/api/v1/agents/{}/attestations/{}/bundle",
                    enc(&agent),
                    enc(&jti)
                ))
                .await?;
            let mut text = serde_json::to_vec_pretty(&bundle)?;
            text.push(b'\n');
            match output {
                Some(path) => super::write_atomic(&path, &text)?,
                None => std::io::Write::write_all(&mut std::io::stdout().lock(), &text)?,
            }
            Ok(ExitCode::SUCCESS)
        }),
    }
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The newest attestation of the agent (of `policy`, which is needed when it has several).
async fn latest(
    api: &Api,
    agent: &str,
    policy: Option<&str>,
) -> anyhow::Result<AttestationSummary> {
    let mut path = format!("/api/v1/agents/{}/attestations?limit=1000", enc(agent));
    if let Some(p) = policy {
        path.push_str(&format!("&policy={}", enc(p)));
    }
    let list: Vec<AttestationSummary> = api.get(&path).await?;
    let mut policies: Vec<&str> = list.iter().map(|a| a.policy_id.as_str()).collect();
    policies.sort_unstable();
    policies.dedup();
    if policies.len() > 1 {
        bail!(
            "agent {agent} has attestations of {} policies ({}): choose one with --policy",
            policies.len(),
            policies.join(", ")
        );
    }
    list.into_iter().next().ok_or_else(|| match policy {
        Some(p) => anyhow!("agent {agent} has no attestation of policy {p}"),
        None => anyhow!("agent {agent} has no attestation"),
    })
}

async fn show(conn: &ServerConn, agent: &str, policy: Option<&str>) -> anyhow::Result<ExitCode> {
    let api = Api::new(conn)?;
    let mut path = format!("/api/v1/agents/{}/attestations?limit=1000", enc(agent));
    if let Some(p) = policy {
        path.push_str(&format!("&policy={}", enc(p)));
    }
    let list: Vec<AttestationSummary> = api.get(&path).await?;
    // The newest per policy.
    let mut seen = std::collections::BTreeSet::new();
    let newest: Vec<&AttestationSummary> = list
        .iter()
        .filter(|a| seen.insert(a.policy_id.clone()))
        .collect();
    if newest.is_empty() {
        bail!(
            "agent {agent} has no attestation{}",
            policy.map_or(String::new(), |p| format!(" of policy {p}"))
        );
    }
    for (i, a) in newest.into_iter().enumerate() {
        let d: AttestationDetail = api
            .get(&format!(
                "/api/v1/agents/{}/attestations/{}",
                enc(agent),
                enc(&a.jti)
            ))
            .await?;
        if api.json {
            println!("{}", serde_json::to_string(&d)?);
            continue;
        }
        if i > 0 {
            println!();
        }
        print_claims(&d.claims, &d.summary.kid, d.alg.as_str());
        println!(
            "stale        {}",
            if d.summary.stale {
                "yes: a later run has an attestation"
            } else {
                "no"
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn at(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs).map_or_else(|_| secs.to_string(), t)
}

fn print_claims(c: &Claims, kid: &str, alg: &str) {
    let r = &c.result;
    let n = &r.counts;
    println!("attestation  {}", c.jti);
    println!(
        "agent        {} ({}, {})",
        c.sub, c.host.hostname, c.host.os
    );
    println!(
        "policy       {}{} sha256:{}",
        c.policy.id,
        c.policy.version.map_or(String::new(), |v| format!(" v{v}")),
        c.policy.sha256
    );
    println!("result       {} — score {:.1}", r.status.as_str(), n.score);
    println!(
        "checks       {} passed, {} failed, {} waived, {} n/a, {} not run, {} errors ({} in all)",
        n.passed, n.failed, n.waived, n.not_applicable, n.not_run, n.error, n.total
    );
    if !r.failed_checks.is_empty() {
        println!("failed       {}", r.failed_checks.join(", "));
    }
    for (name, f) in &r.frameworks {
        println!(
            "  {name:<12} score {:.1}{}",
            f.score,
            if f.failed_controls.is_empty() {
                String::new()
            } else {
                format!(", failing {}", f.failed_controls.join(" "))
            }
        );
    }
    for w in &c.waivers {
        println!(
            "waived       {} by {}{}{}: {}",
            w.check,
            w.pattern,
            w.id.as_ref()
                .map_or(String::new(), |i| format!(" (waiver {i})")),
            w.expires
                .as_ref()
                .map_or(String::new(), |e| format!(", until {e}")),
            w.justification
        );
    }
    println!(
        "scan         run {} ({}), {} → {}",
        c.scan.run_id,
        c.scan.trigger,
        at(c.scan.started_at),
        at(c.scan.finished_at)
    );
    println!("valid        {} → {}", at(c.nbf), at(c.exp));
    println!("evidence     sha256:{}", c.evidence.sha256);
    println!("signed       {alg}, key {kid}");
    println!(
        "logged       entry {} of {}, under the checkpoint of {} entries",
        c.log.index, c.log.origin, c.log.checkpoint_size
    );
}

fn read_bundle(path: &Path) -> anyhow::Result<String> {
    let mut text = String::new();
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("standard input")?;
    } else {
        text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    }
    Ok(text)
}

/// The log key to trust: `--log-key`, else one `rampart audit verify` pinned that is the
/// bundle's. Never the bundle's own word.
fn trusted_key(bundle: &Bundle, given: Option<&str>) -> anyhow::Result<LogVerifier> {
    let key = match given {
        Some(k) => k.trim().to_owned(),
        None => {
            let pinned = super::audit::pinned_keys()?;
            if !pinned.contains(&bundle.log.vkey) {
                bail!(
                    "the bundle's audit-log key {} is not one you trust: pass --log-key with the key \
                     of the server's log, read on a trusted path (GET /api/v1/audit/key), or pin it \
                     with `rampart audit verify`",
                    bundle
                        .log
                        .vkey
                        .split('+')
                        .take(2)
                        .collect::<Vec<_>>()
                        .join("+")
                );
            }
            bundle.log.vkey.clone()
        }
    };
    LogVerifier::new(&key).map_err(|e| anyhow!("--log-key: {e}"))
}

fn verify(path: &Path, log_key: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let text = read_bundle(path)?;
    let outcome = Bundle::parse(&text).and_then(|b| {
        let v = trusted_key(&b, log_key)
            .map_err(|e| rampart_attest::Refusal::UntrustedCheckpoint(e.to_string()))?;
        b.verify(&v)
    });
    match outcome {
        Ok(v) => {
            if json {
                println!("{}", serde_json::to_string(&v.claims)?);
            } else {
                report(&v);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(refusal) => {
            println!("attestation NOT verified ({}): {refusal}", refusal.code());
            Ok(ExitCode::from(crate::exit::FAILURES))
        }
    }
}

fn report(v: &Verified) {
    let c = &v.claims;
    println!("attestation verified");
    print_claims(c, &v.kid, v.alg.as_str());
    println!(
        "proven       logged by {} (checkpoint signed by the trusted log key)",
        t(v.logged_at)
    );
    println!(
        "evidence     {}",
        if v.evidence_checked {
            "included, matches the signed digest and the claimed result"
        } else {
            "not included (the run was removed by retention): its digest is signed, but not checked here"
        }
    );
    let now = OffsetDateTime::now_utc().unix_timestamp();
    if now > c.exp {
        println!(
            "note         expired since {}; it was valid when it was logged",
            at(c.exp)
        );
    }
}

/// `rampart keys …`.
pub fn keys(cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            KeysCommand::List { conn } => {
                let api = Api::new(&conn)?;
                let keys: Vec<AttestationKeyInfo> = api.get("/api/v1/attestation-keys").await?;
                if api.json {
                    println!("{}", serde_json::to_string(&keys)?);
                    return Ok(ExitCode::SUCCESS);
                }
                let opt = |x: Option<OffsetDateTime>| x.map_or_else(|| "-".to_owned(), t);
                table(
                    &[
                        "KID",
                        "ALG",
                        "STATE",
                        "CREATED",
                        "ACTIVATED",
                        "RETIRED",
                        "PUBLISHED",
                    ],
                    keys.into_iter()
                        .map(|k| {
                            vec![
                                k.kid,
                                k.alg.as_str().to_owned(),
                                k.state,
                                t(k.created_at),
                                opt(k.activated_at),
                                opt(k.retired_at),
                                if k.published { "yes" } else { "no" }.to_owned(),
                            ]
                        })
                        .collect(),
                );
                Ok(ExitCode::SUCCESS)
            }
            KeysCommand::Rotate { force, conn } => {
                let api = Api::new(&conn)?;
                let path = if force {
                    "/api/v1/attestation-keys/rotate?force=true"
                } else {
                    "/api/v1/attestation-keys/rotate"
                };
                let r: KeyRotation = api.request(reqwest::Method::POST, path, None).await?;
                if api.json {
                    println!("{}", serde_json::to_string(&r)?);
                } else {
                    println!("signing now  {}", r.current);
                    if let Some(retired) = &r.retired {
                        println!(
                            "retired      {retired} (published while its attestations may be valid)"
                        );
                    }
                    println!("published    {} (signs at the next rotation)", r.next);
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}
