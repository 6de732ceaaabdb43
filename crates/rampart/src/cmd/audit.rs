//! `rampart audit log|verify|proof`: the audit log from an auditor's side.
//!
//! Verification trusts nothing the server says about itself: entries are hashed here, roots
//! recomputed here, checkpoints opened with a verifier key the auditor pins (given with
//! `--key`, or pinned at first use in `audit-trust.json` beside the login credentials), and
//! the checkpoint verified last time must still be a prefix of the log (a rewritten history
//! is a fork, even if re-signed).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rampart_audit::merkle::{Hash, leaf_hash, verify_consistency, verify_inclusion};
use rampart_audit::{Checkpoint, LogCheck, LogVerifier};
use rampart_server::api::{
    AuditCheckpoint, AuditConsistencyProof, AuditEntryDetail, AuditInclusionProof, AuditKey,
    AuditPage,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::fleet::{Api, parse_duration, runtime, t, table};
use crate::cli::{AuditCommand, ServerConn};

/// What `audit-trust.json` keeps per server: the pinned key and the last verified checkpoint.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Trust {
    servers: BTreeMap<String, Pinned>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pinned {
    vkey: String,
    /// The signed note of the largest checkpoint verified, if any.
    #[serde(default)]
    checkpoint: Option<String>,
}

fn trust_path() -> anyhow::Result<PathBuf> {
    Ok(super::login::config_dir()?.join("audit-trust.json"))
}

fn load_trust() -> anyhow::Result<Trust> {
    let path = trust_path()?;
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not an audit trust file", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Trust::default()),
        Err(e) => Err(e).with_context(|| path.display().to_string()),
    }
}

/// Every log key `rampart audit` pinned, whichever server's.
pub(super) fn pinned_keys() -> anyhow::Result<Vec<String>> {
    Ok(load_trust()?
        .servers
        .into_values()
        .map(|p| p.vkey)
        .collect())
}

fn save_trust(trust: &Trust) -> anyhow::Result<()> {
    let path = trust_path()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    }
    super::write_atomic_mode(&path, &serde_json::to_vec_pretty(trust)?, Some(0o600))
}

/// The verifier to trust for `conn`: `--key`, else the pinned one (which the server's must
/// match), else the server's, pinned now. Returns it and whether it was pinned just now.
async fn verifier(
    api: &Api,
    conn: &ServerConn,
    key: Option<&str>,
    trust: &mut Trust,
) -> anyhow::Result<(LogVerifier, bool)> {
    let served: AuditKey = api.get("/api/v1/audit/key").await?;
    let server = super::login::server_key(&conn.server);
    let pinned = trust.servers.get(&server).map(|p| p.vkey.clone());
    let chosen = match (key, pinned) {
        (Some(k), _) => k.trim().to_owned(),
        (None, Some(p)) => p,
        (None, None) => served.vkey.clone(),
    };
    if chosen != served.vkey {
        bail!(
            "the server's audit key {} is not the trusted one {chosen}: the log or its key was replaced (if this is a new installation, pass --key with its key)",
            served.vkey
        );
    }
    let v = LogVerifier::new(&chosen).map_err(|e| anyhow!("--key: {e}"))?;
    // Nothing pinned yet, or another key given with --key: pin it (and forget the old
    // checkpoint, which the old key signed).
    let new = trust.servers.get(&server).is_none_or(|p| p.vkey != chosen);
    if new {
        trust.servers.insert(
            server,
            Pinned {
                vkey: chosen,
                checkpoint: None,
            },
        );
    }
    Ok((v, new))
}

/// The key as people compare it: `NAME+ID`, without the key bytes.
fn key_name(v: &LogVerifier) -> String {
    v.vkey().split('+').take(2).collect::<Vec<_>>().join("+")
}

fn hashes(path: &[String], what: &str) -> anyhow::Result<Vec<Hash>> {
    path.iter()
        .map(|h| {
            B64.decode(h)
                .ok()
                .and_then(|b| Hash::try_from(b).ok())
                .ok_or_else(|| anyhow!("{what}: {h:?} is not a base64 SHA-256 hash"))
        })
        .collect()
}

/// `--since 7d` or an RFC 3339 time, as the API takes it.
fn when(flag: &str, value: &str) -> anyhow::Result<String> {
    if OffsetDateTime::parse(value, &Rfc3339).is_ok() {
        return Ok(value.to_owned());
    }
    let secs = parse_duration(flag, value)
        .map_err(|e| anyhow!("{e} (or an RFC 3339 time such as 2026-12-01T00:00:00Z)"))?;
    Ok(t(OffsetDateTime::now_utc() - time::Duration::seconds(secs)))
}

fn query(pairs: &[(&str, Option<String>)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if let Some(v) = v {
            q.append_pair(k, v);
        }
    }
    q.finish()
}

/// `rampart audit …`.
pub fn run(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    runtime()?.block_on(async move {
        match cmd {
            AuditCommand::Log {
                actor,
                action,
                target,
                outcome,
                since,
                until,
                limit,
                conn,
            } => log(
                &conn,
                [
                    ("actor", actor),
                    ("action", action),
                    ("target", target),
                    ("outcome", outcome),
                    ("since", since.map(|s| when("--since", &s)).transpose()?),
                    ("until", until.map(|s| when("--until", &s)).transpose()?),
                ],
                limit,
            )
            .await
            .map(|()| ExitCode::SUCCESS),
            AuditCommand::Verify { key, conn } => verify(&conn, key.as_deref()).await,
            AuditCommand::Proof {
                index,
                size,
                key,
                conn,
            } => proof(&conn, index, size, key.as_deref()).await,
        }
    })
}

async fn log(
    conn: &ServerConn,
    filters: [(&str, Option<String>); 6],
    limit: u64,
) -> anyhow::Result<()> {
    let api = Api::new(conn)?;
    let mut entries = Vec::new();
    let mut before: Option<u64> = None;
    while (entries.len() as u64) < limit {
        let page_size = (limit - entries.len() as u64).min(1000);
        let mut pairs = filters.to_vec();
        pairs.push(("limit", Some(page_size.to_string())));
        pairs.push(("before", before.map(|b| b.to_string())));
        let page: AuditPage = api
            .get(&format!("/api/v1/audit/entries?{}", query(&pairs)))
            .await?;
        entries.extend(page.entries);
        match page.next_before {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    if api.json {
        // JSON lines: one entry per line, as the export writes them.
        for e in &entries {
            println!("{}", serde_json::to_string(e)?);
        }
        return Ok(());
    }
    let rows = entries
        .iter()
        .map(|e| {
            let detail: Vec<String> = e
                .event
                .detail
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            vec![
                e.index.to_string(),
                t(e.time),
                e.event.actor.clone(),
                e.event.action.clone(),
                e.event.target.clone(),
                e.event.outcome.as_str().to_owned(),
                e.event.source.clone().unwrap_or_else(|| "-".into()),
                detail.join(" "),
            ]
        })
        .collect();
    table(
        &[
            "INDEX", "TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "SOURCE", "DETAIL",
        ],
        rows,
    );
    Ok(())
}

async fn verify(conn: &ServerConn, key: Option<&str>) -> anyhow::Result<ExitCode> {
    let api = Api::new(conn)?;
    let mut trust = load_trust()?;
    let (verifier, pinned_now) = verifier(&api, conn, key, &mut trust).await?;
    if pinned_now {
        eprintln!(
            "trusting audit key {} from now on for {} (kept in {})",
            verifier.vkey(),
            conn.server,
            trust_path()?.display()
        );
    }
    let server = super::login::server_key(&conn.server);
    let trusted = trust
        .servers
        .get(&server)
        .and_then(|p| p.checkpoint.as_deref())
        .map(|note| verifier.open(note))
        .transpose()
        .map_err(|e| anyhow!("the checkpoint kept from the last verification: {e}"))?;

    // Every checkpoint, each opened with the trusted key.
    let mut notes: Vec<(Checkpoint, String)> = Vec::new();
    let mut bad_signatures = Vec::new();
    let mut after = 0;
    loop {
        let page: Vec<AuditCheckpoint> = api
            .get(&format!(
                "/api/v1/audit/checkpoints?after={after}&limit=1000"
            ))
            .await?;
        let Some(last) = page.last() else { break };
        after = last.size;
        let full = page.len() == 1000;
        for c in page {
            match verifier.open(&c.note) {
                Ok(cp) if cp.size == c.size => notes.push((cp, c.note)),
                Ok(cp) => bad_signatures.push(format!(
                    "checkpoint listed as size {} signs size {}",
                    c.size, cp.size
                )),
                Err(e) => bad_signatures.push(format!("checkpoint of size {}: {e}", c.size)),
            }
        }
        if !full {
            break;
        }
    }

    // Every entry, streamed through the tree.
    let mut check = LogCheck::new(
        notes.iter().map(|(c, _)| c.clone()).collect(),
        trusted.clone(),
    );
    let mut resp = api.get_response("/api/v1/audit/export").await?;
    let announced: Option<u64> = resp
        .headers()
        .get("x-audit-size")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let mut pending: Vec<u8> = Vec::new();
    while let Some(chunk) = resp.chunk().await.context("the export stream broke off")? {
        pending.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(nl) = pending[start..].iter().position(|b| *b == b'\n') {
            check.push(&pending[start..start + nl]);
            start += nl + 1;
        }
        pending.drain(..start);
    }
    if !pending.is_empty() {
        check.push(&pending);
    }
    let report = check.finish();
    let mut problems: Vec<String> = bad_signatures;
    if let Some(n) = announced
        && n != report.entries
    {
        problems.push(format!(
            "the export announced {n} entries but carried {}",
            report.entries
        ));
    }
    problems.extend(report.problems.iter().map(ToString::to_string));

    // As a witness would: the server's own consistency proof from what was trusted to now.
    if let (Some(old), Some(new)) = (&trusted, &report.latest)
        && old.size < new.size
        && problems.is_empty()
    {
        let p: AuditConsistencyProof = api
            .get(&format!(
                "/api/v1/audit/proof/consistency?from={}&to={}",
                old.size, new.size
            ))
            .await?;
        let path = hashes(&p.path, "consistency proof")?;
        if let Err(e) = verify_consistency(
            old.size as usize,
            new.size as usize,
            &path,
            &old.root,
            &new.root,
        ) {
            problems.push(format!(
                "the server's consistency proof from size {} to {} does not hold: {e}",
                old.size, new.size
            ));
        }
    }

    if !problems.is_empty() {
        println!(
            "audit log NOT verified: {} problem(s) in {} entries and {} checkpoints",
            problems.len(),
            report.entries,
            notes.len()
        );
        for p in &problems {
            println!("  - {p}");
        }
        return Ok(ExitCode::from(crate::exit::FAILURES));
    }
    let latest = report.latest.as_ref();
    println!(
        "audit log verified: {} entries, {} signed checkpoints (key {}){}{}",
        report.entries,
        report.checkpoints_matched,
        key_name(&verifier),
        latest.map_or_else(String::new, |c| format!(
            "; latest covers {} entries, signed {}",
            c.size,
            t(c.time)
        )),
        if report.unsigned > 0 {
            format!(
                "; {} newer entries are not signed yet (the next checkpoint covers them)",
                report.unsigned
            )
        } else {
            String::new()
        }
    );
    if let Some(old) = &trusted {
        println!(
            "extends the checkpoint of size {} verified before",
            old.size
        );
    }
    // Remember the newest checkpoint: the next verification holds the log to it.
    if let Some((_, note)) = notes.iter().max_by_key(|(c, _)| c.size)
        && let Some(p) = trust.servers.get_mut(&server)
    {
        p.checkpoint = Some(note.clone());
    }
    save_trust(&trust)?;
    Ok(ExitCode::SUCCESS)
}

async fn proof(
    conn: &ServerConn,
    index: u64,
    size: Option<u64>,
    key: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let api = Api::new(conn)?;
    let mut trust = load_trust()?;
    let (verifier, pinned_now) = verifier(&api, conn, key, &mut trust).await?;
    if pinned_now {
        save_trust(&trust)?;
        eprintln!(
            "trusting audit key {} from now on for {}",
            verifier.vkey(),
            conn.server
        );
    }
    let entry: AuditEntryDetail = api.get(&format!("/api/v1/audit/entries/{index}")).await?;
    let cp: AuditCheckpoint = match size {
        Some(s) => {
            api.get(&format!("/api/v1/audit/checkpoint?size={s}"))
                .await?
        }
        None => api.get("/api/v1/audit/checkpoint").await?,
    };
    let head = verifier
        .open(&cp.note)
        .map_err(|e| anyhow!("checkpoint of size {}: {e}", cp.size))?;
    if index >= head.size {
        bail!(
            "entry {index} is newer than the checkpoint of size {}: it is signed at the next checkpoint (try again shortly)",
            head.size
        );
    }
    let p: AuditInclusionProof = api
        .get(&format!(
            "/api/v1/audit/proof/inclusion?index={index}&size={}",
            head.size
        ))
        .await?;
    let path = hashes(&p.path, "inclusion proof")?;
    let leaf = leaf_hash(entry.leaf.as_bytes());
    let held = verify_inclusion(&leaf, index as usize, head.size as usize, &path, &head.root);
    if api.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "entry": entry.entry,
                "leaf": entry.leaf,
                "leaf_hash": B64.encode(leaf),
                "checkpoint": cp.note,
                "path": p.path,
                "verified": held.is_ok(),
            }))?
        );
    } else {
        println!("{}", entry.leaf);
        match &held {
            Ok(()) => println!(
                "included: entry {index} is in the log of {} entries signed {} by {} (audit path of {} hashes)",
                head.size,
                t(head.time),
                key_name(&verifier),
                path.len()
            ),
            Err(e) => println!("NOT included: {e}"),
        }
    }
    Ok(if held.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::FAILURES)
    })
}
